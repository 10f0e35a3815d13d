"""Ending things cleanly: context managers whose exit is ``close()``, and cancelling a task.

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
from abc import ABC, abstractmethod
from typing import Any, Self

__all__ = ["AsyncClosing", "Closing", "cancel_and_wait"]


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
