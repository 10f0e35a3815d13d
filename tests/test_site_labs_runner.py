"""docs/hooks/labs_runner.py on its own, without MkDocs or a build: labs found, snapshots
pointed at the local frontend, and a snapshot's charts and failed cells counted; and
docs/hooks/labs_export.py, the process that exports the labs, on notebooks of one cell: the pages
and reports it writes, the arguments it refuses, the signals that stop it and its kernels."""

from __future__ import annotations

import concurrent.futures
import importlib.util
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import procs
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


# --- labs_export.py: the one process that exports the labs ------------------------------------

EXPORTER = REPO / "docs" / "hooks" / "labs_export.py"
#: A marimo notebook of one cell (what ``marimo new`` writes, cut to one cell).
NOTEBOOK = """import marimo

app = marimo.App()


@app.cell
def _():
    import pathlib
    import time
    {body}
    return


if __name__ == "__main__":
    app.run()
"""


def _notebook(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text(NOTEBOOK.format(body=body), encoding="utf-8")
    return path


def _exporter(*args: str) -> list[str]:
    # No modules preloaded: these notebooks import nothing of infphys, and the forkserver's
    # imports would only cost the suite time (the site build runs the real preload).
    return [sys.executable, str(EXPORTER), "--preload", "", *args]


def _export(folder: Path, *args: str) -> dict[str, dict[str, Any]]:
    """Run the exporter in ``folder`` to its end (exit 0): its report line of each lab, by name."""
    proc = subprocess.run(_exporter(*args), cwd=folder, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    return {row["lab"]: row for row in map(json.loads, proc.stdout.splitlines())}


def test_the_exporter_writes_each_labs_page_and_reports_what_its_cells_printed_or_raised(
    runner: ModuleType, tmp_path: Path
) -> None:
    _notebook(tmp_path, "fine.py", 'print("forty-two", 6 * 7)')
    _notebook(tmp_path, "broken.py", 'raise ValueError("no such GPU: h900")')
    rows = _export(tmp_path, "--jobs", "2", "--timeout", "200", "fine.py", "broken.py")
    assert set(rows) == {"fine.py", "broken.py"}
    fine, broken = rows["fine.py"], rows["broken.py"]
    assert (fine["failed"], fine["error"], fine["html"]) == (False, None, "fine.html")
    assert fine["output"] == "forty-two 42\n"  # the cell's print, run in the lab's kernel
    assert runner.snapshot_problems((tmp_path / "fine.html").read_text("utf-8")) == (0, [])
    # The failing cell: marimo's "some cells raised", its message, and the page still written
    # (the runner then fails the build with the cell's error).
    assert (broken["failed"], broken["error"]) == (True, None)
    assert "no such GPU: h900" in broken["output"]
    _, errors = runner.snapshot_problems((tmp_path / "broken.html").read_text("utf-8"))
    assert errors == ["cell Hbol: exception: no such GPU: h900"]  # marimo's id of a first cell
    assert not (tmp_path / "__marimo__").exists()  # no session files left beside the labs


#: A cell that prints which other kernels of its forkserver are running (its parent's children
#: that are neither itself nor exited), read from /proc: "pid (name) state ppid ...".
SIBLINGS = """import os
    _running = []
    for _entry in pathlib.Path("/proc").iterdir():
        if not _entry.name.isdigit():
            continue
        try:
            _state, _ppid = (_entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, IndexError):
            continue  # a process that ended meanwhile
        if int(_ppid) == os.getppid() and _entry.name != str(os.getpid()) and _state != "Z":
            _running.append(_entry.name)
    print("running beside me:", _running)"""


def test_a_lab_that_times_out_has_its_kernel_stopped_before_the_next_lab_starts(
    tmp_path: Path,
) -> None:
    # One lab at a time: "stuck" never ends, so "after" starts once stuck has timed out. Without
    # the stop, stuck's kernel (a child of the same forkserver) would still be running beside it.
    _notebook(tmp_path, "stuck.py", "while True:\n        time.sleep(0.1)")
    _notebook(tmp_path, "after.py", SIBLINGS)
    rows = _export(tmp_path, "--jobs", "1", "--timeout", "10", "stuck.py", "after.py")
    assert rows["stuck.py"]["error"] == "took more than 10 s"
    assert (rows["after.py"]["error"], rows["after.py"]["failed"]) == (None, False)
    assert rows["after.py"]["output"] == "running beside me: []\n"


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--jobs", "0", "--timeout", "9", "x.py"], "--jobs must be at least 1, got 0"),
        (["--jobs", "1", "--timeout", "-5", "x.py"], "--timeout must be above 0 seconds, got -5.0"),
        (["--jobs", "1", "x.py"], "the following arguments are required: --timeout"),
        (["--jobs", "1", "--timeout", "9", "nope.py"], "no such lab: nope.py"),
    ],
)
def test_the_exporter_refuses_bad_arguments_by_name(
    tmp_path: Path, args: list[str], named: str
) -> None:
    (tmp_path / "x.py").write_text("", encoding="utf-8")
    proc = subprocess.run(
        _exporter(*args), cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and named in proc.stderr, proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_exporter_and_every_kernel_it_started(
    tmp_path: Path, signum: int
) -> None:
    lab = _notebook(tmp_path, "sleepy.py", 'pathlib.Path("started").touch()\n    time.sleep(120)')
    proc = subprocess.Popen(
        _exporter("--jobs", "1", "--timeout", "200", lab.name),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "started").exists():  # the lab's kernel is running its cell
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the lab's cell never started"
            time.sleep(0.1)
        started = procs.descendants(proc.pid)  # the forkserver, the kernel, the tracker
        assert len(started) >= 2
        proc.send_signal(signum)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 128 + signum and out == b""  # no report for a stopped lab
        deadline = time.monotonic() + 30
        while left := [pid for pid in started if procs.alive(pid)]:
            assert time.monotonic() < deadline, f"still running after {signum}: {left}"
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_reported_page_is_checked_and_cached_or_fails_the_build_naming_its_lab(
    runner: ModuleType, tmp_path: Path
) -> None:
    lab = runner.Lab(3, tmp_path / "03_kv_cache.py", "Lab 3 · The KV-cache cliff", 25)
    page = tmp_path / "03_kv_cache.html"
    session = {"cells": [{"id": "a", "outputs": [{"type": "data", "data": {"text/html": "ok"}}]}]}
    page.write_text('"session": ' + json.dumps(session) + " marimo-plotly data-figure=", "utf-8")
    cached = tmp_path / "cache" / "03_kv_cache.k.html"
    row = {"lab": lab.path.name, "html": page.name, "seconds": 4.2, "failed": False,
           "error": None, "output": ""}  # fmt: skip
    result = runner._snapshot(lab, cached, tmp_path, row)
    assert (result.path, result.seconds, result.cached, result.charts) == (cached, 4.2, False, 1)
    assert cached.read_text("utf-8") == page.read_text("utf-8")
    assert runner.Result.from_cache(cached, cached.with_suffix(".json")) == runner.Result(
        cached, 4.2, True, 1
    )
    for bad, says in [
        ({"error": "took more than 300 s", "output": "step 3"}, "took more than 300 s\nstep 3"),
        ({"failed": True, "output": "ValueError: no such GPU"}, "ValueError: no such GPU"),
        ({"html": "missing.html"}, "wrote nothing"),
    ]:
        with pytest.raises(runner.PluginError, match=r"03_kv_cache\.py") as failed:
            runner._snapshot(lab, cached, tmp_path, {**row, **bad})
        assert says in str(failed.value)


#: Stands in for labs_export.py: reports the first lab (its page written), then gives up.
FAKE_EXPORTER = """import json, sys
from pathlib import Path

Path("01_a.html").write_text('"session": {"cells": []} marimo-plotly data-figure=', "utf-8")
row = {"lab": "01_a.py", "html": "01_a.html", "seconds": 1.5, "failed": False, "error": None,
       "output": ""}
print(json.dumps(row), flush=True)
print("the exporter gave up", file=sys.stderr)
sys.exit(3)
"""


def test_the_runner_settles_every_labs_wait_from_what_the_exporter_reported(
    runner: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "fake_export.py"
    fake.write_text(FAKE_EXPORTER, encoding="utf-8")
    monkeypatch.setattr(runner, "EXPORTER", fake)
    (tmp_path / "labs").mkdir()
    labs = {}
    for number, stem in [(1, "01_a"), (2, "02_b")]:
        path = tmp_path / "labs" / f"{stem}.py"
        path.write_text("import marimo\n", encoding="utf-8")
        labs[number] = runner.Lab(number, path, f"Lab {number} · A lab", 5)
    jobs = runner.Jobs(root=tmp_path, enabled=True, labs=labs, cache=tmp_path / "cache")
    todo = {lab.stem: (lab, tmp_path / "cache" / f"{lab.stem}.k.html") for lab in labs.values()}
    for stem in todo:
        jobs.futures[stem] = concurrent.futures.Future()
    runner._export_snapshots(jobs, dict(todo), 2)
    done = jobs.result("01_a")  # reported: checked and cached
    assert (done.path, done.seconds, done.charts) == (todo["01_a"][1], 1.5, 1)
    # Never reported: its page fails the build with the exporter's exit and log, not a hang.
    with pytest.raises(runner.PluginError, match=r"02_b\.py: the exporter ended \(exit 3\)") as e:
        jobs.result("02_b")
    assert "the exporter gave up" in str(e.value)
    assert not jobs.procs  # nothing left for shutdown to stop
