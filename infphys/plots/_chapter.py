"""The chapter figures' shared look: layouts with a two-line title and a dropdown, grids.

:func:`chapter_layout` serves the figures drawn from formulas (:mod:`.queueing`,
:mod:`.roofline`, :mod:`.memory`, :mod:`.cost`), :func:`serving_layout` the simulated serving
figures (:mod:`.batching`, :mod:`.token_budget`, :mod:`.capacity`), which carry a taller
header for their subplot titles. Both use the house template and palette of :mod:`._style`.

The serving figures' curves come from the virtual-time simulator (runs in
:mod:`infphys.analysis.serving`: a vLLM-V1-style continuous-batching engine whose steps are
priced by the roofline), summarised with :mod:`infphys.stats`; the figure chooses what to draw.
Where a reader would want to move a parameter (the GPU, the token budget, an SLO, a knob), the
runs for every value are made at build time and switched by plotly's own dropdown, so the
figure stays interactive on a static page.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from infphys.plots._style import GREY, TEMPLATE

__all__: list[str] = []


def chapter_layout(
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
        template=TEMPLATE,
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


def title(main: str, sub: str = "") -> str:
    """A short title, with an optional smaller second line (charts are narrow on the site)."""
    return f"{main}<br><sup>{sub}</sup>" if sub else main


def batch_grid(max_batch: int) -> list[int]:
    """1, 2, 3, 4, 6, 8, … : about eight points per doubling up to ``max_batch``."""
    pts = np.unique(np.geomspace(1, max_batch, 8 * max(1, math.ceil(math.log2(max_batch)))).round())
    return [int(b) for b in pts]


def visible(n_traces: int, per_view: int, view: int) -> list[bool]:
    return [j // per_view == view for j in range(n_traces)]


def log_log(x_title: str, y_title: str) -> dict[str, Any]:
    """Layout keywords for a chart with both axes logarithmic, titled ``x_title`` and
    ``y_title``: ``chapter_layout(fig, title, height=500, **log_log("batch", "tokens/s"))``."""
    return {
        "xaxis": {"title": {"text": x_title}, "type": "log"},
        "yaxis": {"title": {"text": y_title}, "type": "log"},
    }


def view(label: str, visible: list[bool], relayout: dict[str, Any] | None = None) -> dict[str, Any]:
    """One dropdown button or slider step: show the traces ``visible`` marks and apply
    ``relayout`` (e.g. ``{"title.text": ...}``), e.g. ``view("H100", [True, False])``."""
    return {"label": label, "method": "update", "args": [{"visible": visible}, relayout or {}]}


def serving_layout(
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
        template=TEMPLATE,
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


def log_vline(
    x: float, *, row_ref: str = "x", dash: str = "dash", color: str = GREY
) -> dict[str, Any]:
    """A vertical line at ``x`` across the plot. Shapes take data coordinates even on a log
    axis (annotations take log10 there, see :func:`log_note`)."""
    return {
        "type": "line", "xref": row_ref, "yref": "paper", "x0": x, "x1": x, "y0": 0, "y1": 1,
        "line": {"color": color, "dash": dash, "width": 1.5}, "layer": "below",
    }  # fmt: skip


def near_right(levels: Sequence[int], x: float) -> bool:
    """True when ``x`` lies in the right quarter of a log axis spanning ``levels``."""
    return math.log10(x / levels[0]) > 0.75 * math.log10(levels[-1] / levels[0])


def log_note(
    x: float, text: str, y: float, *, color: str = GREY, right: bool = False
) -> dict[str, Any]:
    """A label beside a vertical line on a log axis; ``right`` puts it left of the line (for
    lines near the right edge)."""
    return {
        "x": math.log10(x), "xref": "x", "y": y, "yref": "paper", "text": text,
        "showarrow": False, "xanchor": "right" if right else "left", "yanchor": "top",
        "xshift": -4 if right else 4,
        "font": {"size": 11, "color": color}, "bgcolor": "rgba(255,255,255,0.6)",
    }  # fmt: skip
