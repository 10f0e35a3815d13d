"""docs/hooks/labs_runner.py on its own, without MkDocs or a build: labs found, snapshots
pointed at the local frontend, and a snapshot's charts and failed cells counted."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def runner() -> ModuleType:
    pytest.importorskip("mkdocs")
    path = REPO / "docs" / "hooks" / "labs_runner.py"
    spec = importlib.util.spec_from_file_location("labs_runner_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_find_labs_reads_every_lab_title_and_budget(runner: ModuleType) -> None:
    labs = runner.find_labs(REPO)
    on_disk = sorted(REPO.glob("labs/[0-9][0-9]_*.py"))
    assert [lab.path for lab in labs.values()] == on_disk
    lab3 = labs[3]
    assert lab3.stem == "03_kv_cache" and lab3.snapshot_uri == "labs/snapshots/03_kv_cache.html"
    assert lab3.title.startswith("Lab 3") and not lab3.short_title.startswith("Lab")
    assert all(lab.minutes > 0 for lab in labs.values())


def test_find_labs_rejects_a_lab_without_a_time_budget(runner: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "labs").mkdir()
    (tmp_path / "labs" / "01_x.py").write_text('app = marimo.App(app_title="Lab 1 · X")\n')
    with pytest.raises(runner.PluginError, match="Time: about N minutes"):
        runner.find_labs(tmp_path)


def test_rewrite_snapshot_points_marimo_at_the_local_copy(runner: ModuleType) -> None:
    cdn = "https://cdn.jsdelivr.net/npm/@marimo-team/frontend@0.9.0/dist/"
    page = f'<script type="module" src="{cdn}assets/index.js"></script>'
    out = runner.rewrite_snapshot(page, "../../assets/vendor/marimo/")
    assert out == '<script type="module" src="../../assets/vendor/marimo/assets/index.js"></script>'
    with pytest.raises(ValueError, match="another host"):
        runner.rewrite_snapshot('<img src="https://example.org/x.png">', "./")


def test_snapshot_problems_counts_charts_and_failed_cells(runner: ModuleType) -> None:
    session = {
        "cells": [
            {"id": "a", "outputs": [{"type": "data", "data": {"text/html": "ok"}}]},
            {"id": "b", "outputs": [{"type": "error", "data": {"text/plain": "boom"}}]},
        ]
    }
    text = '"session": ' + json.dumps(session) + " marimo-plotly data-figure= " * 2
    charts, errors = runner.snapshot_problems(text)
    assert charts == 2
    assert len(errors) == 1 and errors[0].startswith("cell b:")
    assert runner.snapshot_problems("<html></html>") == (
        0,
        ["no session data: the export did not run the notebook"],
    )


def test_a_fresh_result_is_found_in_the_cache_by_the_next_build(
    runner: ModuleType, tmp_path: Path
) -> None:
    page, meta = tmp_path / "01_preflight.abc.html", tmp_path / "01_preflight.abc.json"
    assert runner.Result.from_cache(page, meta) is None  # nothing cached yet
    page.write_text("<html></html>", encoding="utf-8")
    assert runner.Result.from_cache(page, meta) is None  # a page without its metadata
    fresh = runner.Result.fresh(page, meta, 61.204, 3)
    assert (fresh.seconds, fresh.cached, fresh.charts) == (61.204, False, 3)
    # The metadata keeps the seconds to two decimals: 61.204 → 61.2.
    hit = runner.Result.from_cache(page, meta)
    assert hit == runner.Result(page, 61.2, True, 3)
