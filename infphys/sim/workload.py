"""The simulator's name for the one workload spec: :class:`infphys.workload.Workload`.

The spec (closed, open, offline, trace; sizes; bounds; seed) lives in :mod:`infphys.workload`,
below both :mod:`infphys.measure` and :mod:`infphys.sim`; this module re-exports it so that
``from infphys.sim.workload import Workload`` keeps working.

Worked example: ``Workload.closed(concurrency=64, requests=640)`` is the same object whether
imported from here, from :mod:`infphys.sim` or from :mod:`infphys.workload`.
"""

from __future__ import annotations

from infphys.workload import Mode, Workload

__all__ = ["Mode", "Workload"]
