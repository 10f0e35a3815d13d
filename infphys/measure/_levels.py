"""How one load level is driven and judged: the workers, the probes and the delivered load.

:class:`Level` is one stretch of constant load, the package's one workload spec
(:class:`infphys.workload.Workload`: a closed loop of ``concurrency`` workers, an open loop at
``rate_per_s``, or an offline burst); :func:`check_level` says which of its settings the load
generator can send; :class:`LevelDriver` sends its requests, records each as it ends
and cancels what is still in flight when the level's time is up; :class:`LoopLagProbe` times a
10 ms timer on the client's event loop; :func:`delivered_load` turns a level's records and the
client health figures into a :class:`DeliveredLoad`, with a note when the client, not the
server, may have set the pace. :class:`LoadProgress` holds live counters for a progress display.

Worked example: an open level asked for 20 requests/s sends 101 requests over 5.0 s between the
first and last send; its delivered rate is (101 − 1) / 5.0 = 20 requests/s. If the event-loop
thread used 90 % of a core (at least ``CLIENT_CPU_WARN_FRACTION`` = 85 %), ``client_bound`` is
True and ``note`` says the rate is what the client managed.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from infphys import stats
from infphys._closing import cancel_and_wait
from infphys.measure.client import ChatClient
from infphys.measure.prompts import PromptSource, synthetic_prompt
from infphys.records import RequestRecord, RunWriter, records_to_frame
from infphys.workload import Workload

__all__ = [
    "CLIENT_CPU_WARN_FRACTION",
    "DISPATCH_LAG_WARN_S",
    "LOOP_LAG_WARN_S",
    "DeliveredLoad",
    "DeliveredLog",
    "Level",
    "LevelDriver",
    "LevelHealth",
    "LoadProgress",
    "LoopLagProbe",
    "check_level",
    "delivered_dict",
    "delivered_load",
    "pass_on",
]

#: Above this share of one core spent in the client's event-loop thread, the client is the
#: bottleneck (asyncio runs on one thread).
CLIENT_CPU_WARN_FRACTION = 0.85
#: Event-loop lag (p95 lateness of a 10 ms timer) above which timestamps are unreliable.
LOOP_LAG_WARN_S = 0.005
#: Open-loop dispatch lag (p95) above which the delivered arrival process is not the one asked.
DISPATCH_LAG_WARN_S = 0.005
_LAG_PROBE_S = 0.010

log = logging.getLogger("infphys.measure")


#: The load generator's name for one stretch of constant load: the package's one workload spec.
Level = Workload


def check_level(name: str, lv: object) -> Workload:
    """``lv`` as a level the load generator can send, or a ``ValueError`` naming ``name``.

    The load generator sends every shape (closed, open, offline bursts capped by
    ``max_in_flight``, traces) and per-request sizes (ranges, traces) as synthetic prompts;
    client jitter is the simulator's, and ``ignore_eos`` is a server option (``extra_body``).
    """
    if not isinstance(lv, Workload):
        raise ValueError(f"{name} must be a Level (infphys.workload.Workload)")
    if lv.client_jitter_s:
        raise ValueError(f"{name}: client_jitter_s is a simulator setting (real clients jitter)")
    if lv.ignore_eos:
        raise ValueError(
            f"{name}: ignore_eos is a server option here; pass extra_body={{'ignore_eos': True}}"
        )
    return lv


@dataclass(frozen=True, slots=True)
class DeliveredLoad:
    """The load one level actually delivered, next to what it asked for."""

    level: int
    asked: str
    asked_concurrency: int | None
    asked_rate_per_s: float | None
    sent: int
    dispatch_window_s: float
    delivered_rate_per_s: float
    mean_in_flight: float
    peak_in_flight: int
    dispatch_lag_p50_s: float
    dispatch_lag_p95_s: float
    dispatch_lag_max_s: float
    loop_lag_p95_s: float
    loop_lag_max_s: float
    receive_lag_p95_s: float
    client_cpu_fraction: float
    client_bound: bool
    note: str


@dataclass
class LevelHealth:
    """How the client fared while it sent one level: the share of one core its event-loop thread
    used, how late a 10 ms timer fired on its loop, and how long after the kernel it read each
    arrival (empty where the transport has no kernel timestamps)."""

    cpu_fraction: float = 0.0
    loop_lags_s: list[float] = field(default_factory=list)
    receive_lags_s: list[float] = field(default_factory=list)

    @classmethod
    def merged(cls, parts: list[LevelHealth]) -> LevelHealth:
        """One level sent by several processes: the busiest one's CPU share, all the lags."""
        return cls(
            cpu_fraction=max((h.cpu_fraction for h in parts), default=0.0),
            loop_lags_s=[x for h in parts for x in h.loop_lags_s],
            receive_lags_s=[x for h in parts for x in h.receive_lags_s],
        )


class LoadProgress:
    """Live counters of a run, for a progress display (read them from any thread)."""

    def __init__(self, planned: int = 0) -> None:
        self.planned = planned
        self.started = 0
        self.done = 0
        self.ok = 0
        self.failed = 0
        self.incomplete = 0
        self.in_flight = 0
        self.level_label = ""
        self.errors: dict[str, int] = {}
        self._e2e_s: list[float] = []

    def record(self, rec: RequestRecord) -> None:
        self.done += 1
        if rec.status == "ok":
            self.ok += 1
            e2e = rec.e2e_s
            if e2e is not None and not rec.warmup:
                self._e2e_s.append(e2e)
        elif rec.status == "failed":
            self.failed += 1
            key = rec.error_class or "client_error"
            self.errors[key] = self.errors.get(key, 0) + 1
        else:
            self.incomplete += 1

    def e2e_percentiles_s(self) -> dict[str, float]:
        """Live p50/p95 of e2e over the successful measured requests so far."""
        return stats.percentiles(list(self._e2e_s), (50, 95))


def pass_on(
    rec: RequestRecord,
    writer: RunWriter | None,
    progress: LoadProgress,
    on_record: Callable[[RequestRecord], None] | None,
) -> None:
    """Where an ended request goes, in one process or from the workers: a line of the run file
    (when there is one), the progress counters, then the caller's ``on_record``."""
    if writer is not None:
        writer.write(rec)
    progress.record(rec)
    if on_record is not None:
        on_record(rec)


def delivered_dict(d: DeliveredLoad) -> dict[str, Any]:
    return {k: getattr(d, k) for k in DeliveredLoad.__dataclass_fields__}


# -- driving a level -------------------------------------------------------------------------


class LoopLagProbe:
    """Measures how late a periodic 10 ms timer fires on this event loop."""

    def __init__(self) -> None:
        self.lags_s: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        perf = time.perf_counter
        while True:
            t = perf()
            await asyncio.sleep(_LAG_PROBE_S)
            self.lags_s.append(max(0.0, perf() - t - _LAG_PROBE_S))

    def start(self) -> None:
        self.lags_s = []
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> list[float]:
        await cancel_and_wait(self._task)
        self._task = None
        return self.lags_s


@dataclass(eq=False, repr=False)
class LevelDriver:
    """Sends levels through ``client`` and records every request as it ends.

    Each ended request goes to ``records``, to ``writer`` (when given), to ``progress`` and to
    ``on_record``. A level stops sending after ``duration_s`` (or its own shorter duration) and
    cancels what is still in flight ``drain_s`` later. An open level holds at most
    ``max_in_flight`` requests in flight; a send due beyond that waits, and its lateness is
    recorded as dispatch lag. ``rng`` draws the open-loop arrival gaps and ``prompt_seed``
    seeds the synthetic prompts of per-request sizes.

    Example: a closed level of concurrency 8 and 64 requests, ``duration_s`` 60 and
    ``drain_s`` 5, keeps 8 requests in flight until all 64 have been sent or 60 s have passed,
    then waits at most 5 s more for the last answers.
    """

    client: ChatClient
    prompts: PromptSource
    writer: RunWriter | None
    progress: LoadProgress
    on_record: Callable[[RequestRecord], None] | None
    duration_s: float
    drain_s: float
    max_in_flight: int
    rng: random.Random
    prompt_seed: int = 0
    records: list[RequestRecord] = field(default_factory=list, init=False)
    next_id: int = field(default=0, init=False)
    # Hooks for a level split over processes (infphys.measure._workers): ids step by the
    # number of workers, a level starts at a time shared by all of them, and an open loop's
    # first send can come ``phase_s`` after that start; a closed loop can draw its request
    # numbers from a source shared with other processes (``take_ticket``: None when done).
    id_step: int = field(default=1, init=False)
    level_start_s: float | None = field(default=None, init=False)
    phase_s: float = field(default=0.0, init=False)
    take_ticket: Callable[[], Awaitable[int | None]] | None = field(default=None, init=False)

    def _finish(self, rec: RequestRecord) -> None:
        self.records.append(rec)
        pass_on(rec, self.writer, self.progress, self.on_record)

    async def _fire(
        self,
        labels: dict[str, Any],
        warmup: bool,
        max_tokens: int,
        scheduled_s: float | None,
        prompt_tokens: int | None = None,
    ) -> None:
        """Send one request; ``prompt_tokens`` (per-request sizes) asks for a synthetic prompt
        of that size instead of the level's prompt source."""
        rid = self.next_id
        self.next_id += self.id_step
        if scheduled_s is not None:
            labels = {**labels, "scheduled_s": scheduled_s}
        if prompt_tokens is not None:
            labels = {**labels, "prompt_tokens_asked": prompt_tokens, "max_tokens": max_tokens}
            prompt = synthetic_prompt(prompt_tokens, seed=self.prompt_seed * 1_000_003 + rid)
        else:
            prompt = self.prompts(rid)
        rec = RequestRecord(
            request_id=rid, sent_s=self.client.now_s(), labels=labels, warmup=warmup
        )
        self.progress.in_flight += 1
        self.progress.started += 1
        try:
            await self.client.send(rec, prompt, max_tokens)
        finally:
            self.progress.in_flight -= 1
            if scheduled_s is not None:
                rec.labels["dispatch_lag_s"] = max(0.0, rec.sent_s - scheduled_s)
            self._finish(rec)

    async def _bounded(self, tasks: set[asyncio.Task[None]], until_s: float) -> None:
        """Wait for ``tasks`` until ``until_s`` on the run clock; cancel what is left."""
        try:
            if tasks:
                timeout = max(0.0, until_s - self.client.now_s())
                await asyncio.wait(tasks, timeout=timeout)
        finally:
            pending = [t for t in tasks if not t.done()]
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)

    async def drive(
        self, lv: Workload, labels: dict[str, Any], probe: LoopLagProbe, health: LevelHealth
    ) -> None:
        """Send ``lv`` (closed loop, or at its schedule) and fill ``health`` as the level ends,
        also when it is cancelled."""
        probe.start()
        self.client.take_receive_lags_s()
        cpu0, wall0 = time.thread_time(), time.perf_counter()
        try:
            if lv.mode == "closed":
                await self.closed(lv, labels)
            else:
                await self.open(lv, labels)
        finally:
            wall = max(1e-9, time.perf_counter() - wall0)
            health.cpu_fraction = (time.thread_time() - cpu0) / wall
            health.loop_lags_s = await probe.stop()
            health.receive_lags_s = self.client.take_receive_lags_s()

    def _duration_s(self, lv: Workload) -> float:
        return self.duration_s if lv.duration_s is None else min(self.duration_s, lv.duration_s)

    async def closed(self, lv: Workload, labels: dict[str, Any]) -> None:
        assert lv.concurrency is not None
        start = self.client.now_s() if self.level_start_s is None else self.level_start_s
        stop_sending = start + self._duration_s(lv)
        total = lv.total_requests
        counter = iter(range(total))
        take = self.take_ticket
        sizes = None if lv.fixed_sizes else lv.sizes()

        async def worker() -> None:
            while (k := next(counter, None) if take is None else await take()) is not None:
                if self.client.now_s() >= stop_sending:
                    return
                if sizes is None:
                    await self._fire(labels, k < lv.warmup, lv.max_tokens, None)
                else:
                    p, m = sizes[k]
                    await self._fire(labels, k < lv.warmup, m, None, p)

        loop = asyncio.get_running_loop()
        tasks = {loop.create_task(worker()) for _ in range(min(lv.concurrency, total))}
        await self._bounded(tasks, stop_sending + self.drain_s)

    async def open(self, lv: Workload, labels: dict[str, Any]) -> None:
        """Open loop, offline or trace: sends at ``lv``'s schedule (Poisson gaps drawn from the
        run's ``rng``)."""
        loop = asyncio.get_running_loop()
        start = self.client.now_s() if self.level_start_s is None else self.level_start_s
        start += self.phase_s
        stop_sending = start - self.phase_s + self._duration_s(lv)
        slots = asyncio.Semaphore(self.max_in_flight)
        tasks: set[asyncio.Task[None]] = set()
        sizes = None if lv.fixed_sizes else lv.sizes()

        async def fire_and_release(k: int, at_s: float) -> None:
            try:
                if sizes is None:
                    await self._fire(labels, k < lv.warmup, lv.max_tokens, at_s)
                else:
                    p, m = sizes[k]
                    await self._fire(labels, k < lv.warmup, m, at_s, p)
            finally:
                slots.release()

        try:
            for k, offset_s in enumerate(lv.schedule_s(self.rng)):
                scheduled = start + offset_s
                if scheduled >= stop_sending:
                    break
                delay = scheduled - self.client.now_s()
                if delay > 0:
                    await asyncio.sleep(delay)
                remaining = stop_sending - self.client.now_s()
                if remaining <= 0:
                    break
                if slots.locked():
                    # max_in_flight reached: this send goes late, and its lag is recorded.
                    try:
                        await asyncio.wait_for(slots.acquire(), timeout=remaining)
                    except TimeoutError:
                        break
                else:
                    await slots.acquire()
                t = loop.create_task(fire_and_release(k, scheduled))
                tasks.add(t)
                t.add_done_callback(tasks.discard)
        finally:
            await self._bounded(set(tasks), stop_sending + self.drain_s)


def delivered_load(
    index: int, lv: Workload, recs: list[RequestRecord], health: LevelHealth
) -> DeliveredLoad:
    """The load level ``index`` delivered (its records ``recs``), judged with the client's
    ``health`` while it ran; see the module's worked example."""
    loop_lags_s, receive_lags_s = health.loop_lags_s, health.receive_lags_s
    cpu_fraction = health.cpu_fraction
    nan = float("nan")
    sent = len(recs)
    if recs:
        frame = records_to_frame(recs)
        sends = frame["sent_s"].to_numpy(dtype=float)
        span = float(sends.max() - sends.min())
        rate = (sent - 1) / span if span > 0 else nan
        occ = stats.in_flight(frame)
        lags = [r.labels.get("dispatch_lag_s") for r in recs]
        lag_values = [x for x in lags if isinstance(x, float)]
    else:
        span, rate, lag_values = 0.0, nan, []
        occ = stats.InFlight(nan, nan, nan, 0)
    lag_p = stats.percentiles(lag_values, (50, 95)) if lag_values else {"p50": nan, "p95": nan}
    loop_p95 = stats.percentiles(loop_lags_s, (95,))["p95"] if loop_lags_s else nan
    loop_max = max(loop_lags_s) if loop_lags_s else nan
    rx_p95 = stats.percentiles(receive_lags_s, (95,))["p95"] if receive_lags_s else nan
    reasons: list[str] = []
    if cpu_fraction >= CLIENT_CPU_WARN_FRACTION:
        reasons.append(f"the client's event-loop thread used {cpu_fraction:.0%} of a core")
    if loop_p95 > LOOP_LAG_WARN_S:
        reasons.append(f"its event loop ran {loop_p95 * 1e3:.1f} ms late (p95)")
    if lv.mode != "closed" and lag_p["p95"] > DISPATCH_LAG_WARN_S:
        reasons.append(f"open-loop sends went {lag_p['p95'] * 1e3:.1f} ms late (p95)")
    if rx_p95 > LOOP_LAG_WARN_S:
        reasons.append(f"it read arrivals {rx_p95 * 1e3:.1f} ms after the kernel (p95)")
    note = ""
    if reasons:
        if receive_lags_s:
            consequence = (
                "Latencies still use the kernel's receive times, so they are the server's; the "
                "load delivered (rate, requests in flight) is what the client managed."
            )
        else:
            consequence = (
                "Latencies and rates at this level describe the client as much as the server."
            )
        note = (
            f"level {index} ({lv.asked()}): the client may be the bottleneck — "
            + "; ".join(reasons)
            + ". "
            + consequence
        )
    return DeliveredLoad(
        level=index,
        asked=lv.asked(),
        asked_concurrency=lv.concurrency,
        asked_rate_per_s=lv.rate_per_s,
        sent=sent,
        dispatch_window_s=span,
        delivered_rate_per_s=rate,
        mean_in_flight=occ.mean,
        peak_in_flight=occ.peak,
        dispatch_lag_p50_s=lag_p["p50"],
        dispatch_lag_p95_s=lag_p["p95"],
        dispatch_lag_max_s=max(lag_values) if lag_values else nan,
        loop_lag_p95_s=loop_p95,
        loop_lag_max_s=loop_max,
        receive_lag_p95_s=rx_p95,
        client_cpu_fraction=cpu_fraction,
        client_bound=bool(reasons),
        note=note,
    )


@dataclass
class DeliveredLog:
    """Each level's delivered load, in order, and the notes of the levels the client may have
    paced (logged on ``infphys.measure`` as they come, unless ``log_notes`` is False)."""

    log_notes: bool = True
    delivered: list[DeliveredLoad] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add(self, index: int, lv: Workload, recs: list[RequestRecord], health: LevelHealth) -> None:
        d = delivered_load(index, lv, recs, health)
        self.delivered.append(d)
        if d.note:
            self.warnings.append(d.note)
            if self.log_notes:
                log.warning(d.note)
