"""Figures of the simulated engine: its state over time, and its calibration against published data.

Presentation only. :func:`sim_timeseries` draws the time series that
:func:`infphys.sim.simulate` records (running and waiting requests, KV-cache usage, cumulative
preemptions; each row holds until the next, so lines are drawn as steps);
:func:`calibration_errors` draws, per row of the TensorRT-LLM table, the simulator's output
tokens/s against the published one.

Example (in a lab)::

    from infphys.sim import EngineConfig, Workload, simulate
    from infphys.plots.sim import sim_timeseries
    res = simulate(EngineConfig.build("l4", "llama-3.1-8b", weights_precision="fp8",
                                      max_model_len=8192),
                   Workload.closed(128, 600, prompt_tokens=2000, max_tokens=1000))
    sim_timeseries(res)   # the KV cache fills to 100 %, preemptions climb, waiting grows
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from infphys.plots._style import PALETTE
from infphys.plots._style import empty_figure as _empty
from infphys.plots._style import layout as _layout
from infphys.sim.calibration import CalibrationResult
from infphys.sim.virtual import SimResult

__all__ = ["calibration_errors", "sim_timeseries", "thin_timeseries"]

_BLUE, _RED, _GREEN, _PURPLE = PALETTE[:4]
_GREY = "#7f7f7f"  # darker than GREY: the published bars sit beside coloured ones


def thin_timeseries(ts: pd.DataFrame, points: int = 2000) -> pd.DataFrame:
    """At most about ``points`` rows for drawing: one per time bin, keeping each bin's peak of
    running, waiting and KV usage (so a short spike stays visible) and its last preemption count.
    """
    if len(ts) <= points:
        return ts
    t = ts["time_s"].to_numpy(dtype=float)
    edges = np.linspace(t[0], t[-1], points + 1)
    bins = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, points - 1)
    g = ts.assign(_bin=bins).groupby("_bin", sort=True)
    out = g.agg(
        time_s=("time_s", "first"),
        running=("running", "max"),
        waiting=("waiting", "max"),
        kv_usage=("kv_usage", "max"),
        preemptions_total=("preemptions_total", "last"),
    ).reset_index(drop=True)
    return out


def sim_timeseries(
    data: SimResult | pd.DataFrame,
    *,
    title: str | None = None,
    points: int = 2000,
) -> Any:
    """Running and waiting requests, KV-cache usage and preemptions against simulated time.

    Args:
        data: a :class:`~infphys.sim.SimResult`, or its ``timeseries`` DataFrame (also as read
            back from the ``.timeseries.csv`` that ``infphys simulate`` writes).
        title: the chart title (default: the engine, when ``data`` is a result).
        points: draw at most about this many points per line (peaks kept).
    """
    if isinstance(data, SimResult):
        ts = data.timeseries
        cfg = data.config
        default_title = (
            f"Simulated engine state: {cfg.model.name} on {cfg.tp}× {cfg.gpu.name}, "
            f"{cfg.kv_capacity_tokens:,}-token KV cache, max_num_seqs {cfg.max_num_seqs}"
        )
    else:
        ts = data
        default_title = "Simulated engine state over time"
    title = title or default_title
    need = {"time_s", "running", "waiting", "kv_usage", "preemptions_total"}
    if not isinstance(ts, pd.DataFrame) or not need <= set(ts.columns):
        return _empty(title, "no time series (simulate with timeseries=True)")
    if len(ts) == 0:
        return _empty(title, "the time series is empty")
    ts = thin_timeseries(ts.sort_values("time_s", kind="stable"), points)
    fig = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.06,
        row_heights=[0.45, 0.3, 0.25],
        subplot_titles=("requests", "KV-cache usage", "preemptions (cumulative)"),
    )
    x = ts["time_s"]
    line = {"shape": "hv", "width": 1.6}
    fig.add_trace(
        go.Scatter(x=x, y=ts["running"], name="running", line={**line, "color": _BLUE}),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(x=x, y=ts["waiting"], name="waiting", line={**line, "color": _RED}),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=100 * ts["kv_usage"],
            name="KV blocks in use",
            line={**line, "color": _GREEN},
            fill="tozeroy",
        ),
        row=2,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=x, y=ts["preemptions_total"], name="preemptions", line={**line, "color": _PURPLE}
        ),
        row=3,
        col=1,
    )
    fig.update_yaxes(title_text="requests", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="% of blocks", range=[0, 105], row=2, col=1)
    fig.update_yaxes(title_text="count", rangemode="tozero", row=3, col=1)
    fig.update_xaxes(title_text="simulated time, s", row=3, col=1)
    return _layout(fig, title, height=620)


def calibration_errors(results: Sequence[CalibrationResult] | None = None) -> Any:
    """Simulated against published output tokens/s per calibration row, with the error.

    ``results`` defaults to :func:`infphys.sim.calibrate` with the default engine settings (it
    simulates 24 offline runs: several seconds).
    """
    if results is None:
        from infphys.sim.calibration import calibrate

        results = calibrate()
    title = "Simulator vs TensorRT-LLM max throughput (output tokens/s, FP8)"
    if not results:
        return _empty(title, "no calibration results")
    labels = [r.row.label for r in results]
    published = [r.row.measured_output_tokens_per_s for r in results]
    simulated = [r.simulated_output_tokens_per_s for r in results]
    errors = [100 * r.error for r in results]
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.05,
        row_heights=[0.65, 0.35],
    )
    fig.add_trace(go.Bar(x=labels, y=published, name="published", marker_color=_GREY), 1, 1)
    fig.add_trace(go.Bar(x=labels, y=simulated, name="simulated", marker_color=_BLUE), 1, 1)
    fig.add_trace(
        go.Bar(
            x=labels,
            y=errors,
            name="error, %",
            marker_color=[_RED if abs(e) > 25 else _GREEN for e in errors],
            showlegend=False,
        ),
        2,
        1,
    )
    for y in (-25, 25):
        fig.add_hline(y=y, line_dash="dot", line_color=_GREY, row=2, col=1)
    fig.update_yaxes(title_text="output tokens/s", type="log", row=1, col=1)
    fig.update_yaxes(title_text="error, %", row=2, col=1)
    fig.update_xaxes(tickangle=-45, row=2, col=1)
    return _layout(fig, title, barmode="group", height=700)
