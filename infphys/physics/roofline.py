"""The step model: how long one forward step takes, and what bounds it.

One engine step processes some new tokens for some sequences: one token each for decoding
sequences, a chunk of prompt for prefilling ones. Per GPU of a tensor-parallel group of ``tp``:

    step_s = gemm_s + attention_s + comm_s + overhead_s
    gemm_s      = smooth_max(weight_bytes / tp / (bandwidth × e_w),
                             gemm_flops / tp / (peak × e_f × M / (M + M½)))
    attention_s = max(kv_bytes / tp / (bandwidth × e_kv), attention_flops / tp / (peak16 × e_a))
    comm_s      = n_ar × layers × (latency + ring bytes / (link × e_link))
    overhead_s  = step + layers × per-layer + sequences × per-sequence

The matrix products (weights) and attention run one after the other in every layer, so their
times add; each is bounded by its own bytes or FLOPs. Weight bytes: every weight once per step
(for MoE, the experts the step's tokens are routed to; uniform routing by default) except the
input-embedding table, of which a step reads only one row per new token. KV bytes: every
scheduled sequence's cached KV read once, the new tokens' KV written (KV heads are split over
the group; with fewer KV heads than GPUs, copies are read). FLOPs: 2 per weight per new token
(the embedding lookup excluded) and 4 × heads × head dim per (query, key) pair per layer. A
routed expert's product sees only its tokens, M·k/touched of a step's M (Mixtral prefilling 64
tokens with uniform routing: 16 per expert), and reaches the efficiency of that M. The
all-reduce moves the step's activations (16-bit, ``new_tokens × hidden``) twice per layer (once
where attention and MLP run in parallel and their outputs are summed first) in a ring over the
GPU's link (:meth:`infphys.catalog.GPUSpec.all_reduce_bytes_per_s`).

The efficiencies and fixed costs are one set, :data:`infphys.catalog.FITTED_STEP_PARAMS`,
fitted to measured TensorRT-LLM step times; the simulator, the chapters, the labs and the CLI
all price steps with it. :data:`infphys.catalog.IDEAL_STEP_PARAMS` is the textbook roofline
(datasheet figures, hard maximum, no fixed costs): use it for floors.

Worked example: Llama-3.1-8B in BF16 is 16.06 GB of weights, 1.05 GB of them the input
embedding table. At batch 1 on an H100 SXM (3.35 TB/s) with the ideal parameters, a decode
step cannot take less than 15.01 GB / 3.35 TB/s = 4.48 ms (3.13 ms on an H200 at 4.8 TB/s):
at most 223 tokens/s for one user. Decode turns compute-bound only when the batch exceeds the
ridge point, 989 TFLOP/s / 3.35 TB/s ≈ 295 tokens per step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from infphys._check import (
    fraction,
    non_negative,
    non_negative_int,
    non_negative_ints,
    positive,
    positive_int,
)
from infphys.catalog import (
    BF16,
    FITTED_STEP_PARAMS,
    IDEAL_STEP_PARAMS,
    GPUSpec,
    ModelSpec,
    Precision,
    StepParams,
    get_gpu,
    get_model,
    get_precision,
)
from infphys.physics._step import StepConstants, price_step
from infphys.physics.memory import kv_copies

__all__ = [
    "MoERouting",
    "RooflineModel",
    "StepConstants",
    "StepTime",
    "arithmetic_intensity",
    "decode_floor_s",
    "decode_step_s",
    "decode_step_time",
    "decode_weight_bytes",
    "expected_experts_touched",
    "max_batch_for_itl",
    "prefill_time",
    "price_step",
    "ridge_point",
    "step_time",
    "tokens_per_s_ceiling",
]

ModelLike = ModelSpec | str
GPULike = GPUSpec | str
PrecisionLike = Precision | str
#: How an MoE model's tokens pick experts: ``uniform`` (independent, even; real weights under
#: varied prompts) or ``same_experts`` (every token the same top-k, as random "fake" weights
#: route in benchmarks that use them).
MoERouting = Literal["uniform", "same_experts"]


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


def expected_experts_touched(
    model: ModelLike, tokens: float, routing: MoERouting = "uniform"
) -> float:
    """Expected routed experts per MoE layer that at least one of ``tokens`` tokens uses.

    Uniform, independent routing of top-k out of E: E × (1 − (1 − k/E)^tokens); with
    ``same_experts`` routing, k.

    >>> round(expected_experts_touched("mixtral-8x7b", 1), 3)
    2.0
    >>> round(expected_experts_touched("mixtral-8x7b", 64), 3)
    8.0
    """
    m = get_model(model)
    t = non_negative("tokens", tokens)
    if not m.is_moe:
        return 0.0
    if routing == "same_experts":
        return float(m.experts_active) if t > 0 else 0.0
    e, k = m.experts, m.experts_active
    return float(e * (1.0 - (1.0 - k / e) ** t))


@dataclass(frozen=True, slots=True)
class StepTime:
    """One step's time, its parts and what bounds it (seconds, bytes, FLOPs; per GPU times).

    ``memory_s`` is the time the step's bytes take (weights and KV), ``compute_s`` the time its
    FLOPs take, each at the achieved rates; ``gemm_s`` and ``attention_s`` are the two phases
    whose sum (with ``comm_s`` and ``overhead_s``) is ``total_s``.
    """

    total_s: float
    memory_s: float
    compute_s: float
    comm_s: float
    overhead_s: float
    bytes_moved: float
    flops: float
    new_tokens: int
    gemm_s: float = 0.0
    attention_s: float = 0.0
    attention_memory_s: float = 0.0
    attention_compute_s: float = 0.0

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
    """A GPU, a model, precisions, TP degree and step parameters, with constants precomputed.

    Build one and call :meth:`step` many times (the simulator prices every engine step this
    way); the module-level functions build one per call.
    """

    gpu: GPUSpec
    model: ModelSpec
    weights_precision: Precision = BF16
    kv_precision: Precision = BF16
    tp: int = 1
    params: StepParams = FITTED_STEP_PARAMS
    moe_routing: MoERouting = "uniform"
    interconnect_bytes_per_s: float | None = None

    @classmethod
    def build(
        cls,
        gpu: GPULike,
        model: ModelLike,
        *,
        weights_precision: PrecisionLike = BF16,
        kv_precision: PrecisionLike = BF16,
        tp: int = 1,
        params: StepParams | None = None,
        moe_routing: MoERouting = "uniform",
        interconnect_bytes_per_s: float | None = None,
        **overrides: float,
    ) -> RooflineModel:
        """Validate the inputs (``ValueError`` naming the argument) and build the model.

        ``params`` defaults to the fitted set; ``overrides`` change single parameters of it
        (any :class:`~infphys.catalog.StepParams` field, or ``bandwidth_efficiency`` /
        ``flops_efficiency`` for all of a kind).
        """
        if params is not None and not isinstance(params, StepParams):
            raise ValueError(f"params must be a StepParams (got {params!r})")
        base = FITTED_STEP_PARAMS if params is None else params
        if moe_routing not in ("uniform", "same_experts"):
            raise ValueError(
                f"moe_routing must be 'uniform' or 'same_experts' (got {moe_routing!r})"
            )
        return cls(
            gpu=get_gpu(gpu),
            model=get_model(model),
            weights_precision=get_precision(weights_precision),
            kv_precision=get_precision(kv_precision),
            tp=positive_int("tp", tp),
            params=base.with_(**overrides) if overrides else base,
            moe_routing=moe_routing,
            interconnect_bytes_per_s=(
                None
                if interconnect_bytes_per_s is None
                else positive("interconnect_bytes_per_s", interconnect_bytes_per_s)
            ),
        )

    # --- constants -----------------------------------------------------------------------
    @cached_property
    def fp8_math(self) -> bool:
        """True when the weights are FP8 and the chip computes in FP8."""
        return self.weights_precision.has_fp8_math and self.gpu.has_fp8

    @cached_property
    def gemm_flops_efficiency(self) -> float:
        """Share of the dense peak large matrix products reach here (precision, generation)."""
        p = self.params
        eff = p.fp8_gemm_flops_efficiency if self.fp8_math else p.gemm_flops_efficiency
        arch = {"ampere": p.ampere_gemm_flops_efficiency, "ada": p.ada_gemm_flops_efficiency}
        own = arch.get(self.gpu.architecture)
        return eff * own / p.gemm_flops_efficiency if own is not None else eff

    @cached_property
    def flops_per_s(self) -> float:
        """Achievable FLOP/s of one GPU on large matrix products (FP8 math where it applies)."""
        return self.gpu.flops_per_s(self.fp8_math) * self.gemm_flops_efficiency

    @cached_property
    def bandwidth_bytes_per_s(self) -> float:
        """Achievable bandwidth of one GPU streaming the weights."""
        p = self.params
        eff = p.fp8_weight_bandwidth_efficiency if self.fp8_math else p.weight_bandwidth_efficiency
        return self.gpu.bandwidth_bytes_per_s * eff

    @cached_property
    def kv_bytes_per_token_per_layer(self) -> float:
        m, p = self.model, self.kv_precision
        if m.is_mla:
            assert m.kv_lora_rank is not None and m.qk_rope_head_dim is not None
            return (m.kv_lora_rank + m.qk_rope_head_dim) * p.bytes_per_element
        return 2 * m.kv_heads * m.head_dim * p.bytes_per_element

    @cached_property
    def _embed_params(self) -> int:
        m = self.model
        return 0 if m.tie_embeddings else m.vocab * m.hidden

    @cached_property
    def _weight_split_bytes(self) -> tuple[float, float]:
        """(bytes read every step less the embedding table, bytes of one routed expert)."""
        m, b = self.model, self.weights_precision.bytes_per_element
        always = m.params_total - self._embed_params
        if not m.is_moe:
            return always * b, 0.0
        per_expert_all_layers = m.params_per_expert * m.moe_layers
        return (always - m.experts * per_expert_all_layers) * b, per_expert_all_layers * b

    def weight_bytes_read(self, new_tokens: float) -> float:
        """Weight bytes one step reads for ``new_tokens`` tokens (all GPUs of the group)."""
        always, per_expert = self._weight_split_bytes
        rows = max(new_tokens, 1.0) * self.model.hidden * self.weights_precision.bytes_per_element
        rows *= 1 if self._embed_params else 0
        if not per_expert:
            return always + rows
        touched = expected_experts_touched(self.model, max(new_tokens, 1.0), self.moe_routing)
        return always + touched * per_expert + rows

    @cached_property
    def matmul_flops_per_token(self) -> float:
        """2 FLOPs per active weight, the input-embedding lookup excluded."""
        return 2.0 * (self.model.params_active - self._embed_params)

    @cached_property
    def attention_flops_per_pair(self) -> float:
        """FLOPs per (query, key) pair on one layer (QKᵀ and AV)."""
        m = self.model
        qk = (m.qk_nope_head_dim or 0) + (m.qk_rope_head_dim or 0) if m.is_mla else m.head_dim
        v = (m.v_head_dim or m.head_dim) if m.is_mla else m.head_dim
        return 2.0 * m.heads * (qk + v)

    @cached_property
    def kv_copies(self) -> float:
        """How many GPUs of the group read a copy of each KV entry (see :func:`kv_copies`)."""
        return kv_copies(self.model, self.tp)

    @cached_property
    def link_bytes_per_s(self) -> float:
        """Per-direction link bandwidth the group's all-reduces use."""
        if self.interconnect_bytes_per_s is not None:
            return self.interconnect_bytes_per_s
        return self.gpu.all_reduce_bytes_per_s(self.tp) if self.tp > 1 else 1.0

    @cached_property
    def constants(self) -> StepConstants:
        """The figures :func:`price_step` needs."""
        m, g = self.model, self.gpu
        always, per_expert = self._weight_split_bytes
        b_w = self.weights_precision.bytes_per_element
        return StepConstants(
            bandwidth_bytes_per_s=g.bandwidth_bytes_per_s,
            gemm_flops_per_s=g.flops_per_s(self.fp8_math),
            attention_flops_per_s=g.flops_per_s(False),
            fp8_weights=1.0 if self.fp8_math else 0.0,
            tp=float(self.tp),
            layers=float(m.layers),
            full_layers=float(m.full_attention_layers),
            windowed_layers=float(m.sliding_window_layers),
            hidden=float(m.hidden),
            weight_always_bytes=always,
            expert_bytes=per_expert,
            experts=float(m.experts or 1),
            experts_active=float(m.experts_active or 1),
            same_experts=1.0 if self.moe_routing == "same_experts" else 0.0,
            embed_row_bytes=(m.hidden * self.weights_precision.bytes_per_element)
            if self._embed_params
            else 0.0,
            kv_bytes_per_token_per_layer=self.kv_bytes_per_token_per_layer,
            kv_copies=self.kv_copies,
            matmul_flops_per_token=self.matmul_flops_per_token,
            expert_flops_per_token=2.0 * (m.experts_active or 0) * per_expert / b_w,
            attention_flops_per_pair=self.attention_flops_per_pair,
            link_bytes_per_s=self.link_bytes_per_s,
            allreduces_per_layer=1.0 if m.parallel_attention else 2.0,
            arch_ampere=1.0 if self.gpu.architecture == "ampere" else 0.0,
            arch_ada=1.0 if self.gpu.architecture == "ada" else 0.0,
            kv_heads_per_gpu=max(1.0, m.kv_heads / self.tp) if not m.is_mla else float(m.heads),
        )

    # --- pricing -------------------------------------------------------------------------
    def step(
        self,
        *,
        new_tokens: float,
        kv_tokens_read: float,
        attention_pairs: float,
        window_pairs: float = 0.0,
        window_kv_tokens_read: float = 0.0,
        sequences: float = 0.0,
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
            sequences: sequences scheduled in the step (each costs ``sequence_overhead_s``).
        """
        r = price_step(
            self.constants,
            self.params,
            new_tokens=new_tokens,
            kv_tokens_read=kv_tokens_read,
            attention_pairs=attention_pairs,
            window_pairs=window_pairs,
            window_kv_tokens_read=window_kv_tokens_read,
            sequences=sequences,
        )
        attention_s = max(r.attention_memory_s, r.attention_compute_s)
        return StepTime(
            total_s=float(r.gemm_s + attention_s + r.comm_s + r.overhead_s),
            memory_s=float(r.weight_read_s + r.attention_memory_s),
            compute_s=float(r.gemm_compute_s + r.attention_compute_s),
            comm_s=float(r.comm_s),
            overhead_s=float(r.overhead_s),
            bytes_moved=float(r.bytes_moved),
            flops=float(r.flops),
            new_tokens=int(new_tokens),
            gemm_s=float(r.gemm_s),
            attention_s=float(attention_s),
            attention_memory_s=float(r.attention_memory_s),
            attention_compute_s=float(r.attention_compute_s),
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
            sequences=sum(1 for n in news if n > 0),
        )


def step_time(
    gpu: GPULike,
    model: ModelLike,
    new_tokens: Sequence[int],
    context_tokens: Sequence[int],
    **knobs: Any,
) -> StepTime:
    """Time of one step in which sequence i appends ``new_tokens[i]`` tokens to
    ``context_tokens[i]`` cached ones. ``knobs`` are :meth:`RooflineModel.build`'s keywords."""
    return RooflineModel.build(gpu, model, **knobs).step_for(new_tokens, context_tokens)


def decode_step_time(
    gpu: GPULike,
    model: ModelLike,
    batch: int,
    context_tokens: int,
    **knobs: Any,
) -> StepTime:
    """One decode step for ``batch`` sequences, each with ``context_tokens`` already cached.

    >>> step = decode_step_time("h100", "llama-3.1-8b", 1, 0, params=IDEAL_STEP_PARAMS)
    >>> round(step.total_s * 1e3, 2)
    4.48
    """
    b = positive_int("batch", batch)
    c = non_negative_int("context_tokens", context_tokens)
    return step_time(gpu, model, [1] * b, [c] * b, **knobs)


def decode_step_s(
    gpu: GPULike, model: ModelLike, batch: int, context_tokens: int, **knobs: Any
) -> float:
    """Seconds of one decode step (see :func:`decode_step_time`)."""
    return decode_step_time(gpu, model, batch, context_tokens, **knobs).total_s


def decode_weight_bytes(
    model: ModelLike, weights_precision: PrecisionLike = BF16, new_tokens: int = 1
) -> float:
    """Weight bytes one decode step reads: every weight but the input-embedding table, of which
    it reads one row per new token (the whole table when it is tied to the LM head).

    >>> round(decode_weight_bytes("llama-3.1-8b") / 1e9, 2)   # 16.06 − 1.05 GB
    15.01
    """
    m = RooflineModel.build("h100", model, weights_precision=weights_precision)
    return m.weight_bytes_read(positive_int("new_tokens", new_tokens))


def decode_floor_s(
    gpu: GPULike, model: ModelLike, batch: int = 1, context_tokens: int = 0, **knobs: Any
) -> float:
    """The least a decode step can take: the ideal roofline (datasheet bandwidth, no overhead).

    >>> round(decode_floor_s("h200", "llama-3.1-8b") * 1e3, 2)   # 15.01 GB / 4.8 TB/s
    3.13
    """
    return decode_step_s(gpu, model, batch, context_tokens, params=IDEAL_STEP_PARAMS, **knobs)


def prefill_time(gpu: GPULike, model: ModelLike, prompt_tokens: int, **knobs: Any) -> StepTime:
    """Prefill of one prompt of ``prompt_tokens`` tokens in one step (compute-bound when long)."""
    n = positive_int("prompt_tokens", prompt_tokens)
    return step_time(gpu, model, [n], [0], **knobs)


def tokens_per_s_ceiling(
    gpu: GPULike, model: ModelLike, batch: int, context_tokens: int, **knobs: Any
) -> tuple[float, float]:
    """Decode ceilings ``(per_sequence_tokens_per_s, total_tokens_per_s)`` at ``batch``.

    >>> per_seq, total = tokens_per_s_ceiling("h200", "llama-3.1-8b", 1, 0,
    ...                                       params=IDEAL_STEP_PARAMS)
    >>> round(per_seq)
    320
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
    **knobs: Any,
) -> int:
    """The largest decode batch whose step time stays within ``itl_s`` (0 if even 1 is slower).

    Step time grows with the batch, so a bisection finds the edge. The caller caps the result
    by what fits in the KV cache (:func:`infphys.physics.max_concurrent_sequences`).
    """
    limit = positive("itl_s", itl_s)
    c = non_negative_int("context_tokens", context_tokens)
    top = positive_int("max_batch", max_batch)
    m = RooflineModel.build(gpu, model, **knobs)
    w = m.model.sliding_window or 0

    def step_s(b: int) -> float:
        # b sequences each appending 1 token to c cached ones: c + 1 (query, key) pairs each.
        return m.step(
            new_tokens=b,
            kv_tokens_read=b * c,
            attention_pairs=b * (c + 1),
            window_pairs=b * min(c + 1, w),
            window_kv_tokens_read=b * min(c, w),
            sequences=b,
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
