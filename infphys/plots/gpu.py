"""Figures of the GPU probes: the watcher's time series, copy bandwidth, the roofline experiment.

Presentation only: each function draws a frame or result that :mod:`infphys.measure.gpu`
produced (measured on a GPU, or on host memory / a scaled-down shape without one) and computes
nothing beyond unit changes and the roof line ``min(peak FLOP/s, bandwidth × intensity)`` that the
experiment's own ``attrs`` describe. An empty input draws an empty chart that states the reason
(for instance ``"no NVIDIA GPU visible: NVML library not found"``), so a lab can always show it.

Example (in a lab)::

    from infphys.measure.gpu import roofline_experiment
    from infphys.plots.gpu import roofline_experiment_figure
    roofline_experiment_figure(roofline_experiment())   # on an H100: points along the roof,
                                                        # the ridge near 295 FLOP/byte
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from infphys import fmt
from infphys.measure.gpu.copy_bandwidth import CopyBandwidthResult
from infphys.plots._style import PALETTE as _PALETTE
from infphys.plots._style import empty_figure as _empty_figure
from infphys.plots._style import layout as _style_layout
from infphys.plots._style import line as _line

__all__ = [
    "copy_bandwidth_figure",
    "roofline_experiment_figure",
    "watch_figure",
]

GiB = 2**30


def _layout(fig: Any, title: str, **extra: Any) -> Any:
    """The kit's look, with the legend under the plot so it never covers the title."""
    return _style_layout(fig, title, legend_below_y=-0.14, margin={"t": 88, "b": 40}, **extra)


def _vline(
    fig: Any,
    x: float,
    y_lo: float,
    y_hi: float,
    label: str,
    colour: str,
    row: int,
    col: int,
    slot: int = 0,
) -> None:
    """A dotted vertical line drawn as a trace, so it sits at data ``x`` on log axes too
    (plotly's shapes and annotations take log10 coordinates there). The label sits left of
    the line, one step lower for each ``slot`` so labels of several series do not overlap."""
    y_label = y_hi / 2.2 ** (slot + 1)
    fig.add_trace(
        go.Scatter(
            x=[x, x, x],
            y=[y_lo, y_label, y_hi],
            mode="lines+text",
            text=["", label + " ", ""],
            textposition="middle left",
            textfont={"color": colour, "size": 11},
            line={"color": colour, "dash": "dot", "width": 1.5},
            showlegend=False,
            hovertemplate=f"{label}<extra></extra>",
        ),
        row=row,
        col=col,
    )


def _empty(title: str, reason: str) -> Any:
    return _layout(_empty_figure(title, reason), title)


# --- watcher ----------------------------------------------------------------------------------


def watch_figure(frame: pd.DataFrame, title: str = "GPU during the run") -> Any:
    """Four stacked time series per GPU: memory used (GiB), GPU and memory utilisation (%),
    power (W) and temperature (°C), against seconds since the watch started."""
    if frame.empty:
        reason = frame.attrs.get("reason") or "no samples"
        return _empty(title, str(reason))
    fig = make_subplots(
        rows=4,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.05,
        subplot_titles=("memory used (GiB)", "utilisation (%)", "power (W)", "temperature (°C)"),
    )
    names = frame.attrs.get("gpu_names") or {}
    for k, (gpu, g) in enumerate(frame.groupby("gpu", sort=True)):
        colour = _PALETTE[k % len(_PALETTE)]
        label = f"GPU {gpu}" + (f": {names[str(gpu)]}" if str(gpu) in names else "")
        t = g["t_s"]
        series = (
            (1, g["memory_used_bytes"] / GiB, "memory used", "solid", "%{y:.2f} GiB"),
            (2, g["gpu_util_pct"], "GPU utilisation", "solid", "%{y:.0f} %"),
            (2, g["memory_util_pct"], "memory utilisation", "dot", "%{y:.0f} %"),
            (3, g["power_w"], "power", "solid", "%{y:.0f} W"),
            (4, g["temperature_c"], "temperature", "solid", "%{y:.0f} °C"),
        )
        for row, y, what, dash, hover in series:
            fig.add_trace(
                _line(
                    t, y, f"{label}: {what}", colour, dash=dash, legendgroup=label,
                    showlegend=row == 1 or dash == "dot",
                    hover=f"{label}<br>{what}: {hover}<br>t = %{{x:.1f}} s<extra></extra>",
                ),
                row=row,
                col=1,
            )  # fmt: skip
    fig.update_xaxes(title_text="seconds since the watch started", row=4, col=1)
    reason = frame.attrs.get("reason")
    full = title if not reason else f"{title}<br><sup>{reason}</sup>"
    return _layout(fig, full, height=720)


# --- copy bandwidth ----------------------------------------------------------------------------


def copy_bandwidth_figure(result: CopyBandwidthResult) -> Any:
    """Bandwidth against copy size, counted both ways (read plus written; copied once), with
    the datasheet figure as a dashed line when the GPU is in the catalog."""
    title = f"Copy bandwidth: {result.label}"
    df = result.frame
    if df.empty:
        return _empty(title, "; ".join(result.notes) or "no sizes were measured")
    fig = go.Figure()
    size_mib = df["size_bytes"] / 2**20
    fraction = df["fraction_of_datasheet"]
    custom = np.stack([df["median_s"] * 1e3, fraction.fillna(-1.0).to_numpy()], axis=-1)
    for column, name, dash in (
        ("bandwidth_read_plus_written_bytes_per_s", "read + written (what memory moved)", "solid"),
        ("bandwidth_copied_once_bytes_per_s", "copied bytes counted once (halves it)", "dash"),
    ):
        fig.add_trace(
            go.Scatter(
                x=size_mib,
                y=df[column] / 1e9,
                mode="lines+markers",
                name=name,
                line={"dash": dash},
                customdata=custom,
                hovertemplate=(
                    "%{x:,.0f} MiB copied in %{customdata[0]:.3f} ms<br>"
                    "%{y:,.1f} GB/s<extra>" + name + "</extra>"
                ),
            )
        )
    ds = result.datasheet_bandwidth_bytes_per_s
    if ds is not None:
        where = result.catalog.name if result.catalog is not None else "catalog"
        fig.add_hline(
            y=ds / 1e9,
            line={"dash": "dot", "color": "grey"},
            annotation_text=f"datasheet {fmt.gb_s(ds)} ({where})",
            annotation_position="top left",
        )
    sub = f"largest size: {fmt.gb_s(result.bandwidth_bytes_per_s)} read + written" + (
        f", {fmt.pct(result.fraction_of_datasheet)} of the datasheet"
        if result.fraction_of_datasheet is not None
        else ""
    )
    fig.update_xaxes(type="log", title_text="bytes per copy (MiB)")
    fig.update_yaxes(title_text="bandwidth (GB/s)", rangemode="tozero")
    return _layout(fig, f"{title}<br><sup>{sub}</sup>")


# --- roofline experiment -----------------------------------------------------------------------


def _first_compute_bound(g: pd.DataFrame) -> float | None:
    hits = g.loc[g["predicted_bound"] == "compute", "batch"]
    return None if hits.empty else float(hits.iloc[0])


def roofline_experiment_figure(frame: pd.DataFrame) -> Any:
    """Two panels for :func:`infphys.measure.gpu.roofline_experiment`'s frame.

    Left: step time against batch size, measured points on the roofline's predicted curve
    (efficiency 1, solid; the kit's defaults, dashed), with a dotted line where the prediction
    turns compute-bound. Right: the classic roofline, achieved FLOP/s against arithmetic
    intensity, under the roof ``min(peak, bandwidth × intensity)`` with the ridge point marked.
    """
    attrs = frame.attrs
    model = attrs.get("model", "model")
    gpu_name = attrs.get("gpu_name", "GPU")
    title = f"Decode roofline experiment: {model} on {attrs.get('device_name', 'this machine')}"
    if frame.empty:
        skipped = attrs.get("skipped") or {}
        reason = "; ".join(f"{k}: {v}" for k, v in skipped.items()) or "nothing was timed"
        return _empty(title, reason)
    fig = make_subplots(
        rows=1,
        cols=2,
        horizontal_spacing=0.1,
        subplot_titles=(
            "step time vs batch (points: measured, lines: roofline)",
            f"roofline of {gpu_name}",
        ),
    )
    bw = float(attrs.get("peak_bandwidth_bytes_per_s", math.nan))
    peaks: dict[str, float] = attrs.get("peak_flops_per_s") or {}
    ridges: dict[str, float] = attrs.get("ridge_point_flop_per_byte") or {}
    lo = float(frame["intensity_flop_per_byte"].min()) / 2
    hi = max([float(frame["intensity_flop_per_byte"].max()), *ridges.values()]) * 2
    steps_ms = (
        pd.concat(
            [frame["step_s"], frame["predicted_peak_step_s"], frame["predicted_default_step_s"]]
        )
        * 1e3
    )
    t_lo, t_hi = float(steps_ms.min()) / 1.3, float(steps_ms.max()) * 1.3
    finite_peaks = [v for v in peaks.values() if math.isfinite(v)]
    f_lo = float(frame["achieved_flops_per_s"].min()) / 2
    f_hi = max([float(frame["achieved_flops_per_s"].max()), *finite_peaks]) * 1.5
    for k, (prec, g) in enumerate(frame.groupby("precision", sort=False)):
        c = _PALETTE[k % len(_PALETTE)]
        g = g.sort_values("batch")
        p = str(prec).upper()
        for col, what, short, dash in (
            ("predicted_peak_step_s", "efficiency 1", "efficiency 1", "solid"),
            ("predicted_default_step_s", "default efficiencies", "defaults", "dash"),
        ):
            fig.add_trace(
                _line(
                    g["batch"], g[col] * 1e3, f"{p} roofline, {what}", c, dash=dash,
                    legendgroup=p,
                    hover=f"batch %{{x}}: %{{y:.3f}} ms predicted ({short})<extra></extra>",
                ),
                row=1,
                col=1,
            )  # fmt: skip
        fig.add_trace(
            _line(
                g["batch"],
                g["step_s"] * 1e3,
                f"{p} measured",
                c,
                mode="markers",
                marker={"size": 9, "symbol": "circle"},
                legendgroup=p,
                customdata=np.stack([g["error_vs_peak"] * 100, g["error_vs_default"] * 100], -1),
                hover=(
                    "batch %{x}: %{y:.3f} ms measured<br>"
                    "%{customdata[0]:+.0f}% vs efficiency 1, %{customdata[1]:+.0f}% vs defaults"
                    "<extra></extra>"
                ),
            ),
            row=1,
            col=1,
        )
        turn = _first_compute_bound(g)
        if turn is not None:
            _vline(fig, turn, t_lo, t_hi, f"{p}: compute-bound from batch {turn:.0f}", c, 1, 1, k)
        # Right panel: the roof, the ridge, the measured points.
        peak = float(peaks.get(str(prec), math.nan))
        if math.isfinite(peak) and math.isfinite(bw):
            xs = np.geomspace(lo, hi, 64)
            fig.add_trace(
                _line(
                    xs, np.minimum(peak, bw * xs), f"{p} roof", c, width=1, legendgroup=p,
                    showlegend=False,
                    hover="%{x:.1f} FLOP/byte: roof %{y:.3s}FLOP/s<extra></extra>",
                ),
                row=1,
                col=2,
            )  # fmt: skip
        ridge = ridges.get(str(prec))
        if ridge is not None:
            _vline(fig, ridge, f_lo, f_hi, f"{p} ridge point: {ridge:,.0f} FLOP/byte", c, 1, 2, k)
        fig.add_trace(
            _line(
                g["intensity_flop_per_byte"], g["achieved_flops_per_s"],
                f"{p} measured (roofline)", c, mode="markers", marker={"size": 9},
                legendgroup=p, showlegend=False, text=[f"batch {b}" for b in g["batch"]],
                hover="%{text}: %{x:.1f} FLOP/byte, %{y:.3s}FLOP/s achieved<extra></extra>",
            ),
            row=1,
            col=2,
        )  # fmt: skip
    fig.update_xaxes(type="log", title_text="batch (sequences per step)", row=1, col=1)
    fig.update_yaxes(type="log", title_text="step time (ms)", row=1, col=1)
    fig.update_xaxes(type="log", title_text="arithmetic intensity (FLOP/byte)", row=1, col=2)
    fig.update_yaxes(type="log", title_text="FLOP/s", exponentformat="SI", row=1, col=2)
    sub = (
        f"{attrs.get('context_tokens')} cached tokens per sequence; "
        f"priced against {gpu_name} ({attrs.get('gpu_source', '')})"
    )
    return _layout(fig, f"{title}<br><sup>{sub}</sup>", height=560)
