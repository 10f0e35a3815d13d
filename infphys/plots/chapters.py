"""Figures of the course chapters: queueing, the roofline, the KV cache, precision and cost.

Every figure here draws what :mod:`infphys.physics` computes; it chooses what to plot and how, and
computes nothing of its own beyond unit conversions and ratios for display. Where a reader would
want to move a parameter (servers, GPU, deployment, number format), the curves for every value are
precomputed and switched by plotly's own slider or dropdown, so the figure stays interactive in a
static page with no Python behind it.

The site embeds them by name (``{{ chart("queue_utilisation_trap") }}``); a lab shows the same
figure object. They share the look of :mod:`infphys.plots.physics` (``plotly_white``, restyled by
the site for its light and dark themes).

Example::

    from infphys.plots.chapters import roofline_chart
    roofline_chart("llama-3.1-8b", gpus=("h100-sxm", "h200-sxm"))
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from infphys import fmt, physics
from infphys.catalog import (
    BF16,
    IDEAL_STEP_PARAMS,
    MODELS,
    GPUSpec,
    Precision,
    get_gpu,
    get_model,
    get_precision,
)

__all__ = [
    "closed_vs_open_loop",
    "cost_curves",
    "kv_bytes_per_token_bars",
    "kv_sequence_growth",
    "precision_capacity",
    "queue_utilisation_trap",
    "roofline_chart",
]

#: Colours for series that the reader compares (plotly's default qualitative palette, as in
#: :mod:`infphys.plots.physics`).
_PALETTE = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692")
_GREY = "#8c8c8c"
#: Server counts offered by the queueing sliders.
DEFAULT_SERVERS = (1, 2, 4, 8, 16, 32, 64)
#: Weight and KV-cache formats compared on the precision chart: (weights, KV cache).
DEFAULT_SCHEMES: tuple[tuple[str, str], ...] = (
    ("bf16", "bf16"),
    ("fp8", "bf16"),
    ("fp8", "fp8"),
    ("int4-g128", "fp8"),
)
#: Deployments on the precision chart: (model, GPU, tensor-parallel GPUs).
DEFAULT_DEPLOYMENTS: tuple[tuple[str, str, int], ...] = (
    ("llama-3.1-8b", "h100-sxm", 1),
    ("llama-3.1-70b", "h100-sxm", 1),
    ("llama-3.1-70b", "h200-sxm", 1),
    ("llama-3.1-70b", "h100-sxm", 2),
)


def _layout(
    fig: Any,
    title: str,
    *,
    height: int,
    buttons: list[dict[str, Any]] | None = None,
    margin: dict[str, int] | None = None,
    legend_below_px: int = 64,
    **extra: Any,
) -> Any:
    """Common look for charts about 560-700 px wide: a two-line title at the top left; with a
    dropdown, the dropdown just above the plot on the right and the legend under the x axis
    (``legend_below_px`` under the plot); without one, the legend just above the plot."""
    m = {
        "l": 64,
        "r": 24,
        "t": 104 if buttons else 86,
        "b": 56 + (70 if buttons else 0),
        **(margin or {}),
    }
    plot_px = height - m["t"] - m["b"]
    legend: dict[str, Any] = {"orientation": "h", "x": 0, "xanchor": "left"}
    if buttons:
        legend.update(y=-legend_below_px / plot_px, yanchor="top")
    else:
        legend.update(y=1.0, yanchor="bottom")
    fig.update_layout(
        template="plotly_white",
        height=height,
        title={
            "text": title,
            "x": 0.01,
            "xanchor": "left",
            "y": 1 - 12 / height,
            "yanchor": "top",
            "yref": "container",
        },
        margin=m,
        legend=legend,
        hoverlabel={"namelength": -1},
        **extra,
    )
    if buttons:
        fig.update_layout(
            updatemenus=[
                {
                    "buttons": buttons,
                    "active": 0,
                    "x": 1,
                    "xanchor": "right",
                    "y": 1 + 8 / plot_px,
                    "yanchor": "bottom",
                }
            ]
        )
    return fig


def _title(main: str, sub: str = "") -> str:
    """A short title, with an optional smaller second line (charts are narrow on the site)."""
    return f"{main}<br><sup>{sub}</sup>" if sub else main


def _batch_grid(max_batch: int) -> list[int]:
    """1, 2, 3, 4, 6, 8, … : about eight points per doubling up to ``max_batch``."""
    pts = np.unique(np.geomspace(1, max_batch, 8 * max(1, math.ceil(math.log2(max_batch)))).round())
    return [int(b) for b in pts]


def _visible(n_traces: int, per_view: int, view: int) -> list[bool]:
    return [j // per_view == view for j in range(n_traces)]


# --- queueing --------------------------------------------------------------------------------


def _utilisation_grid(max_utilisation: float) -> np.ndarray:
    """Utilisations from 0 to ``max_utilisation``, denser where the curves turn up."""
    lo = np.linspace(0.0, 0.8, 33)
    hi = 1.0 - np.geomspace(0.2, 1.0 - max_utilisation, 48)
    return np.unique(np.concatenate([lo, hi]))


def queue_utilisation_trap(
    servers: Sequence[int] = DEFAULT_SERVERS,
    *,
    server: int = 1,
    max_utilisation: float = 0.99,
    percentile: float = 0.95,
) -> Any:
    """Waiting time against utilisation for an M/M/c queue, with a slider over c.

    Time is in units of the mean service time, so the curves hold for any server: a replica that
    answers in 2 s, or a batch slot that takes 30 ms per token. Three lines per c: the mean time
    in the system (wait + service), the mean wait, and the ``percentile`` of the wait (exact
    for M/M/c, :meth:`infphys.physics.QueueMetrics.wait_percentile_s`). All from
    :func:`infphys.physics.mmc`.

    Args:
        servers: the values of c on the slider.
        server: the c shown first (must be in ``servers``).
        max_utilisation: the right end of the x axis (below 1).
        percentile: the wait percentile drawn, e.g. 0.95.
    """
    cs = sorted({int(c) for c in servers})
    if not cs or cs[0] < 1:
        raise ValueError(f"servers must hold integers >= 1 (got {servers!r})")
    if server not in cs:
        raise ValueError(f"server must be one of {cs} (got {server!r})")
    if not 0 < max_utilisation < 1:
        raise ValueError(f"max_utilisation must be in (0, 1) (got {max_utilisation!r})")
    rho = _utilisation_grid(max_utilisation)
    mu = 1.0  # service rate 1/s: times read directly in service times
    q_label = f"p{round(percentile * 100)}"
    fig = go.Figure()
    steps: list[dict[str, Any]] = []
    per_c = 3
    first_title = ""
    for i, c in enumerate(cs):
        qs = [physics.mmc(r * c * mu, mu, c) for r in rho]
        w = [q.mean_response_s for q in qs]
        wq = [q.mean_wait_s for q in qs]
        wp = [q.wait_percentile_s(percentile) for q in qs]
        pw = [q.p_wait for q in qs]
        visible = c == server
        fig.add_scatter(
            x=rho,
            y=w,
            name="mean time in system",
            mode="lines",
            visible=visible,
            line={"color": _PALETTE[0], "width": 3},
            customdata=pw,
            hovertemplate="ρ = %{x:.0%}: %{y:.2f} × service time<br>"
            "P(wait) = %{customdata:.0%}<extra>mean time in system</extra>",
        )
        fig.add_scatter(
            x=rho,
            y=wq,
            name="mean wait in queue",
            mode="lines",
            visible=visible,
            line={"color": _PALETTE[2], "width": 2},
            hovertemplate="ρ = %{x:.0%}: %{y:.2f} × service time<extra>mean wait</extra>",
        )
        fig.add_scatter(
            x=rho,
            y=wp,
            name=f"{q_label} wait in queue",
            mode="lines",
            visible=visible,
            line={"color": _PALETTE[1], "width": 2, "dash": "dash"},
            hovertemplate="ρ = %{x:.0%}: %{y:.2f} × service time<extra>"
            + q_label
            + " wait</extra>",
        )
        at90 = physics.mmc(0.9 * c * mu, mu, c)
        title = _title(
            f"The utilisation trap, M/M/{c}",
            f"at 90% busy: mean wait {fmt.num(at90.mean_wait_s)} × the service time, "
            f"{q_label} wait {fmt.num(at90.wait_percentile_s(percentile))} ×",
        )
        steps.append(
            {
                "label": str(c),
                "method": "update",
                "args": [{"visible": _visible(per_c * len(cs), per_c, i)}, {"title.text": title}],
            }
        )
        if visible:
            first_title = title
    _layout(
        fig,
        first_title,
        height=500,
        xaxis={
            "title": {"text": "utilisation ρ = λ / (c μ)"},
            "tickformat": ".0%",
            "range": [0, 1],
        },
        yaxis={"title": {"text": "time, in mean service times"}, "range": [0, 20]},
        sliders=[
            {
                "active": cs.index(server),
                "currentvalue": {"prefix": "servers c = "},
                "pad": {"t": 48},
                "steps": steps,
            }
        ],
    )
    fig.add_vline(x=1, line={"color": _GREY, "dash": "dot", "width": 1})
    return fig


def closed_vs_open_loop(
    servers: Sequence[int] = DEFAULT_SERVERS,
    *,
    server: int = 8,
    max_users_factor: int = 4,
) -> Any:
    """Mean latency against throughput for the same servers driven closed loop and open loop.

    Closed loop: N clients, each sending its next request the moment the last one returns
    (a benchmark at ``--concurrency N``); the throughput is min(N, c) μ and the latency follows
    from Little's Law, W = N / X (:func:`infphys.physics.littles_law_latency_s`). Open loop:
    Poisson arrivals at rate λ, whatever the server is doing (real users); the latency is
    M/M/c's (:func:`infphys.physics.mmc`). Times in mean service times, throughput in requests
    per mean service time. A slider moves c.

    Args:
        servers: the values of c on the slider.
        server: the c shown first (must be in ``servers``).
        max_users_factor: the closed loop runs up to this many clients per server.
    """
    cs = sorted({int(c) for c in servers})
    if not cs or cs[0] < 1:
        raise ValueError(f"servers must hold integers >= 1 (got {servers!r})")
    if server not in cs:
        raise ValueError(f"server must be one of {cs} (got {server!r})")
    if max_users_factor < 1:
        raise ValueError(f"max_users_factor must be >= 1 (got {max_users_factor!r})")
    mu = 1.0
    fig = go.Figure()
    steps: list[dict[str, Any]] = []
    per_c = 2
    first: tuple[str, list[float]] = ("", [0, 1])
    y_max = 2.0 * max_users_factor + 1
    for i, c in enumerate(cs):
        visible = c == server
        users = sorted(
            {
                *range(1, min(c, 16) + 1),
                *np.unique(np.geomspace(1, max_users_factor * c, 40).round().astype(int)).tolist(),
            }
        )
        loops = [physics.closed_loop(n, mu, servers=c) for n in users]
        xs = [m.throughput_per_s for m in loops]
        ws = [m.mean_response_s for m in loops]
        lam = c * mu * _utilisation_grid(0.995)[1:]
        wo = [physics.mmc(x, mu, c).mean_response_s for x in lam]
        fig.add_scatter(
            x=xs,
            y=ws,
            name="closed loop: N clients, no think time",
            mode="lines+markers",
            visible=visible,
            line={"color": _PALETTE[0], "width": 3},
            marker={"size": 5},
            customdata=users,
            hovertemplate="N = %{customdata} clients: %{x:.2f} req per service time, "
            "latency %{y:.2f} × service<extra>closed loop</extra>",
        )
        fig.add_scatter(
            x=lam,
            y=wo,
            name="open loop: Poisson arrivals",
            mode="lines",
            visible=visible,
            line={"color": _PALETTE[1], "width": 3},
            hovertemplate="λ = %{x:.2f} req per service time: latency %{y:.2f} × service"
            "<extra>open loop</extra>",
        )
        at = physics.mmc(0.95 * c * mu, mu, c)
        title = _title(
            f"Closed loop vs open loop, c = {c}",
            f"at 95% of capacity: open loop {fmt.num(at.mean_response_s)} × the service time; "
            "closed loop at N = c: 1 ×",
        )
        x_range = [0, c * mu * 1.08]
        steps.append(
            {
                "label": str(c),
                "method": "update",
                "args": [
                    {"visible": _visible(per_c * len(cs), per_c, i)},
                    {"title.text": title, "xaxis.range": x_range},
                ],
            }
        )
        if visible:
            first = (title, x_range)
    _layout(
        fig,
        first[0],
        height=500,
        xaxis={"title": {"text": "throughput, requests per mean service time"}, "range": first[1]},
        yaxis={"title": {"text": "mean latency, in service times"}, "range": [0, y_max]},
        sliders=[
            {
                "active": cs.index(server),
                "currentvalue": {"prefix": "servers c = "},
                "pad": {"t": 48},
                "steps": steps,
            }
        ],
    )
    return fig


# --- the roofline ----------------------------------------------------------------------------


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
        fig.add_scatter(
            x=intensity,
            y=roof,
            mode="lines",
            name=f"{g.name} roof",
            visible=visible,
            line={"color": _GREY, "width": 3},
            hovertemplate="%{x:.0f} FLOP/byte: at most %{y:,.0f} TFLOP/s<extra>roof</extra>",
        )
        fig.add_scatter(
            x=[ridge, ridge],
            y=[peak / 1e12 / 300, peak / 1e12],
            mode="lines+text",
            name=f"ridge point {fmt.num(ridge, 0)} FLOP/byte",
            visible=visible,
            line={"color": _GREY, "dash": "dot", "width": 1},
            text=[f"ridge {fmt.num(ridge, 0)}", ""],
            textposition="bottom center",
            hoverinfo="skip",
        )
        dec = [physics.decode_step_time(g, m, b, context_tokens, **knobs) for b in batches]
        fig.add_scatter(
            x=[s.intensity for s in dec],
            y=[s.flops / s.total_s / 1e12 for s in dec],
            mode="markers+text",
            name=f"decode, {fmt.count(context_tokens)} tokens cached",
            visible=visible,
            marker={"color": _PALETTE[0], "size": 11},
            text=[f"B={b}" for b in batches],
            textposition=[
                "bottom right" if i % 2 == 0 else "top left" for i in range(len(batches))
            ],
            customdata=[[b, s.total_s * 1e3] for b, s in zip(batches, dec, strict=True)],
            hovertemplate="decode, batch %{customdata[0]}: %{x:.1f} FLOP/byte, "
            "%{y:,.1f} TFLOP/s, step %{customdata[1]:.2f} ms<extra></extra>",
        )
        pre = [physics.prefill_time(g, m, n, **knobs) for n in prompts]
        fig.add_scatter(
            x=[s.intensity for s in pre],
            y=[s.flops / s.total_s / 1e12 for s in pre],
            mode="markers+text",
            name="prefill of one prompt",
            visible=visible,
            marker={"color": _PALETTE[1], "size": 11, "symbol": "diamond"},
            text=[f"{fmt.count(n)}" for n in prompts],
            textposition="top left",
            customdata=[[n, s.total_s * 1e3] for n, s in zip(prompts, pre, strict=True)],
            hovertemplate="prefill of %{customdata[0]:,} tokens: %{x:,.0f} FLOP/byte, "
            "%{y:,.0f} TFLOP/s, %{customdata[1]:.1f} ms<extra></extra>",
        )
        fmt_name = "FP8" if fp8 else "BF16"
        title = _title(
            f"{m.name} on the {g.name} roofline",
            f"{fmt_name}: ridge at {fmt.num(ridge, 0)} FLOP/byte; decode with "
            f"{fmt.count(context_tokens)} tokens cached per sequence",
        )
        buttons.append(
            {
                "label": g.name,
                "method": "update",
                "args": [
                    {"visible": _visible(per_gpu * len(specs), per_gpu, k)},
                    {"title.text": title},
                ],
            }
        )
        if visible:
            first_title = title
    _layout(
        fig,
        first_title,
        height=540,
        xaxis={"title": {"text": "arithmetic intensity, FLOP per byte moved"}, "type": "log"},
        yaxis={"title": {"text": "TFLOP/s reached"}, "type": "log"},
        buttons=buttons,
    )
    return fig


# --- the KV cache ----------------------------------------------------------------------------


def kv_bytes_per_token_bars(
    models: Sequence[str] | None = None,
    precisions: Sequence[str] = ("bf16", "fp8"),
) -> Any:
    """KV-cache bytes per token for each model: the correct formula beside the naive one.

    Correct: :func:`infphys.physics.kv_bytes_per_token` (GQA, MQA and MLA counted; for models
    with sliding-window layers, the layers that keep every token). Naive:
    :func:`infphys.physics.kv_bytes_per_token_naive` (hidden size in place of KV heads × head
    dim). A dropdown switches the KV-cache format. Log scale: the gap is up to 25×.

    Args:
        models: catalog keys (default: every model in the catalog, one per shape, that has
            full-attention layers; a model whose every layer keeps a sliding window, such as
            Mistral-7B-v0.1, adds no bytes per token beyond its window and has no bar).
        precisions: KV-cache formats in the dropdown (the first is shown first).
    """
    keys = (
        list(models)
        if models is not None
        else [k for k, m in MODELS.items() if k != "llama-3.3-70b" and m.full_attention_layers > 0]
    )
    ms = sorted((get_model(k) for k in keys), key=lambda m: physics.kv_bytes_per_token(m))
    ps = [get_precision(p) for p in precisions]
    if not ms or not ps:
        raise ValueError("models and precisions must each name at least one entry")
    names = [f"{m.name} ({m.attention_kind})" for m in ms]
    fig = go.Figure()
    buttons: list[dict[str, Any]] = []
    for k, p in enumerate(ps):
        right = [physics.kv_bytes_per_token(m, p) for m in ms]
        naive = [physics.kv_bytes_per_token_naive(m, p) for m in ms]
        visible = k == 0
        fig.add_bar(
            x=names,
            y=naive,
            name="naive: 2 × layers × hidden × bytes",
            visible=visible,
            marker_color=_GREY,
            text=[fmt.kib(v) for v in naive],
            textposition="none",
            customdata=[f"{n / r:.1f}× too high" for n, r in zip(naive, right, strict=True)],
            hovertemplate="%{x}: %{text} (%{customdata})<extra>naive</extra>",
        )
        fig.add_bar(
            x=names,
            y=right,
            name="correct: KV heads, MLA latent, full-attention layers",
            visible=visible,
            marker_color=_PALETTE[0],
            text=[fmt.kib(v) for v in right],
            textposition="none",
            hovertemplate="%{x}: %{text} per token<extra>correct</extra>",
        )
        title = _title(
            f"KV cache per token, {p.name.upper()}", "the correct formula beside the naive one"
        )
        buttons.append(
            {
                "label": f"{p.name.upper()} KV cache",
                "method": "update",
                "args": [{"visible": _visible(2 * len(ps), 2, k)}, {"title.text": title}],
            }
        )
    _layout(
        fig,
        _title(
            f"KV cache per token, {ps[0].name.upper()}", "the correct formula beside the naive one"
        ),
        height=520,
        barmode="group",
        xaxis={"tickangle": -30},
        yaxis={"title": {"text": "bytes per token (log scale)"}, "type": "log"},
        buttons=buttons,
        margin={"b": 170},
        legend_below_px=125,
    )
    return fig


def kv_sequence_growth(
    models: Sequence[str] = (
        "llama-3.1-70b",
        "llama-3.1-8b",
        "deepseek-v3",
        "qwen2.5-7b",
        "gpt-oss-120b",
    ),
    *,
    precision: str | Precision = BF16,
) -> Any:
    """KV cache held by one sequence against its length, per model; a dropdown shows it per token.

    From :func:`infphys.physics.kv_bytes_per_sequence`: full-attention layers grow with every
    token, sliding-window layers stop at the window (gpt-oss-120b), MLA caches one small latent
    (DeepSeek-V3). Each line stops at the model's maximum context.

    Args:
        models: catalog keys.
        precision: KV-cache format.
    """
    ms = [get_model(k) for k in models]
    if not ms:
        raise ValueError("models must name at least one model")
    p = get_precision(precision)
    fig = go.Figure()
    for k, m in enumerate(ms):
        n = np.unique(np.geomspace(16, m.max_context_tokens, 90).round().astype(int))
        per_seq = np.array([physics.kv_bytes_per_sequence(m, int(t), p) for t in n])
        color = _PALETTE[k % len(_PALETTE)]
        fig.add_scatter(
            x=n,
            y=per_seq / 1e9,
            mode="lines",
            name=m.name,
            line={"color": color, "width": 3},
            hovertemplate="%{x:,} tokens: %{y:.3g} GB<extra>" + m.name + "</extra>",
        )
        fig.add_scatter(
            x=n,
            y=per_seq / n,
            mode="lines",
            name=m.name,
            line={"color": color, "width": 3},
            visible=False,
            showlegend=True,
            hovertemplate="%{x:,} tokens: %{y:,.0f} bytes per token<extra>" + m.name + "</extra>",
        )
    n_tr = 2 * len(ms)
    per_seq_title = _title(f"KV cache of one sequence, {p.name.upper()}", "prompt + output tokens")
    per_tok_title = _title(
        f"KV cache per token of context, {p.name.upper()}", "averaged over the whole sequence"
    )
    buttons = [
        {
            "label": "GB per sequence",
            "method": "update",
            "args": [
                {"visible": [j % 2 == 0 for j in range(n_tr)]},
                {"title.text": per_seq_title, "yaxis.title.text": "GB (10⁹ bytes), log scale"},
            ],
        },
        {
            "label": "bytes per token",
            "method": "update",
            "args": [
                {"visible": [j % 2 == 1 for j in range(n_tr)]},
                {"title.text": per_tok_title, "yaxis.title.text": "bytes per token, log scale"},
            ],
        },
    ]
    _layout(
        fig,
        per_seq_title,
        height=500,
        xaxis={"title": {"text": "tokens in the sequence (prompt + output)"}, "type": "log"},
        yaxis={"title": {"text": "GB (10⁹ bytes), log scale"}, "type": "log"},
        buttons=buttons,
    )
    return fig


# --- precision: FP8 and quantisation ---------------------------------------------------------


def _scheme_label(weights: Precision, kv: Precision) -> str:
    """``weights/KV`` formats, short enough for a tick label: ``FP8/FP8``, ``INT4/FP8``."""
    return f"{weights.name.split('-')[0].upper()}/{kv.name.split('-')[0].upper()}"


def precision_capacity(
    deployments: Sequence[tuple[str, str, int]] = DEFAULT_DEPLOYMENTS,
    schemes: Sequence[tuple[str, str]] = DEFAULT_SCHEMES,
    *,
    context_tokens: int = 4096,
    max_batch: int = 1024,
) -> Any:
    """What each number format buys: memory split and decode throughput, per deployment.

    Left: the GPUs' memory split into weights (:func:`infphys.physics.weight_bytes`), the KV
    cache budget (:func:`infphys.physics.kv_budget_bytes`) and what the engine holds back
    (activation reserve and the 10 % that ``gpu_memory_utilization`` leaves). Right: total decode
    tokens/s against batch (:func:`infphys.physics.decode_step_time`), each line stopping at the
    batch whose KV cache no longer fits (:func:`infphys.physics.max_concurrent_sequences`). A
    dropdown switches deployment (model, GPU, tensor-parallel size).

    Args:
        deployments: (model key, GPU key, tensor-parallel GPUs) triples.
        schemes: (weights format, KV-cache format) pairs, e.g. ``("fp8", "fp8")``.
        context_tokens: tokens each sequence holds (prompt + output).
        max_batch: the largest batch plotted.
    """
    if not deployments or not schemes:
        raise ValueError("deployments and schemes must each hold at least one entry")
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.36, 0.64],
        horizontal_spacing=0.16,
    )
    pairs = [(get_precision(w), get_precision(k)) for w, k in schemes]
    labels = [_scheme_label(w, k) for w, k in pairs]
    per_dep = 4 + len(pairs) + 1
    batches = _batch_grid(max_batch)
    buttons: list[dict[str, Any]] = []
    first_title = ""
    for d, (model_key, gpu_key, tp) in enumerate(deployments):
        m, g = get_model(model_key), get_gpu(gpu_key)
        visible = d == 0
        total_mem = g.memory_bytes * tp
        w_gb, kv_gb, held_gb = [], [], []
        fits: list[int] = []
        for wpr, kpr in pairs:
            wb = physics.weight_bytes(m, wpr)
            kb = physics.kv_budget_bytes(g, m, weights_precision=wpr, tp=tp)
            w_gb.append(wb / 1e9)
            kv_gb.append(max(kb, 0.0) / 1e9)
            held_gb.append(max(total_mem - wb - max(kb, 0.0), 0.0) / 1e9)
            fits.append(
                physics.max_concurrent_sequences(
                    g, m, context_tokens, weights_precision=wpr, kv_precision=kpr, tp=tp
                )
            )
        fig.add_bar(
            x=labels,
            y=w_gb,
            name="weights",
            marker_color=_GREY,
            visible=visible,
            legendgroup="mem",
            hovertemplate="%{x}: weights %{y:.1f} GB<extra></extra>",
            row=1,
            col=1,
        )
        fig.add_bar(
            x=labels,
            y=kv_gb,
            name="KV cache budget",
            marker_color=_PALETTE[0],
            visible=visible,
            legendgroup="mem",
            customdata=fits,
            hovertemplate="%{x}: KV cache %{y:.1f} GB = %{customdata} sequences of "
            + fmt.count(context_tokens)
            + " tokens<extra></extra>",
            row=1,
            col=1,
        )
        fig.add_bar(
            x=labels,
            y=held_gb,
            name="held back / over",
            marker_color="rgba(140,140,140,0.25)",
            visible=visible,
            legendgroup="mem",
            hovertemplate="%{x}: %{y:.1f} GB held back (reserve, utilisation cap)<extra></extra>",
            row=1,
            col=1,
        )
        fig.add_scatter(
            x=labels,
            y=[total_mem / 1e9] * len(labels),
            mode="lines",
            name="GPU memory",
            visible=visible,
            legendgroup="mem",
            line={"color": _PALETTE[1], "dash": "dash", "width": 2},
            hovertemplate=f"{fmt.gb(total_mem, 0)} of GPU memory<extra></extra>",
            row=1,
            col=1,
        )
        ends_x, ends_y, ends_t = [], [], []
        for s, ((wpr, kpr), label, cap) in enumerate(zip(pairs, labels, fits, strict=True)):
            bs = [b for b in batches if b <= cap]
            if cap and cap <= max_batch and (not bs or bs[-1] != cap):
                bs.append(cap)
            tput = [
                b
                / physics.decode_step_s(
                    g, m, b, context_tokens, weights_precision=wpr, kv_precision=kpr, tp=tp
                )
                for b in bs
            ]
            fig.add_scatter(
                x=bs,
                y=tput,
                mode="lines",
                name=label,
                visible=visible,
                line={"color": _PALETTE[(s + 1) % len(_PALETTE)], "width": 3},
                legendgroup="tput",
                hovertemplate="batch %{x}: %{y:,.0f} tokens/s<extra>" + label + "</extra>",
                row=1,
                col=2,
            )
            if bs:
                ends_x.append(bs[-1])
                ends_y.append(tput[-1])
                ends_t.append(f"{fmt.count(cap)} fit" if cap <= max_batch else "")
        fig.add_scatter(
            x=ends_x,
            y=ends_y,
            mode="markers",
            name="KV cache full",
            visible=visible,
            marker={"color": _PALETTE[1], "symbol": "x", "size": 11},
            text=ends_t,
            hovertemplate="%{text}: the next sequence does not fit<extra></extra>",
            row=1,
            col=2,
        )
        where = f"{tp} × {g.name}" if tp > 1 else g.name
        title = _title(f"{m.name} on {where}", f"{fmt.count(context_tokens)} tokens per sequence")
        buttons.append(
            {
                "label": f"{m.name} · {where}",
                "method": "update",
                "args": [
                    {"visible": _visible(per_dep * len(deployments), per_dep, d)},
                    {"title.text": title},
                ],
            }
        )
        if visible:
            first_title = title
    _layout(
        fig,
        first_title,
        height=600,
        barmode="stack",
        buttons=buttons,
        margin={"b": 150},
        legend_below_px=95,
    )
    fig.update_xaxes(tickangle=-30, title={"text": "weights/KV cache format"}, row=1, col=1)
    fig.update_yaxes(title={"text": "memory, GB (10⁹ bytes)"}, row=1, col=1)
    fig.update_xaxes(
        type="log", title={"text": "batch (sequences decoding together)"}, row=1, col=2
    )
    fig.update_yaxes(type="log", title={"text": "tokens/s, all sequences"}, row=1, col=2)
    return fig


# --- cost ------------------------------------------------------------------------------------


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
        fig.add_scatter(
            x=bs,
            y=usd_m,
            mode="lines",
            name=f"{g.name}: $ per million output tokens",
            line={"color": color, "width": 3},
            visible=visible,
            customdata=list(zip(month, per_user, strict=True)),
            hovertemplate="batch %{x}: $%{y:.3f} per million tokens<br>"
            "$%{customdata[0]:,.2f} per user per month · %{customdata[1]:.0f} tokens/s each"
            "<extra>" + g.name + "</extra>",
        )
        fig.add_scatter(
            x=bs,
            y=per_user,
            mode="lines",
            name="tokens/s per user",
            yaxis="y2",
            line={"color": _GREY, "width": 2},
            visible=visible,
            hovertemplate="batch %{x}: %{y:.0f} tokens/s per user<extra></extra>",
        )
        fig.add_scatter(
            x=[bs[0], bs[-1]],
            y=[tokens_per_s_per_user] * 2,
            mode="lines",
            yaxis="y2",
            name=f"objective: {fmt.num(tokens_per_s_per_user)} tokens/s per user",
            line={"color": _PALETTE[1], "dash": "dash", "width": 1},
            visible=visible,
            hoverinfo="skip",
        )
        ok = [i for i, v in enumerate(per_user) if v >= tokens_per_s_per_user]
        last = ok[-1] if ok else 0
        fig.add_scatter(
            x=[bs[last]],
            y=[usd_m[last]],
            mode="markers+text",
            visible=visible,
            name="cheapest batch that meets the objective",
            marker={"color": _PALETTE[1], "size": 12, "symbol": "star"},
            text=[f"{fmt.usd(usd_m[last], 3)} / M tokens at batch {bs[last]}"],
            textposition="bottom left",
            hoverinfo="skip",
        )
        best.append((bs[: last + 1], usd_m[: last + 1], g.name, color))
        limit = f"KV cache full at {fmt.count(cap)}" if cap < max_batch else "KV cache never full"
        title = _title(
            f"{m.name} on {g.name} at {fmt.usd(price)} per GPU-hour",
            f"{limit}; {fmt.count(context_tokens)} tokens per user",
        )
        buttons.append(
            {
                "label": f"{g.name} ({fmt.usd(price)}/h)",
                "method": "update",
                "args": [
                    {"visible": _visible(per_gpu * n_gpu + n_gpu, per_gpu, k)},
                    {"title.text": title, "yaxis2.visible": True},
                ],
            }
        )
        if visible:
            first_title = title
    for bs, usd_m, name, color in best:
        fig.add_scatter(
            x=bs,
            y=usd_m,
            mode="lines",
            name=name,
            visible=False,
            line={"color": color, "width": 3},
            hovertemplate="batch %{x}: $%{y:.3f} per million tokens<extra>" + name + "</extra>",
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
        xaxis={"title": {"text": "concurrent users (batch)"}, "type": "log"},
        yaxis={"title": {"text": "$ per million output tokens"}, "type": "log"},
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
