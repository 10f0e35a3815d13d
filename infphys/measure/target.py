"""Which server to measure: :class:`Target` (defined in :mod:`infphys.endpoint`).

The endpoint type lives below both :mod:`infphys.measure` and :mod:`infphys.sim` so that the
simulator's :func:`~infphys.sim.serve` can yield the same type the load generator measures; it
is re-exported here, where measuring code has always found it.

>>> Target.from_env(env={"NIM_BASE_URL": "http://gpu-box:8000/"}).chat_url
'http://gpu-box:8000/v1/chat/completions'
"""

from __future__ import annotations

from infphys.endpoint import DEFAULT_BASE_URL, DEFAULT_CHAT_PATH, DEFAULT_MODEL, Target

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_CHAT_PATH",
    "DEFAULT_MODEL",
    "Target",
]
