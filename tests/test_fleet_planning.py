"""The fleet planner: cheapest feasible fleet, Pareto front, infeasible objective, Dask == local."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from clirun import run_cli

from infphys.catalog import LatencySLO
from infphys.fleet_estimate import FleetCandidate, FleetDemand, estimate_fleet
from infphys.fleet_planning import pareto_front, plan_fleet

# A light open load: 1 request/s of 200 prompt → 200 output tokens. One replica decodes about
# 1 × 200 × 7 ms ≈ 1.5 requests at once and prefills 200 tokens in ~11 ms, so a TTFT objective
# of 1 s is easy; the ITL objective decides.
LIGHT = FleetDemand(rate_per_s=1.0, prompt_tokens=200, output_tokens=200)
SMALL = {
    "chunk_tokens": (None,),
    "precisions": ("bf16",),
    "tps": (1,),
    "disaggregation": False,
    "requests": 60,
    "max_gpus": 4,
}


def test_cheaper_gpu_wins_when_both_meet_the_objective() -> None:
    # Both one H100 ($2.50/h) and one B200 ($5.50/h) serve the light load far inside 1 s and
    # 50 ms, so the answer is the single H100.
    plan = plan_fleet(
        LIGHT, LatencySLO(1.0, 0.050), prices_usd={"h100-sxm": 2.5, "b200": 5.5}, **SMALL
    )
    assert plan.best is not None
    assert plan.best["label"] == "h100-sxm bf16 TP1 × 1"
    assert plan.best["usd_per_hour"] == pytest.approx(2.5)
    # $ per million output tokens: $2.50 / 3600 s × 1e6 / (≈ 200 tokens/s at 1 request/s).
    assert plan.best["usd_per_million_tokens"] == pytest.approx(2.5 / 3600 * 1e6 / 200, rel=0.25)


def test_dearer_gpu_wins_when_the_cheaper_cannot_meet_the_itl() -> None:
    # Every decode step of Llama-3.1-8B BF16 reads its 16.06 GB of weights: on an H100 at the
    # datasheet's 3.35 TB/s that alone is 4.79 ms, so no count of H100s meets a 4.7 ms ITL.
    # A B200 reads them in 16.06 / 7.7 = 2.09 ms and the fitted step model puts its decode step
    # at ~4.4 ms: one B200 meets it, at more than twice the H100's price.
    plan = plan_fleet(
        LIGHT,
        LatencySLO(1.0, 0.0047),
        prices_usd={"h100-sxm": 2.5, "b200": 5.5},
        estimate_margin=2.0,
        **SMALL,
    )
    assert plan.best is not None
    assert plan.best["gpu_key"] == "b200"
    assert plan.best["gpus"] == 1
    h100 = plan.candidates[
        (plan.candidates["gpu_key"] == "h100-sxm") & plan.candidates["simulated"]
    ]
    assert len(h100) and not h100["ok"].any()
    assert (h100["sim_itl_p95_s"] > 0.0047).all()


def test_infeasible_objective_gives_a_clear_result() -> None:
    # 4 ms is below even the B200's fitted step (~4.4 ms) and the H100's weight-read floor.
    plan = plan_fleet(
        LIGHT, LatencySLO(1.0, 0.004), prices_usd={"h100-sxm": 2.5, "b200": 5.5}, **SMALL
    )
    assert not plan.feasible and plan.best is None
    assert plan.message.startswith("no ")
    assert "4 ms" in plan.message
    assert plan.as_dict()["feasible"] is False


def test_pareto_front_is_non_dominated() -> None:
    plan = plan_fleet(
        FleetDemand(rate_per_s=4.0, prompt_tokens=2000, output_tokens=100),
        LatencySLO(1.0, 0.050),
        prices_usd={"h100-sxm": 2.5, "l40s": 1.2},
        precisions=("bf16", "fp8"),
        tps=(1,),
        requests=60,
        max_gpus=4,
        max_shapes=4,
        rounds=0,
    )
    sim = plan.candidates[plan.candidates["simulated"]]
    front = plan.pareto
    assert len(front) >= 1
    for _, f in front.iterrows():
        better = sim[
            (sim["usd_per_hour"] <= f["usd_per_hour"])
            & (sim["sim_ttft_p95_s"] <= f["sim_ttft_p95_s"])
            & (
                (sim["usd_per_hour"] < f["usd_per_hour"])
                | (sim["sim_ttft_p95_s"] < f["sim_ttft_p95_s"])
            )
        ]
        assert better.empty, f"{f['label']} is dominated"
    # Every simulated fleet off the front is beaten by one on it.
    for _, r in sim.iterrows():
        if r["label"] in set(front["label"]):
            continue
        assert (
            (front["usd_per_hour"] <= r["usd_per_hour"])
            & (front["sim_ttft_p95_s"] <= r["sim_ttft_p95_s"])
        ).any()


def test_pareto_front_by_hand() -> None:
    f = pd.DataFrame(
        {"usd_per_hour": [4.0, 2.0, 2.0, 6.0, 5.0], "sim_ttft_p95_s": [0.5, 0.9, 0.7, 0.2, 0.6]}
    )
    # (2, 0.7) beats (2, 0.9); (5, 0.6) is beaten by (4, 0.5).
    got = pareto_front(f)
    assert got["usd_per_hour"].tolist() == [2.0, 4.0, 6.0]
    assert got["sim_ttft_p95_s"].tolist() == [0.7, 0.5, 0.2]


def test_estimate_is_unstable_past_the_prefill_capacity() -> None:
    # A 2,000-token prompt of Llama-3.1-8B needs at least 2 × 8.03e9 × 2000 = 32 TFLOP: 32.5 ms
    # at an H100's 989 TFLOP/s peak. 40 requests/s would need 1.3 s of prefill per second.
    e = estimate_fleet(
        FleetCandidate("h100-sxm", "bf16", 1, 1), FleetDemand(rate_per_s=40.0), "llama-3.1-8b"
    )
    assert math.isinf(e.ttft_p95_s)
    # Four replicas take 10/s each: 0.33 s or more of prefill per second, stable.
    e4 = estimate_fleet(
        FleetCandidate("h100-sxm", "bf16", 1, 4), FleetDemand(rate_per_s=40.0), "llama-3.1-8b"
    )
    assert math.isfinite(e4.ttft_p95_s) and 0.32 < e4.prefill_utilization < 1


def test_bad_input_names_the_argument() -> None:
    with pytest.raises(ValueError, match="users or rate_per_s"):
        FleetDemand()
    with pytest.raises(ValueError, match="itl_s"):
        LatencySLO(1.0, 0)
    with pytest.raises(ValueError, match="max_gpus"):
        plan_fleet(LIGHT, LatencySLO(1, 0.05), max_gpus=0)
    with pytest.raises(ValueError, match=r"prices_usd\['h100-sxm'\]"):
        plan_fleet(LIGHT, LatencySLO(1, 0.05), prices_usd={"h100-sxm": -1})


def test_dask_path_gives_the_local_answer(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    import dask

    kw = {
        "prices_usd": {"h100-sxm": 2.5, "l40s": 1.2},
        "precisions": ("bf16",),
        "tps": (1,),
        "requests": 40,
        "max_gpus": 3,
        "max_shapes": 3,
        "rounds": 1,
    }
    demand = FleetDemand(rate_per_s=3.0, prompt_tokens=1000, output_tokens=100)
    slo = LatencySLO(0.5, 0.030)
    local = plan_fleet(demand, slo, workers=2, **kw)
    with (
        dask.config.set({"temporary-directory": str(tmp_path)}),  # its scratch space
        distributed.LocalCluster(
            processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        remote = plan_fleet(demand, slo, client=client, **kw)
    assert local.simulations == remote.simulations > 0
    pd.testing.assert_frame_equal(local.candidates, remote.candidates)
    assert local.best == remote.best


def test_cli_plan_fleet_json_names_the_cheapest_fleet() -> None:
    r = run_cli(
        "plan-fleet", "--rate", "1", "--prompt-tokens", "200", "--output-tokens", "200",
        "--p95-ttft-s", "1", "--p95-itl-ms", "50", "--price", "h100-sxm=2.5",
        "--price", "b200=5.5", "--max-gpus", "2", "--requests", "40", "--workers", "1",
        "--no-disaggregation", "--json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["feasible"] is True
    assert data["best"]["gpu_key"] == "h100-sxm" and data["best"]["gpus"] == 1
    assert data["prices_usd_per_gpu_hour"] == {"h100-sxm": 2.5, "b200": 5.5}


def test_chunk_budget_reaches_the_engine_and_the_label() -> None:
    c = FleetCandidate("h100-sxm", "fp8", 1, 6, chunk_tokens=2048)
    assert c.config("llama-3.1-8b").max_num_batched_tokens == 2048
    assert c.label == "h100-sxm fp8 TP1 chunk 2048 × 6"
    # The default budget is the engine's own (vLLM's 8,192).
    assert (
        FleetCandidate("h100-sxm", "fp8", 1, 6).config("llama-3.1-8b").max_num_batched_tokens
        == 8192
    )
    with pytest.raises(ValueError, match="chunk_tokens"):
        FleetCandidate("h100-sxm", "fp8", 1, 6, chunk_tokens=0)
