"""What the headless lab tests share: run a lab with overrides, keep answers out of the
learner's folder, and check a lab's header and marimo's static check."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

LABS = Path(__file__).resolve().parents[1] / "labs"


def load_app(path: Path) -> Any:
    """The marimo app of the notebook at ``path``, imported from its file (no cell run yet)."""
    spec = importlib.util.spec_from_file_location(f"lab_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app


def run_lab(path: Path, **defs: Any) -> dict[str, Any]:
    """Run the marimo app in ``path`` headless (cells in ``defs`` overridden); its globals."""
    app = load_app(path)
    _, result = app.run(defs=defs) if defs else app.run()
    return dict(result)


def isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Answers go to ``tmp_path``, no learner name, and nothing answers at NIM_BASE_URL."""
    monkeypatch.setenv("INFPHYS_ANSWERS_DIR", str(tmp_path / "answers"))
    monkeypatch.delenv("INFPHYS_LEARNER", raising=False)
    monkeypatch.setenv("NIM_BASE_URL", "http://127.0.0.1:9")


def check_marimo_and_header(path: Path) -> None:
    """``marimo check --strict`` passes; the PEP 723 header names the lab's dependencies; the
    lab states its time and ends with a takeaway."""
    done = subprocess.run(
        [sys.executable, "-m", "marimo", "check", "--strict", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    text = path.read_text()
    assert text.startswith("# /// script\n")
    header = text.split("import marimo", 1)[0]
    for dep in ('"marimo', '"plotly', '"pandas', '"infphys"'):
        assert dep in header
    assert "**Time: about" in text and "Key takeaway" in text
