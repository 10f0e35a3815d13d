"""One JSON-lines reader (infphys.records.iter_json_lines) behind run files and metrics files:
blank lines and the torn last line of an interrupted run are skipped, what was finished kept."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from infphys.measure.metrics import load_metrics
from infphys.records import RequestRecord, RunHeader, RunWriter, iter_json_lines, read_run


def test_blank_and_torn_lines_are_skipped(tmp_path: Path) -> None:
    p = tmp_path / "x.jsonl"
    p.write_text('{"a": 1}\n\n{"a": 2}\n{"a": 3', encoding="utf-8")  # the last one cut off
    assert list(iter_json_lines(p)) == [{"a": 1}, {"a": 2}]


def test_a_metrics_file_with_a_torn_last_line_keeps_its_whole_rows(tmp_path: Path) -> None:
    p = tmp_path / "m.metrics.jsonl"
    p.write_text('{"t_s": 0.5, "endpoint": "x"}\n{"t_s": 1.', encoding="utf-8")
    frame = load_metrics(p)
    assert frame["t_s"].tolist() == [0.5]


def test_a_run_file_with_a_torn_last_line_keeps_its_header(tmp_path: Path) -> None:
    p = tmp_path / "run.jsonl"
    with RunWriter(p, RunHeader(source="simulated", started_at="2026-11-27T00:00:00Z")):
        pass
    with p.open("a", encoding="utf-8") as fh:
        fh.write('{"type": "record", "request_id": 0, "sent_s"')  # torn by an interruption
    run = read_run(p)
    assert run.header.started_at == "2026-11-27T00:00:00Z"
    assert run.records == []


def _strict(line: str) -> object:
    """json.loads that refuses NaN and Infinity, as browsers, jq and strict readers do."""

    def refuse(word: str) -> object:
        raise ValueError(f"{word} is not JSON")

    return json.loads(line, parse_constant=refuse)


def test_a_run_file_is_strict_json_even_with_nan_in_it(tmp_path: Path) -> None:
    # An open-loop level's label can be a float that came out NaN, and numpy's NaN too; json.dumps
    # alone writes both as the bare word NaN, which no strict JSON reader takes.
    p = tmp_path / "run.jsonl"
    header = RunHeader(source="simulated", started_at="2026-11-27T00:00:00Z")
    record = RequestRecord(
        request_id=0, sent_s=0.0, first_token_s=0.05, end_s=1.0,
        labels={"rate_per_s": float("nan"), "level": np.int64(2), "x": np.float64("inf")},
    )  # fmt: skip
    with RunWriter(p, header) as w:
        w.write(record)
    lines = [_strict(line) for line in p.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 2
    assert read_run(p).records[0].labels == {"rate_per_s": None, "level": 2, "x": None}
