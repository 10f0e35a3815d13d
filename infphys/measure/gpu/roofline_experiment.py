"""The roofline experiment: time real decode steps and put them next to the roofline's prediction.

For each weight precision and batch size, :func:`roofline_experiment` times one decode step of a
:class:`~infphys.measure.gpu.decode_stack.DecodeStack` (random weights on the device, the real
matrix shapes of a catalog model, a KV cache of ``context_tokens`` per sequence) and prices the
same step with :class:`infphys.physics.RooflineModel` twice: with efficiency 1 (the datasheet
roofline, a floor no step can beat) and with the kit's defaults (80 % of bandwidth, 70 % of
FLOP/s). The physics is not re-derived here: bytes and FLOPs come from
``RooflineModel.step_for([1] * batch, [context_tokens] * batch)``, and

    achieved bandwidth = bytes the roofline counts / measured step time
    achieved FLOP/s    = FLOPs the roofline counts / measured step time
    error              = measured step time / predicted step time − 1

The shape priced is the shape run (:func:`experiment_model`): the model's first ``layers`` layers
and one ``vocab × hidden`` matrix, the LM head. A decode step reads only ``batch`` rows of the
input-embedding table, so the experiment starts from a ready activation and tells the roofline
so by pricing the model with tied embeddings (one table, counted once, with its FLOPs).

On CUDA the default shape is Llama-3.1-8B in BF16 and FP8 (FP8 only where the GPU has FP8 tensor
cores and torch has ``_scaled_mm``; otherwise it is skipped with the reason). The GPU's
datasheet comes from the catalog by its name; an unknown GPU (or a CPU) is priced against figures
measured on the spot (:func:`measure_machine_spec`: copy bandwidth and a large matrix product),
labelled as such. On a CPU the default is :data:`CPU_SCALED_MODEL`, a two-layer Llama-shaped
stack of hidden size 256 in FP32, so the same code path runs in a second.

Worked example (Llama-3.1-8B BF16, all 32 layers, 128 cached tokens, H100 SXM): at batch 1 the
step moves 15.03 GB (7.50 B weights × 2 bytes, plus 16.9 MB of KV read and written), so the
roofline's floor is 15.03 / 3.35 = 4.49 ms (5.61 ms at 80 %). At batch 512 it moves 23.67 GB
(7.06 ms) but computes 2 × 7.50 × 10^9 × 512 = 7.72 × 10^12 FLOPs (7.81 ms at 989 TFLOP/s):
decode has crossed the ridge point (295 FLOP/byte) and turned compute-bound.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Sequence
from typing import Any

import pandas as pd

from infphys._check import non_negative_int, positive, positive_int
from infphys.catalog import (
    IDEAL_STEP_PARAMS,
    GPUSpec,
    ModelSpec,
    get_gpu,
    get_model,
    match_gpu_name,
)
from infphys.measure.gpu._timing import host_times_s
from infphys.measure.gpu.copy_bandwidth import copy_bandwidth, host_name
from infphys.measure.gpu.decode_stack import (
    DecodeStack,
    StepTiming,
    fp8_unsupported_reason,
    import_torch,
    supports_experiment,
)
from infphys.physics import (
    RooflineModel,
    StepTime,
    kv_bytes_per_sequence,
    ridge_point,
    weight_bytes,
)

__all__ = [
    "CPU_SCALED_MODEL",
    "DEFAULT_BATCH_SIZES",
    "DEFAULT_CONTEXT_TOKENS",
    "DEFAULT_CPU_BATCH_SIZES",
    "EXPERIMENT_COLUMNS",
    "experiment_memory_bytes",
    "experiment_model",
    "measure_machine_spec",
    "predict_decode_step",
    "roofline_experiment",
]

#: A Llama-shaped stack small enough for a CPU: 2 layers, hidden 256, 4 heads / 2 KV heads of
#: 64, intermediate 768, vocabulary 2,048 (every width a multiple of 16, as FP8 products need).
CPU_SCALED_MODEL = ModelSpec(
    key="tiny-llama-cpu",
    name="tiny Llama-shaped stack (CPU)",
    family="llama",
    layers=2,
    hidden=256,
    heads=4,
    kv_heads=2,
    head_dim=64,
    vocab=2048,
    intermediate=768,
    tie_embeddings=True,
    max_context_tokens=4096,
    source="infphys: a scaled-down Llama shape for CPU runs of the roofline experiment",
)

#: Batch sizes (sequences per decode step) timed by default on a GPU.
DEFAULT_BATCH_SIZES: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
#: Batch sizes timed by default on a CPU (fewer: each step there takes milliseconds).
DEFAULT_CPU_BATCH_SIZES: tuple[int, ...] = (1, 4, 16, 64, 256)
#: Cached tokens per sequence by default: short, so the weights dominate and the ridge shows.
DEFAULT_CONTEXT_TOKENS = 128

#: The result frame's columns, in order.
EXPERIMENT_COLUMNS = (
    "precision",
    "batch",
    "context_tokens",
    "layers",
    "step_s",
    "step_min_s",
    "repeats",
    "cuda_graph",
    "tokens_per_s",
    "bytes_moved",
    "flops",
    "intensity_flop_per_byte",
    "achieved_bandwidth_bytes_per_s",
    "achieved_flops_per_s",
    "fraction_of_peak_bandwidth",
    "fraction_of_peak_flops",
    "predicted_peak_step_s",
    "predicted_peak_memory_s",
    "predicted_peak_compute_s",
    "predicted_bound",
    "predicted_default_step_s",
    "error_vs_peak",
    "error_vs_default",
)

_KV_PRECISION = {"fp32": "fp32", "bf16": "bf16", "fp16": "fp16"}
#: Host memory the CPU path may use by default (bytes).
DEFAULT_CPU_MEMORY_BYTES = 2 * 2**30
#: Fraction of the GPU's free memory the experiment may use.
_GPU_MEMORY_FRACTION = 0.85


def experiment_model(model: ModelSpec | str, layers: int | None = None) -> ModelSpec:
    """The shape the experiment runs and prices: ``layers`` of ``model``'s layers and one
    ``vocab × hidden`` LM head (tied embeddings, see the module docstring).

    >>> m = experiment_model("llama-3.1-8b", 8)
    >>> m.layers, m.tie_embeddings, m.params_total
    (8, True, 2270236672)

    Raises:
        ValueError: naming ``model`` (MoE, MLA, biases or windows) or ``layers``.
    """
    m = get_model(model)
    why = supports_experiment(m)
    if why:
        raise ValueError(f"model: {m.name}: {why}; use a dense Llama-like model")
    n = m.layers if layers is None else positive_int("layers", layers)
    if n > m.layers:
        raise ValueError(f"layers must be in [1, {m.layers}] for {m.name} (got {n})")
    if n == m.layers and m.tie_embeddings:
        return m
    part = f"{n} layers" if n == m.layers else f"{n} of {m.layers} layers"
    return dataclasses.replace(
        m,
        key=f"{m.key}-x{n}" if n != m.layers else m.key,
        name=f"{m.name} ({part} + LM head)",
        layers=n,
        tie_embeddings=True,
        published_params=None,
        published_active_params=None,
        source=f"{m.source}; as run by the infphys roofline experiment",
    )


def _kv_precision(precision: str, on_cuda: bool) -> str:
    if precision == "fp8":
        return "bf16" if on_cuda else "fp32"
    return _KV_PRECISION[precision]


def experiment_memory_bytes(
    model: ModelSpec, precision: str, max_batch: int, context_tokens: int, *, on_cuda: bool
) -> float:
    """Bytes the stack needs: weights, the KV cache for ``max_batch`` sequences of
    ``context_tokens + 1`` tokens, and a margin for activations (logits included)."""
    kv = _kv_precision(precision, on_cuda)
    weights = weight_bytes(model, precision)
    cache = kv_bytes_per_sequence(model, context_tokens + 1, kv) * max_batch
    act_bytes = 2 if on_cuda else 4
    activations = 4 * max_batch * (model.vocab + 4 * model.intermediate) * act_bytes
    staging = model.vocab * model.hidden * act_bytes if precision == "fp8" else 0.0
    return weights + cache + activations + staging


def predict_decode_step(
    gpu: GPUSpec | str,
    model: ModelSpec,
    precision: str,
    batch: int,
    context_tokens: int,
    *,
    on_cuda: bool = True,
    **knobs: Any,
) -> StepTime:
    """The roofline's :class:`~infphys.physics.StepTime` for one decode step of the experiment's
    shape (``knobs`` as for :meth:`~infphys.physics.RooflineModel.build`)."""
    rm = RooflineModel.build(
        gpu,
        model,
        weights_precision=precision,
        kv_precision=_kv_precision(precision, on_cuda),
        **knobs,
    )
    return rm.step_for([1] * batch, [context_tokens] * batch)


def measure_machine_spec(torch: Any, device: Any, dtype: Any) -> GPUSpec:
    """A :class:`~infphys.catalog.GPUSpec` for a device the catalog lacks (or the host CPU),
    from two measurements: copy bandwidth (read plus written) and the FLOP/s of a large
    square matrix product in ``dtype``. Every source says "measured"."""
    on_cuda = device.type == "cuda"
    if on_cuda:
        name = str(torch.cuda.get_device_name(device))
        copy = copy_bandwidth(
            [256 * 2**20], repeats=5, backend="torch-cuda", device_index=device.index or 0
        )
        n = 8192
    else:
        name = host_name()
        copy = copy_bandwidth([64 * 2**20], repeats=5, backend="torch-cpu")
        n = 512
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)

    def product() -> None:  # waits for the GPU, so the host clock times the kernel
        torch.matmul(a, b)
        if on_cuda:
            torch.cuda.synchronize(device)

    flops = 2.0 * n**3 / statistics.median(host_times_s(product, 5))
    what = f"measured on this machine by infphys ({'device' if on_cuda else 'host'} memory)"
    return GPUSpec(
        key="measured",
        name=name,
        memory_bytes=float(torch.cuda.get_device_properties(device).total_memory)
        if on_cuda
        else float(DEFAULT_CPU_MEMORY_BYTES),
        bandwidth_bytes_per_s=copy.bandwidth_bytes_per_s,
        bf16_flops_per_s=flops,
        fp8_flops_per_s=None,
        sources={
            "memory_bytes": what,
            "bandwidth_bytes_per_s": f"copy bandwidth, read plus written; {what}",
            "bf16_flops_per_s": f"{n}×{n} matmul in {str(dtype).removeprefix('torch.')}; {what}",
            "fp8_flops_per_s": "not measured",
        },
    )


def _resolve_device(torch: Any, device: str) -> Any:
    if device not in ("auto", "cuda", "cpu"):
        raise ValueError(f"device must be auto, cuda or cpu (got {device!r})")
    if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ValueError("device: cuda was asked for, and torch sees no CUDA GPU")
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _row(
    precision: str,
    timing: StepTiming,
    model: ModelSpec,
    context_tokens: int,
    gpu: GPUSpec,
    on_cuda: bool,
) -> dict[str, Any]:
    b = timing.batch
    peak = predict_decode_step(
        gpu,
        model,
        precision,
        b,
        context_tokens,
        on_cuda=on_cuda,
        params=IDEAL_STEP_PARAMS,
    )
    default = predict_decode_step(gpu, model, precision, b, context_tokens, on_cuda=on_cuda)
    peak_flops = gpu.flops_per_s(precision == "fp8")
    achieved_bw = peak.bytes_moved / timing.step_s
    achieved_flops = peak.flops / timing.step_s
    return {
        "precision": precision,
        "batch": b,
        "context_tokens": context_tokens,
        "layers": model.layers,
        "step_s": timing.step_s,
        "step_min_s": timing.step_min_s,
        "repeats": timing.repeats,
        "cuda_graph": timing.cuda_graph,
        "tokens_per_s": b / timing.step_s,
        "bytes_moved": peak.bytes_moved,
        "flops": peak.flops,
        "intensity_flop_per_byte": peak.intensity,
        "achieved_bandwidth_bytes_per_s": achieved_bw,
        "achieved_flops_per_s": achieved_flops,
        "fraction_of_peak_bandwidth": achieved_bw / gpu.bandwidth_bytes_per_s,
        "fraction_of_peak_flops": achieved_flops / peak_flops,
        "predicted_peak_step_s": peak.total_s,
        "predicted_peak_memory_s": peak.memory_s,
        "predicted_peak_compute_s": peak.compute_s,
        "predicted_bound": peak.bound,
        "predicted_default_step_s": default.total_s,
        "error_vs_peak": timing.step_s / peak.total_s - 1.0,
        "error_vs_default": timing.step_s / default.total_s - 1.0,
    }


def _fit_layers(
    base: ModelSpec,
    layers: int,
    precision: str,
    max_batch: int,
    context_tokens: int,
    on_cuda: bool,
    budget_bytes: float,
) -> int:
    """The most layers (≤ ``layers``) whose stack fits in ``budget_bytes``; 0 if none does."""
    for n in range(layers, 0, -1):
        spec = experiment_model(base, n)
        need = experiment_memory_bytes(spec, precision, max_batch, context_tokens, on_cuda=on_cuda)
        if need <= budget_bytes:
            return n
    return 0


def roofline_experiment(
    model: ModelSpec | str | None = None,
    *,
    batch_sizes: Sequence[int] | None = None,
    context_tokens: int = DEFAULT_CONTEXT_TOKENS,
    precisions: Sequence[str] | None = None,
    layers: int | None = None,
    gpu: GPUSpec | str | None = None,
    device: str = "auto",
    repeats: int = 10,
    warmup: int = 3,
    cuda_graph: bool = True,
    time_budget_s: float = 120.0,
    max_memory_bytes: float | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Time decode steps of a model-shaped stack and compare each with the roofline.

    Args:
        model: catalog key or spec; default Llama-3.1-8B on CUDA, :data:`CPU_SCALED_MODEL` on
            a CPU. Dense GQA/MHA models without biases only.
        batch_sizes: sequences per step (each decoding one token); default
            :data:`DEFAULT_BATCH_SIZES` (1 … 512) on CUDA, :data:`DEFAULT_CPU_BATCH_SIZES` on a CPU.
        context_tokens: cached tokens per sequence (the new token attends to these plus itself).
        precisions: weight precisions among ``bf16``, ``fp16``, ``fp32``, ``fp8``; default
            ``("bf16", "fp8")`` on CUDA and ``("fp32",)`` on a CPU. One the device cannot run
            is skipped with the reason in ``attrs["skipped"]``.
        layers: layers to build (default all); lowered, with a note, when memory is short.
        gpu: the GPU to price against; default the catalog entry for this GPU, else figures
            measured here (:func:`measure_machine_spec`).
        device: ``auto``, ``cuda`` or ``cpu``.
        repeats, warmup: timed and untimed steps per batch size (median reported).
        cuda_graph: capture each step into a CUDA graph (CUDA only).
        time_budget_s: batch sizes not started within this many seconds are skipped (noted);
            the first batch size always runs.
        max_memory_bytes: memory the stack may take; default 85 % of the GPU's free memory,
            or 2 GiB on a CPU.
        seed: seed of the device's random generator for weights and caches.

    Returns:
        One row per (precision, batch) timed, columns :data:`EXPERIMENT_COLUMNS`; ``attrs``
        hold the model, device, GPU spec and its source, peak figures and ridge points per
        precision, skipped precisions and notes.

    Raises:
        ValueError: naming the argument, for bad input or when torch is missing.
    """
    t_start = time.perf_counter()
    torch = import_torch()
    dev = _resolve_device(torch, device)
    on_cuda = dev.type == "cuda"
    if batch_sizes is None:
        batch_sizes = DEFAULT_BATCH_SIZES if on_cuda else DEFAULT_CPU_BATCH_SIZES
    batches = sorted({positive_int(f"batch_sizes[{i}]", b) for i, b in enumerate(batch_sizes)})
    if not batches:
        raise ValueError("batch_sizes must hold at least one batch size")
    context = non_negative_int("context_tokens", context_tokens)
    repeats = positive_int("repeats", repeats)
    warmup = non_negative_int("warmup", warmup)
    budget_s = positive("time_budget_s", time_budget_s)
    base = (
        get_model(model)
        if model is not None
        else (get_model("llama-3.1-8b") if on_cuda else CPU_SCALED_MODEL)
    )
    precs = (
        list(precisions) if precisions is not None else (["bf16", "fp8"] if on_cuda else ["fp32"])
    )
    for p in precs:
        if p not in ("bf16", "fp16", "fp32", "fp8"):
            raise ValueError(f"precisions: {p!r} is not one of bf16, fp16, fp32, fp8")
    n_layers = experiment_model(base, layers).layers
    device_name = str(torch.cuda.get_device_name(dev)) if on_cuda else host_name()

    notes: list[str] = []
    skipped: dict[str, str] = {}
    if gpu is not None:
        spec, spec_source = get_gpu(gpu), "datasheet, as asked"
    elif on_cuda and match_gpu_name(device_name) is not None:
        found = match_gpu_name(device_name)
        assert found is not None
        spec, spec_source = found, "catalog datasheet"
    else:
        act = torch.bfloat16 if on_cuda else torch.float32
        spec, spec_source = measure_machine_spec(torch, dev, act), "measured on this machine"
        notes.append(
            f"{device_name} is priced against figures measured here: "
            f"{spec.bandwidth_bytes_per_s / 1e9:,.1f} GB/s copy bandwidth (read plus written), "
            f"{spec.bf16_flops_per_s / 1e9:,.1f} GFLOP/s matmul"
        )
    if max_memory_bytes is not None:
        mem_budget = positive("max_memory_bytes", max_memory_bytes)
    elif on_cuda:
        mem_budget = _GPU_MEMORY_FRACTION * float(torch.cuda.mem_get_info(dev)[0])
    else:
        mem_budget = float(DEFAULT_CPU_MEMORY_BYTES)

    rows: list[dict[str, Any]] = []
    used_layers: dict[str, int] = {}
    with torch.inference_mode():
        for prec in precs:
            if rows and time.perf_counter() - t_start > budget_s:
                skipped[prec] = f"time budget of {budget_s:g} s spent"
                continue
            act_dtype = torch.bfloat16 if on_cuda else torch.float32
            if prec == "fp8":
                why = fp8_unsupported_reason(torch, dev, act_dtype)
                if why:
                    skipped[prec] = why
                    continue
            fit = _fit_layers(base, n_layers, prec, batches[-1], context, on_cuda, mem_budget)
            if fit == 0:
                skipped[prec] = (
                    f"even one layer of {base.name} at batch {batches[-1]} needs more than "
                    f"{mem_budget / 2**30:.1f} GiB; lower batch_sizes or context_tokens"
                )
                continue
            if fit < n_layers:
                notes.append(
                    f"{prec}: built {fit} of {n_layers} layers to fit {mem_budget / 2**30:.1f} GiB"
                )
            spec_model = experiment_model(base, fit)
            used_layers[prec] = fit
            stack = DecodeStack(
                torch,
                spec_model,
                precision=prec,
                device=dev,
                max_batch=batches[-1],
                context_tokens=context,
                seed=seed,
            )
            try:
                for b in batches:
                    if rows and time.perf_counter() - t_start > budget_s:
                        notes.append(
                            f"{prec}: batch {b} and above skipped: time budget "
                            f"of {budget_s:g} s spent"
                        )
                        break
                    try:
                        timing = stack.time_step(
                            b, repeats=repeats, warmup=warmup, cuda_graph=cuda_graph
                        )
                    except Exception as exc:  # one shape failing must not lose the rest
                        notes.append(f"{prec}: batch {b} failed: {type(exc).__name__}: {exc}")
                        continue
                    if timing.note:
                        notes.append(f"{prec}: batch {b}: {timing.note}")
                    rows.append(_row(prec, timing, spec_model, context, spec, on_cuda))
            finally:
                stack.free()
                del stack

    frame = pd.DataFrame(rows, columns=list(EXPERIMENT_COLUMNS))
    frame.attrs.update(
        {
            "model": experiment_model(base, n_layers).name,
            "model_key": base.key,
            "layers": used_layers or {p: n_layers for p in precs},
            "context_tokens": context,
            "device": dev.type,
            "device_name": device_name,
            "memory": "device" if on_cuda else "host",
            "gpu_key": spec.key,
            "gpu_name": spec.name,
            "gpu_source": spec_source,
            "peak_bandwidth_bytes_per_s": spec.bandwidth_bytes_per_s,
            "peak_flops_per_s": {p: spec.flops_per_s(p == "fp8") for p in precs},
            "ridge_point_flop_per_byte": {p: ridge_point(spec, fp8=p == "fp8") for p in precs},
            "skipped": skipped,
            "notes": notes,
            "seed": seed,
            "elapsed_s": time.perf_counter() - t_start,
        }
    )
    return frame
