"""Figures the labs draw from the learner's own settings and runs (presentation only).

Each function takes what a lab already computed — a :class:`infphys.physics.KVCliff`, a table of
simulated or measured results — and draws it; none computes physics of its own beyond unit
conversions. The look is the house template of :mod:`infphys.plots._style`.

Example (lab 3)::

    from infphys import physics
    from infphys.plots.labs import kv_cliff_compare
    correct = physics.kv_cliff("llama-3.1-8b", 8192, 160)
    naive = physics.kv_cliff("llama-3.1-8b", 8192, 160, naive=True)
    kv_cliff_compare(correct, naive, title="Llama-3.1-8B, 8,192 tokens per user")
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from infphys import fmt
from infphys.physics import KVCliff
from infphys.plots._style import PALETTE as _PALETTE
from infphys.plots._style import layout as _style_layout
from infphys.plots._style import line as _line

__all__ = [
    "bar_compare",
    "kv_cliff_compare",
    "kv_wall_sweep",
    "sequential_vs_concurrent",
    "slo_sweep",
    "token_timeline",
]

_LINE_COLOURS = ("#2a3f5f", "#b6398b", "#3d9970", "#8c564b")


def _layout(fig: Any, title: str, **extra: Any) -> Any:
    """The kit's look, with the legend under the plot so a long legend never covers the title."""
    return _style_layout(fig, title, legend_below_y=-0.18, margin={"t": 64, "b": 40}, **extra)


def kv_cliff_compare(correct: KVCliff, naive: KVCliff | None = None, *, title: str = "") -> Any:
    """Memory (weights + KV) against users: the correct formula, the naive one, the VRAM lines.

    Draws the weights as a grey band, ``correct.total_bytes`` as a solid line and
    ``naive.total_bytes`` (if given) dashed, one horizontal line per entry of
    ``correct.vram_lines_bytes``, and a cross where each formula first crosses each line
    (``crash_users``). Memory in GB (10⁹ bytes), as vendors quote it.
    """
    users = np.asarray(correct.users)
    fig = go.Figure()
    fig.add_scatter(
        x=users,
        y=np.full(users.shape, correct.weights_bytes / 1e9),
        name="weights",
        mode="lines",
        line={"color": "#8c8c8c", "width": 1},
        fill="tozeroy",
        hovertemplate="weights: %{y:.1f} GB<extra></extra>",
    )
    series = [("GQA/MLA-correct", correct, "solid", _PALETTE[0])]
    if naive is not None:
        series.append(("naive 2·layers·hidden", naive, "dash", _PALETTE[1]))
    for label, cliff, dash, colour in series:
        fig.add_trace(
            _line(
                np.asarray(cliff.users),
                np.asarray(cliff.total_bytes) / 1e9,
                f"weights + KV, {label} ({fmt.count(cliff.kv_bytes_per_token)} B/token)",
                colour,
                dash=dash,
                width=3,
                hover="%{x} users: %{y:.1f} GB<extra>" + label + "</extra>",
            )
        )
        xs, ys, texts = [], [], []
        for name, crash in cliff.crash_users.items():
            if crash is None:
                continue
            xs.append(crash)
            ys.append(cliff.vram_lines_bytes[name] / 1e9)
            texts.append(f"{name} full at {fmt.count(crash)} ({label})")
        if xs:
            fig.add_trace(
                _line(
                    xs,
                    ys,
                    f"out of memory ({label})",
                    colour,
                    mode="markers",
                    text=texts,
                    hover="%{text}<extra></extra>",
                    marker={"size": 12, "symbol": "x"},
                )
            )
    top = max(
        [float(np.max(correct.total_bytes))]
        + ([float(np.max(naive.total_bytes))] if naive is not None else [])
        + list(correct.vram_lines_bytes.values())
    )
    for k, (name, line_bytes) in enumerate(correct.vram_lines_bytes.items()):
        fig.add_hline(
            y=line_bytes / 1e9,
            line={"dash": "dot", "color": _LINE_COLOURS[k % len(_LINE_COLOURS)]},
            annotation_text=f"{name}: {fmt.gb(line_bytes, 0)}",
            annotation_position="top left",
        )
    return _layout(
        fig,
        title,
        height=540,
        xaxis={"title": {"text": "concurrent users"}, "range": [0, int(users[-1])]},
        yaxis={"title": {"text": "memory, GB (10⁹ bytes)"}, "range": [0, top / 1e9 * 1.1]},
    )


def kv_wall_sweep(
    sweep: pd.DataFrame,
    predicted_wall: float,
    *,
    x: str = "concurrency",
    running: str = "max_running",
    waiting: str = "mean_waiting",
    preemptions: str = "preemptions",
    title: str = "",
) -> Any:
    """A simulated concurrency sweep against the calculator's KV wall.

    Bars: the most requests the engine ran at once (``running``) and the time-averaged number
    waiting for admission (``waiting``) at each concurrency; a line on the right axis:
    preemptions. A dashed vertical
    line marks ``predicted_wall``, the users the calculator says fit.
    """
    for col in (x, running, waiting, preemptions):
        if col not in sweep.columns:
            raise ValueError(f"sweep must have a {col!r} column (got {list(sweep.columns)})")
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    labels = [str(int(v)) for v in sweep[x]]
    fig.add_bar(x=labels, y=sweep[running], name="running (most at once)",
                marker_color=_PALETTE[0])  # fmt: skip
    fig.add_bar(x=labels, y=sweep[waiting], name="waiting (time average)",
                marker_color=_PALETTE[1])  # fmt: skip
    fig.add_trace(
        _line(
            labels, sweep[preemptions], "preemptions", _PALETTE[3], width=2, mode="lines+markers"
        ),
        secondary_y=True,
    )
    # Place the wall between the categories on either side of it.
    xs = np.asarray(sweep[x], dtype=float)
    pos = float(np.interp(predicted_wall, xs, np.arange(len(xs)))) if len(xs) > 1 else 0.0
    fig.add_shape(
        type="line", x0=pos, x1=pos, xref="x", y0=0, y1=1, yref="paper",
        line={"dash": "dash", "color": "#2a3f5f"},
    )  # fmt: skip
    fig.add_annotation(
        x=pos, y=1, xref="x", yref="paper", yanchor="bottom", showarrow=False,
        text=f"calculator: {fmt.count(predicted_wall)} users fit",
    )  # fmt: skip
    _layout(fig, title, height=500, barmode="group")
    fig.update_xaxes(title_text="concurrent users (closed loop)", type="category")
    fig.update_yaxes(title_text="requests", secondary_y=False)
    fig.update_yaxes(title_text="preemptions", secondary_y=True, rangemode="tozero")
    return fig


def bar_compare(
    values: Mapping[str, Mapping[str, float]],
    *,
    unit: str = "",
    title: str = "",
    log: bool = False,
) -> Any:
    """Grouped bars: ``values[group][series]`` (e.g. metric → {"BF16": …, "FP8": …}).

    One subplot per group, so quantities in different units sit side by side; ``unit`` labels
    every axis when they share one.
    """
    groups = list(values)
    if not groups:
        raise ValueError("values must hold at least one group")
    fig = make_subplots(rows=1, cols=len(groups), subplot_titles=groups)
    series_names: list[str] = []
    for g in groups:
        for s in values[g]:
            if s not in series_names:
                series_names.append(s)
    for col, g in enumerate(groups, start=1):
        for k, s in enumerate(series_names):
            if s not in values[g]:
                continue
            v = float(values[g][s])
            fig.add_bar(
                x=[s], y=[v], name=s, marker_color=_PALETTE[k % len(_PALETTE)],
                showlegend=col == 1, legendgroup=s, text=[fmt.plain(v)], textposition="auto",
                row=1, col=col,
            )  # fmt: skip
        fig.update_yaxes(type="log" if log else "linear", title_text=unit, row=1, col=col)
    return _layout(fig, title, height=420, bargap=0.3)


def sequential_vs_concurrent(
    requests: pd.DataFrame,
    *,
    run: str = "run",
    sent: str = "sent_s",
    end: str = "end_s",
    title: str = "",
) -> Any:
    """A timeline of requests, one bar per request from send to end, one colour per run.

    ``requests`` has one row per request with the run's name in ``run`` and the send and end
    times (seconds since that run's start) in ``sent`` and ``end``. Sequential requests form a
    staircase; concurrent ones stack up over the same seconds.
    """
    for col in (run, sent, end):
        if col not in requests.columns:
            raise ValueError(f"requests must have a {col!r} column (got {list(requests.columns)})")
    fig = go.Figure()
    offset = 0
    for k, (name, group) in enumerate(requests.groupby(run, sort=False)):
        g = group.sort_values(sent)
        rows = np.arange(len(g)) + offset
        fig.add_bar(
            y=rows,
            x=(g[end] - g[sent]).to_numpy(),
            base=g[sent].to_numpy(),
            orientation="h",
            name=str(name),
            marker_color=_PALETTE[k % len(_PALETTE)],
            hovertemplate="sent %{base:.2f} s, took %{x:.2f} s<extra>" + str(name) + "</extra>",
        )
        offset += len(g) + 1
    _layout(fig, title, height=max(320, 12 * offset + 140), bargap=0.15)
    fig.update_xaxes(title_text="seconds since the run started")
    fig.update_yaxes(title_text="request", showticklabels=False, autorange="reversed")
    return fig


def slo_sweep(
    summary: pd.DataFrame,
    *,
    slo_s: float,
    cap: float | None,
    x: str = "concurrency",
    latency: str = "tpot_p95_s",
    cost: str = "usd_per_million_tokens",
    latency_label: str = "p95 TPOT",
    title: str = "",
) -> Any:
    """A sweep judged against a latency objective, and what each level's tokens cost.

    Left: ``latency`` (seconds, drawn in ms) against ``x`` with the objective ``slo_s`` as a
    dashed line; right: ``cost`` (US dollars per million output tokens) against ``x``. The SLO
    cap (the highest level that, with every level below it, meets the objective) is marked on
    both.
    """
    for col in (x, latency, cost):
        if col not in summary.columns:
            raise ValueError(f"summary must have a {col!r} column (got {list(summary.columns)})")
    s = summary.sort_values(x)
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=(f"{latency_label} against load", "US dollars per million output tokens"),
    )
    ok = s[latency] <= slo_s
    fig.add_trace(
        _line(
            s[x],
            s[latency] * 1e3,
            latency_label,
            _PALETTE[0],
            mode="lines+markers",
            hover="%{x}: %{y:.1f} ms<extra></extra>",
            marker={"color": [_PALETTE[2] if v else _PALETTE[1] for v in ok], "size": 9},
        ),
        row=1,
        col=1,
    )
    fig.add_hline(
        y=slo_s * 1e3, line={"dash": "dash", "color": _PALETTE[1]}, row=1, col=1,
        annotation_text=f"SLO {fmt.ms(slo_s)}", annotation_position="top left",
    )  # fmt: skip
    fig.add_trace(
        _line(
            s[x],
            s[cost],
            "cost per million tokens",
            _PALETTE[3],
            mode="lines+markers",
            hover="%{x}: $%{y:.3f}<extra></extra>",
        ),
        row=1,
        col=2,
    )
    if cap is not None:
        at = s[s[x] == cap]
        if len(at):
            fig.add_trace(
                _line(
                    [cap],
                    [float(at[cost].iloc[0])],
                    "SLO cap",
                    _PALETTE[4],
                    mode="markers+text",
                    text=[f"cap {fmt.count(cap)}: {fmt.usd(float(at[cost].iloc[0]), 3)}"],
                    textposition="bottom left",
                    marker={"symbol": "star", "size": 16},
                ),
                row=1,
                col=2,
            )
        for panel in (1, 2):
            fig.add_vline(x=cap, line={"dash": "dot", "color": _PALETTE[4]}, row=1, col=panel)
    _layout(fig, title, height=480)
    fig.update_xaxes(title_text=x.replace("_", " "), type="log")
    fig.update_yaxes(title_text="ms", row=1, col=1, rangemode="tozero")
    fig.update_yaxes(title_text="USD", row=1, col=2, type="log")
    return fig


def token_timeline(
    chunk_times_s: list[float] | np.ndarray,
    sent_s: float,
    *,
    title: str = "",
) -> Any:
    """When each token of one streamed request arrived, counted from its send.

    A step up per content chunk: the first step is the TTFT (prefill plus queueing and network),
    the slope after it the time per output token. Times in milliseconds.
    """
    times = np.asarray(chunk_times_s, dtype=float) - float(sent_s)
    fig = go.Figure()
    if times.size == 0:
        fig.add_annotation(
            text="no token times recorded", x=0.5, y=0.5, xref="paper", yref="paper",
            showarrow=False,
        )  # fmt: skip
        return _layout(fig, title, height=320)
    fig.add_trace(
        _line(
            times * 1e3,
            np.arange(1, times.size + 1),
            "tokens received",
            _PALETTE[0],
            mode="lines+markers",
            line_shape="hv",
            hover="token %{y} at %{x:.1f} ms<extra></extra>",
            marker={"size": 4},
        )
    )
    fig.add_vline(
        x=float(times[0]) * 1e3, line={"dash": "dash", "color": _PALETTE[1]},
        annotation_text=f"first token: {fmt.ms(float(times[0]))}",
        annotation_position="top right",
    )  # fmt: skip
    _layout(fig, title, height=400)
    fig.update_xaxes(title_text="ms since the request was sent", rangemode="tozero")
    fig.update_yaxes(title_text="tokens received", rangemode="tozero")
    return fig
