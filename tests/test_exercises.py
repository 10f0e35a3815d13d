"""Exercises: every checker with a right and a wrong answer, tolerance edges, answer files, grading.

Right answers are worked out by hand in the comments (from shared/REFERENCE_DATA.md), not by
calling the solution being tested.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from infphys.cli import app
from infphys.exercises import (
    EXERCISES,
    SCHEMA,
    AnswerBook,
    Exercise,
    Tolerance,
    answer_key,
    check,
    exercises_for,
    get_exercise,
    grade,
    grade_answers,
    learner_slug,
)

LLAMA_8B = {"model": "llama-3.1-8b", "kv_precision": "bf16"}

# (exercise id, context, a right answer, a wrong answer). Each right answer is computed by hand.
CASES: list[tuple[str, dict[str, Any], object, object]] = [
    # TPOT = (1.040 − 0.040) / (101 − 1) = 10 ms.
    ("lab01.q1", {"ttft_s": 0.040, "e2e_s": 1.040, "completion_tokens": 101}, "10", "10.4"),
    # 1 / 10 ms = 100 tokens/s.
    ("lab01.q2", {"ttft_s": 0.040, "e2e_s": 1.040, "completion_tokens": 101}, 100, 96),
    ("lab01.q3", {}, "NIM_BASE_URL", "NIM_GEN_MODEL"),
    # 16.06 GB / 3.35 TB/s = 4.794 ms.
    ("lab02.q1", {"gpu": "h100-sxm", "model": "llama-3.1-8b"}, "4.79", "9.59"),
    # 989 / 3.35 = 295.2 FLOP/byte; on an H200 989 / 4.8 = 206.
    ("lab02.q2", {"gpu": "h100-sxm"}, 295, 206),
    # 2 × 1 GiB / 0.8 ms = 2 × 1.0737e9 / 8e-4 = 2,684 GB/s (counted once: 1,342).
    ("lab02.q3", {"copy_bytes": 2**30, "copy_s": 0.0008}, "2684", "1342"),
    # 2 × 32 × 8 × 128 × 2 = 131,072 bytes; the naive 2 × 32 × 4096 × 2 = 524,288.
    ("lab03.q1", LLAMA_8B, "131072", "524288"),
    # H200: 141e9 × 0.9 − 16.06e9 − 2^31 = 108.68e9; / (8192 × 131072) = 101.2 → 101.
    (
        "lab03.q2",
        {"gpu": "h200", "model": "llama-3.1-8b", "context_tokens": 8192},
        101,
        25,
    ),
    # 4096 / (8 × 128) = 4; Llama-3.1-70B: 8192 / (8 × 128) = 8.
    ("lab03.q3", {"model": "llama-3.1-8b"}, "4", "8"),
    ("lab03.q4", {}, "KV-cache memory", "memory bandwidth"),
    # 8.03e9 parameters × 1 byte = 8.03 GB.
    ("lab04.q1", {"model": "llama-3.1-8b"}, "8.03", "16.06"),
    # H100 SXM: 80e9 × 0.9 − 8.03e9 − 2^31 = 61.82e9; FP8 KV 65,536 B × 8192 = 0.537e9 → 115.
    ("lab04.q2", {"gpu": "h100-sxm", "model": "llama-3.1-8b", "context_tokens": 8192}, 115, 50),
    # Batch-1 decode is memory-bound, so halving every byte halves the step: 2×.
    ("lab04.q3", {"gpu": "h100-sxm", "model": "llama-3.1-8b", "context_tokens": 8192}, 2, 1.5),
    (
        "lab04.q4",
        {"itl_ratio": 1.6},
        "a fixed cost per engine step that no number format shrinks",
        "d",
    ),
    # 1280 / 98.5 = 13.0×.
    (
        "lab05.q1",
        {"sequential_tokens_per_s": 98.5, "concurrent_tokens_per_s": 1280.0},
        "13",
        "1",
    ),
    # 25.6 s / 1.6 s = 16×.
    ("lab05.q2", {"latency_sum_s": 25.6, "wall_s": 1.6}, 16, 1 / 16),
    ("lab05.q3", {}, "a", "b"),
    # 8 × 2.50 / 400 = $0.05 per user-hour; × 730 = $36.50 per month.
    ("lab06.q1", {"gpu_hourly_usd": 2.5, "num_gpus": 8, "concurrent_users": 400}, "0.05", "2.5"),
    # 8 × 2.50 / 3600 × 1e6 / 20,000 = $0.2778.
    (
        "lab06.q2",
        {"gpu_hourly_usd": 2.5, "num_gpus": 8, "output_tokens_per_s": 20_000},
        "0.278",
        "0.0139",
    ),
    ("lab06.q3", {"gpu_hourly_usd": 2.5, "num_gpus": 8, "concurrent_users": 400}, "$36.50", 0.05),
    # Peak 3 × (20,000 / 40,000 + 2,000 / 2,500) = 3.9 → 4 GPUs; 4 × 2.50 / 3600 / 1.3 busy
    # = 0.0021368 USD per busy GPU-second × 10^6 / 2,500 = 0.855 (sized for the average: 0.427).
    (
        "lab06.q4",
        {
            "gpu_hourly_usd": 2.5,
            "average_input_tokens_per_s": 20_000,
            "average_output_tokens_per_s": 2_000,
            "peak_to_average": 3.0,
            "input_tokens_per_s": 40_000.0,
            "output_tokens_per_s": 2_500.0,
        },
        "0.855",
        "0.427",
    ),
]


def test_every_registered_exercise_of_labs_1_to_6_has_a_case() -> None:
    mine = {e for e in EXERCISES if e < "lab07"}
    assert mine == {c[0] for c in CASES}
    for lab in range(1, 7):
        assert 2 <= len(exercises_for(lab)) <= 4, lab


@pytest.mark.parametrize(("ex_id", "context", "right", "wrong"), CASES, ids=[c[0] for c in CASES])
def test_right_and_wrong_answers(
    ex_id: str, context: dict[str, Any], right: object, wrong: object
) -> None:
    ex = get_exercise(ex_id)
    ok = check(ex_id, right, **context)
    assert ok.ok and ok.status == "correct", ok
    assert ok.hint == ""
    bad = check(ex_id, wrong, **context)
    assert not bad.ok and bad.status == "wrong", bad
    assert bad.hint == ex.hint


@pytest.mark.parametrize("ex_id", sorted(e for e in EXERCISES if e < "lab07"))
def test_every_exercise_is_complete(ex_id: str) -> None:
    ex = EXERCISES[ex_id]
    assert ex.lab == ex_id.split(".")[0]
    assert ex.title and ex.prompt and ex.hint and ex.explanation
    if ex.kind == "number":
        assert ex.unit, "a number exercise says which unit to type"
        assert ex.tolerance.relative or ex.tolerance.absolute


def test_a_neighbours_answer_fails() -> None:
    # The neighbour chose an H100 (51 users would fit at 8,192 tokens... in fact 50);
    # this learner chose an H200, where 101 fit.
    mine = {"gpu": "h200", "model": "llama-3.1-8b", "context_tokens": 8192}
    assert not check("lab03.q2", 50, **mine).ok
    assert check("lab03.q2", 50, **{**mine, "gpu": "h100-sxm"}).ok


def test_double_context_halves_users() -> None:
    ctx = {"gpu": "h200", "model": "llama-3.1-8b", "context_tokens": 16384}
    assert check("lab03.q2", 50, **ctx).ok  # 101.2 / 2 = 50.6 → 50


# --- parsing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer", ["131072", "131,072", " 131 072 ", "131_072", "1.31072e5", 131072, 131072.0]
)
def test_number_forms_accepted(answer: object) -> None:
    assert check("lab03.q1", answer, **LLAMA_8B).ok


def test_number_with_its_unit_is_accepted_other_units_are_not() -> None:
    assert check("lab03.q1", "131072 bytes", **LLAMA_8B).ok
    v = check("lab03.q1", "128 KiB", **LLAMA_8B)
    assert v.status == "invalid" and "in bytes" in v.message


@pytest.mark.parametrize("answer", ["lots", "12abc", "nan", "inf", True, [1], "1/4"])
def test_non_numeric_answers_are_invalid_with_a_clear_message(answer: object) -> None:
    v = check("lab03.q1", answer, **LLAMA_8B)
    assert v.status == "invalid" and not v.ok
    assert "number" in v.message
    assert v.hint


@pytest.mark.parametrize("answer", [None, "", "   "])
def test_blank_answers_are_missing(answer: object) -> None:
    v = check("lab03.q1", answer, **LLAMA_8B)
    assert v.status == "missing" and not v.ok and v.message == "No answer yet."


def test_choice_by_letter_and_any_case_and_invalid_choice() -> None:
    assert check("lab03.q4", "A").ok
    assert check("lab03.q4", "a)").ok
    assert check("lab03.q4", "kv-cache MEMORY").ok
    v = check("lab03.q4", "the network")
    assert v.status == "invalid" and "a) KV-cache memory" in v.message


def test_missing_context_is_a_lab_bug() -> None:
    with pytest.raises(ValueError, match="needs the context gpu"):
        check("lab03.q2", 101, model="llama-3.1-8b", context_tokens=8192)


def test_unknown_exercise() -> None:
    with pytest.raises(ValueError, match=r"unknown exercise 'lab99\.q9'"):
        check("lab99.q9", 1)


# --- tolerance --------------------------------------------------------------------------------


def test_relative_tolerance_edges() -> None:
    t = Tolerance(relative=0.05)
    assert t.allows(105.0, 100.0) and t.allows(95.0, 100.0)  # inclusive
    assert not t.allows(105.01, 100.0) and not t.allows(94.99, 100.0)
    assert t.describe() == "±5%"


def test_absolute_tolerance_edges_and_the_larger_of_both() -> None:
    t = Tolerance(absolute=1)
    assert t.allows(102, 101) and t.allows(100, 101) and not t.allows(99, 101)
    both = Tolerance(relative=0.01, absolute=1)
    assert both.bound(50) == 1 and both.bound(1000) == 10
    assert both.describe("users") == "±1% or ±1 users, whichever is larger"
    assert Tolerance().describe() == "exact" and Tolerance().allows(3, 3)


def test_tolerance_edge_through_an_exercise() -> None:
    # lab03.q1 allows 1 %: 131,072 × 1.01 = 132,382.72 passes, 132,400 does not.
    assert check("lab03.q1", 132382.7, **LLAMA_8B).ok
    v = check("lab03.q1", 132400, **LLAMA_8B)
    assert v.status == "wrong" and "too high" in v.message and "±1%" in v.message
    assert "too low" in check("lab03.q1", 129700, **LLAMA_8B).message


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), True, "1"])
def test_bad_tolerance_rejected(bad: object) -> None:
    with pytest.raises(ValueError, match=r"Tolerance\.relative"):
        Tolerance(relative=bad)  # type: ignore[arg-type]


# --- defining exercises -----------------------------------------------------------------------


def _three() -> float:
    return 3.0


def test_exercise_validation() -> None:
    base = {
        "title": "t", "prompt": "p", "solution": _three, "hint": "h", "explanation": "e",
        "register": False,
    }  # fmt: skip
    with pytest.raises(ValueError, match=r"lab03\.q1"):
        Exercise(id="lab3.q1", **base)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least 2 choices"):
        Exercise(id="lab98.q1", kind="choice", choices=("x",), **base)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="only a choice exercise"):
        Exercise(id="lab98.q1", choices=("x", "y"), **base)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="hint must not be empty"):
        Exercise(id="lab98.q1", **{**base, "hint": " "})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="already registered"):
        Exercise(id="lab03.q1", **{**base, "register": True})  # type: ignore[arg-type]


def test_render_prompt_fills_the_context() -> None:
    ex = get_exercise("lab03.q2")
    text = ex.render_prompt(
        gpu_name="H200 SXM", model_name="Llama-3.1-8B", context_tokens=8192,
        weights_precision="bf16", kv_precision="bf16",
    )  # fmt: skip
    assert "**8,192** tokens" in text and "**H200 SXM**" in text and "{" not in text
    # A placeholder without a value is left as it is; the others are still filled.
    partial = ex.render_prompt(context_tokens=4096)
    assert "**4,096** tokens" in partial and "{gpu_name}" in partial


def test_custom_model_shape_in_the_context() -> None:
    # The learner halved Llama-3.1-8B's layers: 2 × 16 × 8 × 128 × 2 = 65,536 bytes per token.
    import dataclasses

    from infphys.catalog import get_model

    shape = {**dataclasses.asdict(get_model("llama-3.1-8b")), "layers": 16}
    assert check("lab03.q1", 65536, model=shape).ok
    assert not check("lab03.q1", 131072, model=shape).ok
    with pytest.raises(ValueError, match="not a ModelSpec"):
        check("lab03.q1", 1, model={"layers": 1})


def test_answer_key_has_every_explanation() -> None:
    key = answer_key()
    for ex_id in (c[0] for c in CASES):
        assert f"### {ex_id} · " in key
        assert EXERCISES[ex_id].explanation in key
    assert "- a) KV-cache memory" in answer_key("lab03")


# --- answer books and grading -----------------------------------------------------------------

H200_8B = {"gpu": "h200", "model": "llama-3.1-8b", "context_tokens": 8192}
# Lab 3's whole context, as the lab stores it (what `infphys grade` compares a context with).
LAB03 = {
    **H200_8B,
    "model_name": "Llama-3.1-8B",
    "gpu_name": "H200 SXM",
    "kv_precision": "bf16",
    "weights_precision": "bf16",
}


def test_book_records_only_checked_answers(tmp_path: Path) -> None:
    book = AnswerBook("Ada Lovelace", lab="lab03")
    assert book.check("lab03.q1", "", **LLAMA_8B).status == "missing"
    assert book.check("lab03.q1", "abc", **LLAMA_8B).status == "invalid"
    assert book.answers == {}
    book.check("lab03.q1", "524288", **LLAMA_8B)
    book.check("lab03.q1", "524288", **LLAMA_8B)  # re-run of the same cell: not a new attempt
    book.check("lab03.q1", "131072", **LLAMA_8B)
    entry = book.answers["lab03.q1"]
    assert entry["ok"] and entry["attempts"] == 2 and entry["context"] == LLAMA_8B
    book.check("lab03.q1", "nonsense", **LLAMA_8B)  # leaves the earlier attempt in place
    assert book.answers["lab03.q1"]["answer"] == "131072"
    assert book.passed == 1


def test_save_merges_labs_into_one_file_per_learner(tmp_path: Path) -> None:
    first = AnswerBook("Ada Lovelace", lab="lab03")
    first.check("lab03.q1", "131072", **LLAMA_8B)
    path = first.save(tmp_path)
    assert path == tmp_path / "ada-lovelace.json"
    second = AnswerBook("Ada Lovelace", lab="lab06")
    second.check("lab06.q1", 0.05, gpu_hourly_usd=2.5, num_gpus=8, concurrent_users=400)
    second.add_run("capacity", {"max_users": 400, "p95_s": 1.8})
    assert second.save(tmp_path) == path
    data = json.loads(path.read_text())
    assert data["schema"] == SCHEMA and data["learner"] == "Ada Lovelace"
    assert data["infphys_version"]
    assert set(data["answers"]) == {"lab03.q1", "lab06.q1"}
    assert data["runs"]["lab06"]["capacity"]["summary"] == {"max_users": 400, "p95_s": 1.8}
    assert data["created_utc"] <= data["updated_utc"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ada-lovelace.json"]
    loaded = AnswerBook.load(path)
    assert loaded.passed == 2 and loaded.learner == "Ada Lovelace"


def test_save_needs_a_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="type your name"):
        AnswerBook("  ").save(tmp_path)
    assert learner_slug("Zoë O'Neil") == "zo-o-neil"


def test_add_run_needs_a_lab_and_plain_data() -> None:
    with pytest.raises(ValueError, match="needs a lab"):
        AnswerBook("a").add_run("x", {"n": 1})
    with pytest.raises(ValueError, match="plain data"):
        AnswerBook("a", lab="lab05").add_run("x", {"frame": object()})
    import numpy as np

    book = AnswerBook("a", lab="lab05")
    book.add_run("x", {"n": np.int64(3), "t": np.float64(1.5), "xs": (1, 2)})
    assert book.runs["lab05"]["x"]["summary"] == {"n": 3, "t": 1.5, "xs": [1, 2]}


def _class_folder(tmp_path: Path) -> Path:
    ada = AnswerBook("Ada")
    ada.check("lab03.q1", "131072", **LAB03)
    ada.check("lab03.q2", "101", **LAB03)
    ada.save(tmp_path)
    bob = AnswerBook("Bob")
    bob.check("lab03.q1", "524288", **LAB03)  # the naive formula: wrong
    bob.check("lab03.q2", "50", **LAB03)  # his neighbour's H100 figure: wrong
    path = bob.save(tmp_path)
    # Bob edits his file to claim both passed.
    data = json.loads(path.read_text())
    for entry in data["answers"].values():
        entry["ok"], entry["status"] = True, "correct"
    path.write_text(json.dumps(data))
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "notes.txt").write_text("ignored: not *.json")
    return tmp_path


def test_grade_rechecks_and_ignores_a_tampered_verdict(tmp_path: Path) -> None:
    table = grade(_class_folder(tmp_path))
    assert list(table["learner"]) == ["Ada", "Bob", "broken"]
    ada, bob, broken = (table.iloc[i] for i in range(3))
    assert (ada["passed"], ada["answered"], ada["tampered"]) == (2, 2, 0)
    assert (ada["lab03.q1"], ada["lab03.q2"]) == ("pass", "pass")
    assert (bob["passed"], bob["tampered"]) == (0, 2)
    assert (bob["lab03.q1"], bob["lab03.q2"]) == ("fail", "fail")
    assert broken["passed"] == 0 and "not valid JSON" in broken["error"]


def test_grade_answers_long_table(tmp_path: Path) -> None:
    long = grade_answers(_class_folder(tmp_path))
    bob = long[long["learner"] == "Bob"].set_index("exercise")
    assert bob.loc["lab03.q1", "expected"] == 131072.0
    assert bool(bob.loc["lab03.q1", "stored_ok"]) and bool(bob.loc["lab03.q1", "tampered"])
    assert set(long["status"]) == {"pass", "fail", "unreadable"}


def test_grade_unknown_exercise_and_broken_context(tmp_path: Path) -> None:
    book = AnswerBook("Cy")
    book.check("lab03.q1", "131072", **LLAMA_8B)
    book.check("lab03.q2", "101", **H200_8B)
    data = book.to_dict()
    data["answers"]["lab42.q1"] = {**data["answers"]["lab03.q1"], "lab": "lab42"}
    data["answers"]["lab03.q2"]["context"]["gpu"] = "no-such-gpu"
    (tmp_path / "cy.json").write_text(json.dumps(data))
    long = grade_answers(tmp_path).set_index("exercise")
    assert long.loc["lab42.q1", "status"] == "unknown"
    assert long.loc["lab03.q2", "status"] == "invalid"
    assert "cannot re-check" in long.loc["lab03.q2", "message"]
    assert long.loc["lab03.q1", "status"] == "pass"


def test_grade_an_empty_folder_says_so(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no answer files \(\*\.json\)"):
        grade(tmp_path)
    with pytest.raises(ValueError, match="is not a folder"):
        grade(tmp_path / "missing")


# --- the CLI ----------------------------------------------------------------------------------


def test_cli_grade_table_and_csv(tmp_path: Path) -> None:
    folder = _class_folder(tmp_path / "answers")
    out = tmp_path / "grades.csv"
    result = CliRunner().invoke(app, ["grade", str(folder), "--csv", str(out)])
    assert result.exit_code == 1, result.output  # broken.json is unreadable
    assert "Ada" in result.output and "Bob" in result.output and "2/2" in result.output
    assert "tampered" in result.output
    csv = pd.read_csv(out)
    assert list(csv["learner"]) == ["Ada", "Bob", "broken"]
    assert list(csv["score"]) == [2, 0, 0]


def test_cli_grade_details(tmp_path: Path) -> None:
    folder = _class_folder(tmp_path / "answers")
    result = CliRunner().invoke(app, ["grade", str(folder), "--details"])
    assert result.exit_code == 1, result.output  # broken.json is unreadable
    assert "524288" in result.output and "131072" in result.output


def test_cli_grade_empty_folder_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["grade", str(tmp_path)])
    assert result.exit_code == 2
    assert "no answer files" in result.output


def test_grade_one_lab(tmp_path: Path) -> None:
    book = AnswerBook("Ada")
    book.check("lab03.q1", "131072", **LAB03)
    book.check("lab06.q1", "0.05", gpu_hourly_usd=2.5, num_gpus=8, concurrent_users=400)
    book.save(tmp_path)
    assert [c for c in grade(tmp_path).columns if "." in c] == ["lab03.q1", "lab06.q1"]
    only = grade(tmp_path, lab=6)
    assert [c for c in only.columns if "." in c] == ["lab06.q1"]
    assert int(only.loc[0, "passed"]) == 1
    assert list(grade_answers(tmp_path, lab="lab03")["exercise"]) == ["lab03.q1"]
    with pytest.raises(ValueError, match="lab must look like"):
        grade(tmp_path, lab="three")
    result = CliRunner().invoke(app, ["grade", str(tmp_path), "--lab", "lab06"])
    assert result.exit_code == 0 and "lab06.q1" in result.output and "lab03.q1" not in result.output
    assert "1/4" in result.output  # scored out of lab 6's four exercises, not the one answered


# --- the marimo glue every lab uses (infphys.exercises.ui) ------------------------------------


def test_exercise_form_has_one_widget_per_exercise_in_id_order() -> None:
    pytest.importorskip("marimo")
    from infphys.exercises import ui

    form = ui.exercise_form("lab03", {"model": "llama-3.1-8b"})
    # Lab 3 has four exercises; the last is a choice (None until chosen), the others numbers.
    assert form.value == {"q1": "", "q2": "", "q3": "", "q4": None}
    with pytest.raises(ValueError, match="lab98"):
        ui.exercise_form("lab98", {})


def test_check_answers_records_what_counts_and_keys_by_question() -> None:
    pytest.importorskip("marimo")
    from infphys.exercises import ui

    book = AnswerBook("Ada", lab="lab03")
    # Llama-3.1-8B, BF16: 2 × 32 layers × 8 KV heads × 128 × 2 bytes = 131,072 B per token.
    ctx = {"model": "llama-3.1-8b"}
    verdicts = ui.check_answers(book, {"q1": "131072", "q3": "not a number"}, ctx)
    assert list(verdicts) == ["q1", "q2", "q3", "q4"]
    assert verdicts["q1"].ok
    assert [verdicts[k].status for k in ("q2", "q3", "q4")] == ["missing", "invalid", "missing"]
    assert list(book.answers) == ["lab03.q1"]  # only a checked number or choice is recorded
    with pytest.raises(ValueError, match=r"book\.lab"):
        ui.check_answers(AnswerBook("Ada"), {}, ctx)


def test_per_question_contexts_show_and_check_each_question_with_its_own() -> None:
    pytest.importorskip("marimo")
    from infphys.exercises import ui

    # Lab 06: q1 is about a fleet of 8 GPUs at $2.50 serving 400 users: 8 × 2.50 / 400 = $0.05
    # per user-hour. q2 and q3 are about one GPU at 20 users: 2.50 / 20 = $0.125 per user-hour,
    # × 730 h = $91.25 per user-month. q4 is the TCO question, left unanswered.
    fleet = {"gpu_hourly_usd": 2.5, "num_gpus": 8, "concurrent_users": 400}
    one_gpu = {
        "gpu_hourly_usd": 2.5,
        "num_gpus": 1,
        "concurrent_users": 20,
        "output_tokens_per_s": 1000.0,
    }
    tco = {
        "gpu_hourly_usd": 2.5,
        "average_input_tokens_per_s": 20_000.0,
        "average_output_tokens_per_s": 2_000.0,
        "peak_to_average": 3.0,
        "input_tokens_per_s": 40_000.0,
        "output_tokens_per_s": 2_500.0,
    }
    contexts = {"q1": fleet, "q2": one_gpu, "q3": one_gpu, "q4": tco}
    form = ui.exercise_form("lab06", contexts=contexts)
    assert form.value == {"q1": "", "q2": "", "q3": "", "q4": ""}
    book = AnswerBook("Ada", lab="lab06")
    verdicts = ui.check_answers(book, {"q1": "0.05", "q3": "91.25"}, contexts=contexts)
    assert verdicts["q1"].ok and verdicts["q3"].ok
    assert verdicts["q4"].status == "missing"
    # Each answer is stored with the context it was checked against.
    assert book.answers["lab06.q1"]["context"]["num_gpus"] == 8
    assert book.answers["lab06.q3"]["context"]["num_gpus"] == 1
    # The fleet's $0.05 is not the single GPU's user-month.
    assert not ui.check_answers(book, {"q3": "0.05"}, contexts=contexts)["q3"].ok


def test_contexts_must_cover_every_question_and_not_come_with_a_context() -> None:
    pytest.importorskip("marimo")
    from infphys.exercises import ui

    fleet = {"gpu_hourly_usd": 2.5, "num_gpus": 8, "concurrent_users": 400}
    with pytest.raises(ValueError, match="contexts has no context for q2, q3, q4"):
        ui.exercise_form("lab06", contexts={"q1": fleet})
    with pytest.raises(ValueError, match="either context"):
        ui.check_answers(AnswerBook("Ada", lab="lab06"), {}, fleet, contexts={"q1": fleet})
    with pytest.raises(ValueError, match="either context"):
        ui.exercise_form("lab06")


def test_watch_view_says_how_the_gpu_was_sampled_or_why_not() -> None:
    pytest.importorskip("marimo")
    from types import SimpleNamespace

    from infphys.exercises import ui

    # A watcher sampling every 0.05 s: 0.05 × 1,000 = 50 ms.
    sampled = ui.watch_view(SimpleNamespace(reason=None, interval_s=0.05), "the copy", "figure")
    assert "during the copy" in sampled.text and "sampled every 50 ms" in sampled.text
    none = ui.watch_view(SimpleNamespace(reason="no NVIDIA GPU", interval_s=0.05), "x", "figure")
    assert "no NVIDIA GPU" in none.text and "sampled every" not in none.text


def test_offline_note_only_outside_the_labs_server() -> None:
    pytest.importorskip("marimo")
    from infphys.exercises import ui

    assert "cdn.jsdelivr.net" in ui.offline_note({}).text
    assert "cdn" not in ui.offline_note({"INFPHYS_LABS_SERVER": "1"}).text


def test_lab09_grid_context_reads_the_corners_in_ms() -> None:
    from infphys.exercises.lab09 import grid_context
    from infphys.records import RequestRecord

    # A 2 × 2 grid, one request a cell, sent at 0 s: (prompt, max_tokens, TTFT s, e2e s). By
    # hand: TTFT (64, 8) 0.0123456 s → 12.346 ms; (2,048, 8) 0.075 s → 75.0 ms; e2e (64, 8)
    # 0.06 s → 60.0 ms; (64, 32) 0.2136 s → 213.6 ms; the (2,048, 32) cell: TTFT 76.2 ms, and
    # 31 tokens after the first in 275 − 76.2 = 198.8 ms, a TPOT of 6.41290 ms → 6.4129.
    cells = [(2048, 32, 0.0762, 0.275), (64, 8, 0.0123456, 0.06), (2048, 8, 0.075, 0.12),
             (64, 32, 0.0131, 0.2136)]  # fmt: skip
    records = [
        RequestRecord(
            i, 0.0, first_token_s=ttft, end_s=e2e, completion_tokens=n,
            labels={"level": i, "prompt_tokens_asked": p, "max_tokens": n},
        )
        for i, (p, n, ttft, e2e) in enumerate(cells)
    ]  # fmt: skip
    assert grid_context(records) == {
        "prompt_tokens_small": 64,
        "ttft_small_ms": 12.346,
        "prompt_tokens_large": 2048,
        "ttft_large_ms": 75.0,
        "max_tokens_small": 8,
        "e2e_small_ms": 60.0,
        "max_tokens_large": 32,
        "e2e_large_ms": 213.6,
        "prompt_tokens": 2048,
        "max_tokens": 32,
        "ttft_ms": 76.2,
        "tpot_ms": 6.4129,
    }
    with pytest.raises(KeyError):
        grid_context(records[1:])  # no request in the (2,048, 32) corner
