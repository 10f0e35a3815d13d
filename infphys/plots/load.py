"""Figures of load runs: latency and throughput against load, errors, the token budget, metrics.

Presentation only: each function takes a run — a records DataFrame
(:func:`infphys.records.load_run`, ``LoadResult.frame()``, a simulated run's frame) or a list of
records — summarises it with :mod:`infphys.stats` and draws it. Measured and simulated runs
draw the same way. An empty run draws an empty chart that says why.

The x-axis of a sweep is the load it varied: ``concurrency`` (closed loop) or ``rate_per_s``
(open loop), on a log₂ scale since sweeps double; a run of one level is drawn against its level.

Example (in a lab)::

    from infphys.records import load_run
    from infphys.plots.load import latency_vs_load
    latency_vs_load(load_run("runs/sweep.jsonl"))   # p50/p95/p99 e2e per concurrency; the p95
                                                    # cliff shows where queueing starts
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from infphys import stats
from infphys.analysis.load import (
    errors_by_level,
    grid_summary,
    load_column,
    ttft_decode_by_level,
)
from infphys.plots._style import PALETTE as _PALETTE
from infphys.plots._style import empty_figure as _empty
from infphys.plots._style import layout as _layout
from infphys.plots._style import line as _line
from infphys.plots._style import mark_x
from infphys.records import RequestRecord, Run

__all__ = [
    "error_rate_vs_load",
    "latency_histogram",
    "latency_vs_load",
    "server_gauge_traces",
    "server_metrics_over_time",
    "throughput_vs_load",
    "token_grid_heatmap",
    "ttft_decode_split",
    "write_report_html",
]

RunData = pd.DataFrame | Run | Sequence[RequestRecord]

_X_LABELS = {
    "concurrency": "concurrency (requests in flight, closed loop)",
    "rate_per_s": "arrival rate (requests/s, open loop)",
    "level": "level",
}
_METRIC_LABELS = {"e2e": "end-to-end", "ttft": "TTFT", "tpot": "TPOT", "itl": "ITL"}


def _frame(data: RunData) -> pd.DataFrame:
    return stats.as_frame(data)


def _log_x(summary: pd.DataFrame, x: str) -> bool:
    vals = pd.to_numeric(summary[x], errors="coerce")
    if x == "level" or len(vals) <= 2 or not (vals > 0).all():
        return False
    return bool(vals.max() / vals.min() >= 8)


def _levels(data: RunData, x: str | None) -> tuple[pd.DataFrame, pd.DataFrame, str] | None:
    """The run's records, its summary per level sorted by the load column, and that column;
    None for an empty run."""
    f = _frame(data)
    if not len(f):
        return None
    s = stats.summarize(f)
    xc = load_column(s, x)
    return f, s.sort_values(xc), xc


def _load_axis(fig: Any, s: pd.DataFrame, xc: str, mark: str | None = None) -> None:
    """The x axis of a per-level figure (log when the load spans 8× or more), with the sweep's
    ``knee`` or ``cliff`` (:func:`infphys.stats.sweep_knee`) marked when ``mark`` names one."""
    log_x = _log_x(s, xc)
    knee = stats.sweep_knee(s, x=xc) if mark and xc != "level" else None
    at = getattr(knee, f"{mark}_x", None) if knee is not None else None
    if at is not None:
        mark_x(fig, at, f"{'p95 cliff' if mark == 'cliff' else mark} at {at:g}", log_x=log_x)
    fig.update_xaxes(title=_X_LABELS.get(xc, xc), type="log" if log_x else "linear")


def _stacked_by_level(
    t: pd.DataFrame, series: list[tuple[str, str, str, float]], y_title: str
) -> Any:
    """Stacked bars over a per-level table whose first column is the load (a category axis):
    one bar series per (column, name, colour, scale)."""
    xc = str(t.columns[0])
    levels = [str(v) for v in t[xc]]
    fig = go.Figure()
    for col, name, colour, scale in series:
        fig.add_trace(go.Bar(x=levels, y=t[col] * scale, name=name, marker={"color": colour}))
    fig.update_layout(barmode="stack")
    fig.update_xaxes(title=_X_LABELS.get(xc, xc), type="category")
    fig.update_yaxes(title=y_title, rangemode="tozero")
    return fig


def _ms(v: pd.Series) -> pd.Series:
    return pd.to_numeric(v, errors="coerce") * 1e3


def latency_vs_load(
    data: RunData, *, metric: str = "e2e", x: str | None = None, title: str | None = None
) -> Any:
    """p50, p95 and p99 of a latency (``e2e``, ``ttft``, ``tpot`` or ``itl``), ms, per level."""
    if metric not in _METRIC_LABELS:
        raise ValueError(f"metric must be one of {', '.join(_METRIC_LABELS)} (got {metric!r})")
    name = _METRIC_LABELS[metric]
    title = title or f"{name} latency vs load"
    run = _levels(data, x)
    if run is None:
        return _empty(title, "no requests in this run")
    _, s, xc = run
    fig = go.Figure()
    for i, q in enumerate(("p50", "p95", "p99")):
        fig.add_trace(
            _line(
                s[xc], _ms(s[f"{metric}_{q}_s"]), f"{q} {name}", _PALETTE[i],
                dash="solid" if q == "p50" else "dot", mode="lines+markers",
                hover=f"{xc}=%{{x}}<br>{q} {name} %{{y:.1f}} ms<extra></extra>",
            )
        )  # fmt: skip
    _load_axis(fig, s, xc, "cliff")
    fig.update_yaxes(title=f"{name} latency (ms)", rangemode="tozero")
    return _layout(fig, title)


def throughput_vs_load(data: RunData, *, x: str | None = None, title: str | None = None) -> Any:
    """Successful requests/s and output tokens/s per level, with the knee marked."""
    title = title or "throughput vs load"
    run = _levels(data, x)
    if run is None:
        return _empty(title, "no requests in this run")
    _, s, xc = run
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for col, name, colour, dash, right in (
        ("throughput_req_per_s", "requests/s (successful)", _PALETTE[0], "solid", False),
        ("output_tokens_per_s", "output tokens/s", _PALETTE[2], "dot", True),
    ):
        fig.add_trace(
            _line(s[xc], s[col], name, colour, dash=dash, mode="lines+markers"),
            secondary_y=right,
        )
    _load_axis(fig, s, xc, "knee")
    fig.update_yaxes(title="requests/s", rangemode="tozero", secondary_y=False)
    fig.update_yaxes(title="output tokens/s", rangemode="tozero", secondary_y=True)
    return _layout(fig, title)


def error_rate_vs_load(data: RunData, *, x: str | None = None, title: str | None = None) -> Any:
    """Failed share of finished requests per level, stacked by error class."""
    title = title or "errors vs load"
    t = errors_by_level(data, x=x)
    if not len(t):
        return _empty(title, "no requests in this run")
    classes = [str(c) for c in t.columns[1:-1]]
    fig = _stacked_by_level(
        t,
        [(c, c, _PALETTE[i % len(_PALETTE)], 1.0) for i, c in enumerate(classes)],
        "failed (% of finished requests)",
    )
    incomplete = bool((t["incomplete"] > 0).any())
    if incomplete:
        fig.add_trace(
            go.Scatter(
                x=[str(v) for v in t.iloc[:, 0]],
                y=t["incomplete"],
                mode="markers",
                name="incomplete (% of sent, not an error)",
                marker={"symbol": "x", "size": 10, "color": "#444"},
            )
        )
    if not classes and not incomplete:
        fig.add_annotation(
            text="no errors", x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False
        )
    return _layout(fig, title)


def latency_histogram(data: RunData, *, metric: str = "e2e", title: str | None = None) -> Any:
    """Distribution of one latency over successful measured requests, ms, with a box on top."""
    if metric not in _METRIC_LABELS:
        raise ValueError(f"metric must be one of {', '.join(_METRIC_LABELS)} (got {metric!r})")
    name = _METRIC_LABELS[metric]
    title = title or f"{name} latency distribution"
    f = stats.measured(_frame(data))
    if metric == "itl":
        values = stats.itl_values(f) * 1e3
    else:
        ok = stats.successful(f)
        values = _ms(ok[f"{metric}_s"]).dropna().to_numpy() if len(ok) else np.zeros(0)
    if not len(values):
        return _empty(title, f"no successful requests with a {name} in this run")
    p = stats.percentiles(values)
    fig = go.Figure()
    fig.add_trace(go.Histogram(x=values, name=name, marker={"color": _PALETTE[0]}, nbinsx=60))
    for i, (q, v) in enumerate(p.items()):
        fig.add_vline(
            x=v,
            line={"dash": "dot", "color": _PALETTE[(i + 1) % len(_PALETTE)]},
            annotation_text=f"{q} {v:.1f} ms",
            annotation_position="top",
        )
    fig.update_xaxes(title=f"{name} latency (ms)")
    fig.update_yaxes(title="requests" if metric != "itl" else "gaps")
    return _layout(fig, title, showlegend=False)


def token_grid_heatmap(data: RunData, *, value: str = "e2e_p50_s", title: str | None = None) -> Any:
    """A token-budget grid: ``value`` (a :func:`infphys.stats.summarize` column) per
    prompt size × ``max_tokens`` cell. Latency columns (``*_s``) are shown in ms."""
    title = title or f"{value} by prompt size and max_tokens"
    s = grid_summary(data, value)
    if s is None:
        return _empty(title, f"no token grid in this run (prompt size × max_tokens, {value})")
    grid = s.pivot_table(index="prompt_tokens_asked", columns="max_tokens", values=value)
    scale, unit = (1e3, "ms") if value.endswith("_s") else (1.0, "")
    z = grid.to_numpy(dtype=float) * scale
    text = [[("" if math.isnan(v) else f"{v:.0f}") for v in row] for row in z]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[str(c) for c in grid.columns],
            y=[str(i) for i in grid.index],
            text=text,
            texttemplate="%{text}",
            colorscale="Viridis",
            colorbar={"title": unit or value},
            hovertemplate="prompt %{y} tokens, max_tokens %{x}: %{z:.1f} "
            + unit
            + "<extra></extra>",
        )
    )
    fig.update_xaxes(title="max_tokens (output budget)", type="category")
    fig.update_yaxes(title="prompt size (tokens asked)", type="category")
    return _layout(fig, title)


def ttft_decode_split(data: RunData, *, x: str | None = None, title: str | None = None) -> Any:
    """Where the time goes per level: p50 TTFT (prefill and queueing) and p50 decode
    (e2e − TTFT), stacked, ms (:func:`infphys.analysis.load.ttft_decode_by_level`)."""
    title = title or "time to first token and decode time (p50)"
    t = ttft_decode_by_level(data, x=x)
    if not len(t):
        return _empty(title, "no successful requests in this run")
    fig = _stacked_by_level(
        t,
        [
            ("ttft_p50_s", "TTFT p50", _PALETTE[1], 1e3),
            ("decode_p50_s", "decode (e2e − TTFT) p50", _PALETTE[0], 1e3),
        ],
        "time (ms)",
    )
    return _layout(fig, title)


def server_gauge_traces(metrics: pd.DataFrame, *, shape: str = "hv") -> list[tuple[Any, bool]]:
    """The server's gauges over time as traces, each with True when it belongs on a secondary
    (percent) y-axis: requests running and waiting (left), KV-cache usage × 100 (right, dotted).

    ``metrics`` is in the scrape's vocabulary (``t_s``, ``requests_running``,
    ``requests_waiting``, ``kv_cache_usage`` as a fraction); a gauge that is missing or all NaN
    gives no trace. ``shape`` is plotly's line shape: ``hv`` (steps) for values that hold until
    the next sample, ``linear`` otherwise. Example: a scrape with running 3, 5 and KV usage 0.42,
    0.61 gives two traces: running (left) and KV cache usage 42 %, 61 % (right).
    """
    traces: list[tuple[Any, bool]] = []
    for i, (col, label) in enumerate(
        (("requests_running", "running"), ("requests_waiting", "waiting"))
    ):
        if col in metrics.columns and metrics[col].notna().any():
            trace = go.Scatter(
                x=metrics["t_s"],
                y=metrics[col],
                mode="lines",
                name=label,
                line={"shape": shape, "color": _PALETTE[i]},
            )
            traces.append((trace, False))
    if "kv_cache_usage" in metrics.columns and metrics["kv_cache_usage"].notna().any():
        trace = go.Scatter(
            x=metrics["t_s"],
            y=metrics["kv_cache_usage"] * 100,
            mode="lines",
            name="KV cache usage (%)",
            line={"shape": shape, "color": _PALETTE[2], "dash": "dot"},
        )
        traces.append((trace, True))
    return traces


def server_metrics_over_time(metrics: pd.DataFrame, *, title: str | None = None) -> Any:
    """Scraped server gauges on the run's clock: KV-cache usage (%) and requests running and
    waiting (from :class:`infphys.measure.metrics.MetricsScraper` or ``load_metrics``)."""
    title = title or "server metrics during the run"
    if metrics is None or not len(metrics):
        return _empty(title, "no server metrics were scraped (none offered, or not asked for)")
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    traces = server_gauge_traces(metrics)
    for trace, right in traces:
        fig.add_trace(trace, secondary_y=right)
    if not traces:
        return _empty(title, "the server's metrics had none of the known gauges")
    fig.update_xaxes(title="time since the run's start (s)")
    fig.update_yaxes(title="requests", rangemode="tozero", secondary_y=False)
    fig.update_yaxes(title="KV cache used (%)", range=[0, 100], secondary_y=True)
    return _layout(fig, title)


def write_report_html(
    data: RunData,
    path: str | Path,
    *,
    metrics: pd.DataFrame | None = None,
    title: str = "infphys run report",
) -> Path:
    """Write one self-contained HTML page with the run's charts (plotly.js inline, no CDN).

    Charts: latency (e2e, TTFT) and throughput against load, errors, the TTFT/decode split,
    the e2e distribution, the token-grid heatmap when the run is a grid, and the server metrics
    when they were scraped.
    """
    f = _frame(data)
    figs: list[Any] = [
        latency_vs_load(f, metric="e2e"),
        latency_vs_load(f, metric="ttft"),
        throughput_vs_load(f),
        error_rate_vs_load(f),
        ttft_decode_split(f),
        latency_histogram(f),
    ]
    if "prompt_tokens_asked" in f.columns and "max_tokens" in f.columns:
        s = stats.summarize(f)
        if s["prompt_tokens_asked"].nunique() > 1 or s["max_tokens"].nunique() > 1:
            figs.append(token_grid_heatmap(f))
    if metrics is not None and len(metrics):
        figs.append(server_metrics_over_time(metrics))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px}"
        ".chart{margin-bottom:2rem}</style>",
        "</head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    header = f.attrs.get("header") if hasattr(f, "attrs") else None
    if isinstance(header, dict):
        target = header.get("target", {})
        load = header.get("load", {})
        parts.append(
            "<p>"
            + html.escape(
                f"{target.get('model', '?')} at {target.get('base_url', '?')} — "
                f"{load.get('kind', 'run')}, started {header.get('started_at', '?')}, "
                f"seed {header.get('seed')}"
            )
            + "</p>"
        )
    for i, fig in enumerate(figs):
        parts.append('<div class="chart">')
        parts.append(fig.to_html(full_html=False, include_plotlyjs=(i == 0)))
        parts.append("</div>")
    parts.append("</body></html>")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(parts), encoding="utf-8")
    return out
