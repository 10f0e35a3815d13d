"""The package code behind labs 7–11: planning, tuning, retry policies, tables and exercises;
and each of those labs' ``marimo check --strict`` and PEP 723 header.

Expected values are worked out by hand in the comments (the exercises' in
``data/exercises_labs_07_11.toml``), not recomputed with the code's formula.
"""

from __future__ import annotations

import asyncio
import math
import random
import tomllib
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from labrun import LABS, check_marimo_and_header
from labsim import LAB_FILES

from infphys import analysis, stats
from infphys.exercises import check, exercises_for
from infphys.measure import StubConfig, StubServer, Timeouts
from infphys.measure.retry import RetryPolicy, retry_after_s, retry_run, retry_summary
from infphys.planning import (
    gpus_needed,
    kv_limited_concurrency,
    plan_capacity,
    replicas_needed,
    slo_cap,
    slo_cap_index,
)
from infphys.plots import capacity, labs_load
from infphys.records import RequestRecord, records_to_frame
from infphys.sim import sweep
from infphys.sim.config import EngineConfig
from infphys.sim.virtual import simulate
from infphys.sim.workload import Workload
from infphys.tuning import compare_knobs

# --- planning ---------------------------------------------------------------------------------


def test_slo_cap_stops_at_the_first_violation() -> None:
    # p95 1.0, 1.2, 3.0 (over 2.5), 2.0: the lucky last level does not count.
    assert slo_cap_index([1, 2, 4, 8], [1.0, 1.2, 3.0, 2.0], 2.5) == 1
    assert slo_cap([1, 2, 4, 8], [1.0, 1.2, 3.0, 2.0], 2.5) == 2
    assert slo_cap([1, 2, 4], [1.0, 1.2, 2.5], 2.5) == 4  # the bound is inclusive
    assert slo_cap([1, 2, 4], [3.0, 1.0, 1.0], 2.5) is None
    assert slo_cap([1, 2, 4], [1.0, math.nan, 1.0], 2.5) == 1  # no successes: a violation
    assert slo_cap([0.5, 1.5], [1.0, 1.0], 2.0) == 1.5  # a rate sweep keeps its fraction


@pytest.mark.parametrize(
    ("levels", "latency", "slo"),
    [([1, 2], [1.0], 1.0), ([2, 1], [1.0, 1.0], 1.0), ([], [], 1.0), ([1, 2], [1.0, 1.0], 0)],
)
def test_slo_cap_rejects_bad_input(levels: list[float], latency: list[float], slo: float) -> None:
    with pytest.raises(ValueError):
        slo_cap(levels, latency, slo)


def test_replicas_and_gpus_round_up() -> None:
    assert replicas_needed(1000, 64) == 16  # 15.6 → 16
    assert replicas_needed(128, 64) == 2  # exactly 2, not 3
    assert replicas_needed(0.3, 64) == 1
    assert gpus_needed(1000, 64, gpus_per_replica=2) == 32
    with pytest.raises(ValueError, match="gpus_per_replica"):
        gpus_needed(10, 5, gpus_per_replica=0)


def test_kv_limited_concurrency_counts_whole_blocks() -> None:
    # 829,360 tokens = 51,835 blocks of 16; 1,000 + 1,000 tokens = 125 blocks: 414 requests.
    assert kv_limited_concurrency(829_360, 2000) == 414
    # 100 tokens need 7 blocks (6.25 rounded up); 1,000 tokens hold 62 blocks: 8 requests.
    assert kv_limited_concurrency(1000, 100) == 8
    assert kv_limited_concurrency(10, 100) == 0


def test_plan_capacity_from_a_summary() -> None:
    summary = pd.DataFrame(
        {
            "concurrency": [8, 16, 32, 64, 128],
            "e2e_p95_s": [1.2, 1.3, 1.6, 2.4, 4.9],
            "throughput_req_per_s": [6.0, 11.0, 19.0, 25.0, 26.0],
            "output_tokens_per_s": [600.0, 1100.0, 1900.0, 2500.0, 2600.0],
        }
    )
    plan = plan_capacity(summary, slo_s=2.5, users=1000, gpus_per_replica=2)
    assert plan.cap == 64
    assert plan.cap_latency_s == 2.4
    assert plan.cap_throughput_req_per_s == 25.0
    assert plan.peak_throughput_req_per_s == 26.0
    assert (plan.replicas, plan.gpus) == (16, 32)  # ceil(1000 / 64) = 16 replicas × 2 GPUs
    none = plan_capacity(summary, slo_s=1.0, users=10)
    assert none.cap is None and none.gpus == 0


# --- tuning -----------------------------------------------------------------------------------


def test_sim_sweep_labels_levels_and_keeps_engine_figures() -> None:
    cfg = EngineConfig.build("h100", "llama-3.1-8b", max_num_seqs=8)
    sw = sweep(cfg, [2, 8, 32], prompt_tokens=64, max_tokens=16, rounds_per_level=4)
    s = sw.summary()
    assert s["concurrency"].tolist() == [2, 8, 32]
    assert s["requests"].tolist() == [24, 32, 128]  # max(4 × c, 24); warm-up excluded
    # The batch limit: never more than 8 running, and 24 waiting at 32 clients.
    assert s["peak_running"].tolist() == [2, 8, 8]
    assert s["peak_waiting"].max() >= 24
    assert sw.max_running_predicted == 8
    # Past the limit throughput is flat, and 32 clients on 8 slots wait 4 service times
    # (Little's Law: W = c / X with X = 8 / s).
    # (Flat within 15 %: the window at 32 clients opens with 24 of the first 32 requests waiting.)
    x8, x32 = s["throughput_req_per_s"].iloc[1], s["throughput_req_per_s"].iloc[2]
    assert x32 == pytest.approx(x8, rel=0.15)
    w8, w32 = s["e2e_mean_s"].iloc[1], s["e2e_mean_s"].iloc[2]
    assert w32 == pytest.approx(4 * w8, rel=0.1)
    with pytest.raises(ValueError, match="increasing"):
        sweep(cfg, [4, 2])


def test_compare_knobs_moves_the_batch_limit_and_the_kv_capacity() -> None:
    cfg = EngineConfig.build("h100", "llama-3.1-8b", max_model_len=2256)
    k = compare_knobs(
        cfg,
        {"base": {}, "seqs 32": {"max_num_seqs": 32}, "fp8 kv": {"kv_precision": "fp8"}},
        slo_p95_s=30.0,
        concurrency=[16, 64, 256],
        prompt_tokens=2000,
        max_tokens=256,
        rounds_per_level=2,
    )
    t = k.table.set_index("variant")
    # FP8 halves the bytes per token: twice the tokens (±1 block of rounding).
    assert t.loc["fp8 kv", "kv_capacity_tokens"] == pytest.approx(
        2 * t.loc["base", "kv_capacity_tokens"], rel=1e-3
    )
    assert t.loc["seqs 32", "max_running_predicted"] == 32
    assert t.loc["seqs 32", "max_running_simulated"] == 32
    # BF16: 410,384 tokens / 141 blocks of 2,256 tokens: the KV cache holds 181 < 256.
    assert t.loc["base", "max_running_predicted"] == 181
    assert t.loc["fp8 kv", "max_running_predicted"] == 256
    # Out of KV, the baseline preempts; FP8 does not.
    assert t.loc["base", "preemptions"] > 0
    assert t.loc["fp8 kv", "preemptions"] == 0
    assert t.loc["fp8 kv", "peak_output_tokens_per_s"] > t.loc["base", "peak_output_tokens_per_s"]
    with pytest.raises(ValueError, match="unknown knob"):
        compare_knobs(cfg, {"x": {"warp_speed": 9}}, slo_p95_s=1.0, concurrency=[1])


# --- retry policies ---------------------------------------------------------------------------


def test_backoff_bounds_grow_and_cap() -> None:
    p = RetryPolicy.backoff(max_attempts=6, base_delay_s=0.1, max_delay_s=0.5)
    # Before attempts 2..6: 0.1, 0.2, 0.4, then capped at 0.5.
    assert [p.delay_bound_s(k) for k in range(2, 7)] == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5])
    rng = random.Random(1)
    waits = [p.delay_s(4, rng) for _ in range(200)]
    assert all(0.0 <= w <= 0.4 for w in waits) and max(waits) > 0.3  # full jitter spans [0, 0.4]
    assert p.delay_s(2, rng, server_retry_after_s=1.0) == 1.0  # Retry-After wins
    assert RetryPolicy.blind(3).delay_s(2, rng, server_retry_after_s=1.0) == 0.0


def test_retry_decisions() -> None:
    failed_503 = RequestRecord(0, 0.0, end_s=0.01, status="failed", error_class="http_5xx")
    failed_400 = RequestRecord(0, 0.0, end_s=0.01, status="failed", error_class="http_4xx")
    ok = RequestRecord(0, 0.0, end_s=0.5)
    blind = RetryPolicy.blind(3)
    assert blind.should_retry(failed_503, 1) and blind.should_retry(failed_503, 2)
    assert not blind.should_retry(failed_503, 3)  # the third attempt was the last
    assert not blind.should_retry(failed_400, 1)  # a bad request stays bad
    assert not blind.should_retry(ok, 1)
    assert not RetryPolicy.no_retry().should_retry(failed_503, 1)
    rec = RequestRecord(0, 0.0, error_message="HTTP 503: busy (Retry-After: 1.5)")
    assert retry_after_s(rec) == 1.5
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(name="x", kind="none", max_attempts=2)


def test_retry_summary_by_hand() -> None:
    def rec(rid: int, user: int, attempt: int, sent: float, end: float, ok: bool) -> RequestRecord:
        return RequestRecord(
            rid,
            sent,
            first_token_s=end if ok else None,
            end_s=end,
            status="ok" if ok else "failed",
            error_class=None if ok else "http_5xx",
            completion_tokens=4 if ok else 0,
            labels={"policy": "p", "user_request": user, "attempt": attempt},
        )

    # User 0: fails at 0.0–0.1, retried at 0.3, done at 0.8 → perceived 0.8 s.
    # User 1: ok at once, 1.0–1.5 → 0.5 s. User 2: two failures, gives up.
    frame = records_to_frame(
        [
            rec(0, 0, 1, 0.0, 0.1, False),
            rec(1, 0, 2, 0.3, 0.8, True),
            rec(2, 1, 1, 1.0, 1.5, True),
            rec(3, 2, 1, 1.0, 1.05, False),
            rec(4, 2, 2, 1.1, 1.15, False),
        ]
    )
    row = retry_summary(frame).iloc[0]
    assert row["attempts"] == 5 and row["user_requests"] == 3
    assert row["amplification"] == pytest.approx(5 / 3)
    assert row["succeeded"] == 2 and row["success_rate"] == pytest.approx(2 / 3)
    assert row["e2e_p50_s"] == pytest.approx(0.65)  # median of 0.8 and 0.5
    assert row["window_s"] == pytest.approx(1.5)
    with pytest.raises(ValueError, match="retry run"):
        retry_summary(records_to_frame([rec(0, 0, 1, 0.0, 0.1, True)]).drop(columns="policy"))


def test_retry_run_against_a_failing_server() -> None:
    async def main() -> pd.DataFrame:
        # Every second request gets a 503: retries recover what one attempt loses.
        async with StubServer(StubConfig(delay_s=0.005, fault="http_503", fault_every=2)) as srv:
            run = await retry_run(
                srv.target(),
                [RetryPolicy.no_retry(), RetryPolicy.blind(4)],
                rate_per_s=200,
                user_requests=20,
                max_tokens=4,
                timeouts=Timeouts(total_s=5.0),
                seed=3,
                pause_s=0.0,
            )
        assert {r.labels["policy"] for r in run.records} == {"no retry", "blind retries"}
        return run.summary().set_index("policy")

    t = asyncio.run(main())
    assert t.loc["no retry", "amplification"] == 1.0
    assert t.loc["no retry", "success_rate"] < 0.8
    # Which attempt meets the 503 depends on how 20 concurrent users interleave at the server, so
    # a user can (rarely) draw four 503s in a row: retries recover most, not always all.
    assert t.loc["blind retries", "success_rate"] >= 0.9
    assert t.loc["blind retries", "success_rate"] > t.loc["no retry", "success_rate"] + 0.15
    assert t.loc["blind retries", "amplification"] > 1.2


# --- tables and figures -----------------------------------------------------------------------


def _closed_sim(concurrency: int, requests: int, max_num_seqs: int = 8) -> pd.DataFrame:
    cfg = EngineConfig.build("h100", "llama-3.1-8b", max_num_seqs=max_num_seqs)
    res = simulate(
        cfg,
        Workload.closed(
            concurrency=concurrency, requests=requests, prompt_tokens=64, max_tokens=16
        ),
    )
    return res.to_frame()


def test_comparison_table_error_column() -> None:
    t = analysis.comparison_table(
        [("a", 4.0, 3.9, "x"), ("b", 0.0, 1.0, "y", "basis"), ("c", 2.0, math.nan, "z")]
    )
    assert t["error_%"].iloc[0] == -2.5  # (3.9 − 4) / 4
    assert math.isnan(t["error_%"].iloc[1]) and math.isnan(t["error_%"].iloc[2])
    assert t["basis"].tolist() == ["", "basis", ""]
    with pytest.raises(ValueError, match="rows"):
        analysis.comparison_table([("too", 1.0)])  # type: ignore[list-item]


def test_littles_law_by_level_holds_below_the_knee() -> None:
    f = _closed_sim(4, 64)
    row = analysis.littles_law_by_level(f).iloc[0]
    assert row["concurrency"] == 4
    assert abs(row["error_%"]) < 1.0
    assert row["measured_l"] == pytest.approx(4.0, rel=0.01)


def test_closed_loop_vs_little_predicts_the_queue() -> None:
    frames = []
    for i, c in enumerate((4, 32)):
        f = _closed_sim(c, 12 * c)
        f["level"] = i
        frames.append(f)
    f = pd.concat(frames, ignore_index=True)
    s = stats.summarize(f)
    service = float(s["e2e_mean_s"].iloc[0])
    t = analysis.closed_loop_vs_little(f, servers=8, service_s=service)
    assert t["concurrency"].tolist() == [4, 32]
    # 32 clients on 8 slots: 4× the service time, within the closed loop's edge effects.
    assert t["predicted_mean_ms"].iloc[1] == pytest.approx(4 * service * 1e3, rel=1e-3)
    assert abs(t["error_%"].iloc[1]) < 15


def test_open_loop_vs_mmc_marks_saturation() -> None:
    cfg = EngineConfig.build("h100", "llama-3.1-8b", max_num_seqs=8)
    frames = []
    for i, rate in enumerate((10.0, 55.0)):
        res = simulate(
            cfg,
            Workload.open(rate_per_s=rate, requests=200, prompt_tokens=64, max_tokens=16, seed=1),
        )
        f = res.to_frame()
        f["level"] = i
        frames.append(f)
    t = analysis.open_loop_vs_mmc(pd.concat(frames), servers=8, capacity_req_per_s=55.0)
    assert t["utilisation"].tolist() == [pytest.approx(10 / 55, abs=1e-3), 1.0]
    assert math.isfinite(t["mmc_mean_ms"].iloc[0]) and math.isnan(t["mmc_mean_ms"].iloc[1])


def test_token_costs_recover_a_synthetic_grid() -> None:
    # A grid built by hand: TTFT = 5 ms + 0.03 ms × prompt, each output token 6 ms.
    rows = []
    for level, (p, m) in enumerate([(64, 8), (64, 32), (2048, 8), (2048, 32)]):
        ttft = 0.005 + 0.00003 * p
        e2e = ttft + (m - 1) * 0.006
        rows.append(
            RequestRecord(
                level,
                0.0,
                first_token_s=ttft,
                end_s=e2e,
                completion_tokens=m,
                labels={"level": level, "prompt_tokens_asked": p, "max_tokens": m},
            )
        )
    costs = analysis.token_costs(records_to_frame(rows))
    assert costs.prefill_ms_per_1k_tokens == pytest.approx(30.0)
    assert costs.ttft_floor_ms == pytest.approx(5.0)
    assert costs.decode_ms_per_token == pytest.approx(6.0)
    assert costs.output_vs_prompt_token == pytest.approx(200.0)  # 6 ms / 0.03 ms
    table = analysis.token_budget_table(records_to_frame(rows))
    assert table["tpot_ms"].tolist() == pytest.approx([6.0] * 4)


def test_figures_draw_real_data() -> None:
    f = _closed_sim(4, 24)
    little = stats.littles_law(stats.measured(f))
    assert len(labs_load.latency_box(f, metrics=("ttft", "e2e")).data) == 6  # box + p95 + p99
    assert len(labs_load.in_flight_timeline(f, little=little).data) == 1
    assert len(labs_load.latency_vs_throughput({"a": f, "b": f}).data) == 4
    sim = simulate(
        EngineConfig.build("h100", "llama-3.1-8b", max_num_seqs=2),
        Workload.closed(concurrency=4, requests=12, prompt_tokens=64, max_tokens=8),
    )
    fig = labs_load.run_timeline(sim.to_frame(), metrics=sim.timeseries)
    assert {t.name for t in fig.data} >= {"running", "waiting", "KV cache usage (%)"}
    empty = capacity.knob_sweeps({})
    assert empty.layout.annotations[0].text == "no concurrency sweeps to draw"


# --- exercises: right and wrong answers, worked out by hand ------------------------------------

#: One learner's numbers per lab and the answers worked out by hand for them (see the file).
HAND_WORKED = tomllib.loads(
    (Path(__file__).parent / "data" / "exercises_labs_07_11.toml").read_text(encoding="utf-8")
)


@pytest.mark.parametrize(
    "case",
    HAND_WORKED["case"],
    ids=[f"{c['exercise']}={c['right']}" for c in HAND_WORKED["case"]],
)
def test_hand_worked_answers(case: dict[str, Any]) -> None:
    lab = case["exercise"].split(".")[0]
    ctx = {**HAND_WORKED["context"][lab], **case.get("changes", {})}
    assert check(case["exercise"], case["right"], **ctx).ok, case["worked"]
    for answer, why in case["wrong"].items():
        assert not check(case["exercise"], answer, **ctx).ok, why


def test_every_exercise_of_labs_7_to_11_has_a_hand_worked_answer() -> None:
    covered = {c["exercise"] for c in HAND_WORKED["case"]}
    assert covered == {ex.id for lab in range(7, 12) for ex in exercises_for(lab)}


@pytest.mark.parametrize("lab", [7, 8, 9, 10, 11])
def test_each_lab_has_two_to_four_exercises(lab: int) -> None:
    assert 2 <= len(exercises_for(lab)) <= 4


@pytest.mark.parametrize("lab", sorted(LAB_FILES))
def test_marimo_check_and_pep723_header(lab: int) -> None:
    check_marimo_and_header(LABS / LAB_FILES[lab])
