"""The roofline experiment on a CPU with the scaled-down shape: the same code path a GPU runs,
with the prediction checked against a hand calculation."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest

from infphys.catalog import FITTED_STEP_PARAMS, IDEAL_STEP_PARAMS
from infphys.measure.gpu import (
    CPU_SCALED_MODEL,
    EXPERIMENT_COLUMNS,
    experiment_model,
    predict_decode_step,
    roofline_experiment,
)
from infphys.measure.gpu.roofline_experiment import experiment_memory_bytes

torch = pytest.importorskip("torch")

# Hand calculation for CPU_SCALED_MODEL (2 layers, hidden 256, 4 heads / 2 KV heads of 64,
# intermediate 768, vocabulary 2,048, one tied vocab × hidden matrix), FP32 weights and KV:
#   per layer: q 256·256 + k,v 2·256·128 + o 256·256 = 196,608; MLP 3·256·768 = 589,824;
#              two norms 512 → 786,944; two layers 1,573,888
#   LM head 2,048·256 = 524,288; final norm 256 → 2,098,432 parameters → 8,393,728 bytes (FP32)
#   KV per token per layer: 2 · 2 KV heads · 64 · 4 bytes = 1,024 bytes
#   batch 1, 16 cached tokens: read 2 layers · 16 · 1,024 = 32,768, write 2 · 1,024 = 2,048
#   → 8,428,544 bytes; on an H100 SXM (3.35 TB/s) 8,428,544 / 3.35e12 = 2.516 µs
#   FLOPs: 2 · 2,098,432 = 4,196,864 per token, plus attention 2 · 4 heads · (64 + 64) = 1,024
#   per (query, key) pair · 17 pairs · 2 layers = 34,816 → 4,231,680 (4.3 ns at 989 TFLOP/s)
#   batch 4: 8,393,728 + 4 · (32,768 + 2,048) = 8,532,992 bytes, 4 · (4,196,864 + 34,816) FLOPs
BYTES_B1 = 8_428_544
FLOPS_B1 = 4_231_680
BYTES_B4 = 8_532_992
FLOPS_B4 = 16_926_720
H100_BW = 3.35e12


#: One torch thread while these tests run (tests/conftest.py); skipped without torch.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _on_h100(**kwargs: Any) -> pd.DataFrame:
    """The experiment on the CPU-scaled model at 16 tokens of context, priced for an H100 SXM,
    on the CPU even where CUDA is present (the hand figures assume FP32 KV and no CUDA graph)."""
    return roofline_experiment(
        CPU_SCALED_MODEL, context_tokens=16, gpu="h100", device="cpu", **kwargs
    )


def test_small_shape_prediction_matches_hand_calculation() -> None:
    assert CPU_SCALED_MODEL.params_total == 2_098_432
    st = predict_decode_step(
        "h100",
        CPU_SCALED_MODEL,
        "fp32",
        1,
        16,
        on_cuda=False,
        params=IDEAL_STEP_PARAMS,
    )
    assert st.bytes_moved == BYTES_B1
    assert st.flops == FLOPS_B1
    assert st.total_s == pytest.approx(BYTES_B1 / H100_BW, rel=1e-12)
    assert st.bound == "memory"
    default = predict_decode_step("h100", CPU_SCALED_MODEL, "fp32", 1, 16, on_cuda=False)
    # The fitted model adds its fixed costs: one step, two layers, one sequence.
    f = FITTED_STEP_PARAMS
    expected_overhead = f.step_overhead_s + 2 * f.layer_overhead_s + f.sequence_overhead_s
    assert default.overhead_s == pytest.approx(expected_overhead, rel=1e-12)
    assert default.total_s > st.total_s + expected_overhead


def test_experiment_on_cpu_against_h100_datasheet() -> None:
    df = _on_h100(batch_sizes=(4, 1), precisions=("fp32",), repeats=2, warmup=1)
    assert list(df.columns) == list(EXPERIMENT_COLUMNS)
    assert list(df["batch"]) == [1, 4]  # sorted
    assert list(df["bytes_moved"]) == [BYTES_B1, BYTES_B4]
    assert list(df["flops"]) == [FLOPS_B1, FLOPS_B4]
    r1 = df.iloc[0]
    assert r1["predicted_peak_step_s"] == pytest.approx(BYTES_B1 / H100_BW, rel=1e-12)
    assert r1["predicted_default_step_s"] > r1["predicted_peak_step_s"]
    assert r1["predicted_bound"] == "memory"
    for r in df.to_dict(orient="records"):
        assert 0 < r["step_min_s"] <= r["step_s"] < 10
        assert r["achieved_bandwidth_bytes_per_s"] == pytest.approx(r["bytes_moved"] / r["step_s"])
        assert r["achieved_flops_per_s"] == pytest.approx(r["flops"] / r["step_s"])
        assert r["error_vs_peak"] == pytest.approx(r["step_s"] / r["predicted_peak_step_s"] - 1)
        assert r["tokens_per_s"] == pytest.approx(r["batch"] / r["step_s"])
        # A CPU cannot beat an H100's datasheet roofline.
        assert r["error_vs_peak"] > 0 and r["fraction_of_peak_bandwidth"] < 1
        assert r["layers"] == 2 and r["context_tokens"] == 16 and not r["cuda_graph"]
    a = df.attrs
    assert a["gpu_key"] == "h100-sxm" and a["gpu_source"] == "datasheet, as asked"
    assert a["memory"] == "host" and a["device"] == "cpu"
    assert a["ridge_point_flop_per_byte"]["fp32"] == pytest.approx(989 / 3.35)
    assert a["skipped"] == {}


def test_fp8_path_runs_or_is_skipped_with_a_reason() -> None:
    df = _on_h100(batch_sizes=(1, 4), precisions=("fp8",), repeats=1, warmup=1)
    if "fp8" in df.attrs["skipped"]:
        assert df.empty and df.attrs["skipped"]["fp8"]
        return
    # FP8 weights: 2,098,432 bytes; the KV cache stays FP32 on a CPU (34,816 bytes at batch 1).
    assert list(df["bytes_moved"]) == [2_098_432 + 34_816, 2_098_432 + 4 * 34_816]
    assert df.attrs["ridge_point_flop_per_byte"]["fp8"] == pytest.approx(1979 / 3.35)
    assert (df["step_s"] > 0).all()


def test_default_cpu_run_prices_against_measured_figures() -> None:
    df = roofline_experiment(batch_sizes=(1,), context_tokens=8, repeats=1, warmup=1, device="cpu")
    a = df.attrs
    assert a["model"] == "tiny Llama-shaped stack (CPU)"
    assert a["gpu_source"] == "measured on this machine" and a["gpu_key"] == "measured"
    assert a["peak_bandwidth_bytes_per_s"] > 1e7
    assert math.isfinite(df["error_vs_default"].iloc[0])
    assert any("priced against figures measured here" in n for n in a["notes"])


def test_memory_budget_lowers_the_layer_count() -> None:
    one = experiment_memory_bytes(
        experiment_model(CPU_SCALED_MODEL, 1), "fp32", 4, 16, on_cuda=False
    )
    df = _on_h100(
        batch_sizes=(1, 4), precisions=("fp32",), repeats=1, warmup=0, max_memory_bytes=one + 1
    )
    assert set(df["layers"]) == {1}
    assert "fp32: built 1 of 2 layers to fit 0.0 GiB" in df.attrs["notes"]
    # One layer: 786,944 + 524,288 + 256 = 1,311,488 parameters, 5,245,952 bytes, plus KV.
    assert df["bytes_moved"].iloc[0] == 5_245_952 + 16 * 1024 + 1024
    tiny = _on_h100(batch_sizes=(1,), precisions=("fp32",), max_memory_bytes=1000)
    assert tiny.empty and "even one layer" in tiny.attrs["skipped"]["fp32"]


def test_time_budget_skips_with_the_reason() -> None:
    df = roofline_experiment(
        CPU_SCALED_MODEL,
        batch_sizes=(1, 2),
        precisions=("fp32", "fp8"),
        gpu="h100",
        repeats=1,
        warmup=0,
        time_budget_s=1e-9,
    )
    assert list(df["batch"]) == [1]  # the first measurement always runs
    assert "fp32: batch 2 and above skipped: time budget of 1e-09 s spent" in df.attrs["notes"]
    assert df.attrs["skipped"] == {"fp8": "time budget of 1e-09 s spent"}


def test_experiment_model_shapes() -> None:
    m = experiment_model("llama-3.1-8b", 8)
    # 8 layers of 218,112,000 + the 525,336,576 LM head + final norm 4,096.
    assert m.params_total == 8 * 218_112_000 + 525_336_576 + 4096
    assert m.name == "Llama-3.1-8B (8 of 32 layers + LM head)"
    full = experiment_model("llama-3.1-8b")
    assert full.layers == 32 and full.tie_embeddings
    assert full.params_total == 8_030_261_248 - 525_336_576  # one vocab × hidden table fewer
    assert experiment_model(CPU_SCALED_MODEL) is CPU_SCALED_MODEL


@pytest.mark.parametrize(
    ("model", "layers", "match"),
    [
        ("mixtral-8x7b", None, "mixture-of-experts"),
        ("deepseek-v3", None, "mixture-of-experts"),
        ("qwen2.5-7b", None, "attention biases"),
        ("llama-3.1-8b", 33, r"layers must be in \[1, 32\]"),
        ("llama-3.1-8b", 0, "layers must be a whole number"),
    ],
)
def test_experiment_model_refuses(model: str, layers: int | None, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        experiment_model(model, layers)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="precisions"):
        roofline_experiment(CPU_SCALED_MODEL, precisions=("int4",), gpu="h100")
    with pytest.raises(ValueError, match="device must be"):
        roofline_experiment(CPU_SCALED_MODEL, device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="torch sees no CUDA GPU"):
            roofline_experiment(CPU_SCALED_MODEL, device="cuda")


def test_decode_stack_step_shapes() -> None:
    from infphys.measure.gpu import DecodeStack

    stack = DecodeStack(
        torch,
        CPU_SCALED_MODEL,
        precision="fp32",
        device=torch.device("cpu"),
        max_batch=4,
        context_tokens=16,
    )
    before = stack.layers[0].k_cache[:, :, 16].clone()
    with torch.inference_mode():
        logits = stack.step(3)
    assert tuple(logits.shape) == (3, 2048)
    assert torch.isfinite(logits).all()
    after = stack.layers[0].k_cache[:, :, 16]
    assert not torch.equal(before[:3], after[:3])  # the new token's K was written
    assert torch.equal(before[3:], after[3:])  # sequences outside the batch untouched
    with pytest.raises(ValueError, match="batch must be in"):
        stack.time_step(5)
