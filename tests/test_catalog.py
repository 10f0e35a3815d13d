"""Catalog: presets against the published figures, forgiving lookups, config.json loading."""

from __future__ import annotations

from pathlib import Path

import pytest

from infphys.catalog import (
    BF16,
    FP8,
    GPUS,
    INT4,
    MODELS,
    ModelSpec,
    get_gpu,
    get_model,
    get_precision,
    match_gpu_name,
)

CONFIGS = Path(__file__).parent / "data" / "hf_configs"


@pytest.mark.parametrize("key", sorted(MODELS))
def test_every_preset_parameter_count_within_1_percent_of_published(key: str) -> None:
    m = MODELS[key]
    assert m.published_params is not None
    assert m.params_total == pytest.approx(m.published_params, rel=0.01)


def test_llama_8b_parameter_count_by_hand() -> None:
    # embeddings 2 × 128,256 × 4,096 = 1,050,673,152
    # per layer: q,o 2 × 4096² = 33,554,432; k,v 2 × 4096 × 1024 = 8,388,608;
    #            MLP 3 × 4096 × 14336 = 176,160,768; norms 2 × 4096 = 8,192 → 218,112,000
    # 32 layers 6,979,584,000 + final norm 4,096 → 8,030,261,248
    assert MODELS["llama-3.1-8b"].params_total == 8_030_261_248


def test_moe_active_parameters_against_model_cards() -> None:
    mixtral = get_model("mixtral-8x7b")
    assert mixtral.params_active == pytest.approx(12.9e9, rel=0.01)
    # gpt-oss counts active parameters without the input embedding table (201,088 × 2,880).
    oss = get_model("gpt-oss-120b")
    assert oss.params_active - oss.vocab * oss.hidden == pytest.approx(5.13e9, rel=0.01)
    # DeepSeek-V3's "37 B" is rounded to two figures: 36.5–37.5 B.
    ds = get_model("deepseek-v3")
    assert 36.5e9 <= ds.params_active - ds.vocab * ds.hidden <= 37.6e9


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("h200", "h200-sxm"),
        ("H200 SXM", "h200-sxm"),
        ("h100", "h100-sxm"),
        ("H100 PCIe", "h100-pcie"),
        ("a100", "a100-80gb-sxm"),
        ("A100 40GB SXM", "a100-40gb-sxm"),
        ("b200", "b200"),
        ("L40S", "l40s"),
        ("mi300x", "mi300x"),
    ],
)
def test_gpu_lookup_is_forgiving(key: str, expected: str) -> None:
    assert get_gpu(key).key == expected


def test_gpu_figures_match_reference_data() -> None:
    h100 = get_gpu("h100")
    assert h100.bandwidth_bytes_per_s == 3.35e12
    assert h100.bf16_flops_per_s == 989e12
    assert h100.fp8_flops_per_s == 1979e12
    assert get_gpu("a100").fp8_flops_per_s is None
    assert get_gpu("h200").memory_bytes == 141e9
    for g in GPUS.values():
        assert set(g.sources) == {
            "memory_bytes",
            "bandwidth_bytes_per_s",
            "bf16_flops_per_s",
            "fp8_flops_per_s",
        }
        assert all(g.sources.values())


def test_unknown_gpu_names_the_argument() -> None:
    with pytest.raises(ValueError, match=r"^gpu: unknown GPU 'v100'"):
        get_gpu("v100")


@pytest.mark.parametrize(
    ("nvml", "key"),
    [
        ("NVIDIA H100 80GB HBM3", "h100-sxm"),
        (b"NVIDIA H100 80GB HBM3", "h100-sxm"),
        ("NVIDIA H100 PCIe", "h100-pcie"),
        ("NVIDIA H200", "h200-sxm"),
        ("NVIDIA A100-SXM4-80GB", "a100-80gb-sxm"),
        ("NVIDIA A100-SXM4-40GB", "a100-40gb-sxm"),
        ("NVIDIA L4", "l4"),
        ("NVIDIA L40S", "l40s"),
        ("NVIDIA B200", "b200"),
    ],
)
def test_match_nvml_names(nvml: str | bytes, key: str) -> None:
    spec = match_gpu_name(nvml)
    assert spec is not None and spec.key == key


def test_unrecognised_nvml_name_is_none() -> None:
    assert match_gpu_name("NVIDIA GeForce RTX 4090") is None


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("meta/llama-3.1-8b-instruct", "llama-3.1-8b"),
        ("meta-llama/Llama-3.1-70B-Instruct", "llama-3.1-70b"),
        ("Llama-3.1-405B", "llama-3.1-405b"),
        ("mistralai/Mistral-7B-Instruct-v0.3", "mistral-7b-v0.3"),
        ("Qwen/Qwen2.5-7B-Instruct", "qwen2.5-7b"),
        ("deepseek-ai/DeepSeek-V3", "deepseek-v3"),
        ("openai/gpt-oss-120b", "gpt-oss-120b"),
    ],
)
def test_model_lookup_accepts_nim_and_hub_names(key: str, expected: str) -> None:
    assert get_model(key).key == expected


def test_unknown_model_names_the_argument() -> None:
    with pytest.raises(ValueError, match=r"^model: unknown model 'gpt-5'"):
        get_model("gpt-5")


@pytest.mark.parametrize(
    ("file", "preset"),
    [
        ("llama-3.1-8b.json", "llama-3.1-8b"),
        ("mixtral-8x7b.json", "mixtral-8x7b"),
        ("qwen2.5-7b.json", "qwen2.5-7b"),
        ("deepseek-v3.json", "deepseek-v3"),
        ("gpt-oss-120b.json", "gpt-oss-120b"),
        ("mistral-7b-v0.3.json", "mistral-7b-v0.3"),
    ],
)
def test_hf_config_reproduces_the_preset(file: str, preset: str) -> None:
    loaded = ModelSpec.from_hf_config(CONFIGS / file)
    p = MODELS[preset]
    assert loaded.params_total == p.params_total
    assert loaded.params_active == p.params_active
    assert loaded.attention_kind == p.attention_kind
    assert loaded.full_attention_layers == p.full_attention_layers


def test_hf_config_unknown_family_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"model_type: 'phi3' is not a family infphys can read"):
        ModelSpec.from_hf_config(CONFIGS / "phi3.json")


def test_hf_config_missing_file_names_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^path: no config.json"):
        ModelSpec.from_hf_config(tmp_path)


def test_hf_config_bad_json_names_path(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"^path: .* is not valid JSON"):
        ModelSpec.from_hf_config(tmp_path)


def test_precisions_bytes() -> None:
    assert BF16.bytes_per_element == 2
    assert FP8.bytes_per_element == 1
    assert INT4.bytes_per_element == 0.5
    # one FP16 scale (2 bytes) per 128 elements adds 2/128 = 0.015625 bytes
    assert get_precision("int4-g128").bytes_per_element == 0.515625
    assert get_precision("BF16") is BF16
    assert get_precision("float8") is FP8


def test_unknown_precision_names_the_argument() -> None:
    with pytest.raises(ValueError, match=r"^precision: unknown name 'fp6'"):
        get_precision("fp6")


def test_model_shape_validation() -> None:
    with pytest.raises(ValueError, match="kv_heads must divide heads"):
        ModelSpec(
            key="x",
            name="x",
            family="llama",
            layers=2,
            hidden=64,
            heads=8,
            kv_heads=3,
            head_dim=8,
            vocab=100,
            intermediate=128,
        )
    with pytest.raises(ValueError, match="layers must be a whole number >= 1"):
        ModelSpec(
            key="x",
            name="x",
            family="llama",
            layers=0,
            hidden=64,
            heads=8,
            kv_heads=8,
            head_dim=8,
            vocab=100,
            intermediate=128,
        )
