"""Model shapes and parameter counts, computed from the shape and checked against the model card.

A :class:`ModelSpec` holds what the physics needs: layers, widths, attention heads and KV heads,
MoE experts, MLA ranks and sliding windows. Parameter counts are *computed* from the shape
(embeddings, attention, MLP or experts, norms, biases) so that a config read from disk gets the
same treatment as a preset; each preset (in :mod:`infphys.catalog._model_presets`) also carries
its published count so tests can check the computation. The MLP is SwiGLU (three matrices) unless
the spec says two (GELU: GPT-J, Falcon); norms are RMSNorm unless LayerNorm with a bias.

Worked example (Llama-3.1-8B): embeddings 2 × 128,256 × 4,096 = 1.051 B; per layer, attention
4,096 × (4,096 + 2 × 1,024 + 4,096) = 41.9 M and MLP 3 × 4,096 × 14,336 = 176.2 M; 32 layers give
6.98 B; total 8.03 B, as on the model card. GPT-J-6B's GELU MLP has two matrices with biases,
2 × 4,096 × 16,384 + 16,384 + 4,096 = 134.2 M per layer.

Active parameters (MoE) count both embedding tables and the experts a token is routed to. Model
cards differ here: gpt-oss counts the unembedding only (5.13 B, ours 5.71 B; the 0.58 B gap is the
input embedding table), DeepSeek-V3's "37 B" is rounded (ours 37.5 B).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infphys._check import positive_int
from infphys.catalog._lookup import find_entry, name_index
from infphys.catalog._model_presets import PRESETS

__all__ = ["DEFAULT_MODEL", "MODELS", "ModelSpec", "get_model"]

#: The course's one default model (Llama-3.1-8B), beside :data:`infphys.catalog.DEFAULT_GPU`.
DEFAULT_MODEL = "llama-3.1-8b"


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A transformer's shape.

    Attributes:
        key, name, family: catalog key, display name, architecture family (``llama``, ``qwen2``,
            ``mistral``, ``mixtral``, ``deepseek_v3``, ``gpt_oss``, ``gptj``, ``falcon``).
        layers, hidden, heads, kv_heads, head_dim, vocab, intermediate: the usual shape; for MoE
            models ``intermediate`` is the width of the dense MLP layers (if any).
        experts, experts_active, shared_experts, moe_intermediate, dense_layers: MoE routing:
            routed experts per MoE layer, experts per token, always-on shared experts, width of
            one expert, and how many leading layers are dense (DeepSeek-V3: 3).
        kv_lora_rank, qk_rope_head_dim, q_lora_rank, qk_nope_head_dim, v_head_dim: multi-head
            latent attention (MLA) ranks; ``kv_lora_rank`` set means MLA.
        sliding_window, sliding_window_layers: window in tokens, and how many layers use it.
        tie_embeddings: input embedding and LM head share one matrix.
        attention_bias: q/k/v biases (Qwen2); ``o_bias`` also on the output projection and
            ``expert_bias`` on expert matrices (gpt-oss); ``attention_sinks`` one per head.
        mlp_matrices: 3 for a gated MLP (SwiGLU: gate, up, down), 2 for a plain one (GELU: in,
            out); applies to experts too.
        mlp_bias, lm_head_bias: biases on the MLP matrices and on the LM head (GPT-J).
        norm_bias, norms_per_layer: LayerNorm with a bias (else RMSNorm, weight only), and how
            many norms each layer has (1 where attention and MLP share one, as in GPT-J).
        parallel_attention: attention and MLP read the same input and their outputs are summed
            (GPT-J, Falcon); under tensor parallelism the summed output needs one all-reduce
            per layer instead of two.
        max_context_tokens: the context length the model is served with (max_position_embeddings).
        published_params, published_active_params: the model card's figures.
        source: where the shape and published figures come from.
    """

    key: str
    name: str
    family: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    intermediate: int
    experts: int = 0
    experts_active: int = 0
    shared_experts: int = 0
    moe_intermediate: int | None = None
    dense_layers: int = 0
    kv_lora_rank: int | None = None
    qk_rope_head_dim: int | None = None
    q_lora_rank: int | None = None
    qk_nope_head_dim: int | None = None
    v_head_dim: int | None = None
    sliding_window: int | None = None
    sliding_window_layers: int = 0
    tie_embeddings: bool = False
    attention_bias: bool = False
    o_bias: bool = False
    expert_bias: bool = False
    attention_sinks: bool = False
    mlp_matrices: int = 3
    mlp_bias: bool = False
    lm_head_bias: bool = False
    norm_bias: bool = False
    norms_per_layer: int = 2
    parallel_attention: bool = False
    max_context_tokens: int = 131072
    published_params: float | None = None
    published_active_params: float | None = None
    source: str = ""

    def __post_init__(self) -> None:
        for name in ("layers", "hidden", "heads", "kv_heads", "head_dim", "vocab", "intermediate"):
            positive_int(name, getattr(self, name))
        if self.heads % self.kv_heads:
            raise ValueError(
                f"kv_heads must divide heads (got heads={self.heads}, kv_heads={self.kv_heads})"
            )
        if self.experts and not (1 <= self.experts_active <= self.experts):
            raise ValueError(
                f"experts_active must be in [1, experts={self.experts}] (got {self.experts_active})"
            )
        if not 0 <= self.sliding_window_layers <= self.layers:
            raise ValueError(f"sliding_window_layers must be in [0, {self.layers}]")
        if self.sliding_window_layers and not self.sliding_window:
            raise ValueError("sliding_window must be set when sliding_window_layers > 0")
        if self.mlp_matrices not in (2, 3):
            raise ValueError(f"mlp_matrices must be 2 or 3 (got {self.mlp_matrices!r})")
        if self.norms_per_layer not in (1, 2):
            raise ValueError(f"norms_per_layer must be 1 or 2 (got {self.norms_per_layer!r})")

    # --- shape facts -------------------------------------------------------------------
    @property
    def is_moe(self) -> bool:
        return self.experts > 0

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank is not None

    @property
    def attention_kind(self) -> str:
        """``MLA``, ``MHA`` (KV heads = heads), ``MQA`` (one KV head) or ``GQA``."""
        if self.is_mla:
            return "MLA"
        if self.kv_heads == self.heads:
            return "MHA"
        if self.kv_heads == 1:
            return "MQA"
        return "GQA"

    @property
    def full_attention_layers(self) -> int:
        """Layers that keep every token's KV (the rest keep a sliding window)."""
        return self.layers - self.sliding_window_layers

    @property
    def moe_layers(self) -> int:
        return self.layers - self.dense_layers if self.is_moe else 0

    # --- parameter counts -----------------------------------------------------------------
    def _attention_params(self) -> int:
        h = self.hidden
        if self.is_mla:
            assert self.kv_lora_rank is not None and self.qk_rope_head_dim is not None
            nope = self.qk_nope_head_dim or 0
            v = self.v_head_dim or self.head_dim
            qk = nope + self.qk_rope_head_dim
            if self.q_lora_rank:
                q = h * self.q_lora_rank + self.q_lora_rank + self.q_lora_rank * self.heads * qk
            else:
                q = h * self.heads * qk
            kv_a = h * (self.kv_lora_rank + self.qk_rope_head_dim) + self.kv_lora_rank
            kv_b = self.kv_lora_rank * self.heads * (nope + v)
            o = self.heads * v * h
            return q + kv_a + kv_b + o
        q = h * self.heads * self.head_dim
        kv = 2 * h * self.kv_heads * self.head_dim
        o = self.heads * self.head_dim * h
        n = q + kv + o
        if self.attention_bias:
            n += (self.heads + 2 * self.kv_heads) * self.head_dim
        if self.o_bias:
            n += h
        if self.attention_sinks:
            n += self.heads
        return n

    def _mlp_params(self, inter: int, bias: bool) -> int:
        n = self.mlp_matrices * self.hidden * inter
        if bias:  # one bias per input-side matrix (width inter) and one on the output (hidden)
            n += (self.mlp_matrices - 1) * inter + self.hidden
        return n

    def _expert_params(self) -> int:
        return self._mlp_params(self.moe_intermediate or self.intermediate, self.expert_bias)

    def _norm_params(self) -> int:
        return self.hidden * (2 if self.norm_bias else 1)

    def _router_params(self) -> int:
        return self.hidden * self.experts + (self.experts if self.expert_bias else 0)

    def _embedding_params(self) -> int:
        n = self.vocab * self.hidden * (1 if self.tie_embeddings else 2)
        return n + (self.vocab if self.lm_head_bias else 0)

    def _params(self, experts_counted: int) -> int:
        norms = self.norms_per_layer * self._norm_params()
        attention = self._attention_params()
        dense_mlp = self._mlp_params(self.intermediate, self.mlp_bias)
        n_dense = self.layers if not self.is_moe else self.dense_layers
        total = self.layers * (attention + norms) + n_dense * dense_mlp
        if self.is_moe:
            per_moe_layer = (experts_counted + self.shared_experts) * self._expert_params()
            total += self.moe_layers * (per_moe_layer + self._router_params())
        return total + self._embedding_params() + self._norm_params()  # final norm

    @property
    def params_total(self) -> int:
        """All parameters, computed from the shape."""
        return self._params(self.experts)

    @property
    def params_active(self) -> int:
        """Parameters one token touches: all but the experts it is not routed to."""
        return self._params(self.experts_active) if self.is_moe else self.params_total

    @property
    def params_per_expert(self) -> int:
        """Parameters of one routed expert (0 for a dense model)."""
        return self._expert_params() if self.is_moe else 0

    # --- loading ------------------------------------------------------------------------
    @classmethod
    def from_hf_config(cls, path: str | os.PathLike[str], *, name: str | None = None) -> ModelSpec:
        """Read a Hugging Face ``config.json`` (a file, or a folder holding one) from disk.

        Families: ``llama``, ``mistral``, ``mixtral``, ``qwen2``, ``deepseek_v3``, ``gpt_oss``,
        ``gptj`` and ``falcon`` (GPT-J's ``n_embd``/``n_layer``/``n_head`` names are read too).

        Raises:
            ValueError: naming ``path`` if the file is missing or not JSON, or naming
                ``model_type`` for a family this reader does not know.
        """
        p = Path(path)
        if p.is_dir():
            p = p / "config.json"
        try:
            cfg = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ValueError(f"path: no config.json at {p}") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"path: {p} is not valid JSON ({exc})") from None
        if not isinstance(cfg, dict):
            raise ValueError(f"path: {p} does not hold a JSON object")
        return cls.from_hf_dict(cfg, name=name or p.parent.name or "model")

    @classmethod
    def from_hf_dict(cls, cfg: dict[str, Any], *, name: str = "model") -> ModelSpec:
        """Build a spec from a parsed ``config.json`` (see :meth:`from_hf_config`)."""
        family = str(cfg.get("model_type", ""))
        if family not in _FAMILIES:
            known = ", ".join(sorted(_FAMILIES))
            raise ValueError(
                f"model_type: {family or '(missing)'!r} is not a family infphys can read; "
                f"known: {known}"
            )

        def need(k: str, *alternatives: str) -> Any:
            for key in (k, *alternatives):
                if cfg.get(key) is not None:
                    return cfg[key]
            raise ValueError(f"config.json: missing field {k!r} for model_type {family!r}")

        heads = int(need("num_attention_heads", "n_head"))
        hidden = int(need("hidden_size", "n_embd"))
        layers = int(need("num_hidden_layers", "n_layer"))
        kw: dict[str, Any] = dict(
            key=re.sub(r"[^a-z0-9.]+", "-", name.lower()).strip("-") or "model",
            name=name,
            family=family,
            layers=layers,
            hidden=hidden,
            heads=heads,
            kv_heads=int(cfg.get("num_key_value_heads") or heads),
            head_dim=int(cfg.get("head_dim") or hidden // heads),
            vocab=int(need("vocab_size")),
            intermediate=int(cfg.get("intermediate_size") or 0),
            tie_embeddings=bool(cfg.get("tie_word_embeddings", family == "falcon")),
            max_context_tokens=int(
                cfg.get("max_position_embeddings")
                or cfg.get("n_positions")
                or (2048 if family == "falcon" else 131072)
            ),
            source="Hugging Face config.json",
        )
        if family not in ("gptj", "falcon"):
            kw["intermediate"] = int(need("intermediate_size"))
        if family == "qwen2":
            kw["attention_bias"] = True
        if family == "gptj":
            # GPT-J: q/k/v/o without biases, a GELU MLP and an LM head with biases, one
            # LayerNorm per layer shared by the parallel attention and MLP.
            kw.update(
                intermediate=int(cfg.get("n_inner") or 4 * hidden),
                mlp_matrices=2,
                mlp_bias=True,
                lm_head_bias=True,
                norm_bias=True,
                norms_per_layer=1,
                parallel_attention=True,
            )
        if family == "falcon":
            new_arch = bool(cfg.get("new_decoder_architecture", False))
            if new_arch:
                kv_heads = int(cfg.get("num_kv_heads") or heads)
            else:
                kv_heads = 1 if cfg.get("multi_query", True) else heads
            bias = bool(cfg.get("bias", False))
            kw.update(
                kv_heads=kv_heads,
                intermediate=int(cfg.get("ffn_hidden_size") or 4 * hidden),
                mlp_matrices=2,
                attention_bias=bias,
                o_bias=bias,
                mlp_bias=bias,
                norm_bias=True,
                norms_per_layer=2 if new_arch or not cfg.get("parallel_attn", True) else 1,
                parallel_attention=new_arch or bool(cfg.get("parallel_attn", True)),
            )
        if (
            family in ("mistral", "qwen2", "llama")
            and cfg.get("sliding_window")
            and cfg.get("use_sliding_window", family == "mistral")
        ):
            kw["sliding_window"] = int(cfg["sliding_window"])
            kw["sliding_window_layers"] = int(cfg.get("max_window_layers", layers))
            if family == "mistral":
                kw["sliding_window_layers"] = layers
        if family == "mixtral":
            kw.update(
                experts=int(need("num_local_experts")),
                experts_active=int(need("num_experts_per_tok")),
            )
        if family == "deepseek_v3":
            kw.update(
                experts=int(need("n_routed_experts")),
                experts_active=int(need("num_experts_per_tok")),
                shared_experts=int(cfg.get("n_shared_experts") or 0),
                moe_intermediate=int(need("moe_intermediate_size")),
                dense_layers=int(cfg.get("first_k_dense_replace") or 0),
                kv_lora_rank=int(need("kv_lora_rank")),
                qk_rope_head_dim=int(need("qk_rope_head_dim")),
                q_lora_rank=int(cfg["q_lora_rank"]) if cfg.get("q_lora_rank") else None,
                qk_nope_head_dim=int(need("qk_nope_head_dim")),
                v_head_dim=int(need("v_head_dim")),
                head_dim=int(need("qk_nope_head_dim")) + int(need("qk_rope_head_dim")),
                kv_heads=heads,
            )
        if family == "gpt_oss":
            layer_types = cfg.get("layer_types") or [
                "sliding_attention" if i % 2 == 0 else "full_attention" for i in range(layers)
            ]
            kw.update(
                experts=int(need("num_local_experts")),
                experts_active=int(cfg.get("num_experts_per_tok") or need("experts_per_token")),
                sliding_window=int(need("sliding_window")),
                sliding_window_layers=sum(1 for t in layer_types if t == "sliding_attention"),
                attention_bias=True,
                o_bias=True,
                expert_bias=True,
                attention_sinks=True,
            )
        return cls(**kw)


_FAMILIES = ("llama", "mistral", "mixtral", "qwen2", "deepseek_v3", "gpt_oss", "gptj", "falcon")

MODELS: dict[str, ModelSpec] = {m.key: m for m in (ModelSpec(**kw) for kw in PRESETS)}


def _norm(s: str) -> str:
    s = s.strip().lower()
    s = s.split("/")[-1]  # "meta/llama-3.1-8b-instruct", "meta-llama/Llama-3.1-8B"
    s = re.sub(r"^(meta-)?llama-?", "llama-", s) if s.startswith(("llama", "meta-llama")) else s
    s = re.sub(r"[-_ ](instruct|chat|base|it|hf)$", "", s)
    s = re.sub(r"^mistral-7b-instruct", "mistral-7b", s)
    s = re.sub(r"^qwen-?2\.5", "qwen2.5", s)
    return re.sub(r"[^a-z0-9.]", "", s)


_LOOKUP = name_index({m.key: (m.name,) for m in MODELS.values()}, _norm)
_LOOKUP.update({_norm("mistral-7b"): "mistral-7b-v0.3", _norm("mixtral-8x7b-v0.1"): "mixtral-8x7b"})


def get_model(key: str | ModelSpec) -> ModelSpec:
    """Look up a model by a forgiving key, including NIM and Hugging Face names.

    >>> get_model("meta/llama-3.1-8b-instruct").key
    'llama-3.1-8b'

    Raises:
        ValueError: naming ``model`` and the known keys.
    """
    if isinstance(key, ModelSpec):
        return key
    return find_entry("model", "model", key, MODELS, _LOOKUP, _norm)
