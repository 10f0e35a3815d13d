"""Memory: weights, the KV cache, and how many concurrent sequences fit on a GPU.

Assumptions, stated once:

- Weights are read at one precision; MoE "active" weights are those one token touches.
- KV bytes per token = 2 (K and V) × layers × KV heads × head dim × bytes per element, for
  every layer that caches every token. MLA caches one compressed latent per token and layer:
  (kv_lora_rank + qk_rope_head_dim) × layers × bytes. Sliding-window layers cache at most
  ``window`` tokens per sequence.
- The memory left for the KV cache is GPU memory × ``gpu_memory_utilization`` − weights −
  an activation reserve (vLLM profiles this peak; 2 GiB is a typical figure for an 8B model at
  8,192 batched tokens), per GPU. With tensor parallelism N, weights and KV heads are split
  evenly over N GPUs, so the whole group holds N times one GPU's KV budget.

Worked example: Llama-3.1-8B caches 2 × 32 × 8 × 128 × 2 = 131,072 bytes per token in BF16, so an
8,192-token context holds 8,192 × 131,072 B = 1.0 GiB. On an H200 (141 GB): 141 × 0.9 = 126.9 GB,
minus 16.06 GB of BF16 weights and 2 GiB reserve leaves about 108.7 GB, i.e. about 101 such
sequences. The naive formula 2 × layers × hidden × bytes (hidden in place of KV heads × head dim)
gives 524,288 bytes per token: 4× too many, so it predicts only about 25.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

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
    "DEFAULT_ACTIVATION_RESERVE_BYTES",
    "DEFAULT_GPU_MEMORY_UTILIZATION",
    "KVCliff",
    "kv_budget_bytes",
    "kv_bytes_for_batch",
    "kv_bytes_per_sequence",
    "kv_bytes_per_token",
    "kv_bytes_per_token_naive",
    "kv_cliff",
    "kv_copies",
    "max_concurrent_sequences",
    "weight_bytes",
]

#: vLLM's default ``gpu_memory_utilization``.
DEFAULT_GPU_MEMORY_UTILIZATION = 0.9
#: Activation peak plus CUDA graphs and allocator slack held back from the KV cache (2 GiB).
DEFAULT_ACTIVATION_RESERVE_BYTES = 2 * 2**30

ModelLike = ModelSpec | str
GPULike = GPUSpec | str
PrecisionLike = Precision | str


def weight_bytes(
    model: ModelLike, precision: PrecisionLike = BF16, *, active: bool = False
) -> float:
    """Bytes of the model's weights at ``precision`` (``active``: only what one token touches).

    >>> round(weight_bytes("llama-3.1-8b") / 1e9, 2)   # 8.03 B × 2 bytes
    16.06
    """
    m, p = get_model(model), get_precision(precision)
    params = m.params_active if active else m.params_total
    return params * p.bytes_per_element


def kv_bytes_per_token(model: ModelLike, precision: PrecisionLike = BF16) -> float:
    """KV-cache bytes one token adds on the layers that cache every token.

    MHA/GQA/MQA: 2 × full-attention layers × KV heads × head dim × bytes. MLA: (kv_lora_rank +
    qk_rope_head_dim) × layers × bytes. Sliding-window layers are left out: they add bytes only
    for the last ``window`` tokens (see :func:`kv_bytes_per_sequence`).

    >>> kv_bytes_per_token("llama-3.1-8b")
    131072.0
    >>> kv_bytes_per_token("deepseek-v3")
    70272.0
    """
    m, p = get_model(model), get_precision(precision)
    return _per_token_per_layer(m, p) * m.full_attention_layers


def kv_copies(model: ModelLike, tp: int = 1) -> float:
    """How many GPUs of a ``tp``-way tensor-parallel group hold a copy of each KV entry.

    KV heads are split over the group, so with fewer KV heads than GPUs each head sits on
    ``tp / kv_heads`` of them; MLA caches one latent per token that every GPU keeps whole, so
    ``tp`` copies. Example: Llama-3.1-70B has 8 KV heads, so at TP 8 each GPU holds one head
    (1 copy) and at TP 16 each head is on 2 GPUs; DeepSeek-V3 (MLA) at TP 8 keeps 8 copies.

    >>> kv_copies("llama-3.1-70b", 8), kv_copies("llama-3.1-70b", 16), kv_copies("deepseek-v3", 8)
    (1.0, 2.0, 8.0)
    """
    m = get_model(model)
    tp = positive_int("tp", tp)
    if m.is_mla:
        return float(tp)
    return max(1.0, tp / m.kv_heads)


def _per_token_per_layer(m: ModelSpec, p: Precision) -> float:
    if m.is_mla:
        assert m.kv_lora_rank is not None and m.qk_rope_head_dim is not None
        return (m.kv_lora_rank + m.qk_rope_head_dim) * p.bytes_per_element
    return 2 * m.kv_heads * m.head_dim * p.bytes_per_element


def kv_bytes_per_token_naive(model: ModelLike, precision: PrecisionLike = BF16) -> float:
    """The quick calculators' formula, 2 × layers × hidden × bytes (kept to show how far off).

    It uses the hidden size where the KV heads × head dim belong, so it ignores GQA and MLA:
    4× too high for Llama-3.1-8B (32 heads share 8 KV heads) and 24.9× for DeepSeek-V3, whose
    MLA caches one 576-wide latent per layer (an uncompressed 128-head MHA cache would be 57×).

    >>> kv_bytes_per_token_naive("llama-3.1-8b")
    524288.0
    """
    m, p = get_model(model), get_precision(precision)
    return 2 * m.layers * m.hidden * p.bytes_per_element


def kv_bytes_per_sequence(
    model: ModelLike, context_tokens: int, precision: PrecisionLike = BF16
) -> float:
    """KV-cache bytes held by one sequence of ``context_tokens`` tokens (prompt + output).

    Full-attention layers hold every token; sliding-window layers hold min(context, window).

    >>> kv_bytes_per_sequence("llama-3.1-8b", 8192) / 2**30
    1.0
    """
    m, p = get_model(model), get_precision(precision)
    n = non_negative_int("context_tokens", context_tokens)
    per_layer = _per_token_per_layer(m, p)
    full = per_layer * m.full_attention_layers * n
    windowed = per_layer * m.sliding_window_layers * min(n, m.sliding_window or 0)
    return full + windowed


def kv_bytes_for_batch(
    model: ModelLike, context_tokens: Sequence[int], precision: PrecisionLike = BF16
) -> float:
    """KV-cache bytes held by a batch of sequences with the given context lengths."""
    lengths = non_negative_ints("context_tokens", context_tokens)
    return sum(kv_bytes_per_sequence(model, n, precision) for n in lengths)


def kv_budget_bytes(
    gpu: GPULike,
    model: ModelLike,
    *,
    weights_precision: PrecisionLike = BF16,
    gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION,
    activation_reserve_bytes: float = DEFAULT_ACTIVATION_RESERVE_BYTES,
    tp: int = 1,
) -> float:
    """Bytes left for the KV cache across a tensor-parallel group of ``tp`` GPUs.

    Per GPU: memory × utilization − weights / tp − activation reserve; times ``tp``. Zero or
    negative means the weights do not fit.

    >>> round(kv_budget_bytes("h200", "llama-3.1-8b") / 1e9, 1)
    108.7
    """
    g = get_gpu(gpu)
    util = fraction("gpu_memory_utilization", gpu_memory_utilization)
    reserve = non_negative("activation_reserve_bytes", activation_reserve_bytes)
    n = positive_int("tp", tp)
    per_gpu = g.memory_bytes * util - weight_bytes(model, weights_precision) / n - reserve
    return per_gpu * n


def max_concurrent_sequences(
    gpu: GPULike,
    model: ModelLike,
    context_tokens: int,
    *,
    weights_precision: PrecisionLike = BF16,
    kv_precision: PrecisionLike = BF16,
    gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION,
    activation_reserve_bytes: float = DEFAULT_ACTIVATION_RESERVE_BYTES,
    tp: int = 1,
    block_tokens: int = 1,
) -> int:
    """How many sequences of ``context_tokens`` fit in the KV cache at once (0 if none).

    ``block_tokens`` rounds each sequence up to whole KV blocks (vLLM pages in blocks of 16).

    >>> max_concurrent_sequences("h200", "llama-3.1-8b", 8192)
    101
    """
    n = positive_int("context_tokens", context_tokens)
    b = positive_int("block_tokens", block_tokens)
    budget = kv_budget_bytes(
        gpu,
        model,
        weights_precision=weights_precision,
        gpu_memory_utilization=gpu_memory_utilization,
        activation_reserve_bytes=activation_reserve_bytes,
        tp=tp,
    )
    if budget <= 0:
        return 0
    per_seq = kv_bytes_per_sequence(model, math.ceil(n / b) * b, kv_precision)
    return int(budget // per_seq)


@dataclass(frozen=True)
class KVCliff:
    """Memory needed as users grow, against VRAM lines: the course's "KV cache cliff" widget.

    Attributes:
        users: 1 … max_users.
        weights_bytes: weights (the same for every user count).
        kv_bytes: KV cache for ``users`` sequences of ``context_tokens`` each.
        total_bytes: weights + KV.
        vram_lines_bytes: the VRAM lines drawn (name → bytes).
        crash_users: for each line, the first user count whose total exceeds it (None if never
            within ``max_users``).
        kv_bytes_per_token: the per-token figure used (naive or correct).
    """

    users: np.ndarray
    weights_bytes: float
    kv_bytes: np.ndarray
    total_bytes: np.ndarray
    vram_lines_bytes: dict[str, float]
    crash_users: dict[str, int | None] = field(default_factory=dict)
    kv_bytes_per_token: float = 0.0


def kv_cliff(
    model: ModelLike,
    context_tokens: int,
    max_users: int,
    *,
    vram_lines_bytes: dict[str, float] | None = None,
    weights_precision: PrecisionLike = BF16,
    kv_precision: PrecisionLike = BF16,
    naive: bool = False,
) -> KVCliff:
    """Weights + KV for 1 … ``max_users`` users of ``context_tokens``, and where each VRAM line
    is crossed.

    ``vram_lines_bytes`` defaults to one H100 SXM (80 GB) and one H200 (141 GB). ``naive`` uses
    :func:`kv_bytes_per_token_naive` (as the original widget did) instead of the GQA/MLA-correct
    figure.

    Worked example: Llama-3.1-8B, 8,192 tokens, BF16: 16.06 GB weights + 1.074 GB per user
    crosses 80 GB at user 60 (16.06 + 60 × 1.074 = 80.5 GB).
    """
    m = get_model(model)
    n = positive_int("context_tokens", context_tokens)
    u = positive_int("max_users", max_users)
    if vram_lines_bytes is None:
        vram_lines_bytes = {g.name: g.memory_bytes for g in (get_gpu("h100"), get_gpu("h200"))}
    for name, b in vram_lines_bytes.items():
        positive(f"vram_lines_bytes[{name!r}]", b)
    if naive:
        per_token = kv_bytes_per_token_naive(m, kv_precision)
        per_user = per_token * n
    else:
        per_token = kv_bytes_per_token(m, kv_precision)
        per_user = kv_bytes_per_sequence(m, n, kv_precision)
    w = weight_bytes(m, weights_precision)
    users = np.arange(1, u + 1)
    kv = users * per_user
    total = w + kv
    crash: dict[str, int | None] = {}
    for name, line in vram_lines_bytes.items():
        over = np.nonzero(total > line)[0]
        crash[name] = int(users[over[0]]) if over.size else None
    return KVCliff(
        users=users,
        weights_bytes=w,
        kv_bytes=kv,
        total_bytes=total,
        vram_lines_bytes=dict(vram_lines_bytes),
        crash_users=crash,
        kv_bytes_per_token=per_token,
    )
