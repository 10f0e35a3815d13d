"""Copying the labs to a learner's folder: nothing a learner edited is lost without asking."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from infphys.cli import app
from infphys.labkit import MANIFEST, copy_labs, lab_files, lab_source

REPO = Path(__file__).resolve().parents[1]


def _shipped(tmp_path: Path, text: str = "# lab one v1\n") -> Path:
    src = tmp_path / "shipped"
    src.mkdir(exist_ok=True)
    (src / "01_one.py").write_text(text)
    (src / "02_two.py").write_text("# lab two\n")
    return src


def test_checkout_source_is_the_repository_labs() -> None:
    assert lab_source() == REPO / "labs"
    assert [p.name for p in lab_files() if p.suffix == ".py"] == sorted(
        p.name for p in (REPO / "labs").glob("[0-9][0-9]_*.py")
    )


def test_first_copy_then_unchanged(tmp_path: Path) -> None:
    src, work = _shipped(tmp_path), tmp_path / "work"
    first = copy_labs(work, source=src)
    assert first.actions == {"01_one.py": "copied", "02_two.py": "copied"}
    assert first.notebooks == ["01_one.py", "02_two.py"]
    manifest = json.loads((work / MANIFEST).read_text())["files"]
    assert set(manifest) == {"01_one.py", "02_two.py"}
    assert set(copy_labs(work, source=src).actions.values()) == {"unchanged"}


def test_an_edited_lab_is_kept_and_refresh_backs_it_up(tmp_path: Path) -> None:
    src, work = _shipped(tmp_path), tmp_path / "work"
    copy_labs(work, source=src)
    (work / "01_one.py").write_text("# my notes\n")
    (work / "answers").mkdir()
    (work / "answers" / "ada.json").write_text("{}")
    _shipped(tmp_path, "# lab one v2\n")  # a newer infphys ships another text

    again = copy_labs(work, source=src)
    assert again.actions["01_one.py"] == "kept"
    assert (work / "01_one.py").read_text() == "# my notes\n"

    refreshed = copy_labs(work, source=src, refresh=True)
    assert refreshed.actions["01_one.py"] == "refreshed"
    assert (work / "01_one.py").read_text() == "# lab one v2\n"
    assert (work / "01_one.py.bak").read_text() == "# my notes\n"
    assert (work / "answers" / "ada.json").read_text() == "{}"  # answers never touched


def test_an_unedited_lab_follows_a_new_release(tmp_path: Path) -> None:
    src, work = _shipped(tmp_path), tmp_path / "work"
    copy_labs(work, source=src)
    _shipped(tmp_path, "# lab one v2\n")
    assert copy_labs(work, source=src).actions["01_one.py"] == "updated"
    assert (work / "01_one.py").read_text() == "# lab one v2\n"


def test_cli_list_and_copy_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    listed = CliRunner().invoke(app, ["labs", "--list"])
    assert listed.exit_code == 0, listed.output
    assert "03_kv_cache.py" in listed.output
    work = tmp_path / "mine"
    copied = CliRunner().invoke(app, ["labs", "--copy-only", "--dir", str(work)])
    assert copied.exit_code == 0, copied.output
    assert len(list(work.glob("[0-9][0-9]_*.py"))) == len(
        list((REPO / "labs").glob("[0-9][0-9]_*.py"))
    )
    (work / "03_kv_cache.py").write_text("# edited\n")
    kept = CliRunner().invoke(app, ["labs", "--copy-only", "--dir", str(work)])
    assert kept.exit_code == 0 and "kept your edited 03_kv_cache.py" in kept.output
    assert (work / "03_kv_cache.py").read_text() == "# edited\n"


def test_cli_labs_dir_does_not_go_with_copy_options(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["labs", "--labs-dir", str(tmp_path), "--refresh"])
    assert result.exit_code == 2 and "--labs-dir" in result.output
