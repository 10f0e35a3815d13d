"""The step cost formula itself, written once for floats and numpy arrays alike.

:class:`infphys.physics.RooflineModel` prices the simulator's steps with :func:`price_step`;
``infphys.sim.fit`` prices thousands of measured rows at once with the same function, passing
arrays in :class:`StepConstants`. The formula is explained in :mod:`infphys.physics.roofline`.

Worked example: Llama-3.1-8B BF16 on one H100 SXM, batch 1, ideal parameters: the weight-read
term is 15.01 GB / 3.35 TB/s = 4.48 ms; the GEMM term at 16 GFLOP / 989 TFLOP/s = 0.016 ms is
far below it, so the step is 4.48 ms plus the (tiny) KV write.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from infphys.catalog import StepParams

__all__ = ["StepConstants", "price_step"]


class StepConstants(NamedTuple):
    """What :func:`price_step` needs of a GPU, a model, its precisions and TP degree.

    Byte and FLOP figures are for the whole tensor-parallel group; rates are per GPU. Every field
    may also be a numpy array (one entry per row), so that a fit prices many rows at once with
    the same code the simulator uses.
    """

    bandwidth_bytes_per_s: Any
    gemm_flops_per_s: Any
    attention_flops_per_s: Any
    fp8_weights: Any
    tp: Any
    layers: Any
    full_layers: Any
    windowed_layers: Any
    hidden: Any
    weight_always_bytes: Any
    expert_bytes: Any
    experts: Any
    experts_active: Any
    same_experts: Any
    embed_row_bytes: Any
    kv_bytes_per_token_per_layer: Any
    kv_copies: Any
    matmul_flops_per_token: Any
    expert_flops_per_token: Any
    attention_flops_per_pair: Any
    link_bytes_per_s: Any
    allreduces_per_layer: Any
    arch_ampere: Any
    arch_ada: Any
    kv_heads_per_gpu: Any


class _Priced(NamedTuple):
    weight_read_s: Any
    gemm_compute_s: Any
    gemm_s: Any
    attention_memory_s: Any
    attention_compute_s: Any
    comm_s: Any
    overhead_s: Any
    bytes_moved: Any
    flops: Any


def _hmax(a: Any, b: Any) -> Any:
    """max(a, b) for floats and numpy arrays alike."""
    return (a + b + abs(a - b)) * 0.5


def _smax(a: Any, b: Any, p: float) -> Any:
    """(aᵖ + bᵖ)^(1/p), computed without overflow; the hard maximum when p is infinite."""
    m = _hmax(a, b)
    if math.isinf(p):
        return m
    safe = m + 1e-300
    return safe * ((a / safe) ** p + (b / safe) ** p) ** (1.0 / p)


def price_step(
    c: StepConstants,
    p: StepParams,
    *,
    new_tokens: Any,
    kv_tokens_read: Any,
    attention_pairs: Any,
    window_pairs: Any = 0.0,
    window_kv_tokens_read: Any = 0.0,
    sequences: Any = 0.0,
) -> _Priced:
    """Price one step (see the module docstring); arguments are totals over its sequences."""
    tp = c.tp
    ew = p.weight_bandwidth_efficiency + c.fp8_weights * (
        p.fp8_weight_bandwidth_efficiency - p.weight_bandwidth_efficiency
    )
    ef = p.gemm_flops_efficiency + c.fp8_weights * (
        p.fp8_gemm_flops_efficiency - p.gemm_flops_efficiency
    )
    ratio = (
        1.0
        + c.arch_ampere * (p.ampere_gemm_flops_efficiency / p.gemm_flops_efficiency - 1.0)
        + c.arch_ada * (p.ada_gemm_flops_efficiency / p.gemm_flops_efficiency - 1.0)
    )
    ef = ef * ratio
    ef_m = ef * new_tokens / (new_tokens + p.gemm_half_efficiency_tokens + 1e-300)
    e, k = c.experts, c.experts_active
    uniform = e * (1.0 - (1.0 - k / e) ** new_tokens)
    touched = c.same_experts * k + (1.0 - c.same_experts) * uniform
    weight_b = c.weight_always_bytes + touched * c.expert_bytes + new_tokens * c.embed_row_bytes
    kv_b = (
        c.kv_bytes_per_token_per_layer
        * c.kv_copies
        * (
            c.full_layers * kv_tokens_read
            + c.windowed_layers * window_kv_tokens_read
            + c.layers * new_tokens
        )
    )
    gemm_fl = c.matmul_flops_per_token * new_tokens
    # Routed experts: each touched expert's product sees only its share of the tokens, M·k/touched.
    expert_fl = c.expert_flops_per_token * new_tokens
    m_expert = new_tokens * k / (touched + 1e-300)
    ef_e = ef * m_expert / (m_expert + p.gemm_half_efficiency_tokens + 1e-300)
    attn_fl = c.attention_flops_per_pair * (
        c.full_layers * attention_pairs + c.windowed_layers * window_pairs
    )
    weight_read_s = weight_b / tp / (c.bandwidth_bytes_per_s * ew)
    gemm_compute_s = (
        (gemm_fl - expert_fl) / (c.gemm_flops_per_s * ef_m + 1e-300)
        + expert_fl / (c.gemm_flops_per_s * ef_e + 1e-300)
    ) / tp
    gemm_s = _smax(weight_read_s, gemm_compute_s, p.roofline_sharpness)
    blocks = sequences * c.kv_heads_per_gpu
    e_kv = (
        p.kv_bandwidth_efficiency * blocks / (blocks + p.attention_half_efficiency_blocks + 1e-300)
    )
    attn_mem_s = kv_b / tp / (c.bandwidth_bytes_per_s * e_kv + 1e-300)
    attn_comp_s = attn_fl / tp / (c.attention_flops_per_s * p.attention_flops_efficiency)
    # Each all-reduce: a fixed latency (launch and synchronisation of the group; TensorRT-LLM's
    # one-shot all-reduce reads every peer's buffer in one step, so it does not grow with tp)
    # plus the ring's bytes, 2(tp − 1)/tp of the activations, over the link.
    ring_b = 2.0 * (tp - 1) / tp * new_tokens * c.hidden * 2.0
    comm_s = (
        c.allreduces_per_layer
        * c.layers
        * (
            (tp > 1) * p.allreduce_latency_s
            + ring_b / (c.link_bytes_per_s * p.allreduce_bandwidth_efficiency)
        )
    )
    overhead_s = (
        p.step_overhead_s + c.layers * p.layer_overhead_s + sequences * (p.sequence_overhead_s)
    )
    return _Priced(
        weight_read_s,
        gemm_compute_s,
        gemm_s,
        attn_mem_s,
        attn_comp_s,
        comm_s,
        overhead_s,
        weight_b + kv_b,
        gemm_fl + attn_fl,
    )
