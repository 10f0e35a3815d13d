"""Measured serving beside the models, and the cost of owning against renting, drawn.

Each function draws a table or result computed elsewhere (passed in, or computed with that
module's defaults when omitted) and says where its data comes from in the figure. Measured
values are markers, models are lines.

- :func:`measured_prefill_vs_prompt`: first-token time against the prompt tokens of a prefill
  (TensorRT-LLM 0.9 static batches, :func:`infphys.evidence.static_prefill_vs_prompt`).
- :func:`nim_ttft_knee`: TTFT against concurrency, NIM measured, the closed-loop model and the
  simulator (:func:`infphys.nim_planning.ttft_knee`).
- :func:`tco_per_million`: US dollars per million input and output tokens, one bar pair per way
  of serving (:mod:`infphys.physics.tco` results).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from infphys.physics.tco import TcoResult
from infphys.plots._style import layout
from infphys.plots._style import line as _line
from infphys.plots.measured import _NIM, _PALETTE, _STATIC, _sourced

__all__ = ["measured_prefill_vs_prompt", "nim_ttft_knee", "tco_per_million"]


def measured_prefill_vs_prompt(table: pd.DataFrame | None = None) -> Any:
    """First-token time against batch × prompt tokens: measured markers, step-model lines.

    ``table`` is :func:`infphys.evidence.static_prefill_vs_prompt` (five deployments when
    omitted); one colour per deployment, batch and prompt length on hover.
    """
    if table is None:
        from infphys.evidence import static_prefill_vs_prompt

        table = static_prefill_vs_prompt()
    fig = go.Figure()
    for k, (config, d) in enumerate(table.groupby("config", sort=True)):
        colour = _PALETTE[k % len(_PALETTE)]
        hover = list(zip(d["batch"], d["isl"], strict=True))
        for what, mode in (("model", "lines"), ("measured", "markers")):
            fig.add_trace(
                _line(
                    d["prefill_tokens"], d[f"{what}_ms"], f"{config}: {what}", colour, mode=mode,
                    marker={"size": 8}, legendgroup=config, customdata=hover,
                    hover=f"%{{customdata[0]}} × %{{customdata[1]}} tokens: {what} %{{y:.1f}} ms"
                    "<extra></extra>",
                )
            )  # fmt: skip
    fig.update_xaxes(type="log", title_text="prompt tokens prefilled together (batch × prompt)")
    fig.update_yaxes(type="log", title_text="time to first token, ms")
    return _sourced(
        fig, "Prefill cost against prompt tokens: measured and the step model", _STATIC, height=500
    )


def nim_ttft_knee(table: pd.DataFrame | None = None) -> Any:
    """Mean TTFT against concurrency: NIM measured (markers), the simulator and the model.

    ``table`` is :func:`infphys.nim_planning.ttft_knee` (Llama-3-8B FP16 on one H100, 200 → 200
    and 2,000 → 200 when omitted); one colour per prompt → output shape, the measured p95 on
    hover.
    """
    if table is None:
        from infphys.nim_planning import ttft_knee

        table = ttft_knee()
    fig = go.Figure()
    for k, (shape, d) in enumerate(table.groupby("shape", sort=False)):
        colour = _PALETTE[k % len(_PALETTE)]
        x = d["concurrency"]
        fig.add_trace(
            _line(
                x, d["measured_ms"], f"{shape}: measured", colour, mode="markers",
                marker={"size": 9}, legendgroup=shape, customdata=d["measured_p95_ms"],
                hover="%{x} clients: measured %{y:.0f} ms (p95 %{customdata:.0f})<extra></extra>",
            )
        )  # fmt: skip
        for col, name, what, dash in (
            ("sim_ms", "simulator", "simulated", "solid"),
            ("model_ms", "closed-loop model", "model", "dot"),
        ):
            fig.add_trace(
                _line(
                    x, d[col], f"{shape}: {name}", colour, dash=dash, legendgroup=shape,
                    hover=f"%{{x}} clients: {what} %{{y:.0f}} ms<extra></extra>",
                )
            )  # fmt: skip
    config = str(table["config"].iloc[0]) if len(table) else ""
    fig.update_xaxes(title_text="concurrent clients (closed loop)")
    fig.update_yaxes(type="log", title_text="mean time to first token, ms")
    return _sourced(fig, f"The TTFT knee: {config}", _NIM, height=480)


def tco_per_million(results: Sequence[TcoResult], title: str | None = None) -> Any:
    """US dollars per million input and output tokens, one pair of bars per way of serving.

    ``results`` come from :func:`~infphys.physics.rented_tco`, :func:`~infphys.physics.on_prem_tco`
    and :func:`~infphys.physics.api_tco`; GPUs and average utilisation on hover.
    """
    names = [r.option for r in results]
    hover = [
        "per-token price" if r.gpus == 0
        else f"{r.gpus} GPUs, {r.average_utilisation:.0%} busy on average"
        for r in results
    ]  # fmt: skip
    fig = make_subplots(rows=1, cols=2, subplot_titles=("input tokens", "output tokens"))
    for col, field in ((1, "usd_per_million_input"), (2, "usd_per_million_output")):
        fig.add_trace(
            go.Bar(
                x=names, y=[getattr(r, field) for r in results], customdata=hover,
                marker={"color": [_PALETTE[i % len(_PALETTE)] for i in range(len(results))]},
                showlegend=False,
                hovertemplate="%{x}: $%{y:.3f} per million (%{customdata})<extra></extra>",
            ),
            row=1, col=col,
        )  # fmt: skip
    fig.update_yaxes(title_text="US dollars per million tokens", row=1, col=1)
    layout(fig, title or "A year of the same load, three ways: cost per million tokens", height=420)
    return fig
