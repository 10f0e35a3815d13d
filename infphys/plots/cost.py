"""Cost figures: dollars per million tokens against batch size, per GPU and price.

Draws :func:`infphys.physics.cost_per_million_tokens` over the roofline's throughput.

Example::

    from infphys.plots.cost import cost_curves
    cost_curves("llama-3.1-8b")
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import plotly.graph_objects as go

from infphys import fmt, physics
from infphys.catalog import (
    BF16,
    Precision,
    get_gpu,
    get_model,
)
from infphys.plots._chapter import batch_grid as _batch_grid
from infphys.plots._chapter import chapter_layout as _layout
from infphys.plots._chapter import log_log as _log_log
from infphys.plots._chapter import title as _title
from infphys.plots._chapter import view as _view
from infphys.plots._chapter import visible as _visible
from infphys.plots._style import GREY as _GREY
from infphys.plots._style import PALETTE as _PALETTE
from infphys.plots._style import line as _line

__all__ = [
    "cost_curves",
]


def cost_curves(
    hourly_usd: Mapping[str, float],
    model: str = "llama-3.1-8b",
    *,
    context_tokens: int = 2048,
    tokens_per_s_per_user: float = 20.0,
    max_batch: int = 1024,
    weights_precision: str | Precision = BF16,
    kv_precision: str | Precision = BF16,
) -> Any:
    """Dollars per million output tokens against the batch, with a dropdown over GPUs.

    For each GPU (one per key of ``hourly_usd``, at that price per GPU-hour): the cost of a
    million output tokens at the roofline's decode throughput
    (:func:`infphys.physics.tokens_per_s_ceiling`, :func:`infphys.physics.cost_per_million_tokens`),
    the tokens/s each user then sees (right axis) against the per-user speed objective, the
    cost of one concurrent user per month in the hover
    (:func:`infphys.physics.cost_per_concurrent_user`), and the batch beyond which the KV
    cache is full (:func:`infphys.physics.max_concurrent_sequences`). "All GPUs" compares the
    cost curves, each stopping where its users fall below the objective or its KV cache fills.

    Args:
        hourly_usd: GPU key → price of one GPU-hour in US dollars (an assumption to state).
        model: catalog key of the model.
        context_tokens: tokens each sequence holds.
        tokens_per_s_per_user: the per-user streaming speed objective.
        max_batch: the largest batch plotted.
        weights_precision, kv_precision: number formats.
    """
    if not hourly_usd:
        raise ValueError("hourly_usd must price at least one GPU")
    if tokens_per_s_per_user <= 0:
        raise ValueError(f"tokens_per_s_per_user must be > 0 (got {tokens_per_s_per_user!r})")
    m = get_model(model)
    knobs: dict[str, Any] = {"weights_precision": weights_precision, "kv_precision": kv_precision}
    batches = _batch_grid(max_batch)
    fig = go.Figure()
    per_gpu = 4
    n_gpu = len(hourly_usd)
    buttons: list[dict[str, Any]] = []
    first_title = ""
    best: list[tuple[list[int], list[float], str, str]] = []
    for k, (gpu_key, price) in enumerate(hourly_usd.items()):
        g = get_gpu(gpu_key)
        cap = physics.max_concurrent_sequences(g, m, context_tokens, **knobs)
        bs = [b for b in batches if b <= cap] or [1]
        if 0 < cap <= max_batch and bs[-1] != cap:
            bs.append(cap)
        ceil = [physics.tokens_per_s_ceiling(g, m, b, context_tokens, **knobs) for b in bs]
        usd_m = [physics.cost_per_million_tokens(price, total) for _, total in ceil]
        per_user = [per for per, _ in ceil]
        month = [physics.cost_per_concurrent_user(price, b).per_month_usd for b in bs]
        color = _PALETTE[k % len(_PALETTE)]
        visible = k == 0
        fig.add_trace(
            _line(
                bs,
                usd_m,
                f"{g.name}: $ per million output tokens",
                color,
                width=3,
                visible=visible,
                customdata=list(zip(month, per_user, strict=True)),
                hover="batch %{x}: $%{y:.3f} per million tokens<br>"
                "$%{customdata[0]:,.2f} per user per month · %{customdata[1]:.0f} tokens/s each"
                "<extra>" + g.name + "</extra>",
            )
        )
        fig.add_trace(
            _line(
                bs,
                per_user,
                "tokens/s per user",
                _GREY,
                width=2,
                yaxis="y2",
                visible=visible,
                hover="batch %{x}: %{y:.0f} tokens/s per user<extra></extra>",
            )
        )
        fig.add_trace(
            _line(
                [bs[0], bs[-1]],
                [tokens_per_s_per_user] * 2,
                f"objective: {fmt.num(tokens_per_s_per_user)} tokens/s per user",
                _PALETTE[1],
                dash="dash",
                width=1,
                yaxis="y2",
                visible=visible,
                hoverinfo="skip",
            )
        )
        ok = [i for i, v in enumerate(per_user) if v >= tokens_per_s_per_user]
        last = ok[-1] if ok else 0
        fig.add_trace(
            _line(
                [bs[last]],
                [usd_m[last]],
                "cheapest batch that meets the objective",
                _PALETTE[1],
                mode="markers+text",
                visible=visible,
                text=[f"{fmt.usd(usd_m[last], 3)} / M tokens at batch {bs[last]}"],
                textposition="bottom left",
                hoverinfo="skip",
                marker={"size": 12, "symbol": "star"},
            )
        )
        best.append((bs[: last + 1], usd_m[: last + 1], g.name, color))
        limit = f"KV cache full at {fmt.count(cap)}" if cap < max_batch else "KV cache never full"
        title = _title(
            f"{m.name} on {g.name} at {fmt.usd(price)} per GPU-hour",
            f"{limit}; {fmt.count(context_tokens)} tokens per user",
        )
        buttons.append(
            _view(
                f"{g.name} ({fmt.usd(price)}/h)",
                _visible(per_gpu * n_gpu + n_gpu, per_gpu, k),
                {"title.text": title, "yaxis2.visible": True},
            )
        )
        if visible:
            first_title = title
    for bs, usd_m, name, color in best:
        fig.add_trace(
            _line(
                bs,
                usd_m,
                name,
                color,
                width=3,
                visible=False,
                hover="batch %{x}: $%{y:.3f} per million tokens<extra>" + name + "</extra>",
            )
        )
    buttons.append(
        {
            "label": "All GPUs",
            "method": "update",
            "args": [
                {"visible": [j >= per_gpu * n_gpu for j in range(per_gpu * n_gpu + n_gpu)]},
                {
                    "title.text": _title(
                        f"{m.name}: $ per million output tokens",
                        f"each GPU while every user gets "
                        f"{fmt.num(tokens_per_s_per_user)} tokens/s or more",
                    ),
                    "yaxis2.visible": False,
                },
            ],
        }
    )
    _layout(
        fig,
        first_title,
        height=540,
        **_log_log("concurrent users (batch)", "$ per million output tokens"),
        yaxis2={
            "title": {"text": "tokens/s per user"},
            "overlaying": "y",
            "side": "right",
            "type": "log",
            "range": [0, 3],
            "tickvals": [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
            "showgrid": False,
        },
        buttons=buttons,
        margin={"r": 72},
    )
    return fig
