"""The virtual-time driver: push a whole workload through the engine, as fast as Python allows.

:func:`simulate` runs a :class:`~infphys.sim.workload.Workload` (closed loop, open loop or
offline) through an :class:`~infphys.sim.engine.Engine` in simulated time and returns what a real
measurement returns: one :class:`~infphys.records.RequestRecord` per request (status, times,
token counts with ``token_count_source="simulated"``, the load's labels) and a
:class:`~infphys.records.RunHeader` (``source="simulated"``, the seed, the engine configuration
under ``extra["engine"]``), so every statistic and plot works unchanged. It also returns a time
series of the engine's state (running, waiting, KV blocks in use, preemptions), one row per
step, per fast-forwarded stretch and per arrival, each row holding from its time to the next.

Assumptions: a closed-loop client sends its next request the instant the previous one ends, with
no think time; client k's request reaches the engine (k + 1) µs later (``CLIENT_STAGGER_S``), so
it joins the queue during the step that follows (the engine schedules its next step before any
client can react, as a real server does) and a wave of clients waking an idle engine starts with
the first arrival alone; a rejected request (prompt + ``max_tokens`` beyond the context) ends
at once with vLLM's 400; token times are the ends of the steps that produced them.

Per-token times cost memory (one float per token: 10,000 requests × 1,000 tokens is 10 million
floats), so ``keep_chunk_times=False`` leaves ``chunk_times_s`` empty; statistics then use the
TPOT for the ITL.

Worked example: ``simulate(EngineConfig.build("h200", "llama-3.1-8b"),
Workload.closed(concurrency=1, requests=1, prompt_tokens=1000, max_tokens=100))`` gives one
record with TTFT ≈ 31.9 ms (the prefill step) and 99 gaps of ≈ 5.8 ms (one decode step each).
"""

from __future__ import annotations

import heapq
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from infphys.records import (
    RequestRecord,
    Run,
    RunHeader,
    RunWriter,
    records_to_frame,
    utc_timestamp,
)
from infphys.sim.config import EngineConfig, check_engine_config, default_served_model_name
from infphys.sim.engine import Engine, RequestRejected, SimRequest
from infphys.sim.workload import Workload
from infphys.stats import describe_latency, throughput

__all__ = [
    "CLIENT_STAGGER_S",
    "TIMESERIES_COLUMNS",
    "SimResult",
    "SimStats",
    "simulate",
    "time_average",
]

#: Closed-loop client k's requests reach the engine (k + 1) × this after the client acts: real
#: clients are never simultaneous, so a request sent as another ends joins the step after the
#: one already scheduled, and a wave of clients waking an idle engine is not admitted at once.
CLIENT_STAGGER_S = 1e-6

#: Columns of :attr:`SimResult.timeseries`.
TIMESERIES_COLUMNS: tuple[str, ...] = (
    "time_s",
    "running",
    "waiting",
    "in_flight",
    "kv_blocks_used",
    "kv_usage",
    "preemptions_total",
    "event",
)


@dataclass(frozen=True, slots=True)
class SimStats:
    """How the simulation itself went (not the simulated server).

    Attributes:
        wall_s: wall-clock seconds :func:`simulate` took.
        sim_duration_s: simulated seconds from the first arrival to the last end.
        steps: engine steps simulated.
        stretches, stretch_steps: fast-forwarded stretches and the steps inside them.
        exact_steps: steps that took the explicit reference path (preemptions).
        preemptions: requests preempted (and recomputed).
        truncated: the run stopped at ``max_sim_s`` with requests unfinished.
    """

    wall_s: float
    sim_duration_s: float
    steps: int
    stretches: int
    stretch_steps: int
    exact_steps: int
    preemptions: int
    truncated: bool


@dataclass(slots=True)
class SimResult:
    """The outcome of :func:`simulate`: records, header, engine time series and run stats."""

    header: RunHeader
    records: list[RequestRecord]
    timeseries: pd.DataFrame
    stats: SimStats
    config: EngineConfig
    workload: Workload
    _frame: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def run(self) -> Run:
        return Run(header=self.header, records=self.records)

    def to_frame(self) -> pd.DataFrame:
        """One row per request (see :func:`infphys.records.records_to_frame`)."""
        if self._frame is None:
            self._frame = records_to_frame(self.records, self.header)
        return self._frame

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the run file (JSON lines) that ``infphys report`` and ``load_run`` read."""
        with RunWriter(path, self.header) as w:
            for r in self.records:
                w.write(r)
        return Path(path)

    def summary(self) -> dict[str, float]:
        """Headline figures, seconds and tokens/s, computed by :mod:`infphys.stats` exactly as
        for a measured run (warm-up excluded).

        Throughput is :func:`infphys.stats.throughput`: successful requests and their output
        tokens over the measured window, from the first measured send to the last measured end
        (failed requests' sends and ends bound the window too; they never count as
        throughput). Latency percentiles are :func:`infphys.stats.percentiles` over the
        successful requests. The engine's own figures come from the time series: mean in
        flight and waiting (time averages), peak running, waiting and KV usage, preemptions.

        Example: 64 requests sent at t = 0 s, the last ending at t = 2.0 s, 100 tokens each:
        ``output_tokens_per_s`` = 6,400 / 2.0 = 3,200 and ``requests_per_s`` = 32.
        """
        tp = throughput(self.records)
        nan = math.nan
        out: dict[str, float] = {"requests_ok": float(tp.ok), "requests_failed": float(tp.failed)}
        if tp.ok:
            ok = [r for r in self.records if r.status == "ok" and not r.warmup]
            ttft = describe_latency(nan if r.ttft_s is None else r.ttft_s for r in ok)
            tpot = describe_latency(nan if r.tpot_s is None else r.tpot_s for r in ok)
            e2e = describe_latency(nan if r.e2e_s is None else r.e2e_s for r in ok)
            out.update(
                duration_s=tp.window_s,
                output_tokens_per_s=tp.output_tokens_per_s,
                requests_per_s=tp.requests_per_s,
                ttft_mean_s=ttft.mean_s,
                ttft_p95_s=ttft.p95_s,
                tpot_mean_s=tpot.mean_s,
                tpot_p95_s=tpot.p95_s,
                e2e_mean_s=e2e.mean_s,
                e2e_p95_s=e2e.p95_s,
            )
        ts = self.timeseries
        if len(ts):
            out.update(
                mean_in_flight=time_average(ts, "in_flight"),
                mean_waiting=time_average(ts, "waiting"),
                peak_running=float(ts["running"].max()),
                peak_waiting=float(ts["waiting"].max()),
                peak_kv_usage=float(ts["kv_usage"].max()),
            )
        out["preemptions"] = float(self.stats.preemptions)
        return out


def time_average(ts: pd.DataFrame, column: str) -> float:
    """Time average of a step-function column of a time series (each row holds until the next)."""
    t = ts["time_s"].to_numpy(dtype=float)
    v = ts[column].to_numpy(dtype=float)
    if len(t) < 2 or t[-1] <= t[0]:
        return float(v[0]) if len(v) else math.nan
    return float((v[:-1] * np.diff(t)).sum() / (t[-1] - t[0]))


def _check_run(workload: object, max_sim_s: float | None) -> None:
    """The checks shared by :func:`simulate` and the fleet drivers (``ValueError`` naming the
    argument): ``workload`` is a :class:`Workload` and ``max_sim_s``, when given, is > 0."""
    if not isinstance(workload, Workload):
        raise ValueError(f"workload must be a Workload (got {workload!r})")
    if max_sim_s is not None and not (max_sim_s > 0):
        raise ValueError(f"max_sim_s must be > 0 (got {max_sim_s!r})")


class _Arrivals:
    """When each request reaches the engine: the load's sends, then the frontend.

    ``pending`` is a heap of (arrival at the engine, request index, client); client is -1 in
    an open loop. An arrival time is the send, then the frontend: a fixed latency, and one
    request at a time for ``frontend_service_s`` each (HTTP and tokenising). A closed loop
    starts with its clients' first requests; :meth:`next_request` sends a client's next one.
    """

    def __init__(self, workload: Workload, front_s: float, service_s: float) -> None:
        self.total = workload.total_requests
        self.closed = workload.mode == "closed"
        self._front_s = front_s
        self._service_s = service_s
        self._front_free = -math.inf
        self._stop_s = math.inf if workload.duration_s is None else workload.duration_s
        self.sent_at: dict[int, float] = {}
        self._jitter_s = workload.client_jitter_s
        self._jitter = workload.jitter_rng().random if self._jitter_s else None
        jitter, jitter_s = self._jitter, self._jitter_s
        self.pending: list[tuple[float, int, int]]
        if self.closed:
            c = min(workload.concurrency or 1, self.total)
            self.pending = []
            for k in range(c):
                t_send = (k + 1) * CLIENT_STAGGER_S + (jitter() * jitter_s if jitter else 0.0)
                self.pending.append((self.through_frontend(t_send, k), k, k))
            self.next_idx = c
        else:
            self.pending = [
                (self.through_frontend(t, i), i, -1)
                for i, t in enumerate(workload.arrival_times_s())
                if t < self._stop_s
            ]
            self.next_idx = self.total
        heapq.heapify(self.pending)

    def through_frontend(self, t_send: float, idx: int) -> float:
        self.sent_at[idx] = t_send
        if not self._service_s:
            return t_send + self._front_s
        self._front_free = max(t_send + self._front_s, self._front_free) + self._service_s
        return self._front_free

    def next_request(self, t_end: float, client: int) -> None:
        """Closed loop: ``client`` sends its next request as soon as its last one ended (none
        at or after the workload's ``duration_s``)."""
        if self.closed and self.next_idx < self.total:
            t_send = t_end + (client + 1) * CLIENT_STAGGER_S
            if self._jitter is not None:
                t_send += self._jitter() * self._jitter_s
            if t_send >= self._stop_s:
                return
            heapq.heappush(
                self.pending, (self.through_frontend(t_send, self.next_idx), self.next_idx, client)
            )
            self.next_idx += 1


def _engine_record(
    idx: int,
    r: SimRequest,
    sent_s: float,
    chunk_times_s: list[float],
    warmup: bool,
    labels: dict[str, Any],
    cut_off_tokens: int | None = None,
) -> RequestRecord:
    """The record of a request the engine took: finished (HTTP 200 with the engine's finish
    reason) or, given the ``cut_off_tokens`` it had produced, still running or waiting when the
    simulated time ran out (``incomplete``, no end)."""
    done = cut_off_tokens is None
    return RequestRecord(
        request_id=idx,
        sent_s=sent_s,
        first_token_s=r.first_token_s,
        end_s=r.finish_s if done else None,
        chunk_times_s=chunk_times_s,
        prompt_tokens=r.prompt_tokens,
        completion_tokens=r.output if done else cut_off_tokens,
        token_count_source="simulated",
        finish_reason=r.finish_reason if done else None,
        http_status=200 if done else None,
        status="ok" if done else "incomplete",
        warmup=warmup,
        labels=labels,
    )


def _rejected_record(
    idx: int,
    sent_s: float,
    t_arr: float,
    prompt_tokens: int,
    exc: RequestRejected,
    warmup: bool,
    labels: dict[str, Any],
) -> RequestRecord:
    """The record of a request the engine refused (vLLM's 400, at once)."""
    return RequestRecord(
        request_id=idx,
        sent_s=sent_s,
        end_s=t_arr,
        prompt_tokens=prompt_tokens,
        completion_tokens=0,
        token_count_source="simulated",
        http_status=exc.status,
        status="failed",
        error_class="http_4xx",
        error_message=exc.message,
        warmup=warmup,
        labels=dict(labels),
    )


def _timeseries_frame(
    rows: list[tuple[float, int, int, int, int, str]], total_blocks: int
) -> pd.DataFrame:
    """:data:`TIMESERIES_COLUMNS` from rows (time, running, waiting, blocks, preemptions, event)."""
    frame = pd.DataFrame(
        rows,
        columns=["time_s", "running", "waiting", "kv_blocks_used", "preemptions_total", "event"],
    )
    frame.insert(3, "in_flight", frame["running"] + frame["waiting"])
    frame.insert(5, "kv_usage", frame["kv_blocks_used"] / max(1, total_blocks))
    return frame


def _run_header(
    config: EngineConfig,
    workload: Workload,
    started_at: str,
    stats: SimStats,
    *,
    load: dict[str, Any],
    extra: dict[str, Any],
) -> RunHeader:
    """The run header of a simulated run: ``config`` is the (first) engine, ``load`` gives the
    driver's kind and options, ``extra`` is added after the engine's description."""
    header = RunHeader(
        source="simulated",
        started_at=started_at,
        target={
            "kind": "simulated",
            "base_url": "virtual time (infphys.sim)",
            "model": default_served_model_name(config.model),
            "gpu": config.gpu.key,
            "engine_model": config.model.key,
        },
        load={
            "kind": load["kind"],
            "levels": [workload.describe()],
            **{k: v for k, v in load.items() if k != "kind"},
        },
        seed=workload.seed,
        extra={"engine": config.describe(), **extra},
    )
    header.extra["sim_stats"] = {
        "steps": stats.steps,
        "stretches": stats.stretches,
        "stretch_steps": stats.stretch_steps,
        "exact_steps": stats.exact_steps,
        "preemptions": stats.preemptions,
        "truncated": stats.truncated,
    }
    return header


def simulate(
    config: EngineConfig,
    workload: Workload,
    *,
    keep_chunk_times: bool = True,
    timeseries: bool = True,
    max_sim_s: float | None = None,
    exact: bool = False,
) -> SimResult:
    """Run ``workload`` through the engine ``config`` in simulated time.

    Args:
        config: the simulated engine.
        workload: the load.
        keep_chunk_times: keep every token's time in ``chunk_times_s`` (memory: one float per
            token); False leaves it empty.
        timeseries: record the engine's state over time.
        max_sim_s: stop at this simulated time; unfinished requests become ``incomplete``.
        exact: step one by one with the reference scheduler (no fast-forward; for tests).

    Returns:
        A :class:`SimResult`; records are in completion order.
    """
    check_engine_config("config", config)
    _check_run(workload, max_sim_s)
    wall0 = time.perf_counter()
    started_at = utc_timestamp()
    eng = Engine(config, exact=exact, track_steps=keep_chunk_times)
    sizes = workload.sizes()
    warmup = workload.warmup
    base_labels = workload.record_labels()
    ignore_eos = workload.ignore_eos
    records: list[RequestRecord] = []
    rows: list[tuple[float, int, int, int, int, str]] = []
    log = rows.append if timeseries else None
    closed = workload.mode == "closed"
    arrivals = _Arrivals(workload, config.frontend_latency_s, config.frontend_service_s)
    pending = arrivals.pending
    sent_at = arrivals.sent_at
    next_request = arrivals.next_request
    client_of: dict[int, int] = {}

    def record(r: SimRequest) -> None:
        idx = int(r.request_id)  # type: ignore[call-overload]
        labels = dict(base_labels)
        labels["num_preemptions"] = r.num_preemptions
        times = eng.token_times(r) if keep_chunk_times else []
        records.append(
            _engine_record(idx, r, sent_at.pop(idx, r.arrival_s), times, idx < warmup, labels)
        )

    def submit(t_arr: float, idx: int, client: int) -> None:
        p, mt = sizes[idx]
        try:
            eng.add_request(p, mt, arrival_s=t_arr, request_id=idx, ignore_eos=ignore_eos)
            if closed:
                client_of[idx] = client
        except RequestRejected as exc:
            records.append(
                _rejected_record(
                    idx, sent_at.pop(idx, t_arr), t_arr, p, exc, idx < warmup, base_labels
                )
            )
            next_request(t_arr, client)
        if log is not None:
            log(
                (
                    t_arr,
                    len(eng.running),
                    len(eng.waiting),
                    eng.kv_blocks_used,
                    eng.preemptions_total,
                    "arrival",
                )
            )

    inf = math.inf
    horizon = inf if max_sim_s is None else float(max_sim_s)
    truncated = False
    while True:
        now = eng.now_s
        while pending and pending[0][0] <= now:
            submit(*heapq.heappop(pending))
        if eng.idle:
            if not pending:
                break
            if pending[0][0] >= horizon:
                truncated = True
                break
            eng.set_now(pending[0][0])
            continue
        if now >= horizon:
            truncated = True
            break
        if log is not None:
            log(
                (
                    now,
                    len(eng.running),
                    len(eng.waiting),
                    eng.kv_blocks_used,
                    eng.preemptions_total,
                    "step",
                )
            )
        nxt = pending[0][0] if pending else inf
        if eng.fast_forward(next_arrival_s=nxt, until_s=horizon):
            continue
        for r in eng.step().finished:
            record(r)
            if closed:
                next_request(eng.now_s, client_of.pop(int(r.request_id)))  # type: ignore[call-overload]

    end_s = eng.now_s
    if truncated:
        left: list[SimRequest] = [*eng.running, *eng.waiting]
        for r in left:
            idx = int(r.request_id)  # type: ignore[call-overload]
            times = eng.token_times(r) if keep_chunk_times else []
            out = eng.output_tokens(r)
            records.append(
                _engine_record(idx, r, r.arrival_s, times, idx < warmup, dict(base_labels), out)
            )
    if log is not None:
        log(
            (
                end_s,
                len(eng.running),
                len(eng.waiting),
                eng.kv_blocks_used,
                eng.preemptions_total,
                "end",
            )
        )

    frame = _timeseries_frame(rows, eng.total_blocks)

    first_sent = min((r.sent_s for r in records), default=0.0)
    stats = SimStats(
        wall_s=time.perf_counter() - wall0,
        sim_duration_s=end_s - first_sent,
        steps=eng.steps,
        stretches=eng.stretches,
        stretch_steps=eng.stretch_steps,
        exact_steps=eng.exact_steps,
        preemptions=eng.preemptions_total,
        truncated=truncated,
    )
    header = _run_header(
        config,
        workload,
        started_at,
        stats,
        load={"kind": "simulate", "max_sim_s": max_sim_s, "keep_chunk_times": keep_chunk_times},
        extra={"exact": exact},
    )
    return SimResult(
        header=header,
        records=records,
        timeseries=frame,
        stats=stats,
        config=config,
        workload=workload,
    )
