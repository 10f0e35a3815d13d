"""Context managers whose exit is one call: ``close()``.

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

from typing import Self

__all__ = ["AsyncClosing", "Closing"]


class Closing:
    """``with obj:`` returns ``obj`` and ends with ``obj.close()``; subclasses define ``close``."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncClosing:
    """``async with obj:`` returns ``obj`` and ends with ``await obj.close()``."""

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
