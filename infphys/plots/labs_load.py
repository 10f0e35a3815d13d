"""Figures of labs 7–11 (load, queueing, overload, tuning) that :mod:`.load` lacks.

Presentation only, like :mod:`infphys.plots.load`: each function takes runs — records
DataFrames (``LoadResult.frame()``, ``SimResult.to_frame()``, :func:`infphys.records.load_run`)
or lists of records — summarises them with :mod:`infphys.stats` and draws them. Measured and
simulated runs draw the same way. The tables beside them (theory against measured, goodput per
level, the token grid's costs) are :mod:`infphys.analysis`.

- :func:`latency_box`, :func:`in_flight_timeline`: Little's Law made visible.
- :func:`latency_vs_throughput` (closed and open loop on one chart), :func:`run_timeline`
  (request latencies and server gauges on one clock).
- :func:`token_budget_lines` (a latency against ``max_tokens``, one line per prompt size);
  a cell's TTFT and decode are drawn by :func:`infphys.plots.token_budget.split_bars`.

Overload and retries are drawn by :mod:`infphys.plots.overload`, engine knobs against an SLO by
:func:`infphys.plots.capacity.knob_sweeps`.

Example::

    from infphys.plots.labs_load import latency_box
    fig = latency_box(result.frame(), metrics=("ttft", "e2e"))
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from infphys import stats
from infphys.analysis.load import grid_summary, load_column
from infphys.plots._style import GREY as _GREY
from infphys.plots._style import PALETTE as _PALETTE
from infphys.plots._style import empty_figure as _empty
from infphys.plots._style import layout as _layout
from infphys.plots._style import line as _line
from infphys.plots.load import server_gauge_traces
from infphys.stats import RecordsLike as RunData

__all__ = [
    "in_flight_timeline",
    "latency_box",
    "latency_vs_throughput",
    "run_timeline",
    "token_budget_lines",
]


_METRIC_LABELS = {"e2e": "end-to-end", "ttft": "TTFT", "tpot": "TPOT"}
_X_LABELS = {
    "concurrency": "concurrency (requests in flight, closed loop)",
    "rate_per_s": "arrival rate (requests/s, open loop)",
}


# --- Little's Law -----------------------------------------------------------------------------


def latency_box(
    data: RunData, *, metrics: Sequence[str] = ("ttft", "e2e"), title: str | None = None
) -> Any:
    """Box plots of latencies (ms) over successful measured requests, every request shown.

    The box spans p25–p75 with the median inside; whiskers reach the furthest point within
    1.5 × IQR (plotly's default); the p95 and p99 of each metric are drawn as markers.
    """
    title = title or "latency distribution (box: p25–p75, line: p50; ◆ p95, ✕ p99)"
    ok = stats.successful(stats.measured(data))
    if not len(ok):
        return _empty(title, "no successful requests in this run")
    fig = make_subplots(
        rows=1, cols=len(metrics), subplot_titles=[_METRIC_LABELS.get(m, m) for m in metrics]
    )
    for i, m in enumerate(metrics, start=1):
        if m not in _METRIC_LABELS:
            raise ValueError(
                f"metrics: each must be one of {', '.join(_METRIC_LABELS)} (got {m!r})"
            )
        v = pd.to_numeric(ok[f"{m}_s"], errors="coerce").dropna().to_numpy() * 1e3
        colour = _PALETTE[(i - 1) % len(_PALETTE)]
        fig.add_trace(
            go.Box(
                y=v,
                name=_METRIC_LABELS[m],
                boxpoints="all",
                jitter=0.4,
                pointpos=0,
                marker={"color": colour, "size": 4},
                showlegend=False,
            ),
            row=1,
            col=i,
        )
        p = stats.percentiles(v, (95, 99))
        for q, sym in (("p95", "diamond"), ("p99", "x")):
            fig.add_trace(
                go.Scatter(
                    x=[_METRIC_LABELS[m]],
                    y=[p[q]],
                    mode="markers+text",
                    text=[f"{q} {p[q]:.1f}"],
                    textposition="middle right",
                    marker={"symbol": sym, "size": 11, "color": "#2a3f5f"},
                    showlegend=False,
                    hovertemplate=f"{q}: %{{y:.1f}} ms<extra></extra>",
                ),
                row=1,
                col=i,
            )
        fig.update_yaxes(title="ms" if i == 1 else None, rangemode="tozero", row=1, col=i)
    return _layout(fig, title)


def in_flight_timeline(
    data: RunData, *, little: stats.LittlesLaw | None = None, title: str | None = None
) -> Any:
    """Requests in flight over the run (a step curve), with the time-averaged L and λ·W.

    Every request counts from its send to its end (warm-up included: it held a slot). When
    ``little`` (:func:`infphys.stats.littles_law`) is given, its window is shaded and its L and
    λ·W are drawn as horizontal lines: Little's Law says they coincide.
    """
    title = title or "requests in flight over time"
    f = stats.as_frame(data)
    f = f[f["end_s"].notna()] if len(f) else f
    if not len(f):
        return _empty(title, "no finished requests in this run")
    s = f["sent_s"].to_numpy(dtype=float)
    e = f["end_s"].to_numpy(dtype=float)
    times = np.concatenate([s, e])
    deltas = np.concatenate([np.ones_like(s), -np.ones_like(e)])
    order = np.lexsort((deltas, times))
    t = times[order]
    n = np.cumsum(deltas[order])
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=np.concatenate([[t[0]], t]),
            y=np.concatenate([[0], n]),
            mode="lines",
            line={"shape": "hv", "color": _PALETTE[0]},
            name="in flight",
            hovertemplate="t %{x:.3f} s: %{y} in flight<extra></extra>",
        )
    )
    if little is not None and math.isfinite(little.mean_in_flight):
        fig.add_vrect(
            x0=little.window_start_s,
            x1=little.window_end_s,
            fillcolor=_GREY,
            opacity=0.08,
            line_width=0,
        )
        fig.add_hline(
            y=little.mean_in_flight,
            line={"color": _PALETTE[1], "dash": "solid"},
            annotation_text=f"measured L = {little.mean_in_flight:.3f}",
            annotation_position="top left",
        )
        fig.add_hline(
            y=little.predicted_in_flight,
            line={"color": _PALETTE[2], "dash": "dot"},
            annotation_text=f"λ·W = {little.predicted_in_flight:.3f}",
            annotation_position="bottom right",
        )
    fig.update_xaxes(title="time since the run's start (s)")
    fig.update_yaxes(title="requests in flight", rangemode="tozero")
    return _layout(fig, title, showlegend=False)


# --- closed and open loop ---------------------------------------------------------------------


def latency_vs_throughput(
    runs: Mapping[str, RunData], *, metric: str = "e2e", title: str | None = None
) -> Any:
    """p50 and p95 latency against delivered throughput, one line per run (closed vs open loop).

    Plotting against the throughput actually delivered puts runs with different load knobs
    (concurrency, arrival rate) on one axis: the curve that turns up earlier is the one whose
    users wait longer for the same work done.
    """
    if metric not in _METRIC_LABELS:
        raise ValueError(f"metric must be one of {', '.join(_METRIC_LABELS)} (got {metric!r})")
    name = _METRIC_LABELS[metric]
    title = title or f"{name} latency against throughput delivered"
    fig = go.Figure()
    drawn = 0
    for i, (label, data) in enumerate(runs.items()):
        s = stats.summarize(stats.as_frame(data))
        if not len(s):
            continue
        xc = load_column(s)
        s = s.sort_values("throughput_req_per_s")
        colour = _PALETTE[i % len(_PALETTE)]
        knob = s[xc].tolist() if xc in s.columns else [None] * len(s)
        for q, dash in (("p50", "dot"), ("p95", "solid")):
            fig.add_trace(
                _line(
                    s["throughput_req_per_s"],
                    s[f"{metric}_{q}_s"] * 1e3,
                    f"{label} {q}",
                    colour,
                    dash=dash,
                    mode="lines+markers",
                    customdata=knob,
                    hover=f"{label}, {xc} %{{customdata}}: %{{x:.2f}} req/s, "
                    f"{q} %{{y:.0f}} ms<extra></extra>",
                )
            )
        drawn += 1
    if not drawn:
        return _empty(title, "no requests in these runs")
    fig.update_xaxes(title="throughput delivered (successful requests/s)", rangemode="tozero")
    fig.update_yaxes(title=f"{name} latency (ms)", rangemode="tozero")
    return _layout(fig, title)


def run_timeline(
    data: RunData, *, metrics: pd.DataFrame | None = None, title: str | None = None
) -> Any:
    """Each request's end-to-end latency at its send time (coloured by level) above the server's
    gauges (running, waiting, KV-cache usage) on the same clock.

    ``metrics`` is a scrape (:class:`infphys.measure.MetricsScraper`, ``LoadResult.metrics``:
    ``t_s`` and the vocabulary) or a simulator time series (``SimResult.timeseries``:
    ``time_s``, ``running``, ``waiting``, ``kv_usage``); both are on the run's clock.
    """
    title = title or "request latencies and server state over time"
    f = stats.as_frame(data)
    ok = stats.successful(f)
    if not len(ok):
        return _empty(title, "no successful requests in this run")
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        row_heights=[0.55, 0.45],
        specs=[[{}], [{"secondary_y": True}]],
    )
    s = stats.summarize(f)
    xc = load_column(s)
    levels = sorted(ok["level"].unique()) if "level" in ok.columns else [0]
    for i, lv in enumerate(levels):
        g = ok[ok["level"] == lv] if "level" in ok.columns else ok
        load = g[xc].iloc[0] if xc in g.columns else lv
        fig.add_trace(
            _line(
                g["sent_s"],
                g["e2e_s"] * 1e3,
                f"{xc} {load}",
                _PALETTE[i % len(_PALETTE)],
                mode="markers",
                hover="sent %{x:.2f} s: %{y:.0f} ms<extra></extra>",
                marker={"size": 5},
            ),
            row=1,
            col=1,
        )
    if metrics is not None and len(metrics):
        m = metrics.rename(
            columns={
                "time_s": "t_s",
                "kv_usage": "kv_cache_usage",
                "running": "requests_running",
                "waiting": "requests_waiting",
            }
        )
        shape = "hv" if "event" in metrics.columns else "linear"
        for trace, right in server_gauge_traces(m, shape=shape):
            fig.add_trace(trace, row=2, col=1, secondary_y=right)
    else:
        fig.add_annotation(
            text="no server metrics for this run",
            x=0.5,
            y=0.2,
            xref="paper",
            yref="paper",
            showarrow=False,
        )
    fig.update_yaxes(title="e2e latency (ms)", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title="requests", rangemode="tozero", row=2, col=1, secondary_y=False)
    fig.update_yaxes(title="KV usage (%)", range=[0, 100], row=2, col=1, secondary_y=True)
    fig.update_xaxes(title="time since the run's start (s)", row=2, col=1)
    return _layout(fig, title, height=560)


# --- the token budget -------------------------------------------------------------------------


def token_budget_lines(data: RunData, *, value: str = "e2e_p95_s", title: str | None = None) -> Any:
    """A latency (a :func:`infphys.stats.summarize` column, ms) against ``max_tokens``, one line
    per prompt size: the slope is the decode cost per token, the offset between lines the
    prefill."""
    title = (
        title or f"{value.removesuffix('_s').replace('_', ' ')} against max_tokens, by prompt size"
    )
    s = grid_summary(data, value)
    if s is None:
        return _empty(title, f"no token grid in this run (prompt size × max_tokens, {value})")
    fig = go.Figure()
    for i, (p, g) in enumerate(s.groupby("prompt_tokens_asked", sort=True)):
        g = g.sort_values("max_tokens")
        scale = 1e3 if value.endswith("_s") else 1.0
        fig.add_trace(
            _line(
                g["max_tokens"],
                g[value] * scale,
                f"prompt {p} tokens",
                _PALETTE[i % len(_PALETTE)],
                mode="lines+markers",
                hover="max_tokens %{x}: %{y:.1f}<extra></extra>",
            )
        )
    fig.update_xaxes(title="max_tokens (output budget)", rangemode="tozero")
    fig.update_yaxes(title="ms" if value.endswith("_s") else value, rangemode="tozero")
    return _layout(fig, title)
