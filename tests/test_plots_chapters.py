"""infphys.plots.queueing, .roofline, .memory, .cost: the chapter figures draw what the
physics computes, and their sliders and dropdowns switch whole views.

Expected values are worked out by hand in the comments, not by calling the formula again.
"""

from __future__ import annotations

import math
from typing import Any

import plotly.io as pio
import pytest
from figures import trace, traces

from infphys.plots.cost import cost_curves
from infphys.plots.memory import kv_bytes_per_token_bars, kv_sequence_growth, precision_capacity
from infphys.plots.queueing import closed_vs_open_loop, queue_utilisation_trap
from infphys.plots.roofline import roofline_chart


def _shown(fig: Any, visible: list[bool]) -> list[Any]:
    return [t for t, v in zip(fig.data, visible, strict=True) if v]


def _at(trace: Any, x: float) -> float:
    xs = list(trace.x)
    return float(trace.y[xs.index(min(xs, key=lambda v: abs(v - x)))])


def test_utilisation_trap_mm1_and_pooling() -> None:
    fig = queue_utilisation_trap(servers=(1, 8), server=1)
    steps = fig.layout.sliders[0].steps
    assert [s.label for s in steps] == ["1", "8"]
    mean_w, mean_wq, p95_wq = _shown(fig, steps[0].args[0]["visible"])
    # M/M/1, service time 1: W = 1/(1 − ρ) = 10 and Wq = ρ/(1 − ρ) = 9 at ρ = 0.9;
    # P(Wq > t) = ρ e^{−(1−ρ)t} gives p95 = ln(0.9/0.05)/0.1 = 28.9.
    assert _at(mean_w, 0.9) == pytest.approx(10.0, rel=0.02)
    assert _at(mean_wq, 0.9) == pytest.approx(9.0, rel=0.02)
    assert _at(p95_wq, 0.9) == pytest.approx(28.9, rel=0.02)
    assert "9.00" in steps[0].args[1]["title.text"]
    # Eight servers at 90 %: Erlang C(8, 7.2) = 0.7015 (the direct sum over k < 8 of 7.2^k/k!),
    # Wq = 0.7015 / (8 − 7.2) = 0.877: ten times less than one server's 9.
    eight = _shown(fig, steps[1].args[0]["visible"])
    assert _at(eight[1], 0.9) == pytest.approx(0.877, rel=0.03)
    with pytest.raises(ValueError, match="server"):
        queue_utilisation_trap(servers=(1, 2), server=4)


def test_closed_loop_never_explodes_open_loop_does() -> None:
    fig = closed_vs_open_loop(servers=(4,), server=4, max_users_factor=2)
    closed, open_ = fig.data
    # Closed loop: X = min(N, 4), W = N / X: N = 8 clients → X = 4, W = 2.
    n = list(closed.customdata).index(8)
    assert closed.x[n] == 4 and closed.y[n] == pytest.approx(2.0)
    assert max(closed.y) == pytest.approx(2.0)
    # Open loop at λ → 4 (99.5 % busy): M/M/4 latency far beyond anything the closed loop shows.
    assert max(open_.y) > 30


def test_roofline_chart_places_decode_below_and_prefill_above_the_ridge() -> None:
    fig = roofline_chart(
        "llama-3.1-8b", gpus=("h100-sxm", "h200-sxm"), batches=(1, 64), prompts=(4096,)
    )
    labels = [b.label for b in fig.layout.updatemenus[0].buttons]
    assert labels == ["H100 SXM", "H200 SXM"]
    first = fig.layout.updatemenus[0].buttons[0].args[0]["visible"]
    _roof, ridge, decode, prefill = _shown(fig, first)
    # 989 TFLOP/s / 3.35 TB/s = 295 FLOP/byte.
    assert ridge.x[0] == pytest.approx(295.2, abs=0.1)
    # Batch 1 with BF16 weights and 2,048 cached tokens: 15.0 GFLOP of matrix products plus
    # 2,049 pairs × 32 layers × 16,384 = 1.07 GFLOP of attention, over 15.01 GB of weights (the
    # embedding table is not read) + 0.27 GB of KV: intensity ≈ 1.05; the step takes
    # 15.28 GB / 3.35 TB/s = 4.56 ms, so it reaches 16.1 GFLOP / 4.56 ms ≈ 3.5 TFLOP/s.
    assert decode.x[0] == pytest.approx(1.05, abs=0.05)
    assert decode.y[0] == pytest.approx(3.53, abs=0.05)
    # A 4,096-token prefill is compute-bound: at the 989 TFLOP/s roof.
    assert prefill.x[0] > 295 and prefill.y[0] == pytest.approx(989, rel=0.01)


def test_kv_bytes_per_token_bars_naive_against_correct() -> None:
    fig = kv_bytes_per_token_bars(["llama-3.1-8b", "deepseek-v3"], precisions=("bf16", "fp8"))
    naive, naive_fp8 = traces(fig, "naive: 2 × layers × hidden × bytes")  # BF16, then FP8
    right, right_fp8 = traces(fig, "correct: KV heads, MLA latent, full-attention layers")
    by_name = dict(zip(right.x, right.y, strict=True))
    # 2 × 32 × 8 × 128 × 2 = 131,072; MLA (512 + 64) × 61 × 2 = 70,272.
    assert by_name["Llama-3.1-8B (GQA)"] == 131072
    assert by_name["DeepSeek-V3 (MLA)"] == 70272
    # Naive 2 × 32 × 4,096 × 2 = 524,288 (4×).
    assert dict(zip(naive.x, naive.y, strict=True))["Llama-3.1-8B (GQA)"] == 524288
    # The FP8 view halves every bar: 131,072 / 2 = 65,536 and 524,288 / 2 = 262,144.
    assert dict(zip(right_fp8.x, right_fp8.y, strict=True))["Llama-3.1-8B (GQA)"] == 65536
    assert dict(zip(naive_fp8.x, naive_fp8.y, strict=True))["Llama-3.1-8B (GQA)"] == 262144


def test_kv_sequence_growth_caps_sliding_windows() -> None:
    fig = kv_sequence_growth(["gpt-oss-120b"])
    per_seq, per_tok = traces(fig, "gpt-oss-120b")  # GB per sequence, then bytes per token
    # gpt-oss-120b: 18 full layers × 2,048 B per token, plus 18 window layers × 2,048 B × 128
    # tokens at most (4.72 MB). At 131,072 tokens: 36,864 × 131,072 + 4,718,592 = 4.84 GB.
    assert per_seq.y[-1] == pytest.approx(4.837, abs=0.001)
    assert per_tok.y[-1] == pytest.approx(36864 + 4718592 / 131072, rel=1e-3)


def test_precision_capacity_memory_split_and_capacity() -> None:
    fig = precision_capacity(
        deployments=(("llama-3.1-70b", "h200-sxm", 1),),
        schemes=(("bf16", "bf16"), ("fp8", "fp8")),
        context_tokens=4096,
    )
    weights, kv, mem_line, ends = (
        trace(fig, n) for n in ("weights", "KV cache budget", "GPU memory", "KV cache full")
    )
    bf16_line, fp8_line = trace(fig, "BF16/BF16"), trace(fig, "FP8/FP8")
    # 70.6 B × 2 bytes = 141 GB of weights: no KV budget left on a 141 GB H200.
    assert weights.y[0] == pytest.approx(141.1, abs=0.2) and kv.y[0] == 0
    assert len(bf16_line.x) == 0
    # FP8: 141 × 0.9 − 70.6 − 2.15 = 54.2 GB; 4,096 × 160 KiB (FP8) = 0.671 GB → 80 sequences.
    assert kv.y[1] == pytest.approx(54.2, abs=0.1)
    assert fp8_line.x[-1] == 80 and list(ends.x) == [80]
    assert mem_line.y[0] == pytest.approx(141)


def test_cost_curves_price_the_roofline() -> None:
    fig = cost_curves({"h100-sxm": 2.5, "h200-sxm": 3.5}, "llama-3.1-8b", context_tokens=2048)
    usd = trace(fig, "H100 SXM: $ per million output tokens")
    per_user = trace(fig, "tokens/s per user")
    star = trace(fig, "cheapest batch that meets the objective")
    # Batch 1 on an H100 with 2,048 cached tokens, at the fitted step model. Measured for
    # comparison: NIM serving Llama-3-8B FP16 on one H100 to one client at 2,000/200 tokens
    # decodes at 7.86 ms per token, 127 tokens/s (nim_llama3_serving.csv).
    assert usd.x[0] == 1
    assert per_user.y[0] == pytest.approx(1000 / 7.86, rel=0.15)
    # $2.50 an hour buys 3,600 s × per_user tokens: $2.50 / 3,600 × 10⁶ / tokens-per-s.
    assert usd.y[0] == pytest.approx(2.5 / 3600 * 1e6 / per_user.y[0], rel=1e-9)
    # The H100's KV cache holds 200 such sequences (53.8 GB / 0.268 GB): the curve stops there.
    assert usd.x[-1] == 200 and star.x[0] == 200
    labels = [b.label for b in fig.layout.updatemenus[0].buttons]
    assert labels == ["H100 SXM ($2.50/h)", "H200 SXM ($3.50/h)", "All GPUs"]
    with pytest.raises(ValueError, match="hourly_usd"):
        cost_curves({})


@pytest.mark.parametrize(
    "figure",
    [
        queue_utilisation_trap,
        closed_vs_open_loop,
        roofline_chart,
        kv_bytes_per_token_bars,
        kv_sequence_growth,
        precision_capacity,
        lambda: cost_curves({"h100-sxm": 2.5}),
    ],
)
def test_every_view_switch_matches_the_trace_count_and_serialises(figure: Any) -> None:
    fig = figure()
    controls = [s.args[0]["visible"] for sl in fig.layout.sliders for s in sl.steps]
    controls += [b.args[0]["visible"] for m in fig.layout.updatemenus for b in m.buttons]
    assert controls, "every chapter figure has a slider or a dropdown"
    for visible in controls:
        assert len(visible) == len(fig.data) and any(visible)
    text = pio.to_json(fig, validate=True)
    assert "NaN" not in text and not math.isnan(len(text))
