"""A transformer decode step in plain torch, with random weights, for timing against the roofline.

:class:`DecodeStack` builds, on one device, the tensors of a dense GQA/MHA transformer shaped like
a :class:`~infphys.catalog.ModelSpec`: per layer an RMSNorm, a fused QKV projection, attention
over a KV cache, the output projection, an RMSNorm and a SwiGLU MLP (fused gate/up, down); then a
final RMSNorm and the LM head (one ``vocab × hidden`` matrix). Weights are random (no checkpoint
is needed: the time of a matrix product does not depend on the values), created directly on the
device. :meth:`DecodeStack.step` runs one decode step for ``batch`` sequences that each hold
``context_tokens`` cached tokens: it writes the new token's K and V into the cache and attends
over ``context_tokens + 1`` keys, so every cached KV byte is read once per layer.

What each step reads, per layer: every weight once, and the batch's K and V
(2 × KV heads × head dim × (context + 1) elements per sequence). Attention is two batched
matrix products over the cache, grouped so that each KV head's cache is read once for the
``heads / kv_heads`` query heads that share it (no ``repeat_interleave`` copy). Activation
traffic (a few vectors of ``hidden`` or ``intermediate`` per sequence, and the logits) is not
counted by the roofline and is below 1 % of the bytes at the shapes used here.

Precisions: BF16/FP16/FP32 weights use ``torch.nn.functional.linear``; FP8 (E4M3) weights use
``torch._scaled_mm`` with per-tensor scales of 1 and the activations cast to FP8 before each
product (W8A8, as FP8 serving engines run). The KV cache and activations stay in BF16 on a GPU
(FP32 on a CPU, where BF16 matrix products are slow).

On CUDA a step is captured once per batch size into a CUDA graph and replayed, as serving
engines do for decode: eager PyTorch spends 5–10 µs of CPU per kernel launch, and a 32-layer
step launches about 550 kernels, which at batch 1 would add 3–5 ms of launch gaps to the 4.5 ms
the GPU needs to read 15 GB of weights.

Worked example: Llama-3.1-8B's layer holds 4,096 × 6,144 (QKV) + 4,096 × 4,096 (O) +
4,096 × 28,672 (gate/up) + 14,336 × 4,096 (down) = 218 M weights, 436 MB in BF16; with the
128,256 × 4,096 LM head (1.05 GB) the 32-layer stack is 15.0 GB, and the cache for 512 sequences
of 129 tokens takes 512 × 129 × 131,072 B = 8.66 GB.
"""

from __future__ import annotations

import importlib
import math
import statistics
from dataclasses import dataclass
from typing import Any

from infphys.catalog import ModelSpec
from infphys.measure.gpu._timing import cuda_event_times_s, host_times_s

__all__ = [
    "DecodeStack",
    "StepTiming",
    "fp8_unsupported_reason",
    "import_torch",
    "supports_experiment",
]

#: Dtype names for the weight precisions the stack can build.
_WEIGHT_DTYPES = {
    "fp32": "float32",
    "bf16": "bfloat16",
    "fp16": "float16",
    "fp8": "float8_e4m3fn",
}


def import_torch() -> Any:
    """Import torch, or raise ``ValueError`` saying how to install it."""
    try:
        return importlib.import_module("torch")
    except ImportError:
        raise ValueError(
            "torch is needed for this experiment: pip install 'infphys[gpu]' (or torch)"
        ) from None


def supports_experiment(model: ModelSpec) -> str | None:
    """None if the stack can take ``model``'s shape, else why not (MoE, MLA, biases, windows)."""
    if model.is_moe:
        return "mixture-of-experts layers are not built by the decode stack"
    if model.is_mla:
        return "multi-head latent attention is not built by the decode stack"
    if model.sliding_window_layers:
        return "sliding-window layers are not built by the decode stack"
    if model.attention_bias or model.o_bias or model.attention_sinks:
        return "attention biases and sinks are not built by the decode stack"
    return None


def fp8_unsupported_reason(torch: Any, device: Any, act_dtype: Any) -> str | None:
    """None if FP8 matrix products run on ``device`` with this torch, else the reason.

    Needs ``torch.float8_e4m3fn`` and ``torch._scaled_mm``, and on CUDA compute capability 8.9
    (Ada) or later; a tiny product is tried to be sure.
    """
    if not hasattr(torch, "float8_e4m3fn") or not hasattr(torch, "_scaled_mm"):
        return f"torch {torch.__version__} has no float8_e4m3fn / _scaled_mm"
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        if (major, minor) < (8, 9):
            return f"compute capability {major}.{minor} has no FP8 tensor cores (8.9+ needed)"
    try:
        a = torch.zeros(16, 32, device=device, dtype=act_dtype).to(torch.float8_e4m3fn)
        b = torch.zeros(32, 32, device=device, dtype=act_dtype).to(torch.float8_e4m3fn)
        one = torch.ones((), device=device, dtype=torch.float32)
        torch._scaled_mm(a, b.t(), scale_a=one, scale_b=one, out_dtype=act_dtype)
    except Exception as exc:
        return f"torch._scaled_mm failed here: {type(exc).__name__}: {exc}"
    return None


@dataclass(frozen=True, slots=True)
class StepTiming:
    """Timings of one batch size: the median and minimum of ``repeats`` steps, in seconds."""

    batch: int
    step_s: float
    step_min_s: float
    repeats: int
    cuda_graph: bool
    note: str | None = None

    @classmethod
    def of(
        cls, batch: int, times_s: list[float], cuda_graph: bool, note: str | None = None
    ) -> StepTiming:
        """The timing of ``batch`` from its steps' seconds: 3 steps of 8, 6 and 7 ms give
        ``step_s`` 7 ms (the median), ``step_min_s`` 6 ms and ``repeats`` 3."""
        if not times_s:
            raise ValueError("times_s must hold at least one step's time")
        return cls(batch, statistics.median(times_s), min(times_s), len(times_s), cuda_graph, note)


@dataclass
class _Layer:
    attn_norm: Any
    w_qkv: Any
    w_o: Any
    mlp_norm: Any
    w_gate_up: Any
    w_down: Any
    k_cache: Any
    v_cache: Any


class DecodeStack:
    """The tensors of ``model``'s layer stack on ``device``, sized for ``max_batch`` sequences of
    ``context_tokens`` cached tokens, with weights in ``precision`` (fp32, bf16, fp16 or fp8).

    Raises:
        ValueError: naming ``model`` or ``precision`` when the stack cannot be built.
    """

    def __init__(
        self,
        torch: Any,
        model: ModelSpec,
        *,
        precision: str,
        device: Any,
        max_batch: int,
        context_tokens: int,
        seed: int = 0,
    ) -> None:
        why = supports_experiment(model)
        if why:
            raise ValueError(f"model: {model.name}: {why}")
        if precision not in _WEIGHT_DTYPES:
            raise ValueError(
                f"precision must be one of {', '.join(_WEIGHT_DTYPES)} (got {precision!r})"
            )
        self.torch = torch
        self.model = model
        self.precision = precision
        self.device = device
        self.max_batch = max_batch
        self.context_tokens = context_tokens
        on_cuda = device.type == "cuda"
        self.weight_dtype = getattr(torch, _WEIGHT_DTYPES[precision])
        self.fp8 = precision == "fp8"
        if self.fp8:  # W8A8: activations and the KV cache stay in BF16 (FP32 on a CPU)
            self.act_dtype = torch.bfloat16 if on_cuda else torch.float32
        else:
            self.act_dtype = self.weight_dtype
        self._fast_accum = on_cuda
        m = model
        self.group = m.heads // m.kv_heads
        self.q_size = m.heads * m.head_dim
        self.kv_size = m.kv_heads * m.head_dim
        self.scale = 1.0 / math.sqrt(m.head_dim)
        self.eps = 1e-5
        gen = torch.Generator(device=device)
        gen.manual_seed(int(seed))
        self._gen = gen
        self._one = torch.ones((), device=device, dtype=torch.float32)
        h, i = m.hidden, m.intermediate
        slots = context_tokens + 1
        self.layers: list[_Layer] = []
        for _ in range(m.layers):
            self.layers.append(
                _Layer(
                    attn_norm=torch.ones(h, device=device, dtype=self.act_dtype),
                    w_qkv=self._weight(self.q_size + 2 * self.kv_size, h),
                    w_o=self._weight(h, self.q_size),
                    mlp_norm=torch.ones(h, device=device, dtype=self.act_dtype),
                    w_gate_up=self._weight(2 * i, h),
                    w_down=self._weight(h, i),
                    k_cache=self._randn(max_batch, m.kv_heads, slots, m.head_dim),
                    v_cache=self._randn(max_batch, m.kv_heads, slots, m.head_dim),
                )
            )
        self.final_norm = torch.ones(h, device=device, dtype=self.act_dtype)
        self.lm_head = self._weight(m.vocab, h)
        self.x0 = self._randn(max_batch, h)

    # --- construction ----------------------------------------------------------------------
    def _randn(self, *shape: int) -> Any:
        return self.torch.randn(
            *shape, generator=self._gen, device=self.device, dtype=self.act_dtype
        )

    def _weight(self, n_out: int, n_in: int) -> Any:
        """A random ``[n_out, n_in]`` weight (row-major, as ``F.linear`` and ``_scaled_mm``'s
        column-major second operand ``w.t()`` want), scaled so activations stay near 1."""
        w = self._randn(n_out, n_in)
        w.mul_(1.0 / math.sqrt(n_in))
        return w.to(self.weight_dtype) if w.dtype != self.weight_dtype else w

    # --- the step ----------------------------------------------------------------------------
    def _linear(self, x: Any, w: Any) -> Any:
        t = self.torch
        if self.fp8:
            return t._scaled_mm(
                x.to(self.weight_dtype),
                w.t(),
                scale_a=self._one,
                scale_b=self._one,
                out_dtype=self.act_dtype,
                use_fast_accum=self._fast_accum,
            )
        return t.nn.functional.linear(x, w)

    def step(self, batch: int) -> Any:
        """One decode step for the first ``batch`` sequences; returns the logits."""
        t, m, F = self.torch, self.model, self.torch.nn.functional
        b, pos = batch, self.context_tokens
        x = self.x0[:b]
        for layer in self.layers:
            h = F.rms_norm(x, (m.hidden,), layer.attn_norm, self.eps)
            qkv = self._linear(h, layer.w_qkv)
            q = qkv[:, : self.q_size].reshape(b, m.kv_heads, self.group, m.head_dim) * self.scale
            k = qkv[:, self.q_size : self.q_size + self.kv_size].reshape(b, m.kv_heads, m.head_dim)
            v = qkv[:, self.q_size + self.kv_size :].reshape(b, m.kv_heads, m.head_dim)
            kc, vc = layer.k_cache[:b], layer.v_cache[:b]
            kc[:, :, pos].copy_(k)  # the new token's K and V join the cache
            vc[:, :, pos].copy_(v)
            scores = t.matmul(q, kc.transpose(-1, -2))  # [b, kv_heads, group, context + 1]
            attn = t.matmul(t.softmax(scores, dim=-1), vc).reshape(b, self.q_size)
            x = x + self._linear(attn, layer.w_o)
            h = F.rms_norm(x, (m.hidden,), layer.mlp_norm, self.eps)
            gu = self._linear(h, layer.w_gate_up)
            x = x + self._linear(
                F.silu(gu[:, : m.intermediate]) * gu[:, m.intermediate :], layer.w_down
            )
        return self._linear(F.rms_norm(x, (m.hidden,), self.final_norm, self.eps), self.lm_head)

    # --- timing ------------------------------------------------------------------------------
    def time_step(
        self, batch: int, *, repeats: int = 10, warmup: int = 3, cuda_graph: bool = True
    ) -> StepTiming:
        """Median and minimum time of ``repeats`` decode steps at ``batch``.

        CUDA: warm-up on a side stream, capture into a CUDA graph (eager if capture fails;
        the note says so), then time each replay between CUDA events. CPU: ``perf_counter``
        around each eager step.
        """
        if not 1 <= batch <= self.max_batch:
            raise ValueError(f"batch must be in [1, {self.max_batch}] (got {batch})")
        t = self.torch
        if self.device.type != "cuda":
            times = host_times_s(lambda: self.step(batch), repeats, warmup=warmup)
            return StepTiming.of(batch, times, cuda_graph=False)

        side = t.cuda.Stream(device=self.device)
        side.wait_stream(t.cuda.current_stream(self.device))
        with t.cuda.stream(side):
            for _ in range(max(warmup, 2)):
                self.step(batch)
        t.cuda.current_stream(self.device).wait_stream(side)
        t.cuda.synchronize(self.device)

        graph: Any = None
        note: str | None = None
        if cuda_graph:
            try:
                graph = t.cuda.CUDAGraph()
                with t.cuda.graph(graph):
                    self.step(batch)
                graph.replay()
                t.cuda.synchronize(self.device)
            except Exception as exc:
                graph = None
                note = f"CUDA graph capture failed ({type(exc).__name__}: {exc}); timed eagerly"
                t.cuda.synchronize(self.device)
        run = graph.replay if graph is not None else (lambda: self.step(batch))
        times = cuda_event_times_s(t, self.device, run, repeats)
        used_graph = graph is not None
        del graph, run
        return StepTiming.of(batch, times, used_graph, note)

    def free(self) -> None:
        """Drop every tensor (and on CUDA return the cached memory to the driver)."""
        self.layers.clear()
        self.lm_head = self.x0 = self.final_norm = None
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)
            self.torch.cuda.empty_cache()
