"""The load generator: closed and open loops, sweeps, token-budget grids and overload runs.

Every run is a sequence of *levels* (:class:`Level`, the package's one workload spec
:class:`infphys.workload.Workload`), each a stretch of constant load:

- closed loop (``concurrency=c``): c workers each send a request, wait for its end, send the
  next — c requests in flight at all times. The first ``warmup`` requests of the level are
  flagged and left out of the statistics. A closed loop hides queueing: when the server slows,
  the client slows with it.
- open loop (``rate_per_s=λ``): requests are sent at scheduled times whatever happens to the
  earlier ones — constant gaps 1/λ, or Poisson arrivals (exponential gaps drawn from one
  ``random.Random(seed)``; the first request goes at the level's start). This is the mode that
  shows queueing honestly. ``max_in_flight`` caps the sends; a capped send goes late and the
  lateness is recorded. An offline level (``rate_per_s=math.inf``) sends everything at once;
  a trace level (:meth:`Level.trace`) replays recorded send times and sizes. Per-request sizes
  (a trace, or ``prompt_tokens_max`` / ``max_tokens_max`` ranges) go out as synthetic prompts.

Each level is bounded in count (``requests``) and in time: no request is started after
``duration_s`` (the run's, or the level's own when shorter), and what is still in flight
``drain_s`` later is cancelled and recorded as ``incomplete``. Records are written to the run
file (:class:`infphys.records.RunWriter`) as each request ends, so an interrupted run (Ctrl-C,
an exception, a kill) keeps every finished request.

Delivered load is reported next to the load asked for (:class:`DeliveredLoad`): mean and peak
requests in flight, the delivered send rate, the open loop's dispatch lag (actual send −
scheduled time), and three client health figures — the CPU share of the event-loop thread, the
event-loop lag (how late a 10 ms timer fires), and the receive lag (how long after the kernel
received a response's bytes the client read them; ``http://`` targets on Linux). When the client
thread is near one full core or its loop runs late, a warning says so. Latencies survive a busy
client — every arrival carries the kernel's receive time (see :mod:`infphys.measure._wire`) — but
the load it delivers (rate, requests in flight) is then what the client managed, not what was
asked; on ``https://`` targets (aiohttp, Python-side stamps) the latencies suffer too.
The per-level machinery (workers, probes, the delivered-load figures) is in
:mod:`infphys.measure._levels`. Past one core, ``workers=N`` (any entry point) sends from N
processes with the same global load and one run file: :mod:`infphys.measure._workers`.

Worked example: ``run_closed_loop(target, concurrency=8, requests=200, warmup=8)`` against a server
that answers in 0.5 s takes about 200 / 8 × 0.5 = 12.5 s and should report a mean in flight
close to 8 and a throughput close to 8 / 0.5 = 16 requests/s (Little's Law).

Notebooks: every entry point is a coroutine (``await run_closed_loop(...)`` works in marimo and
Jupyter cells); :func:`run_sync` runs one from plain code, and from inside a running event loop
(it then uses a worker thread with its own loop).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from infphys import stats
from infphys._check import non_negative, non_negative_int, positive, positive_int
from infphys.measure._levels import (
    CLIENT_CPU_WARN_FRACTION,
    DISPATCH_LAG_WARN_S,
    LOOP_LAG_WARN_S,
    DeliveredLoad,
    DeliveredLog,
    Level,
    LevelDriver,
    LevelHealth,
    LoadProgress,
    LoopLagProbe,
    check_level,
    delivered_dict,
)
from infphys.measure._sync import run_sync
from infphys.measure._worker_plan import WorkerOptions
from infphys.measure.client import HttpStack, Timeouts
from infphys.measure.metrics import MetricsScraper, metrics_path_for
from infphys.measure.prompts import PromptList, PromptSource, SyntheticPrompts
from infphys.measure.target import Target
from infphys.records import RequestRecord, RunHeader, RunWriter, records_to_frame, utc_timestamp

__all__ = [
    "CLIENT_CPU_WARN_FRACTION",
    "DISPATCH_LAG_WARN_S",
    "LOOP_LAG_WARN_S",
    "DeliveredLoad",
    "Level",
    "LoadProgress",
    "LoadResult",
    "open_loop",
    "overload",
    "run_closed_loop",
    "run_levels",
    "run_sync",
    "sweep",
    "token_grid",
]


@dataclass(slots=True)
class LoadResult:
    """A finished (or interrupted) run: its header, records and delivered load."""

    header: RunHeader
    records: list[RequestRecord]
    delivered: list[DeliveredLoad]
    warnings: list[str]
    path: Path | None = None
    metrics: pd.DataFrame | None = None
    metrics_path: Path | None = None

    def frame(self) -> pd.DataFrame:
        """One row per request (:func:`infphys.records.records_to_frame`)."""
        return records_to_frame(self.records, self.header)

    def summary(self) -> pd.DataFrame:
        """One row per level (:func:`infphys.stats.summarize`)."""
        return stats.summarize(self.frame())

    def delivered_frame(self) -> pd.DataFrame:
        """One row per level: the load delivered (:class:`DeliveredLoad`)."""
        return pd.DataFrame([delivered_dict(d) for d in self.delivered])

    @classmethod
    def of_run(
        cls,
        header: RunHeader,
        records: list[RequestRecord],
        judged: DeliveredLog,
        path: Path | None,
        scraper: MetricsScraper | None,
    ) -> LoadResult:
        """The result of a run that has ended: its levels' judgement and the server's metrics."""
        return cls(
            header=header,
            records=records,
            delivered=judged.delivered,
            warnings=judged.warnings,
            path=path,
            metrics=scraper.frame() if scraper is not None else None,
            metrics_path=scraper.path if scraper is not None else None,
        )


def run_scraper(
    target: Target, interval_s: float | None, clock_zero_s: float, run_path: Path | None
) -> MetricsScraper | None:
    """The scraper of the server's metrics during a run, every ``interval_s`` (None: none),
    writing to ``RUN.metrics.jsonl`` beside the run file ``run_path``, if there is one."""
    if interval_s is None:
        return None
    metrics_path = metrics_path_for(run_path) if run_path is not None else None
    return MetricsScraper(
        target, interval_s=interval_s, clock_zero_s=clock_zero_s, path=metrics_path
    )


def _prompt_source(
    prompts: Sequence[str] | PromptSource | None, lv: Level, seed: int
) -> PromptSource:
    if prompts is None:
        return SyntheticPrompts(lv.prompt_tokens, seed=seed)
    if isinstance(prompts, Sequence) and not isinstance(prompts, str):
        return PromptList(prompts)
    if callable(prompts):
        return prompts
    raise ValueError("prompts must be a list of strings, a prompt source, or None")


def level_labels(index: int, lv: Level, *, synthetic: bool) -> dict[str, Any]:
    """The labels every record of level ``index`` carries: the level's load, less its counts
    (and its prompt size as ``prompt_tokens_asked`` when the prompts are synthetic)."""
    labels: dict[str, Any] = {"level": index, **lv.describe()}
    del labels["requests"], labels["warmup"]
    labels.pop("duration_s", None)
    asked = labels.pop("prompt_tokens")
    if synthetic:
        labels["prompt_tokens_asked"] = asked
    return labels


def _run_header(
    target: Target,
    levels: Sequence[Level],
    *,
    kind: str,
    duration_s: float,
    drain_s: float,
    max_in_flight: int,
    timeouts: Timeouts,
    stream: bool,
    include_usage: bool,
    prompts: dict[str, Any] | None,
    extra_body: Mapping[str, Any] | None,
    seed: int,
    http_client: str,
) -> RunHeader:
    """The header of a measured run (what :func:`run_levels` was asked to do)."""
    return RunHeader(
        source="measured",
        started_at=utc_timestamp(),
        target=target.public_dict(),
        load={
            "kind": kind,
            "levels": [lv.describe() for lv in levels],
            "duration_s_per_level": duration_s,
            "drain_s": drain_s,
            "max_in_flight": max_in_flight,
            "timeouts": timeouts.as_dict(),
            "stream": stream,
            "include_usage": include_usage,
            "prompts": prompts
            if prompts is not None
            else {
                "kind": "synthetic",
                "seed": seed,
                "counting": "words from infphys.measure.prompts.WORDS, ~1 token each",
            },
            "extra_body": dict(extra_body or {}),
        },
        seed=seed,
        extra={"http_client": http_client},
    )


async def run_levels(
    target: Target,
    levels: Sequence[Level],
    *,
    path: str | Path | None = None,
    kind: str = "custom",
    prompts: Sequence[str] | PromptSource | None = None,
    timeouts: Timeouts | None = None,
    duration_s: float = 300.0,
    drain_s: float | None = None,
    max_in_flight: int = 10_000,
    seed: int = 0,
    stream: bool = True,
    include_usage: bool = True,
    extra_body: Mapping[str, Any] | None = None,
    metrics_interval_s: float | None = None,
    progress: LoadProgress | None = None,
    on_record: Callable[[RequestRecord], None] | None = None,
    http_stack: HttpStack = "auto",
    log_notes: bool = True,
    workers: int = 1,
) -> LoadResult:
    """Run ``levels`` one after the other against ``target``; what every mode runs on.

    Args:
        target: the server.
        levels: the load, level by level.
        path: the run file (JSON lines); None keeps the run in memory only.
        kind: what the run is (``baseline``, ``sweep``, …), stored in the header.
        prompts: None for synthetic prompts of each level's ``prompt_tokens``, or a list of
            prompts, or a :class:`~infphys.measure.prompts.PromptSource`.
        timeouts: per-request limits.
        duration_s: per level, no request is sent after this many seconds.
        drain_s: per level, how long after ``duration_s`` in-flight requests may still finish
            before they are cancelled (``incomplete``); default ``timeouts.total_s``.
        max_in_flight: open loop: most requests in flight at once.
        seed: seeds ``random.Random`` for arrivals and the synthetic prompts; in the header.
        stream, include_usage, extra_body: passed to :class:`ChatClient`.
        metrics_interval_s: scrape the server's Prometheus metrics this often (None: don't);
            written next to the run file as ``<name>.metrics.jsonl``.
        progress: live counters to update (for a progress display).
        on_record: called with each finished record.
        http_stack: which HTTP client sends (see :class:`ChatClient`); the default times
            arrivals with the kernel's receive timestamps on ``http://`` targets.
        log_notes: log each level's "the client may be the bottleneck" note as a warning
            (False, as labs do: the notes are only kept in :attr:`LoadResult.warnings`).
        workers: send from this many processes, each with its own event loop, keeping the
            level's global concurrency, rate and counts (see :mod:`infphys.measure._workers`);
            1 sends from this process.

    Returns:
        A :class:`LoadResult`. It is also what was written to ``path``, even if the run is
        interrupted: the exception propagates after the file is closed.
    """
    if not levels:
        raise ValueError("levels must hold at least one level")
    for i, lv in enumerate(levels):
        check_level(f"levels[{i}]", lv)
        if prompts is not None and not lv.fixed_sizes:
            raise ValueError(
                f"levels[{i}]: per-request sizes (a trace or a size range) are sent as synthetic "
                "prompts; leave prompts=None"
            )
    duration = positive("duration_s", duration_s)
    timeouts = timeouts or Timeouts()
    drain = timeouts.total_s if drain_s is None else non_negative("drain_s", drain_s)
    positive_int("max_in_flight", max_in_flight)
    non_negative_int("seed", seed)
    positive_int("workers", workers)
    if metrics_interval_s is not None:
        positive("metrics_interval_s", metrics_interval_s)
    source = _prompt_source(prompts, levels[0], seed)
    options = WorkerOptions(
        target=target,
        levels=tuple(levels),
        prompts=source,
        synthetic_prompts=prompts is None,
        timeouts=timeouts,
        duration_s=duration,
        drain_s=drain,
        max_in_flight=max_in_flight,
        seed=seed,
        stream=stream,
        include_usage=include_usage,
        extra_body=dict(extra_body or {}),
        http_stack=http_stack,
        workers=workers,
    )
    client = options.chat_client()
    header = _run_header(
        target,
        levels,
        kind=kind,
        duration_s=duration,
        drain_s=drain,
        max_in_flight=max_in_flight,
        timeouts=timeouts,
        stream=stream,
        include_usage=include_usage,
        prompts=source.describe() if prompts is not None else None,
        extra_body=extra_body,
        seed=seed,
        http_client=client.http_client,
    )
    if workers > 1:
        from infphys.measure._workers import run_in_workers

        return await run_in_workers(
            options,
            header,
            path=path,
            metrics_interval_s=metrics_interval_s,
            progress=progress,
            on_record=on_record,
            log_notes=log_notes,
        )
    run_path = Path(path) if path is not None else None
    writer = RunWriter(run_path, header).open() if run_path is not None else None
    progress = progress or LoadProgress()
    progress.planned = sum(lv.total_requests for lv in levels)
    clock_zero = time.perf_counter()
    client.clock_zero_s = clock_zero
    rng = random.Random(seed)
    driver = LevelDriver(
        client, source, writer, progress, on_record, duration, drain, max_in_flight, rng, seed
    )
    judged = DeliveredLog(log_notes=log_notes)
    scraper = run_scraper(target, metrics_interval_s, clock_zero, run_path)
    probe = LoopLagProbe()
    try:
        async with client:
            if scraper is not None:
                await scraper.start()
            for index, lv in enumerate(levels):
                labels = level_labels(index, lv, synthetic=prompts is None)
                if prompts is None:
                    driver.prompts = SyntheticPrompts(lv.prompt_tokens, seed=seed)
                progress.level_label = lv.asked()
                first = len(driver.records)
                health = LevelHealth()
                try:
                    await driver.drive(lv, labels, probe, health)
                finally:
                    judged.add(index, lv, driver.records[first:], health)
    finally:
        await probe.stop()
        if scraper is not None:
            await scraper.stop()
        if writer is not None:
            writer.close()
    return LoadResult.of_run(header, driver.records, judged, run_path, scraper)


# -- the modes ------------------------------------------------------------------------------


def _ints(name: str, values: Sequence[int]) -> list[int]:
    vals = list(values)
    if not vals:
        raise ValueError(f"{name} must hold at least one value")
    return [positive_int(f"{name}[{i}]", v) for i, v in enumerate(vals)]


def _floats(name: str, values: Sequence[float]) -> list[float]:
    vals = list(values)
    if not vals:
        raise ValueError(f"{name} must hold at least one value")
    return [positive(f"{name}[{i}]", v) for i, v in enumerate(vals)]


async def run_closed_loop(
    target: Target,
    *,
    concurrency: int = 1,
    requests: int = 20,
    warmup: int = 0,
    prompt_tokens: int = 128,
    max_tokens: int = 64,
    **options: Any,
) -> LoadResult:
    """``requests`` requests (plus ``warmup``) at a fixed ``concurrency``; see :func:`run_levels`
    for ``options`` (``path``, ``timeouts``, ``duration_s``, ``seed``, ``prompts``, …)."""
    lv = Level.closed(
        concurrency, requests, warmup=warmup, prompt_tokens=prompt_tokens, max_tokens=max_tokens
    )
    options.setdefault("kind", "closed_loop")
    return await run_levels(target, [lv], **options)


async def open_loop(
    target: Target,
    *,
    rate_per_s: float,
    requests: int = 100,
    arrival: Literal["poisson", "constant"] = "poisson",
    warmup: int = 0,
    prompt_tokens: int = 128,
    max_tokens: int = 64,
    **options: Any,
) -> LoadResult:
    """Requests sent at ``rate_per_s`` (Poisson or constant gaps), bounded by ``requests`` and
    ``duration_s``; see :func:`run_levels` for ``options``."""
    lv = Level.open(
        rate_per_s,
        requests,
        arrival=arrival,
        warmup=warmup,
        prompt_tokens=prompt_tokens,
        max_tokens=max_tokens,
    )
    options.setdefault("kind", "open_loop")
    return await run_levels(target, [lv], **options)


async def sweep(
    target: Target,
    *,
    concurrency: Sequence[int] | None = None,
    rates_per_s: Sequence[float] | None = None,
    requests_per_level: int = 50,
    warmup_per_level: int = 0,
    arrival: Literal["poisson", "constant"] = "poisson",
    prompt_tokens: int = 128,
    max_tokens: int = 64,
    **options: Any,
) -> LoadResult:
    """One level per concurrency (closed loop) or per rate (open loop), in the order given.

    Give exactly one of ``concurrency`` and ``rates_per_s``. ``stats.summarize`` and
    ``stats.sweep_knee`` read the result.
    """
    if (concurrency is None) == (rates_per_s is None):
        raise ValueError("concurrency or rates_per_s: give exactly one of them")

    def level(c: int | None, r: float | None) -> Level:
        return Level(
            requests=requests_per_level,
            concurrency=c,
            rate_per_s=r,
            arrival=arrival,
            warmup=warmup_per_level,
            prompt_tokens=prompt_tokens,
            max_tokens=max_tokens,
        )

    if concurrency is not None:
        levels = [level(c, None) for c in _ints("concurrency", concurrency)]
    else:
        assert rates_per_s is not None
        levels = [level(None, r) for r in _floats("rates_per_s", rates_per_s)]
    options.setdefault("kind", "sweep")
    return await run_levels(target, levels, **options)


async def token_grid(
    target: Target,
    *,
    prompt_tokens: Sequence[int] = (128, 512, 2048),
    max_tokens: Sequence[int] = (16, 128, 512),
    requests_per_cell: int = 5,
    concurrency: int = 1,
    warmup_per_cell: int = 0,
    **options: Any,
) -> LoadResult:
    """The token budget: one level per (prompt size, ``max_tokens``) cell, closed loop.

    Shows how prefill (prompt size → TTFT) and decode (``max_tokens`` → e2e) cost separately.
    Servers may stop before ``max_tokens``; send ``extra_body={"ignore_eos": True}`` to vLLM to
    force full-length answers.
    """
    if options.get("prompts") is not None:
        raise ValueError("prompts: a token grid uses synthetic prompts of each cell's size")
    levels = [
        Level(
            requests=requests_per_cell,
            concurrency=concurrency,
            warmup=warmup_per_cell,
            prompt_tokens=p,
            max_tokens=m,
        )
        for p in _ints("prompt_tokens", prompt_tokens)
        for m in _ints("max_tokens", max_tokens)
    ]
    options.setdefault("kind", "token_grid")
    return await run_levels(target, levels, **options)


async def overload(
    target: Target,
    *,
    concurrency: Sequence[int] = (8, 32, 128),
    requests_per_level: int = 100,
    timeout_s: float = 10.0,
    prompt_tokens: int = 128,
    max_tokens: int = 64,
    **options: Any,
) -> LoadResult:
    """Rising concurrency with a short per-request timeout: where requests start failing.

    Every request has ``total_s = timeout_s`` (and ``read_s`` no longer); a request over the
    limit is a ``total_timeout`` or ``read_timeout`` failure, so the error-rate chart shows
    where the server stops keeping up.
    """
    t = positive("timeout_s", timeout_s)
    base: Timeouts = options.pop("timeouts", None) or Timeouts()
    options["timeouts"] = Timeouts(
        connect_s=min(base.connect_s, t), read_s=min(base.read_s, t), total_s=t
    )
    levels = [
        Level(
            requests=requests_per_level,
            concurrency=c,
            prompt_tokens=prompt_tokens,
            max_tokens=max_tokens,
            labels={"timeout_s": t},
        )
        for c in _ints("concurrency", concurrency)
    ]
    options.setdefault("kind", "overload")
    options.setdefault("drain_s", t + 1.0)
    return await run_levels(target, levels, **options)
