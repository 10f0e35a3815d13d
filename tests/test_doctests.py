"""The worked examples in the pure modules' docstrings are run as tests."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "infphys",
    "infphys.catalog._lookup",
    "infphys.catalog._model_presets",
    "infphys.catalog.gpus",
    "infphys.catalog.measured",
    "infphys.catalog.models",
    "infphys.catalog.perception",
    "infphys.catalog.precision",
    "infphys.physics.cost",
    "infphys.physics.latency",
    "infphys.physics.memory",
    "infphys.physics.queueing",
    "infphys.physics.roofline",
    "infphys.physics.tco",
    "infphys.records",
    "infphys.workload",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
