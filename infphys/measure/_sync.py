"""Run a coroutine from synchronous code, even inside a running event loop (notebook cells)."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run_sync"]

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from synchronous code and return its result.

    Outside an event loop this is ``asyncio.run``. Inside one (a marimo or Jupyter cell, where
    a loop is already running in this thread) it runs the coroutine on a fresh loop in a worker
    thread and waits for it, so ``run_sync(run_closed_loop(...))`` works in any cell.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="infphys-run") as pool:
        return pool.submit(asyncio.run, coro).result()
