"""Benchmark of the simulator: speed, calibration, served vs simulated, keep-up, overload.

Run: ``.venv/bin/python benchmarks/bench_sim.py`` (about 2 minutes on a 2-core machine), with
``--overload-s 60`` for the bounded overload check (a minute more).

1. Speed: 10,000 requests of 1,000 prompt + 1,000 output tokens, Llama-3.1-8B BF16 on an H200,
   closed loop at concurrency 256, through the virtual-time driver; wall time against the 2 s
   target (best of 3, per-token times off, then on).
2. Calibration: simulated against published output tokens/s for every TensorRT-LLM row.
3. Served vs simulated at c = 64: ``infphys.measure.run_closed_loop`` against the real-time server
   (in this process, ``infphys.sim.serve``) against the virtual-time prediction of the same
   workload: mean TTFT and ITL, at ``time_scale`` 1 and 8.
4. Keep-up: closed loops at rising concurrency at ``time_scale`` 1 against the real-time server
   in its own process (``serve(process=True)``, as the CLI runs it) and in a thread of the
   measuring process (``serve()``, as the labs run it); the first concurrency where more than
   5 % of steps go out late (or the timeline stalls) is where this machine stops keeping up.
5. Overload (optional): 10× the capacity for N seconds against ``--max-queue``: no crash, 503s
   counted, ``/v1/health/live`` answering, memory (RSS) bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from infphys.measure import Target, open_loop, run_closed_loop  # noqa: E402
from infphys.measure.metrics import parse_metrics  # noqa: E402
from infphys.sim import (  # noqa: E402
    EngineConfig,
    OutputLengths,
    SimServer,
    Workload,
    calibrate,
    serve,
    simulate,
)
from infphys.sim.hosting import SimHandle  # noqa: E402

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def in_process_server(target: Target) -> SimServer:
    """The simulator server behind a target that ``serve()`` started in this process."""
    handle = target.simulator
    if not isinstance(handle, SimHandle) or handle.server is None:
        raise RuntimeError(f"{target.base_url} is not an in-process simulator")
    return handle.server


def speed() -> None:
    print("== 1. speed: 10,000 × (1,000 + 1,000) tokens, Llama-3.1-8B on H200, c = 256 ==")
    cfg = EngineConfig.build("h200", "llama-3.1-8b")
    wl = Workload.closed(256, 10_000, prompt_tokens=1000, max_tokens=1000)
    for keep in (False, True):
        walls = []
        for _ in range(3):
            t0 = time.perf_counter()
            res = simulate(cfg, wl, keep_chunk_times=keep)
            walls.append(time.perf_counter() - t0)
        s = res.summary()
        st = res.stats
        print(
            f"  per-token times {'kept' if keep else 'off '}: best {min(walls):.3f} s "
            f"(runs {', '.join(f'{w:.2f}' for w in walls)}), {min(walls) / 2.0:.2f}× the 2 s "
            f"target; {st.steps:,} steps, {st.stretch_steps:,} of them in {st.stretches:,} "
            f"fast-forwarded stretches; simulated {st.sim_duration_s:,.0f} s, "
            f"{s['output_tokens_per_s']:,.0f} output tokens/s"
        )


def calibration() -> float:
    print("== 2. calibration against TensorRT-LLM (trtllm-bench, offline, FP8) ==")
    t0 = time.perf_counter()
    results = calibrate()
    print(
        f"  {'row':48s} {'batch':>6s} {'tokens':>7s} {'published':>10s} {'simulated':>10s} "
        f"{'error':>7s}"
    )
    for r in results:
        print(
            f"  {r.row.label:48s} {r.max_num_seqs:6d} {r.max_num_batched_tokens:7d} "
            f"{r.row.measured_output_tokens_per_s:10,.0f} "
            f"{r.simulated_output_tokens_per_s:10,.0f} {100 * r.error:+6.1f}%"
        )
    worst = max(abs(r.error) for r in results)
    mean_abs = sum(abs(r.error) for r in results) / len(results)
    print(
        f"  largest |error| {100 * worst:.1f} %, mean |error| {100 * mean_abs:.1f} % "
        f"({time.perf_counter() - t0:.1f} s)"
    )
    return worst


def _means(recs: list[Any], scale: float) -> tuple[float, float]:
    ttft = float(np.mean([r.ttft_s for r in recs])) / scale
    itl = float(np.mean([g for r in recs for g in r.itl_s])) / scale
    return ttft, itl


def served_vs_simulated() -> None:
    print("== 3. served vs simulated, closed loop c = 64 (infphys.measure against serve()) ==")
    cfg = EngineConfig.build(
        "h200",
        "llama-3.1-8b",
        max_model_len=4096,
        output_lengths=OutputLengths("uniform", low_tokens=4, high_tokens=60),
    )
    for scale in (1.0, 8.0):
        with serve(config=cfg, time_scale=scale) as t:
            server = in_process_server(t)
            t0 = time.perf_counter()
            res = asyncio.run(
                run_closed_loop(
                    t,
                    concurrency=64,
                    requests=256,
                    warmup=64,
                    prompt_tokens=64,
                    max_tokens=60,
                )
            )
            wall = time.perf_counter() - t0
            st = server.stats
        served = [r for r in res.records if r.ok and not r.warmup]
        sim = simulate(
            cfg,
            Workload.closed(
                64, 256, warmup=64, prompt_tokens=served[0].prompt_tokens or 1, max_tokens=60
            ),
        )
        pred = [r for r in sim.records if r.ok and not r.warmup]
        (a_t, a_i), (b_t, b_i) = _means(served, scale), _means(pred, 1.0)
        print(
            f"  time_scale {scale:g}: TTFT served {1e3 * a_t:.2f} ms vs simulated {1e3 * b_t:.2f} "
            f"ms ({100 * (a_t / b_t - 1):+.1f} %); ITL {1e3 * a_i:.3f} vs {1e3 * b_i:.3f} ms "
            f"({100 * (a_i / b_i - 1):+.1f} %); server: {100 * st.late_fraction:.0f} % of "
            f"{st.steps} steps late, max lag {1e3 * st.max_lag_s:.0f} ms, {st.rebases} stalls, "
            f"kept up: {st.kept_up}; wall {wall:.1f} s"
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_process(
    port: int, extra: str = "", scale: float = 1.0, max_queue: int | None = None
) -> subprocess.Popen[str]:
    code = (
        "from infphys.sim import EngineConfig, SimServer, run_server\n"
        f"cfg = EngineConfig.build('h200', 'llama-3.1-8b', max_model_len=4096{extra})\n"
        f"run_server(SimServer(cfg, time_scale={scale}, max_queue={max_queue}), "
        f"'127.0.0.1', {port}, on_ready=lambda p: print('ready', flush=True))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    return proc


def _metrics(url: str) -> dict[str, float]:
    with _OPENER.open(url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("infphys_sim_"):
            name, value = line.split("{")[0], float(line.rsplit(" ", 1)[1])
            out[name] = value
    return out


def _keep_up_level(target: Target, cfg: EngineConfig, c: int, stats: Any) -> tuple[bool, str]:
    """One closed-loop level; ``stats()`` gives (steps, late steps, stall s) so far."""
    s0, l0, t0_stall = stats()
    t0 = time.perf_counter()
    res = asyncio.run(
        run_closed_loop(
            target, concurrency=c, requests=3 * c, warmup=c, prompt_tokens=128, max_tokens=240
        )
    )
    wall = time.perf_counter() - t0
    s1, l1, t1_stall = stats()
    steps, late, stall = s1 - s0, l1 - l0, t1_stall - t0_stall
    served = [r for r in res.records if r.ok and not r.warmup]
    sim = simulate(
        cfg,
        Workload.closed(
            c, 3 * c, warmup=c, prompt_tokens=served[0].prompt_tokens or 1, max_tokens=240
        ),
    )
    pred = [r for r in sim.records if r.ok and not r.warmup]
    (a_t, a_i), (b_t, b_i) = _means(served, 1.0), _means(pred, 1.0)
    frac = late / steps if steps else 0.0
    ok = frac <= 0.05 and stall == 0
    client = "client loop late" if res.warnings else "client ok"
    return ok, (
        f"c = {c:4d}: {100 * frac:5.1f} % of {steps:.0f} steps late, stalls {stall:.2f} s; "
        f"ITL served {1e3 * a_i:.2f} vs {1e3 * b_i:.2f} ms ({100 * (a_i / b_i - 1):+.1f} %), "
        f"TTFT {100 * (a_t / b_t - 1):+.1f} %; {'keeps up' if ok else 'FALLS BEHIND'} "
        f"(wall {wall:.1f} s, {client})"
    )


def keep_up(levels: list[int]) -> None:
    print("== 4. where the real-time server stops keeping up, time_scale 1 ==")
    # Answers of 16–240 tokens (seeded, uniform) so that closed-loop waves desynchronise.
    lengths = OutputLengths("uniform", low_tokens=16, high_tokens=240)
    cfg = EngineConfig.build("h200", "llama-3.1-8b", max_model_len=4096, output_lengths=lengths)
    model = "meta/llama-3.1-8b-instruct"

    print("  server in its own process (serve(process=True), as the CLI runs it):")
    first_bad = None
    with serve(config=cfg, process=True) as t:
        url = t.base_url

        def remote() -> tuple[float, float, float]:
            m = _metrics(url)
            return (
                m["infphys_sim_steps_total"],
                m["infphys_sim_late_steps_total"],
                m["infphys_sim_stall_seconds_total"],
            )

        for c in levels:
            ok, line = _keep_up_level(Target(base_url=url, model=model), cfg, c, remote)
            print("    " + line)
            if not ok and first_bad is None:
                first_bad = c
    print(f"    first level that falls behind: {first_bad or 'none'}")

    print("  server in a thread of this process (infphys.sim.serve, as the labs run it):")
    first_bad = None
    for c in levels:
        with serve(config=cfg) as t:
            server = in_process_server(t)

            def local(server: Any = server) -> tuple[float, float, float]:
                st = server.stats
                return float(st.steps), float(st.late_steps), st.stall_s_total

            ok, line = _keep_up_level(t, cfg, c, local)
        print("    " + line)
        if not ok and first_bad is None:
            first_bad = c
    print(f"    first level that falls behind: {first_bad or 'none'}")


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def overload(seconds: float) -> None:
    print(f"== 5. overload: 10× capacity for {seconds:g} s with --max-queue 32 ==")
    # 8 seats, 128 output tokens at ~6 ms per step: about 8 / 0.8 s = 10 requests/s served.
    port = _free_port()
    proc = _server_process(port, extra=", max_num_seqs=8", max_queue=32)
    url = f"http://127.0.0.1:{port}"
    target = Target(base_url=url, model="meta/llama-3.1-8b-instruct")
    rss = [_rss_mib(proc.pid)]
    health: list[int] = []

    async def probe_health(stop: asyncio.Event) -> None:
        import aiohttp

        async with aiohttp.ClientSession() as s:
            while not stop.is_set():
                try:
                    async with s.get(
                        url + "/v1/health/live", timeout=aiohttp.ClientTimeout(total=2)
                    ) as r:
                        health.append(r.status)
                except Exception:  # a failed probe is what we count
                    health.append(0)
                rss.append(_rss_mib(proc.pid))
                await asyncio.sleep(1.0)

    async def run() -> Any:
        stop = asyncio.Event()
        task = asyncio.create_task(probe_health(stop))
        try:
            return await open_loop(
                target,
                rate_per_s=100,
                requests=int(100 * seconds),
                prompt_tokens=128,
                max_tokens=128,
                duration_s=seconds,
                drain_s=30,
                arrival="poisson",
            )
        finally:
            stop.set()
            await task

    try:
        t0 = time.perf_counter()
        res = asyncio.run(run())
        wall = time.perf_counter() - t0
        alive = proc.poll() is None
        m = parse_metrics(_OPENER.open(url + "/metrics", timeout=10).read().decode())
        extra = _metrics(url)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    statuses: dict[str, int] = {}
    for r in res.records:
        key = "ok" if r.ok else f"{r.status}:{r.http_status or r.error_class}"
        statuses[key] = statuses.get(key, 0) + 1
    print(
        f"  {len(res.records)} requests in {wall:.0f} s: {json.dumps(statuses)}; server "
        f"refused {extra.get('infphys_sim_rejected_requests_total', 0):.0f} with 503; "
        f"still running: {alive}; /v1/health/live {sum(h == 200 for h in health)}/{len(health)} "
        f"probes answered 200; RSS {rss[0]:.0f} → max {max(rss):.0f} MiB; "
        f"waiting at the end {m['requests_waiting']:.0f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--overload-s",
        type=float,
        default=0.0,
        help="run the overload check for this many seconds (0: skip)",
    )
    ap.add_argument(
        "--levels", default="8,16,32,64,128,256", help="concurrencies of the keep-up check"
    )
    ap.add_argument("--skip-served", action="store_true", help="skip sections 3 and 4")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    speed()
    calibration()
    if not args.skip_served:
        served_vs_simulated()
        keep_up([int(x) for x in args.levels.split(",")])
    if args.overload_s > 0:
        overload(args.overload_s)
    else:
        print("== 5. overload: skipped (pass --overload-s 60) ==")


if __name__ == "__main__":
    main()
