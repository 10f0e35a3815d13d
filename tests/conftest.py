"""Suite-wide settings and shared fixtures: the order of the modules, and the browser's turn.

The suite runs on four workers (``-n 4 --dist loadfile --no-loadscope-reorder`` in
``pyproject.toml``), two more than this machine's two cores: it waits more than it computes (the
lab modules drive simulators slowed down against the wall clock and use a fraction of a core
each; the browser modules wait on chromium), so the extra workers overlap the waits: once the
browser modules end, four lab modules wait on their simulators side by side, not three.
Every test of a module runs on the same worker, so a module-scoped fixture (a lab run, the
browser) is made once. Workers take modules in collection order (without
``--no-loadscope-reorder`` xdist would sort them by how many tests each holds): the three browser
modules first, one a worker, side by side (they are the longest, two minutes each), and lab 8 on
the fourth worker; then lab 10 and labs 1–6, which the two- and one-test browser modules bring
with them, so they start as those end; then the rest, longest first. The labs' simulators keep
time against the wall clock and fall behind beside chromium, so every lab run waits until no
browser module is running (``tests/cputurn.py``: each browser module holds a share of a lock
file of this run, from its first test's setup to its last one's teardown). The site's browser
checks are two modules over one site build (``site``, below, via ``tests/sitekit.py``: built
by whichever worker asks first, under a file lock; the other waits for it and reuses it). Order
only; every test still runs.

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
from cputurn import Turn
from labrun import isolate
from sitekit import Browser, Site, build_site, open_browser, serve

_TERMINAL = ("COLUMNS", "LINES")

sys.dont_write_bytecode = False  # this process and each worker (each imports this file first)
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # the processes the tests start

#: The modules that drive chromium (and marimo kernels), collected first, one per worker.
BROWSER_MODULES = ("test_site_browser.py", "test_labs_browser.py", "test_site_snapshots.py")
#: The order modules are collected in: the browser modules; lab 8 (the fourth worker's first),
#: lab 10 and labs 1-6 (a worker takes the next module when two or fewer of its tests are left,
#: so the two- and one-test browser modules each bring one along, to start as they end); then
#: the others that take longest (as measured with ``--durations``), longest first, the other
#: lab modules among them, so that their waits overlap the CPU-bound modules; then every module
#: not named here.
LONGEST_FIRST = (
    *BROWSER_MODULES,
    "test_lab08.py",
    "test_lab10.py",
    "test_labs_01_06.py",
    "test_sim_server.py",
    "test_labs_10_11.py",
    "test_labs_07_09.py",
    "test_measure_workers.py",
    "test_site_labs_runner.py",
    "test_labs_12_13.py",
    "test_prose_numbers.py",
    "test_labs_07_11_support.py",
    "test_sim_calibration.py",
    "test_labs_target.py",
    "test_cli_signals.py",
    "test_wheel.py",
    "test_labs_server.py",
)
#: This worker's share in the browser modules' hold on the CPU (``tests/cputurn.py``).
_BROWSER_TURN = Turn()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """(Worker) a browser module's first test takes its share before its fixtures start."""
    if item.path.name in BROWSER_MODULES:
        _BROWSER_TURN.take()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """(Worker) its last test gives it back once the module's fixtures (chromium, the labs'
    servers and kernels) are stopped."""
    yield
    if _BROWSER_TURN.held and (nextitem is None or nextitem.path != item.path):
        _BROWSER_TURN.give_back()


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
    """Chromium, its requests off loopback recorded and failed (skips where it is missing)."""
    with open_browser() as b:
        yield b


@pytest.fixture
def isolated_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A headless lab's answers go to ``tmp_path``; no learner name; nothing at NIM_BASE_URL."""
    isolate(tmp_path, monkeypatch)
