"""The house style shared by every figure (site, labs, reports): palette, template, layout.

One plotly template, registered as ``"infphys"``: ``plotly_white`` with the kit's palette as
its colourway and full trace names in hover labels (the site restyles it for its dark theme).
Figures take their series colours from :data:`PALETTE` and neutral lines from :data:`GREY`, and
build their line and marker traces with :func:`line`.
"""

from __future__ import annotations

import math
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio

#: Colours for series the reader compares (plotly's default qualitative palette).
PALETTE = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692")
#: Reference lines, limits and annotations.
GREY = "#8c8c8c"
#: Faint fills behind the data (bands, regions).
LIGHT = "rgba(140,140,140,0.35)"
#: The template every figure uses.
TEMPLATE = "infphys"

if TEMPLATE not in pio.templates:
    _template = go.layout.Template(pio.templates["plotly_white"])
    _template.layout.colorway = list(PALETTE)
    _template.layout.hoverlabel.namelength = -1
    pio.templates[TEMPLATE] = _template


def layout(
    fig: Any,
    title: str,
    *,
    legend_below_y: float | None = None,
    margin: dict[str, int] | None = None,
    **extra: Any,
) -> Any:
    """White template, left-aligned title, horizontal legend above the plot, or, with
    ``legend_below_y`` (paper units, e.g. -0.14), under it so a long legend never covers the
    title; ``margin`` overrides the default margins (px: l 64, r 24, t 80, b 56)."""
    legend: dict[str, Any] = {"orientation": "h", "x": 0, "xanchor": "left"}
    if legend_below_y is None:
        legend.update(yanchor="bottom", y=1.02)
    else:
        legend.update(yanchor="top", y=legend_below_y)
    fig.update_layout(
        template=TEMPLATE,
        title={"text": title, "x": 0, "xanchor": "left"},
        margin={"l": 64, "r": 24, "t": 80, "b": 56, **(margin or {})},
        legend=legend,
        hoverlabel={"namelength": -1},
        **extra,
    )
    return fig


def line(
    x: Any,
    y: Any,
    name: str,
    color: str,
    *,
    dash: str = "solid",
    width: float = 2,
    mode: str = "lines",
    hover: str | None = None,
    **extra: Any,
) -> Any:
    """A scatter trace in the house style: one ``color`` for its line and markers, a ``dash``
    (``solid``, ``dash``, ``dot``) and ``width`` in px; ``mode`` is plotly's (``lines``,
    ``markers``, ``lines+markers``); ``hover`` a plotly hovertemplate (None: plotly's own).
    ``extra`` goes to :class:`plotly.graph_objects.Scatter` (``visible``, ``customdata``, …;
    a ``marker`` dict given there is merged over the colour).

    Example: ``fig.add_trace(line([1, 2, 4], [9.8, 5.1, 2.6], "p95", PALETTE[1], dash="dot"))``.
    """
    if "lines" in mode:
        extra["line"] = {"color": color, "dash": dash, "width": width}
    if "markers" in mode or "marker" in extra:
        extra["marker"] = {"color": color, **extra.get("marker", {})}
    if hover is not None:
        extra["hovertemplate"] = hover
    return go.Scatter(x=x, y=y, name=name, mode=mode, **extra)


def empty_figure(title: str, reason: str) -> Any:
    """A figure that says why there is nothing to draw (no data, no GPU, …)."""
    fig = go.Figure()
    fig.add_annotation(
        text=reason, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False, font={"size": 14}
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return layout(fig, title)


def mark_x(fig: Any, x: float, text: str, *, log_x: bool, **kwargs: Any) -> None:
    """A dashed vertical line at ``x`` with a label at the top.

    plotly's ``add_vline(annotation_text=...)`` places the label at the raw value on a log axis,
    where annotations take log10(x), and stretches the axis to 10^x; the label is added here in
    the axis's own coordinates instead.
    """
    fig.add_vline(x=x, line={"dash": "dash", "color": "#888"}, **kwargs)
    fig.add_annotation(
        x=math.log10(x) if log_x else x,
        xref="x",
        y=1.0,
        yref="paper",
        text=text,
        showarrow=False,
        xanchor="left",
        yanchor="bottom",
    )
