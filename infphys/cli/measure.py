"""Measuring commands: ``preflight``, ``baseline``, ``sweep``, ``tokens``, ``overload``,
``report`` and ``stub``.

Each load command checks the target first (``preflight``), runs with a live display (requests
done, in flight, errors, live p50/p95), saves the run as JSON lines — by default under
``runs/<command>-<time>.jsonl``, with the server's metrics next to it — prints a summary and says
where the files are. ``infphys report RUN.jsonl`` turns any saved run (measured or simulated)
into the same summary and an HTML page of charts. Bad input prints one line and exits 2; an
unreachable or misconfigured server prints preflight's advice and exits 1; Ctrl-C keeps the
finished requests and exits 130.

Example::

    infphys sweep --concurrency 1,2,4,8,16 --requests 40
    infphys report runs/sweep-20261127-101500.jsonl
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import math
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from infphys.cli._app import app, clean_errors, console, err_console, fail
from infphys.cli._target import resolve_cli_target

__all__ = [
    "baseline_cmd",
    "overload_cmd",
    "parse_list",
    "preflight_cmd",
    "report_cmd",
    "stub_cmd",
    "summary_table",
    "sweep_cmd",
    "tokens_cmd",
]

# -- options shared by every measuring command -------------------------------------------------

BaseURLOpt = Annotated[
    str | None,
    typer.Option(
        "--base-url", help="Server URL (default: $NIM_BASE_URL or http://localhost:8000)."
    ),
]
ChatPathOpt = Annotated[
    str | None,
    typer.Option(
        "--chat-path", help="Chat API path (default: $NIM_CHAT_PATH or /v1/chat/completions)."
    ),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model", help="Model name (default: $NIM_GEN_MODEL or meta/llama-3.1-8b-instruct)."
    ),
]
APIKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        help="Bearer token (default: $NIM_API_KEY or $OPENAI_API_KEY). Never saved or printed.",
    ),
]
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
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of prompts and arrivals (recorded).")]
OutOpt = Annotated[
    Path | None,
    typer.Option("--out", "-o", help="Run file (default: runs/<command>-<time>.jsonl)."),
]
NoStreamOpt = Annotated[
    bool, typer.Option("--no-stream", help="Ask for one JSON body instead of an SSE stream.")
]
NoUsageOpt = Annotated[
    bool,
    typer.Option(
        "--no-usage", help="Don't send stream_options.include_usage (token counts estimated)."
    ),
]
MetricsOpt = Annotated[
    float,
    typer.Option("--metrics-interval", help="Scrape server metrics every N s (0: don't)."),
]
SkipPreflightOpt = Annotated[
    bool, typer.Option("--skip-preflight", help="Don't check the server before the run.")
]


def parse_list(option: str, text: str, kind: Callable[[str], Any]) -> list[Any]:
    """``"1,2,4"`` → ``[1, 2, 4]``; a bad item raises ``ValueError`` naming ``option``."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise ValueError(f"{option} must be a comma-separated list (got {text!r})")
    out: list[Any] = []
    for item in items:
        try:
            value = kind(item)
        except ValueError:
            raise ValueError(f"{option}: {item!r} is not a valid {kind.__name__}") from None
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            raise ValueError(f"{option}: every value must be > 0 (got {item!r})")
        out.append(value)
    return out


def _default_out(command: str) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{command}-{stamp}.jsonl"


def _fmt_ms(v: Any) -> str:
    """Seconds as milliseconds: one decimal below 100 ms, whole ms above (``1,674``)."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "—"
    if math.isnan(f):
        return "—"
    return f"{f * 1e3:,.1f}" if abs(f) < 0.1 else f"{f * 1e3:,.0f}"


def _fmt(v: Any, digits: int = 1) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "—" if v is None else str(v)
    return "—" if math.isnan(f) else f"{f:,.{digits}f}"


# -- live progress -----------------------------------------------------------------------------


class _ProgressView:
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
            f"e2e p50 {_fmt_ms(pct['p50'])} ms  p95 {_fmt_ms(pct['p95'])} ms  ",
            f"{time.perf_counter() - self.t0:.0f} s",
        )
        return Group(line, Text(f"errors: {errors}", style="dim"))


def _check_target(target: Any, skip: bool) -> None:
    from infphys.measure.preflight import preflight_sync

    if skip:
        return
    verdict = preflight_sync(target, timeout_s=30.0)
    if not verdict.ok:
        fail(verdict.message, code=1)
    err_console.print(f"[green]preflight ok:[/] {verdict.message}", highlight=False)


Make = Callable[[Any, Any, dict[str, Any]], Coroutine[Any, Any, Any]]


def _run_load(
    command: str,
    make: Make,
    *,
    out: Path | None,
    target_options: dict[str, Any],
    skip_preflight: bool,
    timeout_s: float,
    duration_s: float,
    seed: int,
    no_stream: bool,
    no_usage: bool,
    metrics_interval_s: float,
) -> None:
    """Resolve the target, preflight it, run ``make(target, progress, options)`` with a live
    display, print the summary and where the run was saved."""
    from infphys.measure.load import LoadProgress

    if metrics_interval_s < 0:
        raise ValueError(f"--metrics-interval must be >= 0 (got {metrics_interval_s!r})")
    path = out or _default_out(command)
    progress = LoadProgress()
    options: dict[str, Any] = {
        "path": path,
        "kind": command,
        "timeouts": _timeouts(timeout_s),
        "duration_s": duration_s,
        "seed": seed,
        "stream": not no_stream,
        "include_usage": not no_usage,
        "metrics_interval_s": metrics_interval_s or None,
        "progress": progress,
    }
    with resolve_cli_target(**target_options) as target:
        _check_target(target, skip_preflight)
        err_console.print(
            f"measuring {target.model} at {target.base_url} → {path}", highlight=False
        )
        view = _ProgressView(progress, command)
        try:
            with Live(view, console=err_console, refresh_per_second=4, transient=True):
                result = asyncio.run(make(target, progress, options))
        except KeyboardInterrupt:
            err_console.print(
                f"[yellow]interrupted:[/] kept {progress.done} finished requests in {path}",
                highlight=False,
            )
            raise typer.Exit(130) from None
    frame = result.frame()
    console.print(summary_table(frame, title=f"{command}: {target.model} at {target.base_url}"))
    for w in result.warnings:
        err_console.print(f"[yellow]warning:[/] {w}", highlight=False, soft_wrap=True)
    _print_flags(frame)
    console.print(f"saved run: {result.path}", highlight=False, soft_wrap=True)
    if result.metrics_path is not None and result.metrics is not None and len(result.metrics):
        console.print(f"saved server metrics: {result.metrics_path}", highlight=False)
    console.print(f"charts: infphys report {result.path}", highlight=False, soft_wrap=True)


def _print_flags(frame: Any) -> None:
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
        t = Table(title="errors", title_justify="left")
        t.add_column("class")
        t.add_column("count", justify="right")
        t.add_column("share", justify="right")
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
            *[_fmt(r[c], 0 if c != "rate_per_s" else 2) for c in load_cols],
            f"{r['ok']}/{r['failed']}/{r['incomplete']}",
            _fmt(r["throughput_req_per_s"], 1),
            _fmt(r["output_tokens_per_s"], 0),
            _fmt_ms(r["ttft_p50_s"]),
            _fmt_ms(r["tpot_p50_s"]),
            _fmt_ms(r["e2e_p50_s"]),
            _fmt_ms(r["e2e_p95_s"]),
            _fmt(r.get("mean_in_flight"), 1),
        )
    return t


def _timeouts(timeout_s: float) -> Any:
    from infphys.measure.client import Timeouts

    if not (math.isfinite(timeout_s) and timeout_s > 0):
        raise ValueError(f"--timeout must be > 0 seconds (got {timeout_s!r})")
    return Timeouts(connect_s=min(10.0, timeout_s), read_s=min(60.0, timeout_s), total_s=timeout_s)


def _target_options(
    base_url: str | None, chat_path: str | None, model: str | None, api_key: str | None
) -> dict[str, Any]:
    return {"base_url": base_url, "chat_path": chat_path, "model": model, "api_key": api_key}


# -- commands ------------------------------------------------------------------------------------


@app.command("preflight")
@clean_errors
def preflight_cmd(
    base_url: BaseURLOpt = None,
    chat_path: ChatPathOpt = None,
    model: ModelOpt = None,
    api_key: APIKeyOpt = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Limit of each step, s.")] = 30.0,
) -> None:
    """Check the server: model list, readiness, one tiny streamed answer. Exit 1 if not ok."""
    from infphys.measure.preflight import preflight_sync

    with resolve_cli_target(**_target_options(base_url, chat_path, model, api_key)) as target:
        verdict = preflight_sync(target, timeout_s=timeout)
    t = Table(title=f"preflight: {target.model} at {target.base_url}", title_justify="left")
    for col in ("step", "url", "status", "result", "ms"):
        t.add_column(col, justify="right" if col == "ms" else "left")
    for st in verdict.steps:
        mark = "skipped" if st.skipped else ("ok" if st.ok else "FAILED")
        t.add_row(
            st.name,
            st.url,
            "—" if st.status is None else str(st.status),
            f"{mark}: {st.detail}",
            f"{st.elapsed_s * 1e3:.0f}",
        )
    console.print(t)
    if verdict.ok:
        console.print(f"[green]ok:[/] {verdict.message}", highlight=False, soft_wrap=True)
    else:
        fail(verdict.message, code=1)


LoadOpts = dict[str, Any]


@app.command("baseline")
@clean_errors
def baseline_cmd(
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", help="Requests in flight.")
    ] = 1,
    requests: RequestsOpt = 20,
    warmup: WarmupOpt = 2,
    prompt_tokens: PromptTokensOpt = 128,
    max_tokens: MaxTokensOpt = 64,
    timeout: TimeoutOpt = 120.0,
    max_duration: DurationOpt = 600.0,
    seed: SeedOpt = 0,
    out: OutOpt = None,
    no_stream: NoStreamOpt = False,
    no_usage: NoUsageOpt = False,
    metrics_interval: MetricsOpt = 1.0,
    skip_preflight: SkipPreflightOpt = False,
    base_url: BaseURLOpt = None,
    chat_path: ChatPathOpt = None,
    model: ModelOpt = None,
    api_key: APIKeyOpt = None,
) -> None:
    """The baseline latency distribution: N requests at a fixed concurrency (closed loop)."""
    from infphys.measure.load import closed_loop

    def make(target: Any, progress: Any, options: LoadOpts) -> Coroutine[Any, Any, Any]:
        return closed_loop(
            target,
            concurrency=concurrency,
            requests=requests,
            warmup=warmup,
            prompt_tokens=prompt_tokens,
            max_tokens=max_tokens,
            **options,
        )

    _run_load(
        "baseline",
        make,
        out=out,
        target_options=_target_options(base_url, chat_path, model, api_key),
        skip_preflight=skip_preflight,
        timeout_s=timeout,
        duration_s=max_duration,
        seed=seed,
        no_stream=no_stream,
        no_usage=no_usage,
        metrics_interval_s=metrics_interval,
    )


@app.command("sweep")
@clean_errors
def sweep_cmd(
    concurrency: Annotated[
        str | None,
        typer.Option("--concurrency", "-c", help="Closed-loop levels, e.g. 1,2,4,8,16 (default)."),
    ] = None,
    rate: Annotated[
        str | None, typer.Option("--rate", "-r", help="Open-loop levels in requests/s, e.g. 1,2,4.")
    ] = None,
    arrival: Annotated[
        str, typer.Option("--arrival", help="Open loop: poisson or constant gaps.")
    ] = "poisson",
    requests: RequestsOpt = 40,
    warmup: WarmupOpt = 2,
    prompt_tokens: PromptTokensOpt = 128,
    max_tokens: MaxTokensOpt = 64,
    timeout: TimeoutOpt = 120.0,
    max_duration: DurationOpt = 300.0,
    seed: SeedOpt = 0,
    out: OutOpt = None,
    no_stream: NoStreamOpt = False,
    no_usage: NoUsageOpt = False,
    metrics_interval: MetricsOpt = 1.0,
    skip_preflight: SkipPreflightOpt = False,
    base_url: BaseURLOpt = None,
    chat_path: ChatPathOpt = None,
    model: ModelOpt = None,
    api_key: APIKeyOpt = None,
) -> None:
    """Latency and throughput against load: a level per concurrency or per arrival rate."""
    from infphys.measure.load import sweep

    if concurrency is not None and rate is not None:
        raise ValueError("--concurrency and --rate: give one of them, not both")
    if arrival not in ("poisson", "constant"):
        raise ValueError(f"--arrival must be poisson or constant (got {arrival!r})")
    levels_c = (
        parse_list("--concurrency", concurrency or "1,2,4,8,16", int) if rate is None else None
    )
    levels_r = parse_list("--rate", rate, float) if rate is not None else None
    arrival_kind: Literal["poisson", "constant"] = "poisson" if arrival == "poisson" else "constant"

    def make(target: Any, progress: Any, options: LoadOpts) -> Coroutine[Any, Any, Any]:
        return sweep(
            target,
            concurrency=levels_c,
            rates_per_s=levels_r,
            requests_per_level=requests,
            warmup_per_level=warmup,
            arrival=arrival_kind,
            prompt_tokens=prompt_tokens,
            max_tokens=max_tokens,
            **options,
        )

    _run_load(
        "sweep",
        make,
        out=out,
        target_options=_target_options(base_url, chat_path, model, api_key),
        skip_preflight=skip_preflight,
        timeout_s=timeout,
        duration_s=max_duration,
        seed=seed,
        no_stream=no_stream,
        no_usage=no_usage,
        metrics_interval_s=metrics_interval,
    )


@app.command("tokens")
@clean_errors
def tokens_cmd(
    prompt_tokens: Annotated[
        str, typer.Option("--prompt-tokens", help="Prompt sizes, tokens (~ words).")
    ] = "128,512,2048",
    max_tokens: Annotated[
        str, typer.Option("--max-tokens", help="Output budgets (max_tokens).")
    ] = "16,128,512",
    requests: RequestsOpt = 3,
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", help="Requests in flight.")
    ] = 1,
    warmup: WarmupOpt = 0,
    timeout: TimeoutOpt = 300.0,
    max_duration: DurationOpt = 300.0,
    seed: SeedOpt = 0,
    out: OutOpt = None,
    no_stream: NoStreamOpt = False,
    no_usage: NoUsageOpt = False,
    metrics_interval: MetricsOpt = 1.0,
    skip_preflight: SkipPreflightOpt = False,
    base_url: BaseURLOpt = None,
    chat_path: ChatPathOpt = None,
    model: ModelOpt = None,
    api_key: APIKeyOpt = None,
) -> None:
    """The token budget: latency per prompt size × max_tokens cell (prefill vs decode cost)."""
    from infphys.measure.load import token_grid

    sizes = parse_list("--prompt-tokens", prompt_tokens, int)
    budgets = parse_list("--max-tokens", max_tokens, int)

    def make(target: Any, progress: Any, options: LoadOpts) -> Coroutine[Any, Any, Any]:
        return token_grid(
            target,
            prompt_tokens=sizes,
            max_tokens=budgets,
            requests_per_cell=requests,
            concurrency=concurrency,
            warmup_per_cell=warmup,
            **options,
        )

    _run_load(
        "tokens",
        make,
        out=out,
        target_options=_target_options(base_url, chat_path, model, api_key),
        skip_preflight=skip_preflight,
        timeout_s=timeout,
        duration_s=max_duration,
        seed=seed,
        no_stream=no_stream,
        no_usage=no_usage,
        metrics_interval_s=metrics_interval,
    )


@app.command("overload")
@clean_errors
def overload_cmd(
    concurrency: Annotated[
        str, typer.Option("--concurrency", "-c", help="Rising closed-loop levels.")
    ] = "8,32,128",
    timeout: Annotated[
        float, typer.Option("--timeout", help="Short per-request limit, seconds.")
    ] = 10.0,
    requests: RequestsOpt = 60,
    prompt_tokens: PromptTokensOpt = 128,
    max_tokens: MaxTokensOpt = 64,
    max_duration: DurationOpt = 120.0,
    seed: SeedOpt = 0,
    out: OutOpt = None,
    no_stream: NoStreamOpt = False,
    no_usage: NoUsageOpt = False,
    metrics_interval: MetricsOpt = 1.0,
    skip_preflight: SkipPreflightOpt = False,
    base_url: BaseURLOpt = None,
    chat_path: ChatPathOpt = None,
    model: ModelOpt = None,
    api_key: APIKeyOpt = None,
) -> None:
    """Overload: rising concurrency with a short timeout — where requests start to fail."""
    from infphys.measure.load import overload

    levels = parse_list("--concurrency", concurrency, int)

    def make(target: Any, progress: Any, options: LoadOpts) -> Coroutine[Any, Any, Any]:
        options = dict(options)
        options.pop("timeouts")
        return overload(
            target,
            concurrency=levels,
            requests_per_level=requests,
            timeout_s=timeout,
            prompt_tokens=prompt_tokens,
            max_tokens=max_tokens,
            **options,
        )

    _run_load(
        "overload",
        make,
        out=out,
        target_options=_target_options(base_url, chat_path, model, api_key),
        skip_preflight=skip_preflight,
        timeout_s=timeout,
        duration_s=max_duration,
        seed=seed,
        no_stream=no_stream,
        no_usage=no_usage,
        metrics_interval_s=metrics_interval,
    )


@app.command("report")
@clean_errors
def report_cmd(
    run: Annotated[Path, typer.Argument(help="A run file (.jsonl), measured or simulated.")],
    html: Annotated[
        Path | None, typer.Option("--html", help="Chart page to write (default: RUN.html).")
    ] = None,
    no_html: Annotated[bool, typer.Option("--no-html", help="Only print the summary.")] = False,
) -> None:
    """Summarise a saved run and write an HTML page of its charts."""
    from infphys import stats
    from infphys.measure.metrics import load_metrics
    from infphys.plots.load import write_report_html
    from infphys.records import read_run

    if not run.is_file():
        raise ValueError(f"RUN: no such file: {run}")
    r = read_run(run)
    frame = r.to_frame()
    target = r.header.target
    kind = r.header.load.get("kind", "run")
    title = f"{kind}: {target.get('model', '?')} at {target.get('base_url', '?')}"
    console.print(summary_table(frame, title=title))
    http_client = r.header.extra.get("http_client")
    if http_client:
        console.print(f"timed by: {http_client}", highlight=False, soft_wrap=True)
    _print_flags(frame)
    s = stats.summarize(frame)
    knee = stats.sweep_knee(s)
    if knee is not None:
        if knee.knee_x is None:
            where = "no knee: throughput still rising at the last level"
        else:
            where = f"knee at {knee.x_column} {knee.knee_x:g} ({knee.knee_throughput:.2f} req/s)"
        cliff = (
            f"p95 cliff at {knee.x_column} {knee.cliff_x:g}"
            if knee.cliff_x is not None
            else "no p95 cliff (p95 stays under 2x the first level's)"
        )
        console.print(f"{where}; {cliff}", highlight=False)
    if not no_html:
        metrics_file = run.with_name(run.stem + ".metrics.jsonl")
        metrics = load_metrics(metrics_file) if metrics_file.is_file() else None
        out = write_report_html(
            frame, html or run.with_suffix(".html"), metrics=metrics, title=title
        )
        console.print(f"saved charts: {out}", highlight=False, soft_wrap=True)


@app.command("stub")
@clean_errors
def stub_cmd(
    delay_ms: Annotated[
        float, typer.Option("--delay-ms", help="Wait before the first token.")
    ] = 0.0,
    tokens: Annotated[int, typer.Option("--tokens", help="Tokens per answer.")] = 8,
    gap_ms: Annotated[float, typer.Option("--gap-ms", help="Gap between tokens.")] = 0.0,
    fault: Annotated[
        str | None, typer.Option("--fault", help="Inject a fault (see infphys.measure.FAULTS).")
    ] = None,
    fault_every: Annotated[int, typer.Option("--fault-every", help="Every n-th request.")] = 1,
    model: Annotated[str, typer.Option("--model", help="The model it serves.")] = (
        "meta/llama-3.1-8b-instruct"
    ),
) -> None:
    """Serve the fault-injecting stub on 127.0.0.1 (a free port) until Ctrl-C."""
    from infphys.measure.stub import StubConfig, StubServer

    config = StubConfig(
        model=model,
        delay_s=delay_ms / 1e3,
        tokens=tokens,
        token_gap_s=gap_ms / 1e3,
        fault=fault,
        fault_every=fault_every,
    )

    async def serve() -> None:
        async with StubServer(config) as server:
            console.print(
                f"infphys stub listening on {server.base_url} (Ctrl-C to stop); try: "
                f"infphys baseline --base-url {server.base_url} --model {model}",
                highlight=False,
                soft_wrap=True,
            )
            await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        console.print("stub stopped")
