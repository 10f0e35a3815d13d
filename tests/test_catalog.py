"""Catalog: presets against the published figures, forgiving lookups, config.json loading."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from infphys.catalog import (
    BF16,
    FP8,
    GPUS,
    INT4,
    MODELS,
    GPUSpec,
    ModelSpec,
    get_gpu,
    get_model,
    get_precision,
    match_gpu_name,
    measured_gpu_key,
    measured_model_key,
    measured_precision_key,
)
from infphys.sim.config import EngineConfig

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


def test_llama_2_7b_parameter_count_by_hand() -> None:
    # embeddings 2 × 32,000 × 4,096 = 262,144,000 (untied)
    # per layer: attention 4 × 4096² = 67,108,864 (MHA: 32 KV heads of 128);
    #            MLP 3 × 4096 × 11008 = 135,266,304; norms 2 × 4096 = 8,192 → 202,383,360
    # 32 layers 6,476,267,520 + final norm 4,096 → 6,738,415,616 (6.74 B on the Hub)
    assert MODELS["llama-2-7b"].params_total == 6_738_415_616


def test_llama_2_13b_and_70b_parameter_counts_by_hand() -> None:
    # 13B: 2 × 32,000 × 5,120 = 327,680,000; per layer 4 × 5120² = 104,857,600 +
    #      3 × 5120 × 13824 = 212,336,640 + 10,240 → 317,204,480; × 40 + 5,120 → 13,015,864,320
    assert MODELS["llama-2-13b"].params_total == 13_015_864_320
    # 70B: 2 × 32,000 × 8,192 = 524,288,000; per layer q,o 2 × 8192² = 134,217,728,
    #      k,v 2 × 8192 × 1024 = 16,777,216, MLP 3 × 8192 × 28672 = 704,643,072, norms 16,384
    #      → 855,654,400; × 80 + 8,192 → 68,976,648,192: 69.0 B, though the card says "70B"
    assert MODELS["llama-2-70b"].params_total == 68_976_648_192


def test_mistral_7b_v01_parameter_count_and_window() -> None:
    # Llama-3.1-8B's layers (218,112,000 each, 32 → 6,979,584,000) with a 32,000 vocabulary:
    # 2 × 32,000 × 4,096 = 262,144,000; + final norm 4,096 → 7,241,732,096
    m = MODELS["mistral-7b-v0.1"]
    assert m.params_total == 7_241_732_096
    assert (m.sliding_window, m.sliding_window_layers, m.full_attention_layers) == (4096, 32, 0)


def test_gpt_j_parameter_count_by_hand() -> None:
    # per layer: q,k,v,o 4 × 4096² = 67,108,864 (no biases);
    #            MLP fc_in 4096 × 16384 + 16,384 and fc_out 16384 × 4096 + 4,096 = 134,238,208;
    #            one LayerNorm (weight and bias) 8,192 → 201,355,264; × 28 → 5,637,947,392
    # wte 50,400 × 4,096 = 206,438,400; LM head the same + bias 50,400; ln_f 8,192
    # total 6,050,882,784; the model card says 6,053,381,344 (0.04% more)
    m = MODELS["gpt-j-6b"]
    assert m.params_total == 6_050_882_784
    assert m.params_total == pytest.approx(6_053_381_344, rel=5e-4)
    assert m.attention_kind == "MHA" and m.head_dim == 256


def test_falcon_180b_parameter_count_by_hand() -> None:
    # per layer: query_key_value 14848 × (232 + 2 × 8) × 64 = 235,667,456; dense 14848² =
    #            220,463,104; MLP 2 × 14848 × 59392 = 1,763,704,832; two LayerNorms 59,392
    #            → 2,219,894,784; × 80 → 177,591,582,720
    # tied embeddings 65,024 × 14,848 = 965,476,352; ln_f 29,696 → 178,557,088,768 (card: 180 B)
    m = MODELS["falcon-180b"]
    assert m.params_total == 178_557_088_768
    assert m.tie_embeddings and m.attention_kind == "GQA"


def test_falcon_7b_config_is_read_as_mqa_with_one_norm() -> None:
    # per layer: query_key_value 4544 × (71 + 2) × 64 = 21,229,568; dense 4544² = 20,647,936;
    #            MLP 2 × 4544 × 18176 = 165,183,488; one LayerNorm 9,088 → 207,070,080
    # × 32 → 6,626,242,560; tied embeddings 65,024 × 4,544 = 295,469,056; ln_f 9,088
    # → 6,921,720,704 (the Hub's 7.22 B adds a stored copy of the tied LM head)
    m = ModelSpec.from_hf_config(CONFIGS / "falcon-7b.json")
    assert m.attention_kind == "MQA" and m.norms_per_layer == 1
    assert m.params_total == 6_921_720_704


def test_parallel_attention_is_read_from_the_config() -> None:
    # GPT-J and Falcon (parallel_attn, or the new decoder architecture) sum attention and MLP;
    # Llama runs them one after the other.
    assert ModelSpec.from_hf_config(CONFIGS / "gpt-j-6b.json").parallel_attention
    assert ModelSpec.from_hf_config(CONFIGS / "falcon-180b.json").parallel_attention
    assert ModelSpec.from_hf_config(CONFIGS / "falcon-7b.json").parallel_attention
    assert not ModelSpec.from_hf_config(CONFIGS / "llama-3.1-8b.json").parallel_attention
    assert MODELS["falcon-180b"].parallel_attention and MODELS["gpt-j-6b"].parallel_attention
    assert not MODELS["llama-2-70b"].parallel_attention


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
    ("resolve", "name", "key"),
    [
        (get_gpu, "h200", "h200-sxm"),
        (get_gpu, "H200 SXM", "h200-sxm"),
        (get_gpu, "h100", "h100-sxm"),
        (get_gpu, "H100 PCIe", "h100-pcie"),
        (get_gpu, "a100", "a100-80gb-sxm"),
        (get_gpu, "A100 40GB SXM", "a100-40gb-sxm"),
        (get_gpu, "b200", "b200"),
        (get_gpu, "L40S", "l40s"),
        (get_gpu, "L40", "l40"),
        (get_gpu, "H100 NVL", "h100-nvl"),
        (get_gpu, "gh200", "gh200"),
        (get_gpu, "mi300x", "mi300x"),
        # models by their NIM and Hugging Face names
        (get_model, "meta/llama-3.1-8b-instruct", "llama-3.1-8b"),
        (get_model, "meta-llama/Llama-3.1-70B-Instruct", "llama-3.1-70b"),
        (get_model, "Llama-3.1-405B", "llama-3.1-405b"),
        (get_model, "mistralai/Mistral-7B-Instruct-v0.3", "mistral-7b-v0.3"),
        (get_model, "Qwen/Qwen2.5-7B-Instruct", "qwen2.5-7b"),
        (get_model, "deepseek-ai/DeepSeek-V3", "deepseek-v3"),
        (get_model, "openai/gpt-oss-120b", "gpt-oss-120b"),
        # the measured data sets' own names (infphys/catalog/data/*.csv); Llama-3 8B/70B have
        # Llama-3.1's shapes
        (measured_model_key, "meta-llama3-8b-instruct", "llama-3.1-8b"),
        (measured_model_key, "meta-llama3-70b-instruct", "llama-3.1-70b"),
        (measured_model_key, "LLaMA v2 7B", "llama-2-7b"),
        (measured_model_key, "LLaMA v2 13B", "llama-2-13b"),
        (measured_model_key, "LLaMA v2 70B", "llama-2-70b"),
        (measured_model_key, "Mistral 7B", "mistral-7b-v0.1"),
        (measured_model_key, "Mixtral 8x7B", "mixtral-8x7b"),
        (measured_model_key, "GPTJ 6B", "gpt-j-6b"),
        (measured_model_key, "Falcon 180B", "falcon-180b"),
        (measured_gpu_key, "A100-SXM4-80GB", "a100-80gb-sxm"),
        (measured_gpu_key, "H100_80GB_HBM3", "h100-sxm"),
        (measured_gpu_key, "H100 80GB HBM3", "h100-sxm"),
        (measured_gpu_key, "H100 NVL", "h100-nvl"),
        (measured_gpu_key, "H200 141GB HBM3", "h200-sxm"),
        (measured_gpu_key, "GH200 120GB", "gh200"),
        (measured_gpu_key, "L40", "l40"),
        (measured_gpu_key, "L40S", "l40s"),
        (measured_precision_key, "mixed", "fp16"),  # FP16 weights and activations
        (measured_precision_key, "fp8", "fp8"),
        (measured_precision_key, "fp16", "fp16"),
        (measured_precision_key, "bf16", "bf16"),
    ],
)
def test_names_resolve_to_catalog_keys(resolve: Callable[[str], Any], name: str, key: str) -> None:
    found = resolve(name)  # a spec (get_gpu, get_model) or a key (measured_*_key)
    assert (found if isinstance(found, str) else found.key) == key


@pytest.mark.parametrize(
    ("resolve", "name", "message"),
    [
        (get_gpu, "v100", r"^gpu: unknown GPU 'v100'"),
        (get_model, "gpt-5", r"^model: unknown model 'gpt-5'"),
        (get_precision, "fp6", r"^precision: unknown name 'fp6'"),
        (measured_model_key, "GPT-4", r"^model: 'GPT-4' is not a name in the measured data"),
        (measured_gpu_key, "V100", r"^gpu: 'V100' is not a name"),
        (measured_precision_key, "int4", r"^precision: 'int4' is not a name"),
    ],
)
def test_unknown_name_names_the_argument(
    resolve: Callable[[str], Any], name: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        resolve(name)


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


@pytest.mark.parametrize(
    ("key", "memory_gb", "bandwidth_gb_s", "bf16_tflops", "fp8_tflops"),
    [
        ("h100-nvl", 94, 3900, 835, 1671),  # NVIDIA H100 NVL datasheet
        ("gh200", 96, 4000, 989, 1979),  # NVIDIA GH200 datasheet, 96 GB HBM3 version
        ("l40", 48, 864, 181, 362),  # NVIDIA L40 datasheet
    ],
)
def test_new_gpu_figures_match_datasheets(
    key: str, memory_gb: float, bandwidth_gb_s: float, bf16_tflops: float, fp8_tflops: float
) -> None:
    g = get_gpu(key)
    assert g.memory_bytes == pytest.approx(memory_gb * 1e9, rel=1e-12)
    assert g.bandwidth_bytes_per_s == pytest.approx(bandwidth_gb_s * 1e9, rel=1e-12)
    assert g.bf16_flops_per_s == pytest.approx(bf16_tflops * 1e12, rel=1e-12)
    assert g.fp8_flops_per_s == pytest.approx(fp8_tflops * 1e12, rel=1e-12)


def test_gh200_source_says_how_the_data_set_name_is_mapped() -> None:
    src = get_gpu("gh200").sources["memory_bytes"]
    assert "GH200 120GB" in src and "96 GB HBM3" in src and "96.82" in src


@pytest.mark.parametrize(
    ("key", "link_gb_s", "pair_gb_s"),
    [
        # datasheets' bidirectional totals halved: one direction per GPU
        ("a100-40gb-sxm", 300, None),  # NVLink 3, 600 GB/s
        ("a100-80gb-sxm", 300, None),
        ("h100-sxm", 450, None),  # NVLink 4, 900 GB/s
        ("h200-sxm", 450, None),
        ("gh200", 450, None),
        ("b200", 900, None),  # NVLink 5, 1.8 TB/s
        ("h100-pcie", 64, 300),  # PCIe Gen5 x16 128 GB/s; NVLink bridge pairs 600 GB/s
        ("h100-nvl", 64, 300),
        ("l4", 32, None),  # PCIe Gen4 x16, 64 GB/s
        ("l40", 32, None),
        ("l40s", 32, None),
        ("mi300x", 448, None),  # Infinity Fabric 7 × 128 = 896 GB/s
    ],
)
def test_interconnect_figures(key: str, link_gb_s: float, pair_gb_s: float | None) -> None:
    g = get_gpu(key)
    assert g.interconnect_bytes_per_s == pytest.approx(link_gb_s * 1e9, rel=1e-12)
    if pair_gb_s is None:
        assert g.pair_link_bytes_per_s is None
    else:
        assert g.pair_link_bytes_per_s == pytest.approx(pair_gb_s * 1e9, rel=1e-12)
    assert g.interconnect and g.interconnect_source


def test_every_gpu_has_an_interconnect() -> None:
    assert all(g.interconnect_bytes_per_s > 0 and g.interconnect_source for g in GPUS.values())


def test_all_reduce_bandwidth_uses_the_pair_link_only_for_pairs() -> None:
    nvl = get_gpu("h100-nvl")
    assert nvl.all_reduce_bytes_per_s(2) == 300e9  # NVLink bridge
    assert nvl.all_reduce_bytes_per_s(4) == 64e9  # PCIe Gen5 x16: 4.7× slower
    assert nvl.all_reduce_bytes_per_s(8) == 64e9
    sxm = get_gpu("h100-sxm")
    assert sxm.all_reduce_bytes_per_s(2) == sxm.all_reduce_bytes_per_s(8) == 450e9


def test_all_reduce_bandwidth_errors_name_the_argument() -> None:
    with pytest.raises(ValueError, match=r"^tp must be a whole number >= 1 \(got 0\)"):
        get_gpu("h100").all_reduce_bytes_per_s(0)
    unknown = GPUSpec(
        key="measured",
        name="x",
        memory_bytes=1e9,
        bandwidth_bytes_per_s=1e9,
        bf16_flops_per_s=1e12,
        fp8_flops_per_s=None,
    )
    assert unknown.all_reduce_bytes_per_s(1) == 0.0
    with pytest.raises(ValueError, match=r"^gpu: 'measured' has no interconnect figure"):
        unknown.all_reduce_bytes_per_s(2)


@pytest.mark.parametrize("gpu", ["h100-nvl", "gh200", "l40"])
def test_engine_config_round_trips_the_new_gpu_fields(gpu: str) -> None:
    cfg = EngineConfig.build(gpu, "llama-3.1-8b", weights_precision="fp8", max_model_len=4096)
    assert EngineConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


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
        ("NVIDIA H100 NVL", "h100-nvl"),
        ("NVIDIA GH200 480GB", "gh200"),
        ("NVIDIA L40", "l40"),
    ],
)
def test_match_nvml_names(nvml: str | bytes, key: str) -> None:
    spec = match_gpu_name(nvml)
    assert spec is not None and spec.key == key


def test_unrecognised_nvml_name_is_none() -> None:
    assert match_gpu_name("NVIDIA GeForce RTX 4090") is None
    # the 144 GB HBM3e GH200 is not the catalog's 96 GB entry
    assert match_gpu_name("NVIDIA GH200 144G HBM3e") is None


def test_similar_nvml_names_do_not_cross() -> None:
    # Each GPU's own patterns, whatever the order match_gpu_name tries them in.
    cases = {
        "h100-sxm": ["NVIDIA H100 NVL", "NVIDIA H100 PCIe"],
        "h100-nvl": ["NVIDIA H100 80GB HBM3", "NVIDIA H100 PCIe"],
        "h200-sxm": ["NVIDIA GH200 480GB"],
        "l40": ["NVIDIA L40S", "NVIDIA L4"],
        "l40s": ["NVIDIA L40"],
        "l4": ["NVIDIA L40", "NVIDIA L40S"],
    }
    for key, names in cases.items():
        for name in names:
            assert not any(re.search(p, name.lower()) for p in GPUS[key].nvml_patterns)


@pytest.mark.parametrize(
    ("file", "preset"),
    [
        ("llama-3.1-8b.json", "llama-3.1-8b"),
        ("mixtral-8x7b.json", "mixtral-8x7b"),
        ("qwen2.5-7b.json", "qwen2.5-7b"),
        ("deepseek-v3.json", "deepseek-v3"),
        ("gpt-oss-120b.json", "gpt-oss-120b"),
        ("mistral-7b-v0.3.json", "mistral-7b-v0.3"),
        ("gpt-j-6b.json", "gpt-j-6b"),
        ("falcon-180b.json", "falcon-180b"),
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


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kv_heads": 3}, r"^kv_heads must divide heads \(got heads=32, kv_heads=3\)"),
        ({"mlp_matrices": 4}, r"^mlp_matrices must be 2 or 3 \(got 4\)"),
        ({"layers": 0}, "layers must be a whole number >= 1"),
    ],
)
def test_model_shape_validation(change: dict[str, Any], message: str) -> None:
    # Llama-3.1-8B's shape (32 heads, 8 KV heads, 3 MLP matrices, 32 layers) with one field
    # broken: the error names that field.
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(MODELS["llama-3.1-8b"], **change)


def test_presets_join_shape_extras_and_source(monkeypatch: pytest.MonkeyPatch) -> None:
    from infphys.catalog import _model_presets as presets

    # Mixtral-8x7B's config.json: 32 layers, 8 experts, 2 routed per token, 32,768 positions.
    mixtral = next(p for p in presets.PRESETS if p["key"] == "mixtral-8x7b")
    assert (mixtral["layers"], mixtral["experts"], mixtral["experts_active"]) == (32, 8, 2)
    assert mixtral["max_context_tokens"] == 32768 and "46.7 B" in mixtral["source"]
    # An extra for a model with no row is a mistake, not a silent no-op.
    monkeypatch.setitem(presets._EXTRAS, "no-such-model", {"experts": 2})
    with pytest.raises(ValueError, match=r"^presets: .*no-such-model"):
        presets._presets()
