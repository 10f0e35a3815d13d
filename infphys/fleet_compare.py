"""From one GPU to a fleet, side by side: TP against replicas, routers, disaggregation, Little.

Each function runs a few fleets through the virtual-time simulator
(:func:`~infphys.sim.fleet.simulate_fleet`, :func:`~infphys.sim.fleet.simulate_disaggregated`)
on the same seeded workload and returns one row per fleet with :func:`fleet_summary`'s figures,
so a chapter, a lab and a test read the same numbers. Lab 13 and the fleet chapter show them.

Worked example (simulated): two H100s serving Llama-3.1-8B BF16, 6 requests/s of 2,000 → 200
tokens (:func:`tp_scenario`), as one TP2 instance or two TP1 replicas
(:func:`compare_tp_replicas`): TP2's shorter step gives a p95 ITL of about 7 ms against 9 ms
and a p95 TTFT of about 72 ms against 118 ms, at the same throughput.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from infphys import stats
from infphys._check import positive_int
from infphys.sim.config import EngineConfig
from infphys.sim.fleet import ROUTERS, FleetResult, simulate_disaggregated, simulate_fleet
from infphys.sim.workload import Workload

__all__ = [
    "bursty_scenario",
    "compare_disaggregation",
    "compare_routers",
    "compare_tp_replicas",
    "fleet_summary",
    "long_prompt_scenario",
    "tp_scenario",
]


def bursty_scenario(
    replicas: int = 2, *, rate_per_replica_s: float = 4.0, requests: int = 600, seed: int = 0
) -> tuple[EngineConfig, Workload]:
    """Router choice under bursty load: H200s (Llama-3.1-8B BF16) of 8 seats each, answers of
    geometric length (mean 200 tokens, capped at 2,000: as many short as long), Poisson
    arrivals at ``rate_per_replica_s`` × replicas, 200-token prompts."""
    from infphys.sim.config import OutputLengths

    n = positive_int("replicas", replicas)
    cfg = EngineConfig.build(
        "h200-sxm", "llama-3.1-8b", max_num_seqs=8,
        output_lengths=OutputLengths("geometric", mean_tokens=200),
    )  # fmt: skip
    w = Workload.open(
        rate_per_replica_s * n, requests, prompt_tokens=200, max_tokens=2000, seed=seed
    )
    return cfg, w


def long_prompt_scenario(
    gpus: int = 2, *, rate_per_gpu_s: float = 3.5, requests: int = 120, seed: int = 0
) -> tuple[EngineConfig, Workload]:
    """When disaggregation pays: 4,000-token prompts and 16-token answers on H200s
    (Llama-3.1-8B BF16), Poisson arrivals at ``rate_per_gpu_s`` × gpus.

    Short answers and 3.5 requests/s per GPU keep a colocated decoder's stretched gaps (a
    prefill step of about 120 ms in place of a 7 ms decode step) above 5 % of all gaps, so the
    p95 ITL shows them: on two GPUs about 8 % of gaps are stretched."""
    g = positive_int("gpus", gpus)
    cfg = EngineConfig.build("h200-sxm", "llama-3.1-8b")
    w = Workload.open(
        rate_per_gpu_s * g, requests, prompt_tokens=4000, max_tokens=16, ignore_eos=True,
        seed=seed,
    )  # fmt: skip
    return cfg, w


def tp_scenario(
    *, rate_per_s: float = 6.0, requests: int = 300, seed: int = 0
) -> tuple[EngineConfig, Workload]:
    """TP against replicas: H100s (Llama-3.1-8B BF16), 2,000 → 200 tokens, Poisson arrivals."""
    cfg = EngineConfig.build("h100-sxm", "llama-3.1-8b")
    w = Workload.open(
        rate_per_s, requests, prompt_tokens=2000, max_tokens=200, ignore_eos=True,
        warmup=requests // 10, seed=seed,
    )  # fmt: skip
    return cfg, w


def fleet_summary(result: FleetResult) -> dict[str, Any]:
    """A fleet run's figures: p50/p95 TTFT, p95 ITL, throughput, and Little's Law across it.

    ``in_flight_littles`` = completed requests/s × mean end-to-end latency (L = λW over the
    whole fleet); ``in_flight_per_replica`` divides it by the replicas. Measured requests only.
    """
    frame = stats.measured(result.records)
    ok = frame[frame["status"] == "ok"]
    ttft = stats.percentiles(ok["ttft_s"].astype(float), (50, 95))
    itl = stats.percentiles(stats.itl_values(frame), (50, 95))
    tput = stats.throughput(frame)
    e2e = float(ok["e2e_s"].astype(float).mean()) if len(ok) else math.nan
    in_flight = tput.requests_per_s * e2e
    n = len(result.replicas) or 1
    return {
        "replicas": n,
        "gpus": sum(c.tp for c in result.replicas),
        "ttft_p50_s": ttft["p50"],
        "ttft_p95_s": ttft["p95"],
        "itl_p50_s": itl["p50"],
        "itl_p95_s": itl["p95"],
        "requests_per_s": tput.requests_per_s,
        "output_tokens_per_s": tput.output_tokens_per_s,
        "e2e_mean_s": e2e,
        "in_flight_littles": in_flight,
        "in_flight_per_replica": in_flight / n,
        "completed": len(ok),
    }


def compare_routers(
    config: EngineConfig,
    replicas: int,
    workload: Workload,
    *,
    routers: Sequence[str] = ROUTERS,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per router: ``replicas`` copies of ``config`` under the same ``workload``.

    Under Poisson arrivals with varied output lengths, round-robin sends a request to a replica
    still busy with long answers while another idles; least-outstanding looks at the queues.
    """
    n = positive_int("replicas", replicas)
    rows = []
    for r in routers:
        res = simulate_fleet([config] * n, workload, router=r, seed=seed, timeseries=False)
        rows.append({"router": r, **fleet_summary(res)})
    return pd.DataFrame(rows)


def compare_tp_replicas(
    config: EngineConfig, gpus: int, workload: Workload, *, seed: int = 0
) -> pd.DataFrame:
    """The same ``gpus`` GPUs as one instance of TP = ``gpus`` and as ``gpus`` TP1 replicas.

    Rows ``layout`` ``TP{gpus} × 1`` and ``TP1 × {gpus}``, least-outstanding routing.
    """
    g = positive_int("gpus", gpus)
    rows = []
    for tp, n in ((g, 1), (1, g)):
        cfg = config.with_(tp=tp)
        res = simulate_fleet(
            [cfg] * n, workload, router="least-outstanding", seed=seed, timeseries=False
        )
        rows.append({"layout": f"TP{tp} × {n}", "tp": tp, **fleet_summary(res)})
    return pd.DataFrame(rows)


def compare_disaggregation(
    config: EngineConfig,
    gpus: int,
    workload: Workload,
    *,
    prefill_replicas: Sequence[int] | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """``gpus`` TP1 GPUs colocated, then split P prefill + (gpus − P) decode, per P.

    Rows: ``layout`` (``colocated × N`` or ``P prefill + D decode``), ``prefill_replicas``
    (0: colocated) and :func:`fleet_summary`. Default P: every split from 1 to gpus − 1.
    """
    g = positive_int("gpus", gpus)
    if g < 2:
        raise ValueError(f"gpus must be at least 2 to split prefill from decode (got {gpus})")
    splits = list(range(1, g)) if prefill_replicas is None else list(prefill_replicas)
    for p in splits:
        if not (isinstance(p, int) and 1 <= p < g):
            raise ValueError(
                f"prefill_replicas must hold whole numbers in [1, {g - 1}] (got {p!r})"
            )
    kw: dict[str, Any] = {"router": "least-outstanding", "seed": seed, "timeseries": False}
    res = simulate_fleet([config] * g, workload, **kw)
    rows = [{"layout": f"colocated × {g}", "prefill_replicas": 0, **fleet_summary(res)}]
    for p in splits:
        res = simulate_disaggregated([config] * p, [config] * (g - p), workload, **kw)
        rows.append(
            {"layout": f"{p} prefill + {g - p} decode", "prefill_replicas": p, **fleet_summary(res)}
        )
    return pd.DataFrame(rows)
