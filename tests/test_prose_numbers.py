"""Figures quoted in chapter and lab prose agree with the package (issue 13: the wrong numbers).

Each chapter is rendered with the site's own Jinja environment (docs/hooks/infphys_site.py;
charts stubbed out, so no simulator runs), then the sentence that once carried a wrong number is
found and its arithmetic checked. A number typed by hand into the page, the exercise or the lab
in place of the rendered one fails here as soon as the package disagrees with it. The expected
values are worked by hand in the comments.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from pagerender import number, quoted, render

from infphys.catalog import NVML_TOTAL_MIB
from infphys.exercises import get_exercise
from infphys.exercises.lab04 import fixed_cost_split
from infphys.physics import decode_step_s, kv_bytes_per_token, kv_bytes_per_token_naive
from infphys.sim.config import EngineConfig

REPO = Path(__file__).resolve().parents[1]


def test_batching_kv_limit_is_a_whole_number_of_sequences() -> None:
    kv, s, b = quoted("physics/batching.md", r"⌊([\d,]+) / ([\d,]+)⌋ = \*\*([\d,]+)\*\* sequences")
    # KV tokens ÷ 1,024 tokens per sequence, rounded *down*: 410,384 / 1,024 = 400.8 → 400.
    assert kv == EngineConfig.build(gpu="h100", model="llama-3.1-8b").kv_capacity_tokens
    assert (s, b) == (1024, kv // 1024)


def test_backpressure_retry_amplification_and_time_to_miss() -> None:
    amplification, multiple = quoted(
        "physics/backpressure.md",
        r"it is \*\*([\d.]+)\*\* — the overload multiplies itself ([\d.]+)×",
    )
    # k = 3 retries at p = 0.9: 1 + 0.9 + 0.81 + 0.729 = 3.439.
    assert amplification == multiple == pytest.approx(3.439, abs=0.005)
    backlog, growth, t = quoted(
        "physics/backpressure.md", r"after ([\d.]+) / ([\d.]+) ≈ \*\*([\d.]+) s\*\*"
    )
    # The quoted division must give the quoted answer; and at 10 % overload with a 0.5 s
    # objective the answer is 0.5 μ / (0.1 μ) = 5 s whatever μ is.
    assert backlog / growth == pytest.approx(t, rel=0.01)
    assert t == pytest.approx(5.0, rel=0.01)


def test_capacity_is_the_whole_part_of_b_star() -> None:
    (b_star,) = quoted(
        "physics/capacity-planning.md", r"B\^\* = \\frac\{\\text\{\d.*?\\approx \\text\{([\d.,]+)\}"
    )
    (users,) = quoted(
        "physics/capacity-planning.md", r"users come whole: \*\*([\d,]+) concurrent users"
    )
    assert int(users) == math.floor(b_star)
    fraction, whole = quoted(
        "physics/capacity-planning.md",
        r"≈ ([\d.,]+); the KV cache holds .*? Capacity = \*\*([\d,]+)\*\* whole users",
    )
    assert int(whole) == math.floor(fraction)


def test_home_page_does_not_put_the_batching_limit_at_the_ridge_point() -> None:
    # roofline.md: with each sequence's KV read, decode stays bandwidth-bound far below the
    # ridge point; the home page must not say batching is free *until* the ridge.
    text = render("index.md")
    assert "until the batch reaches the GPU's ridge point" not in text
    assert "far below the GPU's ridge point" in text


def test_lab03_naive_factor_for_deepseek() -> None:
    # DeepSeek-V3: naive 2 × layers × 7,168 × 2 B against MLA's (512 + 64) × layers × 2 B per
    # token: 2 × 7,168 / 576 = 24.9.
    assert kv_bytes_per_token_naive("deepseek-v3") / kv_bytes_per_token(
        "deepseek-v3"
    ) == pytest.approx(24.89, abs=0.01)
    text = get_exercise("lab03.q3").explanation
    assert "24.9 for DeepSeek-V3" in text and "57" not in text


def test_lab02_flops_per_weight() -> None:
    text = get_exercise("lab02.q2").explanation
    assert "2 FLOPs per weight per sequence" in text
    assert "per weight byte per sequence in the batch (BF16" not in text
    # 989 TFLOP/s / 3.35 TB/s = 295 FLOP/byte (datasheet, H100 SXM).
    assert "≈ 295 on an H100 SXM" in text


def _ms_pairs(text: str) -> list[tuple[float, float]]:
    return [(number(a), number(b)) for a, b in re.findall(r"([\d.]+) ms \+ ([\d.]+) ms", text)]


def test_lab04_fixed_cost_figures_come_from_the_fitted_model() -> None:
    split = fixed_cost_split()
    text = get_exercise("lab04.q4").explanation
    assert "4.5 ms" not in text and "2.25 ms" not in text
    (bf16, fp8) = _ms_pairs(text)
    # The two parts add up to the fitted step model's batch-1 step in each format.
    bf16_s = decode_step_s("h100", "llama-3.1-8b", 1, 8192)
    fp8_s = decode_step_s(
        "h100", "llama-3.1-8b", 1, 8192, weights_precision="fp8", kv_precision="fp8"
    )
    assert sum(bf16) == pytest.approx(bf16_s * 1e3, abs=0.01)
    assert sum(fp8) == pytest.approx(fp8_s * 1e3, abs=0.01)
    assert f"{bf16_s / fp8_s:.2f}× gain" in text
    assert split["bf16_fixed_s"] == pytest.approx(split["fp8_fixed_s"])
    # The lab's own sentence is computed in its cell, not typed.
    lab = (REPO / "labs" / "04_fp8.py").read_text(encoding="utf-8")
    assert "2 ms in the simulator" not in lab
    assert "ex4.fixed_cost_split(" in lab


# --- GB and GiB (issue 13): the convention stated once, both units where nvidia-smi is read.
# Worked by hand: 81,559 MiB × 1,048,576 B = 85,520,809,984 B = 85.5 GB, ÷ 1,073,741,824 =
# 79.65 GiB → "79.6 GiB"; the catalog's 80 × 10⁹ B = 74.5 GiB = 76,294 MiB.


def test_h100_nvml_figure() -> None:
    assert NVML_TOTAL_MIB["h100-sxm"] == 81_559


def test_glossary_states_the_convention_with_numbers() -> None:
    text = render("physics/glossary.md")
    assert "## Units: GB and GiB" in text
    assert "**GB = 10⁹ bytes**" in text
    assert "**81,559 MiB** in `nvidia-smi`, that is 79.6 GiB or 85.5 GB" in text
    assert "The catalog's 80.0 GB is 74.5 GiB (76,294 MiB)" in text


def test_kv_budget_in_both_units() -> None:
    text = render("physics/kv-cache.md")
    gib, mib = quoted("physics/kv-cache.md", r"the same budget reads ([\d.]+) GiB = ([\d,]+) MiB")
    # The same number of bytes in two binary units: MiB ÷ 1,024 = GiB (to the rounding shown).
    assert abs(mib / 1024 - gib) < 0.01
    assert "shows 81,559 MiB for the whole card" in text


# --- measured points, perception budgets and TCO (issue 13, items 2 and 6) ---------------------


def test_token_budget_quotes_the_measured_prefills() -> None:
    short, long, ratio = quoted(
        "physics/token-budget.md",
        r"128-token prompt after \*\*([\d.]+) ms\*\* and of a 2,048-token prompt after "
        r"\*\*([\d.]+) ms\*\*: 16 times the tokens for ([\d.]+) times the time",
    )
    # trtllm_0.9_static_batch.csv, LLaMA v2 7B, H100 80GB HBM3, mixed, TP1, batch 1, osl 128:
    # first_token_ms 9.09 at 128 prompt tokens, 54.91 at 2,048; 54.91 / 9.09 = 6.04.
    assert (short, long) == (9.09, 54.91)
    assert ratio == pytest.approx(6.04, abs=0.005)


def test_queueing_quotes_the_measured_ttft_knee() -> None:
    text = render("physics/queueing.md")
    knee = quoted(
        "physics/queueing.md",
        r"mean TTFT is \*\*([\d.]+) ms\*\* for one client and \*\*([\d,]+) ms\*\* for 250; with "
        r"2,000-token prompts it goes from ([\d.]+) ms to \*\*([\d.]+) s\*\*",
    )
    # nim_llama3_serving.csv, Llama-3-8B, H100, TP1, fp16, ttft_ms_avg: 12.62 (1 client,
    # 200 → 200), 848.072 (250 clients), 51.661 (1 client, 2,000 → 200), 7,039.355 (250).
    assert knee == [12.6, 848, 51.7, 7.04]
    # The 1 s TTFT budget: 2,000 → 200 measures 904.2 ms at 25 clients and 1,286.4 ms at 50;
    # 200 → 200 stays under it (848 ms) up to the 250 measured.
    assert "passes it at **50 clients** with 2,000-token prompts" in text
    assert "stays under it up to 250 clients with 200-token prompts" in text


def test_cost_chapter_reading_pace_and_tco_figures() -> None:
    text = render("physics/cost.md")
    # 60 / (238 × 4/3) = 0.18908 s = 189 ms; 1 / 0.18908 = 5.29 tokens/s; against 20 tokens/s
    # (50 ms) it is 0.18908 / 0.05 = 3.8 times looser.
    assert "60 / (238 × 1.33) = **189 ms per token**, 5.29 tokens/s" in text
    assert "p95 ITL of 189 ms: 3.8 times looser" in text
    # Reading aloud, 183 words/min: 60 / 244 = 246 ms.
    assert "Reading aloud (183 words per minute in the same study) allows 246 ms" in text
    # The example server: 75,000 + 7,505.57 + 4,000 = 86,505.57 per year ÷ 70,080 GPU-hours:
    # 1.070 + 0.107 + 0.057 = 1.234 per GPU-hour.
    assert (
        r"costs \$1.234 per hour of the year: \$1.070 of write-off, \$0.107 of power and "
        r"\$0.057 of rack space" in text
    )
    # The API bills the average: 630,720 M input × 0.10 + 63,072 M output × 0.40 = 88,300.80.
    assert r"| per-token API | — | — | \$88,301 | \$0.100 | \$0.400 |" in text
    assert "| on premises | 8 |" in text


def test_capacity_second_gpu_cost_is_the_inverse_of_the_per_gpu_work() -> None:
    (percent,) = quoted(
        "physics/capacity-planning.md", r"each GPU of a TP2 instance does a median \*\*(\d+)%\*\*"
    )
    share = percent / 100
    (cost,) = quoted(
        "physics/capacity-planning.md", r"Llama-3-8B on two H100s cost a median \*\*([\d.]+)×\*\*"
    )
    # Two GPUs billed for 2 × share of one GPU's tokens: 1 / 0.70 = 1.43 (medians of row ratios,
    # so within a few per cent of each other). nim_llama3_serving.csv, 200 → 200, 100 clients:
    # 9,157.412 / 2 / 6,549.965 = 0.699.
    assert cost == pytest.approx(1 / share, rel=0.03)
