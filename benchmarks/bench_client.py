"""Benchmark: is infphys's load generator fast and honest enough to measure a server?

Three checks, each printing its figure beside its target:

1. Request rate against a 0 ms loopback server (8-token streamed answers) at concurrency 64 and
   256: infphys's ``run_closed_loop`` (records, SSE parsing, JSON per chunk, the run file) against a
   bare ~80-line aiohttp client written below, run alternately against the same server process.
   Target: infphys ≥ 0.6 × the reference.
2. Accuracy against a server with a fixed 50 ms delay at concurrency 64: infphys's reported p50
   end-to-end latency minus 50 ms. Target: within 2 ms. Printed beside it: what the server
   says it delivered, the bare aiohttp client's p50, and infphys on its aiohttp stack.
3. Streamed chunks received and timestamped per second (long answers, 2,000 tokens each).
   Target: ≥ 30,000 chunks/s.

The server is ``benchmarks/precise_server.py`` in a separate process: it answers at its stated
delay to within a few microseconds, timed from the kernel's receipt of each request, and reports
the delay it delivered — a yardstick. (The aiohttp stub of ``infphys.measure.stub`` is not one:
at 1,280 requests/s on one core its own timers run 2–5 ms late.) Client and server are pinned to
different CPUs when there are two. Run it with ``python benchmarks/bench_client.py`` (about a
minute; ``--quick`` for a smoke run).

Timings on a shared machine vary from run to run, so each rate is the median of three runs
alternating the two clients, and the client's own CPU time per request (``time.thread_time``
of the event-loop thread; the server is another process) is printed too: their ratio is what
the two clients would reach on an idle core, and it barely moves when other work competes for
the CPUs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp

from infphys.measure import ChatClient, Target, run_closed_loop
from infphys.measure.client import HttpStack
from infphys.records import RequestRecord
from infphys.stats import percentiles

MODEL = "meta/llama-3.1-8b-instruct"
PROMPT_TOKENS = 16
OVERALL_LIMIT_S = 300.0
# With two or more CPUs the client (this process) and the server each get one of their own.
PINNED = hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) >= 2
CLIENT_CPU, SERVER_CPU = sorted(os.sched_getaffinity(0))[:2] if PINNED else (0, 0)


def _pin(cpu: int) -> Callable[[], None] | None:
    if not PINNED:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


class PreciseServer:
    """``benchmarks/precise_server.py`` in its own process (pinned to the server CPU)."""

    def __init__(self, delay_ms: float, tokens: int) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).with_name("precise_server.py")),
                "--delay-ms",
                str(delay_ms),
                "--tokens",
                str(tokens),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=_pin(SERVER_CPU),
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.close()
            raise RuntimeError(f"server did not start: {line!r}")
        self.url = line.rsplit(" ", 1)[-1].strip()

    def delivered(self) -> dict[str, float]:
        """Delays the server delivered since the last call: n, min_ms, p50_ms, p95_ms, max_ms."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        words = self.proc.stdout.readline().split()[1:]
        return {k: float(v) for k, v in (w.split("=") for w in words)}

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


@contextmanager
def precise_server(delay_ms: float, tokens: int) -> Iterator[PreciseServer]:
    server = PreciseServer(delay_ms, tokens)
    try:
        yield server
    finally:
        server.close()


# -- the reference: a bare aiohttp streaming client ---------------------------------------------


async def reference_client(
    base_url: str, concurrency: int, requests: int
) -> tuple[float, list[float], int, float]:
    """Closed loop with a bare aiohttp client: (requests/s, e2e latencies, chunks, CPU s).

    It does the least a streaming benchmark must: send, read the SSE lines, timestamp each data
    line, stop at ``[DONE]`` and read to the end of the body so the connection is reused.
    """
    url = base_url + "/v1/chat/completions"
    prompt = " ".join(["hello"] * PROMPT_TOKENS)
    body = json.dumps(
        {
            "model": MODEL,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": 8,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    ).encode()
    headers = {"Content-Type": "application/json"}
    latencies: list[float] = []
    chunks = 0
    counter = iter(range(requests))

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal chunks
        for _ in counter:
            t = time.perf_counter()
            stamps: list[float] = []
            async with session.post(url, data=body, headers=headers) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"HTTP {resp.status}")
                async for line in resp.content:
                    if line.startswith(b"data:"):
                        stamps.append(time.perf_counter())
            chunks += len(stamps)
            latencies.append(stamps[-1] - t if stamps else time.perf_counter() - t)

    connector = aiohttp.TCPConnector(limit=0)
    cpu0 = time.thread_time()
    async with aiohttp.ClientSession(connector=connector) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return requests / elapsed, latencies, chunks, time.thread_time() - cpu0


# -- infphys -------------------------------------------------------------------------------------


async def infphys_ok_records(
    base_url: str,
    concurrency: int,
    requests: int,
    max_tokens: int,
    out: Path,
    **options: Any,
) -> list[RequestRecord]:
    """The records of one closed loop through infphys's load generator (writing its run file),
    all successful: a ``RuntimeError`` shows the first failures otherwise."""
    result = await run_closed_loop(
        Target(base_url=base_url, model=MODEL),
        concurrency=concurrency,
        requests=requests,
        prompt_tokens=PROMPT_TOKENS,
        max_tokens=max_tokens,
        path=out,
        duration_s=120.0,
        drain_s=10.0,
        **options,
    )
    ok = [r for r in result.records if r.ok]
    if len(ok) != requests:
        bad = [r for r in result.records if not r.ok][:3]
        raise RuntimeError(f"{requests - len(ok)} requests failed, e.g. {bad}")
    return ok


async def infphys_client(
    base_url: str,
    concurrency: int,
    requests: int,
    max_tokens: int,
    out: Path,
    http_stack: HttpStack = "auto",
) -> tuple[float, list[float], int, float]:
    """The same closed loop through infphys's load generator (writing its run file)."""
    cpu0 = time.thread_time()
    t0 = time.perf_counter()
    ok = await infphys_ok_records(
        base_url, concurrency, requests, max_tokens, out, http_stack=http_stack
    )
    elapsed = time.perf_counter() - t0
    latencies = [r.e2e_s for r in ok if r.e2e_s is not None]
    chunks = sum(len(r.chunk_times_s) for r in ok)
    return len(ok) / elapsed, latencies, chunks, time.thread_time() - cpu0


async def main(quick: bool) -> int:
    scale = 0.25 if quick else 1.0
    failures: list[str] = []
    tmp = Path(tempfile.mkdtemp(prefix="infphys-bench-"))
    if PINNED:
        os.sched_setaffinity(0, {CLIENT_CPU})
    where = f"client on CPU {CLIENT_CPU}, server on CPU {SERVER_CPU}" if PINNED else "unpinned"
    print(f"infphys client benchmark (server in a separate process; {where})")
    print(f"infphys sends with: {ChatClient(Target(base_url='http://127.0.0.1')).http_client}\n")

    # 1. request rate, 0 ms server
    with precise_server(0.0, 8) as server:
        url = server.url
        await reference_client(url, 16, 200)  # warm both sides up
        for c in (64, 256):
            n = int(max(c * 8, 4000 * scale))
            ref_rates, inf_rates, ref_cpu, inf_cpu = [], [], [], []
            for rep in range(3):
                r = await reference_client(url, c, n)
                i = await infphys_client(url, c, n, 8, tmp / f"rate-c{c}-{rep}.jsonl")
                ref_rates.append(r[0])
                inf_rates.append(i[0])
                ref_cpu.append(r[3] / n)
                inf_cpu.append(i[3] / n)
            ref, inf = statistics.median(ref_rates), statistics.median(inf_rates)
            ratio = inf / ref
            cpu_ratio = statistics.median(ref_cpu) / statistics.median(inf_cpu)
            print(
                f"c={c:<4} reference {ref:6.0f} req/s   infphys {inf:6.0f} req/s   "
                f"ratio {ratio:.2f} (target >= 0.6)\n"
                f"       runs: ref {', '.join(f'{x:.0f}' for x in ref_rates)}; "
                f"infphys {', '.join(f'{x:.0f}' for x in inf_rates)}\n"
                f"       client CPU per request: ref {statistics.median(ref_cpu) * 1e6:.0f} us, "
                f"infphys {statistics.median(inf_cpu) * 1e6:.0f} us -> CPU-bound ratio "
                f"{cpu_ratio:.2f} (what an idle core would give)"
            )
            if ratio < 0.6:
                failures.append(f"rate ratio at c={c}: {ratio:.2f}")

    # 2. accuracy, 50 ms server
    with precise_server(50.0, 8) as server:
        url = server.url
        await reference_client(url, 64, 128)
        server.delivered()
        n = int(max(640, 2560 * scale))
        inf_lat = (await infphys_client(url, 64, n, 8, tmp / "accuracy.jsonl"))[1]
        inf_server = server.delivered()
        ref_lat = (await reference_client(url, 64, n))[1]
        ref_server = server.delivered()
        aio_lat = (await infphys_client(url, 64, n, 8, tmp / "acc-aio.jsonl", "aiohttp"))[1]
        aio_server = server.delivered()
        inf_p50 = percentiles(inf_lat, (50,))["p50"]
        err_ms = (inf_p50 - 0.050) * 1e3
        print(
            f"\n50 ms server, c=64: infphys p50 e2e {inf_p50 * 1e3:.2f} ms, error {err_ms:+.2f} ms "
            f"(target within 2 ms)\n"
            f"   the server delivered p50 {inf_server['p50_ms']:.3f} ms, "
            f"p95 {inf_server['p95_ms']:.3f} ms over {inf_server['n']:.0f} requests"
        )
        for name, lat, srv in (
            ("bare aiohttp client", ref_lat, ref_server),
            ("infphys on aiohttp (http_stack='aiohttp')", aio_lat, aio_server),
        ):
            p50 = percentiles(lat, (50,))["p50"]
            print(
                f"   {name}: p50 {p50 * 1e3:.2f} ms, error {(p50 - 0.050) * 1e3:+.2f} ms "
                f"(server delivered p50 {srv['p50_ms']:.3f} ms)"
            )
        if abs(err_ms) > 2.0:
            failures.append(f"p50 error {err_ms:+.2f} ms")
        for c in (1, 8):
            lat = (await infphys_client(url, c, 40 * c, 8, tmp / f"accuracy-c{c}.jsonl"))[1]
            p50 = percentiles(lat, (50,))["p50"]
            print(
                f"   (c={c}: infphys p50 {p50 * 1e3:.2f} ms, error {(p50 - 0.050) * 1e3:+.2f} ms)"
            )

    # 3. chunks per second, long answers
    tokens = 2000
    with precise_server(0.0, tokens) as server:
        n = int(max(32, 160 * scale))
        t0 = time.perf_counter()
        _, _, chunks, cpu_s = await infphys_client(server.url, 8, n, tokens, tmp / "chunks.jsonl")
        elapsed = time.perf_counter() - t0
        rate = chunks / elapsed
        print(
            f"\nstreamed chunks received and timestamped: {rate:,.0f}/s "
            f"({chunks:,} chunks of {n} answers x {tokens} tokens in {elapsed:.2f} s; "
            f"target >= 30,000/s); per CPU-second of the client: {chunks / cpu_s:,.0f}"
        )
        if rate < 30_000:
            failures.append(f"chunks/s {rate:,.0f}")

    print("\nresult:", "all targets met" if not failures else "MISSED: " + "; ".join(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller runs (a smoke test)")
    args = ap.parse_args()

    async def bounded() -> int:
        async with asyncio.timeout(OVERALL_LIMIT_S):
            return await main(args.quick)

    sys.exit(asyncio.run(bounded()))
