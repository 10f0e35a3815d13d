"""Fleets, drawn: routers, TP against replicas, disaggregation, and the planner's Pareto front.

Each function draws a table from :mod:`infphys.fleet_compare` or
:func:`infphys.fleet_planning.plan_fleet` (passed in, or computed from that module's default
scenario when omitted), so the fleet chapter and Lab 13 show the same simulated numbers.

- :func:`fleet_routers`: p50 and p95 TTFT per router, same bursty load.
- :func:`fleet_tp_replicas`: TP × 1 against TP1 × N on the same GPUs: TTFT, ITL and tokens/s.
- :func:`fleet_disaggregation`: p95 ITL and p95 TTFT, colocated against each prefill/decode split.
- :func:`fleet_pareto`: price per hour against simulated p95 TTFT, the front marked.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from infphys.plots._style import layout
from infphys.plots._style import line as _line

__all__ = ["fleet_disaggregation", "fleet_pareto", "fleet_routers", "fleet_tp_replicas"]

_BLUE, _ORANGE, _GREY = "#1f77b4", "#ff7f0e", "#7f7f7f"


def _panel_bars(
    table: pd.DataFrame, panels: tuple[tuple[str, str, float, str], ...], colours: list[str]
) -> Any:
    """One bar chart per (subplot title, column, scale, unit on hover) panel, a bar per
    ``table["layout"]``."""
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[p[0] for p in panels])
    for i, (_, col, scale, unit) in enumerate(panels, start=1):
        fig.add_trace(
            go.Bar(
                x=table["layout"], y=table[col] * scale, marker={"color": colours},
                showlegend=False, hovertemplate=f"%{{x}}: %{{y:,.1f}}{unit}<extra></extra>",
            ),
            row=1,
            col=i,
        )  # fmt: skip
    return fig


def fleet_routers(table: pd.DataFrame | None = None) -> Any:
    """p50 and p95 TTFT (ms) per router (:func:`~infphys.fleet_compare.compare_routers`;
    default: :func:`~infphys.fleet_compare.bursty_scenario` on 4 replicas)."""
    if table is None:
        from infphys.fleet_compare import bursty_scenario, compare_routers

        cfg, w = bursty_scenario(4)
        table = compare_routers(cfg, 4, w)
    fig = go.Figure()
    for col, name, colour in (("ttft_p50_s", "p50", _GREY), ("ttft_p95_s", "p95", _BLUE)):
        fig.add_trace(
            go.Bar(
                x=table["router"],
                y=table[col] * 1e3,
                name=f"TTFT {name}",
                marker={"color": colour},
                hovertemplate=f"%{{x}}: TTFT {name} %{{y:,.0f}} ms<extra></extra>",
            )
        )
    n = int(table["replicas"].iloc[0])
    fig.update_yaxes(title_text="time to first token (ms)")
    return layout(fig, f"Routers under bursty load: {n} replicas, same arrivals", height=400)


def fleet_tp_replicas(table: pd.DataFrame | None = None) -> Any:
    """TTFT p95, ITL p95 and output tokens/s of TP × 1 against TP1 × N on the same GPUs
    (:func:`~infphys.fleet_compare.compare_tp_replicas`; default: the TP scenario, 2 GPUs)."""
    if table is None:
        from infphys.fleet_compare import compare_tp_replicas, tp_scenario

        cfg, w = tp_scenario()
        table = compare_tp_replicas(cfg, 2, w)
    fig = _panel_bars(
        table,
        (("TTFT p95 (ms)", "ttft_p95_s", 1e3, ""), ("ITL p95 (ms)", "itl_p95_s", 1e3, ""),
         ("output tokens/s", "output_tokens_per_s", 1.0, "")),
        [_BLUE, _ORANGE][: len(table)],
    )  # fmt: skip
    gpus = int(table["gpus"].iloc[0])
    return layout(fig, f"The same {gpus} GPUs as one TP instance or as replicas", height=380)


def fleet_disaggregation(table: pd.DataFrame | None = None) -> Any:
    """p95 ITL and p95 TTFT (ms), colocated against each prefill/decode split
    (:func:`~infphys.fleet_compare.compare_disaggregation`; default: the long-prompt scenario
    on 2 GPUs)."""
    if table is None:
        from infphys.fleet_compare import compare_disaggregation, long_prompt_scenario

        cfg, w = long_prompt_scenario(2)
        table = compare_disaggregation(cfg, 2, w)
    fig = _panel_bars(
        table,
        (("ITL p95 (ms)", "itl_p95_s", 1e3, " ms"), ("TTFT p95 (ms)", "ttft_p95_s", 1e3, " ms")),
        [_GREY if p == 0 else _BLUE for p in table["prefill_replicas"]],
    )
    gpus = int(table["gpus"].iloc[0])
    return layout(fig, f"Colocated or split: {gpus} GPUs, long prompts", height=380)


def fleet_pareto(candidates: pd.DataFrame, pareto: pd.DataFrame | None = None) -> Any:
    """Price per hour against simulated p95 TTFT for every simulated fleet of a plan
    (:attr:`~infphys.fleet_planning.FleetPlan.candidates`), the Pareto front as a line, the
    fleets meeting the objective filled."""
    sim = candidates[candidates["simulated"]]
    fig = go.Figure()
    for ok, name, symbol in ((True, "meets the objective", "circle"), (False, "misses", "x")):
        part = sim[sim["ok"] == ok]
        fig.add_trace(
            _line(
                part["usd_per_hour"],
                part["sim_ttft_p95_s"],
                name,
                _BLUE if ok else _GREY,
                mode="markers",
                text=part["label"],
                hover="%{text}<br>$%{x:,.2f}/h, p95 TTFT %{y:.3f} s<extra></extra>",
                marker={"symbol": symbol, "size": 9},
            )
        )
    if pareto is not None and len(pareto):
        fig.add_trace(
            go.Scatter(
                x=pareto["usd_per_hour"],
                y=pareto["sim_ttft_p95_s"],
                mode="lines",
                line={"shape": "hv", "color": _ORANGE},
                name="Pareto front",
                hoverinfo="skip",
            )
        )
    fig.update_xaxes(title_text="fleet price (US dollars per hour)")
    fig.update_yaxes(title_text="simulated p95 TTFT (s)", type="log")
    return layout(fig, "Every fleet simulated: price against p95 TTFT", height=420)
