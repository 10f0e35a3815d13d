"""Timing a piece of work: the two loops the GPU probes share, one per clock.

:func:`host_times_s` calls ``fn`` at least once untimed (the warm-up: caches, allocator, lazy
initialisation), then takes ``repeats`` timings with ``time.perf_counter``, each around
``calls`` back-to-back calls, and returns the seconds per call of each timing. Work that runs
asynchronously (a CUDA kernel) is only timed if ``fn`` waits for it itself.

:func:`cuda_event_times_s` takes the same timings on the GPU's own clock: a pair of CUDA events
recorded on the current stream around the ``calls`` calls, so the kernels ``fn`` launches are
timed without the host waiting between them (only after each timing, on the end event).

Worked example: copying 64 MiB with 16 copies per timing, where the 16 copies take 80 ms,
gives one entry of 80 ms / 16 = 5 ms per copy, i.e. 2 × 64 MiB / 5 ms = 26.8 GB/s read plus
written.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["cuda_event_times_s", "host_times_s"]


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


def cuda_event_times_s(
    torch: Any,
    device: Any,
    fn: Callable[[], object],
    repeats: int,
    *,
    warmup: int = 0,
    calls: int = 1,
) -> list[float]:
    """Seconds per call of ``fn`` on the GPU clock: ``repeats`` timings of ``calls`` calls each,
    between two CUDA events, after ``warmup`` untimed calls and a ``torch.cuda.synchronize``.

    ``torch`` is the module (passed in, so this file imports without it). CUDA events count in
    milliseconds: a timing of 16 copies that the events put 80.0 ms apart gives 80.0 ms / 1e3 /
    16 = 5 ms per copy.
    """
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize(device)
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    times: list[float] = []
    for _ in range(repeats):
        start.record()
        for _ in range(calls):
            fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3 / calls)  # elapsed_time is in ms
    return times
