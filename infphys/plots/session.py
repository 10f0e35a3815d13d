"""The instructor guide's session plan: blocks on a timeline with each lab's exercises.

Drawn from the exercise registry (:func:`infphys.exercises.exercises_for`) and the plan the
guide passes in; nothing is simulated. Several plans share one figure through a dropdown.

Example::

    from infphys.plots.session import session_plan
    session_plan({"Day 1": [("intro", 30, ""), ("Lab 1", 45, "lab01")]})
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from infphys.exercises import exercises_for
from infphys.plots._chapter import serving_layout as _layout
from infphys.plots._chapter import title as _title
from infphys.plots._chapter import view as _view
from infphys.plots._style import GREY as _GREY
from infphys.plots._style import PALETTE as _PALETTE

__all__ = [
    "session_plan",
]


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
        _view(
            name,
            [j == k for j in range(len(plans))],
            {"title.text": titles[k], "height": 140 + 34 * counts[k] + 150},
        )
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
