"""Figures of the catalog and the physics: GPU specs, the KV-cache cliff, the decode roofline.

Every figure here is drawn from :mod:`infphys.catalog` and :mod:`infphys.physics`; this module
computes nothing of its own beyond choosing what to plot. Where a reader would want to move a
parameter, the curves for every value are precomputed and switched by plotly's own slider or
dropdown, so the figure stays interactive in a static page with no Python behind it.

The figures use the house template (:mod:`infphys.plots._style`, ``plotly_white`` with the
kit's palette); the course site restyles their colours for its light and dark themes when
it draws them.

Example (in a lab, or on the site with ``{{ chart("kv_cliff") }}``)::

    from infphys.plots.physics import kv_cliff
    kv_cliff("llama-3.1-70b", gpus=("h100-sxm", "h200-sxm"))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from infphys import fmt, physics
from infphys.catalog import (
    BF16,
    GPUS,
    GPUSpec,
    Precision,
    StepParams,
    get_gpu,
    get_model,
    get_precision,
)
from infphys.plots._chapter import log_log as _log_log
from infphys.plots._chapter import view as _view
from infphys.plots._style import PALETTE as _PALETTE
from infphys.plots._style import TEMPLATE
from infphys.plots._style import line as _line

__all__ = ["decode_roofline", "gpu_specs", "kv_cliff"]

#: The context lengths the KV-cliff slider offers (tokens), cut at the model's maximum.
DEFAULT_CONTEXTS = (1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072)
#: The GPUs compared by default: one per generation of NVIDIA's data-centre parts.
DEFAULT_GPUS = ("a100-80gb-sxm", "h100-sxm", "h200-sxm", "b200")
#: Points kept per line: enough for smooth hover, small enough for a light page.
_MAX_POINTS = 240


def _layout(fig: Any, title: str, **extra: Any) -> Any:
    """The house style: white template, title top left, legend above the plot (``extra`` wins)."""
    layout: dict[str, Any] = {
        "template": TEMPLATE,
        "title": {"text": title, "x": 0, "xanchor": "left"},
        "margin": {"l": 64, "r": 24, "t": 72, "b": 56},
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0, "xanchor": "left"},
        "hoverlabel": {"namelength": -1},
    }
    fig.update_layout(**(layout | extra))
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(automargin=True)
    return fig


def _thin(n: int, keep: int = _MAX_POINTS) -> np.ndarray:
    """Indices 0 … n − 1, at most ``keep`` of them, evenly spread, first and last included."""
    if n <= keep:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, keep).round().astype(int))


def _batch_grid(max_batch: int) -> list[int]:
    """Every batch size up to 64, then about 24 per factor of ten up to ``max_batch``."""
    small = list(range(1, min(64, max_batch) + 1))
    if max_batch <= 64:
        return small
    big = np.unique(np.geomspace(64, max_batch, 3 + int(24 * math.log10(max_batch / 64))).round())
    return sorted(set(small) | {int(b) for b in big})


# --- the catalog -----------------------------------------------------------------------------


def gpu_specs(gpus: Sequence[str | GPUSpec] | None = None, metric: str = "bandwidth") -> Any:
    """Bar chart of the catalog's GPUs, with a dropdown over what to compare.

    Metrics: ``bandwidth`` (datasheet memory bandwidth, TB/s), ``memory`` (GB), ``bf16`` and
    ``fp8`` (dense tensor TFLOP/s; 0 where the chip has no FP8) and ``ridge`` (the BF16 ridge
    point, FLOP per byte, from :func:`infphys.physics.ridge_point`). Bars are sorted by
    bandwidth, the figure that sets decode speed; hovering shows each figure's source.

    Args:
        gpus: catalog keys (default: every GPU in the catalog).
        metric: the metric shown first.
    """
    specs = sorted(
        (get_gpu(g) for g in (gpus if gpus is not None else list(GPUS))),
        key=lambda g: g.bandwidth_bytes_per_s,
    )
    names = [g.name for g in specs]
    fp8 = [(g.fp8_flops_per_s or 0.0) / 1e12 for g in specs]
    ridge = [physics.ridge_point(g) for g in specs]
    # key: (label, values, their text, the catalog field cited on hover)
    metrics: dict[str, tuple[str, list[float], list[str], str]] = {
        key: (label, [getattr(g, field) / scale for g in specs],
              [text(getattr(g, field)) for g in specs], field)
        for key, label, field, scale, text in (
            ("bandwidth", "Memory bandwidth", "bandwidth_bytes_per_s", 1e12, fmt.tb_s),
            ("memory", "Memory", "memory_bytes", 1e9, lambda v: fmt.gb(v, 0)),
            ("bf16", "Dense BF16", "bf16_flops_per_s", 1e12, fmt.tflops),
        )
    }  # fmt: skip
    metrics["fp8"] = (
        "Dense FP8",
        fp8,
        [fmt.tflops(v * 1e12) if v else "no FP8" for v in fp8],
        "fp8_flops_per_s",
    )
    metrics["ridge"] = (
        "BF16 ridge point",
        ridge,
        [f"{fmt.num(r, 0)} FLOP/byte" for r in ridge],
        "bf16_flops_per_s",
    )
    units = {
        "bandwidth": "TB/s (10¹² bytes/s)",
        "memory": "GB (10⁹ bytes)",
        "bf16": "TFLOP/s",
        "fp8": "TFLOP/s",
        "ridge": "FLOP per byte moved",
    }
    if metric not in metrics:
        raise ValueError(f"metric must be one of {', '.join(metrics)} (got {metric!r})")
    fig = go.Figure()
    keys = list(metrics)
    for i, key in enumerate(keys):
        label, values, texts, source_field = metrics[key]
        fig.add_bar(
            x=names,
            y=values,
            text=texts,
            textposition="outside",
            cliponaxis=False,
            name=label,
            visible=key == metric,
            marker_color=_PALETTE[i % len(_PALETTE)],
            customdata=[g.sources.get(source_field, "") for g in specs],
            hovertemplate="%{x}: %{text}<br><i>%{customdata}</i><extra></extra>",
        )
    buttons = [
        _view(
            metrics[key][0],
            [k == key for k in keys],
            {"yaxis.title.text": units[key], "title.text": f"{metrics[key][0]} per GPU"},
        )
        for key in keys
    ]
    _layout(
        fig,
        f"{metrics[metric][0]} per GPU",
        showlegend=False,
        height=440,
        yaxis={"title": {"text": units[metric]}, "rangemode": "tozero"},
        updatemenus=[
            {
                "buttons": buttons,
                "active": keys.index(metric),
                "x": 1,
                "xanchor": "right",
                "y": 1.12,
                "yanchor": "bottom",
            }
        ],
    )
    return fig


# --- memory: the KV-cache cliff -------------------------------------------------------------


def kv_cliff(
    model: str = "llama-3.1-8b",
    contexts: Sequence[int] = DEFAULT_CONTEXTS,
    gpus: Sequence[str | GPUSpec] = ("h100-sxm", "h200-sxm", "b200"),
    *,
    context: int = 8192,
    weights_precision: str | Precision = BF16,
    kv_precision: str | Precision = BF16,
) -> Any:
    """Memory (weights + KV cache) against concurrent users, with a slider over context length.

    One line per context length (tokens per user, prompt + output), shown one at a time; one
    horizontal line per GPU's memory; a marker where each GPU runs out. The numbers come from
    :func:`infphys.physics.kv_cliff` (raw device memory, no utilization cap or reserve).

    Args:
        model: catalog key of the model.
        contexts: context lengths offered on the slider; those over the model's maximum
            context are dropped.
        gpus: the GPUs whose memory is drawn.
        context: the context length shown first (must be in ``contexts``).
        weights_precision: number format of the weights, e.g. ``"fp8"``.
        kv_precision: number format of the KV cache.
    """
    m = get_model(model)
    wp, kp = get_precision(weights_precision), get_precision(kv_precision)
    ctxs = sorted({int(c) for c in contexts if 0 < int(c) <= m.max_context_tokens})
    if not ctxs:
        raise ValueError(
            f"contexts must hold at least one length in [1, {m.max_context_tokens}] "
            f"(got {contexts!r})"
        )
    if context not in ctxs:
        raise ValueError(f"context must be one of {ctxs} (got {context!r})")
    lines = {g.name: g.memory_bytes for g in (get_gpu(x) for x in gpus)}
    if not lines:
        raise ValueError("gpus must name at least one GPU")
    top = max(lines.values())

    fig = go.Figure()
    steps: list[dict[str, Any]] = []
    first_title, first_range = "", [0, 1]
    per_ctx = 3  # traces per context: weights, weights + KV, the crash markers
    for i, n in enumerate(ctxs):
        # Grow the user range until every memory line is crossed, then show 20 % beyond it.
        users = 64
        while True:
            cliff = physics.kv_cliff(
                m, n, users, vram_lines_bytes=lines, weights_precision=wp, kv_precision=kp
            )
            if all(c is not None for c in cliff.crash_users.values()) or users >= 1 << 20:
                break
            users *= 4
        last = max((c for c in cliff.crash_users.values() if c is not None), default=users)
        x_max = max(8, math.ceil(last * 1.2))
        cliff = physics.kv_cliff(
            m, n, x_max, vram_lines_bytes=lines, weights_precision=wp, kv_precision=kp
        )
        idx = _thin(len(cliff.users))
        u = cliff.users[idx]
        total_gb = cliff.total_bytes[idx] / 1e9
        weights_gb = np.full(len(u), cliff.weights_bytes / 1e9)
        per_user = float(cliff.kv_bytes[0])
        visible = n == context
        fig.add_scatter(
            x=u,
            y=weights_gb,
            name=f"weights ({wp.name})",
            mode="lines",
            line={"color": "#8c8c8c", "width": 1},
            fill="tozeroy",
            visible=visible,
            hovertemplate="weights: %{y:.1f} GB<extra></extra>",
        )
        fig.add_trace(
            _line(
                u,
                total_gb,
                f"weights + KV cache ({kp.name})",
                _PALETTE[0],
                width=3,
                fill="tonexty",
                visible=visible,
                hover="%{x} users: %{y:.1f} GB<extra></extra>",
            )
        )
        crash = [(name, c) for name, c in cliff.crash_users.items() if c is not None]
        fig.add_trace(
            _line(
                [c for _, c in crash],
                [lines[name] / 1e9 for name, _ in crash],
                "out of memory",
                _PALETTE[1],
                mode="markers+text",
                text=[
                    f"{name}: the weights alone do not fit"
                    if cliff.weights_bytes > lines[name]
                    else f"{name} full at {fmt.count(c)} user{'' if c == 1 else 's'}"
                    for name, c in crash
                ],
                textposition=["top right" if c < x_max / 2 else "top left" for _, c in crash],
                visible=visible,
                hover="%{text}<extra></extra>",
                marker={"size": 11, "symbol": "x"},
            )
        )
        title = f"{m.name}, {fmt.count(n)}-token context: {fmt.gb(per_user)} of KV cache per user"
        steps.append(
            _view(
                f"{n // 1024}K" if n >= 1024 else str(n),
                [j // per_ctx == i for j in range(per_ctx * len(ctxs))],
                {"title.text": title, "xaxis.range": [0, x_max]},
            )
        )
        if visible:
            first_title, first_range = title, [0, x_max]

    for k, (name, b) in enumerate(lines.items()):
        fig.add_hline(
            y=b / 1e9,
            line={"dash": "dash", "color": _PALETTE[(k + 2) % len(_PALETTE)]},
            annotation_text=f"{name}: {fmt.gb(b, 0)}",
            annotation_position="bottom right",
        )
    _layout(
        fig,
        first_title,
        height=520,
        xaxis={"title": {"text": "concurrent users"}, "range": first_range},
        yaxis={"title": {"text": "memory, GB (10⁹ bytes)"}, "range": [0, top / 1e9 * 1.15]},
        sliders=[
            {
                "active": ctxs.index(context),
                "currentvalue": {"prefix": "context per user: ", "suffix": " tokens"},
                "pad": {"t": 48},
                "steps": steps,
            }
        ],
    )
    return fig


# --- the roofline: decode speed against batch size ------------------------------------------


def decode_roofline(
    model: str = "llama-3.1-8b",
    gpus: Sequence[str | GPUSpec] = DEFAULT_GPUS,
    *,
    context_tokens: int = 2048,
    max_batch: int = 1024,
    weights_precision: str | Precision = BF16,
    kv_precision: str | Precision = BF16,
    params: StepParams | None = None,
) -> Any:
    """Decode throughput against batch size on the roofline, with a dropdown over GPUs.

    For one GPU: total tokens/s (all sequences), tokens/s per user, the two roofs
    (what bandwidth alone and compute alone would allow), where the step turns compute-bound,
    and the batch beyond which the sequences' KV cache no longer fits. "All GPUs" compares the
    total throughput of every GPU. Step times come from
    :func:`infphys.physics.decode_step_time`; the KV limit from
    :func:`infphys.physics.max_concurrent_sequences`.

    Args:
        model: catalog key of the model.
        gpus: the GPUs offered in the dropdown (the first is shown first).
        context_tokens: tokens already cached per sequence.
        max_batch: the largest batch plotted.
        weights_precision: number format of the weights, e.g. ``"fp8"``.
        kv_precision: number format of the KV cache.
        params: the step model's parameters (default: the fitted set,
            :data:`infphys.catalog.FITTED_STEP_PARAMS`).
    """
    m = get_model(model)
    specs = [get_gpu(g) for g in gpus]
    if not specs:
        raise ValueError("gpus must name at least one GPU")
    if max_batch < 2:
        raise ValueError(f"max_batch must be an integer >= 2 (got {max_batch!r})")
    knobs: dict[str, Any] = {
        "weights_precision": weights_precision,
        "kv_precision": kv_precision,
        "params": params,
    }
    batches = _batch_grid(max_batch)
    fig = go.Figure()
    per_gpu = 4  # traces per GPU: total, memory roof, compute roof, per user
    views: list[tuple[str, str, list[dict[str, Any]], list[dict[str, Any]]]] = []
    for k, g in enumerate(specs):
        steps = [physics.decode_step_time(g, m, b, context_tokens, **knobs) for b in batches]
        total = [b / s.total_s for b, s in zip(batches, steps, strict=True)]
        color = _PALETTE[k % len(_PALETTE)]
        for y, name, colour, dash, width, hover in (
            (total, f"{g.name}: total tokens/s", color, "solid", 3,
             "batch %{x}: %{y:,.0f} tokens/s<extra>" + g.name + "</extra>"),
            ([b / s.memory_s for b, s in zip(batches, steps, strict=True)], "bandwidth roof",
             color, "dot", 1, "bandwidth alone: %{y:,.0f} tokens/s<extra></extra>"),
            ([b / s.compute_s for b, s in zip(batches, steps, strict=True)], "compute roof",
             color, "dash", 1, "compute alone: %{y:,.0f} tokens/s<extra></extra>"),
            ([1 / s.total_s for s in steps], "tokens/s per user", "#8c8c8c", "solid", 2,
             "per user: %{y:,.0f} tokens/s<extra></extra>"),
        ):  # fmt: skip
            fig.add_trace(
                _line(
                    batches, y, name, colour, dash=dash, width=width, legendgroup=g.name,
                    visible=k == 0, hover=hover,
                )
            )  # fmt: skip
        shapes: list[dict[str, Any]] = []
        notes: list[dict[str, Any]] = []
        turn = next((b for b, s in zip(batches, steps, strict=True) if s.bound == "compute"), None)
        if turn is not None:
            shapes.append(_vline(turn, color))
            notes.append(_vnote(turn, f"compute-bound from batch ≈ {fmt.count(turn)}", 0.02))
        fits = physics.max_concurrent_sequences(
            g,
            m,
            max(context_tokens, 1),
            weights_precision=weights_precision,
            kv_precision=kv_precision,
        )
        if fits < max_batch:
            shapes.append(
                {
                    "type": "rect",
                    "xref": "x",
                    "yref": "paper",
                    "x0": max(fits, 1),
                    "x1": max_batch,
                    "y0": 0,
                    "y1": 1,
                    "line": {"width": 0},
                    "fillcolor": "rgba(239,85,59,0.12)",
                    "layer": "below",
                }
            )
            text = (
                f"weights do not fit in {g.name}"
                if fits == 0
                else f"KV cache full beyond {fmt.count(fits)} sequences"
            )
            notes.append(_vnote(max(fits, 1), text, 0.92))
        title = (
            f"{m.name} decode on {g.name}, {fmt.count(context_tokens)} tokens cached per sequence"
        )
        views.append((g.name, title, shapes, notes))

    n = per_gpu * len(specs)
    buttons = [
        _view(
            name,
            [j // per_gpu == k for j in range(n)],
            {"title.text": title, "shapes": shapes, "annotations": notes},
        )
        for k, (name, title, shapes, notes) in enumerate(views)
    ]
    buttons.append(
        {
            "label": "All GPUs",
            "method": "update",
            "args": [
                {"visible": [j % per_gpu == 0 for j in range(n)]},
                {
                    "title.text": f"{m.name} decode: total tokens/s by GPU, "
                    f"{fmt.count(context_tokens)} tokens cached per sequence",
                    "shapes": [],
                    "annotations": [],
                },
            ],
        }
    )
    _, title0, shapes0, notes0 = views[0]
    _layout(
        fig,
        title0,
        height=540,
        shapes=shapes0,
        annotations=notes0,
        **_log_log("batch (sequences decoding together)", "decode tokens/s"),
        legend={"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0, "xanchor": "left"},
        updatemenus=[
            {
                "buttons": buttons,
                "active": 0,
                "x": 1,
                "xanchor": "right",
                "y": 1.02,
                "yanchor": "bottom",
            }
        ],
    )
    fig.update_layout(margin={"t": 96, "b": 24})
    return fig


def _vline(x: float, color: str) -> dict[str, Any]:
    # Shapes take data coordinates on a log axis; annotations take log10 of them (_vnote).
    return {
        "type": "line",
        "xref": "x",
        "yref": "paper",
        "x0": x,
        "x1": x,
        "y0": 0,
        "y1": 1,
        "line": {"color": color, "dash": "dashdot", "width": 1},
    }


def _vnote(x: float, text: str, y: float) -> dict[str, Any]:
    return {
        "x": math.log10(x),
        "xref": "x",
        "y": y,
        "yref": "paper",
        "text": text,
        "showarrow": False,
        "xanchor": "left",
        "yanchor": "bottom",
        "xshift": 4,
        "font": {"size": 12},
    }
