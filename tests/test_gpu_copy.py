"""Copy bandwidth on host memory, for real, with numpy and with torch CPU: both counting
conventions, labelled as host memory, and sensible figures."""

from __future__ import annotations

import json
import math

import pytest

from infphys.measure.gpu import COPY_COLUMNS, copy_bandwidth
from infphys.measure.gpu.copy_bandwidth import resolve_backend

MiB = 2**20


#: One torch thread while these tests run (tests/conftest.py); skipped without torch.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("backend", ["numpy", "torch-cpu"])
def test_host_copy_counts_both_ways(backend: str) -> None:
    r = copy_bandwidth([MiB, 4 * MiB], repeats=3, warmup=1, backend=backend)  # type: ignore[arg-type]
    assert r.memory == "host" and r.backend == backend
    via = "numpy" if backend == "numpy" else "torch CPU"
    assert r.label == f"host memory (CPU RAM) via {via}: not GPU memory"
    assert r.catalog is None and r.fraction_of_datasheet is None
    df = r.frame
    assert list(df.columns) == list(COPY_COLUMNS)
    assert list(df["size_bytes"]) == [MiB, 4 * MiB]
    # A copy of n bytes reads n and writes n: the read-plus-written figure is exactly twice the
    # copied-once figure (the original notebook's convention).
    assert list(df["bytes_read_plus_written"]) == [2 * MiB, 8 * MiB]
    assert list(df["bytes_copied_once"]) == [MiB, 4 * MiB]
    ratio = df["bandwidth_read_plus_written_bytes_per_s"] / df["bandwidth_copied_once_bytes_per_s"]
    assert list(ratio) == [2.0, 2.0]
    # The figure is bytes over the median time per copy.
    row = df.iloc[1]
    assert row["bandwidth_read_plus_written_bytes_per_s"] == pytest.approx(
        8 * MiB / row["median_s"]
    )
    assert row["min_s"] <= row["median_s"]
    # Sensible for any machine this runs on: above 50 MB/s, below 10 TB/s.
    for bw in df["bandwidth_read_plus_written_bytes_per_s"]:
        assert 5e7 < bw < 1e13
    assert df["fraction_of_datasheet"].isna().all()
    assert r.bandwidth_bytes_per_s == 2 * r.bandwidth_copied_once_bytes_per_s


def test_small_copies_are_batched_per_timing() -> None:
    r = copy_bandwidth([64 * 1024], repeats=2, warmup=0, backend="numpy")
    # 16 MiB per timing at least: 256 copies of 64 KiB, capped at 200.
    assert r.frame["copies_per_timing"].iloc[0] == 200


def test_json_ready() -> None:
    r = copy_bandwidth([MiB], repeats=2, backend="numpy")
    d = json.loads(json.dumps(r.to_dict()))
    assert d["memory"] == "host" and d["fraction_of_datasheet"] is None
    assert d["rows"][0]["fraction_of_datasheet"] is None  # NaN becomes null
    assert d["rows"][0]["bytes_read_plus_written"] == 2 * MiB


def test_time_budget_skips_the_rest_with_a_note() -> None:
    r = copy_bandwidth([MiB, 2 * MiB], repeats=2, backend="numpy", time_budget_s=1e-9)
    assert list(r.frame["size_bytes"]) == [MiB]  # the first size always runs
    assert "skipped 2097152 bytes: time budget of 1e-09 s spent" in r.notes


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="backend must be one of"):
        copy_bandwidth([MiB], backend="opencl")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"sizes_bytes\[0\]"):
        copy_bandwidth([0], backend="numpy")
    with pytest.raises(ValueError, match="repeats"):
        copy_bandwidth([MiB], repeats=0, backend="numpy")


def test_torch_cuda_backend_needs_cuda() -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        assert resolve_backend("auto") == "torch-cuda"
    else:
        assert resolve_backend("auto") == "torch-cpu"
        with pytest.raises(ValueError, match="torch-cuda needs torch with a CUDA GPU"):
            resolve_backend("torch-cuda")


def test_empty_result_properties_are_nan() -> None:
    r = copy_bandwidth([MiB], repeats=1, backend="numpy")
    empty = type(r)(r.memory, r.backend, r.device_name, r.label, None, r.frame.iloc[0:0])
    assert math.isnan(empty.bandwidth_bytes_per_s)
    assert empty.fraction_of_datasheet is None
