"""Timing a piece of work on the host clock: the loop the GPU probes share for CPU runs.

:func:`host_times_s` calls ``fn`` at least once untimed (the warm-up: caches, allocator, lazy
initialisation), then takes ``repeats`` timings with ``time.perf_counter``, each around
``calls`` back-to-back calls, and returns the seconds per call of each timing. Work that runs
asynchronously (a CUDA kernel) is only timed if ``fn`` waits for it itself.

Worked example: copying 64 MiB with 16 copies per timing, where the 16 copies take 80 ms,
gives one entry of 80 ms / 16 = 5 ms per copy, i.e. 2 × 64 MiB / 5 ms = 26.8 GB/s read plus
written.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["host_times_s"]


def host_times_s(
    fn: Callable[[], object], repeats: int, *, warmup: int = 1, calls: int = 1
) -> list[float]:
    """Seconds per call of ``fn``: ``repeats`` timings of ``calls`` calls each, after
    ``max(warmup, 1)`` untimed calls.

    >>> calls = []
    >>> times = host_times_s(lambda: calls.append(1), 3, warmup=2, calls=4)
    >>> len(times), len(calls)  # 2 warm-up calls, then 3 timings of 4 calls
    (3, 14)
    """
    for _ in range(max(warmup, 1)):
        fn()
    times: list[float] = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - t0) / calls)
    return times
