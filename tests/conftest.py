"""Suite-wide settings: the longest modules are collected first.

The suite runs on two workers (``-n 2 --dist loadfile`` in ``pyproject.toml``): every test of a
module runs on the same worker, so a module-scoped fixture (the site build, a lab run) is built
once. Workers take modules in collection order, so the few modules that take minutes (the site
build and its browser checks, the labs in chromium, the load-heavy labs) come first: started
last, one of them would run alone at the end while the other worker sits idle. Order only;
every test still runs, with its own fixtures.

Note: xdist re-sorts modules by how many tests each holds (its default ``--loadscope-reorder``),
so this order only applies with ``--no-loadscope-reorder``. That flag is not set: it makes the
site build (four marimo exports at once on a cold cache) overlap labs 8 and 9, whose headless
runs against the real-time embedded simulator then miss their tolerances (seen: TPOT +389 %
for one cell). Set it once those runs tolerate a busy machine.

A worker starts with ``COLUMNS`` and ``LINES`` set to 80×24 where the command that ran pytest had
neither; rich would then fix every ``infphys`` console at 80 columns when it is imported, and the
tests that give a command a wider terminal (``CliRunner(env={"COLUMNS": ...})``) would get 80.
Each worker is given the environment pytest was started with for these two.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

_TERMINAL = ("COLUMNS", "LINES")

#: Modules that take the longest, longest first (as measured with ``--durations``).
LONGEST_FIRST = (
    "test_site_browser.py",
    "test_labs_browser.py",
    "test_labs_07_11.py",
    "test_cli_signals.py",
    "test_wheel.py",
    "test_labs_01_06.py",
    "test_labs_target.py",
    "test_sim_calibration.py",
    "test_labs_07_11_support.py",
    "test_labs_12.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """(Controller) hand each worker the terminal settings pytest was started with."""
    node.workerinput["infphys_terminal"] = {k: os.environ.get(k) for k in _TERMINAL}


def pytest_configure(config: pytest.Config) -> None:
    """(Worker) restore them before any test module imports ``infphys``."""
    terminal = getattr(config, "workerinput", {}).get("infphys_terminal")
    for name, value in (terminal or {}).items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
