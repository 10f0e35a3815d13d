"""Suite-wide settings and shared fixtures: the longest modules are collected first.

The suite runs on three workers (``-n 3 --dist loadfile --no-loadscope-reorder`` in
``pyproject.toml``), one more than this machine's two cores: it waits more than it computes (the
lab modules drive simulators slowed down against the wall clock, the browser modules wait on
chromium; its CPU time is about three quarters of its wall time, not twice), so a third worker
overlaps the waits. Every test of a module runs on the same worker, so a module-scoped fixture (a
lab run, the browser) is made once. Workers take modules in collection order (without
``--no-loadscope-reorder`` xdist would sort them by how many tests each holds), so the few modules
that take minutes come first: started last, one of them would run alone at the end while the other
workers sit idle. The site's browser checks are two modules over one site build (``site``, below,
via ``tests/sitekit.py``: built by whichever worker asks first, under a file lock; the other waits
for it and reuses it). Order only; every test still runs.

A worker starts with ``COLUMNS`` and ``LINES`` set to 80×24 where the command that ran pytest had
neither; rich would then fix every ``infphys`` console at 80 columns when it is imported, and the
tests that give a command a wider terminal (``CliRunner(env={"COLUMNS": ...})``) would get 80.
Each worker is given the environment pytest was started with for these two.

Bytecode is cached (``__pycache__/``, ignored by git and excluded from the sdist and wheel) even
where the environment says ``PYTHONDONTWRITEBYTECODE`` (this machine does): without it every
worker re-rewrites every test module's asserts and every process a test starts (the CLI, lab
kernels, load workers, simulators in child processes) compiles infphys from source again, about
a third of a second per process here (1.34 s against 0.97 s to import infphys's layers).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labrun import isolate
from sitekit import Browser, Site, build_site, open_browser, serve

_TERMINAL = ("COLUMNS", "LINES")

sys.dont_write_bytecode = False  # this process and each worker (each imports this file first)
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # the processes the tests start

#: Modules that take the longest, longest first (as measured with ``--durations``), except the
#: two modules of labs 7–11: their labs time simulated servers against the wall clock while
#: using little CPU, so they come once the three browser modules (chromium and marimo kernels,
#: CPU bound) are mostly done, on two workers. A worker takes the next module when two or fewer
#: of its tests are left, so a module of one or two tests brings the next one with it.
LONGEST_FIRST = (
    "test_site_browser.py",
    "test_labs_browser.py",
    "test_site_snapshots.py",
    "test_sim_server.py",
    "test_labs_01_06.py",
    "test_measure_workers.py",
    "test_labs_07_09.py",
    "test_labs_10_11.py",
    "test_wheel.py",
    "test_labs_target.py",
    "test_sim_calibration.py",
    "test_prose_numbers.py",
    "test_labs_server.py",
    "test_cli_signals.py",
    "test_labs_07_11_support.py",
    "test_labs_12_13.py",
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


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """One CPU thread for torch while a test runs (skipped without torch): on a shared,
    oversubscribed machine torch's spinning worker threads make small steps 10× slower.
    Restored afterwards. A module opts in with ``pytest.mark.usefixtures("one_torch_thread")``."""
    torch_mod = pytest.importorskip("torch")
    before = torch_mod.get_num_threads()
    torch_mod.set_num_threads(1)
    yield
    torch_mod.set_num_threads(before)


@pytest.fixture(scope="session")
def site() -> Iterator[Site]:
    """The course site of this tree, built strict once (tests/sitekit.py), served on loopback."""
    if not os.environ.get("CI"):
        pytest.importorskip("mkdocs")
    with serve(build_site()) as served:
        yield served


@pytest.fixture(scope="module")
def browser(site: Site) -> Iterator[Browser]:
    """Chromium, its requests off loopback recorded and aborted (skips where it is missing)."""
    with open_browser() as b:
        yield b


@pytest.fixture
def isolated_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A headless lab's answers go to ``tmp_path``; no learner name; nothing at NIM_BASE_URL."""
    isolate(tmp_path, monkeypatch)
