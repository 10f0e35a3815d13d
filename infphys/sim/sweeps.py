"""One simulator sweep: a closed loop at each concurrency, in virtual time, one request-count rule.

:func:`sweep` runs one :func:`~infphys.sim.virtual.simulate` per concurrency level c, each from
an idle engine, and returns a :class:`SimSweep`: every request of every level in one records
frame (``level`` and ``concurrency`` columns), so :mod:`infphys.stats` and the plots read it like
a measured sweep, plus the engine's own per-level figures.

The request-count rule (the same for every caller): level c sends a warm-up round of c requests,
then max(``rounds_per_level`` × c, ``min_requests_per_level``) measured requests. A closed loop
starts with every client sending at once, a burst no steady load has; the warm-up round absorbs
it, and the floor keeps low levels from resting on a handful of requests.

Worked example: ``sweep(cfg, [1, 8, 64], rounds_per_level=3, min_requests_per_level=24)`` sends
1 + 24, 8 + 24 and 64 + 192 requests (warm-up + measured) at the three levels.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from infphys import stats
from infphys._check import non_negative_int, positive_int
from infphys.planning import kv_limited_concurrency
from infphys.records import records_to_frame
from infphys.sim.config import EngineConfig, check_engine_config
from infphys.sim.virtual import simulate
from infphys.workload import Workload

__all__ = ["DEFAULT_SWEEP_CONCURRENCY", "ENGINE_COLUMNS", "SimSweep", "sweep", "sweep_requests"]

#: Concurrency levels of a default sweep: doublings from 1 to 512.
DEFAULT_SWEEP_CONCURRENCY: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)

#: The engine's own per-level figures that :meth:`SimSweep.summary` joins to the statistics.
ENGINE_COLUMNS: tuple[str, ...] = (
    "peak_running",
    "peak_waiting",
    "peak_kv_usage",
    "mean_waiting",
    "preemptions",
)


def sweep_requests(concurrency: int, rounds_per_level: int, min_requests_per_level: int) -> int:
    """Measured requests of the level at ``concurrency``: max(rounds × c, floor).

    >>> sweep_requests(8, 3, 24), sweep_requests(64, 3, 24)
    (24, 192)
    """
    c = positive_int("concurrency", concurrency)
    rounds = positive_int("rounds_per_level", rounds_per_level)
    return max(rounds * c, positive_int("min_requests_per_level", min_requests_per_level))


@dataclass(frozen=True)
class SimSweep:
    """One simulated closed-loop sweep.

    Attributes:
        config: the engine simulated.
        frame: every request of every level (``level``, ``concurrency`` columns), as
            :func:`infphys.records.records_to_frame` gives it.
        levels: one row per level: ``level``, ``concurrency`` and that level's
            :meth:`~infphys.sim.virtual.SimResult.summary` (throughput, latency means and
            p95, mean in flight and waiting, peak running, waiting and KV usage, preemptions).
        prompt_tokens, max_tokens: the request shape (lower bounds when ranges are given).
    """

    config: EngineConfig
    frame: pd.DataFrame
    levels: pd.DataFrame
    prompt_tokens: int
    max_tokens: int

    @property
    def engine(self) -> pd.DataFrame:
        """One row per level: ``level``, ``concurrency`` and :data:`ENGINE_COLUMNS`."""
        cols = ["level", "concurrency", *(c for c in ENGINE_COLUMNS if c in self.levels)]
        return self.levels[cols]

    def summary(self) -> pd.DataFrame:
        """:func:`infphys.stats.summarize` per level, with the engine's columns joined."""
        s = stats.summarize(self.frame)
        return s.merge(self.engine.drop(columns=["concurrency"]), on="level", how="left")

    @property
    def max_running_predicted(self) -> int:
        """min(max_num_seqs, KV-limited concurrency) for this request shape."""
        kv = kv_limited_concurrency(
            self.config.kv_capacity_tokens,
            self.prompt_tokens + self.max_tokens,
            block_tokens=self.config.block_tokens,
        )
        return min(self.config.max_num_seqs, kv)


def sweep(
    config: EngineConfig,
    concurrency: Sequence[int] = DEFAULT_SWEEP_CONCURRENCY,
    *,
    prompt_tokens: int = 1000,
    max_tokens: int = 200,
    prompt_tokens_max: int | None = None,
    max_tokens_max: int | None = None,
    ignore_eos: bool = True,
    rounds_per_level: int = 3,
    min_requests_per_level: int = 24,
    seed: int = 0,
    timeseries: bool = True,
) -> SimSweep:
    """A closed-loop concurrency sweep in virtual time, one level per concurrency.

    Level c: a warm-up round of c requests, then :func:`sweep_requests` measured ones; every
    request asks ``prompt_tokens`` and ``max_tokens`` (uniform in [lo, ``*_max``] when a
    maximum is given), exactly that many when ``ignore_eos`` (as benchmarks do). Each level
    runs on a fresh engine with the same ``seed``. ``timeseries=False`` skips the engine's time
    series (faster; the peak and mean-waiting columns are then absent).

    >>> sw = sweep(EngineConfig.build("h200", "llama-3.1-8b"), [1, 8, 64],
    ...            prompt_tokens=512, max_tokens=64)
    >>> sw.summary()["concurrency"].tolist(), sw.summary()["requests"].tolist()
    ([1, 8, 64], [24, 24, 192])
    """
    check_engine_config("config", config)
    levels = [positive_int(f"concurrency[{i}]", c) for i, c in enumerate(concurrency)]
    if not levels:
        raise ValueError("concurrency must hold at least one level")
    if any(b <= a for a, b in itertools.pairwise(levels)):
        raise ValueError(f"concurrency must be strictly increasing (got {levels})")
    non_negative_int("seed", seed)
    frames: list[pd.DataFrame] = []
    rows: list[dict[str, float]] = []
    for index, c in enumerate(levels):
        wl = Workload.closed(
            concurrency=c,
            requests=sweep_requests(c, rounds_per_level, min_requests_per_level),
            warmup=c,
            prompt_tokens=prompt_tokens,
            max_tokens=max_tokens,
            prompt_tokens_max=prompt_tokens_max,
            max_tokens_max=max_tokens_max,
            ignore_eos=ignore_eos,
            seed=seed,
            labels={"level": index},
        )
        res = simulate(config, wl, keep_chunk_times=False, timeseries=timeseries)
        frames.append(records_to_frame(res.records))  # no header in attrs: pandas copies it
        rows.append({"level": index, "concurrency": c, **res.summary()})
    return SimSweep(
        config=config,
        frame=pd.concat(frames, ignore_index=True),
        levels=pd.DataFrame(rows),
        prompt_tokens=prompt_tokens,
        max_tokens=max_tokens,
    )
