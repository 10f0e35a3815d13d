"""The load generator in several processes: ``run_levels(..., workers=N)``.

One asyncio event loop on one core tops out near 4,000 streamed requests/s; past that the
client, not the server, sets the pace. With ``workers=N`` the levels run in N processes (each a
fresh interpreter, ``python -c``, with its own event loop and its own HTTP connections, talking
to the calling process over two pipes), coordinated by the calling process, which keeps the
global load (:mod:`infphys.measure._worker_plan` holds the plan):

- **closed loop** of concurrency C: worker i runs ``C // N`` loops, plus one for the first
  ``C % N``, so no more than C requests are ever in flight. The level's request numbers (the
  first ``warmup`` of them warm-ups) stay in one pool at the coordinator, which hands them out in
  batches of a worker's loop count as the worker runs low: the total is exactly the one asked,
  and a worker slowed by a busy machine simply takes fewer, so all C loops stay busy until the
  pool is empty, as in one process;
- **open loop** of rate λ: worker i sends at λ/N from its own ``random.Random``, seeded per
  level from the worker's seed (derived from the run seed and recorded in the header as
  ``load.worker_seeds``). The superposition of N independent Poisson streams of rate
  λ/N is a Poisson stream of rate λ; the global first arrival is at the level's start, as in one
  process (worker 0 sends then; the others' first arrival is one exponential gap later, which by
  memorylessness is the same thing). Constant gaps become N interleaved streams with gaps N/λ,
  worker i shifted by i/λ. The global request count is kept exactly: the coordinator replays
  every worker's seeded stream and gives each worker the number of its arrivals among the first
  ``warmup + requests`` of the merged stream; ``max_in_flight`` is split like concurrency;
- **levels** start together: each worker reports when it has finished a level, and the next one
  starts for all of them at one time on the shared clock; the duration bound is global (no
  request is sent after the level's start + ``duration_s``).

**One clock.** Every process stamps times with ``time.perf_counter()`` minus the coordinator's
zero. On Linux ``perf_counter`` is ``clock_gettime(CLOCK_MONOTONIC)``, one system-wide clock, so
a stamp from worker 2 and one from worker 0 compare directly; the kernel's receive timestamps
(``SO_TIMESTAMPNS``, :mod:`infphys.measure._wire`) are ``CLOCK_REALTIME`` and each worker turns
them into ``perf_counter`` time with its own current offset, the same in every process. On
macOS ``perf_counter`` (``mach_absolute_time``) is system-wide too. The coordinator checks it at
start: each worker's first ``perf_counter`` reading must fall between the coordinator's reading
before it started the workers and its reading when the answer arrived, or the run stops with an
error.

**One run.** Records go into one run file and one :class:`~infphys.measure.load.LoadResult`,
each tagged with its ``worker`` label; request ids are unique (worker i numbers its requests i,
i + N, i + 2N, …, which also picks distinct prompts from the run's prompt source). The file is
appended as records arrive, so an interrupted run keeps every finished request, and it is
rewritten in time order (by end time, then send time) when the run closes. ``infphys.stats`` and
``infphys report`` read it as one run; the delivered load of each level is computed over all
workers' records, with the busiest worker's CPU share and every worker's loop and receive lags.

**Stopping.** Ctrl-C, SIGTERM and SIGHUP reach the coordinator (the CLI turns the last two into
an interrupt); it tells every worker to stop, keeps what they finished (requests still in flight
are recorded ``incomplete``), and ends any worker that has not exited within a few seconds. The
workers ignore SIGINT and SIGHUP themselves (the coordinator decides), and each watches its pipe
from the coordinator: if the coordinator dies, even by SIGKILL, the pipe closes and the worker
stops. Linux and macOS (the pipes are passed down as file descriptors).

Worked example: ``run_closed_loop(target, concurrency=10, requests=1000, workers=4)`` runs
workers of concurrency 3, 3, 2, 2 that share the 1,000 requests (about 300, 300, 200 and 200 on
an even machine); ``open_loop(target, rate_per_s=8000, requests=40_000, workers=4)`` runs four
Poisson streams of 2,000 requests/s whose first 40,000 merged arrivals (about 10,000 each) are
sent, over about 5 s.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import itertools
import os
import pickle
import random
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from infphys._closing import cancel_and_wait, end_process
from infphys.measure._levels import (
    DeliveredLog,
    LevelDriver,
    LevelHealth,
    LoadProgress,
    LoopLagProbe,
    pass_on,
)
from infphys.measure._worker_plan import (
    Share,
    WorkerOptions,
    phase_s,
    plan_levels,
    ticket_batch,
    worker_seed,
)
from infphys.measure.load import LoadResult, level_labels, run_scraper
from infphys.measure.prompts import SyntheticPrompts
from infphys.records import RequestRecord, RunHeader, RunWriter

__all__ = ["WorkerOptions", "run_in_workers"]

#: How often a worker sends its finished records to the coordinator, seconds.
FLUSH_S = 0.05
#: A level starts this long after the coordinator says so (time for the word to reach every
#: worker), seconds; a worker still late (0.22 s at load 14 on 2 cores) records each send's lag.
START_MARGIN_S = 0.2
#: Longest wait for the workers to start (a fresh interpreter imports infphys), seconds.
START_TIMEOUT_S = 120.0
#: After a stop, how long the workers get to record what was in flight and exit, seconds.
STOP_GRACE_S = 5.0
#: Loop and receive lags a worker sends per level at most (evenly thinned).
_LAG_SAMPLES = 20_000
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
CLOCK_NOTE = (
    "time.perf_counter() minus the run's zero in every worker process (CLOCK_MONOTONIC on "
    "Linux, system-wide; checked at start); kernel receive timestamps converted to it"
)


@dataclass(frozen=True, slots=True)
class _ChildSpec:
    options: WorkerOptions
    index: int
    clock_zero_s: float
    shares: tuple[Share | None, ...]


# -- a worker process ------------------------------------------------------------------------


class _Tickets:
    """A worker's stock of request numbers for one closed-loop level, topped up on request."""

    def __init__(self, low_water: int, ask: Callable[[], None]) -> None:
        self.stock: collections.deque[int] = collections.deque()
        self.low_water = low_water
        self.ask = ask
        self.asked = False
        self.done = False
        self.arrived = asyncio.Event()

    def grant(self, first: int, count: int) -> None:
        self.asked = False
        if count == 0:
            self.done = True
        self.stock.extend(range(first, first + count))
        self.arrived.set()

    async def take(self) -> int | None:
        while True:
            if len(self.stock) <= self.low_water and not (self.done or self.asked):
                self.asked = True
                self.ask()
            if self.stock:
                return self.stock.popleft()
            if self.done:
                return None
            self.arrived.clear()
            await self.arrived.wait()


def _thin(values: list[float]) -> list[float]:
    step = max(1, -(-len(values) // _LAG_SAMPLES))
    return values[::step]


def child_main(inbox_fd: int, outbox_fd: int) -> None:
    """A worker process's main function: its spec is the first message on ``inbox_fd``.

    The coordinator starts it as ``python -c "...child_main(R, W)"`` with the two pipe ends
    passed down, not through ``multiprocessing``'s spawn, which re-runs the caller's main
    script in every worker (a script or notebook without an ``if __name__ == "__main__"``
    guard would start its load again).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    inbox = Connection(inbox_fd, writable=False)
    outbox = Connection(outbox_fd, readable=False)
    index = -1
    try:
        spec: _ChildSpec = inbox.recv()
        index = spec.index
        asyncio.run(_child(spec, inbox, outbox))
    except BaseException:
        with contextlib.suppress(Exception):
            outbox.send(("error", index, traceback.format_exc()))
    finally:
        with contextlib.suppress(Exception):
            outbox.close()


async def _child(spec: _ChildSpec, inbox: Connection, outbox: Connection) -> None:
    o, me = spec.options, spec.index
    loop = asyncio.get_running_loop()
    client = o.chat_client(spec.clock_zero_s)
    progress = LoadProgress()
    pending: list[RequestRecord] = []
    all_warmup = False

    def on_record(rec: RequestRecord) -> None:
        if all_warmup:
            rec.warmup = True
        pending.append(rec)

    def flush() -> None:
        if pending:
            outbox.send(("records", me, list(pending), progress.started, progress.in_flight))
            pending.clear()

    driver = LevelDriver(
        client, o.prompts, None, progress, on_record, o.duration_s, o.drain_s, 1, random.Random()
    )
    driver.next_id, driver.id_step = me, o.workers
    go: asyncio.Queue[tuple[int, float, int, int]] = asyncio.Queue()
    probe = LoopLagProbe()
    tickets: dict[int, _Tickets] = {}

    def grant(index: int, first: int, count: int) -> None:
        if index in tickets:
            tickets[index].grant(first, count)

    async def run() -> None:
        nonlocal all_warmup
        for _ in o.levels:
            index, start_s, first, count = await go.get()
            share, lv = spec.shares[index], o.levels[index]
            health = LevelHealth()
            if share is not None:
                labels = level_labels(index, lv, synthetic=o.synthetic_prompts)
                labels["worker"] = me
                if o.synthetic_prompts:
                    driver.prompts = SyntheticPrompts(lv.prompt_tokens, seed=o.seed)
                mine = share.level
                driver.rng = random.Random(share.rng_seed)
                if mine.rate_per_s is not None:
                    driver.phase_s = phase_s(
                        driver.rng, mine.arrival, mine.rate_per_s, me, o.workers
                    )
                driver.max_in_flight = share.max_in_flight
                driver.take_ticket = None
                if mine.concurrency is not None:
                    stock = _Tickets(
                        ticket_batch(mine.concurrency),
                        functools.partial(outbox.send, ("more", me, index)),
                    )
                    stock.grant(first, count)
                    tickets[index] = stock
                    driver.take_ticket = stock.take
                driver.level_start_s = start_s
                all_warmup = share.all_warmup
                await asyncio.sleep(max(0.0, start_s - client.now_s()))
                await driver.drive(mine, labels, probe, health)
                health.loop_lags_s = _thin(health.loop_lags_s)
                health.receive_lags_s = _thin(health.receive_lags_s)
            flush()
            outbox.send(("level_done", me, index, health))

    async def flusher() -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            flush()

    async with client:
        task = loop.create_task(run())
        flushing = loop.create_task(flusher())

        def listen() -> None:
            while True:
                try:
                    msg = inbox.recv()
                except (EOFError, OSError):
                    msg = ("stop",)
                with contextlib.suppress(RuntimeError):  # the loop has closed: nothing to stop
                    if msg[0] == "go":
                        loop.call_soon_threadsafe(go.put_nowait, msg[1:])
                    elif msg[0] == "tickets":
                        loop.call_soon_threadsafe(grant, *msg[1:])
                    else:
                        loop.call_soon_threadsafe(task.cancel)
                if msg[0] not in ("go", "tickets"):
                    return

        threading.Thread(target=listen, name="infphys-worker-inbox", daemon=True).start()
        outbox.send(("ready", me, time.perf_counter()))
        try:
            await task
        except asyncio.CancelledError:
            pass
        finally:
            await cancel_and_wait(flushing)
            await probe.stop()
            flush()
            outbox.send(("finished", me))


# -- the coordinator -------------------------------------------------------------------------


def _order_key(rec: RequestRecord) -> tuple[float, float]:
    return (rec.end_s if rec.end_s is not None else rec.sent_s, rec.sent_s)


class _Coordinator:
    """Starts the workers, relays their records into one run and ends them."""

    def __init__(
        self,
        options: WorkerOptions,
        header: RunHeader,
        path: Path | None,
        progress: LoadProgress,
        on_record: Callable[[RequestRecord], None] | None,
        clock_zero_s: float,
    ) -> None:
        self.options = options
        self.header = header
        self.path = path
        self.progress = progress
        self.on_record = on_record
        self.clock_zero_s = clock_zero_s
        self.records: list[RequestRecord] = []
        self.by_level: dict[int, list[RequestRecord]] = {}
        self.health: dict[int, LevelHealth] = {}
        self.writer = RunWriter(path, header).open() if path is not None else None
        self.latest_key = (float("-inf"), float("-inf"))
        self.in_order = True
        self.procs: list[subprocess.Popen[bytes]] = []
        self.inboxes: list[Connection] = []
        self.queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
        self.finished: set[int] = set()
        self.counters: dict[int, tuple[int, int]] = {}
        self.plan: list[list[Share | None]] = []

    def start(self, seeds: Sequence[int]) -> float:
        """Start the workers; the ``perf_counter`` reading taken just before."""
        plan = self.plan = plan_levels(self.options, seeds)
        loop = asyncio.get_running_loop()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
        before = time.perf_counter()
        for i in range(self.options.workers):
            to_child_r, to_child_w = os.pipe()
            from_child_r, from_child_w = os.pipe()
            code = f"from {__name__} import child_main; child_main({to_child_r}, {from_child_w})"
            try:
                proc = subprocess.Popen(
                    [sys.executable, "-c", code],
                    pass_fds=(to_child_r, from_child_w),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    env=env,
                )
            finally:
                os.close(to_child_r)
                os.close(from_child_w)
            self.procs.append(proc)
            inbox = Connection(to_child_w, readable=False)
            self.inboxes.append(inbox)
            spec = _ChildSpec(self.options, i, self.clock_zero_s, tuple(lv[i] for lv in plan))
            from_child = Connection(from_child_r, writable=False)
            threading.Thread(
                target=self._relay, args=(loop, i, spec, from_child), daemon=True
            ).start()
        return before

    def _relay(
        self, loop: asyncio.AbstractEventLoop, index: int, spec: _ChildSpec, conn: Connection
    ) -> None:
        """Send worker ``index`` its spec (this blocks until it has started and reads it), then
        pass each of its messages to the coordinator's loop until its pipe closes."""
        with contextlib.suppress(OSError):
            self.inboxes[index].send(spec)
        while True:
            try:
                msg: Any = conn.recv()
            except (EOFError, OSError):
                msg = None
            with contextlib.suppress(RuntimeError):  # the coordinator's loop has closed
                loop.call_soon_threadsafe(self.queue.put_nowait, (index, msg))
            if msg is None:
                conn.close()
                return

    def _take(self, rec: RequestRecord) -> None:
        key = _order_key(rec)
        if key < self.latest_key:
            self.in_order = False
        self.latest_key = max(self.latest_key, key)
        self.records.append(rec)
        self.by_level.setdefault(int(rec.labels.get("level", -1)), []).append(rec)
        pass_on(rec, self.writer, self.progress, self.on_record)

    async def next_message(self, timeout_s: float) -> tuple[int, Any]:
        """The next message from a worker; records are taken in on the way."""
        while True:
            index, msg = await asyncio.wait_for(self.queue.get(), timeout=timeout_s)
            if msg is None:
                if index not in self.finished:
                    code = self.procs[index].poll()
                    raise RuntimeError(f"load worker {index} exited unexpectedly (code {code})")
                continue
            if msg[0] == "error":
                raise RuntimeError(f"load worker {index} failed:\n{msg[2]}")
            if msg[0] == "records":
                for rec in msg[2]:
                    self._take(rec)
                self.counters[index] = (msg[3], msg[4])
                self.progress.started = sum(c[0] for c in self.counters.values())
                self.progress.in_flight = sum(c[1] for c in self.counters.values())
                continue
            if msg[0] == "finished":
                self.finished.add(index)
            return index, msg

    async def wait_ready(self, before_s: float) -> None:
        ready: set[int] = set()
        while len(ready) < len(self.procs):
            index, msg = await self.next_message(START_TIMEOUT_S)
            if msg[0] != "ready":
                raise RuntimeError(f"load worker {index} said {msg[0]!r} before 'ready'")
            if not before_s <= msg[2] <= time.perf_counter():
                raise RuntimeError(
                    f"load worker {index}'s perf_counter ({msg[2]:.6f}) is not the coordinator's "
                    f"clock (started at {before_s:.6f}): times from the workers would not compare"
                )
            ready.add(index)

    async def run_level(self, index: int, shares: Sequence[Share | None]) -> None:
        """Start level ``index`` in every worker at one time; hand out a closed loop's request
        numbers as the workers ask; return when every worker has reported the level done."""
        lv = self.options.levels[index]
        pool = iter(range(lv.total_requests) if lv.mode == "closed" else ())

        def batch(worker: int) -> tuple[int, int]:
            share = shares[worker]
            if share is None or share.level.concurrency is None:
                return 0, 0
            numbers = list(itertools.islice(pool, ticket_batch(share.level.concurrency)))
            return (numbers[0], len(numbers)) if numbers else (0, 0)

        start_s = time.perf_counter() - self.clock_zero_s + START_MARGIN_S
        for i, conn in enumerate(self.inboxes):
            conn.send(("go", index, start_s, *batch(i)))
        limit_s = START_MARGIN_S + self.options.duration_s + self.options.drain_s + 30.0
        done: list[LevelHealth] = []
        while len(done) < len(self.procs):
            worker, msg = await self.next_message(limit_s)
            if msg[0] == "level_done" and msg[2] == index:
                done.append(msg[3])
            elif msg[0] == "more" and msg[2] == index:
                with contextlib.suppress(OSError):
                    self.inboxes[worker].send(("tickets", index, *batch(worker)))
        self.health[index] = LevelHealth.merged(done)

    async def stop(self) -> None:
        """Tell the workers to stop, take in what they finished, end any that linger."""
        for conn in self.inboxes:
            with contextlib.suppress(OSError):
                conn.send(("stop",))
        deadline = time.perf_counter() + STOP_GRACE_S
        with contextlib.suppress(TimeoutError, RuntimeError, asyncio.CancelledError):
            while len(self.finished) < len(self.procs):
                await self.next_message(max(0.0, deadline - time.perf_counter()))
        for proc in self.procs:  # asked over its pipe; one still there at the deadline is killed
            end_process(proc, deadline - time.perf_counter(), ask=None)
        for conn in self.inboxes:
            conn.close()

    def close(self) -> None:
        """Close the run file, rewritten in time order if the records came out of order."""
        self.records.sort(key=_order_key)
        if self.writer is None:
            return
        self.writer.close()
        if not self.in_order and self.path is not None:
            tmp = self.path.with_name(self.path.name + ".sorting")
            with RunWriter(tmp, self.header) as w:
                for rec in self.records:
                    w.write(rec)
            os.replace(tmp, self.path)


async def run_in_workers(
    options: WorkerOptions,
    header: RunHeader,
    *,
    path: str | Path | None,
    metrics_interval_s: float | None,
    progress: LoadProgress | None,
    on_record: Callable[[RequestRecord], None] | None,
    log_notes: bool,
) -> LoadResult:
    """Run ``options.levels`` from ``options.workers`` processes as one run (the module
    docstring says how the load is split); what ``run_levels(..., workers=N)`` returns."""

    n = options.workers
    if sys.platform == "win32":
        raise ValueError("workers > 1 needs Linux or macOS (pipes passed as file descriptors)")
    try:
        pickle.dumps(options)
    except Exception as exc:
        raise ValueError(
            "prompts: with workers > 1 the prompt source goes to other processes and must be "
            "picklable (a list of strings, PromptList, SyntheticPrompts or a module-level class; "
            f"not a lambda or a local function): {exc}"
        ) from None
    seeds = [worker_seed(options.seed, i) for i in range(n)]
    header.load["workers"] = n
    header.load["worker_seeds"] = seeds
    header.extra["clock"] = CLOCK_NOTE
    run_path = Path(path) if path is not None else None
    progress = progress or LoadProgress()
    progress.planned = sum(lv.total_requests for lv in options.levels)
    clock_zero = time.perf_counter()
    coord = _Coordinator(options, header, run_path, progress, on_record, clock_zero)
    scraper = run_scraper(options.target, metrics_interval_s, clock_zero, run_path)
    judged = DeliveredLog(log_notes=log_notes)
    try:
        await coord.wait_ready(coord.start(seeds))
        if scraper is not None:
            await scraper.start()
        for index, lv in enumerate(options.levels):
            progress.level_label = lv.asked()
            await coord.run_level(index, coord.plan[index])
            judged.add(index, lv, coord.by_level.get(index, []), coord.health[index])
    finally:
        try:
            await coord.stop()
        finally:
            if scraper is not None:
                await scraper.stop()
            coord.close()
    return LoadResult.of_run(header, coord.records, judged, run_path, scraper)
