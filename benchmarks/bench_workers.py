"""Benchmark: does the load generator scale past one core with ``workers=N``, and stay exact?

Against ``benchmarks/precise_server.py`` (a server whose delay is known to the microsecond, in its
own process; see ``bench_client.py``), for workers = 1, 2 (and 4 with ``--max-workers 4``):

1. Requests/s at concurrency 256, 0 ms server, 8-token streamed answers, beside the bare ~80-line
   aiohttp client of ``bench_client.py`` in one process (the reference). A rate is requests over
   the span from the first send to the last end, read from the run's own records, so the worker
   processes' start-up (a fresh interpreter each) is not counted. Target: rising with workers,
   and workers = N ≥ 2 above the one-process reference when there are cores to spare.
2. Streamed chunks received and timestamped per second (long answers, 2,000 tokens each,
   concurrency 16). Target: rising with workers (``bench_client.py`` asks one process for
   30,000/s).
3. Accuracy at concurrency 256 against a 50 ms server: the run's p50 end-to-end latency minus
   the p50 delay the server says it delivered (receipt of the request to the write of the
   answer, stamped by the server's kernel), so that what is left is the client's timing error
   plus the loopback's transit. Target: within 0.1 ms for every N. The p50 minus the nominal
   50 ms is printed too: on a loaded machine the server itself runs late, which is not the
   client's error.

Each figure is printed beside its target. The server is pinned to the last CPU when there are
three or more (the load generator's processes share the others); with two CPUs nothing is
pinned, and a second worker then competes with the server and the coordinator for two cores, so
scaling shows only on machines with more cores. ``python benchmarks/bench_workers.py`` takes
about two minutes; ``--quick`` is a smoke run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_client import PreciseServer, infphys_ok_records, reference_client

from infphys.stats import percentiles

OVERALL_LIMIT_S = 600.0
CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
PIN_SERVER = len(CPUS) >= 3
P50_TARGET_MS = 0.1


def _server(delay_ms: float, tokens: int) -> PreciseServer:
    server = PreciseServer(delay_ms, tokens)
    if PIN_SERVER:
        os.sched_setaffinity(server.proc.pid, {CPUS[-1]})
    elif CPUS:
        os.sched_setaffinity(server.proc.pid, set(CPUS))  # bench_client pins it; undo that
    return server


async def _infphys(
    url: str, workers: int, concurrency: int, requests: int, max_tokens: int, out: Path
) -> tuple[float, float, list[float]]:
    """(requests/s, chunks/s, e2e latencies) of one closed-loop run, over its own records."""
    ok = await infphys_ok_records(
        url, concurrency, requests, max_tokens, out, workers=workers, log_notes=False
    )
    first = min(r.sent_s for r in ok)
    last = max(r.end_s for r in ok if r.end_s is not None)
    span = last - first
    chunks = sum(len(r.chunk_times_s) for r in ok)
    latencies = [r.e2e_s for r in ok if r.e2e_s is not None]
    return len(ok) / span, chunks / span, latencies


async def main(quick: bool, max_workers: int) -> int:
    scale = 0.25 if quick else 1.0
    counts = [n for n in (1, 2, 4) if n <= max_workers]
    tmp = Path(tempfile.mkdtemp(prefix="infphys-bench-workers-"))
    where = f"server pinned to CPU {CPUS[-1]}" if PIN_SERVER else "nothing pinned"
    print(f"infphys load-generator workers benchmark ({len(CPUS)} CPUs, {where})\n")
    failures: list[str] = []

    # 1. requests/s, c = 256, 0 ms server
    server = _server(0.0, 8)
    try:
        n = int(max(2048, 12_000 * scale))
        await reference_client(server.url, 16, 200)  # warm both sides up
        ref = statistics.median([(await reference_client(server.url, 256, n))[0] for _ in range(2)])
        print(f"requests/s at c=256 ({n} requests, 8-token answers):")
        print(f"   bare aiohttp client, one process: {ref:7,.0f} req/s (the reference)")
        rates: dict[int, float] = {}
        for w in counts:
            runs = [
                (await _infphys(server.url, w, 256, n, 8, tmp / f"rate-w{w}-{k}.jsonl"))[0]
                for k in range(2)
            ]
            rates[w] = statistics.median(runs)
            print(
                f"   infphys workers={w}: {rates[w]:7,.0f} req/s, {rates[w] / ref:.2f}x the "
                f"reference, {rates[w] / rates[1]:.2f}x workers=1 (target: rising with workers)"
            )
    finally:
        server.close()

    # 2. chunks/s, long answers
    tokens = 2000
    server = _server(0.0, tokens)
    try:
        n = int(max(32, 160 * scale))
        print(f"\nstreamed chunks/s at c=16 ({n} answers x {tokens} tokens):")
        chunk_rates: dict[int, float] = {}
        for w in counts:
            _, chunk_rates[w], _ = await _infphys(
                server.url, w, 16, n, tokens, tmp / f"chunks-w{w}.jsonl"
            )
            print(
                f"   infphys workers={w}: {chunk_rates[w]:9,.0f} chunks/s, "
                f"{chunk_rates[w] / chunk_rates[1]:.2f}x workers=1 (target: rising with workers)"
            )
    finally:
        server.close()

    # 3. accuracy at c = 256 against a 50 ms server
    server = _server(50.0, 8)
    try:
        n = int(max(2048, 8192 * scale))
        await reference_client(server.url, 64, 256)
        server.delivered()
        print(f"\naccuracy at c=256 against a 50 ms server ({n} requests):")
        for w in counts:
            _, _, lat = await _infphys(server.url, w, 256, n, 8, tmp / f"acc-w{w}.jsonl")
            delivered = server.delivered()
            p50_ms = percentiles(lat, (50,))["p50"] * 1e3
            err_ms = p50_ms - delivered["p50_ms"]
            ok = abs(err_ms) < P50_TARGET_MS
            print(
                f"   infphys workers={w}: p50 e2e {p50_ms:.3f} ms; the server delivered p50 "
                f"{delivered['p50_ms']:.3f} ms over {delivered['n']:.0f} requests; error "
                f"{err_ms:+.3f} ms (target within {P50_TARGET_MS} ms: {'met' if ok else 'MISSED'})"
                f"; p50 - 50 ms nominal: {p50_ms - 50.0:+.3f} ms"
            )
            if not ok:
                failures.append(f"p50 error {err_ms:+.3f} ms with workers={w}")
    finally:
        server.close()

    print("\nresult:", "all targets met" if not failures else "MISSED: " + "; ".join(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller runs (a smoke test)")
    ap.add_argument(
        "--max-workers", type=int, default=2, choices=(1, 2, 4), help="largest worker count"
    )
    args = ap.parse_args()

    async def bounded() -> int:
        async with asyncio.timeout(OVERALL_LIMIT_S):
            return await main(args.quick, args.max_workers)

    t0 = time.perf_counter()
    code = asyncio.run(bounded())
    print(f"({time.perf_counter() - t0:.0f} s)")
    sys.exit(code)
