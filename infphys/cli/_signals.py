"""Stopping cleanly: SIGTERM and SIGHUP behave like Ctrl-C, and child process groups are ended.

A long-running command (``infphys sim``, ``infphys labs``) must leave nothing behind however it is
stopped: Ctrl-C in its terminal (SIGINT), ``kill`` or a service manager (SIGTERM), or the
terminal closing (SIGHUP). Python turns only SIGINT into ``KeyboardInterrupt``; the other two
would end the process at once, skipping every ``finally`` and orphaning its children.

:func:`stop_on_signals` makes SIGTERM and SIGHUP raise :class:`Stopped` (a ``KeyboardInterrupt``)
in the main thread, so the same clean-up path runs for all three; a second signal while that
clean-up runs is ignored. :func:`end_process_group` ends a child started in its own session
(``start_new_session=True``) together with everything it started. A command stopped this way
has done what was asked and exits 0.

Worked example::

    >>> import os
    >>> with stop_on_signals() as stopped:
    ...     try:
    ...         os.kill(os.getpid(), signal.SIGTERM)
    ...     except KeyboardInterrupt as exc:
    ...         print(type(exc).__name__, exc)
    Stopped SIGTERM
    >>> stopped.signum == signal.SIGTERM
    True
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import FrameType

__all__ = ["StopState", "Stopped", "end_process_group", "stop_on_signals"]

#: The signals that mean "stop": Ctrl-C, kill / a service manager, the terminal closing.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(KeyboardInterrupt):
    """Raised in the main thread when SIGTERM or SIGHUP arrives (see :func:`stop_on_signals`)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopState:
    """Which stop signal arrived first (``signum``), or None."""

    def __init__(self) -> None:
        self.signum: int | None = None


@contextmanager
def stop_on_signals() -> Iterator[StopState]:
    """Within the block, SIGINT, SIGTERM and SIGHUP all raise in the main thread, once.

    SIGINT raises ``KeyboardInterrupt`` (as usual), SIGTERM and SIGHUP :class:`Stopped`; any
    later stop signal inside the block is ignored so that clean-up is not cut short. The previous
    handlers are restored on exit. Off the main thread it does nothing (signals need it).
    """
    state = StopState()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if state.signum is not None:
            return
        state.signum = signum
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Stopped(signum)

    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield state
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


def end_process_group(proc: subprocess.Popen[bytes], *, grace_s: float = 10.0) -> int:
    """End ``proc`` and every process in its group (it must lead its own session); its status.

    Sends SIGTERM to the group and waits up to ``grace_s`` for ``proc``; then SIGKILLs whatever
    is left of the group (``proc`` if it ignored SIGTERM, or a grandchild it left behind).
    Safe to call after ``proc`` exited.
    """
    _killpg(proc.pid, signal.SIGTERM)
    try:
        code = proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        _killpg(proc.pid, signal.SIGKILL)
        return proc.wait()
    _killpg(proc.pid, signal.SIGKILL)
    return code


def _killpg(pgid: int, sig: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
