"""``infphys grade`` an instructor can trust: a class folder with one crafted file per case.

Right answers are worked by hand in the comments:

- lab01.q1, TPOT = (e2e − TTFT) / (tokens − 1) = (1.0400 − 0.0400) s / 100 = 10 ms; lab01.q2,
  the stream rate = 1 / 10 ms = 100 tokens/s.
- lab03.q1, Llama-3.1-8B's KV bytes per token in BF16 = 2 × 32 layers × 8 KV heads × 128 × 2 B
  = 131,072; lab03.q2, users of 8,192 tokens on one H200 = 101 (docs/instructors.md).
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from infphys.cli import app
from infphys.exercises import ANSWERS_FILE_MODE, AnswerBook, Assignment, grade_class
from infphys.exercises.contexts import SPECS, context_problems
from infphys.exercises.core import exercises_for

REPO = Path(__file__).resolve().parents[1]
LAB01 = {"ttft_s": 0.04, "e2e_s": 1.04, "completion_tokens": 101}
LAB03 = {
    "model": "llama-3.1-8b",
    "model_name": "Llama-3.1-8B",
    "gpu": "h200",
    "gpu_name": "H200 SXM",
    "context_tokens": 8192,
    "kv_precision": "bf16",
    "weights_precision": "bf16",
}
ASSIGNED = ["lab01.q1", "lab01.q2", "lab03.q1", "lab03.q2"]


def _save(book: AnswerBook, folder: Path, stamp: str) -> Path:
    """Save with every timestamp set to ``stamp`` (two honest learners differ in theirs)."""
    for entry in book.answers.values():
        entry["answered_utc"] = stamp
    book.created_utc = book.updated_utc = stamp
    return book.save(folder)


def _edit(path: Path, change: Any) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2))


def _ada(folder: Path, name: str = "Ada", stamp: str = "2026-11-20T09:00:00+00:00") -> Path:
    book = AnswerBook(name)
    assert book.check("lab01.q1", "10", **LAB01).ok
    assert not book.check("lab01.q2", "90", **LAB01).ok  # 100 is right
    assert book.check("lab03.q1", "131072", **LAB03).ok
    return _save(book, folder, stamp)


def _honest_twin(folder: Path) -> Path:
    """Cy kept Lab 3's defaults and got q1 right too, at another time: the same answer is no
    copy. She measured her own Lab 1 and answered it right (0.0500 → 1.0500 s: 10 ms)."""
    book = AnswerBook("Cy")
    book.check("lab01.q1", "10", ttft_s=0.05, e2e_s=1.05, completion_tokens=101)
    book.check("lab03.q1", "131072", **LAB03)
    book.check("lab03.q2", "101", **LAB03)
    return _save(book, folder, "2026-11-20T09:07:31+00:00")


def _class(tmp_path: Path) -> Path:
    folder = tmp_path / "answers"
    ada = _ada(folder)
    _honest_twin(folder)
    AnswerBook("Dan").save(folder)  # saved without answering anything
    # Eve copied Ada's file and put her own name in it (Lab 1's measurement gives her away).
    eve = folder / "eve.json"
    shutil.copyfile(ada, eve)
    _edit(eve, lambda d: d.update(learner="Eve"))
    # Fay answered Lab 3 for a 70B model, then set the model back to pass: the name stayed.
    fay = AnswerBook("Fay")
    fay.check("lab03.q1", "131072", **LAB03)
    fay_path = _save(fay, folder, "2026-11-20T09:12:00+00:00")
    _edit(fay_path, lambda d: d["answers"]["lab03.q1"]["context"].update(model_name="Llama-70B"))
    # Gus turned his wrong answer into a pass by hand.
    gus = AnswerBook("Gus")
    gus.check("lab03.q1", "524288", **LAB03)  # the naive 2 × layers × hidden × bytes
    gus_path = _save(gus, folder, "2026-11-20T09:15:00+00:00")
    _edit(gus_path, lambda d: d["answers"]["lab03.q1"].update(ok=True, status="correct"))
    (folder / "zed.json").write_text("{oops")
    return folder


def test_every_case_in_one_class_folder(tmp_path: Path) -> None:
    result = grade_class(_class(tmp_path), Assignment.build(exercises=ASSIGNED))
    t = result.table.set_index("file")
    assert list(t["learner"]) == ["Ada", "Cy", "Dan", "Eve", "Fay", "Gus", "zed"]
    assert (t["out_of"] == 4).all()  # out of the assignment, not of what each answered
    ada = t.loc["ada.json", ["score", *ASSIGNED]].tolist()
    assert ada == [2, "pass", "fail", "pass", "missing"]
    assert t.loc["ada.json", "percent"] == 50.0
    assert t.loc["cy.json", "score"] == 3 and t.loc["cy.json", "flags"] == ""
    assert t.loc["dan.json", "score"] == 0 and "saved no answers" in t.loc["dan.json", "flags"]
    assert (t.loc["dan.json", ASSIGNED] == "missing").all()
    assert "same answers and measured context as eve.json (lab01.q1" in t.loc["ada.json", "flags"]
    assert "as ada.json" in t.loc["eve.json", "flags"]
    assert "context not from the lab: lab03.q1: model_name" in t.loc["fay.json", "flags"]
    assert "tampered verdict: lab03.q1" in t.loc["gus.json", "flags"]
    assert t.loc["gus.json", "lab03.q1"] == "fail"
    assert "unreadable" in t.loc["zed.json", "flags"]
    assert result.unreadable == ["zed.json"]
    assert result.tampered == ["fay.json", "gus.json"]
    assert result.copied == ["ada.json", "eve.json"]
    assert result.exit_code == 1


@pytest.mark.parametrize(
    ("case", "code"),
    [("clean", 0), ("identical", 4), ("copied", 4), ("verdict", 3), ("context", 3),
     ("unreadable", 1)],
)  # fmt: skip
def test_exit_status_per_case(case: str, code: int, tmp_path: Path) -> None:
    folder = tmp_path / "answers"
    ada = _ada(folder)
    _honest_twin(folder)
    if case == "identical":
        shutil.copyfile(ada, folder / "ada-again.json")
    elif case == "copied":
        shutil.copyfile(ada, folder / "eve.json")
        _edit(folder / "eve.json", lambda d: d.update(learner="Eve"))
    elif case == "verdict":
        _edit(ada, lambda d: d["answers"]["lab01.q2"].update(ok=True))
    elif case == "context":  # the stored TTFT changed so that another answer would pass
        _edit(ada, lambda d: d["answers"]["lab01.q1"]["context"].update(ttft_s=0.04001))
    elif case == "unreadable":
        (folder / "x.json").write_text(json.dumps({"schema": "something else"}))
    result = CliRunner().invoke(app, ["grade", str(folder), *(f"--exercise={e}" for e in ASSIGNED)])
    assert result.exit_code == code, result.output
    assert grade_class(folder).exit_code == code


def test_copies_by_timestamp_need_two_answers(tmp_path: Path) -> None:
    folder = tmp_path / "answers"
    stamp = "2026-11-20T09:00:00+00:00"
    for name in ("Ann", "Ben"):  # both kept the defaults and checked q1 in the same second
        book = AnswerBook(name)
        book.check("lab03.q1", "131072", **LAB03)
        _save(book, folder, stamp)
    assert grade_class(folder).copied == []
    for name in ("Ann", "Ben"):  # ... and q2 in the same second as well: a copied file
        book = AnswerBook.load(folder / f"{name.lower()}.json")
        book.check("lab03.q2", "101", **LAB03)
        _save(book, folder, stamp)
    assert grade_class(folder).copied == ["ann.json", "ben.json"]


def test_assignment_file_csv_and_help(tmp_path: Path) -> None:
    folder = _class(tmp_path)
    (folder / "zed.json").unlink()
    toml = tmp_path / "day3.toml"
    toml.write_text('name = "Day 3"\nlabs = ["lab01"]\nexercises = ["lab03.q1"]\n')
    out = tmp_path / "lms" / "grades.csv"
    args = ["grade", str(folder), "--assignment", str(toml), "--csv", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 3, result.output  # Fay and Gus tampered; no unreadable file now
    csv = pd.read_csv(out, keep_default_na=False)
    assert list(csv.columns) == [
        "learner", "file", "score", "out_of", "percent", "lab01.q1", "lab01.q2", "lab01.q3",
        "lab03.q1", "flags",
    ]  # fmt: skip
    ada = csv[csv["learner"] == "Ada"].iloc[0]
    assert (ada["score"], ada["out_of"], ada["lab01.q3"]) == (2, 4, "missing")
    assert "Day 3" in result.output
    helped = CliRunner().invoke(app, ["grade", "--help"], env={"COLUMNS": "100"})
    assert "Exit status" in helped.output and "tampered" in helped.output


def test_bad_assignments_exit_2(tmp_path: Path) -> None:
    folder = tmp_path / "answers"
    _ada(folder)
    bad = CliRunner().invoke(app, ["grade", str(folder), "--exercise", "lab03.q9"])
    assert bad.exit_code == 2 and "lab03.q9" in bad.output
    (tmp_path / "a.json").write_text('{"exercises": ["lab01.q1"], "due": "friday"}')
    extra = CliRunner().invoke(
        app, ["grade", str(folder), "--assignment", str(tmp_path / "a.json")]
    )
    assert extra.exit_code == 2 and "only name, labs and exercises" in extra.output


def test_answer_files_are_readable_by_the_instructor(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        path = _ada(tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == ANSWERS_FILE_MODE == 0o644


def test_context_problems_find_each_kind_of_edit() -> None:
    assert context_problems("lab03.q2", LAB03) == []
    no_gpu_name = {k: v for k, v in LAB03.items() if k != "gpu_name"}
    assert "missing gpu_name" in context_problems("lab03.q2", no_gpu_name)[0]
    assert "not from the lab: hint" in context_problems("lab03.q2", {**LAB03, "hint": 1})[0]
    assert "negative" in context_problems("lab03.q2", {**LAB03, "context_tokens": -8192})[0]
    assert "exceeds e2e_s" in context_problems("lab01.q1", {**LAB01, "ttft_s": 2.0})[0]
    # Lab 11's cap follows from its own sweep: p95 0.5, 1.0, 3.0 s against a 2.5 s SLO → 4.
    lab11 = {
        "concurrency": [1, 4, 16], "e2e_p95_s": [0.5, 1.0, 3.0], "slo_p95_s": 2.5,
        "users": 100, "cap_concurrency": 4, "tp": 1, "kv_capacity_tokens": 829232,
        "block_tokens": 16, "prompt_tokens": 512, "max_tokens": 128, "max_num_seqs": 256,
    }  # fmt: skip
    assert context_problems("lab11.q2", lab11) == []
    assert (
        "cap_concurrency is 16" in context_problems("lab11.q2", {**lab11, "cap_concurrency": 16})[0]
    )


#: Contexts a lab gets from one package call: function name → (keys, decimals) its test in
#: tests/test_exercises.py checks it returns (there, against values worked out by hand).
PACKAGE_CONTEXTS: dict[str, tuple[set[str], dict[str, int]]] = {
    "grid_context": (
        {"prompt_tokens_small", "ttft_small_ms", "prompt_tokens_large", "ttft_large_ms",
         "max_tokens_small", "e2e_small_ms", "max_tokens_large", "e2e_large_ms",
         "prompt_tokens", "max_tokens", "ttft_ms", "tpot_ms"},
        {"ttft_small_ms": 3, "ttft_large_ms": 3, "e2e_small_ms": 3, "e2e_large_ms": 3,
         "ttft_ms": 3, "tpot_ms": 4},
    ),
}  # fmt: skip


def _lab_contexts(path: Path) -> dict[str, tuple[set[str], dict[str, int]]]:
    """Each exercise id → (context keys, decimals of round(...)) read from a lab's source."""
    tree = ast.parse(path.read_text())
    dicts: dict[str, tuple[set[str], dict[str, int]]] = {}
    by_question: dict[str, dict[str, ast.expr]] = {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Dict)
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id.endswith("_context")
        ):
            keys, places = set(), {}
            for k, v in zip(node.value.keys, node.value.values, strict=True):
                assert isinstance(k, ast.Constant)
                keys.add(str(k.value))
                if isinstance(v, ast.ListComp):  # [round(float(x), 4) for x in ...]
                    v = v.elt
                if isinstance(v, ast.Call) and getattr(v.func, "id", "") == "round":
                    places[str(k.value)] = int(ast.literal_eval(v.args[1]))
            dicts[node.targets[0].id] = (keys, places)
        elif (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Dict)
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id.endswith("_contexts")
        ):
            # {"q1": calculator_context, ...}: the context each question is checked against.
            questions = {}
            for k, v in zip(node.value.keys, node.value.values, strict=True):
                assert isinstance(k, ast.Constant)
                questions[str(k.value)] = v
            by_question[node.targets[0].id] = questions
        elif (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id.endswith("_context")
        ):
            # exercise_context = ex9.grid_context(frame): built by a package function, whose
            # keys and rounding are checked against the spec where it is tested.
            func = node.value.func
            assert isinstance(func, ast.Attribute), ast.unparse(node)
            assert func.attr in PACKAGE_CONTEXTS, f"{path.name}: {func.attr} is not known here"
            dicts[node.targets[0].id] = PACKAGE_CONTEXTS[func.attr]
    out = {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "check"
            and getattr(node.func.value, "id", "") == "book"
        ):
            ex = node.args[0]
            assert isinstance(ex, ast.Attribute) and isinstance(ex.value, ast.Name)
            module = importlib.import_module(f"infphys.exercises.lab{path.name[:2]}")
            ex_id = getattr(module, ex.attr).id
            (kw,) = [k.value for k in node.keywords if k.arg is None]
            assert isinstance(kw, ast.Name)
            out[ex_id] = dicts[kw.id]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "check_answers"
        ):
            per_question = [k.value for k in node.keywords if k.arg == "contexts"]
            for ex in exercises_for(f"lab{path.name[:2]}"):
                if per_question:
                    # ui.check_answers(book, answers, contexts=by_question): each exercise is
                    # checked against the context dict its question key names.
                    (name,) = per_question
                    assert isinstance(name, ast.Name)
                    ctx = by_question[name.id][ex.id.rsplit(".", 1)[1]]
                else:
                    # ui.check_answers(book, answers, context): every exercise of the lab is
                    # checked against the one context dict, so each stores all of its keys.
                    ctx = node.args[2]
                assert isinstance(ctx, ast.Name)
                out[ex.id] = dicts[ctx.id]
    return out


@pytest.mark.parametrize(
    "lab", sorted((REPO / "labs").glob("[0-9][0-9]_*.py")), ids=lambda p: p.stem
)
def test_context_specs_match_what_the_labs_store(lab: Path) -> None:
    found = _lab_contexts(lab)
    assert found, f"{lab.name}: no book.check(..., **context) or ui.check_answers found"
    for ex_id, (keys, places) in found.items():
        spec = SPECS[ex_id]
        # The context the lab stores holds exactly the keys the spec recomputes the answer
        # from (grading flags any other key as not from the lab), each rounded as it expects.
        assert set(spec.keys) == keys, (ex_id, set(spec.keys) ^ keys)
        assert dict(spec.decimals) == places, ex_id
