"""The simulated engine's settings: hardware, model, scheduler limits and calibrated efficiencies.

An :class:`EngineConfig` says which GPU and model are simulated, at which precisions and
tensor-parallel degree, with vLLM's scheduler limits (``max_num_seqs``, ``max_num_batched_tokens``,
KV blocks of ``block_tokens``), and how each engine step is priced: the roofline of
:mod:`infphys.physics.roofline` with two efficiency factors, plus a fixed per-step overhead and a
per-sequence overhead. It also says how long outputs are (:class:`OutputLengths`).

KV-cache capacity, as vLLM computes it: GPU memory × ``gpu_memory_utilization`` − weights / tp −
``activation_reserve_bytes`` per GPU, times tp (:func:`infphys.physics.kv_budget_bytes`), divided
into blocks of ``block_tokens`` tokens at the KV precision, less one block that vLLM's block pool
keeps as its "null block". Two corrections the physics module leaves out: an MLA latent cache is
not split by tensor parallelism (every GPU keeps the whole latent), and GQA with fewer KV heads
than GPUs replicates heads; both divide the capacity by the replication factor. Sliding-window
layers keep at most ``window + block_tokens`` tokens per sequence; that memory is reserved for
``max_num_seqs`` sequences up front and the blocks count only full-attention layers.

Worked example: Llama-3.1-8B in BF16 on one H200: 141 GB × 0.9 − 16.06 GB − 2 GiB = 108.69 GB;
one block holds 16 tokens × 131,072 B = 2 MiB, so 108.69 GB / 2,097,152 B = 51,828 blocks, less
the null block 51,827: 829,232 tokens, about 101 sequences of 8,192 tokens.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from typing import Any, Literal

from infphys._check import fraction, non_negative, positive, positive_int
from infphys.catalog import (
    BF16,
    FITTED_STEP_PARAMS,
    GPUSpec,
    ModelSpec,
    Precision,
    StepParams,
    get_gpu,
    get_model,
    get_precision,
)
from infphys.physics import (
    DEFAULT_ACTIVATION_RESERVE_BYTES,
    DEFAULT_GPU_MEMORY_UTILIZATION,
    MoERouting,
    RooflineModel,
    kv_budget_bytes,
    kv_bytes_per_sequence,
    kv_bytes_per_token,
    kv_copies,
    weight_bytes,
)

__all__ = [
    "EngineConfig",
    "OutputLengths",
    "check_engine_config",
    "default_served_model_name",
]

OutputKind = Literal["max_tokens", "geometric", "uniform"]
SchedulerName = Literal["vllm", "trtllm"]


@dataclass(frozen=True, slots=True)
class OutputLengths:
    """How many tokens a request generates before it stops.

    - ``max_tokens`` (default): exactly the request's ``max_tokens``, as benchmarks run with
      ``ignore_eos``; ``finish_reason`` is ``length``.
    - ``geometric``: the model ends its answer with probability 1 / ``mean_tokens`` after each
      token (a constant end-of-sequence chance), so lengths are geometric with mean
      ``mean_tokens``; capped at ``max_tokens``. Shorter answers finish with ``stop``.
    - ``uniform``: a whole number in [``low_tokens``, ``high_tokens``], capped at ``max_tokens``.

    Draws come from the engine's seeded ``random.Random``, one per request in arrival order.

    >>> rng = random.Random(0)
    >>> OutputLengths().draw(128, rng)
    128
    >>> OutputLengths("uniform", low_tokens=10, high_tokens=20).draw(15, rng) <= 15
    True
    """

    kind: OutputKind = "max_tokens"
    mean_tokens: float = 256.0
    low_tokens: int = 1
    high_tokens: int = 512

    def __post_init__(self) -> None:
        if self.kind not in ("max_tokens", "geometric", "uniform"):
            raise ValueError(
                f"kind must be 'max_tokens', 'geometric' or 'uniform' (got {self.kind!r})"
            )
        positive("mean_tokens", self.mean_tokens)
        if self.mean_tokens < 1:
            raise ValueError(f"mean_tokens must be >= 1 (got {self.mean_tokens!r})")
        lo = positive_int("low_tokens", self.low_tokens)
        hi = positive_int("high_tokens", self.high_tokens)
        if hi < lo:
            raise ValueError(f"high_tokens must be >= low_tokens (got {hi} < {lo})")

    def draw(self, max_tokens: int, rng: random.Random) -> int:
        """Tokens one request generates, at most ``max_tokens``."""
        if self.kind == "max_tokens":
            return max_tokens
        if self.kind == "uniform":
            return min(max_tokens, rng.randint(self.low_tokens, self.high_tokens))
        if self.mean_tokens <= 1:
            return 1
        # Geometric on {1, 2, ...} with mean m: P(stop after each token) = 1/m.
        p = 1.0 / self.mean_tokens
        u = 1.0 - rng.random()  # in (0, 1]
        length = 1 + int(math.log(u) / math.log1p(-p))
        return min(max_tokens, length)


#: Step-model parameters that :meth:`EngineConfig.build` accepts as settings of their own.
_STEP_PARAM_NAMES = frozenset(StepParams.__dataclass_fields__) | {
    "bandwidth_efficiency",
    "flops_efficiency",
}


def default_served_model_name(model: ModelSpec) -> str:
    """The name a NIM serves a catalog model under: ``meta/llama-3.1-8b-instruct`` for Llamas.

    >>> default_served_model_name(get_model("llama-3.1-8b"))
    'meta/llama-3.1-8b-instruct'
    """
    if model.family == "llama":
        return f"meta/{model.key}-instruct"
    return model.key


@dataclass(frozen=True)
class EngineConfig:
    """One simulated serving engine (vLLM V1's scheduler, steps priced by the roofline).

    Attributes:
        gpu, model: catalog entries.
        weights_precision, kv_precision: number formats of the weights and the KV cache.
        tp: tensor-parallel degree (GPUs in the replica).
        max_num_seqs: most requests running at once (vLLM's default on H100-class GPUs: 256).
        max_num_batched_tokens: token budget of one step (vLLM's default: 8,192).
        block_tokens: tokens per KV-cache block (vLLM: 16).
        gpu_memory_utilization: fraction of GPU memory the engine may use (vLLM: 0.9).
        activation_reserve_bytes: per GPU, held back from the KV cache for activations,
            CUDA graphs and allocator slack (2 GiB).
        max_model_len: longest prompt + output accepted (default: the model's context length).
        step_params: how each step is priced (:data:`infphys.catalog.FITTED_STEP_PARAMS`, fitted
            to measured TensorRT-LLM step times; see :mod:`infphys.physics.roofline`). Any of its
            fields may also be given to :meth:`build` as a setting of its own.
        moe_routing: ``uniform`` or ``same_experts`` (how an MoE model's tokens pick experts).
        scheduler: ``vllm`` (vLLM V1: chunked prefill, KV blocks taken as tokens are computed,
            preemption by recompute when they run out) or ``trtllm`` (TensorRT-LLM in-flight
            batching with ``GUARANTEED_NO_EVICT``: a request is admitted only when the blocks
            for its whole prompt + ``max_tokens`` are free of every running request's
            reservation, so nothing is ever preempted; ``max_num_seqs`` is its
            ``max_batch_size`` and ``max_num_batched_tokens`` its ``max_num_tokens``).
        chunked_prefill: split long prompts over steps (None: the scheduler's default, on for
            vLLM, off for TensorRT-LLM, where a prompt must fit the token budget whole).
        frontend_latency_s: time from a request's arrival at the server to its arrival at the
            engine (HTTP, tokenisation): it adds to the time to first token, not to the GPU.
        output_lengths: how long answers are (default: exactly ``max_tokens``).
        seed: seed of the engine's ``random.Random`` (output lengths).

    The step parameters are one set shared with the chapters, the labs and the CLI; how close
    the simulator comes to measured serving is checked by ``benchmarks/bench_fidelity.py``.

    >>> cfg = EngineConfig.build(gpu="h200", model="llama-3.1-8b")
    >>> cfg.kv_capacity_blocks
    51827
    """

    gpu: GPUSpec
    model: ModelSpec
    weights_precision: Precision = BF16
    kv_precision: Precision = BF16
    tp: int = 1
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 8192
    block_tokens: int = 16
    gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION
    activation_reserve_bytes: float = DEFAULT_ACTIVATION_RESERVE_BYTES
    max_model_len: int = 0
    step_params: StepParams = FITTED_STEP_PARAMS
    moe_routing: MoERouting = "uniform"
    scheduler: SchedulerName = "vllm"
    chunked_prefill: bool | None = None
    frontend_latency_s: float = 0.0
    frontend_service_s: float = 0.0
    output_lengths: OutputLengths = field(default_factory=OutputLengths)
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.gpu, GPUSpec):
            raise ValueError(f"gpu must be a GPUSpec (use EngineConfig.build) (got {self.gpu!r})")
        if not isinstance(self.model, ModelSpec):
            raise ValueError(
                f"model must be a ModelSpec (use EngineConfig.build) (got {self.model!r})"
            )
        positive_int("tp", self.tp)
        seqs = positive_int("max_num_seqs", self.max_num_seqs)
        budget = positive_int("max_num_batched_tokens", self.max_num_batched_tokens)
        if budget < seqs:
            raise ValueError(
                f"max_num_batched_tokens ({budget}) must be greater than or equal to "
                f"max_num_seqs ({seqs})"
            )
        positive_int("block_tokens", self.block_tokens)
        fraction("gpu_memory_utilization", self.gpu_memory_utilization)
        non_negative("activation_reserve_bytes", self.activation_reserve_bytes)
        if not isinstance(self.step_params, StepParams):
            raise ValueError(f"step_params must be a StepParams (got {self.step_params!r})")
        if self.scheduler not in ("vllm", "trtllm"):
            raise ValueError(f"scheduler must be 'vllm' or 'trtllm' (got {self.scheduler!r})")
        if self.chunked_prefill is None:
            object.__setattr__(self, "chunked_prefill", self.scheduler == "vllm")
        elif not isinstance(self.chunked_prefill, bool):
            raise ValueError(
                f"chunked_prefill must be True, False or None (got {self.chunked_prefill!r})"
            )
        non_negative("frontend_latency_s", self.frontend_latency_s)
        non_negative("frontend_service_s", self.frontend_service_s)
        if self.moe_routing not in ("uniform", "same_experts"):
            raise ValueError(
                f"moe_routing must be 'uniform' or 'same_experts' (got {self.moe_routing!r})"
            )
        if not isinstance(self.output_lengths, OutputLengths):
            raise ValueError(
                f"output_lengths must be an OutputLengths (got {self.output_lengths!r})"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an int (got {self.seed!r})")
        if self.max_model_len == 0:
            object.__setattr__(self, "max_model_len", self.model.max_context_tokens)
        mml = positive_int("max_model_len", self.max_model_len)
        if mml > self.model.max_context_tokens:
            raise ValueError(
                f"max_model_len ({mml}) must be <= the model's context length "
                f"({self.model.max_context_tokens})"
            )
        if self.kv_capacity_blocks < 1:
            w = weight_bytes(self.model, self.weights_precision) / self.tp
            raise ValueError(
                f"model: {self.model.name} does not fit on {self.tp} × {self.gpu.name}: "
                f"{w / 1e9:.1f} GB of weights per GPU leave no room for a KV cache at "
                f"gpu_memory_utilization={self.gpu_memory_utilization} "
                "(try more GPUs with tp, or lower precisions)"
            )
        if self.kv_capacity_tokens < mml:
            raise ValueError(
                f"max_model_len: the model's max seq len ({mml}) is larger than the maximum "
                f"number of tokens that can be stored in KV cache ({self.kv_capacity_tokens}). "
                "Try increasing gpu_memory_utilization or decreasing max_model_len when "
                "initializing the engine."
            )

    @classmethod
    def build(
        cls,
        gpu: GPUSpec | str = "h200",
        model: ModelSpec | str = "llama-3.1-8b",
        *,
        weights_precision: Precision | str = BF16,
        kv_precision: Precision | str | None = None,
        **settings: Any,
    ) -> EngineConfig:
        """Build from catalog names: ``EngineConfig.build(gpu="h100", model="llama-3.1-8b")``.

        ``kv_precision`` defaults to BF16 (vLLM's ``kv_cache_dtype=auto`` keeps the activation
        type even for FP8 weights). ``settings`` are the other fields; ``max_model_len`` None or
        0 means the model's context length.

        Raises:
            ValueError: naming the argument, for unknown names or values out of range.
        """
        allowed = ({f for f in cls.__dataclass_fields__} | _STEP_PARAM_NAMES) - {
            "gpu",
            "model",
            "weights_precision",
            "kv_precision",
        }
        unknown = sorted(set(settings) - allowed)
        if unknown:
            raise ValueError(
                f"settings: unknown engine setting {unknown[0]!r} "
                f"(allowed: {', '.join(sorted(allowed))})"
            )
        if settings.get("max_model_len") is None:
            settings.pop("max_model_len", None)
        step_changes = {k: settings.pop(k) for k in list(settings) if k in _STEP_PARAM_NAMES}
        if step_changes:
            base = settings.pop("step_params", FITTED_STEP_PARAMS)
            settings["step_params"] = base.with_(**step_changes)
        return cls(
            gpu=get_gpu(gpu),
            model=get_model(model),
            weights_precision=get_precision(weights_precision),
            kv_precision=get_precision(BF16 if kv_precision is None else kv_precision),
            **settings,
        )

    def with_(self, **changes: Any) -> EngineConfig:
        """A copy with some fields changed (validated again)."""
        for key in ("gpu", "model"):
            if isinstance(changes.get(key), str):
                changes[key] = get_gpu(changes[key]) if key == "gpu" else get_model(changes[key])
        for key in ("weights_precision", "kv_precision"):
            if isinstance(changes.get(key), str):
                changes[key] = get_precision(changes[key])
        if "max_model_len" in changes and changes["max_model_len"] is None:
            changes["max_model_len"] = 0
        unknown = sorted(set(changes) - set(self.__dataclass_fields__))
        if unknown:
            raise ValueError(f"changes: unknown engine setting {unknown[0]!r}")
        return replace(self, **changes)

    # --- derived quantities --------------------------------------------------------------
    @cached_property
    def roofline(self) -> RooflineModel:
        """The roofline that prices each step (efficiencies and fixed overhead included)."""
        return RooflineModel.build(
            self.gpu,
            self.model,
            weights_precision=self.weights_precision,
            kv_precision=self.kv_precision,
            tp=self.tp,
            params=self.step_params,
            moe_routing=self.moe_routing,
        )

    @property
    def kv_replication(self) -> float:
        """How many GPUs of the group hold a copy of each KV entry (1 unless replicated)."""
        return kv_copies(self.model, self.tp)

    @cached_property
    def kv_block_bytes(self) -> float:
        """Bytes of one KV block on the full-attention layers, all GPUs of the group together."""
        per_token = kv_bytes_per_token(self.model, self.kv_precision)
        return self.block_tokens * per_token * self.kv_replication

    @cached_property
    def window_reserve_bytes(self) -> float:
        """Bytes reserved for sliding-window layers: ``max_num_seqs`` × (window + one block)."""
        m = self.model
        if not m.sliding_window_layers or not m.sliding_window:
            return 0.0
        n = m.sliding_window + self.block_tokens
        windowed = kv_bytes_per_sequence(m, n, self.kv_precision) - n * kv_bytes_per_token(
            m, self.kv_precision
        )
        return self.max_num_seqs * windowed * self.kv_replication

    @cached_property
    def kv_budget_bytes(self) -> float:
        """Bytes for the KV cache across the group (before the window reserve)."""
        return kv_budget_bytes(
            self.gpu,
            self.model,
            weights_precision=self.weights_precision,
            gpu_memory_utilization=self.gpu_memory_utilization,
            activation_reserve_bytes=self.activation_reserve_bytes,
            tp=self.tp,
        )

    @cached_property
    def kv_capacity_blocks(self) -> int:
        """Usable KV blocks: the budget in whole blocks, less vLLM's null block (0 if none)."""
        usable = self.kv_budget_bytes - self.window_reserve_bytes
        if usable <= 0:
            return 0
        return max(0, int(usable // self.kv_block_bytes) - 1)

    @property
    def kv_capacity_tokens(self) -> int:
        """Tokens the KV cache holds: blocks × ``block_tokens``."""
        return self.kv_capacity_blocks * self.block_tokens

    @property
    def label(self) -> str:
        """The engine in words, for titles and log lines: model on TP × GPU.

        >>> EngineConfig.build("h200", "llama-3.1-8b", tp=2).label
        'Llama-3.1-8B on 2× H200 SXM'
        """
        return f"{self.model.name} on {self.tp}× {self.gpu.name}"

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain data (JSON-able); :meth:`from_dict` rebuilds the same config."""
        return {
            "gpu": asdict(self.gpu),
            "model": asdict(self.model),
            "weights_precision": asdict(self.weights_precision),
            "kv_precision": asdict(self.kv_precision),
            "output_lengths": asdict(self.output_lengths),
            "step_params": self.step_params.to_dict(),
            **{
                f: getattr(self, f)
                for f in self.__dataclass_fields__
                if f
                not in (
                    "gpu",
                    "model",
                    "weights_precision",
                    "kv_precision",
                    "output_lengths",
                    "step_params",
                )
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EngineConfig:
        """The config :meth:`to_dict` wrote (validated again)."""
        d = dict(data)
        gpu = dict(d.pop("gpu"))
        for key in ("nvml_patterns", "aliases"):
            gpu[key] = tuple(gpu.get(key, ()))
        return cls(
            gpu=GPUSpec(**gpu),
            model=ModelSpec(**d.pop("model")),
            weights_precision=Precision(**d.pop("weights_precision")),
            kv_precision=Precision(**d.pop("kv_precision")),
            output_lengths=OutputLengths(**d.pop("output_lengths")),
            step_params=StepParams(**d.pop("step_params")),
            **d,
        )

    def describe(self) -> dict[str, Any]:
        """Plain-data summary for run headers and ``/v1/models`` metadata."""
        return {
            "engine": (
                "vllm-v1-scheduler (simulated)"
                if self.scheduler == "vllm"
                else "tensorrt-llm-inflight-batching (simulated)"
            ),
            "scheduler": self.scheduler,
            "chunked_prefill": self.chunked_prefill,
            "frontend_latency_s": self.frontend_latency_s,
            "frontend_service_s": self.frontend_service_s,
            "gpu": self.gpu.key,
            "gpu_name": self.gpu.name,
            "model": self.model.key,
            "model_name": self.model.name,
            "weights_precision": self.weights_precision.name,
            "kv_precision": self.kv_precision.name,
            "tp": self.tp,
            "max_num_seqs": self.max_num_seqs,
            "max_num_batched_tokens": self.max_num_batched_tokens,
            "block_tokens": self.block_tokens,
            "gpu_memory_utilization": self.gpu_memory_utilization,
            "activation_reserve_bytes": self.activation_reserve_bytes,
            "max_model_len": self.max_model_len,
            "kv_capacity_blocks": self.kv_capacity_blocks,
            "kv_capacity_tokens": self.kv_capacity_tokens,
            "step_params": self.step_params.to_dict(),
            "moe_routing": self.moe_routing,
            "output_lengths": asdict(self.output_lengths),
            "seed": self.seed,
        }


def check_engine_config(name: str, value: object) -> EngineConfig:
    """``value`` itself when it is an :class:`EngineConfig`, else ``ValueError`` naming ``name``.

    Every driver of the engine (virtual time, sweeps, the real-time server) checks its
    configuration here, so a wrong argument reads the same wherever it is passed.

    >>> check_engine_config("config", "h200")
    Traceback (most recent call last):
    ...
    ValueError: config must be an EngineConfig (got 'h200')
    """
    if not isinstance(value, EngineConfig):
        raise ValueError(f"{name} must be an EngineConfig (got {value!r})")
    return value
