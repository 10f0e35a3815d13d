"""The step model's parameters: what fraction of the datasheet a GPU reaches, and fixed costs.

One engine step (prefill chunks and decode tokens of every scheduled sequence, one forward
pass) is priced by :mod:`infphys.physics.roofline` from bytes, FLOPs and these parameters. Every
parameter means one physical thing and stays in a plausible range; none is per model, per GPU or
per row:

- ``weight_bandwidth_efficiency`` / ``fp8_weight_bandwidth_efficiency``: fraction of the
  datasheet memory bandwidth that the weight-streaming matrix products reach with 16-bit and
  with FP8 weights (FP8's small-batch kernels stream less well);
- ``kv_bandwidth_efficiency``: the same for attention kernels reading the KV cache, reached when
  the kernel has many (sequence, KV head) blocks to spread over the chip; with P blocks per GPU
  it reaches ``efficiency × P / (P + attention_half_efficiency_blocks)`` (one long sequence on a
  GQA model has only 8 blocks);
- ``gemm_flops_efficiency`` / ``fp8_gemm_flops_efficiency``: fraction of the dense tensor peak
  that large matrix products reach; a product over M tokens reaches
  ``efficiency × M / (M + gemm_half_efficiency_tokens)`` (small M cannot fill the chip; a
  routed expert's product has only the tokens routed to it); the
  two efficiencies are Hopper's (and any chip's without its own figure), and
  ``ampere_gemm_flops_efficiency`` / ``ada_gemm_flops_efficiency`` replace the 16-bit one on
  those generations (A100s reach a larger share of their smaller peak; FP8 scales alike);
- ``attention_flops_efficiency``: fraction of the 16-bit peak reached by prefill attention;
- ``roofline_sharpness``: p of the smooth maximum (aᵖ + bᵖ)^(1/p) between a matrix product's
  weight-read time and its compute time (∞ is the textbook hard roofline; near the ridge, real
  kernels are slower than either bound alone);
- ``step_overhead_s``, ``layer_overhead_s``, ``sequence_overhead_s``: fixed time per step
  (scheduling, sampling set-up), per layer per step (kernel launches and the small kernels the
  byte counts miss: norms, rotary, activations) and per scheduled sequence (sampling, logits,
  attention-kernel set-up);
- ``allreduce_latency_s`` and ``allreduce_bandwidth_efficiency``: each tensor-parallel
  all-reduce (two per layer; one where attention and MLP run in parallel and are summed first,
  as in Falcon and GPT-J) costs this fixed latency (kernel launch and synchronisation of the
  group; TensorRT-LLM's one-shot all-reduce for small messages reads every peer's buffer in one
  step, so it does not grow with the group) and moves 2(tp − 1)/tp of the activations, as a
  ring does, at this fraction of the GPU's link bandwidth
  (:meth:`infphys.catalog.GPUSpec.all_reduce_bytes_per_s`).

:data:`FITTED_STEP_PARAMS` were fitted (``infphys.sim.fit.fit_step_params``) to the measured
step times shipped in ``infphys/catalog/data``: every measured row of the TensorRT-LLM 0.9
static-batch table (time to first token and token-to-token time per model, GPU, precision, TP
and batch) and the single-client rows of the NIM table (a lone request's TTFT and ITL are one
prefill and one decode step of NIM's own engine), each table with half the weight, by robust
least squares on log(simulated / measured). :data:`FIT_SUMMARY` keeps the residuals on the
static table. :data:`NIM_FRONTEND_LATENCY_S`, fitted alongside, is the time a request spends in
NIM before its prefill starts (HTTP, tokenising): it adds to TTFT, not to the GPU.
:data:`IDEAL_STEP_PARAMS` is the textbook roofline: datasheet bandwidth and FLOP/s, a hard
maximum, no fixed costs; use it for floors ("a step cannot take less than").

Worked example (Llama-3.1-8B BF16, one H100 SXM, batch 1, nothing cached): the weights less the
input-embedding table are 15.0 GB; at the ideal roofline that is 15.0 GB / 3.35 TB/s = 4.48 ms.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

__all__ = [
    "FITTED_STEP_PARAMS",
    "FIT_SUMMARY",
    "IDEAL_STEP_PARAMS",
    "NIM_FRONTEND_LATENCY_S",
    "StepFitSummary",
    "StepParams",
]

_FRACTIONS = (
    "weight_bandwidth_efficiency",
    "fp8_weight_bandwidth_efficiency",
    "kv_bandwidth_efficiency",
    "gemm_flops_efficiency",
    "fp8_gemm_flops_efficiency",
    "ampere_gemm_flops_efficiency",
    "ada_gemm_flops_efficiency",
    "attention_flops_efficiency",
    "allreduce_bandwidth_efficiency",
)
_NON_NEGATIVE = (
    "gemm_half_efficiency_tokens",
    "attention_half_efficiency_blocks",
    "step_overhead_s",
    "layer_overhead_s",
    "sequence_overhead_s",
    "allreduce_latency_s",
)


@dataclass(frozen=True, slots=True)
class StepParams:
    """The step model's efficiencies and fixed costs (see the module docstring)."""

    weight_bandwidth_efficiency: float
    fp8_weight_bandwidth_efficiency: float
    kv_bandwidth_efficiency: float
    gemm_flops_efficiency: float
    fp8_gemm_flops_efficiency: float
    gemm_half_efficiency_tokens: float
    ampere_gemm_flops_efficiency: float
    ada_gemm_flops_efficiency: float
    attention_half_efficiency_blocks: float
    attention_flops_efficiency: float
    roofline_sharpness: float
    step_overhead_s: float
    layer_overhead_s: float
    sequence_overhead_s: float
    allreduce_latency_s: float
    allreduce_bandwidth_efficiency: float

    def __post_init__(self) -> None:
        for name in _FRACTIONS:
            v = getattr(self, name)
            if not (isinstance(v, int | float) and 0 < v <= 1):
                raise ValueError(f"{name} must be in (0, 1] (got {v!r})")
        for name in _NON_NEGATIVE:
            v = getattr(self, name)
            if not (isinstance(v, int | float) and v >= 0 and math.isfinite(v)):
                raise ValueError(f"{name} must be a finite number >= 0 (got {v!r})")
        p = self.roofline_sharpness
        if not (isinstance(p, int | float) and p >= 1):
            raise ValueError(f"roofline_sharpness must be >= 1 (math.inf: hard max) (got {p!r})")

    def with_(self, **changes: Any) -> StepParams:
        """A copy with some parameters changed (validated again).

        ``bandwidth_efficiency`` sets all three bandwidth fractions and ``flops_efficiency``
        all three FLOP/s fractions, for what-if questions ("at 100 % of the datasheet?").
        """
        bw = changes.pop("bandwidth_efficiency", None)
        if bw is not None:
            for name in ("weight", "fp8_weight", "kv"):
                changes.setdefault(f"{name}_bandwidth_efficiency", bw)
        fl = changes.pop("flops_efficiency", None)
        if fl is not None:
            for name in ("gemm", "fp8_gemm", "ampere_gemm", "ada_gemm", "attention"):
                changes.setdefault(f"{name}_flops_efficiency", fl)
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(
                f"changes: unknown step parameter {unknown[0]!r} "
                f"(known: {', '.join(sorted(known))})"
            )
        return replace(self, **changes)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


#: The textbook roofline: datasheet figures (every efficiency 1), a hard maximum (sharpness ∞),
#: no fixed costs (every overhead, latency and half-efficiency size 0).
IDEAL_STEP_PARAMS = StepParams(
    **dict.fromkeys(_FRACTIONS, 1.0),
    **dict.fromkeys(_NON_NEGATIVE, 0.0),
    roofline_sharpness=math.inf,
)


@dataclass(frozen=True, slots=True)
class StepFitSummary:
    """Where :data:`FITTED_STEP_PARAMS` come from and how well they fit.

    Attributes:
        source: the data set fitted to.
        rows: measured rows used (each gives a first-token and, where recorded, a
            token-to-token time).
        median_abs_error_first_token, median_abs_error_token_to_token: over those rows,
            |simulated / measured − 1|.
        p90_abs_error_first_token, p90_abs_error_token_to_token: 90th percentiles of the same.
        method: how the fit was done.
    """

    source: str
    rows: int
    median_abs_error_first_token: float
    median_abs_error_token_to_token: float
    p90_abs_error_first_token: float
    p90_abs_error_token_to_token: float
    method: str


# Fitted values: written by ``python -m infphys.sim.fit --write`` (see infphys/sim/fit.py).
# --- BEGIN FITTED ---
FITTED_STEP_PARAMS = StepParams(
    weight_bandwidth_efficiency=0.9430638,
    fp8_weight_bandwidth_efficiency=0.8499072,
    kv_bandwidth_efficiency=0.972715,
    gemm_flops_efficiency=0.6088245,
    fp8_gemm_flops_efficiency=0.5872911,
    gemm_half_efficiency_tokens=150.1044,
    ampere_gemm_flops_efficiency=0.7640158,
    ada_gemm_flops_efficiency=0.6366388,
    attention_half_efficiency_blocks=46.42664,
    attention_flops_efficiency=0.3898054,
    roofline_sharpness=15.82315,
    step_overhead_s=0.0,
    layer_overhead_s=6.663601e-05,
    sequence_overhead_s=1.313472e-05,
    allreduce_latency_s=1.630516e-05,
    allreduce_bandwidth_efficiency=0.4976505,
)
FIT_SUMMARY = StepFitSummary(
    source=(
        "infphys/catalog/data/trtllm_0.9_static_batch.csv and the single-client rows of "
        "nim_llama3_serving.csv (MEASURED_SOURCES)"
    ),
    rows=2926,
    median_abs_error_first_token=0.0909,
    median_abs_error_token_to_token=0.0743,
    p90_abs_error_first_token=0.2345,
    p90_abs_error_token_to_token=0.2557,
    method="least squares, soft-L1 loss, log ratios",
)
NIM_FRONTEND_LATENCY_S = 0.003993919
# --- END FITTED ---
