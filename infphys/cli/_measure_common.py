"""What the measuring commands share: their options, the live display, running a load, the summary.

Every load command (``baseline``, ``sweep``, ``tokens``, ``overload``) takes the same target
options (:class:`TargetOptions`), run options (:class:`RunOptions`) and request options
(:class:`RequestOptions` with its own defaults on ``baseline`` and ``sweep``; the single
:data:`RequestsOpt`, … where ``tokens`` and ``overload`` order or word them differently),
checks the target with preflight, and runs through :func:`run_load`:
a live table of requests done, in flight, errors and the running p50/p95 of e2e, the run saved
as JSON lines (``runs/<command>-<time>.jsonl``) with the server's metrics beside it, and one row
per level in :func:`summary_table`.

Worked example: a timeout of 30 s gives ``Timeouts(connect_s=10, read_s=30, total_s=30)``.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import math
import time
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from infphys.cli._app import console, err_console, fail, warn
from infphys.cli._tables import column_table, fmt, fmt_ms
from infphys.cli._target import resolve_cli_target
from infphys.measure.target import DEFAULT_BASE_URL, DEFAULT_CHAT_PATH, DEFAULT_MODEL

__all__ = [
    "ConcurrencyOpt",
    "DurationOpt",
    "MaxTokensOpt",
    "PromptTokensOpt",
    "RequestOptions",
    "RequestsOpt",
    "RunOptions",
    "TargetOptions",
    "TimeoutOpt",
    "WarmupOpt",
    "print_flags",
    "run_load",
    "summary_table",
    "timeouts",
]

# -- options shared by every measuring command -------------------------------------------------

ConcurrencyOpt = Annotated[int, typer.Option("--concurrency", "-c", help="Requests in flight.")]
RequestsOpt = Annotated[
    int, typer.Option("--requests", "-n", help="Measured requests (per level).")
]
WarmupOpt = Annotated[
    int, typer.Option("--warmup", help="Warm-up requests per level, left out of the statistics.")
]
PromptTokensOpt = Annotated[
    int, typer.Option("--prompt-tokens", help="Synthetic prompt size, tokens (~ words).")
]
MaxTokensOpt = Annotated[int, typer.Option("--max-tokens", help="max_tokens of each request.")]
TimeoutOpt = Annotated[
    float, typer.Option("--timeout", help="Per-request limit, seconds (whole answer).")
]
DurationOpt = Annotated[
    float, typer.Option("--max-duration", help="Per level: send no request after this, seconds.")
]


@dataclass(frozen=True)
class RequestOptions:
    """What each request asks and how long a level may run, in that order on ``baseline`` and
    ``sweep``; each command gives its own defaults (``RequestOptions(requests=40)``)."""

    requests: RequestsOpt = 20
    warmup: WarmupOpt = 2
    prompt_tokens: PromptTokensOpt = 128
    max_tokens: MaxTokensOpt = 64
    timeout: TimeoutOpt = 120.0
    max_duration: DurationOpt = 600.0


def _env_option(flag: str, what: str, env: str, default: str) -> Any:
    """An option whose value, when not given, is ``$env`` or else ``default``."""
    return typer.Option(flag, help=f"{what} (default: ${env} or {default}).")


@dataclass(frozen=True)
class TargetOptions:
    """The server a command talks to; None keeps the environment's setting (or the default)."""

    base_url: Annotated[
        str | None, _env_option("--base-url", "Server URL", "NIM_BASE_URL", DEFAULT_BASE_URL)
    ] = None
    chat_path: Annotated[
        str | None,
        _env_option("--chat-path", "Chat API path", "NIM_CHAT_PATH", DEFAULT_CHAT_PATH),
    ] = None
    model: Annotated[
        str | None, _env_option("--model", "Model name", "NIM_GEN_MODEL", DEFAULT_MODEL)
    ] = None
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            help="Bearer token (default: $NIM_API_KEY or $OPENAI_API_KEY). Never saved or printed.",
        ),
    ] = field(default=None, repr=False)  # a secret: never in a repr

    def as_kwargs(self) -> dict[str, str | None]:
        """The keyword arguments of :func:`infphys.cli._target.resolve_cli_target`."""
        return asdict(self)


@dataclass(frozen=True)
class RunOptions:
    """How a load command runs and where it saves, the same for every load command."""

    seed: Annotated[
        int, typer.Option("--seed", help="Seed of prompts and arrivals (recorded).")
    ] = 0
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Run file (default: runs/<command>-<time>.jsonl)."),
    ] = None
    no_stream: Annotated[
        bool, typer.Option("--no-stream", help="Ask for one JSON body instead of an SSE stream.")
    ] = False
    no_usage: Annotated[
        bool,
        typer.Option(
            "--no-usage", help="Don't send stream_options.include_usage (token counts estimated)."
        ),
    ] = False
    metrics_interval_s: Annotated[
        float,
        typer.Option("--metrics-interval", help="Scrape server metrics every N s (0: don't)."),
    ] = 1.0
    skip_preflight: Annotated[
        bool, typer.Option("--skip-preflight", help="Don't check the server before the run.")
    ] = False
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            help="Send from N processes (one event loop each) beyond one core's ~4,000 req/s; "
            "the concurrency, rate and request count stay global.",
        ),
    ] = 1


def default_out(command: str) -> Path:
    """Where a run of ``command`` is saved when no ``--out`` is given:
    ``runs/<command>-<local time>.jsonl`` (``runs/sweep-20261127-101500.jsonl``)."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{command}-{stamp}.jsonl"


# -- live progress -----------------------------------------------------------------------------


class ProgressView:
    """A rich renderable over a LoadProgress (redrawn by rich.live a few times a second)."""

    def __init__(self, progress: Any, command: str) -> None:
        self.progress = progress
        self.command = command
        self.t0 = time.perf_counter()

    def __rich__(self) -> Any:
        p = self.progress
        pct = p.e2e_percentiles_s()
        errors = ", ".join(f"{k} {v}" for k, v in sorted(p.errors.items())) or "none"
        line = Text.assemble(
            (f"{self.command} ", "bold"),
            f"{p.level_label}  ",
            f"done {p.done}/{p.planned}  ",
            f"in flight {p.in_flight}  ",
            (f"failed {p.failed}  ", "red" if p.failed else ""),
            f"e2e p50 {fmt_ms(pct['p50'])} ms  p95 {fmt_ms(pct['p95'])} ms  ",
            f"{time.perf_counter() - self.t0:.0f} s",
        )
        return Group(line, Text(f"errors: {errors}", style="dim"))


def check_target(target: Any, skip: bool) -> None:
    from infphys.measure.preflight import preflight_sync

    if skip:
        return
    verdict = preflight_sync(target, timeout_s=30.0)
    if not verdict.ok:
        fail(verdict.message, code=1)
    err_console.print(f"[green]preflight ok:[/] {verdict.message}", highlight=False)


Load = Callable[..., Coroutine[Any, Any, Any]]


def run_load(
    command: str,
    load: Load,
    run: RunOptions,
    target: TargetOptions,
    **load_options: Any,
) -> None:
    """Resolve the target, preflight it, run ``load(target, **load_options, ...)`` (a mode of
    :mod:`infphys.measure.load`, also given the run's path, seed, streaming and progress) with
    a live display, print the summary and where the run was saved.

    Ctrl-C, SIGTERM and SIGHUP all stop the run the same way: finished requests are kept, load
    worker processes (``--workers``) are ended, and the command exits 130.
    """
    from infphys.cli._signals import stop_on_signals
    from infphys.measure.load import LoadProgress

    if run.metrics_interval_s < 0:
        raise ValueError(f"--metrics-interval must be >= 0 (got {run.metrics_interval_s!r})")
    if run.workers < 1:
        raise ValueError(f"--workers must be >= 1 (got {run.workers!r})")
    path = run.out or default_out(command)
    progress = LoadProgress()
    options: dict[str, Any] = {
        "path": path,
        "kind": command,
        "seed": run.seed,
        "stream": not run.no_stream,
        "include_usage": not run.no_usage,
        "metrics_interval_s": run.metrics_interval_s or None,
        "progress": progress,
        "workers": run.workers,
    }
    with resolve_cli_target(**target.as_kwargs()) as resolved:
        check_target(resolved, run.skip_preflight)
        err_console.print(
            f"measuring {resolved.model} at {resolved.base_url} → {path}", highlight=False
        )
        view = ProgressView(progress, command)
        try:
            with (
                stop_on_signals(),
                Live(view, console=err_console, refresh_per_second=4, transient=True),
            ):
                result = asyncio.run(load(resolved, **load_options, **options))
        except KeyboardInterrupt:
            err_console.print(
                f"[yellow]interrupted:[/] kept {progress.done} finished requests in {path}",
                highlight=False,
            )
            raise typer.Exit(130) from None
    frame = result.frame()
    console.print(summary_table(frame, title=f"{command}: {resolved.model} at {resolved.base_url}"))
    for w in result.warnings:
        warn(w)
    print_flags(frame)
    console.print(f"saved run: {result.path}", highlight=False, soft_wrap=True)
    if result.metrics_path is not None and result.metrics is not None and len(result.metrics):
        console.print(f"saved server metrics: {result.metrics_path}", highlight=False)
    console.print(f"charts: infphys report {result.path}", highlight=False, soft_wrap=True)


def print_flags(frame: Any) -> None:
    from infphys import stats

    ok = frame[frame["status"] == "ok"] if len(frame) else frame
    if len(ok) and (~ok["token_count_source"].isin(["usage", "simulated"])).any():
        sources = sorted(set(ok["token_count_source"]) - {"usage", "simulated"})
        err_console.print(
            f"[yellow]note:[/] token counts are estimates ({', '.join(sources)}): the server sent "
            "no usage.",
            highlight=False,
        )
    errors = stats.error_rates(frame)
    if len(errors):
        t = column_table("errors", ("class", "count", "share"), text=("class",))
        for row in errors.itertuples(index=False):
            t.add_row(str(row.error_class), str(row.count), f"{row.fraction:.1%}")
        console.print(t)
        failed = frame[frame["status"] == "failed"]
        if len(failed):
            example = failed.iloc[0]
            console.print(
                f"first error: {example['error_class']}: {example['error_message']}",
                highlight=False,
                soft_wrap=True,
            )


def summary_table(frame: Any, *, title: str = "summary") -> Table:
    """A rich table of :func:`infphys.stats.summarize`: one row per level, latencies in ms.

    Only the load columns that vary between levels are shown (the first present if none do).
    """
    from infphys import stats

    s = stats.summarize(frame)
    t = Table(title=f"{title} (latencies in ms)", title_justify="left")
    present = [
        c
        for c in ("concurrency", "rate_per_s", "prompt_tokens_asked", "max_tokens", "timeout_s")
        if c in s.columns and s[c].notna().all()
    ]
    load_cols = [c for c in present if s[c].nunique() > 1] or present[:1]
    heads = {
        "concurrency": "conc",
        "rate_per_s": "rate/s",
        "prompt_tokens_asked": "prompt",
        "max_tokens": "max\ntok",
        "timeout_s": "timeout",
    }
    # Two-line headers and no wrapping in the cells: the numbers stay whole in 80 columns.
    for c in load_cols:
        t.add_column(heads[c], justify="right", no_wrap=True)
    for name in (
        "ok/\nfail/inc",
        "req/s",
        "tok/s",
        "TTFT\np50",
        "TPOT\np50",
        "e2e\np50",
        "e2e\np95",
        "in\nflight",
    ):
        t.add_column(name, justify="right", no_wrap=True)
    for _, r in s.iterrows():
        t.add_row(
            *[fmt(r[c], 0 if c != "rate_per_s" else 2) for c in load_cols],
            f"{r['ok']}/{r['failed']}/{r['incomplete']}",
            fmt(r["throughput_req_per_s"], 1),
            fmt(r["output_tokens_per_s"], 0),
            fmt_ms(r["ttft_p50_s"]),
            fmt_ms(r["tpot_p50_s"]),
            fmt_ms(r["e2e_p50_s"]),
            fmt_ms(r["e2e_p95_s"]),
            fmt(r.get("mean_in_flight"), 1),
        )
    return t


def timeouts(timeout_s: float) -> Any:
    from infphys.measure.client import Timeouts

    if not (math.isfinite(timeout_s) and timeout_s > 0):
        raise ValueError(f"--timeout must be > 0 seconds (got {timeout_s!r})")
    return Timeouts(connect_s=min(10.0, timeout_s), read_s=min(60.0, timeout_s), total_s=timeout_s)
