"""The worked examples in the measurement modules' docstrings run as tests."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "infphys._closing",
    "infphys.measure._failures",
    "infphys.measure._sse",
    "infphys.measure.gpu._timing",
    "infphys.measure.metrics",
    "infphys.measure.prompts",
    "infphys.measure.target",
    "infphys.stats",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
