"""Queueing figures: the utilisation trap (M/M/c against load) and closed against open loop.

Each draws :mod:`infphys.physics.queueing` over a grid of loads, every server count precomputed
and switched by a plotly slider, so the figure stays interactive on a static page. The site
embeds them by name (``{{ chart("queueing.queue_utilisation_trap") }}``).

Example::

    from infphys.plots.queueing import queue_utilisation_trap
    queue_utilisation_trap()
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from infphys import fmt, physics
from infphys.plots._chapter import chapter_layout as _layout
from infphys.plots._chapter import title as _title
from infphys.plots._chapter import view as _view
from infphys.plots._chapter import visible as _visible
from infphys.plots._style import GREY as _GREY
from infphys.plots._style import PALETTE as _PALETTE
from infphys.plots._style import line as _line

__all__ = [
    "closed_vs_open_loop",
    "queue_utilisation_trap",
]


#: Server counts offered by the queueing sliders.
DEFAULT_SERVERS = (1, 2, 4, 8, 16, 32, 64)


def _utilisation_grid(max_utilisation: float) -> np.ndarray:
    """Utilisations from 0 to ``max_utilisation``, denser where the curves turn up."""
    lo = np.linspace(0.0, 0.8, 33)
    hi = 1.0 - np.geomspace(0.2, 1.0 - max_utilisation, 48)
    return np.unique(np.concatenate([lo, hi]))


def _slider(active: int, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The servers slider (``servers c = …``) under a chapter figure, at stop ``active``."""
    return [
        {
            "active": active,
            "currentvalue": {"prefix": "servers c = "},
            "pad": {"t": 48},
            "steps": steps,
        }
    ]


def queue_utilisation_trap(
    servers: Sequence[int] = DEFAULT_SERVERS,
    *,
    server: int = 1,
    max_utilisation: float = 0.99,
    percentile: float = 0.95,
) -> Any:
    """Waiting time against utilisation for an M/M/c queue, with a slider over c.

    Time is in units of the mean service time, so the curves hold for any server: a replica that
    answers in 2 s, or a batch slot that takes 30 ms per token. Three lines per c: the mean time
    in the system (wait + service), the mean wait, and the ``percentile`` of the wait (exact
    for M/M/c, :meth:`infphys.physics.QueueMetrics.wait_percentile_s`). All from
    :func:`infphys.physics.mmc`.

    Args:
        servers: the values of c on the slider.
        server: the c shown first (must be in ``servers``).
        max_utilisation: the right end of the x axis (below 1).
        percentile: the wait percentile drawn, e.g. 0.95.
    """
    cs = sorted({int(c) for c in servers})
    if not cs or cs[0] < 1:
        raise ValueError(f"servers must hold integers >= 1 (got {servers!r})")
    if server not in cs:
        raise ValueError(f"server must be one of {cs} (got {server!r})")
    if not 0 < max_utilisation < 1:
        raise ValueError(f"max_utilisation must be in (0, 1) (got {max_utilisation!r})")
    rho = _utilisation_grid(max_utilisation)
    mu = 1.0  # service rate 1/s: times read directly in service times
    q_label = f"p{round(percentile * 100)}"
    fig = go.Figure()
    steps: list[dict[str, Any]] = []
    per_c = 3
    first_title = ""
    for i, c in enumerate(cs):
        qs = [physics.mmc(r * c * mu, mu, c) for r in rho]
        w = [q.mean_response_s for q in qs]
        wq = [q.mean_wait_s for q in qs]
        wp = [q.wait_percentile_s(percentile) for q in qs]
        pw = [q.p_wait for q in qs]
        visible = c == server
        hover = "ρ = %{x:.0%}: %{y:.2f} × service time"
        fig.add_trace(
            _line(
                rho, w, "mean time in system", _PALETTE[0], width=3, visible=visible,
                customdata=pw, hover=hover + "<br>P(wait) = %{customdata:.0%}"
                "<extra>mean time in system</extra>",
            )
        )  # fmt: skip
        for y, name, color, dash in (
            (wq, "mean wait", _PALETTE[2], "solid"),
            (wp, f"{q_label} wait", _PALETTE[1], "dash"),
        ):
            fig.add_trace(
                _line(
                    rho, y, f"{name} in queue", color, dash=dash, visible=visible,
                    hover=f"{hover}<extra>{name}</extra>",
                )
            )  # fmt: skip
        at90 = physics.mmc(0.9 * c * mu, mu, c)
        title = _title(
            f"The utilisation trap, M/M/{c}",
            f"at 90% busy: mean wait {fmt.num(at90.mean_wait_s)} × the service time, "
            f"{q_label} wait {fmt.num(at90.wait_percentile_s(percentile))} ×",
        )
        steps.append(_view(str(c), _visible(per_c * len(cs), per_c, i), {"title.text": title}))
        if visible:
            first_title = title
    _layout(
        fig,
        first_title,
        height=500,
        xaxis={
            "title": {"text": "utilisation ρ = λ / (c μ)"},
            "tickformat": ".0%",
            "range": [0, 1],
        },
        yaxis={"title": {"text": "time, in mean service times"}, "range": [0, 20]},
        sliders=_slider(cs.index(server), steps),
    )
    fig.add_vline(x=1, line={"color": _GREY, "dash": "dot", "width": 1})
    return fig


def closed_vs_open_loop(
    servers: Sequence[int] = DEFAULT_SERVERS,
    *,
    server: int = 8,
    max_users_factor: int = 4,
) -> Any:
    """Mean latency against throughput for the same servers driven closed loop and open loop.

    Closed loop: N clients, each sending its next request the moment the last one returns
    (a benchmark at ``--concurrency N``); the throughput is min(N, c) μ and the latency follows
    from Little's Law, W = N / X (:func:`infphys.physics.littles_law_latency_s`). Open loop:
    Poisson arrivals at rate λ, whatever the server is doing (real users); the latency is
    M/M/c's (:func:`infphys.physics.mmc`). Times in mean service times, throughput in requests
    per mean service time. A slider moves c.

    Args:
        servers: the values of c on the slider.
        server: the c shown first (must be in ``servers``).
        max_users_factor: the closed loop runs up to this many clients per server.
    """
    cs = sorted({int(c) for c in servers})
    if not cs or cs[0] < 1:
        raise ValueError(f"servers must hold integers >= 1 (got {servers!r})")
    if server not in cs:
        raise ValueError(f"server must be one of {cs} (got {server!r})")
    if max_users_factor < 1:
        raise ValueError(f"max_users_factor must be >= 1 (got {max_users_factor!r})")
    mu = 1.0
    fig = go.Figure()
    steps: list[dict[str, Any]] = []
    per_c = 2
    first: tuple[str, list[float]] = ("", [0, 1])
    y_max = 2.0 * max_users_factor + 1
    for i, c in enumerate(cs):
        visible = c == server
        users = sorted(
            {
                *range(1, min(c, 16) + 1),
                *np.unique(np.geomspace(1, max_users_factor * c, 40).round().astype(int)).tolist(),
            }
        )
        loops = [physics.closed_loop(n, mu, servers=c) for n in users]
        xs = [m.throughput_per_s for m in loops]
        ws = [m.mean_response_s for m in loops]
        lam = c * mu * _utilisation_grid(0.995)[1:]
        wo = [physics.mmc(x, mu, c).mean_response_s for x in lam]
        fig.add_trace(
            _line(
                xs, ws, "closed loop: N clients, no think time", _PALETTE[0], width=3,
                mode="lines+markers", visible=visible, marker={"size": 5}, customdata=users,
                hover="N = %{customdata} clients: %{x:.2f} req per service time, "
                "latency %{y:.2f} × service<extra>closed loop</extra>",
            )
        )  # fmt: skip
        fig.add_trace(
            _line(
                lam, wo, "open loop: Poisson arrivals", _PALETTE[1], width=3, visible=visible,
                hover="λ = %{x:.2f} req per service time: latency %{y:.2f} × service"
                "<extra>open loop</extra>",
            )
        )  # fmt: skip
        at = physics.mmc(0.95 * c * mu, mu, c)
        title = _title(
            f"Closed loop vs open loop, c = {c}",
            f"at 95% of capacity: open loop {fmt.num(at.mean_response_s)} × the service time; "
            "closed loop at N = c: 1 ×",
        )
        x_range = [0, c * mu * 1.08]
        steps.append(
            _view(
                str(c),
                _visible(per_c * len(cs), per_c, i),
                {"title.text": title, "xaxis.range": x_range},
            )
        )
        if visible:
            first = (title, x_range)
    _layout(
        fig,
        first[0],
        height=500,
        xaxis={"title": {"text": "throughput, requests per mean service time"}, "range": first[1]},
        yaxis={"title": {"text": "mean latency, in service times"}, "range": [0, y_max]},
        sliders=_slider(cs.index(server), steps),
    )
    return fig
