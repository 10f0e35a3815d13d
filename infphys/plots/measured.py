"""Measured points beside the models: NVIDIA's NIM and TensorRT-LLM 0.9 tables, drawn.

Each function draws a table computed by :mod:`infphys.evidence` or :mod:`infphys.nim_planning`
(passed in, or computed with that module's defaults when omitted) and says where its data comes
from in the figure (:data:`infphys.catalog.MEASURED_SOURCES`). Measured values are markers,
models are lines.

- :func:`nim_fidelity`: TTFT and ITL against concurrency, measured and simulated, one
  deployment at a time (dropdown), one colour per prompt → output shape.
- :func:`nim_latency_throughput`: TTFT and ITL against output tokens/s, one curve per
  deployment, the concurrency on hover.
- :func:`nim_tp_gain`: output tokens/s per GPU at two TP sizes, against concurrency.
- :func:`measured_decode_vs_batch`: token-to-token time against the batch, the step model and
  the datasheet floor.
- :func:`measured_fp8_speedup`: FP16 ÷ FP8 step time at equal batch, measured and modelled.
- :func:`measured_bandwidth_fraction`: share of the datasheet bandwidth reached at batch 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from infphys.catalog import MEASURED_SOURCES
from infphys.plots._style import layout
from infphys.plots._style import line as _line

__all__ = [
    "measured_bandwidth_fraction",
    "measured_decode_vs_batch",
    "measured_fp8_speedup",
    "nim_fidelity",
    "nim_latency_throughput",
    "nim_tp_gain",
    "tp_scaling_measured_vs_simulated",
]

_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")
_NIM = "NIM: " + MEASURED_SOURCES["nim_llama3_serving.csv"].split(":", 1)[0]
_STATIC = "TensorRT-LLM 0.9: " + MEASURED_SOURCES["trtllm_0.9_static_batch.csv"].split(":", 1)[0]


def _sourced(
    fig: Any,
    title: str,
    source: str,
    *,
    height: int,
    margin: dict[str, int] | None = None,
    **extra: Any,
) -> Any:
    """The house layout with room under the plot for a line naming the data's ``source``."""
    layout(fig, title, height=height, margin={"b": 90, **(margin or {})}, **extra)
    fig.add_annotation(
        text=f"Data: {source} (NVIDIA DLI course data, see MEASURED_SOURCES)",
        x=0, y=-0.16, xref="paper", yref="paper", showarrow=False, xanchor="left",
        yanchor="top", font={"size": 10, "color": "#666"},
    )  # fmt: skip
    return fig


def nim_fidelity(replayed: pd.DataFrame | None = None) -> Any:
    """TTFT (top) and ITL (bottom) against concurrency: NIM measured (markers), simulated (lines).

    ``replayed`` is :func:`infphys.evidence.nim_replay` (computed when omitted). The dropdown
    picks the deployment; each colour is one prompt → output shape.
    """
    if replayed is None:
        from infphys.evidence import nim_replay

        replayed = nim_replay()
    r = replayed.groupby(["config", "shape", "isl", "osl", "concurrency"], as_index=False).mean(
        numeric_only=True
    )
    configs = sorted(r["config"].unique())
    shapes = r[["shape", "isl", "osl"]].drop_duplicates().sort_values(["isl", "osl"])["shape"]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    owner: list[str] = []
    for ci, config in enumerate(configs):
        for si, shape in enumerate(shapes):
            d = r[(r["config"] == config) & (r["shape"] == shape)].sort_values("concurrency")
            if d.empty:
                continue
            colour = _PALETTE[si % len(_PALETTE)]
            for row, col, unit in ((1, "ttft_ms_avg", "TTFT"), (2, "itl_ms_avg", "ITL")):
                for kind in ("measured", "simulated"):
                    y = d[col] if kind == "measured" else d[f"sim_{col}"]
                    fig.add_trace(
                        _line(
                            d["concurrency"],
                            y,
                            f"{shape} {kind}",
                            colour,
                            mode="markers" if kind == "measured" else "lines",
                            legendgroup=shape,
                            showlegend=row == 1,
                            visible=ci == 0,
                            hover=f"{shape} tokens, {kind}<br>%{{x}} clients: {unit} "
                            "%{y:.1f} ms<extra></extra>",
                            marker={"size": 8},
                        ),
                        row=row,
                        col=1,
                    )
                    owner.append(config)
    buttons = [
        {
            "label": config,
            "method": "update",
            "args": [{"visible": [o == config for o in owner]}],
        }
        for config in configs
    ]
    fig.update_xaxes(type="log", title_text="concurrent clients", row=2, col=1)
    fig.update_xaxes(type="log", row=1, col=1)
    fig.update_yaxes(type="log", title_text="TTFT, ms", row=1, col=1)
    fig.update_yaxes(title_text="ITL, ms", row=2, col=1)
    return _sourced(
        fig,
        "Measured (markers) against simulated (lines)",
        _NIM,
        height=640,
        margin={"t": 120},
        updatemenus=[
            {"buttons": buttons, "x": 1.0, "xanchor": "right", "y": 1.18, "yanchor": "top"}
        ],
    )


def nim_latency_throughput(curves: pd.DataFrame | None = None) -> Any:
    """TTFT (top) and ITL (bottom) against output tokens/s, one curve per deployment.

    ``curves`` is :func:`infphys.nim_planning.latency_throughput` (Llama-3-8B, 200 → 200 when
    omitted). Each point is one concurrency (on hover): moving right along a curve, more
    clients buy throughput and pay in latency.
    """
    if curves is None:
        from infphys.nim_planning import latency_throughput

        curves = latency_throughput()
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    for i, (config, d) in enumerate(curves.groupby("config", sort=True)):
        d = d.sort_values("concurrency")
        colour = _PALETTE[i % len(_PALETTE)]
        for row, col, unit in ((1, "ttft_ms_avg", "TTFT"), (2, "itl_ms_avg", "ITL")):
            fig.add_trace(
                _line(
                    d["output_tokens_per_s"],
                    d[col],
                    str(config),
                    colour,
                    mode="lines+markers",
                    customdata=d["concurrency"],
                    legendgroup=str(config),
                    showlegend=row == 1,
                    hover=f"{config}<br>%{{customdata}} clients: %{{x:,.0f}} tokens/s, "
                    f"{unit} %{{y:.1f}} ms<extra></extra>",
                ),
                row=row,
                col=1,
            )
    fig.update_yaxes(type="log", title_text="TTFT (mean), ms", row=1, col=1)
    fig.update_yaxes(title_text="ITL (mean), ms", row=2, col=1)
    fig.update_xaxes(title_text="output tokens/s (whole instance)", row=2, col=1)
    return _sourced(
        fig, "Latency against throughput, measured", _NIM, height=620, margin={"t": 110}
    )


def nim_tp_gain(table: pd.DataFrame | None = None) -> Any:
    """Output tokens/s per GPU at two TP sizes against concurrency (measured).

    ``table`` is :func:`infphys.nim_planning.tp_gain` (Llama-3-8B on H100, 200 → 200 when
    omitted).
    """
    if table is None:
        from infphys.nim_planning import tp_gain

        table = tp_gain()
    small, large = int(table["tp_small"].iloc[0]), int(table["tp_large"].iloc[0])
    fig = go.Figure()
    series = (("per_gpu_small", small, _PALETTE[0]), ("per_gpu_large", large, _PALETTE[1]))
    for col, tp, colour in series:
        fig.add_trace(
            _line(
                table["concurrency"],
                table[col],
                f"TP{tp}, per GPU",
                colour,
                mode="lines+markers",
                hover=f"TP{tp}: %{{x}} clients, %{{y:,.0f}} tokens/s per GPU<extra></extra>",
            )
        )
    fig.update_xaxes(type="log", title_text="concurrent clients")
    fig.update_yaxes(title_text="output tokens/s per GPU")
    return _sourced(
        fig, f"What the extra GPUs bought: TP{small} against TP{large}, per GPU", _NIM, height=440
    )


def measured_decode_vs_batch(table: pd.DataFrame | None = None, title: str | None = None) -> Any:
    """Token-to-token time against the batch: measured, the fitted step model, the floor.

    ``table`` is :func:`infphys.evidence.static_decode_vs_batch` (Llama-2-7B FP16 on one H100,
    128 → 128 when omitted).
    """
    if table is None:
        from infphys.evidence import static_decode_vs_batch

        table = static_decode_vs_batch()
    fig = go.Figure()
    for col, name, what, colour, dash, mode in (
        ("floor_ms", "datasheet floor", "floor", "#888", "dash", "lines"),
        ("model_ms", "fitted step model", "model", _PALETTE[0], "solid", "lines"),
        ("measured_ms", "measured", "measured", _PALETTE[1], "solid", "markers"),
    ):
        fig.add_trace(
            _line(
                table["batch"], table[col], name, colour, dash=dash, mode=mode,
                marker={"size": 10}, hover=f"batch %{{x}}: {what} %{{y:.2f}} ms<extra></extra>",
            )
        )  # fmt: skip
    fig.update_xaxes(type="log", title_text="batch (sequences decoding together)")
    fig.update_yaxes(title_text="token-to-token time, ms", rangemode="tozero")
    return _sourced(fig, title or "Decode step time against the batch", _STATIC, height=440)


def measured_fp8_speedup(table: pd.DataFrame | None = None) -> Any:
    """FP16 ÷ FP8 token-to-token time at equal batch: measured (markers), step model (lines).

    ``table`` is :func:`infphys.evidence.fp8_speedup` (H100 SXM, 128 → 128 when omitted).
    """
    if table is None:
        from infphys.evidence import fp8_speedup

        table = fp8_speedup()
    fig = go.Figure()
    for i, (label, d) in enumerate(table.groupby("label", sort=True)):
        colour = _PALETTE[i % len(_PALETTE)]
        d = d.sort_values("batch")
        for col, mode, name in (
            ("model", "lines", f"{label} model"),
            ("measured", "markers", label),
        ):
            fig.add_trace(
                _line(
                    d["batch"], d[col], str(name), colour, mode=mode, legendgroup=str(label),
                    showlegend=col == "measured",
                    hover=f"{label}, batch %{{x}}: {col} %{{y:.2f}}×<extra></extra>",
                )
            )  # fmt: skip
    fig.add_hline(y=2.0, line={"dash": "dot", "color": "#888"})
    fig.update_xaxes(type="log", title_text="batch")
    fig.update_yaxes(title_text="FP16 step ÷ FP8 step", rangemode="tozero")
    return _sourced(
        fig,
        "FP8's decode speed-up at equal batch (dotted: half the bytes, 2×)",
        _STATIC,
        height=480,
    )


def measured_bandwidth_fraction(table: pd.DataFrame | None = None) -> Any:
    """Share of the datasheet bandwidth each batch-1 decode row reached, per GPU.

    ``table`` is :func:`infphys.evidence.bandwidth_fraction` (computed when omitted): one
    marker per measured row (model, precision, TP, shape), the step model's median as a bar.
    """
    if table is None:
        from infphys.evidence import bandwidth_fraction

        table = bandwidth_fraction()
    order = table.groupby("gpu")["measured"].median().sort_values(ascending=False).index.tolist()
    med = table.groupby("gpu")["model"].median().reindex(order)
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=order,
            y=med.to_numpy(),
            name="step model (median)",
            marker={"color": "rgba(31,119,180,0.25)"},
            hovertemplate="%{x}: model %{y:.0%}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Box(
            x=table["gpu"],
            y=table["measured"],
            name="measured rows",
            boxpoints="all",
            jitter=0.4,
            pointpos=0,
            marker={"color": _PALETTE[1], "size": 5},
            line={"color": _PALETTE[1]},
            fillcolor="rgba(0,0,0,0)",
            customdata=table[["model_key", "precision_key", "tp"]].to_numpy(),
            hovertemplate=(
                "%{x}, %{customdata[0]} %{customdata[1]} × %{customdata[2]}: "
                "%{y:.0%}<extra></extra>"
            ),
        )
    )
    fig.update_xaxes(categoryorder="array", categoryarray=order)
    fig.update_yaxes(title_text="floor ÷ measured step", tickformat=".0%", range=[0, 1])
    return _sourced(
        fig, "Batch-1 decode: share of the datasheet bandwidth reached", _STATIC, height=460
    )


def tp_scaling_measured_vs_simulated(table: pd.DataFrame | None = None) -> Any:
    """Per-GPU throughput at the larger TP ÷ the smaller, measured (x) against simulated (y).

    ``table`` is :func:`infphys.evidence.tp_scaling`; one marker per shape and concurrency,
    one colour per model and GPU; the diagonal is a perfect prediction, and 1 would be perfect
    scaling.
    """
    if table is None:
        from infphys.evidence import tp_scaling

        table = tp_scaling()
    fig = go.Figure()
    groups = table.groupby(["model_key", "gpu_key", "tp_small", "tp_large"], sort=True)
    for k, ((m, gpu, lo, hi), d) in enumerate(groups):
        fig.add_trace(
            _line(
                d["per_gpu_ratio_measured"],
                d["per_gpu_ratio_simulated"],
                f"{m} on {gpu}: TP{lo} → TP{hi}",
                _PALETTE[k % len(_PALETTE)],
                mode="markers",
                customdata=np.stack([d["isl"], d["osl"], d["concurrency"]], axis=-1),
                hover="%{customdata[0]} → %{customdata[1]} tokens, %{customdata[2]} clients<br>"
                "measured %{x:.2f}, simulated %{y:.2f}<extra></extra>",
                marker={"size": 8},
            )
        )
    fig.add_trace(
        go.Scatter(
            x=[0.3, 1.1], y=[0.3, 1.1], mode="lines", name="simulated = measured",
            line={"color": "#8c8c8c", "dash": "dot"}, hoverinfo="skip",
        )
    )  # fmt: skip
    fig.update_xaxes(title_text="measured: per-GPU tokens/s, larger TP ÷ smaller")
    fig.update_yaxes(title_text="simulated: the same ratio")
    return _sourced(
        fig, "What the extra GPUs bought per GPU: measured against simulated", _NIM, height=460
    )
