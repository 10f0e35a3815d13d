"""Calibrating the simulator on published max-throughput results (TensorRT-LLM, trtllm-bench).

The calibration set is the TensorRT-LLM performance overview (NVIDIA/TensorRT-LLM
``docs/source/performance/perf-overview.md``, published at
https://nvidia.github.io/TensorRT-LLM/performance/perf-overview.html): total output tokens/s of
``trtllm-bench throughput``, offline (every request queued at once), FP8 checkpoints, for
Llama-3.1-8B on one H200 and one H100 and Llama-3.3-70B on one H200 and two H100s, at six
input/output lengths.

Each row is simulated the way trtllm-bench runs it:

- ``requests`` requests of exactly ISL prompt tokens and OSL output tokens, all at t = 0 (the
  counts of the overview's table: 30,000 for 128/128, 3,000 for 128/2048 and 1000/1000, 1,500
  for 2048/2048 and 5000/500, 1,000 for 20000/2000);
- FP8 weights and FP8 KV cache; 95 % of the memory left after the weights (and a 2 GiB
  activation reserve) for the KV cache (``--kv_cache_free_gpu_mem_fraction 0.95``);
- batch limits from trtllm-bench's own heuristic (``tensorrt_llm/bench/build/tuning.py``):
  ``max_batch_size`` = the KV capacity in requests of ISL + OSL tokens (capped at 4,096, rounded
  up to 32/128/256), ``max_num_tokens`` = that × (1 + ISL/OSL) capped at 32,768 and rounded, and
  at least ISL + ``max_batch_size`` because the benchmark runs without chunked context.

The engine runs TensorRT-LLM's scheduler (``scheduler="trtllm"``: a request's whole KV is
reserved at admission, nothing is preempted, no chunked context). These rows are not fitted to:
the step model is fitted to the static-batch table (:mod:`infphys.sim.fit`), so this table is
a check on data the fit never saw (FP8 Llama-3.1 on H100 and H200 at saturation).

Worked example: Llama-3.1-8B FP8 on an H200 at 1000/1000. trtllm-bench's heuristic sees
(141 − 8.03) GB = 123.8 GiB free, takes 95 % of it for KV at 64 KiB per token: 963 requests of
2,000 tokens, so ``max_batch_size`` 1,024 and ``max_num_tokens`` 2,048 (ISL + batch gives only
2,024). The simulated KV cache (95 % of the memory left after the weights and a 2 GiB reserve)
holds 948 such requests, so ``max_num_seqs`` is 948; the run gives 20,037 output tokens/s
against the published 17,744 (+12.9 %).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from infphys.catalog import get_gpu, get_model
from infphys.physics import DEFAULT_ACTIVATION_RESERVE_BYTES, weight_bytes
from infphys.sim.config import EngineConfig
from infphys.sim.virtual import simulate
from infphys.sim.workload import Workload
from infphys.stats import throughput

__all__ = [
    "CALIBRATION_ROWS",
    "CalibrationResult",
    "CalibrationRow",
    "calibrate",
    "fit",
    "row_config",
    "simulate_row",
    "trtllm_bench_limits",
]

_SOURCE = (
    "NVIDIA/TensorRT-LLM docs/source/performance/perf-overview.md (trtllm-bench throughput, "
    "FP8), https://nvidia.github.io/TensorRT-LLM/performance/perf-overview.html"
)
#: trtllm-bench's request counts per input/output length (perf-overview.md).
_REQUESTS = {
    (128, 128): 30000,
    (128, 2048): 3000,
    (1000, 1000): 3000,
    (2048, 2048): 1500,
    (5000, 500): 1500,
    (20000, 2000): 1000,
}
_LENGTHS = ((128, 128), (128, 2048), (1000, 1000), (2048, 2048), (5000, 500), (20000, 2000))
_TABLE = {
    ("llama-3.1-8b", "h200", 1): (27911, 26221, 17744, 12194, 3902, 1804),
    ("llama-3.1-8b", "h100", 1): (28312, 22714, 15220, 9305, 3459, 1351),
    ("llama-3.3-70b", "h200", 1): (3803, 4336, 2909, 2003, 566, 283),
    ("llama-3.3-70b", "h100", 2): (6378, 6651, 4205, 3082, 898, 437),
}
#: trtllm-bench's ``--kv_cache_free_gpu_mem_fraction`` as used for the published table.
KV_CACHE_FREE_GPU_MEM_FRACTION = 0.95


@dataclass(frozen=True, slots=True)
class CalibrationRow:
    """One published result: model, GPU, TP, input/output lengths, output tokens/s."""

    model: str
    gpu: str
    tp: int
    input_tokens: int
    output_tokens: int
    requests: int
    measured_output_tokens_per_s: float
    source: str = _SOURCE

    @property
    def label(self) -> str:
        return (
            f"{get_model(self.model).name} FP8 TP{self.tp} {get_gpu(self.gpu).name} "
            f"{self.input_tokens}/{self.output_tokens}"
        )


CALIBRATION_ROWS: tuple[CalibrationRow, ...] = tuple(
    CalibrationRow(model, gpu, tp, isl, osl, _REQUESTS[(isl, osl)], float(tps))
    for (model, gpu, tp), values in _TABLE.items()
    for (isl, osl), tps in zip(_LENGTHS, values, strict=True)
)


#: trtllm-bench's rounding of ``max_batch_size``: (below this, round up to a multiple of this).
_BATCH_SIZE_BANDS = ((256.0, 32), (1024.0, 128), (math.inf, 256))
#: The same for ``max_num_tokens``.
_NUM_TOKENS_BANDS = ((4096.0, 256), (8192.0, 512), (math.inf, 1024))


def _round_up_banded(value: float, bands: tuple[tuple[float, int], ...], minimum: int) -> int:
    """``value`` rounded up to a multiple of the step of the first band whose limit it is below,
    and at least ``minimum``: 963 in the batch-size bands is below 1,024, so 1,024."""
    step = next(step for limit, step in bands if value < limit)
    return max(minimum, step * math.ceil(value / step))


def trtllm_bench_limits(row: CalibrationRow) -> tuple[int, int]:
    """``(max_batch_size, max_num_tokens)`` as trtllm-bench's heuristic picks them.

    Mirrors ``calc_engine_setting`` and ``finetune_setting`` (memory in GiB as torch reports it,
    one byte per FP8 weight and KV element, KV heads at least tp), then raises
    ``max_num_tokens`` to ISL + batch as ``get_settings`` does without chunked context.

    >>> trtllm_bench_limits(CALIBRATION_ROWS[2])   # Llama-3.1-8B, H200, 1000/1000
    (1024, 2048)
    """
    m, g = get_model(row.model), get_gpu(row.gpu)
    gib = 2.0**30
    kv_heads = max(row.tp, m.kv_heads)
    byte_per_token = 2 * m.full_attention_layers * kv_heads * m.head_dim * 1.0 / gib
    engine_size = m.params_total * 1.0 / gib
    available = g.memory_bytes / gib * row.tp - engine_size
    cache = available * KV_CACHE_FREE_GPU_MEM_FRACTION
    max_requests = cache / (byte_per_token * (row.input_tokens + row.output_tokens))
    raw_bs = min(max_requests, 4096)
    raw_token = min(raw_bs * (1 + row.input_tokens / row.output_tokens), 32768)
    bs = _round_up_banded(raw_bs, _BATCH_SIZE_BANDS, 64)
    tokens = _round_up_banded(raw_token, _NUM_TOKENS_BANDS, 2048)
    tokens = max(tokens, row.input_tokens + bs)
    return bs, tokens


def row_config(row: CalibrationRow, **overrides: Any) -> EngineConfig:
    """The engine for one row: FP8 weights and KV, trtllm-bench's limits and KV fraction.

    ``overrides`` replace engine settings (the efficiency factors, when fitting).
    """
    bs, tokens = trtllm_bench_limits(row)
    g, m = get_gpu(row.gpu), get_model(row.model)
    w = weight_bytes(m, "fp8") / row.tp
    reserve = DEFAULT_ACTIVATION_RESERVE_BYTES
    # KV = fraction × (memory − weights − reserve) per GPU, written as a memory utilization.
    kv = KV_CACHE_FREE_GPU_MEM_FRACTION * (g.memory_bytes - w - reserve)
    util = min(1.0, (kv + w + reserve) / g.memory_bytes)
    settings: dict[str, Any] = {
        "scheduler": "trtllm",
        "tp": row.tp,
        "max_num_seqs": bs,
        "max_num_batched_tokens": tokens,
        "gpu_memory_utilization": util,
        "activation_reserve_bytes": reserve,
        "max_model_len": row.input_tokens + row.output_tokens,
    }
    settings.update(overrides)
    cfg = EngineConfig.build(
        row.gpu, row.model, weights_precision="fp8", kv_precision="fp8", **settings
    )
    # TensorRT-LLM's scheduler (GUARANTEED_NO_EVICT) admits a request only when the blocks for
    # its whole prompt + output are free, so it never runs more requests than fit at full
    # length and never preempts. With uniform lengths that is vLLM's scheduler with
    # max_num_seqs capped at that count.
    per_request_blocks = math.ceil((row.input_tokens + row.output_tokens) / cfg.block_tokens)
    fit = max(1, cfg.kv_capacity_blocks // per_request_blocks)
    if "max_num_seqs" not in overrides and fit < bs:
        cfg = cfg.with_(max_num_seqs=fit)
    return cfg


@dataclass(frozen=True, slots=True)
class CalibrationResult:
    """One row's published and simulated output tokens/s, and the relative error."""

    row: CalibrationRow
    simulated_output_tokens_per_s: float
    sim_duration_s: float
    preemptions: int
    max_num_seqs: int
    max_num_batched_tokens: int

    @property
    def error(self) -> float:
        """(simulated − published) / published."""
        m = self.row.measured_output_tokens_per_s
        return (self.simulated_output_tokens_per_s - m) / m


def simulate_row(
    row: CalibrationRow, *, requests_fraction: float = 1.0, **overrides: Any
) -> CalibrationResult:
    """Simulate one row offline and measure its output tokens/s (tokens / total time).

    ``requests_fraction`` < 1 runs fewer requests (faster, for fitting; at least 4 × the batch).
    """
    cfg = row_config(row, **overrides)
    n = row.requests
    if requests_fraction < 1.0:
        n = max(4 * cfg.max_num_seqs, int(n * requests_fraction))
        n = min(n, row.requests)
    wl = Workload.offline(
        n, prompt_tokens=row.input_tokens, max_tokens=row.output_tokens, ignore_eos=True
    )
    res = simulate(cfg, wl, keep_chunk_times=False, timeseries=False)
    # stats' window: every request is sent at t = 0, so it ends at the last end (total time).
    tp = throughput(res.records)
    return CalibrationResult(
        row=row,
        simulated_output_tokens_per_s=tp.output_tokens_per_s,
        sim_duration_s=tp.window_s,
        preemptions=res.stats.preemptions,
        max_num_seqs=cfg.max_num_seqs,
        max_num_batched_tokens=cfg.max_num_batched_tokens,
    )


def calibrate(
    rows: tuple[CalibrationRow, ...] = CALIBRATION_ROWS,
    *,
    requests_fraction: float = 1.0,
    **overrides: Any,
) -> list[CalibrationResult]:
    """Simulate every row with the default (or overridden) efficiency factors."""
    return [simulate_row(r, requests_fraction=requests_fraction, **overrides) for r in rows]


#: The grid :func:`fit` searched for the defaults (a coarser one, 0.7–0.85 × 0.45–0.6 × 1–3 ms ×
#: 0–10 µs, came first; this is its refinement around the best point).
FIT_GRID: dict[str, tuple[float, ...]] = {
    "bandwidth_efficiency": (0.65, 0.7, 0.72),
    "flops_efficiency": (0.5, 0.55),
    "step_overhead_s": (0.0005, 0.001, 0.0015),
    "sequence_overhead_s": (8e-6, 10e-6, 12e-6),
}


def fit(
    grid: dict[str, tuple[float, ...]] | None = None,
    *,
    rows: tuple[CalibrationRow, ...] = CALIBRATION_ROWS,
    requests_fraction: float = 0.15,
) -> list[tuple[dict[str, float], float]]:
    """Evaluate every point of ``grid``; return ``(settings, largest |error|)``, best first.

    Slow (seconds per point): run it by hand when the roofline or the catalog changes, then
    copy the best point into :mod:`infphys.sim.config`'s defaults.
    """
    import itertools

    g = FIT_GRID if grid is None else grid
    names = list(g)
    out: list[tuple[dict[str, float], float]] = []
    for values in itertools.product(*(g[n] for n in names)):
        point = dict(zip(names, values, strict=True))
        res = calibrate(rows, requests_fraction=requests_fraction, **point)
        out.append((point, max(abs(r.error) for r in res)))
    out.sort(key=lambda x: x[1])
    return out
