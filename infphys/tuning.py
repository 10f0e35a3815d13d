"""Tuning on the virtual-time simulator: concurrency sweeps of engine settings, side by side.

A real serving engine has a handful of knobs that decide where its knee falls (vLLM's names;
NIM passes them through as ``NIM_MAX_NUM_SEQS`` and friends):

=========================  ===================================================================
knob                       what it limits
=========================  ===================================================================
max_num_seqs               requests running at once (the batch); beyond it requests wait
gpu_memory_utilization     the share of GPU memory the engine takes; what the weights and the
                           activation reserve leave of it is the KV cache
max_num_batched_tokens     tokens computed per step: how much prefill rides along with the
                           decodes (TTFT under load, and the step time)
kv_precision               bytes per cached token: FP8 holds twice the tokens of BF16
=========================  ===================================================================

Requests run at once = min(max_num_seqs, KV-limited concurrency) (see
:func:`infphys.planning.kv_limited_concurrency`); past it, requests queue (or, when the KV cache
runs out mid-answer, are preempted and recomputed) and the p95 climbs.

:func:`simulate_sweep` runs one closed-loop sweep through :func:`infphys.sim.simulate` (virtual
time: a whole sweep takes well under a second) and returns a records frame with one ``level``
per concurrency, so :mod:`infphys.stats` and :mod:`infphys.plots` read it like a measured sweep,
plus the engine's own per-level figures (peak running and waiting, KV usage, preemptions).
Each level starts from an idle engine and its first round of requests (``concurrency`` of them)
is a warm-up that statistics leave out: a closed loop starts with every client sending at once,
a burst no steady load has. :func:`compare_knobs` sweeps several settings and tabulates where
each one's knee and SLO cap fall.

Worked example (simulated, Llama-3.1-8B BF16 on one H100, 2,000 prompt + 256 output tokens):
the KV cache holds 410,384 tokens, 182 such requests; max_num_seqs = 256 does not bind, so past
about 128 clients the KV cache does and requests are preempted. With an FP8 KV cache the same
memory holds 364 requests, throughput keeps rising to 256 clients, and the p95 at 256 falls
from about 31 s to 22 s.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from infphys import stats
from infphys._check import non_negative_int, positive, positive_int
from infphys.planning import kv_limited_concurrency, slo_cap
from infphys.records import records_to_frame
from infphys.sim.config import EngineConfig
from infphys.sim.virtual import simulate
from infphys.sim.workload import Workload

__all__ = [
    "DEFAULT_SWEEP_CONCURRENCY",
    "KNOBS",
    "KnobComparison",
    "SimSweep",
    "compare_knobs",
    "simulate_sweep",
]

#: Concurrency levels of a default sweep: doublings from 1 to 512.
DEFAULT_SWEEP_CONCURRENCY: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)

#: The knobs :func:`compare_knobs` accepts in a variant, with what each limits.
KNOBS: dict[str, str] = {
    "max_num_seqs": "requests running at once",
    "gpu_memory_utilization": "share of GPU memory taken; the rest after weights is KV cache",
    "max_num_batched_tokens": "tokens computed per engine step (prefill chunk + decodes)",
    "kv_precision": "bytes per cached token (fp8 holds twice bf16's tokens)",
    "weights_precision": "bytes per weight (fp8 halves the weight read and frees memory)",
    "tp": "GPUs per replica (tensor parallel)",
}

_ENGINE_COLUMNS = ("peak_running", "peak_waiting", "peak_kv_usage", "preemptions")


@dataclass(frozen=True)
class SimSweep:
    """One simulated closed-loop sweep.

    Attributes:
        config: the engine simulated.
        frame: every request of every level (``level``, ``concurrency`` columns), as
            :func:`infphys.records.records_to_frame` gives it.
        engine: one row per level: ``concurrency`` and the engine's ``peak_running``,
            ``peak_waiting``, ``peak_kv_usage`` (0–1) and ``preemptions``.
        prompt_tokens, max_tokens: the request shape.
    """

    config: EngineConfig
    frame: pd.DataFrame
    engine: pd.DataFrame
    prompt_tokens: int
    max_tokens: int

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


def simulate_sweep(
    config: EngineConfig,
    concurrency: Sequence[int] = DEFAULT_SWEEP_CONCURRENCY,
    *,
    prompt_tokens: int = 1000,
    max_tokens: int = 200,
    rounds_per_level: int = 3,
    min_requests_per_level: int = 24,
    seed: int = 0,
) -> SimSweep:
    """A closed-loop concurrency sweep in virtual time, one level per concurrency.

    Each level sends max(``rounds_per_level`` × c, ``min_requests_per_level``) measured
    requests after a warm-up round of c, every one asking for exactly ``max_tokens`` tokens
    (``ignore_eos``, as benchmarks do).

    >>> sw = simulate_sweep(EngineConfig.build("h200", "llama-3.1-8b"), [1, 8, 64],
    ...                     prompt_tokens=512, max_tokens=64)
    >>> sw.summary()["concurrency"].tolist()
    [1, 8, 64]
    """
    levels = [positive_int(f"concurrency[{i}]", c) for i, c in enumerate(concurrency)]
    if not levels:
        raise ValueError("concurrency must hold at least one level")
    if any(b <= a for a, b in itertools.pairwise(levels)):
        raise ValueError(f"concurrency must be strictly increasing (got {levels})")
    p = positive_int("prompt_tokens", prompt_tokens)
    m = positive_int("max_tokens", max_tokens)
    rounds = positive_int("rounds_per_level", rounds_per_level)
    floor = positive_int("min_requests_per_level", min_requests_per_level)
    non_negative_int("seed", seed)
    frames: list[pd.DataFrame] = []
    engine_rows: list[dict[str, Any]] = []
    for index, c in enumerate(levels):
        wl = Workload.closed(
            concurrency=c,
            requests=max(rounds * c, floor),
            warmup=c,
            prompt_tokens=p,
            max_tokens=m,
            ignore_eos=True,
            seed=seed,
        )
        res = simulate(config, wl, keep_chunk_times=False)
        for r in res.records:
            r.labels["level"] = index
        frames.append(records_to_frame(res.records, res.header))
        s = res.summary()
        engine_rows.append(
            {"level": index, "concurrency": c, **{k: s.get(k, math.nan) for k in _ENGINE_COLUMNS}}
        )
    frame = pd.concat(frames, ignore_index=True)
    return SimSweep(
        config=config,
        frame=frame,
        engine=pd.DataFrame(engine_rows),
        prompt_tokens=p,
        max_tokens=m,
    )


@dataclass(frozen=True)
class KnobComparison:
    """Sweeps of several engine settings and where each one's knee and SLO cap fall.

    Attributes:
        sweeps: one :class:`SimSweep` per variant, in the order given.
        table: one row per variant: ``variant``, ``change`` (the settings changed),
            ``kv_capacity_tokens``, ``max_running_predicted`` (min(max_num_seqs, KV limit)),
            ``max_running_simulated`` (peak running at the highest level), ``knee_concurrency``
            and ``knee_output_tokens_per_s`` (:func:`infphys.stats.sweep_knee` on output
            tokens/s; NaN when throughput still rises at the last level),
            ``peak_output_tokens_per_s``, ``slo_cap`` (:func:`infphys.planning.slo_cap`
            on the p95 end to end; NaN if no level meets it), ``preemptions`` (all levels).
        slo_p95_s: the objective used for ``slo_cap``.
    """

    sweeps: dict[str, SimSweep]
    table: pd.DataFrame
    slo_p95_s: float
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _describe_change(change: Mapping[str, Any]) -> str:
    if not change:
        return "defaults"
    parts = []
    for k, v in change.items():
        name = getattr(v, "name", v)
        parts.append(f"{k}={name}")
    return ", ".join(parts)


def compare_knobs(
    config: EngineConfig,
    variants: Mapping[str, Mapping[str, Any]],
    *,
    slo_p95_s: float,
    concurrency: Sequence[int] = DEFAULT_SWEEP_CONCURRENCY,
    prompt_tokens: int = 1000,
    max_tokens: int = 200,
    rounds_per_level: int = 3,
    seed: int = 0,
) -> KnobComparison:
    """Sweep ``config`` changed by each variant (``{name: {knob: value}}``; ``{}`` is the
    baseline) and tabulate the knee, the SLO cap and the batch limit of each.

    Raises:
        ValueError: for an unknown knob (see :data:`KNOBS`) or an engine that does not fit.
    """
    slo = positive("slo_p95_s", slo_p95_s)
    if not variants:
        raise ValueError("variants must hold at least one variant ({} is the baseline)")
    sweeps: dict[str, SimSweep] = {}
    rows: list[dict[str, Any]] = []
    for name, change in variants.items():
        unknown = sorted(set(change) - set(KNOBS))
        if unknown:
            raise ValueError(
                f"variants[{name!r}]: unknown knob {unknown[0]!r} (knobs: {', '.join(KNOBS)})"
            )
        cfg = config.with_(**dict(change)) if change else config
        sw = simulate_sweep(
            cfg,
            concurrency,
            prompt_tokens=prompt_tokens,
            max_tokens=max_tokens,
            rounds_per_level=rounds_per_level,
            seed=seed,
        )
        sweeps[name] = sw
        s = sw.summary().sort_values("concurrency")
        knee = stats.sweep_knee(s, throughput_column="output_tokens_per_s")
        cap = slo_cap(s["concurrency"].tolist(), s["e2e_p95_s"].tolist(), slo)
        rows.append(
            {
                "variant": name,
                "change": _describe_change(change),
                "kv_capacity_tokens": cfg.kv_capacity_tokens,
                "max_running_predicted": sw.max_running_predicted,
                "max_running_simulated": float(s["peak_running"].iloc[-1]),
                "knee_concurrency": _or_nan(knee.knee_x if knee is not None else None),
                "knee_output_tokens_per_s": _or_nan(
                    knee.knee_throughput if knee is not None else None
                ),
                "peak_output_tokens_per_s": float(s["output_tokens_per_s"].max()),
                "slo_cap": float(cap) if cap is not None else math.nan,
                "preemptions": float(s["preemptions"].sum()),
            }
        )
    return KnobComparison(
        sweeps=sweeps,
        table=pd.DataFrame(rows),
        slo_p95_s=slo,
        frames={k: v.frame for k, v in sweeps.items()},
    )
