"""Memory figures: KV bytes per token and per sequence, and what precision does to capacity.

Each draws :mod:`infphys.physics.memory` (and the roofline for the capacity chart's batch
curves) from the catalog's models and GPUs; a dropdown switches model or deployment.

Example::

    from infphys.plots.memory import kv_bytes_per_token_bars
    kv_bytes_per_token_bars()
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from infphys import fmt, physics
from infphys.catalog import (
    BF16,
    MODELS,
    Precision,
    get_gpu,
    get_model,
    get_precision,
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
    "kv_bytes_per_token_bars",
    "kv_sequence_growth",
    "precision_capacity",
]


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
            _view(f"{p.name.upper()} KV cache", _visible(2 * len(ps), 2, k), {"title.text": title})
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
        fig.add_trace(
            _line(
                n,
                per_seq / 1e9,
                m.name,
                color,
                width=3,
                hover="%{x:,} tokens: %{y:.3g} GB<extra>" + m.name + "</extra>",
            )
        )
        fig.add_trace(
            _line(
                n,
                per_seq / n,
                m.name,
                color,
                width=3,
                visible=False,
                showlegend=True,
                hover="%{x:,} tokens: %{y:,.0f} bytes per token<extra>" + m.name + "</extra>",
            )
        )
    n_tr = 2 * len(ms)
    per_seq_title = _title(f"KV cache of one sequence, {p.name.upper()}", "prompt + output tokens")
    per_tok_title = _title(
        f"KV cache per token of context, {p.name.upper()}", "averaged over the whole sequence"
    )
    buttons = [
        _view(
            "GB per sequence",
            [j % 2 == 0 for j in range(n_tr)],
            {"title.text": per_seq_title, "yaxis.title.text": "GB (10⁹ bytes), log scale"},
        ),
        _view(
            "bytes per token",
            [j % 2 == 1 for j in range(n_tr)],
            {"title.text": per_tok_title, "yaxis.title.text": "bytes per token, log scale"},
        ),
    ]
    _layout(
        fig,
        per_seq_title,
        height=500,
        **_log_log("tokens in the sequence (prompt + output)", "GB (10⁹ bytes), log scale"),
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
        seqs = f" sequences of {fmt.count(context_tokens)} tokens"
        for y, name, colour, hover in (
            (w_gb, "weights", _GREY, "weights %{y:.1f} GB"),
            (kv_gb, "KV cache budget", _PALETTE[0], "KV cache %{y:.1f} GB = %{customdata}" + seqs),
            (held_gb, "held back / over", "rgba(140,140,140,0.25)",
             "%{y:.1f} GB held back (reserve, utilisation cap)"),
        ):  # fmt: skip
            fig.add_bar(
                x=labels, y=y, name=name, marker_color=colour, visible=visible, legendgroup="mem",
                customdata=fits if "customdata" in hover else None,
                hovertemplate=f"%{{x}}: {hover}<extra></extra>", row=1, col=1,
            )  # fmt: skip
        fig.add_trace(
            _line(
                labels, [total_mem / 1e9] * len(labels), "GPU memory", _PALETTE[1], dash="dash",
                visible=visible, legendgroup="mem",
                hover=f"{fmt.gb(total_mem, 0)} of GPU memory<extra></extra>",
            ),
            row=1,
            col=1,
        )  # fmt: skip
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
            fig.add_trace(
                _line(
                    bs, tput, label, _PALETTE[(s + 1) % len(_PALETTE)], width=3, visible=visible,
                    legendgroup="tput",
                    hover="batch %{x}: %{y:,.0f} tokens/s<extra>" + label + "</extra>",
                ),
                row=1,
                col=2,
            )  # fmt: skip
            if bs:
                ends_x.append(bs[-1])
                ends_y.append(tput[-1])
                ends_t.append(f"{fmt.count(cap)} fit" if cap <= max_batch else "")
        fig.add_trace(
            _line(
                ends_x,
                ends_y,
                "KV cache full",
                _PALETTE[1],
                mode="markers",
                visible=visible,
                text=ends_t,
                hover="%{text}: the next sequence does not fit<extra></extra>",
                marker={"symbol": "x", "size": 11},
            ),
            row=1,
            col=2,
        )
        where = f"{tp} × {g.name}" if tp > 1 else g.name
        title = _title(f"{m.name} on {where}", f"{fmt.count(context_tokens)} tokens per sequence")
        buttons.append(
            _view(
                f"{m.name} · {where}",
                _visible(per_dep * len(deployments), per_dep, d),
                {"title.text": title},
            )
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
