"""Plotly figures shared by the site, the labs and the CLI: presentation only, no physics.

Each submodule holds figure functions that call :mod:`infphys.physics` (or read runs) and
return a ``plotly.graph_objects.Figure``. The site embeds any public figure function by name
(``{{ chart("kv_cliff", model="llama-3.1-8b") }}``, see ``docs/hooks/infphys_site.py``);
a lab shows the same figure with ``mo.ui.plotly(fig)`` or simply ``fig``.

- :mod:`infphys.plots.physics`: the catalog and the formulas (GPU specs, the KV-cache cliff,
  the decode roofline).
- :mod:`infphys.plots.queueing`, :mod:`infphys.plots.roofline`, :mod:`infphys.plots.memory`,
  :mod:`infphys.plots.cost`: the formula chapters' figures (the utilisation trap, closed vs open
  loop, the classic roofline, KV bytes per token and per sequence, precision and capacity, cost
  per million tokens).
- :mod:`infphys.plots.load`: load runs, measured or simulated (latency and throughput against
  load, errors, the token budget, server metrics, the HTML run report).
- :mod:`infphys.plots.labs`: figures the labs draw from the learner's own results (the KV
  cliff, correct against naive; the simulated KV wall; sequential against concurrent requests;
  a sweep against an SLO and its price; one request's tokens over time; grouped bars).
- :mod:`infphys.plots.labs_load`: the figures of labs 7–11 (latency box plots, requests in
  flight against Little's Law, closed against open loop, request latencies and server gauges on
  one clock, the token budget, overload and retries compared, engine knobs against an SLO).
- :mod:`infphys.plots.sim`: the simulated engine's state over time (running, waiting, KV
  usage, preemptions) and its calibration against TensorRT-LLM's published throughput.
- :mod:`infphys.plots.batching`, :mod:`infphys.plots.token_budget`,
  :mod:`infphys.plots.capacity`: the serving chapters' figures, drawn from simulator runs made
  by :mod:`infphys.analysis.serving` (static against continuous batching, the knee and the p95
  cliff, preemption; the TTFT/decode split, chunked prefill, one request's anatomy; goodput
  against load, capacity at an SLO, the engine knobs).
- :mod:`infphys.plots.session`: the instructor guide's session plan.

The house palette and plotly template are :mod:`infphys.plots._style`; tables, fits and errors
shown beside the figures are :mod:`infphys.analysis`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# Figures are imported from their module (``from infphys.plots.physics import kv_cliff``), so
# that two modules may each have a figure of the same name; the package itself exports none.
__all__: list[str] = []

_SUBMODULES = frozenset(
    {
        "batching",
        "capacity",
        "cost",
        "fleet",
        "gpu",
        "labs",
        "labs_load",
        "load",
        "measured",
        "measured_serving",
        "memory",
        "overload",
        "physics",
        "queueing",
        "roofline",
        "session",
        "sim",
        "token_budget",
    }
)


def __getattr__(name: str) -> ModuleType:
    """A figure module by attribute, imported on first use: ``plots.gpu.watch_figure``.

    A lab imports ``from infphys import plots`` once and names each figure by its module
    (``plots.labs.token_timeline``), without loading plotly for modules it never draws from.

    Raises:
        AttributeError: for a name that is no submodule of :mod:`infphys.plots`.
    """
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
