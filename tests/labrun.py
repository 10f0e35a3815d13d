"""What the headless lab tests share: run a lab with overrides, keep answers out of the
learner's folder, check a lab's header and marimo's static check, and check its exercises
against the context the lab stored."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infphys.exercises import exercises_for
from infphys.exercises.contexts import context_problems

LABS = Path(__file__).resolve().parents[1] / "labs"

#: Nothing listens on the discard port: the labs must fall back to the embedded simulator
#: rather than measure whatever happens to answer on localhost:8000 of a shared machine.
NO_SERVER_URL = "http://127.0.0.1:9"


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


def complete(defs: Mapping[str, Any], cells: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """``defs`` plus, for each settings cell whose names it overrides in part, the cell's other
    names at the defaults given in ``cells`` (one mapping a cell).

    marimo runs an overridden cell not at all, so ``app.run(defs=...)`` must supply every name
    that cell defines; a test names only what it changes.
    """
    out = dict(defs)
    for cell in cells:
        if cell.keys() & defs.keys():
            out = {**cell, **out}
    return out


@dataclass
class Picked:
    """Stands in for a marimo widget in ``app.run(defs=...)``: only ``value`` is read."""

    value: Any


def isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Answers go to ``tmp_path`` (a lab saves only when its button is pressed; any file stays
    out of the repository anyway), no learner name, nothing answers at NIM_BASE_URL, and no
    NIM_GEN_MODEL from the shell."""
    monkeypatch.setenv("INFPHYS_ANSWERS_DIR", str(tmp_path / "answers"))
    monkeypatch.delenv("INFPHYS_LEARNER", raising=False)
    monkeypatch.setenv("NIM_BASE_URL", NO_SERVER_URL)
    monkeypatch.delenv("NIM_GEN_MODEL", raising=False)


def lab_fixture(path: Path) -> Any:
    """A module-scoped fixture: the lab at ``path`` run once headless at its defaults, isolated
    as :func:`isolate` says. Use as ``lab12 = lab_fixture(LAB)`` in a test module.

    It isolates itself: pytest sets up a module-scoped fixture before any function-scoped one,
    so an autouse ``isolate`` fixture would not yet be in force when this run starts.
    """

    @pytest.fixture(scope="module")
    def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
        with pytest.MonkeyPatch.context() as monkeypatch:
            isolate(tmp_path_factory.mktemp(path.stem), monkeypatch)
            yield run_lab(path)

    return run


def check_marimo_and_header(path: Path) -> None:
    """``marimo check --strict`` passes; the PEP 723 header names the lab's dependencies, marimo
    pinned to the version the labs are written for; the lab states its time and ends with a
    takeaway."""
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
    for dep in ('"marimo==0.25.2"', '"plotly', '"pandas', '"infphys"'):
        assert dep in header, dep
    assert "**Time: about" in text and "Key takeaway" in text


def check_exercises(lab: int, defs: dict[str, Any]) -> None:
    """Right answers (the solution for the learner's context) pass; wrong ones fail; every
    verdict cell ran and reported 'no answer yet'; the context is one `infphys grade` trusts.

    A wrong number is 1.5 × the solution + 1 (outside every exercise's tolerance); a wrong
    choice is any other option."""
    ctx = defs["exercise_context"]
    for i, ex in enumerate(exercises_for(lab), start=1):
        assert defs["verdicts"][f"q{i}"].status == "missing"
        assert context_problems(ex.id, ctx) == [], ex.id
        expected = ex.expected(**ctx)
        assert ex.check(expected, **ctx).ok, ex.id
        wrong: str | float
        if ex.kind == "choice":
            wrong = next(c for c in ex.choices if c != expected)
        else:
            wrong = float(expected) * 1.5 + 1.0
        assert not ex.check(wrong, **ctx).ok, ex.id
