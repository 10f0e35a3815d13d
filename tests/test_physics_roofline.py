"""Roofline against published figures and hand calculations."""

from __future__ import annotations

import pytest

from infphys.catalog import IDEAL_STEP_PARAMS
from infphys.physics import (
    RooflineModel,
    arithmetic_intensity,
    decode_floor_s,
    decode_step_s,
    decode_step_time,
    expected_experts_touched,
    prefill_time,
    price_step,
    ridge_point,
    step_time,
    tokens_per_s_ceiling,
)

# Llama-3.1-8B: 8,030,261,248 weights × 2 B = 16,060,522,496 B, of which the input embedding
# table (128,256 × 4,096 × 2 B = 1,050,673,152 B) is not read by a decode step: one 8,192-byte
# row per new token is. Weights read at batch 1: 15,009,849,344 + 8,192 B.
W_8B = 16_060_522_496 - 1_050_673_152
ROW_8B = 4096 * 2
KV_8B = 131_072


def test_decode_floor_h100_448_ms() -> None:
    # (15,009,849,344 + 8,192 + 131,072 KV written) B / 3.35 TB/s = 4.4806 ms
    s = decode_floor_s("h100", "llama-3.1-8b")
    assert s == pytest.approx((W_8B + ROW_8B + KV_8B) / 3.35e12, rel=1e-12)
    assert s * 1e3 == pytest.approx(4.48, abs=0.005)


def test_decode_floor_h200_313_ms() -> None:
    s = decode_floor_s("h200", "llama-3.1-8b")
    assert s * 1e3 == pytest.approx(3.127, abs=0.002)


def test_ridge_points() -> None:
    assert ridge_point("h100") == pytest.approx(295, abs=1)
    assert ridge_point("h200") == pytest.approx(206, abs=1)
    # FP8 doubles the FLOP/s and the ridge point
    assert ridge_point("h100", fp8=True) == pytest.approx(1979 / 3.35, rel=1e-9)


def test_fitted_decode_step_matches_measured_nim_itl() -> None:
    # NIM, Llama-3-8B FP16 on one H100, one client, 200/200 tokens: measured mean ITL 7.39 ms
    # (infphys/catalog/data/nim_llama3_serving.csv); the context averages 200 + 100 tokens.
    # The fitted model never saw this row (it is fitted to TensorRT-LLM 0.9 static batches).
    s = decode_step_s("h100", "llama-3.1-8b", 1, 300, weights_precision="fp16", kv_precision="fp16")
    assert s * 1e3 == pytest.approx(7.39, rel=0.10)
    assert s > decode_floor_s("h100", "llama-3.1-8b")


def test_kv_read_adds_to_the_step() -> None:
    # batch 64, 2,000 cached tokens each: 64 × 2,000 × 131,072 B = 16.78 GB read on top of the
    # weights (+ 64 rows of the embedding, + 64 × 131,072 B written), all at 4.8 TB/s
    s = decode_step_time("h200", "llama-3.1-8b", 64, 2000, params=IDEAL_STEP_PARAMS)
    expected_bytes = W_8B + 64 * ROW_8B + 64 * 2000 * KV_8B + 64 * KV_8B
    assert s.bytes_moved == pytest.approx(expected_bytes)
    assert s.memory_s == pytest.approx(expected_bytes / 4.8e12)
    assert s.bound == "memory"


def test_decode_turns_compute_bound_past_the_ridge_with_no_context() -> None:
    small = decode_step_time("h100", "llama-3.1-8b", 64, 0, params=IDEAL_STEP_PARAMS)
    big = decode_step_time("h100", "llama-3.1-8b", 1024, 0, params=IDEAL_STEP_PARAMS)
    assert small.bound == "memory"
    assert big.bound == "compute"


def test_prefill_is_compute_bound_by_hand() -> None:
    # FLOPs: 2 × (8,030,261,248 − 525,336,576 input embedding) × 1,000
    #        + attention 4 × 32 heads × 128 × 32 layers × (1,000 × 1,001 / 2) pairs
    matmul = 2 * (8_030_261_248 - 128_256 * 4096) * 1000
    attn = 2 * 32 * (128 + 128) * 32 * (1000 * 1001 / 2)
    p = prefill_time("h100", "llama-3.1-8b", 1000, params=IDEAL_STEP_PARAMS)
    assert p.flops == pytest.approx(matmul + attn)
    assert p.compute_s == pytest.approx((matmul + attn) / 989e12)
    assert p.bound == "compute"


def test_step_overhead_adds() -> None:
    a = decode_step_s("h100", "llama-3.1-8b", 1, 0, step_overhead_s=0.0)
    b = decode_step_s("h100", "llama-3.1-8b", 1, 0, step_overhead_s=0.002)
    assert b - a == pytest.approx(0.002)


def test_tensor_parallel_halves_memory_time_and_adds_allreduce() -> None:
    p = IDEAL_STEP_PARAMS.with_(allreduce_latency_s=5e-6)
    one = decode_step_time("h100", "llama-3.1-8b", 8, 1000, params=p)
    assert one.comm_s == 0.0
    two = decode_step_time("h100", "llama-3.1-8b", 8, 1000, tp=2, params=p)
    assert two.memory_s == pytest.approx(one.memory_s / 2)
    # 2 all-reduces × 32 layers × (5 µs + 2·(1/2)·(8 × 4096 × 2 B) / 450 GB/s NVLink 4)
    ring = 2 * (2 - 1) / 2 * (8 * 4096 * 2) / 450e9
    assert two.comm_s == pytest.approx(2 * 32 * (5e-6 + ring))
    # Eight GPUs: the same one-shot latency, and 2·7/8 of the bytes.
    eight = decode_step_time("h100", "llama-3.1-8b", 8, 1000, tp=8, params=p)
    ring8 = 2 * 7 / 8 * (8 * 4096 * 2) / 450e9
    assert eight.comm_s == pytest.approx(2 * 32 * (5e-6 + ring8))


def test_parallel_attention_needs_one_allreduce_per_layer() -> None:
    # Falcon-180B sums its parallel attention and MLP outputs before the one all-reduce of a
    # layer; Llama-2-70B (sequential blocks, same 80 layers) needs two.
    p = IDEAL_STEP_PARAMS.with_(allreduce_latency_s=10e-6)
    falcon = decode_step_time("h100", "falcon-180b", 1, 0, tp=8, params=p)
    llama = decode_step_time("h100", "llama-2-70b", 1, 0, tp=8, params=p)
    # Falcon: 80 × (10 µs + 2·7/8 × 14,848 × 2 B / 450 GB/s = 0.1155 µs) = 0.80924 ms
    assert falcon.comm_s == pytest.approx(0.80924e-3, rel=1e-4)
    # Llama-2-70B: 2 × 80 × (10 µs + 2·7/8 × 8,192 × 2 B / 450 GB/s = 0.0637 µs) = 1.61019 ms
    assert llama.comm_s == pytest.approx(1.61019e-3, rel=1e-4)


def test_moe_reads_only_touched_experts() -> None:
    # Mixtral at batch 1: top-2 of 8 → 2 experts per layer; batch 64 → all 8 (1 − 0.75^64 ≈ 1)
    assert expected_experts_touched("mixtral-8x7b", 1) == pytest.approx(2)
    assert expected_experts_touched("mixtral-8x7b", 64) == pytest.approx(8, abs=1e-6)
    assert expected_experts_touched("mixtral-8x7b", 64, "same_experts") == 2
    one = decode_step_time("h100", "mixtral-8x7b", 1, 0, params=IDEAL_STEP_PARAMS)
    # active weights 12,879,925,248 × 2 B less the 32,000 × 4,096 × 2 B embedding table,
    # plus one 8,192-byte row of it and 1 token of KV written
    expected = 12_879_925_248 * 2 - 32_000 * 4096 * 2 + 4096 * 2 + 131_072
    assert one.bytes_moved == pytest.approx(expected)


def test_each_expert_product_reaches_the_efficiency_of_its_own_tokens() -> None:
    # Mixtral prefilling 64 tokens on an H100 at M½ = 150 tokens, datasheet peak 989 TFLOP/s.
    # Routed experts: 2 × 2 (top-2) × 176,160,768 weights × 32 layers = 22,548,578,304 FLOP per
    # token; the rest of the 25,497,706,496 FLOP per token (attention projections, LM head,
    # router) is 2,949,128,192. Uniform routing touches 8 × (1 − 0.75^64) ≈ 8 experts, so each
    # expert product sees 64 × 2 / 8 = 16 tokens:
    #   64 × (2,949,128,192 / (989e12 × 64/214) + 22,548,578,304 / (989e12 × 16/166)) = 15.777 ms
    # With every token routed to the same two experts each sees all 64 tokens:
    #   64 × 25,497,706,496 / (989e12 × 64/214) = 5.517 ms
    p = IDEAL_STEP_PARAMS.with_(gemm_half_efficiency_tokens=150.0)
    kw = {"new_tokens": 64.0, "kv_tokens_read": 0.0, "attention_pairs": 2080.0, "sequences": 1.0}
    uniform = RooflineModel.build("h100", "mixtral-8x7b", params=p)
    same = RooflineModel.build("h100", "mixtral-8x7b", params=p, moe_routing="same_experts")
    assert price_step(uniform.constants, p, **kw).gemm_compute_s == pytest.approx(15.777e-3, 1e-4)
    assert price_step(same.constants, p, **kw).gemm_compute_s == pytest.approx(5.517e-3, 1e-3)
    # A dense model is priced at the step's M, as before: Llama-3.1-8B, 64 tokens,
    # 2 × (8,030,261,248 − 525,336,576) FLOP per token → 64 × 15.01e9 / (989e12 × 64/214)
    dense = RooflineModel.build("h100", "llama-3.1-8b", params=p)
    assert price_step(dense.constants, p, **kw).gemm_compute_s == pytest.approx(
        64 * 2 * (8_030_261_248 - 525_336_576) / (989e12 * 64 / 214), rel=1e-9
    )


def test_fp8_weights_use_fp8_flops_and_half_the_bytes() -> None:
    bf = decode_step_time("h100", "llama-3.1-8b", 1, 0, params=IDEAL_STEP_PARAMS)
    f8 = decode_step_time(
        "h100", "llama-3.1-8b", 1, 0, params=IDEAL_STEP_PARAMS, weights_precision="fp8"
    )
    assert f8.memory_s < 0.51 * bf.memory_s
    m = RooflineModel.build("h100", "llama-3.1-8b", weights_precision="fp8")
    assert m.constants.gemm_flops_per_s == 1979e12


def test_tokens_per_s_ceiling() -> None:
    per, total = tokens_per_s_ceiling("h100", "llama-3.1-8b", 4, 0, params=IDEAL_STEP_PARAMS)
    assert total == pytest.approx(4 * per)
    assert per == pytest.approx(
        1 / decode_step_s("h100", "llama-3.1-8b", 4, 0, params=IDEAL_STEP_PARAMS)
    )


def test_step_for_mixed_batch_by_hand() -> None:
    # One decoding sequence (1 new, 100 cached) and one prefill chunk (50 new, 0 cached):
    # KV read = 100 tokens; pairs = (1·100 + 1) + (50·51/2) = 101 + 1,275 = 1,376
    m = RooflineModel.build("h100", "llama-3.1-8b", params=IDEAL_STEP_PARAMS)
    s = m.step_for([1, 50], [100, 0])
    assert s.new_tokens == 51
    expected_bytes = W_8B + 51 * ROW_8B + 100 * KV_8B + 51 * KV_8B
    assert s.bytes_moved == pytest.approx(expected_bytes)
    matmul = 2 * (8_030_261_248 - 128_256 * 4096) * 51
    assert s.flops == pytest.approx(matmul + 2 * 32 * 256 * 32 * 1376)


def test_step_time_matches_model() -> None:
    a = step_time("h200", "llama-3.1-8b", [1, 1], [10, 20])
    b = RooflineModel.build("h200", "llama-3.1-8b").step_for([1, 1], [10, 20])
    assert a == b


def test_arithmetic_intensity() -> None:
    assert arithmetic_intensity(590e9, 2e9) == 295


@pytest.mark.parametrize(
    ("call", "arg"),
    [
        (lambda: decode_step_s("h100", "llama-3.1-8b", 0, 10), "batch"),
        (lambda: decode_step_s("h100", "llama-3.1-8b", 1, -1), "context_tokens"),
        (
            lambda: decode_step_s("h100", "llama-3.1-8b", 1, 1, bandwidth_efficiency=0),
            "bandwidth_efficiency",
        ),
        (
            lambda: decode_step_s("h100", "llama-3.1-8b", 1, 1, flops_efficiency=float("nan")),
            "flops_efficiency",
        ),
        (
            lambda: decode_step_s("h100", "llama-3.1-8b", 1, 1, step_overhead_s=-1),
            "step_overhead_s",
        ),
        (lambda: prefill_time("h100", "llama-3.1-8b", 0), "prompt_tokens"),
        (lambda: arithmetic_intensity(1, 0), "bytes_moved"),
        (lambda: RooflineModel.build("h100", "llama-3.1-8b").step_for([1], [1, 2]), "same length"),
    ],
)
def test_bad_input_names_the_argument(call: object, arg: str) -> None:
    with pytest.raises(ValueError, match=arg):
        call()  # type: ignore[operator]


def test_max_batch_for_itl_is_the_edge() -> None:
    from infphys.physics import max_batch_for_itl

    b = max_batch_for_itl("h100", "llama-3.1-8b", 2048, 0.020)
    assert decode_step_s("h100", "llama-3.1-8b", b, 2048) <= 0.020
    assert decode_step_s("h100", "llama-3.1-8b", b + 1, 2048) > 0.020
    # An objective below the batch-1 floor (4.79 ms at efficiency 1) admits nobody.
    assert max_batch_for_itl("h100", "llama-3.1-8b", 0, 0.004, bandwidth_efficiency=1) == 0
