"""Figures of the serving chapters: batching, the token budget, backpressure, capacity, glossary.

Every curve here comes from the virtual-time simulator (:func:`infphys.sim.virtual.simulate`: a
vLLM-V1-style continuous-batching engine whose steps are priced by the roofline) and is
summarised with :mod:`infphys.stats`; this module chooses the workloads, runs them and draws.
It computes nothing of its own beyond unit conversions, ratios for display and picking which
request to show. Where a reader would want to move a parameter (the GPU, the token budget, an
SLO, a knob), the runs for every value are made at build time and switched by plotly's own
dropdown, so the figure stays interactive on a static page.

Speed: the site builds every figure on each build (under two minutes on two cores for the whole
site), so the workloads are small (tens to a few hundred requests per point) and seeded, and
sweeps shared by two figures are cached for the life of the process. Each figure's docstring
says what it simulates.

Example (in a lab, or on the site with ``{{ chart("chapters_serving.concurrency_sweep") }}``)::

    from infphys.plots.chapters_serving import concurrency_sweep
    concurrency_sweep(scenarios=(("llama-3.1-8b", "h100-sxm", "bf16"),))
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from infphys import fmt, planning, stats
from infphys.exercises import exercises_for
from infphys.physics import request_latency_s
from infphys.plots.sim import thin_timeseries
from infphys.records import RequestRecord, records_to_frame
from infphys.sim.config import EngineConfig
from infphys.sim.virtual import SimResult, simulate
from infphys.sim.workload import Workload

__all__ = [
    "capacity_plan",
    "chunked_prefill",
    "concurrency_sweep",
    "continuous_vs_static",
    "goodput_vs_rate",
    "knob_effects",
    "preemption_timeline",
    "request_anatomy",
    "session_plan",
    "token_budget_split",
]

_PALETTE = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692")
_GREY = "#8c8c8c"
_LIGHT = "rgba(140,140,140,0.35)"

#: (model, GPU, weights precision) compared by the sweep figures' dropdowns.
DEFAULT_SCENARIOS: tuple[tuple[str, str, str], ...] = (
    ("llama-3.1-8b", "h100-sxm", "bf16"),
    ("llama-3.1-8b", "h200-sxm", "bf16"),
    ("llama-3.1-70b", "h200-sxm", "fp8"),
)
#: Concurrency levels of a closed-loop sweep: doublings, as the labs and `infphys sweep` run.
DEFAULT_LEVELS: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
#: Prompt and output sizes of the sweeps' chat-like workload: uniform over these ranges.
DEFAULT_PROMPT_TOKENS: tuple[int, int] = (512, 1536)
DEFAULT_OUTPUT_TOKENS: tuple[int, int] = (128, 384)

Scenario = tuple[str, str, str]
Settings = tuple[tuple[str, Any], ...]


# --- look --------------------------------------------------------------------------------------


def _layout(
    fig: Any,
    title: str,
    *,
    height: int,
    buttons: list[dict[str, Any]] | None = None,
    active: int = 0,
    legend_below: bool = False,
    **extra: Any,
) -> Any:
    """The look of :mod:`infphys.plots.chapters`: title top left, dropdown under it on the
    right, legend above the plot (or under it, where subplot titles sit above)."""
    top = 150 if buttons else 112
    bottom = 120 if legend_below else 56
    legend = (
        {"orientation": "h", "yanchor": "top", "y": -0.16, "x": 0, "xanchor": "left"}
        if legend_below
        else {"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0, "xanchor": "left"}
    )
    fig.update_layout(
        template="plotly_white",
        height=height,
        title={
            "text": title,
            "x": 0,
            "xanchor": "left",
            "y": 1,
            "yanchor": "top",
            "yref": "container",
            "pad": {"t": 14, "l": 8},
        },
        margin={"l": 64, "r": 64, "t": top, "b": bottom},
        legend=legend,
        hoverlabel={"namelength": -1},
        **extra,
    )
    if buttons:
        plot_px = height - top - bottom
        fig.update_layout(
            updatemenus=[
                {
                    "buttons": buttons,
                    "active": active,
                    "x": 1,
                    "xanchor": "right",
                    "y": 1 + (top - 92) / plot_px,
                    "yanchor": "bottom",
                }
            ]
        )
    return fig


def _title(main: str, sub: str = "") -> str:
    return f"{main}<br><sup>{sub}</sup>" if sub else main


def _visible(n_traces: int, per_view: int, view: int) -> list[bool]:
    return [j // per_view == view for j in range(n_traces)]


def _log_vline(
    x: float, *, row_ref: str = "x", dash: str = "dash", color: str = _GREY
) -> dict[str, Any]:
    """A vertical line at ``x`` across the plot. Shapes take data coordinates even on a log
    axis (annotations take log10 there, see :func:`_log_note`)."""
    return {
        "type": "line", "xref": row_ref, "yref": "paper", "x0": x, "x1": x, "y0": 0, "y1": 1,
        "line": {"color": color, "dash": dash, "width": 1.5}, "layer": "below",
    }  # fmt: skip


def _near_right(levels: Sequence[int], x: float) -> bool:
    """True when ``x`` lies in the right quarter of a log axis spanning ``levels``."""
    return math.log10(x / levels[0]) > 0.75 * math.log10(levels[-1] / levels[0])


def _log_note(
    x: float, text: str, y: float, *, color: str = _GREY, right: bool = False
) -> dict[str, Any]:
    """A label beside a vertical line on a log axis; ``right`` puts it left of the line (for
    lines near the right edge)."""
    return {
        "x": math.log10(x), "xref": "x", "y": y, "yref": "paper", "text": text,
        "showarrow": False, "xanchor": "right" if right else "left", "yanchor": "top",
        "xshift": -4 if right else 4,
        "font": {"size": 11, "color": color}, "bgcolor": "rgba(255,255,255,0.6)",
    }  # fmt: skip


# --- running the simulator --------------------------------------------------------------------


def _config(model: str, gpu: str, weights: str = "bf16", settings: Settings = ()) -> EngineConfig:
    return EngineConfig.build(gpu=gpu, model=model, weights_precision=weights, **dict(settings))


def _frame(res: SimResult) -> pd.DataFrame:
    """The run's records as a frame, without the header in ``DataFrame.attrs``: pandas
    deep-copies ``attrs`` on every operation, which doubles the cost of the statistics."""
    return records_to_frame(res.records)


def _scenario_name(model: str, gpu: str, weights: str) -> str:
    cfg = _config(model, gpu, weights)
    return f"{cfg.model.name} {weights.upper()} on {cfg.gpu.name}"


@functools.lru_cache(maxsize=128)
def _closed_sweep(
    model: str,
    gpu: str,
    weights: str,
    levels: tuple[int, ...],
    prompt_tokens: tuple[int, int],
    max_tokens: tuple[int, int],
    settings: Settings = (),
    rounds: int = 2,
    seed: int = 0,
) -> pd.DataFrame:
    """One closed-loop run per concurrency level (``rounds`` × c measured requests after c
    warm-up requests, at least 48), summarised by :func:`infphys.stats.summarize`, with the
    engine's preemptions per level. Cached: several figures share a sweep."""
    cfg = _config(model, gpu, weights, settings)
    frames: list[pd.DataFrame] = []
    preempted: dict[int, int] = {}
    for c in levels:
        w = Workload.closed(
            concurrency=c,
            requests=max(rounds * c, 48),
            warmup=c,
            prompt_tokens=prompt_tokens[0],
            prompt_tokens_max=prompt_tokens[1],
            max_tokens=max_tokens[0],
            max_tokens_max=max_tokens[1],
            seed=seed,
        )
        res = simulate(cfg, w, keep_chunk_times=False, timeseries=False)
        frames.append(_frame(res))
        preempted[c] = res.stats.preemptions
    summary = stats.summarize(pd.concat(frames, ignore_index=True), by="concurrency")
    summary["concurrency"] = summary["concurrency"].astype(int)
    summary["preemptions"] = summary["concurrency"].map(preempted).astype(int)
    summary["tokens_per_s_per_user"] = 1.0 / summary["tpot_p50_s"]
    return summary.sort_values("concurrency").reset_index(drop=True)


def _non_default(cfg: EngineConfig, setting: str, value: Any) -> Settings:
    """``((setting, value),)``, or ``()`` when ``value`` is what ``cfg`` already has (so that
    sweeps of the same engine share the cache)."""
    current = getattr(cfg, setting)
    same = str(current) == str(value) if setting.endswith("precision") else current == value
    return () if same else ((setting, value),)


def _mean_context(prompt_tokens: tuple[int, int], max_tokens: tuple[int, int]) -> float:
    return (sum(prompt_tokens) + sum(max_tokens)) / 2


# --- chapter 6: batching and concurrency ------------------------------------------------------


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
        s = _closed_sweep(model, gpu, weights, lv, prompt_tokens, max_tokens)
        cfg = _config(model, gpu, weights)
        name = _scenario_name(model, gpu, weights)
        vis = k == 0
        x = s["concurrency"].tolist()
        pre = s["preemptions"].tolist()
        custom = np.column_stack(
            [s["tpot_p50_s"] * 1e3, s["throughput_req_per_s"], pre, s["ttft_p95_s"]]
        )
        fig.add_trace(
            go.Scatter(
                x=x, y=s["output_tokens_per_s"], name="output tokens/s (all users)",
                mode="lines+markers", line={"color": _PALETTE[0], "width": 3}, visible=vis,
                customdata=custom,
                hovertemplate="c=%{x}: %{y:,.0f} tokens/s, %{customdata[1]:.1f} requests/s"
                "<br>median TPOT %{customdata[0]:.1f} ms, preemptions %{customdata[2]}"
                "<extra></extra>",
            ),
            row=1, col=1, secondary_y=False,
        )  # fmt: skip
        fig.add_trace(
            go.Scatter(
                x=x, y=s["tokens_per_s_per_user"], name="tokens/s per user (1 / median TPOT)",
                mode="lines+markers", line={"color": _GREY, "dash": "dot"}, visible=vis,
                hovertemplate="c=%{x}: %{y:.0f} tokens/s per user<extra></extra>",
            ),
            row=1, col=1, secondary_y=True,
        )  # fmt: skip
        fig.add_trace(
            go.Scatter(
                x=x, y=s["e2e_p95_s"], name="p95 end-to-end", mode="lines+markers",
                line={"color": _PALETTE[1], "width": 3}, visible=vis,
                hovertemplate="c=%{x}: p95 e2e %{y:.2f} s<extra></extra>",
            ),
            row=2, col=1,
        )  # fmt: skip
        fig.add_trace(
            go.Scatter(
                x=x, y=s["ttft_p95_s"], name="p95 TTFT", mode="lines+markers",
                line={"color": _PALETTE[4], "dash": "dash"}, visible=vis,
                hovertemplate="c=%{x}: p95 TTFT %{y:.3f} s<extra></extra>",
            ),
            row=2, col=1,
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
        kv_full = cfg.kv_capacity_tokens / _mean_context(prompt_tokens, max_tokens)
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
        {
            "label": name,
            "method": "update",
            "args": [
                {"visible": _visible(n, per, k)},
                {"title.text": title, "shapes": shapes, "annotations": notes},
            ],
        }
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
    if batch < 1 or requests < batch:
        raise ValueError(f"need 1 <= batch <= requests (got batch={batch}, requests={requests})")
    cfg = _config(model, gpu).with_(max_num_seqs=batch)
    lo, hi = max_tokens
    w = Workload.offline(
        requests=requests, prompt_tokens=prompt_tokens, max_tokens=lo, max_tokens_max=hi,
        seed=seed,
    )  # fmt: skip
    sizes = w.sizes()
    useful = [m for _, m in sizes]
    cont = simulate(cfg, w, keep_chunk_times=False, timeseries=False)
    cont_rec = {r.request_id: r for r in cont.records}

    # Static: batch k starts when batch k-1 ends; its requests stream their own tokens, then pad.
    static_rows: list[tuple[int, float, float, float, float]] = []  # id, start, first, own, end
    t0 = 0.0
    for b0 in range(0, requests, batch):
        ids = list(range(b0, min(b0 + batch, requests)))
        longest = max(useful[i] for i in ids)
        run = simulate(
            cfg,
            Workload.offline(requests=len(ids), prompt_tokens=prompt_tokens, max_tokens=longest),
            keep_chunk_times=True,
            timeseries=False,
        )
        recs = sorted(run.records, key=lambda r: r.request_id)
        end = t0 + max(r.end_s or 0.0 for r in recs)
        for i, r in zip(ids, recs, strict=True):
            own = t0 + r.chunk_times_s[useful[i] - 1]
            static_rows.append((i, t0, t0 + (r.first_token_s or 0.0), own, end))
        t0 = end
    makespan_static = t0
    makespan_cont = max(r.end_s or 0.0 for r in cont.records)
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

    srt = sorted(static_rows)
    bars(
        1,
        [
            ("waiting + prefill", _LIGHT, [0.0] * requests, [r[2] for r in srt], True),
            ("streaming its tokens", _PALETTE[0], [r[2] for r in srt],
             [r[3] - r[2] for r in srt], True),
            ("padding (slot held, no useful token)", _PALETTE[1], [r[3] for r in srt],
             [r[4] - r[3] for r in srt], True),
        ],
    )  # fmt: skip
    recs = [cont_rec[i] for i in range(requests)]
    first = [r.first_token_s or 0.0 for r in recs]
    bars(
        2,
        [
            ("waiting + prefill", _LIGHT, [0.0] * requests, first, False),
            ("streaming its tokens", _PALETTE[0], first,
             [(r.end_s or 0.0) - f for r, f in zip(recs, first, strict=True)], False),
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
    base = _config(model, gpu)
    variants = (
        ("BF16 KV cache", base),
        ("FP8 KV cache", base.with_(kv_precision="fp8")),
        (f"BF16, max_num_seqs={base.max_num_seqs // 2}",
         base.with_(max_num_seqs=base.max_num_seqs // 2)),
    )  # fmt: skip
    w = Workload.closed(
        concurrency=concurrency, requests=requests, prompt_tokens=prompt_tokens,
        max_tokens=max_tokens[0], max_tokens_max=max_tokens[1], seed=seed,
    )  # fmt: skip
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
        specs=[[{}], [{"secondary_y": True}]],
    )  # fmt: skip
    per = 4
    titles: list[str] = []
    for k, (label, cfg) in enumerate(variants):
        res = simulate(cfg, w, keep_chunk_times=False)
        ts = thin_timeseries(res.timeseries, points=500)
        summ = res.summary()
        vis = k == 0
        t = ts["time_s"]
        common = {"x": t, "mode": "lines", "line_shape": "hv", "visible": vis}
        fig.add_trace(
            go.Scatter(y=ts["running"], name="running (in the batch)",
                       line={"color": _PALETTE[0], "width": 2}, **common),
            row=1, col=1,
        )  # fmt: skip
        fig.add_trace(
            go.Scatter(y=ts["waiting"], name="waiting (queued or preempted)",
                       line={"color": _PALETTE[4], "width": 2}, **common),
            row=1, col=1,
        )  # fmt: skip
        fig.add_trace(
            go.Scatter(y=ts["kv_usage"] * 100, name="KV cache in use, %",
                       line={"color": _PALETTE[2], "width": 2},
                       **{**common, "line_shape": "linear"}),
            row=2, col=1, secondary_y=False,
        )  # fmt: skip
        fig.add_trace(
            go.Scatter(y=ts["preemptions_total"], name="preemptions so far",
                       line={"color": _PALETTE[1], "width": 2, "dash": "dot"}, **common),
            row=2, col=1, secondary_y=True,
        )  # fmt: skip
        titles.append(
            _title(
                f"{cfg.model.name} on {cfg.gpu.name}, {concurrency} long chats: {label}",
                f"KV cache {fmt.count(cfg.kv_capacity_tokens)} tokens · "
                f"{fmt.count(res.stats.preemptions)} preemptions · "
                f"{fmt.tok_s(summ['output_tokens_per_s'])} · p95 TTFT "
                f"{fmt.seconds(summ['ttft_p95_s'])}",
            )
        )
    n = per * len(variants)
    buttons = [
        {
            "label": label,
            "method": "update",
            "args": [{"visible": _visible(n, per, k)}, {"title.text": titles[k]}],
        }
        for k, (label, _) in enumerate(variants)
    ]
    fig.update_yaxes(title_text="requests", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="KV in use, %", range=[0, 105], row=2, col=1, secondary_y=False)
    fig.update_yaxes(
        title_text="preemptions", rangemode="tozero", showgrid=False, tickformat=",d",
        row=2, col=1, secondary_y=True,
    )  # fmt: skip
    fig.update_xaxes(title_text="simulated time, s", row=2, col=1)
    return _layout(fig, titles[0], height=600, buttons=buttons)


# --- chapter 7: the token budget ---------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _grid_run(
    model: str, gpu: str, prompt: int, output: int, concurrency: int, requests: int, seed: int
) -> pd.Series:
    cfg = _config(model, gpu)
    w = Workload.closed(
        concurrency=concurrency, requests=requests, warmup=concurrency, prompt_tokens=prompt,
        max_tokens=output, seed=seed,
    )  # fmt: skip
    res = simulate(cfg, w, keep_chunk_times=False, timeseries=False)
    return stats.summarize(_frame(res), by=None).iloc[0]


def token_budget_split(
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

    One closed-loop run at ``concurrency`` per (prompt, answer) pair. Each bar stacks the
    median TTFT and the decode time (answer − 1) × median TPOT; the dropdown shows seconds or
    each part's share of the total. Bars are grouped by answer length, coloured by prompt.
    """
    if not prompts or not outputs:
        raise ValueError("prompts and outputs must each hold at least one size")
    cfg = _config(model, gpu)
    fig = go.Figure()
    cats = [f"{fmt.count(n)} out" for n in outputs]
    # Per trace: (y in s, base in s, y in %, base in %), for the dropdown's two views.
    views: list[tuple[list[float], list[float], list[float], list[float]]] = []
    for k, p in enumerate(prompts):
        ttft, decode = [], []
        for n in outputs:
            s = _grid_run(model, gpu, int(p), int(n), concurrency, requests, seed)
            tpot = float(s["tpot_p50_s"]) if n > 1 else 0.0
            ttft.append(float(s["ttft_p50_s"]))
            decode.append(request_latency_s(0.0, tpot, n))  # (n - 1) × TPOT
        tot = [a + b for a, b in zip(ttft, decode, strict=True)]
        color = _PALETTE[k % len(_PALETTE)]
        for part, vals, opacity in (("TTFT", ttft, 1.0), ("decode", decode, 0.45)):
            base = [0.0] * len(vals) if part == "TTFT" else ttft
            pct = [v / t * 100 for v, t in zip(vals, tot, strict=True)]
            views.append((vals, base, pct, [b / t * 100 for b, t in zip(base, tot, strict=True)]))
            fig.add_trace(
                go.Bar(
                    x=cats, y=vals, base=base, offsetgroup=str(p),
                    name=f"{part}, {fmt.count(p)}-token prompt",
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
    fig.update_xaxes(title_text="answer length (max_tokens)")
    fig.update_yaxes(title_text="median latency, s", rangemode="tozero")
    return _layout(
        fig,
        _title(
            f"Where the time goes: {cfg.model.name} on {cfg.gpu.name}, {concurrency} in flight",
            "dark: TTFT (queue + prefill) · light: decode, (tokens − 1) × TPOT · simulated",
        ),
        height=560,
        buttons=buttons,
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
    base = _config(model, gpu)
    rows: list[dict[str, float]] = []
    for b in bs:
        cfg = base.with_(max_num_batched_tokens=b, max_num_seqs=min(base.max_num_seqs, b))
        w = Workload.closed(
            concurrency=concurrency, requests=requests, warmup=concurrency,
            prompt_tokens=prompt_tokens[0], prompt_tokens_max=prompt_tokens[1],
            max_tokens=max_tokens[0], max_tokens_max=max_tokens[1], seed=seed,
        )  # fmt: skip
        res = simulate(cfg, w, keep_chunk_times=True, timeseries=False)
        frame = _frame(res)
        s = stats.summarize(frame, by=None).iloc[0]
        itl = stats.itl_values(frame)
        rows.append(
            {
                "budget": b,
                "itl_p50_ms": float(s["itl_p50_s"]) * 1e3,
                "itl_p99_ms": float(s["itl_p99_s"]) * 1e3,
                "itl_max_ms": float(itl.max()) * 1e3 if itl.size else math.nan,
                "ttft_p50_s": float(s["ttft_p50_s"]),
                "ttft_p95_s": float(s["ttft_p95_s"]),
                "tokens_per_s": float(s["output_tokens_per_s"]),
            }
        )
    d = pd.DataFrame(rows)
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
        specs=[[{}], [{"secondary_y": True}]],
    )  # fmt: skip
    x = d["budget"]
    for col, name, color, dash in (
        ("itl_p50_ms", "median ITL", _PALETTE[0], "solid"),
        ("itl_p99_ms", "p99 ITL", _PALETTE[1], "solid"),
        ("itl_max_ms", "longest stall", _PALETTE[1], "dot"),
    ):
        fig.add_trace(
            go.Scatter(x=x, y=d[col], name=name, mode="lines+markers",
                       line={"color": color, "dash": dash},
                       hovertemplate="budget %{x:,}: " + name + " %{y:.1f} ms<extra></extra>"),
            row=1, col=1,
        )  # fmt: skip
    for col, name, color, dash in (
        ("ttft_p50_s", "median TTFT", _PALETTE[4], "solid"),
        ("ttft_p95_s", "p95 TTFT", _PALETTE[4], "dot"),
    ):
        fig.add_trace(
            go.Scatter(x=x, y=d[col], name=name, mode="lines+markers",
                       line={"color": color, "dash": dash},
                       hovertemplate="budget %{x:,}: " + name + " %{y:.3f} s<extra></extra>"),
            row=2, col=1, secondary_y=False,
        )  # fmt: skip
    fig.add_trace(
        go.Scatter(x=x, y=d["tokens_per_s"], name="output tokens/s", mode="lines+markers",
                   line={"color": _GREY, "dash": "dash"},
                   hovertemplate="budget %{x:,}: %{y:,.0f} tokens/s<extra></extra>"),
        row=2, col=1, secondary_y=True,
    )  # fmt: skip
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


# --- chapter 8: backpressure and goodput --------------------------------------------------------


#: (TTFT SLO, TPOT SLO) pairs offered by the goodput figure's dropdown, seconds.
DEFAULT_SLOS: tuple[tuple[float, float], ...] = ((0.5, 0.05), (1.0, 0.1), (2.0, 0.05))


@functools.lru_cache(maxsize=8)
def _capacity_per_s(
    model: str, gpu: str, prompt: tuple[int, int], output: tuple[int, int]
) -> float:
    """Saturated request rate: every request queued at t = 0 (an offline run)."""
    cfg = _config(model, gpu)
    w = Workload.offline(
        requests=4 * cfg.max_num_seqs, prompt_tokens=prompt[0], prompt_tokens_max=prompt[1],
        max_tokens=output[0], max_tokens_max=output[1], seed=7,
    )  # fmt: skip
    return float(
        stats.throughput(
            _frame(simulate(cfg, w, timeseries=False, keep_chunk_times=False))
        ).requests_per_s
    )


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
    cfg = _config(model, gpu)
    cap = _capacity_per_s(model, gpu, prompt_tokens, max_tokens)
    frames: dict[float, pd.DataFrame] = {}
    for f in loads:
        rate = cap * float(f)
        w = Workload.open(
            rate_per_s=rate, requests=requests, prompt_tokens=prompt_tokens[0],
            prompt_tokens_max=prompt_tokens[1], max_tokens=max_tokens[0],
            max_tokens_max=max_tokens[1], seed=seed,
        )  # fmt: skip
        frames[rate] = _frame(simulate(cfg, w, keep_chunk_times=False, timeseries=False))
    rates = sorted(frames)
    tput = [stats.throughput(frames[r]).requests_per_s for r in rates]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        go.Scatter(x=rates, y=tput, name="completed requests/s (drain included)",
                   mode="lines+markers",
                   line={"color": "rgba(99,110,250,0.45)", "width": 8},
                   hovertemplate="offered %{x:.2f}/s: completed %{y:.2f}/s<extra></extra>"),
        secondary_y=False,
    )  # fmt: skip
    labels: list[str] = []
    for k, (ttft_slo, tpot_slo) in enumerate(slos):
        gp = [stats.goodput(frames[r], ttft_slo_s=ttft_slo, tpot_slo_s=tpot_slo) for r in rates]
        label = f"TTFT ≤ {fmt.ms(ttft_slo, 0)}, TPOT ≤ {fmt.ms(tpot_slo, 0)}"
        labels.append(label)
        vis = k == 0
        fig.add_trace(
            go.Scatter(x=rates, y=[g.goodput_per_s for g in gp], name="goodput (met the SLO)/s",
                       mode="lines+markers", line={"color": _PALETTE[2], "width": 3},
                       visible=vis,
                       hovertemplate="offered %{x:.2f}/s: goodput %{y:.2f}/s<extra></extra>"),
            secondary_y=False,
        )  # fmt: skip
        fig.add_trace(
            go.Scatter(x=rates, y=[g.attainment * 100 for g in gp], name="SLO attainment, %",
                       mode="lines+markers", line={"color": _PALETTE[1], "dash": "dash"},
                       visible=vis,
                       hovertemplate="offered %{x:.2f}/s: %{y:.0f}% met the SLO<extra></extra>"),
            secondary_y=True,
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
            _closed_sweep(
                model, gpu, weights, CAPACITY_LEVELS, prompt_tokens, max_tokens,
                _non_default(_config(model, gpu, weights), "kv_precision", kv),
            )
        )  # fmt: skip
        cfg = _config(model, gpu, weights)
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
    m = _config(model, configs[0][0], configs[0][1]).model
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
    cfg0 = _config(model, gpu)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    counts: list[int] = []
    for k, (_, setting, values) in enumerate(knobs):
        counts.append(2 * len(values))
        for i, v in enumerate(values):
            s = _closed_sweep(
                model, gpu, "bf16", KNOB_LEVELS, prompt_tokens, max_tokens,
                _non_default(cfg0, setting, v),
            )  # fmt: skip
            color = _PALETTE[i % len(_PALETTE)]
            name = f"{setting}={v}"
            custom = np.column_stack([s["preemptions"], s["ttft_p95_s"]])
            fig.add_trace(
                go.Scatter(x=s["concurrency"], y=s["output_tokens_per_s"], name=name,
                           legendgroup=name, mode="lines+markers", visible=k == 0,
                           line={"color": color}, customdata=custom,
                           hovertemplate="c=%{x}: %{y:,.0f} tokens/s, preemptions "
                           "%{customdata[0]}<extra>" + name + "</extra>"),
                row=1, col=1,
            )  # fmt: skip
            fig.add_trace(
                go.Scatter(x=s["concurrency"], y=s["e2e_p95_s"], name=name, legendgroup=name,
                           showlegend=False, mode="lines+markers", visible=k == 0,
                           line={"color": color, "dash": "dot"}, customdata=custom,
                           hovertemplate="c=%{x}: p95 e2e %{y:.1f} s, p95 TTFT "
                           "%{customdata[1]:.1f} s<extra>" + name + "</extra>"),
                row=2, col=1,
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


# --- glossary: one request ----------------------------------------------------------------------


def _pick_stalled(records: Sequence[RequestRecord]) -> RequestRecord:
    """The measured request whose longest gap is largest relative to its median gap."""
    best: RequestRecord | None = None
    score = -1.0
    for r in records:
        if r.warmup or r.status != "ok" or len(r.chunk_times_s) < 8:
            continue
        gaps = np.diff(np.asarray(r.chunk_times_s))
        ratio = float(gaps.max() / np.median(gaps))
        if ratio > score:
            best, score = r, ratio
    if best is None:
        raise ValueError("no request with at least 8 tokens to show")
    return best


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
    cfg = _config(model, gpu)
    w = Workload.closed(
        concurrency=concurrency, requests=requests, warmup=concurrency,
        prompt_tokens=prompt_tokens[0], prompt_tokens_max=prompt_tokens[1],
        max_tokens=max_tokens, seed=seed,
    )  # fmt: skip
    res: SimResult = simulate(cfg, w, keep_chunk_times=True, timeseries=False)
    r = _pick_stalled(res.records)
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
        go.Scatter(x=ticks, y=["request"] * len(ticks), mode="markers", name="a token arrives",
                   marker={"symbol": "line-ns-open", "size": 16, "color": _PALETTE[0],
                           "line": {"width": 1.5}},
                   customdata=np.arange(1, len(ticks) + 1),
                   hovertemplate="token %{customdata} at %{x:.1f} ms<extra></extra>"),
        row=1, col=1,
    )  # fmt: skip
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


# --- the instructor guide: the session plan ----------------------------------------------------

#: One block of a session: (label, minutes, lab id such as ``"lab03"``, or ``""`` for none).
PlanBlock = tuple[str, float, str]


def session_plan(plans: dict[str, Sequence[PlanBlock]]) -> Any:
    """A session as a timeline: one bar per block, minutes from the start, and the exercises
    each lab block asks (from the exercise registry, :func:`infphys.exercises.exercises_for`).

    ``plans`` maps a plan's name (``"90 minutes"``) to its blocks; the dropdown switches plans.
    Hover a bar for the lab's exercises and what each is answered in.
    """
    if not plans:
        raise ValueError("plans must hold at least one plan")
    fig = go.Figure()
    titles: list[str] = []
    counts: list[int] = []
    for k, (name, blocks) in enumerate(plans.items()):
        if not blocks:
            raise ValueError(f"plans[{name!r}] must hold at least one block")
        starts = np.cumsum([0.0, *[float(b[1]) for b in blocks]])[:-1]
        labels, minutes, hover, colors, texts = [], [], [], [], []
        for i, (label, mins, lab) in enumerate(blocks):
            exs = exercises_for(lab) if lab else []
            lines = [f"{e.id} · {e.title} ({e.unit or e.kind})" for e in exs]
            labels.append(f"{i + 1}. {label}")
            minutes.append(float(mins))
            hover.append("<br>".join(lines) if lines else "no exercises")
            colors.append(_PALETTE[i % len(_PALETTE)] if lab else _GREY)
            texts.append(f"{mins:g} min" + (f" · {len(exs)} ex." if exs else ""))
        fig.add_trace(
            go.Bar(
                y=labels, x=minutes, base=starts, orientation="h", visible=k == 0,
                marker={"color": colors}, text=texts, textposition="outside", textangle=0,
                cliponaxis=False, customdata=hover, showlegend=False,
                hovertemplate="%{y}: minute %{base:.0f} to %{x:.0f} min later<br>%{customdata}"
                "<extra></extra>",
            )
        )  # fmt: skip
        total = float(sum(minutes))
        titles.append(_title(f"Session plan: {name}", f"{total:g} minutes in all"))
        counts.append(len(blocks))
    buttons = [
        {
            "label": name,
            "method": "update",
            "args": [
                {"visible": [j == k for j in range(len(plans))]},
                {"title.text": titles[k], "height": 140 + 34 * counts[k] + 150},
            ],
        }
        for k, name in enumerate(plans)
    ]
    fig.update_yaxes(autorange="reversed", automargin=True)
    fig.update_xaxes(title_text="minutes from the start", rangemode="tozero", dtick=10)
    return _layout(
        fig,
        titles[0],
        height=140 + 34 * counts[0] + 150,
        buttons=buttons if len(plans) > 1 else None,
    )
