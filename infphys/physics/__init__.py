"""Pure physics of inference serving: memory, the roofline, queueing and cost.

Plain functions over catalog dataclasses; no I/O, no clock, no globals. Bad input raises
``ValueError`` naming the argument and its allowed range.
"""

from __future__ import annotations

from infphys.physics import cost, latency, memory, queueing, roofline, tco
from infphys.physics.cost import *  # noqa: F403
from infphys.physics.latency import *  # noqa: F403
from infphys.physics.memory import *  # noqa: F403
from infphys.physics.queueing import *  # noqa: F403
from infphys.physics.roofline import *  # noqa: F403
from infphys.physics.tco import *  # noqa: F403

#: Every module's public names: each module's ``__all__`` is the one list of what it exports.
__all__ = sorted(
    {name for module in (cost, latency, memory, queueing, roofline, tco) for name in module.__all__}
)
