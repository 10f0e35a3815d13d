"""The serving chapters' figures (plots.batching, .token_budget, .capacity, .session): they
draw, and what they draw shows the physics.

Each figure runs small workloads on the virtual-time simulator; the checks read the numbers back
out of the figure's traces and compare them with what the physics says must happen (a smaller
token budget shortens the stalls; continuous batching finishes the same work sooner; goodput
collapses past saturation while throughput does not), not with the same computation retyped.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from figures import traces

from infphys.analysis.load import goodput_by_level
from infphys.analysis.serving import (
    DEFAULT_OUTPUT_TOKENS,
    DEFAULT_PROMPT_TOKENS,
    budget_sweep,
    closed_sweep,
    grid_split,
    open_loop_runs,
    preemption_runs,
    stalled_request,
    static_vs_continuous,
)
from infphys.plots import batching, capacity, session, token_budget
from infphys.stats import summarize

SMALL_LEVELS = (1, 4, 16, 64, 256, 512)


def test_concurrency_sweep_marks_knee_and_cliff_and_queueing() -> None:
    scenario = ("llama-3.1-8b", "h100-sxm", "bf16")
    s = closed_sweep(*scenario, SMALL_LEVELS, DEFAULT_PROMPT_TOKENS, DEFAULT_OUTPUT_TOKENS)
    tput, per_user, e2e, ttft = (
        s[c].to_numpy(dtype=float)
        for c in ("output_tokens_per_s", "tokens_per_s_per_user", "e2e_p95_s", "ttft_p95_s")
    )
    assert e2e[-1] > 2 * e2e[0]  # the p95 cliff is inside the sweep
    # Batching: total throughput grows with the batch while the per-user speed falls.
    assert tput[3] > 10 * tput[0]
    assert per_user[3] < per_user[0]
    # Past max_num_seqs (256) extra clients only queue: TTFT jumps by an order of magnitude.
    assert ttft[-1] > 10 * ttft[-2]
    fig = batching.concurrency_sweep(scenarios=(scenario,), levels=SMALL_LEVELS)
    (drawn,) = traces(fig, "output tokens/s (all users)")
    assert list(drawn.y) == pytest.approx(tput)
    assert "Llama-3.1-8B BF16 on H100 SXM" in fig.layout.title.text  # the scenario drawn
    notes = " ".join(a.text for a in fig.layout.annotations)
    assert "knee" in notes and "p95 cliff" in notes and "max_num_seqs=256" in notes


def test_concurrency_sweep_rejects_too_few_levels() -> None:
    with pytest.raises(ValueError, match="levels"):
        batching.concurrency_sweep(levels=(1, 2))


def test_continuous_batching_finishes_sooner_than_static() -> None:
    # The figure's defaults: 512-token prompts, answers of 32–512 tokens, seed 3.
    d = static_vs_continuous("llama-3.1-8b", "h100-sxm", 12, 4, 512, (32, 512), 3)
    assert d["continuous_end_s"].max() < d["static_end_s"].max()
    # Static batches pad their short answers: a slot is held past its own last token.
    assert (d["static_end_s"] - d["static_own_end_s"]).sum() > 0
    fig = batching.continuous_vs_static(requests=12, batch=4)
    (padding,) = traces(fig, "padding (slot held, no useful token)")
    assert [b + x for b, x in zip(padding.base, padding.x, strict=True)] == pytest.approx(
        d["static_end_s"].tolist()
    )
    with pytest.raises(ValueError, match="batch"):
        static_vs_continuous("llama-3.1-8b", "h100-sxm", 2, 4, 512, (32, 512), 3)


def test_smaller_token_budget_shortens_stalls_and_delays_first_tokens() -> None:
    d = budget_sweep("llama-3.1-8b", "h100-sxm", (512, 8192), 16, 48, (64, 8192), (128, 384), 1)
    p99_itl, median_ttft = d["itl_p99_ms"].to_numpy(), d["ttft_p50_s"].to_numpy()
    assert p99_itl[0] < p99_itl[1] / 3  # 512-token chunks stall decoders far less than 8,192
    assert median_ttft[0] > median_ttft[1]  # but a long prompt needs more steps
    fig = token_budget.chunked_prefill(budgets=(512, 8192), concurrency=16, requests=48)
    assert list(traces(fig, "p99 ITL")[0].y) == pytest.approx(p99_itl)
    assert list(traces(fig, "median TTFT")[0].y) == pytest.approx(median_ttft)


def test_goodput_collapses_past_saturation_while_throughput_holds() -> None:
    # 200 requests at 4× the saturated rate: arrivals outrun the engine by 3× for the whole run,
    # so the queue (and every later request's TTFT) grows from the start. (At 2× a run this
    # short still meets the SLO for most requests: the queue needs time to build.)
    runs = open_loop_runs(
        "llama-3.1-8b", "h100-sxm", (0.5, 4.0), 200, DEFAULT_PROMPT_TOKENS,
        DEFAULT_OUTPUT_TOKENS, 2,
    )  # fmt: skip
    completed = summarize(runs)["throughput_req_per_s"].to_numpy()
    met = goodput_by_level(runs, ttft_slo_s=0.5, tpot_slo_s=0.05)
    goodput, attainment = met["goodput_per_s"].to_numpy(), met["attainment"].to_numpy() * 100
    assert completed[1] >= 0.8 * completed[0]  # the GPU keeps completing requests ...
    assert goodput[1] < 0.5 * goodput[0]  # ... most of them too late
    assert attainment[0] > 95 and attainment[1] < 50
    # The figure draws these runs (its default seed is 2).
    fig = capacity.goodput_vs_rate(loads=(0.5, 4.0), requests=200, slos=((0.5, 0.05),))
    assert list(traces(fig, "goodput (met the SLO)/s")[0].y) == pytest.approx(goodput)
    assert list(traces(fig, "SLO attainment, %")[0].y) == pytest.approx(attainment)


def test_time_split_answer_length_dominates() -> None:
    split = grid_split("llama-3.1-8b", "h100-sxm", (256,), (16, 512), 8, 16, 0)
    assert split["max_tokens"].tolist() == [16, 512]
    ttft, decode = split["ttft_p50_s"].to_numpy(), split["decode_p50_s"].to_numpy()
    assert decode[1] > 10 * decode[0]  # 512 output tokens against 16
    assert decode[1] > ttft[1]
    # The figure draws these numbers: TTFT bars, then decode stacked on them.
    fig = token_budget.time_split(prompts=(256,), outputs=(16, 512), requests=16)
    bars = {t.name: np.asarray(t.y, dtype=float) for t in fig.data}
    assert bars["decode, 256-token prompt"] == pytest.approx(decode)
    assert bars["TTFT, 256-token prompt"] == pytest.approx(ttft)


def test_preemption_timeline_fp8_kv_removes_preemptions() -> None:
    # The figure's defaults: 1,024-token prompts, answers of 1,024–3,072 tokens, seed 1.
    runs = preemption_runs("llama-3.1-8b", "h100-sxm", 256, 300, 1024, (1024, 3072), 1)
    assert [label for label, _, _ in runs][:2] == ["BF16 KV cache", "FP8 KV cache"]
    bf16_pre, fp8_pre = (res.stats.preemptions for _, _, res in runs[:2])
    assert bf16_pre > 0
    assert fp8_pre < bf16_pre
    # The figure's running counts end at each run's total.
    fig = batching.preemption_timeline(concurrency=256, requests=300)
    drawn = [float(t.y[-1]) for t in traces(fig, "preemptions so far")]
    assert drawn == [res.stats.preemptions for _, _, res in runs]


def test_capacity_plan_fp8_serves_more_users_per_gpu() -> None:
    fig = capacity.capacity_plan(configs=(("h100-sxm", "bf16", "bf16"), ("h100-sxm", "fp8", "fp8")))
    users_per_gpu = list(next(t for t in fig.data if t.xaxis == "x").y)  # the left panel
    gpus_for_1000 = list(traces(fig, "1,000 users")[0].y)
    assert users_per_gpu[1] > users_per_gpu[0]
    assert gpus_for_1000 == [math.ceil(1000 / u) for u in users_per_gpu]


def test_request_anatomy_tpot_is_the_mean_gap() -> None:
    # The figure's defaults: prompts of 128–4,096 tokens, 48-token answers, seed 4.
    r = stalled_request("llama-3.1-8b", "h100-sxm", 8, 24, (128, 4096), 48, 4)
    gaps_s = np.diff(np.asarray(r.chunk_times_s))
    # TPOT = (e2e − TTFT) / (N − 1): the mean of the N − 1 gaps between its tokens.
    assert r.tpot_s == pytest.approx(gaps_s.mean(), rel=0.02)
    assert gaps_s.max() > 2 * np.median(gaps_s)  # the request shown was stalled by a prefill
    fig = token_budget.request_anatomy(concurrency=8, requests=24)
    gaps = np.asarray(traces(fig, "ITL: one gap")[0].y, dtype=float)
    assert gaps == pytest.approx(gaps_s * 1e3)  # ms
    assert fig.layout.shapes[0].y0 == pytest.approx((r.tpot_s or 0.0) * 1e3)


def test_session_plan_lists_the_registry_exercises() -> None:
    fig = session.session_plan({"short": [("Welcome", 5, ""), ("Lab 3", 10, "lab03")]})
    (plan,) = fig.data  # one plan: one trace
    hover = plan.customdata
    assert hover[0] == "no exercises"
    assert "lab03.q1" in hover[1]
    with pytest.raises(ValueError, match="plans"):
        session.session_plan({})
