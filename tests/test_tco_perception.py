"""Total cost of ownership (infphys.physics.tco) and latency budgets from perception
(infphys.catalog.perception), checked against hand arithmetic written in the comments."""

from __future__ import annotations

import math

import pytest

from infphys.catalog import (
    DEFAULT_SLO,
    FLOW_OF_THOUGHT_S,
    PERCEPTION_SOURCES,
    READING_WORDS_PER_MIN,
    TOKENS_PER_WORD,
    reading_pace_itl_s,
)
from infphys.physics import roofline_throughput, tco

# --- perception -------------------------------------------------------------------------------


def test_reading_pace_itl_by_hand() -> None:
    # Brysbaert (2019): 238 words/min silent reading; OpenAI: 100 tokens ≈ 75 words → 4/3 tokens
    # per word. 238 × 4/3 = 317.333 tokens/min = 5.2889 tokens/s → 1 / 5.2889 = 0.18908 s.
    assert READING_WORDS_PER_MIN == 238
    assert pytest.approx(100 / 75) == TOKENS_PER_WORD
    assert reading_pace_itl_s() == pytest.approx(0.18908, abs=5e-6)
    # Reading aloud, 183 words/min: 60 / (183 × 4/3) = 60 / 244 = 0.245902 s.
    assert reading_pace_itl_s(183) == pytest.approx(0.245902, abs=1e-6)
    # A tokenizer at 1.5 tokens per word: 60 / 357 = 0.168067 s.
    assert reading_pace_itl_s(238, 1.5) == pytest.approx(0.168067, abs=1e-6)


def test_default_slo_is_nielsen_and_reading_pace() -> None:
    # First token inside Nielsen's 1 s flow-of-thought limit; then 189.08 ms per token.
    assert DEFAULT_SLO.ttft_s == FLOW_OF_THOUGHT_S == 1.0
    assert DEFAULT_SLO.itl_ms == pytest.approx(189.08, abs=0.01)
    assert DEFAULT_SLO.ttft_ms == 1000.0
    for name in ("READING_WORDS_PER_MIN", "TOKENS_PER_WORD", "FLOW_OF_THOUGHT_S"):
        assert PERCEPTION_SOURCES[name]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"words_per_minute": 0}, "words_per_minute"), ({"tokens_per_word": -1}, "tokens_per_word")],
)
def test_reading_pace_bad_input_names_the_argument(kwargs: dict[str, float], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        reading_pace_itl_s(**kwargs)


# --- TCO --------------------------------------------------------------------------------------

# An example workload: 20,000 input and 2,000 output tokens/s on average, peak 3× the average;
# GPUs that prefill 40,000 tokens/s and decode 2,500 tokens/s at the objective.
LOAD = tco.TokenLoad(20_000, 2_000, 3.0)
RATES = tco.GpuThroughput(40_000, 2_500)
# An example server: $300,000 for 8 GPUs written off over 4 years, 10.2 kW drawn at 60 % on
# average, $0.10/kWh, PUE 1.4, 8 rack units at $500 per rack unit per year.
SERVER = tco.OnPremInputs(300_000, 8, 4, 10.2, 0.6, 0.10, 1.4, 8, 500)


def test_gpus_sized_for_peak() -> None:
    # Peak busy GPUs: 3 × (20,000 / 40,000 + 2,000 / 2,500) = 3 × 1.3 = 3.9 → 4 rented GPUs;
    # bought in servers of 8 → 8. The average alone (1.3) would need only 2.
    assert tco.gpus_for_peak(LOAD, RATES) == 4
    assert tco.gpus_for_peak(LOAD, RATES, gpus_per_unit=8) == 8
    assert tco.gpus_for_peak(tco.TokenLoad(20_000, 2_000, 1.0), RATES) == 2


def test_roofline_throughput_is_one_prompts_prefill_and_the_batchs_decode() -> None:
    from infphys.physics import decode_step_s, prefill_time

    # Llama-3.1-8B on an H100 (the doctest's figures): 1,024 tokens prefilled in 32.1 ms are
    # 1,024 / 0.0321273 = 31,873 tokens/s; 64 sequences at 1,152 tokens of context decode in
    # 11.597 ms steps: 64 / 0.0115974 = 5,518 tokens/s.
    r = roofline_throughput(
        "h100", "llama-3.1-8b", prompt_tokens=1024, users=64, context_tokens=1152
    )
    assert r.input_tokens_per_s == pytest.approx(31_873, rel=1e-4)
    assert r.output_tokens_per_s == pytest.approx(5_518, rel=1e-4)
    # The same two quantities the cost chapter prices with: prompt / prefill and batch / step.
    pre = prefill_time("h100", "llama-3.1-8b", 1024).total_s
    assert r.input_tokens_per_s == pytest.approx(1024 / pre)
    step_s = decode_step_s("h100", "llama-3.1-8b", 64, 1152)
    assert r.output_tokens_per_s == pytest.approx(64 / step_s)
    with pytest.raises(ValueError, match="prompt_tokens"):
        roofline_throughput("h100", "llama-3.1-8b", prompt_tokens=0, users=1, context_tokens=1)


def test_tco_table_one_row_per_way_of_serving() -> None:
    from infphys.analysis import tco_table

    # Rented: 4 GPUs × $2.50 × 8,760 h = $87,600 (test_rented_tco_by_hand); the API: 630,720 M
    # input × $0.10 + 63,072 M output × $0.40 = $88,300.8.
    t = tco_table([tco.rented_tco(LOAD, RATES, 2.50), tco.api_tco(LOAD, 0.10, 0.40)])
    assert t["option"].tolist() == ["cloud GPU-hours", "per-token API"]
    assert t["GPUs (peak)"].tolist() == [4, 0]
    assert t["USD per year"].tolist() == pytest.approx([87_600, 88_300.8])
    assert t.loc[0, "USD per M output"] == pytest.approx(0.854701, rel=1e-5)
    assert t.loc[1, "USD per M input"] == pytest.approx(0.10)
    assert tco_table([]).empty and "USD per M output" in tco_table([]).columns


def test_rented_tco_by_hand() -> None:
    r = tco.rented_tco(LOAD, RATES, 2.50)
    # 4 GPUs × $2.50 × 8,760 h = $87,600 a year.
    assert r.gpus == 4
    assert r.annual_usd == pytest.approx(87_600)
    # $ per busy GPU-second: 4 × 2.50 / 3,600 / 1.3 = 0.00213675; × 10^6 / 2,500 = $0.854701
    # per million output tokens; × 10^6 / 40,000 = $0.0534188 per million input tokens.
    assert r.usd_per_million_output == pytest.approx(0.854701, rel=1e-5)
    assert r.usd_per_million_input == pytest.approx(0.0534188, rel=1e-5)
    assert r.average_utilisation == pytest.approx(1.3 / 4)
    # The year's tokens at those prices add back up to the bill: 630,720 M input × 0.0534188 +
    # 63,072 M output × 0.854701 = 33,692.3 + 53,907.7 = 87,600.
    year_s = 8760 * 3600
    total = (
        20_000 * year_s / 1e6 * r.usd_per_million_input
        + 2_000 * year_s / 1e6 * r.usd_per_million_output
    )
    assert total == pytest.approx(87_600)


def test_peak_sizing_raises_the_price_per_token() -> None:
    # Flat load (peak = average): 1.3 → 2 GPUs, $43,800 a year; three times the peak doubles it.
    flat = tco.rented_tco(tco.TokenLoad(20_000, 2_000, 1.0), RATES, 2.50)
    assert flat.annual_usd == pytest.approx(43_800)
    assert tco.rented_tco(LOAD, RATES, 2.50).usd_per_million_output == pytest.approx(
        2 * flat.usd_per_million_output
    )


def test_on_prem_gpu_hour_by_hand() -> None:
    # Per server-year: capital 300,000 / 4 = 75,000; power 10.2 kW × 0.6 × 8,760 h × $0.10 × 1.4
    # = 7,505.57; hosting 8 × 500 = 4,000; total 86,505.57. Per GPU-hour ÷ (8 × 8,760 = 70,080):
    # 1.070205 + 0.107100 + 0.057078 = 1.234383.
    hour = tco.on_prem_usd_per_gpu_hour(SERVER)
    assert hour.capital_usd == pytest.approx(1.070205, abs=1e-6)
    assert hour.power_usd == pytest.approx(0.107100, abs=1e-6)
    assert hour.hosting_usd == pytest.approx(0.057078, abs=1e-6)
    assert hour.total_usd == pytest.approx(1.234383, abs=1e-6)


def test_on_prem_tco_by_hand() -> None:
    r = tco.on_prem_tco(LOAD, RATES, SERVER)
    # One whole server of 8 GPUs for a 3.9-GPU peak: $86,505.57 a year, 1.3 / 8 busy on average.
    assert r.gpus == 8
    assert r.annual_usd == pytest.approx(86_505.57, abs=0.01)
    assert r.average_utilisation == pytest.approx(1.3 / 8)
    # 8 × 1.234383 = 9.875064 $/h; / 3,600 = 0.00274307 $/s; / 1.3 busy = 0.00211006 per busy
    # GPU-second; × 10^6 / 2,500 = $0.844023 per million output tokens.
    assert r.usd_per_million_output == pytest.approx(0.844023, rel=1e-5)
    # An input token costs 2,500 / 40,000 of an output token.
    assert r.usd_per_million_input == pytest.approx(0.844023 / 16, rel=1e-5)


def test_api_tco_by_hand() -> None:
    # A year of the average: 630,720 M input × $0.10 + 63,072 M output × $0.40 = $88,300.80.
    r = tco.api_tco(LOAD, 0.10, 0.40)
    assert r.annual_usd == pytest.approx(88_300.80)
    assert (r.usd_per_million_input, r.usd_per_million_output, r.gpus) == (0.10, 0.40, 0)
    assert math.isnan(r.average_utilisation)


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: tco.TokenLoad(0, 1), "average_input_tokens_per_s"),
        (lambda: tco.TokenLoad(1, 1, 0.5), "peak_to_average"),
        (lambda: tco.GpuThroughput(1, 0), "output_tokens_per_s"),
        (lambda: tco.OnPremInputs(1, 8, 4, 10, 1.5, 0.1, 1.4, 8, 500), "power_utilisation"),
        (lambda: tco.OnPremInputs(1, 8, 4, 10, 0.5, 0.1, 0.9, 8, 500), "pue"),
        (lambda: tco.rented_tco(LOAD, RATES, 0), "usd_per_gpu_hour"),
        (lambda: tco.api_tco(LOAD, 0.1, -1), "usd_per_million_output"),
    ],
)
def test_tco_bad_input_names_the_argument(make: object, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        make()  # type: ignore[operator]


def test_labs_start_from_the_perception_slo() -> None:
    # Labs 6 (p95 TPOT), 10 and 12 (TTFT) take their SLO widgets' defaults from DEFAULT_SLO,
    # not from a typed number: 190 ms = 189.08 rounded to lab 6's 5 ms step; 1 s; 1,000 ms.
    from pathlib import Path

    labs = Path(__file__).resolve().parents[1] / "labs"
    lab6 = (labs / "06_cost.py").read_text()
    assert "value=int(round(catalog.DEFAULT_SLO.itl_ms / 5) * 5)" in lab6
    assert "value=catalog.DEFAULT_SLO.ttft_s" in (labs / "10_overload.py").read_text()
    assert "value=round(catalog.DEFAULT_SLO.ttft_ms)" in (labs / "12_nim_benchmarks.py").read_text()
    assert round(DEFAULT_SLO.itl_ms / 5) * 5 == 190
