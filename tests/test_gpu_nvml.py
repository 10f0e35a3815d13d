"""The NVML engine check against a fake pynvml: str and bytes names, one and several GPUs, and
every way of having no GPU, with the verdicts checked word for word as a user reads them."""

from __future__ import annotations

import importlib
import sys

import pynvml
import pytest
from fake_nvml import NO_GPU_VERDICTS, FakeGPU, MiB, make_fake_nvml, use

from infphys.measure.gpu import NO_GPU_PREFIX, engine_check
from infphys.measure.gpu.nvml import cuda_version_text, nvml_reason, torch_status


def test_one_h100_with_str_name(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = make_fake_nvml([FakeGPU()])
    use(monkeypatch, fake)
    r = engine_check(include_torch=False)
    assert r.ok
    assert r.verdict == (
        "1 NVIDIA GPU visible: GPU 0: NVIDIA H100 80GB HBM3 → catalog H100 SXM "
        "(3.35 TB/s, 989 BF16 TFLOP/s)"
    )
    g = r.gpus[0]
    assert g.name == "NVIDIA H100 80GB HBM3"
    assert g.catalog is not None and g.catalog.key == "h100-sxm"
    assert g.memory_total_bytes == 81559 * MiB  # 79.6 GiB: NVML reports MiB
    assert g.memory_used_bytes is not None and g.memory_free_bytes is not None
    assert g.memory_used_bytes + g.memory_free_bytes == g.memory_total_bytes
    assert g.compute_capability == (9, 0) and g.has_fp8_units
    assert g.power_limit_w == 700.0  # 700,000 mW
    assert r.driver_version == "550.54.15"
    assert r.cuda_driver_version == "12.4"
    assert fake.state.inits == 1 and fake.state.shutdowns == 1  # type: ignore[attr-defined]


def test_bytes_names_and_versions_from_old_pynvml(monkeypatch: pytest.MonkeyPatch) -> None:
    use(
        monkeypatch,
        make_fake_nvml(
            [FakeGPU(name=b"NVIDIA H200", uuid=b"GPU-1", memory_total=143771 * MiB)],
            driver=b"560.35.03",
        ),
    )
    r = engine_check(include_torch=False)
    assert r.gpus[0].name == "NVIDIA H200"
    assert r.gpus[0].uuid == "GPU-1"
    assert r.gpus[0].catalog is not None and r.gpus[0].catalog.key == "h200-sxm"
    assert r.driver_version == "560.35.03"


def test_several_gpus_one_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    gpus = [
        FakeGPU(name="NVIDIA A100-SXM4-80GB", compute_capability=(8, 0)),
        FakeGPU(name="NVIDIA H100 PCIe"),
        FakeGPU(name="NVIDIA GeForce RTX 4090", compute_capability=(8, 9)),
    ]
    use(monkeypatch, make_fake_nvml(gpus))
    r = engine_check(include_torch=False)
    assert [g.index for g in r.gpus] == [0, 1, 2]
    assert [g.catalog.key if g.catalog else None for g in r.gpus] == [
        "a100-80gb-sxm",
        "h100-pcie",
        None,
    ]
    assert r.verdict.startswith("3 NVIDIA GPUs visible: GPU 0: NVIDIA A100-SXM4-80GB → catalog")
    assert "GPU 2: NVIDIA GeForce RTX 4090 (not in the infphys catalog)" in r.verdict
    assert not r.gpus[0].has_fp8_units and r.gpus[2].has_fp8_units
    d = r.to_dict()
    assert d["gpus"][1]["datasheet_bandwidth_bytes_per_s"] == 2.0e12
    assert d["gpus"][2]["catalog_key"] is None


def test_unsupported_queries_become_none(monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, make_fake_nvml([FakeGPU()], unsupported={"power_limit", "compute_capability"}))
    g = engine_check(include_torch=False).gpus[0]
    assert g.power_limit_w is None and g.compute_capability is None
    assert g.memory_total_bytes == 81559 * MiB


@pytest.mark.parametrize(("code", "verdict"), NO_GPU_VERDICTS.items())
def test_no_gpu_verdicts_word_for_word(
    monkeypatch: pytest.MonkeyPatch, code: int, verdict: str
) -> None:
    use(monkeypatch, make_fake_nvml([], init_error=code))
    r = engine_check(include_torch=False)
    assert not r.ok and r.gpus == ()
    assert r.verdict == verdict
    assert r.reason == verdict.removeprefix(f"{NO_GPU_PREFIX}: ")
    assert r.to_dict()["gpus"] == []


def test_driver_with_no_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, make_fake_nvml([]))
    r = engine_check(include_torch=False)
    assert r.verdict == "no NVIDIA GPU visible: the driver reports 0 devices"
    assert r.driver_version == "550.54.15"


def test_pynvml_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` raise ImportError
    r = engine_check(include_torch=False)
    assert r.verdict == "no NVIDIA GPU visible: pynvml is not installed (pip install nvidia-ml-py)"


def test_gpu_lost_while_listing_is_a_verdict_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = make_fake_nvml([FakeGPU()])

    def lost(i: int) -> None:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)

    fake.nvmlDeviceGetHandleByIndex = lost  # type: ignore[attr-defined]
    use(monkeypatch, fake)
    r = engine_check(include_torch=False)
    assert r.verdict == "no NVIDIA GPU visible: the GPU is lost (fell off the bus)"
    assert fake.state.shutdowns == 1  # type: ignore[attr-defined]


def test_real_pynvml_never_raises() -> None:
    r = engine_check()
    assert r.ok or r.verdict.startswith(f"{NO_GPU_PREFIX}: ")
    assert r.torch is None or r.torch.startswith("torch ")


def test_torch_line_without_a_gpu_reads_the_installed_version() -> None:
    import importlib.metadata

    try:
        version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("torch is not installed")
    assert torch_status(gpu_visible=False) == f"torch {version}: CUDA not available"


def test_helpers() -> None:
    assert cuda_version_text(12040) == "12.4" and cuda_version_text(11080) == "11.8"
    assert nvml_reason(ValueError("x")) == "ValueError: x"


def test_gpu_package_all_is_unique_and_complete() -> None:
    """Order is ruff's (RUF022); here: no duplicates, every name importable, none missing."""
    mod = importlib.import_module("infphys.measure.gpu")
    assert len(set(mod.__all__)) == len(mod.__all__)
    assert all(hasattr(mod, n) for n in mod.__all__)
    defined = {
        k
        for k, v in vars(mod).items()
        if not k.startswith("_")
        and not isinstance(v, type(sys))
        and (k.isupper() or str(getattr(v, "__module__", "")).startswith("infphys"))
    }
    assert defined <= set(mod.__all__)
