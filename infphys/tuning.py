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

:func:`compare_knobs` runs one closed-loop sweep per setting through :func:`infphys.sim.sweep`
(virtual time: a whole sweep takes well under a second; a warm-up round, then
max(rounds × c, floor) measured requests per level) and tabulates where each one's knee and SLO
cap fall, beside the engine's own figures (peak running, KV usage, preemptions).

Worked example (simulated, Llama-3.1-8B BF16 on one H100, 2,000 prompt + 256 output tokens):
the KV cache holds 410,384 tokens, 182 such requests; max_num_seqs = 256 does not bind, so past
about 128 clients the KV cache does and requests are preempted. With an FP8 KV cache the same
memory holds 364 requests, throughput keeps rising to 256 clients, and the p95 at 256 falls
from about 31 s to 22 s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from infphys import stats
from infphys._check import positive
from infphys.planning import slo_cap
from infphys.sim.config import EngineConfig
from infphys.sim.sweeps import DEFAULT_SWEEP_CONCURRENCY, SimSweep, sweep

__all__ = [
    "DEFAULT_SWEEP_CONCURRENCY",
    "KNOBS",
    "KnobComparison",
    "SimSweep",
    "compare_knobs",
]

#: The knobs :func:`compare_knobs` accepts in a variant, with what each limits.
KNOBS: dict[str, str] = {
    "max_num_seqs": "requests running at once",
    "gpu_memory_utilization": "share of GPU memory taken; the rest after weights is KV cache",
    "max_num_batched_tokens": "tokens computed per engine step (prefill chunk + decodes)",
    "kv_precision": "bytes per cached token (fp8 holds twice bf16's tokens)",
    "weights_precision": "bytes per weight (fp8 halves the weight read and frees memory)",
    "tp": "GPUs per replica (tensor parallel)",
}


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
        sw = sweep(
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
