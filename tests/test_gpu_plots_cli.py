"""The GPU figures and commands: drawn from real CPU runs and fake-NVML watches, and without a
GPU the same sentence the user reads elsewhere."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pynvml
import pytest
from fake_nvml import NO_GPU_VERDICTS, FakeGPU, MiB, make_fake_nvml, use
from figures import trace
from typer.testing import CliRunner

from infphys.cli import app
from infphys.measure.gpu import (
    CPU_SCALED_MODEL,
    copy_bandwidth,
    roofline_experiment,
    watch_gpu,
)
from infphys.plots.gpu import copy_bandwidth_figure, roofline_experiment_figure, watch_figure

NO_LIB = NO_GPU_VERDICTS[pynvml.NVML_ERROR_LIBRARY_NOT_FOUND]
ROOT = Path(__file__).resolve().parents[1]


#: One torch thread while these tests run (tests/conftest.py); skipped without torch.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = make_fake_nvml([], init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)
    use(monkeypatch, fake)


@pytest.fixture
def two_h100(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = make_fake_nvml([FakeGPU(), FakeGPU(name=b"NVIDIA H100 80GB HBM3", util_gpu=100)])
    use(monkeypatch, fake)


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200", "NO_COLOR": "1"})
    return result.exit_code, result.output


# --- figures ----------------------------------------------------------------------------------


def test_watch_figure_from_a_fake_watch(two_h100: None) -> None:
    fig = watch_figure(watch_gpu(0.1, 0.05))
    names = {t.name for t in fig.data}
    assert "GPU 1: NVIDIA H100 80GB HBM3: memory used" in names
    assert len(fig.data) == 2 * 5  # two GPUs × five series


def test_watch_figure_without_gpu_states_the_reason(no_gpu: None) -> None:
    fig = watch_figure(watch_gpu(0.1, 0.05))
    assert fig.layout.annotations[0].text == NO_LIB
    assert len(fig.data) == 0


def test_copy_bandwidth_figure() -> None:
    r = copy_bandwidth([MiB, 4 * MiB], repeats=2, backend="numpy")
    fig = copy_bandwidth_figure(r)
    # Each copy reads and writes its bytes: counted both ways it is twice the bytes copied.
    rw = r.frame["bandwidth_read_plus_written_bytes_per_s"].tolist()
    once = r.frame["bandwidth_copied_once_bytes_per_s"].tolist()
    assert len(rw) == 2 and rw == pytest.approx([2 * y for y in once])
    drawn = trace(fig, "read + written (what memory moved)")
    assert list(drawn.y) == pytest.approx([v / 1e9 for v in rw])  # GB/s
    assert "host memory (CPU RAM) via numpy: not GPU memory" in fig.layout.title.text


def test_roofline_figure_marks_the_ridge() -> None:
    df = roofline_experiment(
        CPU_SCALED_MODEL,
        batch_sizes=(1, 4),
        context_tokens=16,
        precisions=("fp32",),
        gpu="h100",
        repeats=1,
        warmup=0,
    )
    fig = roofline_experiment_figure(df)
    texts = [x for t in fig.data if t.text is not None for x in t.text if x]
    assert "FP32 ridge point: 295 FLOP/byte " in texts
    measured = next(t for t in fig.data if t.name == "FP32 measured")
    assert list(measured.x) == [1, 4]
    assert list(measured.y) == pytest.approx(list(df["step_s"] * 1e3))
    empty = roofline_experiment_figure(pd.DataFrame(columns=df.columns))
    assert empty.layout.annotations[0].text == "nothing was timed"


# --- commands ---------------------------------------------------------------------------------


def test_engine_check_without_gpu_exits_0_and_explains(no_gpu: None) -> None:
    code, out = invoke("engine-check")
    assert code == 0
    assert out.splitlines()[0] == NO_LIB
    assert "The kit carries on without one" in out


def test_engine_check_json_without_gpu(no_gpu: None) -> None:
    code, out = invoke("engine-check", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["ok"] is False and data["gpus"] == []
    assert data["verdict"] == NO_LIB and data["reason"] == "NVML library not found"


def test_engine_check_table_with_two_gpus(two_h100: None) -> None:
    code, out = invoke("engine-check")
    assert code == 0
    assert out.startswith("2 NVIDIA GPUs visible: GPU 0: NVIDIA H100 80GB HBM3 → catalog H100 SXM")
    assert "79.6 GiB" in out and "700 W" in out and "3.35 TB/s" in out
    data = json.loads(invoke("engine-check", "--json")[1])
    assert [g["catalog_key"] for g in data["gpus"]] == ["h100-sxm", "h100-sxm"]


def test_gpu_watch_command(no_gpu: None) -> None:
    code, out = invoke("gpu-watch", "--seconds", "0.1", "--interval", "0.05")
    assert code == 0 and out.strip() == NO_LIB
    code, out = invoke("gpu-watch", "--seconds", "0.1", "--interval", "0.05", "--json")
    assert json.loads(out) == {
        "attrs": {
            "reason": NO_LIB,
            "interval_s": 0.05,
            "gpu_names": {},
            "started_at": json.loads(out)["attrs"]["started_at"],
            "samples": 0,
        },
        "rows": [],
    }


def test_gpu_watch_command_with_gpus(two_h100: None) -> None:
    code, out = invoke("gpu-watch", "--seconds", "0.1", "--interval", "0.05")
    assert code == 0
    assert "GPU watch: 3 samples every 0.05 s" in out
    assert "100 / 100 %" in out  # GPU 1's utilisation, mean / max


def test_copy_bw_command() -> None:
    code, out = invoke("copy-bw", "--sizes-mib", "1,2", "--repeats", "2", "--backend", "numpy")
    assert code == 0
    assert "host memory (CPU RAM) via numpy: not GPU memory" in out
    code, out = invoke(
        "copy-bw", "--sizes-mib", "1", "--repeats", "2", "--backend", "numpy", "--json"
    )
    data = json.loads(out)
    assert data["rows"][0]["bytes_read_plus_written"] == 2 * MiB
    code, out = invoke("copy-bw", "--backend", "opencl")
    assert code == 2 and "backend must be one of" in out


def test_roofline_exp_command() -> None:
    args = ["roofline-exp", "--batches", "1,2", "--context", "16", "--precisions", "fp32"]
    code, out = invoke(*args, "--gpu", "h100", "--repeats", "1", "--json")
    assert code == 0
    data = json.loads(out)
    assert [r["batch"] for r in data["rows"]] == [1, 2]
    assert data["rows"][0]["bytes_moved"] == 8_428_544  # hand calculation in test_gpu_roofline
    code, out = invoke(*args, "--gpu", "h100", "--repeats", "1")
    assert code == 0
    assert "priced against H100 SXM (datasheet, as asked)" in " ".join(out.split())
    code, out = invoke("roofline-exp", "--model", "mixtral-8x7b")
    assert code == 2 and "mixture-of-experts" in out


def test_engine_check_console_script_on_this_machine() -> None:
    """As a user runs it: a real subprocess, the real pynvml; exit 0 with or without a GPU."""
    exe = Path(sys.executable).parent / "infphys"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "infphys"]
    env = {**os.environ, "COLUMNS": "160", "NO_COLOR": "1"}
    r = subprocess.run(
        [*cmd, "engine-check", "--json"], capture_output=True, text=True, timeout=120, env=env
    )
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["ok"] or data["verdict"].startswith("no NVIDIA GPU visible: ")


# --- the GPU check script ---------------------------------------------------------------------


def _load_script() -> object:
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_gpu_check_script_records_a_failing_part_and_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = _load_script()

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("copy engine on fire")

    monkeypatch.setattr(script, "copy_bandwidth", broken)
    out = tmp_path / "gpu_check.json"
    rc = script.main(["--quick", "--out", str(out)])  # type: ignore[attr-defined]
    assert rc == 1
    data = json.loads(out.read_text())
    assert "RuntimeError: copy engine on fire" in data["errors"]["copy"]
    assert "copy" not in data
    assert data["engine"]["verdict"]
    run = data["roofline"][0]
    assert [r["batch"] for r in run["rows"]] == [1, 8]
    printed = capsys.readouterr().out
    assert "[copy] FAILED" in printed and "Roofline experiment:" in printed
    if not data["cuda"]:
        assert printed.startswith("No CUDA GPU here")
