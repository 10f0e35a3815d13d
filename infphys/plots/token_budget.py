"""Token-budget figures: where a request's time goes, chunked prefill, one request's anatomy.

Every curve is a simulated run from :mod:`infphys.analysis.serving`, drawn the way
:mod:`infphys.plots._chapter` describes (values a reader would move sit in a dropdown).

Example::

    from infphys.plots.token_budget import time_split
    time_split("llama-3.1-8b", "h100-sxm", prompts=(256, 2048), outputs=(16, 128))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from infphys import fmt
from infphys.analysis.serving import budget_sweep, engine_config, grid_split, stalled_request
from infphys.plots._chapter import serving_layout as _layout
from infphys.plots._chapter import title as _title
from infphys.plots._style import GREY as _GREY
from infphys.plots._style import PALETTE as _PALETTE
from infphys.plots._style import empty_figure as _empty
from infphys.plots._style import line as _line

__all__ = [
    "chunked_prefill",
    "request_anatomy",
    "split_bars",
    "time_split",
]


def split_bars(
    split: pd.DataFrame, *, title: str = "where the time goes: median TTFT and decode per cell"
) -> Any:
    """A token grid's median TTFT stacked under its median decode time, per cell.

    ``split`` is :func:`infphys.analysis.token_budget_split` (measured or simulated runs).
    Bars are grouped by answer length and coloured by prompt size, dark TTFT under light
    decode; the dropdown shows seconds or each part's share of the cell's total.
    """
    if not len(split):
        return _empty(title, "not a token-grid run (no prompt size and max_tokens columns)")
    outputs = sorted({int(n) for n in split["max_tokens"]})
    cats = {n: f"{fmt.count(n)} out" for n in outputs}
    fig = go.Figure()
    # Per trace: (y in s, base in s, y in %, base in %), for the dropdown's two views.
    views: list[tuple[list[float], list[float], list[float], list[float]]] = []
    for k, p in enumerate(sorted({int(n) for n in split["prompt_tokens"]})):
        g = split[split["prompt_tokens"] == p].sort_values("max_tokens")
        ttft = g["ttft_p50_s"].astype(float).tolist()
        decode = g["decode_p50_s"].astype(float).tolist()
        tot = [a + b for a, b in zip(ttft, decode, strict=True)]
        color = _PALETTE[k % len(_PALETTE)]
        for part, vals, opacity in (("TTFT", ttft, 1.0), ("decode", decode, 0.45)):
            base = [0.0] * len(vals) if part == "TTFT" else ttft
            pct = [v / t * 100 for v, t in zip(vals, tot, strict=True)]
            views.append((vals, base, pct, [b / t * 100 for b, t in zip(base, tot, strict=True)]))
            fig.add_trace(
                go.Bar(
                    x=[cats[int(n)] for n in g["max_tokens"]], y=vals, base=base,
                    offsetgroup=str(p), name=f"{part}, {fmt.count(p)}-token prompt",
                    marker={"color": color, "opacity": opacity,
                            "line": {"color": color, "width": 1}},
                    customdata=np.column_stack([tot, pct]),
                    hovertemplate=f"{part} %{{customdata[1]:.0f}}% of %{{customdata[0]:.2f}} s"
                    "<extra>" + f"{fmt.count(p)}-token prompt</extra>",
                )
            )  # fmt: skip
    ys, bases, pys, pbases = (list(v) for v in zip(*views, strict=True))
    buttons = [
        {"label": "seconds", "method": "update",
         "args": [{"y": ys, "base": bases}, {"yaxis.title.text": "median latency, s",
                                               "yaxis.type": "linear"}]},
        {"label": "share of e2e, %", "method": "update",
         "args": [{"y": pys, "base": pbases}, {"yaxis.title.text": "share of end-to-end, %",
                                                "yaxis.type": "linear"}]},
    ]  # fmt: skip
    fig.update_layout(barmode="group", bargap=0.2, bargroupgap=0.05)
    fig.update_xaxes(
        title_text="answer length (max_tokens)", categoryorder="array",
        categoryarray=[cats[n] for n in outputs],
    )  # fmt: skip
    fig.update_yaxes(title_text="median latency, s", rangemode="tozero")
    return _layout(fig, title, height=560, buttons=buttons)


def time_split(
    model: str = "llama-3.1-8b",
    gpu: str = "h100-sxm",
    *,
    prompts: Sequence[int] = (256, 2048, 8192),
    outputs: Sequence[int] = (16, 128, 512, 2048),
    concurrency: int = 8,
    requests: int = 32,
    seed: int = 0,
) -> Any:
    """End-to-end latency split into TTFT and decode, over prompt length × answer length.

    One simulated closed-loop run at ``concurrency`` per (prompt, answer) pair
    (:func:`infphys.analysis.serving.grid_split`), drawn by :func:`split_bars`: each bar stacks
    the median TTFT and the median decode time (e2e − TTFT, which is (tokens − 1) × TPOT).
    """
    if not prompts or not outputs:
        raise ValueError("prompts and outputs must each hold at least one size")
    cfg = engine_config(model, gpu)
    split = grid_split(
        model, gpu, tuple(int(p) for p in prompts), tuple(int(n) for n in outputs),
        concurrency, requests, seed,
    )  # fmt: skip
    return split_bars(
        split,
        title=_title(
            f"Where the time goes: {cfg.model.name} on {cfg.gpu.name}, {concurrency} in flight",
            "dark: TTFT (queue + prefill) · light: decode, (tokens − 1) × TPOT · simulated",
        ),
    )


def chunked_prefill(
    model: str = "llama-3.1-8b",
    gpu: str = "h100-sxm",
    *,
    budgets: Sequence[int] = (512, 1024, 2048, 4096, 8192, 16384),
    concurrency: int = 32,
    requests: int = 192,
    prompt_tokens: tuple[int, int] = (64, 8192),
    max_tokens: tuple[int, int] = (128, 384),
    seed: int = 1,
) -> Any:
    """The token budget's trade: stalls in running streams against time to first token.

    A closed loop of ``concurrency`` requests whose prompts range from short to long (uniform
    in ``prompt_tokens``), at each token budget ``max_num_batched_tokens``: a long prompt is
    prefilled in chunks of at most the budget, and every running stream waits for the step
    that carries the chunk. Top: median and p99 ITL (every gap between tokens, ms) and the
    longest stall; bottom: median and p95 TTFT and the output throughput.
    """
    bs = sorted({int(b) for b in budgets})
    if len(bs) < 2:
        raise ValueError(f"budgets must hold at least two token budgets (got {budgets!r})")
    base = engine_config(model, gpu)
    d = budget_sweep(model, gpu, tuple(bs), concurrency, requests, prompt_tokens, max_tokens, seed)
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
        specs=[[{}], [{"secondary_y": True}]],
    )  # fmt: skip
    for col, name, color, dash, row, right, value in (
        ("itl_p50_ms", "median ITL", _PALETTE[0], "solid", 1, False, "%{y:.1f} ms"),
        ("itl_p99_ms", "p99 ITL", _PALETTE[1], "solid", 1, False, "%{y:.1f} ms"),
        ("itl_max_ms", "longest stall", _PALETTE[1], "dot", 1, False, "%{y:.1f} ms"),
        ("ttft_p50_s", "median TTFT", _PALETTE[4], "solid", 2, False, "%{y:.3f} s"),
        ("ttft_p95_s", "p95 TTFT", _PALETTE[4], "dot", 2, False, "%{y:.3f} s"),
        ("tokens_per_s", "output tokens/s", _GREY, "dash", 2, True, "%{y:,.0f} tokens/s"),
    ):
        hover = f"budget %{{x:,}}: {'' if right else name + ' '}{value}<extra></extra>"
        fig.add_trace(
            _line(d["budget"], d[col], name, color, dash=dash, mode="lines+markers", hover=hover),
            row=row,
            col=1,
            secondary_y=right if row == 2 else None,
        )
    fig.update_xaxes(type="log", tickvals=bs, ticktext=[fmt.count(b) for b in bs])
    fig.update_xaxes(title_text="token budget per step (max_num_batched_tokens)", row=2, col=1)
    fig.update_yaxes(title_text="gap between tokens, ms", type="log", row=1, col=1)
    fig.update_yaxes(title_text="TTFT, s", rangemode="tozero", row=2, col=1, secondary_y=False)
    fig.update_yaxes(
        title_text="output tokens/s", rangemode="tozero", showgrid=False,
        row=2, col=1, secondary_y=True,
    )  # fmt: skip
    return _layout(
        fig,
        _title(
            f"Chunked prefill: {base.model.name} on {base.gpu.name}, {concurrency} in flight",
            f"prompts {fmt.count(prompt_tokens[0])}–{fmt.count(prompt_tokens[1])} tokens, "
            f"answers {max_tokens[0]}–{max_tokens[1]}; simulated",
        ),
        height=620,
    )


# --- glossary: one request ----------------------------------------------------------------------


def request_anatomy(
    model: str = "llama-3.1-8b",
    gpu: str = "h100-sxm",
    *,
    concurrency: int = 16,
    requests: int = 48,
    prompt_tokens: tuple[int, int] = (128, 4096),
    max_tokens: int = 48,
    seed: int = 4,
) -> Any:
    """One streamed request, its TTFT, its ITL gaps and its TPOT, from a busy simulated engine.

    A closed loop of ``concurrency`` requests with prompts of mixed lengths, so that other
    requests' prefills land in the middle of some streams. Shown: the request whose longest
    gap stands out most. Top: its timeline (send, first token, every token, end) with TTFT and
    e2e marked; bottom: every gap between its tokens (its ITL values, ms) against its TPOT, the
    one average that the identity e2e = TTFT + (N − 1) × TPOT uses.
    """
    cfg = engine_config(model, gpu)
    r = stalled_request(model, gpu, concurrency, requests, prompt_tokens, max_tokens, seed)
    t0 = r.sent_s
    ticks = [(t - t0) * 1e3 for t in r.chunk_times_s]
    ttft = (r.ttft_s or 0.0) * 1e3
    e2e = (r.e2e_s or 0.0) * 1e3
    tpot = (r.tpot_s or 0.0) * 1e3
    gaps = np.diff(np.asarray(ticks))
    fig = make_subplots(
        rows=2, cols=1, vertical_spacing=0.2, row_heights=[0.35, 0.65],
        subplot_titles=(
            f"timeline: TTFT {fmt.ms(ttft / 1e3)}, e2e {fmt.ms(e2e / 1e3)}, "
            f"{r.completion_tokens} tokens",
            f"its {len(gaps)} ITL values; TPOT = (e2e − TTFT) / {len(gaps)} = {fmt.ms(tpot / 1e3)}",
        ),
    )  # fmt: skip
    fig.add_trace(
        go.Bar(y=["request"], x=[ttft], base=[0], orientation="h", name="TTFT: queue + prefill",
               marker={"color": _PALETTE[4]}, width=0.5,
               hovertemplate="TTFT %{x:.1f} ms<extra></extra>"),
        row=1, col=1,
    )  # fmt: skip
    fig.add_trace(
        go.Bar(y=["request"], x=[e2e - ttft], base=[ttft], orientation="h",
               name="streaming: (N − 1) gaps", marker={"color": _PALETTE[0], "opacity": 0.35},
               width=0.5, hovertemplate="decode %{x:.1f} ms<extra></extra>"),
        row=1, col=1,
    )  # fmt: skip
    fig.add_trace(
        _line(
            ticks,
            ["request"] * len(ticks),
            "a token arrives",
            _PALETTE[0],
            mode="markers",
            customdata=np.arange(1, len(ticks) + 1),
            hover="token %{customdata} at %{x:.1f} ms<extra></extra>",
            marker={"symbol": "line-ns-open", "size": 16, "line": {"width": 1.5}},
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Bar(x=np.arange(1, len(gaps) + 1), y=gaps, name="ITL: one gap",
               marker={"color": [_PALETTE[1] if g > 2 * tpot else _PALETTE[0] for g in gaps]},
               hovertemplate="gap %{x}: %{y:.1f} ms<extra></extra>", showlegend=False),
        row=2, col=1,
    )  # fmt: skip
    fig.add_hline(
        y=tpot, line={"dash": "dash", "color": _GREY}, row=2, col=1,
        annotation_text=f"TPOT {fmt.ms(tpot / 1e3)}", annotation_position="top left",
    )  # fmt: skip
    fig.update_xaxes(title_text="ms since the request was sent", rangemode="tozero", row=1, col=1)
    fig.update_xaxes(title_text="gap number (between token i and i + 1)", row=2, col=1)
    fig.update_yaxes(showticklabels=False, row=1, col=1)
    fig.update_yaxes(title_text="gap, ms", rangemode="tozero", row=2, col=1)
    fig.update_layout(barmode="overlay")
    return _layout(
        fig,
        _title(
            f"Anatomy of one streamed request: {cfg.model.name} on {cfg.gpu.name}",
            f"{concurrency} requests in flight with prompts of {fmt.count(prompt_tokens[0])}–"
            f"{fmt.count(prompt_tokens[1])} tokens; red gaps are more than 2 × TPOT; simulated",
        ),
        height=560,
        legend_below=True,
    )
