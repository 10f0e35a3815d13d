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
from pathlib import Path
from typing import Annotated, Literal

import typer

from infphys.cli._app import command, console, fail, parse_list
from infphys.cli._measure_common import (
    ConcurrencyOpt,
    DurationOpt,
    MaxTokensOpt,
    PromptTokensOpt,
    RequestOptions,
    RequestsOpt,
    RunOptions,
    TargetOptions,
    TimeoutOpt,
    WarmupOpt,
    print_flags,
    run_load,
    summary_table,
    timeouts,
)
from infphys.cli._tables import column_table
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

# Each load command's defaults for the request options it shares (one frozen instance each).
_BASELINE_REQUESTS = RequestOptions()
_SWEEP_REQUESTS = RequestOptions(requests=40, max_duration=300.0)

# -- commands ------------------------------------------------------------------------------------


@command("preflight")
def preflight_cmd(
    *,
    target: TargetOptions,
    timeout: Annotated[float, typer.Option("--timeout", help="Limit of each step, s.")] = 30.0,
) -> None:
    """Check the server: model list, readiness, one tiny streamed answer. Exit 1 if not ok."""
    from infphys.measure.preflight import preflight_sync

    with resolve_cli_target(**target.as_kwargs()) as resolved:
        verdict = preflight_sync(resolved, timeout_s=timeout)
    t = column_table(
        f"preflight: {resolved.model} at {resolved.base_url}",
        ("step", "url", "status", "result", "ms"),
        text=("step", "url", "status", "result"),
    )
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


@command("baseline")
def baseline_cmd(
    *,
    concurrency: ConcurrencyOpt = 1,
    request: RequestOptions = _BASELINE_REQUESTS,
    run: RunOptions,
    target: TargetOptions,
) -> None:
    """The baseline latency distribution: N requests at a fixed concurrency (closed loop)."""
    from infphys.measure.load import run_closed_loop

    run_load(
        "baseline",
        run_closed_loop,
        run,
        target,
        timeouts=timeouts(request.timeout),
        duration_s=request.max_duration,
        concurrency=concurrency,
        requests=request.requests,
        warmup=request.warmup,
        prompt_tokens=request.prompt_tokens,
        max_tokens=request.max_tokens,
    )


@command("sweep")
def sweep_cmd(
    *,
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
    request: RequestOptions = _SWEEP_REQUESTS,
    run: RunOptions,
    target: TargetOptions,
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

    run_load(
        "sweep",
        sweep,
        run,
        target,
        timeouts=timeouts(request.timeout),
        duration_s=request.max_duration,
        concurrency=levels_c,
        rates_per_s=levels_r,
        requests_per_level=request.requests,
        warmup_per_level=request.warmup,
        arrival=arrival_kind,
        prompt_tokens=request.prompt_tokens,
        max_tokens=request.max_tokens,
    )


@command("tokens")
def tokens_cmd(
    *,
    prompt_tokens: Annotated[
        str, typer.Option("--prompt-tokens", help="Prompt sizes, tokens (~ words).")
    ] = "128,512,2048",
    max_tokens: Annotated[
        str, typer.Option("--max-tokens", help="Output budgets (max_tokens).")
    ] = "16,128,512",
    requests: RequestsOpt = 3,
    concurrency: ConcurrencyOpt = 1,
    warmup: WarmupOpt = 0,
    timeout: TimeoutOpt = 300.0,
    max_duration: DurationOpt = 300.0,
    run: RunOptions,
    target: TargetOptions,
) -> None:
    """The token budget: latency per prompt size × max_tokens cell (prefill vs decode cost)."""
    from infphys.measure.load import token_grid

    sizes = parse_list("--prompt-tokens", prompt_tokens, int)
    budgets = parse_list("--max-tokens", max_tokens, int)

    run_load(
        "tokens",
        token_grid,
        run,
        target,
        timeouts=timeouts(timeout),
        duration_s=max_duration,
        prompt_tokens=sizes,
        max_tokens=budgets,
        requests_per_cell=requests,
        concurrency=concurrency,
        warmup_per_cell=warmup,
    )


@command("overload")
def overload_cmd(
    *,
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
    run: RunOptions,
    target: TargetOptions,
) -> None:
    """Overload: rising concurrency with a short timeout — where requests start to fail."""
    from infphys.measure.load import overload

    levels = parse_list("--concurrency", concurrency, int)
    run_load(
        "overload",
        overload,
        run,
        target,
        timeouts=timeouts(timeout),
        duration_s=max_duration,
        concurrency=levels,
        requests_per_level=requests,
        timeout_s=timeout,
        prompt_tokens=prompt_tokens,
        max_tokens=max_tokens,
    )


@command("report")
def report_cmd(
    run: Annotated[Path, typer.Argument(help="A run file (.jsonl), measured or simulated.")],
    html: Annotated[
        Path | None, typer.Option("--html", help="Chart page to write (default: RUN.html).")
    ] = None,
    no_html: Annotated[bool, typer.Option("--no-html", help="Only print the summary.")] = False,
) -> None:
    """Summarise a saved run and write an HTML page of its charts."""
    from infphys import stats
    from infphys.measure.metrics import load_metrics, metrics_path_for
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
    workers = r.header.load.get("workers")
    if workers:
        seeds = ", ".join(str(x) for x in r.header.load.get("worker_seeds", []))
        console.print(
            f"sent from {workers} worker processes on one clock (seeds {seeds}); one run",
            highlight=False,
            soft_wrap=True,
        )
    print_flags(frame)
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
        metrics_file = metrics_path_for(run)
        metrics = load_metrics(metrics_file) if metrics_file.is_file() else None
        out = write_report_html(
            frame, html or run.with_suffix(".html"), metrics=metrics, title=title
        )
        console.print(f"saved charts: {out}", highlight=False, soft_wrap=True)


@command("stub")
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
