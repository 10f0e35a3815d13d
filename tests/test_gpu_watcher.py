"""The GPU watcher against a fake pynvml: one session per watch, one row per (sample, GPU),
unsupported fields as NaN, a GPU lost mid-watch ends it cleanly, and no GPU gives an empty frame
with the reason word for word."""

from __future__ import annotations

import math
import time

import pytest
from fake_nvml import NO_GPU_VERDICTS, FakeGPU, MiB, make_fake_nvml, use

from infphys.measure.gpu import WATCH_COLUMNS, GPUWatcher, watch_gpu


def test_watch_for_a_duration_one_session(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = make_fake_nvml([FakeGPU(util_gpu=97, util_memory=55, power_mw=612_500)])
    use(monkeypatch, fake)
    df = watch_gpu(0.2, 0.05)
    # Samples at 0, 0.05, 0.10, 0.15, 0.20 s: five rows for one GPU.
    assert len(df) == 5
    assert list(df.columns) == list(WATCH_COLUMNS)
    assert df.attrs["reason"] is None
    assert df.attrs["gpu_names"] == {"0": "NVIDIA H100 80GB HBM3"}
    assert fake.state.inits == 1 and fake.state.shutdowns == 1  # type: ignore[attr-defined]
    assert (df["gpu"] == 0).all()
    # Sample k is due k × 0.05 s after the start: a busy machine can make it late, never early
    # (a first sample put off by one interval would leave four samples, not five).
    assert df["t_s"].is_monotonic_increasing
    due_s = [0.0, 0.05, 0.10, 0.15, 0.20]
    assert (df["t_s"].to_numpy() >= [t - 1e-3 for t in due_s]).all()  # a timer's rounding
    assert df["power_w"].iloc[0] == 612.5  # 612,500 mW
    assert df["gpu_util_pct"].iloc[0] == 97 and df["memory_util_pct"].iloc[0] == 55
    assert df["temperature_c"].iloc[0] == 33
    # The fake's memory grows 1 MiB per sample: each sample is a fresh query.
    assert list(df["memory_used_bytes"].diff().dropna()) == [MiB] * 4
    assert (df["memory_total_bytes"] == 81559 * MiB).all()


def test_several_gpus_with_bytes_names(monkeypatch: pytest.MonkeyPatch) -> None:
    gpus = [FakeGPU(name=b"NVIDIA H200"), FakeGPU(name=b"NVIDIA H200", power_mw=650_000)]
    use(monkeypatch, make_fake_nvml(gpus))
    df = watch_gpu(0.1, 0.05)
    assert df.attrs["gpu_names"] == {"0": "NVIDIA H200", "1": "NVIDIA H200"}
    assert sorted(df["gpu"].unique()) == [0, 1]
    assert len(df) == 2 * 3
    assert list(df.loc[df["gpu"] == 1, "power_w"].unique()) == [650.0]


def test_only_the_gpus_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, make_fake_nvml([FakeGPU(), FakeGPU()]))
    df = GPUWatcher(0.05, gpus=[1]).run_for(0.05)
    assert set(df["gpu"]) == {1}
    bad = GPUWatcher(0.05, gpus=[5]).run_for(0.05)
    assert bad.empty and bad.attrs["reason"] == "gpus: no GPU 5 (NVML sees 2)"


def test_background_watch_while_a_load_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = make_fake_nvml([FakeGPU()])
    use(monkeypatch, fake)
    with GPUWatcher(interval_s=0.02) as w:
        time.sleep(0.15)  # "the load"
    df = w.frame
    assert len(df) >= 2  # about 8; a loaded machine may take fewer
    assert w.reason is None
    assert fake.state.inits == 1 and fake.state.shutdowns == 1  # type: ignore[attr-defined]
    n = len(df)
    time.sleep(0.05)
    assert len(w.frame) == n  # stopped means stopped
    with pytest.raises(RuntimeError, match="already started"):
        w.start()


def test_gpu_lost_mid_watch_ends_cleanly(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = make_fake_nvml([FakeGPU()], fail_on_sample=3)
    use(monkeypatch, fake)
    df = watch_gpu(1.0, 0.01)
    assert len(df) == 2  # the two samples before the GPU fell off the bus are kept
    assert df.attrs["reason"] == "watch ended after 2 samples: the GPU is lost (fell off the bus)"
    assert fake.state.shutdowns == 1  # type: ignore[attr-defined]


def test_gpu_lost_in_the_background(monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, make_fake_nvml([FakeGPU()], fail_on_sample=2))
    w = GPUWatcher(0.01).start()
    deadline = time.perf_counter() + 10
    while w.reason is None and time.perf_counter() < deadline:
        time.sleep(0.01)
    df = w.stop()
    assert len(df) == 1
    assert df.attrs["reason"] == "watch ended after 1 samples: the GPU is lost (fell off the bus)"


def test_unsupported_power_is_nan_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, make_fake_nvml([FakeGPU()], unsupported={"power"}))
    df = watch_gpu(0.1, 0.05)
    assert len(df) == 3 and df.attrs["reason"] is None
    assert df["power_w"].isna().all()
    assert not math.isnan(df["temperature_c"].iloc[0])


@pytest.mark.parametrize(("code", "reason"), NO_GPU_VERDICTS.items())
def test_no_gpu_gives_an_empty_frame_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, code: int, reason: str
) -> None:
    use(monkeypatch, make_fake_nvml([], init_error=code))
    df = watch_gpu(0.1, 0.05)
    assert df.empty and list(df.columns) == list(WATCH_COLUMNS)
    assert df.attrs["reason"] == reason
    with GPUWatcher(0.05) as w:
        pass
    assert w.frame.empty and w.reason == reason


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="interval_s"):
        GPUWatcher(0)
    with pytest.raises(ValueError, match="seconds"):
        watch_gpu(-1)
