"""The roofline: how long one forward step takes, and whether memory or compute bounds it.

One engine step processes some new tokens for some sequences: one token each for decoding
sequences, a chunk of prompt for prefilling ones. Its time is modelled as

    step_s = max(bytes_moved / (bandwidth × bandwidth_efficiency),
                 flops / (peak FLOP/s × flops_efficiency))
             + all-reduce time (tensor parallelism) + step_overhead_s

Bytes moved: the weights read once per step (for MoE, the experts the step's tokens are routed
to, assuming uniform routing), every sequence's cached KV read once, and the new tokens' KV
written. FLOPs: 2 per weight per new token (the input-embedding lookup excluded), plus attention,
4 × heads × head dim per (query, key) pair per layer (QKᵀ and AV). Not modelled: kernel launch
gaps (put them in ``step_overhead_s``), activation traffic, overlap of communication with compute.

The decode "weight-read floor" counts every weight, the input-embedding table included (only a
few rows of it are read; it is 6.5 % of Llama-3.1-8B), to match the figure usually quoted.

Defaults: ``bandwidth_efficiency = 0.8`` (NVIDIA's aiconfigurator scales every GPU's bandwidth
by an empirical 0.8); ``flops_efficiency = 0.7`` (an assumption: large BF16 GEMMs on Hopper
typically reach 60–75 % of the dense peak). Set both to 1 for the pure datasheet roofline.

Worked example: Llama-3.1-8B in BF16 holds 16.06 GB of weights. At batch 1 on an H100 SXM
(3.35 TB/s), with efficiency 1, a decode step cannot take less than 16.06 / 3.35 = 4.79 ms
(3.35 ms on an H200 at 4.8 TB/s): at most 209 tokens/s for one user. Decode turns compute-bound
only when the batch exceeds the ridge point, 989 TFLOP/s / 3.35 TB/s ≈ 295 tokens per step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from infphys._check import (
    fraction,
    non_negative,
    non_negative_int,
    non_negative_ints,
    positive,
    positive_int,
)
from infphys.catalog import BF16, GPUSpec, ModelSpec, Precision, get_gpu, get_model, get_precision

__all__ = [
    "DEFAULT_ALLREDUCE_LATENCY_S",
    "DEFAULT_BANDWIDTH_EFFICIENCY",
    "DEFAULT_FLOPS_EFFICIENCY",
    "DEFAULT_INTERCONNECT_BYTES_PER_S",
    "RooflineModel",
    "StepTime",
    "arithmetic_intensity",
    "decode_step_s",
    "decode_step_time",
    "expected_experts_touched",
    "max_batch_for_itl",
    "prefill_time",
    "ridge_point",
    "step_time",
    "tokens_per_s_ceiling",
]

#: aiconfigurator's empirical scale on datasheet memory bandwidth.
DEFAULT_BANDWIDTH_EFFICIENCY = 0.8
#: Assumed fraction of dense tensor peak reached by large GEMMs.
DEFAULT_FLOPS_EFFICIENCY = 0.7
#: NVLink 4 on H100 SXM: 900 GB/s in both directions together, 450 GB/s each way (datasheet).
DEFAULT_INTERCONNECT_BYTES_PER_S = 450e9
#: Assumed fixed latency of one small all-reduce (kernel launch plus synchronisation).
DEFAULT_ALLREDUCE_LATENCY_S = 5e-6

ModelLike = ModelSpec | str
GPULike = GPUSpec | str
PrecisionLike = Precision | str


def arithmetic_intensity(flops: float, bytes_moved: float) -> float:
    """FLOPs per byte moved.

    >>> arithmetic_intensity(2e9, 1e9)
    2.0
    """
    return non_negative("flops", flops) / positive("bytes_moved", bytes_moved)


def ridge_point(
    gpu: GPULike,
    *,
    fp8: bool = False,
    bandwidth_efficiency: float = 1.0,
    flops_efficiency: float = 1.0,
) -> float:
    """Arithmetic intensity (FLOP/byte) above which a kernel is compute-bound on ``gpu``.

    >>> round(ridge_point("h100"))
    295
    >>> round(ridge_point("h200"))
    206
    """
    g = get_gpu(gpu)
    bw = g.bandwidth_bytes_per_s * fraction("bandwidth_efficiency", bandwidth_efficiency)
    fl = g.flops_per_s(fp8) * fraction("flops_efficiency", flops_efficiency)
    return fl / bw


def expected_experts_touched(model: ModelLike, tokens: float) -> float:
    """Expected routed experts per MoE layer that at least one of ``tokens`` tokens uses.

    Uniform, independent routing of top-k out of E: E × (1 − (1 − k/E)^tokens).

    >>> round(expected_experts_touched("mixtral-8x7b", 1), 3)
    2.0
    >>> round(expected_experts_touched("mixtral-8x7b", 64), 3)
    8.0
    """
    m = get_model(model)
    t = non_negative("tokens", tokens)
    if not m.is_moe:
        return 0.0
    e, k = m.experts, m.experts_active
    return float(e * (1.0 - (1.0 - k / e) ** t))


@dataclass(frozen=True, slots=True)
class StepTime:
    """One step's time and what bounds it (seconds, bytes, FLOPs)."""

    total_s: float
    memory_s: float
    compute_s: float
    comm_s: float
    overhead_s: float
    bytes_moved: float
    flops: float
    new_tokens: int

    @property
    def bound(self) -> str:
        """``memory`` or ``compute``: the larger of the two terms."""
        return "memory" if self.memory_s >= self.compute_s else "compute"

    @property
    def intensity(self) -> float:
        """Arithmetic intensity of the step, FLOP/byte."""
        return self.flops / self.bytes_moved if self.bytes_moved else math.inf


@dataclass(frozen=True)
class RooflineModel:
    """A GPU, a model and the efficiency knobs, with per-token constants precomputed.

    Build one and call :meth:`step` many times (the simulator prices every engine step this
    way); the module-level functions build one per call.
    """

    gpu: GPUSpec
    model: ModelSpec
    weights_precision: Precision = BF16
    kv_precision: Precision = BF16
    tp: int = 1
    bandwidth_efficiency: float = DEFAULT_BANDWIDTH_EFFICIENCY
    flops_efficiency: float = DEFAULT_FLOPS_EFFICIENCY
    step_overhead_s: float = 0.0
    interconnect_bytes_per_s: float = DEFAULT_INTERCONNECT_BYTES_PER_S
    allreduce_latency_s: float = DEFAULT_ALLREDUCE_LATENCY_S

    @classmethod
    def build(
        cls,
        gpu: GPULike,
        model: ModelLike,
        *,
        weights_precision: PrecisionLike = BF16,
        kv_precision: PrecisionLike = BF16,
        tp: int = 1,
        bandwidth_efficiency: float = DEFAULT_BANDWIDTH_EFFICIENCY,
        flops_efficiency: float = DEFAULT_FLOPS_EFFICIENCY,
        step_overhead_s: float = 0.0,
        interconnect_bytes_per_s: float = DEFAULT_INTERCONNECT_BYTES_PER_S,
        allreduce_latency_s: float = DEFAULT_ALLREDUCE_LATENCY_S,
    ) -> RooflineModel:
        """Validate the inputs (``ValueError`` naming the argument) and build the model."""
        return cls(
            gpu=get_gpu(gpu),
            model=get_model(model),
            weights_precision=get_precision(weights_precision),
            kv_precision=get_precision(kv_precision),
            tp=positive_int("tp", tp),
            bandwidth_efficiency=fraction("bandwidth_efficiency", bandwidth_efficiency),
            flops_efficiency=fraction("flops_efficiency", flops_efficiency),
            step_overhead_s=non_negative("step_overhead_s", step_overhead_s),
            interconnect_bytes_per_s=positive("interconnect_bytes_per_s", interconnect_bytes_per_s),
            allreduce_latency_s=non_negative("allreduce_latency_s", allreduce_latency_s),
        )

    # --- constants -----------------------------------------------------------------------
    @cached_property
    def bandwidth_bytes_per_s(self) -> float:
        """Achievable bandwidth of one GPU."""
        return self.gpu.bandwidth_bytes_per_s * self.bandwidth_efficiency

    @cached_property
    def flops_per_s(self) -> float:
        """Achievable FLOP/s of one GPU (FP8 math when the weights are FP8 and the chip has it)."""
        fp8 = self.weights_precision.has_fp8_math and self.gpu.has_fp8
        return self.gpu.flops_per_s(fp8) * self.flops_efficiency

    @cached_property
    def kv_bytes_per_token_per_layer(self) -> float:
        m, p = self.model, self.kv_precision
        if m.is_mla:
            assert m.kv_lora_rank is not None and m.qk_rope_head_dim is not None
            return (m.kv_lora_rank + m.qk_rope_head_dim) * p.bytes_per_element
        return 2 * m.kv_heads * m.head_dim * p.bytes_per_element

    @cached_property
    def _weight_split_bytes(self) -> tuple[float, float]:
        """(bytes read every step, bytes of one routed expert across all MoE layers)."""
        m, b = self.model, self.weights_precision.bytes_per_element
        if not m.is_moe:
            return m.params_total * b, 0.0
        per_expert_all_layers = m.params_per_expert * m.moe_layers
        always = m.params_total - m.experts * per_expert_all_layers
        return always * b, per_expert_all_layers * b

    def weight_bytes_read(self, new_tokens: float) -> float:
        """Weight bytes one step reads for ``new_tokens`` tokens (all GPUs of the group)."""
        always, per_expert = self._weight_split_bytes
        if not per_expert:
            return always
        return always + expected_experts_touched(self.model, max(new_tokens, 1.0)) * per_expert

    @cached_property
    def matmul_flops_per_token(self) -> float:
        """2 FLOPs per active weight, the input-embedding lookup excluded."""
        m = self.model
        embed = 0 if m.tie_embeddings else m.vocab * m.hidden
        return 2.0 * (m.params_active - embed)

    @cached_property
    def attention_flops_per_pair(self) -> float:
        """FLOPs per (query, key) pair on one layer (QKᵀ and AV)."""
        m = self.model
        qk = (m.qk_nope_head_dim or 0) + (m.qk_rope_head_dim or 0) if m.is_mla else m.head_dim
        v = (m.v_head_dim or m.head_dim) if m.is_mla else m.head_dim
        return 2.0 * m.heads * (qk + v)

    # --- pricing -------------------------------------------------------------------------
    def step(
        self,
        *,
        new_tokens: float,
        kv_tokens_read: float,
        attention_pairs: float,
        window_pairs: float = 0.0,
        window_kv_tokens_read: float = 0.0,
    ) -> StepTime:
        """Price one step from totals over its sequences (fast path for the simulator).

        Args:
            new_tokens: tokens processed this step, all sequences together.
            kv_tokens_read: cached tokens whose KV is read, summed over sequences, on the
                full-attention layers.
            attention_pairs: (query, key) pairs on a full-attention layer, summed over
                sequences: a sequence appending n tokens to c cached ones has n·c + n(n+1)/2.
            window_pairs: (query, key) pairs on one sliding-window layer (keys capped at the
                window), summed over sequences.
            window_kv_tokens_read: cached tokens read on one sliding-window layer (at most the
                window per sequence), summed over sequences.
        """
        m = self.model
        per_layer_kv = self.kv_bytes_per_token_per_layer
        full, windowed = m.full_attention_layers, m.sliding_window_layers
        kv_read = per_layer_kv * (full * kv_tokens_read + windowed * window_kv_tokens_read)
        kv_written = per_layer_kv * m.layers * new_tokens
        bytes_moved = self.weight_bytes_read(new_tokens) + kv_read + kv_written
        flops = self.matmul_flops_per_token * new_tokens + self.attention_flops_per_pair * (
            full * attention_pairs + windowed * window_pairs
        )
        memory_s = bytes_moved / self.tp / self.bandwidth_bytes_per_s
        compute_s = flops / self.tp / self.flops_per_s
        comm_s = 0.0
        if self.tp > 1:
            # Two all-reduces per layer of the step's activations (BF16), ring algorithm.
            size = new_tokens * m.hidden * 2.0
            ring = 2.0 * (self.tp - 1) / self.tp * size / self.interconnect_bytes_per_s
            comm_s = 2 * m.layers * (ring + self.allreduce_latency_s)
        total = max(memory_s, compute_s) + comm_s + self.step_overhead_s
        return StepTime(
            total_s=total,
            memory_s=memory_s,
            compute_s=compute_s,
            comm_s=comm_s,
            overhead_s=self.step_overhead_s,
            bytes_moved=bytes_moved,
            flops=flops,
            new_tokens=int(new_tokens),
        )

    def step_for(self, new_tokens: Sequence[int], context_tokens: Sequence[int]) -> StepTime:
        """Price a step from per-sequence new tokens and already-cached context."""
        news = non_negative_ints("new_tokens", new_tokens)
        ctxs = non_negative_ints("context_tokens", context_tokens)
        if len(news) != len(ctxs):
            raise ValueError(
                f"new_tokens and context_tokens must have the same length "
                f"(got {len(news)} and {len(ctxs)})"
            )
        w = self.model.sliding_window or 0
        pairs = wpairs = wread = 0.0
        for n, c in zip(news, ctxs, strict=True):
            pairs += n * c + n * (n + 1) / 2
            if w:
                wread += min(c, w)
                wpairs += n * min(c + n, w)
        return self.step(
            new_tokens=sum(news),
            kv_tokens_read=sum(ctxs),
            attention_pairs=pairs,
            window_pairs=wpairs,
            window_kv_tokens_read=wread,
        )


def step_time(
    gpu: GPULike,
    model: ModelLike,
    new_tokens: Sequence[int],
    context_tokens: Sequence[int],
    **knobs: object,
) -> StepTime:
    """Time of one step in which sequence i appends ``new_tokens[i]`` tokens to
    ``context_tokens[i]`` cached ones. ``knobs`` are :meth:`RooflineModel.build`'s keywords."""
    return RooflineModel.build(gpu, model, **knobs).step_for(new_tokens, context_tokens)  # type: ignore[arg-type]


def decode_step_time(
    gpu: GPULike,
    model: ModelLike,
    batch: int,
    context_tokens: int,
    **knobs: object,
) -> StepTime:
    """One decode step for ``batch`` sequences, each with ``context_tokens`` already cached.

    >>> step = decode_step_time("h100", "llama-3.1-8b", 1, 0, bandwidth_efficiency=1)
    >>> round(step.total_s * 1e3, 2)
    4.79
    """
    b = positive_int("batch", batch)
    c = non_negative_int("context_tokens", context_tokens)
    return step_time(gpu, model, [1] * b, [c] * b, **knobs)


def decode_step_s(
    gpu: GPULike, model: ModelLike, batch: int, context_tokens: int, **knobs: object
) -> float:
    """Seconds of one decode step (see :func:`decode_step_time`)."""
    return decode_step_time(gpu, model, batch, context_tokens, **knobs).total_s


def prefill_time(gpu: GPULike, model: ModelLike, prompt_tokens: int, **knobs: object) -> StepTime:
    """Prefill of one prompt of ``prompt_tokens`` tokens in one step (compute-bound when long).

    Llama-3.1-8B, 1,000 tokens on an H100 SXM at 70 % of 989 TFLOP/s: 2 × 7.5 B × 1,000 FLOPs
    plus attention take about 22 ms.
    """
    n = positive_int("prompt_tokens", prompt_tokens)
    return step_time(gpu, model, [n], [0], **knobs)


def tokens_per_s_ceiling(
    gpu: GPULike, model: ModelLike, batch: int, context_tokens: int, **knobs: object
) -> tuple[float, float]:
    """Decode ceilings ``(per_sequence_tokens_per_s, total_tokens_per_s)`` at ``batch``.

    >>> per_seq, total = tokens_per_s_ceiling("h200", "llama-3.1-8b", 1, 0, bandwidth_efficiency=1)
    >>> round(per_seq)
    299
    """
    step = decode_step_s(gpu, model, batch, context_tokens, **knobs)
    return 1.0 / step, batch / step


def max_batch_for_itl(
    gpu: GPULike,
    model: ModelLike,
    context_tokens: int,
    itl_s: float,
    *,
    max_batch: int = 1 << 16,
    **knobs: object,
) -> int:
    """The largest decode batch whose step time stays within ``itl_s`` (0 if even 1 is slower).

    Step time grows with the batch, so a bisection finds the edge. The caller caps the result
    by what fits in the KV cache (:func:`infphys.physics.max_concurrent_sequences`).

    Worked example: Llama-3.1-8B on an H100 SXM at the default efficiencies, 2,048 cached
    tokens per sequence: batch 1 takes 6.1 ms per token, and a 20 ms per-token objective admits
    139 sequences (the KV budget of one H100 holds only about 200 such sequences).

    >>> max_batch_for_itl("h100", "llama-3.1-8b", 2048, 0.020)
    139
    """
    limit = positive("itl_s", itl_s)
    c = non_negative_int("context_tokens", context_tokens)
    top = positive_int("max_batch", max_batch)
    m = RooflineModel.build(gpu, model, **knobs)  # type: ignore[arg-type]
    w = m.model.sliding_window or 0

    def step_s(b: int) -> float:
        # b sequences each appending 1 token to c cached ones: c + 1 (query, key) pairs each.
        return m.step(
            new_tokens=b,
            kv_tokens_read=b * c,
            attention_pairs=b * (c + 1),
            window_pairs=b * min(c + 1, w),
            window_kv_tokens_read=b * min(c, w),
        ).total_s

    if step_s(1) > limit:
        return 0
    lo, hi = 1, top
    if step_s(hi) <= limit:
        return hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if step_s(mid) <= limit:
            lo = mid
        else:
            hi = mid
    return lo
