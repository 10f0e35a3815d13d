"""The worked examples in the package's docstrings run as tests, every module's.

A module takes part when its source holds an example line (``>>> ``) that is not marked
``# doctest: +SKIP``; found by reading the files, so a new module's examples are run without
being listed here, and a module whose examples stopped being found (``attempted == 0``) fails.
"""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "infphys"
_EXAMPLE = re.compile(r"^\s*>>> (?!.*doctest: \+SKIP)", re.MULTILINE)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = sorted(
    _module_name(path)
    for path in PACKAGE.rglob("*.py")
    if path.name != "__main__.py"  # importing it would run the command line
    and _EXAMPLE.search(path.read_text(encoding="utf-8"))
)


def test_the_modules_with_examples_are_found() -> None:
    # One module of each layer, each known to carry worked examples: a glob that silently
    # matched nothing (or missed a folder) would leave the test below with nothing to run.
    for name in (
        "infphys",
        "infphys.catalog.gpus",
        "infphys.physics.roofline",
        "infphys.stats",
        "infphys.sim.config",
        "infphys.measure.gpu.nvml",
        "infphys.exercises.core",
        "infphys.cli.physics",
    ):
        assert name in MODULES
    assert "infphys.resolve" not in MODULES  # its one example is +SKIP (it needs a server)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
