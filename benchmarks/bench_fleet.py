"""Benchmark of fleet planning and Lab 13: wall time against targets, and the planner's answer.

Run: ``.venv/bin/python benchmarks/bench_fleet.py`` (a few minutes on a 2-core machine);
``--dask`` also runs the plan on a local Dask cluster (``pip install "infphys[dask]"``).

1. Lab 13 headless (``python labs/13_fleet.py``, the simulator only): wall time against the 60 s
   target.
2. The planner on a sizing question, 1,000 concurrent users of 2,000 → 200 tokens under
   p95 TTFT ≤ 1 s and p95 ITL ≤ 50 ms, with every GPU of the assumed price table, BF16 and FP8,
   TP 1/2/4, colocated and split: the answer, how many fleets were estimated and simulated, and
   the wall time (no target: it scales with the workers; printed for comparison).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from infphys.catalog import LatencySLO  # noqa: E402
from infphys.fleet_estimate import FleetDemand  # noqa: E402
from infphys.fleet_planning import plan_fleet  # noqa: E402

LAB_TARGET_S = 60.0


def bench_lab() -> None:
    env = {**os.environ, "NIM_BASE_URL": "http://127.0.0.1:9", "PYTHONPATH": str(ROOT)}
    env["INFPHYS_ANSWERS_DIR"] = tempfile.mkdtemp(prefix="infphys-bench-fleet-")
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(ROOT / "labs" / "13_fleet.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    wall = time.perf_counter() - t0
    verdict = "ok" if done.returncode == 0 and wall < LAB_TARGET_S else "MISSED"
    print(f"lab 13 headless: {wall:.1f} s (target < {LAB_TARGET_S:.0f} s) rc={done.returncode} "
          f"[{verdict}]")  # fmt: skip


def bench_plan(workers: int, dask: bool) -> None:
    demand = FleetDemand(users=1000, prompt_tokens=2000, output_tokens=200)
    slo = LatencySLO(1.0, 0.050)
    t0 = time.perf_counter()
    plan = plan_fleet(demand, slo, workers=workers)
    wall = time.perf_counter() - t0
    est = len(plan.candidates)
    print(f"plan (local, {workers} workers): {wall:.1f} s, {est} fleets in the table, "
          f"{plan.simulations} simulated")  # fmt: skip
    print(f"  {plan.message}")
    if plan.best:
        b = plan.best
        print(f"  ${b['usd_per_million_tokens']:.3f} per million output tokens, "
              f"{b['output_tokens_per_s']:,.0f} output tokens/s, estimate: p95 TTFT "
              f"{b['est_ttft_p95_s']:.3f} s, ITL {b['est_itl_p95_s'] * 1e3:.1f} ms")  # fmt: skip
    if dask:
        from distributed import Client, LocalCluster

        with (
            LocalCluster(  # type: ignore[no-untyped-call]
                n_workers=workers, threads_per_worker=1, dashboard_address=None
            ) as c,
            Client(c) as client,  # type: ignore[no-untyped-call]
        ):
            t0 = time.perf_counter()
            other = plan_fleet(demand, slo, client=client)
            wall = time.perf_counter() - t0
        same = other.best == plan.best
        print(f"plan (Dask LocalCluster, {workers} workers): {wall:.1f} s, same answer: {same}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--dask", action="store_true")
    ap.add_argument("--skip-lab", action="store_true")
    args = ap.parse_args()
    if not args.skip_lab:
        bench_lab()
    bench_plan(args.workers, args.dask)


if __name__ == "__main__":
    main()
