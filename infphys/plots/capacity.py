"""Capacity figures: goodput against offered load, users per GPU at an SLO, the engine knobs.

Every curve is a simulated run from :mod:`infphys.analysis.serving`, drawn the way
:mod:`infphys.plots._chapter` describes (values a reader would move sit in a dropdown).

Example::

    from infphys.plots.capacity import goodput_vs_rate
    goodput_vs_rate("llama-3.1-8b", "h100-sxm", loads=(0.5, 1.0, 1.5))
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from infphys import fmt, planning, stats
from infphys.analysis.load import goodput_by_level
from infphys.analysis.serving import (
    DEFAULT_OUTPUT_TOKENS,
    DEFAULT_PROMPT_TOKENS,
    closed_sweep,
    engine_config,
    non_default,
    open_loop_runs,
    saturated_rate_per_s,
)
from infphys.plots._chapter import serving_layout as _layout
from infphys.plots._chapter import title as _title
from infphys.plots._style import GREY as _GREY
from infphys.plots._style import PALETTE as _PALETTE
from infphys.plots._style import empty_figure as _empty
from infphys.plots._style import layout as _style_layout
from infphys.plots._style import line as _line

__all__ = [
    "capacity_plan",
    "goodput_vs_rate",
    "knob_effects",
    "knob_sweeps",
]


# --- chapter 8: backpressure and goodput --------------------------------------------------------


#: (TTFT SLO, TPOT SLO) pairs offered by the goodput figure's dropdown, seconds.
DEFAULT_SLOS: tuple[tuple[float, float], ...] = ((0.5, 0.05), (1.0, 0.1), (2.0, 0.05))


def goodput_vs_rate(
    model: str = "llama-3.1-8b",
    gpu: str = "h100-sxm",
    *,
    slos: Sequence[tuple[float, float]] = DEFAULT_SLOS,
    loads: Sequence[float] = (0.2, 0.4, 0.6, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0),
    requests: int = 600,
    prompt_tokens: tuple[int, int] = DEFAULT_PROMPT_TOKENS,
    max_tokens: tuple[int, int] = DEFAULT_OUTPUT_TOKENS,
    seed: int = 2,
) -> Any:
    """Throughput keeps its level past saturation; goodput collapses.

    Open loop (Poisson arrivals) at offered rates that are fractions ``loads`` of the engine's
    saturated rate (measured first with every request queued at t = 0), ``requests`` requests
    per rate. Drawn: completed requests/s, goodput (requests/s that met both the TTFT and the
    TPOT objective, :func:`infphys.stats.goodput`) and SLO attainment (right axis). The
    dropdown switches between the SLO pairs in ``slos`` (TTFT, TPOT; seconds).
    """
    if not slos:
        raise ValueError("slos must hold at least one (ttft_s, tpot_s) pair")
    cfg = engine_config(model, gpu)
    cap = saturated_rate_per_s(model, gpu, prompt_tokens, max_tokens)
    runs = open_loop_runs(
        model, gpu, tuple(float(f) for f in loads), requests, prompt_tokens, max_tokens, seed
    )
    s = stats.summarize(runs).sort_values("rate_per_s")
    rates, tput = s["rate_per_s"].tolist(), s["throughput_req_per_s"].tolist()
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        _line(
            rates,
            tput,
            "completed requests/s (drain included)",
            "rgba(99,110,250,0.45)",
            width=8,
            mode="lines+markers",
            hover="offered %{x:.2f}/s: completed %{y:.2f}/s<extra></extra>",
        ),
        secondary_y=False,
    )
    labels: list[str] = []
    for k, (ttft_slo, tpot_slo) in enumerate(slos):
        gp = goodput_by_level(runs, ttft_slo_s=ttft_slo, tpot_slo_s=tpot_slo)
        gp = gp.sort_values("rate_per_s")
        label = f"TTFT ≤ {fmt.ms(ttft_slo, 0)}, TPOT ≤ {fmt.ms(tpot_slo, 0)}"
        labels.append(label)
        vis = k == 0
        for y, name, colour, dash, width, right, hover in (
            (gp["goodput_per_s"], "goodput (met the SLO)/s", _PALETTE[2], "solid", 3, False,
             "goodput %{y:.2f}/s"),
            (gp["attainment"] * 100, "SLO attainment, %", _PALETTE[1], "dash", 2, True,
             "%{y:.0f}% met the SLO"),
        ):  # fmt: skip
            fig.add_trace(
                _line(
                    rates, y, name, colour, dash=dash, width=width, mode="lines+markers",
                    visible=vis, hover=f"offered %{{x:.2f}}/s: {hover}<extra></extra>",
                ),
                secondary_y=right,
            )  # fmt: skip
    n = 1 + 2 * len(slos)
    buttons = [
        {
            "label": label,
            "method": "update",
            "args": [{"visible": [True] + [j // 2 == k for j in range(n - 1)]}],
        }
        for k, label in enumerate(labels)
    ]
    fig.add_vline(
        x=cap, line={"dash": "dash", "color": _GREY},
        annotation_text=f"saturated: {cap:.2f} requests/s", annotation_position="top left",
    )  # fmt: skip
    fig.update_xaxes(title_text="offered load, requests/s (Poisson arrivals)", rangemode="tozero")
    fig.update_yaxes(title_text="requests/s", rangemode="tozero", secondary_y=False)
    fig.update_yaxes(
        title_text="SLO attainment, %",
        range=[0, 105],
        dtick=20,
        showgrid=False,
        secondary_y=True,
    )
    return _layout(
        fig,
        _title(
            f"Goodput against offered load: {cfg.model.name} on {cfg.gpu.name}",
            f"{requests} requests per rate, prompts {fmt.count(prompt_tokens[0])}–"
            f"{fmt.count(prompt_tokens[1])}, answers {max_tokens[0]}–{max_tokens[1]}; simulated",
        ),
        height=540,
        buttons=buttons,
    )


# --- chapter 9: capacity planning and the knobs -------------------------------------------------

#: (GPU, weights precision, KV precision) compared by the capacity figure.
DEFAULT_CAPACITY_CONFIGS: tuple[tuple[str, str, str], ...] = (
    ("h100-sxm", "bf16", "bf16"),
    ("h100-sxm", "fp8", "fp8"),
    ("h200-sxm", "bf16", "bf16"),
    ("h200-sxm", "fp8", "fp8"),
)
#: Concurrency levels the capacity search tries (finer than doublings near the usual answers).
CAPACITY_LEVELS: tuple[int, ...] = (16, 32, 48, 64, 80, 96, 128, 160, 192, 256)
#: (p95 TTFT, p95 TPOT) objectives offered by the capacity figure, seconds.
DEFAULT_CAPACITY_SLOS: tuple[tuple[float, float], ...] = ((0.5, 0.02), (0.5, 0.035), (1.0, 0.05))


def capacity_plan(
    model: str = "llama-3.1-8b",
    configs: Sequence[tuple[str, str, str]] = DEFAULT_CAPACITY_CONFIGS,
    *,
    slos: Sequence[tuple[float, float]] = DEFAULT_CAPACITY_SLOS,
    users: Sequence[int] = (1000, 10000),
    prompt_tokens: tuple[int, int] = DEFAULT_PROMPT_TOKENS,
    max_tokens: tuple[int, int] = DEFAULT_OUTPUT_TOKENS,
) -> Any:
    """Concurrent users per GPU at an SLO, and GPUs needed for a user count.

    For each (GPU, weights precision, KV precision): one closed-loop sweep over
    :data:`CAPACITY_LEVELS`; the capacity is the highest concurrency whose p95 TTFT and p95
    TPOT both meet the objectives at it and at every lighter level
    (:func:`infphys.planning.slo_cap`; one (TTFT, TPOT) pair of ``slos`` per dropdown entry,
    seconds). Left: that capacity per GPU; right: GPUs for each user count in ``users``
    (:func:`infphys.planning.gpus_needed`, one model replica per GPU).
    """
    if not configs or not slos or not users:
        raise ValueError("configs, slos and users must each hold at least one entry")
    names: list[str] = []
    sweeps: list[pd.DataFrame] = []
    for gpu, weights, kv in configs:
        sweeps.append(
            closed_sweep(
                model, gpu, weights, CAPACITY_LEVELS, prompt_tokens, max_tokens,
                non_default(engine_config(model, gpu, weights), "kv_precision", kv),
            )
        )  # fmt: skip
        cfg = engine_config(model, gpu, weights)
        precisions = weights.upper() if kv == weights else f"{weights.upper()}, {kv.upper()} KV"
        names.append(f"{cfg.gpu.name}<br>{precisions}")

    def capacities(ttft_slo: float, tpot_slo: float) -> list[int]:
        """:func:`infphys.planning.slo_cap` on both objectives: the leading run of levels that
        meet both ends at the lower of the two caps."""
        out = []
        for sw in sweeps:
            x = sw["concurrency"].tolist()
            caps = [
                planning.slo_cap(x, sw["ttft_p95_s"].tolist(), ttft_slo),
                planning.slo_cap(x, sw["tpot_p95_s"].tolist(), tpot_slo),
            ]
            out.append(0 if None in caps else int(min(c for c in caps if c is not None)))
        return out

    def need(caps: list[int], u: int) -> list[float | None]:
        return [planning.gpus_needed(u, c) if c else None for c in caps]

    def label(v: float | None) -> str:
        return fmt.count(v) if v else "SLO not met"

    fig = make_subplots(
        rows=1, cols=2, horizontal_spacing=0.12,
        subplot_titles=("concurrent users per GPU at the SLO", "GPUs needed"),
    )  # fmt: skip
    colors = [_PALETTE[i % len(_PALETTE)] for i in range(len(names))]
    caps0 = capacities(*slos[0])
    fig.add_trace(
        go.Bar(x=names, y=caps0, marker={"color": colors}, text=[label(c) for c in caps0],
               textposition="outside", cliponaxis=False, showlegend=False,
               hovertemplate="%{x}: %{y} users per GPU<extra></extra>"),
        row=1, col=1,
    )  # fmt: skip
    for k, u in enumerate(users):
        n0 = need(caps0, u)
        fig.add_trace(
            go.Bar(x=names, y=n0, name=f"{fmt.count(u)} users", text=[label(n) for n in n0],
                   textposition="outside", cliponaxis=False,
                   marker={"color": colors, "opacity": 0.5 + 0.5 * k / max(1, len(users) - 1),
                           "pattern": {"shape": "" if k == 0 else "/"}},
                   hovertemplate="%{x}: %{y} GPUs for " + fmt.count(u) + " users<extra></extra>"),
            row=1, col=2,
        )  # fmt: skip
    buttons = []
    for ttft_slo, tpot_slo in slos:
        caps = capacities(ttft_slo, tpot_slo)
        ys: list[list[Any]] = [caps, *[need(caps, u) for u in users]]
        buttons.append(
            {
                "label": f"TTFT ≤ {fmt.ms(ttft_slo, 0)}, TPOT ≤ {fmt.ms(tpot_slo, 0)}",
                "method": "restyle",
                "args": [{"y": ys, "text": [[label(v) for v in y] for y in ys]}],
            }
        )
    fig.update_yaxes(title_text="users per GPU", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="GPUs (log)", type="log", row=1, col=2)
    fig.update_xaxes(tickfont={"size": 10}, tickangle=0)
    fig.update_layout(barmode="group")
    m = engine_config(model, configs[0][0], configs[0][1]).model
    return _layout(
        fig,
        _title(
            f"Capacity planning at a p95 SLO: {m.name}",
            f"prompts {fmt.count(prompt_tokens[0])}–{fmt.count(prompt_tokens[1])}, answers "
            f"{max_tokens[0]}–{max_tokens[1]}; closed-loop sweeps on the simulator",
        ),
        height=540,
        buttons=buttons,
        legend_below=True,
    )


#: Knobs the knob figure offers: (label, engine setting, values).
DEFAULT_KNOBS: tuple[tuple[str, str, tuple[Any, ...]], ...] = (
    ("max_num_seqs", "max_num_seqs", (64, 256)),
    ("gpu_memory_utilization", "gpu_memory_utilization", (0.6, 0.9)),
    ("KV cache precision", "kv_precision", ("bf16", "fp8")),
    ("max_num_batched_tokens", "max_num_batched_tokens", (1024, 8192)),
)
#: Concurrency levels of the knob figure's sweeps.
KNOB_LEVELS: tuple[int, ...] = (16, 32, 64, 128, 256, 512)


def knob_effects(
    model: str = "llama-3.1-8b",
    gpu: str = "h100-sxm",
    *,
    knobs: Sequence[tuple[str, str, tuple[Any, ...]]] = DEFAULT_KNOBS,
    prompt_tokens: tuple[int, int] = (1024, 3072),
    max_tokens: tuple[int, int] = (256, 768),
) -> Any:
    """How the serving engine's knobs move the knee: one sweep per knob value.

    For each knob (dropdown) and value (one colour each), a closed-loop sweep over
    :data:`KNOB_LEVELS` with every other setting at vLLM's default: output tokens/s (top) and
    p95 end-to-end latency (bottom) against concurrency. The workload has long contexts
    (prompts uniform in ``prompt_tokens``, answers in ``max_tokens``) so that the KV cache is
    one of the limits.
    """
    if not knobs:
        raise ValueError("knobs must name at least one (label, setting, values)")
    cfg0 = engine_config(model, gpu)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    counts: list[int] = []
    for k, (_, setting, values) in enumerate(knobs):
        counts.append(2 * len(values))
        for i, v in enumerate(values):
            s = closed_sweep(
                model, gpu, "bf16", KNOB_LEVELS, prompt_tokens, max_tokens,
                non_default(cfg0, setting, v),
            )  # fmt: skip
            color = _PALETTE[i % len(_PALETTE)]
            name = f"{setting}={v}"
            custom = np.column_stack([s["preemptions"], s["ttft_p95_s"]])
            for row, col, dash, hover in (
                (1, "output_tokens_per_s", "solid",
                 "%{y:,.0f} tokens/s, preemptions %{customdata[0]}"),
                (2, "e2e_p95_s", "dot", "p95 e2e %{y:.1f} s, p95 TTFT %{customdata[1]:.1f} s"),
            ):  # fmt: skip
                fig.add_trace(
                    _line(
                        s["concurrency"], s[col], name, color, dash=dash, mode="lines+markers",
                        legendgroup=name, showlegend=row == 1, visible=k == 0, customdata=custom,
                        hover=f"c=%{{x}}: {hover}<extra>{name}</extra>",
                    ),
                    row=row,
                    col=1,
                )  # fmt: skip
    starts = np.cumsum([0, *counts])
    total = int(starts[-1])
    buttons = [
        {
            "label": label,
            "method": "update",
            "args": [{"visible": [starts[k] <= j < starts[k + 1] for j in range(total)]}],
        }
        for k, (label, _, _) in enumerate(knobs)
    ]
    fig.update_xaxes(type="log", dtick=math.log10(2))
    fig.update_xaxes(title_text="concurrency (requests in flight)", row=2, col=1)
    fig.update_yaxes(title_text="output tokens/s", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="p95 e2e, s (log)", type="log", row=2, col=1)
    return _layout(
        fig,
        _title(
            f"Engine knobs against the knee: {cfg0.model.name} on {cfg0.gpu.name}",
            f"prompts {fmt.count(prompt_tokens[0])}–{fmt.count(prompt_tokens[1])}, answers "
            f"{max_tokens[0]}–{max_tokens[1]}; other settings at vLLM's defaults; simulated",
        ),
        height=640,
        buttons=buttons,
    )


def knob_sweeps(
    runs: Mapping[str, stats.RecordsLike], *, slo_s: float | None = None, title: str | None = None
) -> Any:
    """Concurrency sweeps of several engine settings: throughput (knee marked ★) and p95 end to
    end (the SLO as a dashed line), one colour per setting."""
    title = title or "how each knob moves the knee"
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=("throughput (output tokens/s)", "p95 end-to-end (s)")
    )
    drawn = 0
    for i, (label, data) in enumerate(runs.items()):
        s = stats.summarize(stats.as_frame(data))
        if not len(s) or "concurrency" not in s.columns:
            continue
        s = s.sort_values("concurrency")
        colour = _PALETTE[i % len(_PALETTE)]
        for col, y in ((1, "output_tokens_per_s"), (2, "e2e_p95_s")):
            fig.add_trace(
                _line(
                    s["concurrency"], s[y], label, colour, mode="lines+markers",
                    legendgroup=label, showlegend=col == 1,
                ),
                row=1,
                col=col,
            )  # fmt: skip
        knee = stats.sweep_knee(s, throughput_column="output_tokens_per_s")
        if knee is not None and knee.knee_index is not None:
            k = s.iloc[knee.knee_index]
            fig.add_trace(
                _line(
                    [k["concurrency"]],
                    [k["output_tokens_per_s"]],
                    f"{label} knee",
                    colour,
                    mode="markers",
                    legendgroup=label,
                    showlegend=False,
                    hover="knee at %{x}<extra></extra>",
                    marker={"symbol": "star", "size": 14},
                ),
                row=1,
                col=1,
            )
        drawn += 1
    if not drawn:
        return _empty(title, "no concurrency sweeps to draw")
    if slo_s is not None:
        fig.add_hline(
            y=slo_s,
            line={"dash": "dash", "color": _GREY},
            row=1,
            col=2,
            annotation_text=f"SLO {slo_s:g} s",
            annotation_position="top left",
        )
    for c in (1, 2):
        fig.update_xaxes(title="concurrency", type="log", dtick=math.log10(2), row=1, col=c)
        fig.update_yaxes(rangemode="tozero", row=1, col=c)
    return _style_layout(fig, title, height=440)
