"""Batching figures: the knee and the p95 cliff, continuous against static, preemption.

Every curve is a simulated run from :mod:`infphys.analysis.serving`, drawn the way
:mod:`infphys.plots._chapter` describes (values a reader would move sit in a dropdown).

Example::

    from infphys.plots.batching import concurrency_sweep
    concurrency_sweep(scenarios=(("llama-3.1-8b", "h100-sxm", "bf16"),))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from infphys import fmt, stats
from infphys.analysis.serving import (
    DEFAULT_LEVELS,
    DEFAULT_OUTPUT_TOKENS,
    DEFAULT_PROMPT_TOKENS,
    DEFAULT_SCENARIOS,
    Scenario,
    closed_sweep,
    engine_config,
    mean_context,
    preemption_runs,
    scenario_name,
    static_vs_continuous,
)
from infphys.plots._chapter import log_note as _log_note
from infphys.plots._chapter import log_vline as _log_vline
from infphys.plots._chapter import near_right as _near_right
from infphys.plots._chapter import serving_layout as _layout
from infphys.plots._chapter import title as _title
from infphys.plots._chapter import view as _view
from infphys.plots._chapter import visible as _visible
from infphys.plots._style import GREY as _GREY
from infphys.plots._style import LIGHT as _LIGHT
from infphys.plots._style import PALETTE as _PALETTE
from infphys.plots._style import line as _line
from infphys.plots.sim import thin_timeseries

__all__ = [
    "concurrency_sweep",
    "continuous_vs_static",
    "preemption_timeline",
]


def concurrency_sweep(
    scenarios: Sequence[Scenario] = DEFAULT_SCENARIOS,
    levels: Sequence[int] = DEFAULT_LEVELS,
    *,
    prompt_tokens: tuple[int, int] = DEFAULT_PROMPT_TOKENS,
    max_tokens: tuple[int, int] = DEFAULT_OUTPUT_TOKENS,
) -> Any:
    """The knee and the p95 cliff: a closed-loop concurrency sweep on the simulator.

    For each scenario (model, GPU, weights precision; one per dropdown entry) and each
    concurrency level: output tokens/s and tokens/s per user (1 / median TPOT) on top, p95
    end-to-end latency and p95 TTFT below (log scale). Marked: the knee of the throughput
    curve and the p95 cliff (:func:`infphys.stats.sweep_knee`: Kneedle on log₂ concurrency,
    and the first level whose p95 e2e exceeds twice the first level's), ``max_num_seqs`` (the
    most requests the engine runs at once) and the concurrency at which the KV cache is full
    for the workload's mean context. Workload: chat-like, prompts uniform in
    ``prompt_tokens``, answers uniform in ``max_tokens``; 3 × c requests per level after c
    warm-up requests.
    """
    lv = tuple(sorted({int(c) for c in levels}))
    if len(lv) < 3:
        raise ValueError(f"levels must hold at least 3 concurrency levels (got {levels!r})")
    if not scenarios:
        raise ValueError("scenarios must name at least one (model, gpu, weights) triple")
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.07, row_heights=[0.45, 0.55],
        specs=[[{"secondary_y": True}], [{}]],
    )  # fmt: skip
    per = 4
    views: list[tuple[str, str, list[dict[str, Any]], list[dict[str, Any]]]] = []
    for k, (model, gpu, weights) in enumerate(scenarios):
        s = closed_sweep(model, gpu, weights, lv, prompt_tokens, max_tokens)
        cfg = engine_config(model, gpu, weights)
        name = scenario_name(model, gpu, weights)
        vis = k == 0
        x = s["concurrency"].tolist()
        pre = s["preemptions"].tolist()
        custom = np.column_stack(
            [s["tpot_p50_s"] * 1e3, s["throughput_req_per_s"], pre, s["ttft_p95_s"]]
        )
        for col, series, colour, dash, width, row, right, hover in (
            ("output_tokens_per_s", "output tokens/s (all users)", _PALETTE[0], "solid", 3, 1,
             False, "%{y:,.0f} tokens/s, %{customdata[1]:.1f} requests/s<br>median TPOT "
             "%{customdata[0]:.1f} ms, preemptions %{customdata[2]}"),
            ("tokens_per_s_per_user", "tokens/s per user (1 / median TPOT)", _GREY, "dot", 2,
             1, True, "%{y:.0f} tokens/s per user"),
            ("e2e_p95_s", "p95 end-to-end", _PALETTE[1], "solid", 3, 2, None,
             "p95 e2e %{y:.2f} s"),
            ("ttft_p95_s", "p95 TTFT", _PALETTE[4], "dash", 2, 2, None, "p95 TTFT %{y:.3f} s"),
        ):  # fmt: skip
            fig.add_trace(
                _line(
                    x, s[col], series, colour, dash=dash, width=width, mode="lines+markers",
                    visible=vis, customdata=custom if col == "output_tokens_per_s" else None,
                    hover=f"c=%{{x}}: {hover}<extra></extra>",
                ),
                row=row,
                col=1,
                secondary_y=right,
            )  # fmt: skip
        knee = stats.sweep_knee(s, x="concurrency", throughput_column="output_tokens_per_s")
        shapes: list[dict[str, Any]] = []
        notes: list[dict[str, Any]] = []
        if knee is not None and knee.knee_x is not None:
            shapes.append(_log_vline(knee.knee_x, color=_PALETTE[0]))
            notes.append(
                _log_note(
                    knee.knee_x,
                    f"knee c={knee.knee_x:g}",
                    0.99,
                    color=_PALETTE[0],
                    right=_near_right(lv, knee.knee_x),
                )
            )
        if knee is not None and knee.cliff_x is not None:
            shapes.append(_log_vline(knee.cliff_x, color=_PALETTE[1], dash="dot"))
            notes.append(
                _log_note(
                    knee.cliff_x,
                    f"p95 cliff c={knee.cliff_x:g}",
                    0.40,
                    color=_PALETTE[1],
                    right=_near_right(lv, knee.cliff_x),
                )
            )
        kv_full = cfg.kv_capacity_tokens / mean_context(prompt_tokens, max_tokens)
        for value, label, y in (
            (float(cfg.max_num_seqs), f"max_num_seqs={cfg.max_num_seqs}", 0.86),
            (kv_full, f"KV cache full ≈ {fmt.count(kv_full)}", 0.74),
        ):
            if lv[0] <= value <= lv[-1]:
                shapes.append(_log_vline(value, dash="dashdot"))
                notes.append(_log_note(value, label, y, right=_near_right(lv, value)))
        title = _title(
            f"Closed-loop sweep: {name}",
            f"prompts {fmt.count(prompt_tokens[0])}–{fmt.count(prompt_tokens[1])} tokens, answers "
            f"{fmt.count(max_tokens[0])}–{fmt.count(max_tokens[1])}; simulated by infphys.sim",
        )
        views.append((name, title, shapes, notes))
    n = per * len(views)
    buttons = [
        _view(
            name, _visible(n, per, k), {"title.text": title, "shapes": shapes, "annotations": notes}
        )
        for k, (name, title, shapes, notes) in enumerate(views)
    ]
    _, title0, shapes0, notes0 = views[0]
    x_range = [math.log10(lv[0]) - 0.1, math.log10(lv[-1]) + 0.1]
    fig.update_xaxes(type="log", dtick=math.log10(2), range=x_range, row=1, col=1)
    fig.update_xaxes(
        type="log",
        dtick=math.log10(2),
        range=x_range,
        title_text="concurrency (requests in flight)",
        row=2,
        col=1,
    )
    fig.update_yaxes(title_text="output tokens/s", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(
        title_text="tokens/s per user", rangemode="tozero", showgrid=False, tickformat=",.0f",
        row=1, col=1, secondary_y=True,
    )  # fmt: skip
    fig.update_yaxes(title_text="latency, s (log)", type="log", row=2, col=1)
    return _layout(
        fig, title0, height=640, buttons=buttons if len(views) > 1 else None,
        shapes=shapes0, annotations=notes0,
    )  # fmt: skip


def continuous_vs_static(
    model: str = "llama-3.1-8b",
    gpu: str = "h100-sxm",
    *,
    requests: int = 24,
    batch: int = 8,
    prompt_tokens: int = 512,
    max_tokens: tuple[int, int] = (32, 512),
    seed: int = 3,
) -> Any:
    """Static batching (with padding) against continuous batching, on the same requests.

    ``requests`` requests all arrive at t = 0 with answers of different lengths (uniform in
    ``max_tokens``). Static: the requests go in batches of ``batch`` in arrival order, and a
    batch runs until its longest answer is done; shorter answers are padded, as in a
    generate()-style loop, so each batch is simulated as ``batch`` requests of the batch's
    longest answer, one batch after another. Continuous: one run of the engine with
    ``max_num_seqs = batch``, which admits a waiting request the moment a slot frees. One bar
    per request: waiting, then streaming its own tokens, then (static only) padding until its
    batch ends.
    """
    cfg = engine_config(model, gpu)
    lo, hi = max_tokens
    d = static_vs_continuous(model, gpu, requests, batch, prompt_tokens, max_tokens, seed)
    useful = d["tokens"].tolist()
    makespan_static = float(d["static_end_s"].max())
    makespan_cont = float(d["continuous_end_s"].max())
    tokens = sum(useful)

    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.12,
        subplot_titles=(
            f"static batches of {batch}: {fmt.tok_s(tokens / makespan_static)}, "
            f"done at {fmt.seconds(makespan_static)}",
            f"continuous batching, max_num_seqs={batch}: {fmt.tok_s(tokens / makespan_cont)}, "
            f"done at {fmt.seconds(makespan_cont)}",
        ),
    )  # fmt: skip
    y = [f"#{i + 1} ({useful[i]} tok)" for i in range(requests)]

    def bars(row: int, segs: list[tuple[str, str, list[float], list[float], bool]]) -> None:
        for name, color, start, length, legend in segs:
            fig.add_trace(
                go.Bar(
                    y=y, x=length, base=start, orientation="h", name=name,
                    marker={"color": color}, showlegend=legend, legendgroup=name,
                    hovertemplate="%{y}: " + name + " from %{base:.2f} s for %{x:.2f} s"
                    "<extra></extra>",
                ),
                row=row, col=1,
            )  # fmt: skip

    zero = [0.0] * requests
    first, own, end = (
        d[c].tolist() for c in ("static_first_s", "static_own_end_s", "static_end_s")
    )
    bars(
        1,
        [
            ("waiting + prefill", _LIGHT, zero, first, True),
            ("streaming its tokens", _PALETTE[0], first,
             [o - f for o, f in zip(own, first, strict=True)], True),
            ("padding (slot held, no useful token)", _PALETTE[1], own,
             [e - o for e, o in zip(end, own, strict=True)], True),
        ],
    )  # fmt: skip
    first, end = d["continuous_first_s"].tolist(), d["continuous_end_s"].tolist()
    bars(
        2,
        [
            ("waiting + prefill", _LIGHT, zero, first, False),
            ("streaming its tokens", _PALETTE[0], first,
             [e - f for e, f in zip(end, first, strict=True)], False),
        ],
    )  # fmt: skip
    fig.update_yaxes(autorange="reversed", tickfont={"size": 9})
    fig.update_xaxes(title_text="time since all requests arrived, s", row=2, col=1)
    fig.update_layout(barmode="overlay", bargap=0.25)
    cfg_name = f"{cfg.model.name} on {cfg.gpu.name}"
    return _layout(
        fig,
        _title(
            f"Same {requests} requests, two schedulers: {cfg_name}",
            f"{fmt.count(prompt_tokens)}-token prompts, answers {lo}–{hi} tokens; simulated",
        ),
        height=780,
        legend_below=True,
    )


def preemption_timeline(
    model: str = "llama-3.1-8b",
    gpu: str = "h100-sxm",
    *,
    concurrency: int = 256,
    requests: int = 512,
    prompt_tokens: int = 1024,
    max_tokens: tuple[int, int] = (1024, 3072),
    seed: int = 1,
) -> Any:
    """What the engine does when the KV cache runs out: running, waiting, KV use, preemptions.

    A closed loop of ``concurrency`` long conversations (``prompt_tokens`` in, answers uniform
    in ``max_tokens``) whose KV cache does not fit at BF16; the dropdown switches to an FP8 KV
    cache (half the bytes per token) and to ``max_num_seqs`` halved, the two remedies vLLM's
    tuning guide names. Top: requests running and waiting; bottom: KV blocks in use (%) and
    the running count of preemptions. The title gives each run's throughput and p95 TTFT.
    """
    runs = preemption_runs(model, gpu, concurrency, requests, prompt_tokens, max_tokens, seed)
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
        specs=[[{}], [{"secondary_y": True}]],
    )  # fmt: skip
    per = 4
    titles: list[str] = []
    for k, (label, cfg, res) in enumerate(runs):
        ts = thin_timeseries(res.timeseries, points=500)
        summ = res.summary()
        for y, name, colour, dash, shape, row, right in (
            (ts["running"], "running (in the batch)", _PALETTE[0], "solid", "hv", 1, None),
            (ts["waiting"], "waiting (queued or preempted)", _PALETTE[4], "solid", "hv", 1, None),
            (ts["kv_usage"] * 100, "KV cache in use, %", _PALETTE[2], "solid", "linear", 2, False),
            (ts["preemptions_total"], "preemptions so far", _PALETTE[1], "dot", "hv", 2, True),
        ):
            fig.add_trace(
                _line(ts["time_s"], y, name, colour, dash=dash, line_shape=shape, visible=k == 0),
                row=row,
                col=1,
                secondary_y=right,
            )
        titles.append(
            _title(
                f"{cfg.model.name} on {cfg.gpu.name}, {concurrency} long chats: {label}",
                f"KV cache {fmt.count(cfg.kv_capacity_tokens)} tokens · "
                f"{fmt.count(res.stats.preemptions)} preemptions · "
                f"{fmt.tok_s(summ['output_tokens_per_s'])} · p95 TTFT "
                f"{fmt.seconds(summ['ttft_p95_s'])}",
            )
        )
    n = per * len(runs)
    buttons = [
        _view(label, _visible(n, per, k), {"title.text": titles[k]})
        for k, (label, _, _) in enumerate(runs)
    ]
    fig.update_yaxes(title_text="requests", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="KV in use, %", range=[0, 105], row=2, col=1, secondary_y=False)
    fig.update_yaxes(
        title_text="preemptions", rangemode="tozero", showgrid=False, tickformat=",d",
        row=2, col=1, secondary_y=True,
    )  # fmt: skip
    fig.update_xaxes(title_text="simulated time, s", row=2, col=1)
    return _layout(fig, titles[0], height=600, buttons=buttons)
