"""The classic roofline: attainable FLOP/s against arithmetic intensity, decode and prefill marked.

Draws :mod:`infphys.physics.roofline` for one model on several GPUs (a dropdown picks the GPU).

Example::

    from infphys.plots.roofline import roofline_chart
    roofline_chart("llama-3.1-8b", gpus=("h100-sxm", "h200-sxm"))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from infphys import fmt, physics
from infphys.catalog import (
    BF16,
    IDEAL_STEP_PARAMS,
    GPUSpec,
    Precision,
    get_gpu,
    get_model,
    get_precision,
)
from infphys.plots._chapter import chapter_layout as _layout
from infphys.plots._chapter import log_log as _log_log
from infphys.plots._chapter import title as _title
from infphys.plots._chapter import view as _view
from infphys.plots._chapter import visible as _visible
from infphys.plots._style import GREY as _GREY
from infphys.plots._style import PALETTE as _PALETTE
from infphys.plots._style import line as _line

__all__ = [
    "roofline_chart",
]


def roofline_chart(
    model: str = "llama-3.1-8b",
    gpus: Sequence[str | GPUSpec] = ("h100-sxm", "h200-sxm", "a100-80gb-sxm", "b200", "l40s"),
    *,
    context_tokens: int = 2048,
    batches: Sequence[int] = (1, 4, 16, 64, 256, 1024),
    prompts: Sequence[int] = (256, 1024, 4096, 16384),
    weights_precision: str | Precision = BF16,
    bandwidth_efficiency: float = 1.0,
    flops_efficiency: float = 1.0,
) -> Any:
    """The classic roofline (FLOP/s reached against FLOPs per byte), with a dropdown over GPUs.

    The roof is min(peak FLOP/s, intensity × bandwidth); the ridge point is where the two meet
    (:func:`infphys.physics.ridge_point`). The points are real steps of ``model``: decode steps
    at each batch (each sequence holding ``context_tokens`` of KV cache,
    :func:`infphys.physics.decode_step_time`) and prefills of each prompt length
    (:func:`infphys.physics.prefill_time`), placed at their intensity and the FLOP/s they reach.
    Defaults are the datasheet roofline (efficiencies 1).

    Args:
        model: catalog key of the model.
        gpus: the GPUs in the dropdown (the first is shown first).
        context_tokens: KV cache each decoding sequence already holds.
        batches: decode batch sizes to place.
        prompts: prompt lengths to place.
        weights_precision: e.g. ``"fp8"`` (FP8 math and the FP8 roof where the GPU has it).
        bandwidth_efficiency, flops_efficiency: fractions of the datasheet reached.
    """
    m = get_model(model)
    specs = [get_gpu(g) for g in gpus]
    if not specs:
        raise ValueError("gpus must name at least one GPU")
    wp = get_precision(weights_precision)
    knobs: dict[str, Any] = {
        "weights_precision": wp,
        "kv_precision": BF16,
        "params": IDEAL_STEP_PARAMS.with_(
            bandwidth_efficiency=bandwidth_efficiency, flops_efficiency=flops_efficiency
        ),
    }
    fig = go.Figure()
    per_gpu = 4
    buttons: list[dict[str, Any]] = []
    intensity = np.geomspace(0.5, 1e5, 200)
    first_title = ""
    for k, g in enumerate(specs):
        fp8 = wp.has_fp8_math and g.has_fp8
        ridge = physics.ridge_point(
            g,
            fp8=fp8,
            bandwidth_efficiency=bandwidth_efficiency,
            flops_efficiency=flops_efficiency,
        )
        peak = g.flops_per_s(fp8) * flops_efficiency
        bw = g.bandwidth_bytes_per_s * bandwidth_efficiency
        roof = np.minimum(peak, intensity * bw) / 1e12
        visible = k == 0
        fig.add_trace(
            _line(
                intensity,
                roof,
                f"{g.name} roof",
                _GREY,
                width=3,
                visible=visible,
                hover="%{x:.0f} FLOP/byte: at most %{y:,.0f} TFLOP/s<extra>roof</extra>",
            )
        )
        fig.add_trace(
            _line(
                [ridge, ridge],
                [peak / 1e12 / 300, peak / 1e12],
                f"ridge point {fmt.num(ridge, 0)} FLOP/byte",
                _GREY,
                dash="dot",
                width=1,
                mode="lines+text",
                visible=visible,
                text=[f"ridge {fmt.num(ridge, 0)}", ""],
                textposition="bottom center",
                hoverinfo="skip",
            )
        )
        dec = [physics.decode_step_time(g, m, b, context_tokens, **knobs) for b in batches]
        fig.add_trace(
            _line(
                [s.intensity for s in dec],
                [s.flops / s.total_s / 1e12 for s in dec],
                f"decode, {fmt.count(context_tokens)} tokens cached",
                _PALETTE[0],
                mode="markers+text",
                visible=visible,
                text=[f"B={b}" for b in batches],
                textposition=[
                    "bottom right" if i % 2 == 0 else "top left" for i in range(len(batches))
                ],
                customdata=[[b, s.total_s * 1e3] for b, s in zip(batches, dec, strict=True)],
                hover="decode, batch %{customdata[0]}: %{x:.1f} FLOP/byte, "
                "%{y:,.1f} TFLOP/s, step %{customdata[1]:.2f} ms<extra></extra>",
                marker={"size": 11},
            )
        )
        pre = [physics.prefill_time(g, m, n, **knobs) for n in prompts]
        fig.add_trace(
            _line(
                [s.intensity for s in pre],
                [s.flops / s.total_s / 1e12 for s in pre],
                "prefill of one prompt",
                _PALETTE[1],
                mode="markers+text",
                visible=visible,
                text=[f"{fmt.count(n)}" for n in prompts],
                textposition="top left",
                customdata=[[n, s.total_s * 1e3] for n, s in zip(prompts, pre, strict=True)],
                hover="prefill of %{customdata[0]:,} tokens: %{x:,.0f} FLOP/byte, "
                "%{y:,.0f} TFLOP/s, %{customdata[1]:.1f} ms<extra></extra>",
                marker={"size": 11, "symbol": "diamond"},
            )
        )
        fmt_name = "FP8" if fp8 else "BF16"
        title = _title(
            f"{m.name} on the {g.name} roofline",
            f"{fmt_name}: ridge at {fmt.num(ridge, 0)} FLOP/byte; decode with "
            f"{fmt.count(context_tokens)} tokens cached per sequence",
        )
        buttons.append(
            _view(g.name, _visible(per_gpu * len(specs), per_gpu, k), {"title.text": title})
        )
        if visible:
            first_title = title
    _layout(
        fig,
        first_title,
        height=540,
        **_log_log("arithmetic intensity, FLOP per byte moved", "TFLOP/s reached"),
        buttons=buttons,
    )
    return fig
