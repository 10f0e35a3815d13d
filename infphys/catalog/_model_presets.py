"""Catalog presets: each model's shape from its ``config.json`` and its published parameter count.

The presets are plain keyword dictionaries built from three tables: :data:`_SHAPES` (one row per
model: the shape every model has, and the published parameter count), :data:`_EXTRAS` (what a
model has beyond that: experts, MLA, sliding windows, biases, its context length) and
:data:`_SOURCES` (where the figures come from). :mod:`infphys.catalog.models` builds a
:class:`~infphys.catalog.models.ModelSpec` from each preset, which computes the parameter count
from the shape, and the tests hold every computed count within 1% of the published one.

Worked example (Llama-2-7B, ``meta-llama/Llama-2-7b-hf``): embeddings 2 × 32,000 × 4,096 =
262,144,000 (input table and untied LM head); per layer, attention 4 × 4,096² = 67,108,864 and MLP
3 × 4,096 × 11,008 = 135,266,304 plus two RMSNorms 2 × 4,096 = 8,192, so 202,383,360; 32 layers
give 6,476,267,520; with the final norm (4,096) the total is 6,738,415,616 ≈ 6.74 B, the Hub's
figure.

>>> [p for p in PRESETS if p["key"] == "llama-2-7b"][0]["intermediate"]
11008
"""

from __future__ import annotations

from typing import Any

__all__ = ["PRESETS"]

_HF = "the model's config.json (copy in ai-dynamo/aiconfigurator model_configs/)"


def _hub(repo: str) -> str:
    return f"{repo} config.json on Hugging Face"


#: The columns of :data:`_SHAPES`, named as :class:`~infphys.catalog.models.ModelSpec` fields.
_COLUMNS = (
    "key", "name", "family", "layers", "hidden", "heads", "kv_heads", "head_dim", "vocab",
    "intermediate", "published_params",
)  # fmt: skip

#: One row per model, in :data:`_COLUMNS` order.
_SHAPES: tuple[tuple[Any, ...], ...] = (
    ("llama-3.1-8b", "Llama-3.1-8B", "llama", 32, 4096, 32, 8, 128, 128256, 14336, 8.03e9),
    ("llama-3.1-70b", "Llama-3.1-70B", "llama", 80, 8192, 64, 8, 128, 128256, 28672, 70.6e9),
    ("llama-3.3-70b", "Llama-3.3-70B", "llama", 80, 8192, 64, 8, 128, 128256, 28672, 70.6e9),
    ("llama-3.1-405b", "Llama-3.1-405B", "llama", 126, 16384, 128, 8, 128, 128256, 53248, 405.9e9),
    ("mistral-7b-v0.3", "Mistral-7B-v0.3", "mistral", 32, 4096, 32, 8, 128, 32768, 14336, 7.25e9),
    ("mixtral-8x7b", "Mixtral-8x7B", "mixtral", 32, 4096, 32, 8, 128, 32000, 14336, 46.7e9),
    ("qwen2.5-7b", "Qwen2.5-7B", "qwen2", 28, 3584, 28, 4, 128, 152064, 18944, 7.62e9),
    ("qwen2.5-72b", "Qwen2.5-72B", "qwen2", 80, 8192, 64, 8, 128, 152064, 29568, 72.7e9),
    ("deepseek-v3", "DeepSeek-V3", "deepseek_v3", 61, 7168, 128, 128, 192, 129280, 18432, 671e9),
    ("gpt-oss-120b", "gpt-oss-120b", "gpt_oss", 36, 2880, 64, 8, 64, 201088, 2880, 116.83e9),
    ("llama-2-7b", "Llama-2-7B", "llama", 32, 4096, 32, 32, 128, 32000, 11008, 6.74e9),
    ("llama-2-13b", "Llama-2-13B", "llama", 40, 5120, 40, 40, 128, 32000, 13824, 13.0e9),
    ("llama-2-70b", "Llama-2-70B", "llama", 80, 8192, 64, 8, 128, 32000, 28672, 69.0e9),
    ("mistral-7b-v0.1", "Mistral-7B-v0.1", "mistral", 32, 4096, 32, 8, 128, 32000, 14336, 7.24e9),
    ("gpt-j-6b", "GPT-J-6B", "gptj", 28, 4096, 16, 16, 256, 50400, 16384, 6_053_381_344),
    ("falcon-180b", "Falcon-180B", "falcon", 80, 14848, 232, 8, 64, 65024, 59392, 180e9),
)

_QWEN2 = {"attention_bias": True, "max_context_tokens": 32768}
_LLAMA2 = {"max_context_tokens": 4096}
#: GPT-J and Falcon's layer: attention and a two-matrix GELU MLP in parallel, LayerNorms.
_PARALLEL_GELU = {"mlp_matrices": 2, "parallel_attention": True, "norm_bias": True}

#: What a model has beyond :data:`_COLUMNS` (omitted fields take ModelSpec's defaults).
_EXTRAS: dict[str, dict[str, Any]] = {
    "mistral-7b-v0.3": {"max_context_tokens": 32768},
    "mixtral-8x7b": {
        "experts": 8,
        "experts_active": 2,
        "max_context_tokens": 32768,
        "published_active_params": 12.9e9,
    },
    "qwen2.5-7b": _QWEN2,
    "qwen2.5-72b": _QWEN2,
    "deepseek-v3": {
        "experts": 256,
        "experts_active": 8,
        "shared_experts": 1,
        "moe_intermediate": 2048,
        "dense_layers": 3,
        "kv_lora_rank": 512,
        "qk_rope_head_dim": 64,
        "q_lora_rank": 1536,
        "qk_nope_head_dim": 128,
        "v_head_dim": 128,
        "max_context_tokens": 163840,
        "published_active_params": 37e9,
    },
    "gpt-oss-120b": {
        "experts": 128,
        "experts_active": 4,
        "sliding_window": 128,
        "sliding_window_layers": 18,
        "attention_bias": True,
        "o_bias": True,
        "expert_bias": True,
        "attention_sinks": True,
        "max_context_tokens": 131072,
        "published_active_params": 5.13e9,
    },
    "llama-2-7b": _LLAMA2,
    "llama-2-13b": _LLAMA2,
    "llama-2-70b": _LLAMA2,
    "mistral-7b-v0.1": {
        "sliding_window": 4096,
        "sliding_window_layers": 32,
        "max_context_tokens": 32768,
    },
    "gpt-j-6b": {
        **_PARALLEL_GELU,
        "mlp_bias": True,
        "lm_head_bias": True,
        "norms_per_layer": 1,
        "max_context_tokens": 2048,
    },
    "falcon-180b": {
        **_PARALLEL_GELU,
        "norms_per_layer": 2,
        "tie_embeddings": True,
        "max_context_tokens": 2048,
    },
}

#: Where each row's shape and published count come from.
_SOURCES: dict[str, str] = {
    "llama-3.1-8b": f"{_HF}; model card 8.03 B",
    "llama-3.1-70b": f"{_HF}; model card 70.6 B",
    "llama-3.3-70b": f"{_HF}; same shape as Llama-3.1-70B",
    "llama-3.1-405b": f"{_HF}; model card 405 B",
    "mistral-7b-v0.3": f"{_HF}; model card 7.25 B",
    "mixtral-8x7b": f"{_HF}; Mistral AI: 46.7 B total, 12.9 B active",
    "qwen2.5-7b": f"{_HF}; model card 7.61 B",
    "qwen2.5-72b": f"{_HF}; model card 72.7 B",
    "deepseek-v3": f"{_HF}; DeepSeek-V3 report: 671 B total, 37 B active (MTP module excluded)",
    "gpt-oss-120b": (
        f"{_HF}; OpenAI model card: 116.83 B total, 5.13 B active (no input embedding)"
    ),
    "llama-2-7b": f"{_hub('meta-llama/Llama-2-7b-hf')}; 6.74 B on the Hub (model card: 7B)",
    "llama-2-13b": f"{_hub('meta-llama/Llama-2-13b-hf')}; 13.0 B on the Hub (model card: 13B)",
    "llama-2-70b": (
        f"{_hub('meta-llama/Llama-2-70b-hf')}; 69.0 B on the Hub "
        "(model card: 70B; the shape gives 68.98 B)"
    ),
    "mistral-7b-v0.1": (
        f"{_hub('mistralai/Mistral-7B-v0.1')} (sliding_window 4096 on every layer); "
        "7.24 B on the Hub (Mistral AI's announcement: 7.3 B)"
    ),
    "gpt-j-6b": (
        f"{_hub('EleutherAI/gpt-j-6b')} (parallel attention and GELU MLP, one LayerNorm per "
        "layer); model card 6,053,381,344 (the shape gives 6,050,882,784, 0.04% fewer)"
    ),
    "falcon-180b": (
        f"{_hub('tiiuae/falcon-180B')} (new decoder architecture: parallel attention and GELU "
        "MLP, two LayerNorms per layer, no biases, LM head tied to the embeddings); model card "
        "180 B (the 179.5 B also quoted equals the shape's 178.56 B plus an untied 0.97 B "
        "LM head)"
    ),
}


def _presets() -> tuple[dict[str, Any], ...]:
    """Join the three tables into one keyword dictionary per model, in :data:`_SHAPES` order."""
    keys = [row[0] for row in _SHAPES]
    stray = (set(_EXTRAS) | set(_SOURCES)) - set(keys)
    if stray or set(keys) - set(_SOURCES):
        raise ValueError(f"presets: every row needs a source, every extra a row ({sorted(stray)})")
    return tuple(
        {
            **dict(zip(_COLUMNS, row, strict=True)),
            **_EXTRAS.get(row[0], {}),
            "source": _SOURCES[row[0]],
        }
        for row in _SHAPES
    )


PRESETS: tuple[dict[str, Any], ...] = _presets()
