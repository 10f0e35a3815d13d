"""Chromium's turn on the CPU: the labs' real-time simulators wait until the browser tests end.

The three browser modules (``conftest.BROWSER_MODULES``) run side by side on three of the workers;
chromium's renderers and marimo's kernels keep both cores of this machine busy meanwhile, and a
real-time simulator started beside them falls behind its clock (beside them, labs 8 and 10
stalled 0.3-0.5 s even slowed 6×, and their tests of what the server did skipped). So each
browser worker holds a shared lock on this run's lock file (:meth:`Turn.take`, from its module's
first test's setup to its last one's teardown), and a lab run first waits until it can lock the
file exclusively, that is until no browser module is running (:func:`wait_for_the_browser`).

The file is named by pytest-xdist's id of the run (the process id without xdist), so two test
runs on one machine never wait on each other; the last browser module to give its share back
removes it. A lab never waits longer than :data:`WAIT_LIMIT_S`: past it, it runs beside chromium.

Example::

    turn = Turn()
    turn.take()                        # a browser worker, before its module's first test
    waited_s = wait_for_the_browser()  # a lab's worker: 0.0 when no browser module runs
    turn.give_back()                   # after its module's last test
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from pathlib import Path
from typing import IO

#: This run's lock file.
LOCK_PATH = Path(tempfile.gettempdir()) / (
    f"infphys-browser-turn-{os.environ.get('PYTEST_XDIST_TESTRUNUID') or os.getpid()}.lock"
)
#: The longest a lab waits for the browser tests, s (they take 2-4 minutes on two cores).
WAIT_LIMIT_S = 600.0
#: How often a waiting lab tries the lock again, s.
POLL_S = 0.5


class Turn:
    """A browser worker's share in the hold on :data:`LOCK_PATH` (taking it twice is once)."""

    def __init__(self, path: Path = LOCK_PATH) -> None:
        self.path = path
        self._file: IO[str] | None = None

    @property
    def held(self) -> bool:
        return self._file is not None

    def take(self) -> None:
        if self._file is None:
            f = open(self.path, "a")  # noqa: SIM115 - held across tests, closed in give_back
            fcntl.flock(f, fcntl.LOCK_SH)
            self._file = f

    def give_back(self) -> None:
        """Release this share; the last holder (none other holds one) removes the file."""
        if self._file is not None:
            try:
                fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self.path.unlink(missing_ok=True)  # a waiter with it open goes on as it closes
            except BlockingIOError:
                pass  # another browser module still runs
            self._file.close()  # releases this worker's share
            self._file = None


def wait_for_the_browser(path: Path = LOCK_PATH, limit_s: float = WAIT_LIMIT_S) -> float:
    """Block while a browser module of this run holds a share of ``path``; return the seconds
    waited."""
    t0 = time.monotonic()
    try:
        f = open(path)  # noqa: SIM115 - closed by the block below
    except FileNotFoundError:  # no browser module has started
        return 0.0
    with f:
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return time.monotonic() - t0  # released as the file closes
            except BlockingIOError:
                if time.monotonic() - t0 > limit_s:
                    return time.monotonic() - t0
                time.sleep(POLL_S)
