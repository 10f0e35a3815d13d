"""The load generator in several processes (``workers=N``): one run, global load, seeds, stops.

The plan (who sends what) is checked against hand-split numbers; whole runs go against the
loopback stub with two worker processes and are checked from their run files: every request
once, time order, the global concurrency from the records' own send and end times, the open
loop's count and rate, and the worker seeds. The stop tests run ``infphys sweep --workers 2``
as real subprocesses (one per signal, all started together so that their start-ups overlap)
and send SIGINT, SIGTERM, SIGHUP or SIGKILL to the coordinator's pid only.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from procs import alive, children
from typer.testing import CliRunner

from infphys import stats
from infphys.cli import app
from infphys.measure import Level, StubConfig, StubServer, run_closed_loop, run_levels
from infphys.measure._worker_plan import (
    plan_closed,
    plan_open,
    split_concurrency,
    ticket_batch,
    worker_seed,
)
from infphys.records import RequestRecord, read_run

REPO = Path(__file__).resolve().parents[1]

# -- the plan --------------------------------------------------------------------------------


def test_concurrency_is_split_by_hand() -> None:
    assert split_concurrency(10, 4) == [3, 3, 2, 2]
    assert split_concurrency(3, 4) == [1, 1, 1, 0]


def test_closed_plan_splits_the_loops_and_shares_one_pool() -> None:
    lv = Level(requests=40, concurrency=5, warmup=3)
    shares = plan_closed(lv, 2)
    # C = 5 over 2: [3, 2] loops; the 43 request numbers stay one pool, handed out in batches
    # of each worker's loop count.
    assert [s.level.concurrency for s in shares if s] == [3, 2]
    assert all(s.level.requests == 40 and s.level.warmup == 3 for s in shares if s)
    assert [ticket_batch(3), ticket_batch(2)] == [3, 2]
    # Concurrency 1 over 2 workers: the second sits the level out.
    assert plan_closed(Level(requests=5, concurrency=1), 2)[1] is None


def test_open_plan_keeps_the_global_count_and_a_share_of_warmups_only() -> None:
    seeds = [worker_seed(0, i) for i in range(4)]
    lv = Level(requests=1000, rate_per_s=800.0, warmup=10)
    shares = plan_open(lv, 4, seeds, 0, max_in_flight=10)
    totals = [s.level.requests + s.level.warmup for s in shares if s]
    assert sum(totals) == 1010
    assert (
        sum(s.level.warmup for s in shares if s and not s.all_warmup)
        + sum(s.level.requests for s in shares if s and s.all_warmup)
        == 10
    )
    assert all(s.level.rate_per_s == 200.0 for s in shares if s)
    assert [s.max_in_flight for s in shares if s] == [3, 3, 2, 2]
    # Constant gaps: 4 streams of 1/200 s, shifted by 1/800 s each, share 9 arrivals 3, 2, 2, 2.
    const = plan_open(Level(requests=9, rate_per_s=800.0, arrival="constant"), 4, seeds, 0, 16)
    assert [s.level.requests for s in const if s] == [3, 2, 2, 2]
    # Two requests, both warm-ups, over 4 workers: two workers sit out, and a share that holds
    # only warm-ups is flagged (a Level needs one measured request).
    tiny = plan_open(Level(requests=1, rate_per_s=800.0, warmup=1), 4, seeds, 0, 16)
    assert sum(s is None for s in tiny) == 2


def test_worker_seeds_are_reproducible_and_distinct() -> None:
    assert worker_seed(7, 1) == worker_seed(7, 1)
    assert len({worker_seed(7, i) for i in range(8)} | {worker_seed(8, 0)}) == 9


# -- whole runs ------------------------------------------------------------------------------


def _peak_in_flight(records: list[RequestRecord]) -> int:
    return stats.in_flight(stats.as_frame(records)).peak


async def test_a_two_worker_run_is_one_run(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    levels = [
        Level(requests=40, concurrency=5, warmup=3, prompt_tokens=8, max_tokens=4),
        Level(requests=200, rate_per_s=400.0, prompt_tokens=8, max_tokens=4),
        Level(requests=40, rate_per_s=200.0, arrival="constant", prompt_tokens=8, max_tokens=4),
    ]
    seen: list[int] = []
    async with StubServer(StubConfig(delay_s=0.02, tokens=4)) as server:
        result = await run_levels(
            server.target(),
            levels,
            path=path,
            seed=11,
            workers=2,
            duration_s=60.0,
            on_record=lambda r: seen.append(r.request_id),
        )
    run = read_run(path)
    # Every request exactly once: 43 + 200 + 40, ids unique, in the file and in the result.
    assert len(run.records) == len(result.records) == 283
    ids = [r.request_id for r in run.records]
    assert len(set(ids)) == 283 and sorted(seen) == sorted(ids)
    assert all(r.ok for r in run.records)
    # One clock, time order: the file is sorted by end time.
    ends = [r.end_s for r in run.records]
    assert ends == sorted(ends)  # type: ignore[type-var]
    assert {r.labels["worker"] for r in run.records} == {0, 1}
    # The statistics see one run: one row per level, not per worker (unless asked).
    assert list(stats.summarize(run.to_frame())["level"]) == [0, 1, 2]
    assert len(stats.summarize(run.to_frame(), by="worker")) == 2
    report = CliRunner().invoke(app, ["report", str(path), "--no-html"])
    assert report.exit_code == 0, report.output
    assert "sent from 2 worker processes" in report.output
    # The header names the workers and their seeds, derived from the run seed.
    assert run.header.load["workers"] == 2
    assert run.header.load["worker_seeds"] == [worker_seed(11, 0), worker_seed(11, 1)]
    assert "CLOCK_MONOTONIC" in run.header.extra["clock"]
    by_level = {k: [r for r in run.records if r.labels["level"] == k] for k in range(3)}
    # Closed loop: 3 + 2 loops share the 43 requests (3 warm-ups), both send, and never more
    # than C = 5 are in flight, measured from the records' send and end times.
    closed = by_level[0]
    assert sum(r.warmup for r in closed) == 3
    assert all(any(r.labels["worker"] == w for r in closed) for w in (0, 1))
    assert _peak_in_flight(closed) <= 5
    # Open loop, Poisson 400/s: exactly 200 sent; the merged schedule's gaps have mean 1/400 s.
    # 199 exponential gaps: mean 2.5 ms with standard error 2.5 / sqrt(199) = 0.177 ms, so a
    # 4-sigma bound is ±0.71 ms; their coefficient of variation is 1 (a constant stream's is 0).
    poisson = sorted(r.labels["scheduled_s"] for r in by_level[1])
    gaps = [b - a for a, b in itertools.pairwise(poisson)]
    assert len(poisson) == 200
    assert abs(statistics.fmean(gaps) - 0.0025) < 4 * 0.0025 / math.sqrt(199)
    assert 0.7 < statistics.pstdev(gaps) / statistics.fmean(gaps) < 1.3
    # Constant 200/s from two workers of 100/s each, shifted by 5 ms: one gap of 5 ms throughout.
    const = sorted(r.labels["scheduled_s"] for r in by_level[2])
    assert len(const) == 40
    assert all(abs((b - a) - 0.005) < 1e-6 for a, b in itertools.pairwise(const))
    assert len(result.delivered) == 3 and result.delivered[1].sent == 200


async def test_a_seed_reproduces_each_workers_arrivals() -> None:
    async def schedule(seed: int) -> dict[int, list[float]]:
        async with StubServer(StubConfig(tokens=2)) as server:
            result = await run_levels(
                server.target(),
                [Level(requests=30, rate_per_s=300.0, prompt_tokens=4, max_tokens=2)],
                seed=seed,
                workers=2,
            )
        per: dict[int, list[float]] = {0: [], 1: []}
        start = min(r.labels["scheduled_s"] for r in result.records)
        for r in result.records:
            per[r.labels["worker"]].append(r.labels["scheduled_s"] - start)
        return {w: sorted(v) for w, v in per.items()}

    a, b = await asyncio.gather(schedule(5), schedule(5))  # two runs side by side
    assert a.keys() == b.keys()
    for w in a:
        assert len(a[w]) == len(b[w]) and all(
            abs(x - y) < 1e-9 for x, y in zip(a[w], b[w], strict=True)
        )


async def test_bad_worker_count_or_prompt_source_names_the_argument() -> None:
    async with StubServer(StubConfig(tokens=2)) as server:
        with pytest.raises(ValueError, match="workers"):
            await run_closed_loop(server.target(), requests=2, workers=0)
        with pytest.raises(ValueError, match=r"prompts: .* picklable"):
            await run_closed_loop(server.target(), requests=2, workers=2, prompts=_LocalPrompts())


class _LocalPrompts:
    """A prompt source holding a lambda: it cannot cross to another process."""

    def __init__(self) -> None:
        self.make: Callable[[int], str] = lambda i: f"prompt {i}"

    def __call__(self, i: int) -> str:
        return self.make(i)

    def describe(self) -> dict[str, str]:
        return {"kind": "local"}


# -- stopping --------------------------------------------------------------------------------


class _SilentServer:
    """On 127.0.0.1: answers a GET with 404 (the CLI's probe sees a server) and never answers a
    POST, so every chat request stays in flight."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.accepted: list[socket.socket] = []
        self.received = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                conn, _ = self.sock.accept()
                self.accepted.append(conn)
                threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(5.0)
        with contextlib.suppress(OSError):
            data = conn.recv(65536)
            if data.startswith(b"GET"):
                conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            elif data:
                self.received += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for c in self.accepted:
            c.close()
        self.sock.close()


@contextlib.contextmanager
def _silent_server() -> Iterator[_SilentServer]:
    server = _SilentServer()
    try:
        yield server
    finally:
        server.close()


STOP_SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL]


@dataclass
class _Sweep:
    """``infphys sweep --workers 2`` sending to its own silent server, for one stop test."""

    proc: subprocess.Popen[bytes]
    server: _SilentServer
    out: Path
    log: Path
    workers: set[int] = field(default_factory=set)


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, _Sweep]]:
    """One sweep per stop signal, all started at once (each spends seconds starting three
    processes; those seconds overlap). Whatever happens, all are killed at the end."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    runs: dict[int, _Sweep] = {}
    with contextlib.ExitStack() as stack:
        for sig in STOP_SIGNALS:
            folder = tmp_path_factory.mktemp(signal.Signals(sig).name)
            server = stack.enter_context(_silent_server())
            out, log = folder / "run.jsonl", folder / "output.log"
            cmd = [
                sys.executable, "-m", "infphys", "sweep", "--base-url",
                f"http://127.0.0.1:{server.port}", "--concurrency", "4", "--requests", "8",
                "--warmup", "0", "--workers", "2", "--skip-preflight", "--metrics-interval", "0",
                "--timeout", "120", "-o", str(out),
            ]  # fmt: skip
            with log.open("wb") as sink:
                proc = subprocess.Popen(
                    cmd, env=env, cwd=folder, stdout=sink, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )  # fmt: skip
            run = _Sweep(proc, server, out, log)
            stack.callback(_kill, run)
            runs[sig] = run
        yield runs


def _kill(run: _Sweep) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(run.proc.pid, signal.SIGKILL)
    for p in run.workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)
    run.proc.wait(timeout=10)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("sig", STOP_SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_stop_signal_ends_every_worker_and_keeps_the_run(
    sig: int, sweeps: dict[int, _Sweep]
) -> None:
    run = sweeps[sig]
    proc, server, workers = run.proc, run.server, run.workers
    deadline = time.monotonic() + 120
    # Four requests in flight (2 per worker) means both workers are up and sending.
    while server.received < 4:
        workers |= children(proc.pid)
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"never sent 4 requests:\n{run.log.read_text(errors='replace')}")
        time.sleep(0.1)
    workers |= children(proc.pid)
    assert len(workers) >= 2
    os.kill(proc.pid, sig)
    try:
        code = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running 60 s after {signal.Signals(sig).name}")
    # A stop signal is a clean interrupt (130); SIGKILL gives the coordinator no say, and
    # the workers must notice on their own that its pipe closed.
    assert code == (-signal.SIGKILL if sig == signal.SIGKILL else 130), run.log.read_text(
        errors="replace"
    )
    deadline = time.monotonic() + 10
    while any(alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in workers if alive(p)], "a worker survived the stop"
    # The four requests that were in flight are kept, marked incomplete (after a SIGKILL the
    # coordinator could not write them: the file keeps its header).
    done = read_run(run.out)
    assert done.header.load["workers"] == 2
    if sig != signal.SIGKILL:
        assert [r.status for r in done.records] == ["incomplete"] * 4
