"""Ending things cleanly: context managers whose exit is ``close()``, cancelling a task, and
ending a child process.

Objects that hold a file, a server or a thread offer ``close()`` (idempotent) and are used as
``with obj:`` or ``async with obj:``. These two bases write the ``__enter__``/``__exit__`` pair
once: entering returns the object (a subclass may override ``__enter__`` to open or start it
first), leaving calls ``close()`` whether or not the block raised, and lets the error through.

Worked example: a block that raises still closes, and the error goes on.

>>> class Log(Closing):
...     closed = False
...     def close(self) -> None:
...         self.closed = True
>>> log = Log()
>>> with log:
...     raise KeyError("boom")
Traceback (most recent call last):
KeyError: 'boom'
>>> log.closed
True
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
from abc import ABC, abstractmethod
from typing import Any, Self

__all__ = ["AsyncClosing", "Closing", "cancel_and_wait", "end_process"]


class Closing(ABC):
    """``with obj:`` returns ``obj`` and ends with ``obj.close()``; subclasses define ``close``."""

    @abstractmethod
    def close(self) -> None:
        """Release what the object holds; a second call does nothing."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncClosing(ABC):
    """``async with obj:`` returns ``obj`` and ends with ``await obj.close()``."""

    @abstractmethod
    async def close(self) -> None:
        """Release what the object holds; a second call does nothing."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` (None: nothing to do) and wait until it has ended, so that nothing of it
    runs after this returns; its ``CancelledError`` is the expected end, not an error.

    >>> async def main() -> bool:
    ...     task = asyncio.ensure_future(asyncio.sleep(3600))
    ...     await asyncio.sleep(0)
    ...     await cancel_and_wait(task)
    ...     return task.cancelled()
    >>> asyncio.run(main())
    True
    """
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def end_process(
    proc: subprocess.Popen[Any], grace_s: float, *, ask: int | None = signal.SIGINT
) -> int:
    """End the child process ``proc`` and reap it; its exit code.

    A process still running is sent ``ask`` (default SIGINT, its Ctrl-C; None when it was
    already asked to stop another way, e.g. over a pipe) and given ``grace_s`` seconds to
    exit; after that it is killed (SIGKILL) and waited for. A process that has already
    exited is only reaped.

    Worked example: a server given 15 s that shuts down on SIGINT within them returns its
    own exit code; one still running after 15 s is killed and returns -9 (−SIGKILL), as this
    sleeper, asked nothing and given 0.1 s, does:

    >>> import sys
    >>> proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    >>> end_process(proc, 0.1, ask=None)
    -9
    """
    if proc.poll() is None:
        if ask is not None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(ask)
        try:
            return proc.wait(timeout=max(0.0, grace_s))
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()
