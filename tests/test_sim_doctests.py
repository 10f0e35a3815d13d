"""The worked examples in the simulator's docstrings run as tests."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "infphys.sim._engine_parts",
    "infphys.sim._metrics",
    "infphys.sim._openai",
    "infphys.sim._tokens",
    "infphys.sim.calibration",
    "infphys.sim.config",
    "infphys.sim.engine",
    "infphys.sim.fleet",
    "infphys.sim.hosting",
    "infphys.sim.server",
    "infphys.sim.sweeps",
    "infphys.sim.workload",
    "infphys.resolve",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
