"""Memory physics against figures worked out by hand or published."""

from __future__ import annotations

import math

import pytest

from infphys.catalog import get_gpu
from infphys.physics import memory

GIB = 2**30


def test_llama_8b_kv_per_token_is_128_kib() -> None:
    # 2 × 32 layers × 8 KV heads × 128 dims × 2 bytes = 131,072 (REFERENCE_DATA.md)
    assert memory.kv_bytes_per_token("llama-3.1-8b") == 131_072


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("llama-3.1-70b", 327_680),  # 2 × 80 × 8 × 128 × 2
        ("llama-3.1-405b", 516_096),  # 2 × 126 × 8 × 128 × 2
        ("qwen2.5-7b", 57_344),  # 2 × 28 × 4 × 128 × 2
        ("deepseek-v3", 70_272),  # (512 + 64) × 61 × 2
        ("gpt-oss-120b", 36_864),  # 2 × 18 full layers × 8 × 64 × 2
    ],
)
def test_published_kv_bytes_per_token(model: str, expected: int) -> None:
    assert memory.kv_bytes_per_token(model) == expected


def test_8k_context_is_one_gib() -> None:
    assert memory.kv_bytes_per_sequence("llama-3.1-8b", 8192) == 1 * GIB


def test_naive_formula_overstates_llama_8b_exactly_4x() -> None:
    assert (
        memory.kv_bytes_per_token_naive("llama-3.1-8b") / memory.kv_bytes_per_token("llama-3.1-8b")
        == 4
    )


def test_naive_formula_against_deepseek_mla() -> None:
    # Naive: 2 × 61 layers × 7,168 hidden × 2 bytes = 1,748,992 B/token: 24.9× the MLA latent.
    naive = memory.kv_bytes_per_token_naive("deepseek-v3")
    ratio = naive / memory.kv_bytes_per_token("deepseek-v3")
    assert ratio == pytest.approx(1_748_992 / 70_272)
    # REFERENCE_DATA's "57×" is against uncompressed MHA, 128 heads × 128 dims:
    # 2 × 61 × 128 × 128 × 2 = 3,997,696 B/token, 56.9× the latent.
    assert 3_997_696 / memory.kv_bytes_per_token("deepseek-v3") == pytest.approx(57, abs=0.2)


def test_fp8_kv_halves_bf16() -> None:
    assert memory.kv_bytes_per_token("llama-3.1-8b", "fp8") == 65_536


def test_sliding_window_caps_windowed_layers() -> None:
    # gpt-oss-120b: 18 full layers at 2,048 B/token/layer + 18 windowed layers capped at 128.
    per_layer = 2 * 8 * 64 * 2
    assert memory.kv_bytes_per_sequence("gpt-oss-120b", 100) == per_layer * (18 * 100 + 18 * 100)
    assert memory.kv_bytes_per_sequence("gpt-oss-120b", 10_000) == per_layer * (
        18 * 10_000 + 18 * 128
    )


def test_batch_kv_sums_sequences() -> None:
    assert memory.kv_bytes_for_batch("llama-3.1-8b", [1024, 2048, 0]) == 3072 * 131_072


def test_weights_llama_8b_bf16_about_16_1_gb() -> None:
    assert memory.weight_bytes("llama-3.1-8b") / 1e9 == pytest.approx(16.06, abs=0.01)
    assert memory.weight_bytes("llama-3.1-8b", "fp8") == memory.weight_bytes("llama-3.1-8b") / 2


def test_moe_active_weights_smaller() -> None:
    assert memory.weight_bytes("mixtral-8x7b", active=True) / 1e9 == pytest.approx(25.76, abs=0.05)


def test_kv_budget_by_hand() -> None:
    # H200: 141e9 × 0.9 = 126.9e9; − 16,060,522,496 weights − 2 GiB (2,147,483,648)
    expected = 126.9e9 - 16_060_522_496 - 2_147_483_648
    assert memory.kv_budget_bytes("h200", "llama-3.1-8b") == pytest.approx(expected)


def test_max_sequences_by_hand() -> None:
    budget = 126.9e9 - 16_060_522_496 - 2_147_483_648  # 108.69 GB
    assert memory.max_concurrent_sequences("h200", "llama-3.1-8b", 8192) == math.floor(budget / GIB)


def test_tensor_parallel_shards_weights() -> None:
    # 70B BF16 (141.1 GB) does not fit one H100 (72 GB usable): 0 sequences.
    assert memory.max_concurrent_sequences("h100", "llama-3.1-70b", 4096) == 0
    # On 4 GPUs: 4 × (72e9 − 141.1e9/4 − 2 GiB) / (4096 × 327,680)
    budget = 4 * (80e9 * 0.9 - 141_107_412_992 / 4 - 2 * GIB)
    assert memory.max_concurrent_sequences("h100", "llama-3.1-70b", 4096, tp=4) == math.floor(
        budget / (4096 * 327_680)
    )


@pytest.mark.parametrize(
    ("model", "tp", "copies"),
    [
        ("llama-3.1-70b", 1, 1.0),  # one GPU holds the only copy
        ("llama-3.1-70b", 8, 1.0),  # 8 KV heads over 8 GPUs: one head each
        ("llama-3.1-70b", 16, 2.0),  # 8 KV heads over 16 GPUs: each head on 16 / 8 = 2
        ("qwen2.5-7b", 8, 2.0),  # 4 KV heads over 8 GPUs: 8 / 4 = 2
        ("deepseek-v3", 8, 8.0),  # MLA: every GPU keeps the whole latent
    ],
)
def test_kv_copies_by_hand(model: str, tp: int, copies: float) -> None:
    assert memory.kv_copies(model, tp) == copies


def test_block_rounding() -> None:
    a = memory.max_concurrent_sequences("h100", "llama-3.1-8b", 1000)
    # 1,000 tokens round up to 63 blocks of 16 = 1,008 tokens per sequence.
    b = memory.max_concurrent_sequences("h100", "llama-3.1-8b", 1000, block_tokens=16)
    assert b <= a


def test_kv_cliff_crash_points_by_hand() -> None:
    # 16.06 GB + n × 1.0737 GB > 80 GB first at n = 60 (16.06 + 59.55 = 75.6 < 80 at 55…)
    c = memory.kv_cliff("llama-3.1-8b", 8192, 200)
    w = 16_060_522_496
    assert c.crash_users["H100 SXM"] == math.floor((80e9 - w) / GIB) + 1 == 60
    assert c.crash_users["H200 SXM"] == math.floor((141e9 - w) / GIB) + 1 == 117
    assert c.total_bytes[0] == w + GIB


def test_naive_cliff_crashes_4x_earlier() -> None:
    c = memory.kv_cliff("llama-3.1-8b", 8192, 200, naive=True)
    assert c.crash_users["H100 SXM"] == math.floor((80e9 - 16_060_522_496) / (4 * GIB)) + 1


def test_kv_cliff_custom_line_never_crossed() -> None:
    c = memory.kv_cliff(
        "llama-3.1-8b", 1024, 10, vram_lines_bytes={"B200": get_gpu("b200").memory_bytes}
    )
    assert c.crash_users == {"B200": None}


@pytest.mark.parametrize(
    ("call", "arg"),
    [
        (lambda: memory.kv_bytes_per_sequence("llama-3.1-8b", -1), "context_tokens"),
        (lambda: memory.kv_bytes_per_sequence("llama-3.1-8b", float("nan")), "context_tokens"),
        (lambda: memory.max_concurrent_sequences("h100", "llama-3.1-8b", 0), "context_tokens"),
        (
            lambda: memory.kv_budget_bytes("h100", "llama-3.1-8b", gpu_memory_utilization=1.5),
            "gpu_memory_utilization",
        ),
        (lambda: memory.kv_budget_bytes("h100", "llama-3.1-8b", tp=0), "tp"),
        (lambda: memory.kv_cliff("llama-3.1-8b", 1024, 0), "max_users"),
        (lambda: memory.kv_copies("llama-3.1-8b", 0), "tp"),
        (lambda: memory.kv_bytes_for_batch("llama-3.1-8b", [1, -2]), r"context_tokens\[1\]"),
        (lambda: memory.weight_bytes("llama-3.1-8b", "fp6"), "precision"),
        (lambda: memory.kv_budget_bytes("tpu", "llama-3.1-8b"), "gpu"),
    ],
)
def test_bad_input_names_the_argument(call: object, arg: str) -> None:
    with pytest.raises(ValueError, match=arg):
        call()  # type: ignore[operator]
