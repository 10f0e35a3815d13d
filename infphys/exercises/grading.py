"""Grading a folder of answer files: re-checked answers, scores out of what was assigned, flags.

Nothing a file claims is trusted. Every stored answer is re-checked against its stored context
with the exercises of the installed infphys (an edited verdict counts for nothing), and the
context itself is compared with what the lab stores (:mod:`infphys.exercises.contexts`: an edited
context is caught too).

- :func:`grade_answers`: one row per stored answer (the instructor's detail view).
- :func:`grade`: one row per file, one column per exercise seen.
- :class:`Assignment` and :func:`grade_class`: what ``infphys grade`` prints. Every file in the
  folder is a row (a learner who saved without answering too), scored out of the *assigned*
  exercises, with one column per assigned exercise and flags for what an instructor must look
  at: an unreadable file, a tampered verdict or context, and copies (byte-identical files, or
  answers sharing a wall-clock measurement or a timestamp with another learner's).

Worked example::

    >>> import tempfile
    >>> from infphys.exercises import AnswerBook
    >>> tmp = tempfile.TemporaryDirectory()
    >>> ada = AnswerBook("Ada")
    >>> ada.check("lab06.q1", "0.05", gpu_hourly_usd=2.5, num_gpus=8, concurrent_users=400).ok
    True
    >>> _ = ada.save(tmp.name)
    >>> result = grade_class(tmp.name, Assignment.build(exercises=["lab06.q1", "lab06.q2"]))
    >>> row = result.table.iloc[0]
    >>> row["learner"], int(row["score"]), int(row["out_of"]), row["lab06.q2"], result.exit_code
    ('Ada', 1, 2, 'missing', 0)
    >>> tmp.cleanup()
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from infphys.exercises.book import AnswerBook
from infphys.exercises.contexts import context_problems, measured_keys
from infphys.exercises.core import EXERCISES, exercises_for, get_exercise

__all__ = [
    "EXIT_COPIED",
    "EXIT_OK",
    "EXIT_TAMPERED",
    "EXIT_UNREADABLE",
    "Assignment",
    "ClassGrades",
    "grade",
    "grade_answers",
    "grade_class",
]

#: ``infphys grade`` exit statuses (2 is a usage error: bad folder, option or assignment file).
EXIT_OK = 0
EXIT_UNREADABLE = 1
EXIT_TAMPERED = 3
EXIT_COPIED = 4


@dataclass
class _Submission:
    path: Path
    sha256: str = ""
    book: AnswerBook | None = None
    error: str = ""


def _read_folder(directory: str | os.PathLike[str]) -> list[_Submission]:
    folder = Path(directory)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    files = sorted(p for p in folder.glob("*.json") if p.is_file())
    if not files:
        raise ValueError(f"no answer files (*.json) in {folder}")
    out = []
    for path in files:
        sub = _Submission(path)
        try:
            raw = path.read_bytes()
            sub.sha256 = hashlib.sha256(raw).hexdigest()
            sub.book = AnswerBook.from_dict(json.loads(raw.decode("utf-8")))
        except json.JSONDecodeError as exc:
            sub.error = f"{path.name} is not valid JSON ({exc.msg}, line {exc.lineno})"
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            sub.error = str(exc) if not isinstance(exc, OSError) else f"cannot read: {exc}"
        out.append(sub)
    return out


def _lab_key(lab: str | int | None) -> str | None:
    if lab is None:
        return None
    text = str(lab).strip().lower().removeprefix("lab")
    if not text.isdigit():
        raise ValueError(f"lab must look like 'lab03' or 3 (got {lab!r})")
    return f"lab{int(text):02d}"


def _recheck(ex_id: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    """Status, expected value, message and context problems of one stored answer."""
    ex = EXERCISES.get(ex_id)
    context = entry.get("context")
    if ex is None:
        return {"status": "unknown", "message": f"no exercise {ex_id!r} in this infphys"}
    if not isinstance(context, Mapping):
        return {"status": "invalid", "message": "the stored context is not a JSON object"}
    problems = context_problems(ex_id, context)
    try:
        verdict = ex.check(entry.get("answer"), **context)
        expected = ex.expected(**context)
    except Exception as exc:  # a hand-edited context can break any solution
        return {"status": "invalid", "message": f"cannot re-check: {exc}", "context": problems}
    status = "pass" if verdict.ok else "fail" if verdict.status == "wrong" else "invalid"
    return {"status": status, "expected": expected, "message": verdict.message, "context": problems}


def grade_answers(
    directory: str | os.PathLike[str], *, lab: str | int | None = None
) -> pd.DataFrame:
    """One row per stored answer in a folder of answer files, re-checked now.

    Columns: ``file``, ``learner``, ``exercise``, ``lab``, ``answer``, ``expected`` (for
    instructors), ``status`` (``pass``, ``fail``, ``invalid``, ``unknown`` exercise, or
    ``unreadable`` file), ``stored_ok`` (what the file claims), ``tampered`` (the file claims
    a pass that the re-check does not give), ``context_problems`` (how the stored context
    differs from what the lab stores; empty when it matches), ``message`` and ``attempts``. A
    file that cannot be read gives one ``unreadable`` row naming the reason. ``lab`` keeps one
    lab's answers.
    """
    only = _lab_key(lab)
    rows: list[dict[str, Any]] = []
    for sub in _read_folder(directory):
        base = {"file": sub.path.name, "learner": sub.path.stem}
        if sub.book is None:
            rows.append({**base, "status": "unreadable", "message": sub.error})
            continue
        base["learner"] = sub.book.learner or sub.path.stem
        for ex_id, entry in sorted(sub.book.answers.items()):
            if only is not None and ex_id.split(".", 1)[0] != only:
                continue
            found = _recheck(ex_id, entry)
            row: dict[str, Any] = {
                **base,
                "exercise": ex_id,
                "lab": ex_id.split(".", 1)[0],
                "answer": entry.get("answer"),
                "stored_ok": bool(entry.get("ok", False)),
                "attempts": entry.get("attempts"),
                **found,
                "context_problems": "; ".join(found.get("context", [])),
            }
            row["tampered"] = bool(row["stored_ok"] and row["status"] != "pass")
            rows.append(row)
    columns = [
        "file", "learner", "exercise", "lab", "answer", "expected", "status",
        "stored_ok", "tampered", "context_problems", "message", "attempts",
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def grade(directory: str | os.PathLike[str], *, lab: str | int | None = None) -> pd.DataFrame:
    """Who passed what: one row per answer file, one column per exercise seen in the folder.

    Columns: ``learner``, ``file``, ``passed`` (exercises that pass on re-check), ``answered``,
    ``tampered`` (stored passes the re-check rejects), ``error`` (why a file is unreadable),
    then one column per exercise id holding ``pass``, ``fail``, ``invalid``, ``unknown`` or
    empty (not answered). A file saved with no answers is a row with 0 answered. For scores out
    of an assignment, flags and copies, use :func:`grade_class`.
    """
    long = grade_answers(directory, lab=lab)
    answered = long[long["exercise"].notna()]
    ids = sorted(answered["exercise"].unique(), key=_exercise_sort_key)
    rows = []
    for sub in _read_folder(directory):
        group = long[long["file"] == sub.path.name]
        row: dict[str, Any] = {
            "learner": (sub.book.learner if sub.book else "") or sub.path.stem,
            "file": sub.path.name,
            "passed": int((group["status"] == "pass").sum()),
            "answered": int(group["exercise"].notna().sum()),
            "tampered": int(group["tampered"].fillna(False).astype(bool).sum()),
            "error": sub.error,
        }
        for ex_id in ids:
            hit = group[group["exercise"] == ex_id]
            row[ex_id] = str(hit["status"].iloc[0]) if len(hit) else ""
        rows.append(row)
    columns = ["learner", "file", "passed", "answered", "tampered", "error", *ids]
    return pd.DataFrame(rows, columns=columns).reset_index(drop=True)


def _exercise_sort_key(ex_id: str) -> tuple[str, int]:
    lab, _, q = ex_id.partition(".q")
    return lab, int(q) if q.isdigit() else 0


# --- assignments and the class table ---------------------------------------------------------


@dataclass(frozen=True)
class Assignment:
    """The exercises a class was asked to do, in order; scores are out of these.

    An assignment file is TOML or JSON with an optional ``name`` and ``labs`` (every exercise of
    each lab) and/or ``exercises`` (ids)::

        name = "Day 3, 60-minute plan"
        labs = ["lab08"]
        exercises = ["lab03.q1", "lab03.q2"]

    >>> Assignment.build(labs=["lab03"], exercises=["lab01.q1"]).exercises
    ('lab01.q1', 'lab03.q1', 'lab03.q2', 'lab03.q3', 'lab03.q4')
    """

    exercises: tuple[str, ...]
    name: str = ""

    @classmethod
    def build(
        cls,
        *,
        labs: Iterable[str | int] = (),
        exercises: Iterable[str] = (),
        name: str = "",
    ) -> Assignment:
        """From lab keys (``lab03`` or ``3``) and exercise ids; an unknown one is a ValueError."""
        ids: set[str] = set()
        for lab in labs:
            key = _lab_key(lab)
            found = exercises_for(key or "")
            if not found:
                raise ValueError(f"assignment: no exercises for lab {lab!r}")
            ids.update(e.id for e in found)
        for ex_id in exercises:
            ids.add(get_exercise(str(ex_id).strip()).id)
        if not ids:
            raise ValueError("assignment: name at least one lab or exercise")
        return cls(tuple(sorted(ids, key=_exercise_sort_key)), name)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Assignment:
        """Read an assignment file (``.toml`` or ``.json``)."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
            data: Any = json.loads(text) if p.suffix == ".json" else tomllib.loads(text)
        except (OSError, ValueError) as exc:  # JSONDecodeError and TOMLDecodeError are both
            raise ValueError(f"assignment file {p}: {exc}") from None
        if not isinstance(data, Mapping) or set(data) - {"name", "labs", "exercises"}:
            raise ValueError(f"assignment file {p}: only name, labs and exercises are allowed")
        labs, exercises = data.get("labs", []), data.get("exercises", [])
        if not isinstance(labs, list) or not isinstance(exercises, list):
            raise ValueError(f"assignment file {p}: labs and exercises must be lists")
        return cls.build(labs=labs, exercises=exercises, name=str(data.get("name") or p.stem))


@dataclass
class ClassGrades:
    """What :func:`grade_class` found.

    Attributes:
        assignment: the exercises scored.
        table: one row per file: ``learner``, ``file``, ``score`` (assigned exercises that pass
            on re-check), ``out_of`` (assigned), ``percent``, one column per assigned exercise
            (``pass``, ``fail``, ``invalid``, ``unknown`` or ``missing``), and ``flags``.
        unreadable, tampered, copied: the files with each kind of flag.
    """

    assignment: Assignment
    table: pd.DataFrame
    unreadable: list[str] = field(default_factory=list)
    tampered: list[str] = field(default_factory=list)
    copied: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """1: a file is unreadable, else 3: one is tampered, else 4: one is a copy, else 0."""
        if self.unreadable:
            return EXIT_UNREADABLE
        if self.tampered:
            return EXIT_TAMPERED
        if self.copied:
            return EXIT_COPIED
        return EXIT_OK


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _copy_evidence(a: AnswerBook, b: AnswerBook) -> list[str]:
    """Exercises ``a`` and ``b`` answered alike in a way no two learners do independently.

    Alike: the same answer with the same stored context. That alone proves nothing (two learners
    who kept a calculator lab's default settings and got it right agree), so it counts when the
    context holds a wall-clock measurement (nobody else measures the same milliseconds), or when
    at least two such answers also carry the same timestamp to the second (one shared second is
    a coincidence in a busy room; two are a copied file). Empty when there is no evidence.
    """
    measured, stamped = [], []
    for ex_id, entry in a.answers.items():
        other = b.answers.get(ex_id)
        if other is None:
            continue
        if _canonical(entry.get("answer")) != _canonical(other.get("answer")) or _canonical(
            entry.get("context")
        ) != _canonical(other.get("context")):
            continue
        context = entry.get("context")
        if isinstance(context, Mapping) and measured_keys(ex_id) & set(context):
            measured.append(ex_id)
        elif entry.get("answered_utc") and entry.get("answered_utc") == other.get("answered_utc"):
            stamped.append(ex_id)
    shared = measured + (stamped if len(stamped) >= 2 else [])
    return sorted(shared, key=_exercise_sort_key)


def grade_class(
    directory: str | os.PathLike[str], assignment: Assignment | None = None
) -> ClassGrades:
    """Grade every answer file in ``directory`` against ``assignment``; see :class:`ClassGrades`.

    Without an assignment every exercise that anyone in the folder answered is assigned.
    Stored verdicts are ignored (every answer is re-checked); a stored pass the re-check
    rejects, and a context that differs from what the lab stores, flag the file as tampered.
    Only assigned exercises count towards the score, but every stored answer is checked for
    tampering and copying.

    Raises:
        ValueError: the folder is missing or holds no ``*.json`` file.
    """
    subs = _read_folder(directory)
    if assignment is None:
        seen = {k for s in subs if s.book for k in s.book.answers if k in EXERCISES}
        if not seen:
            seen = {e.id for e in EXERCISES.values() if e.lab == "lab01"}
        assignment = Assignment(tuple(sorted(seen, key=_exercise_sort_key)), "answered")
    flags: dict[str, list[str]] = {s.path.name: [] for s in subs}
    result = ClassGrades(assignment=assignment, table=pd.DataFrame())
    rows = []
    for sub in subs:
        name = sub.path.name
        row: dict[str, Any] = {"learner": sub.path.stem, "file": name, "score": 0}
        if sub.book is None:
            flags[name].append(f"unreadable: {sub.error}")
            result.unreadable.append(name)
            row.update(dict.fromkeys(assignment.exercises, ""))
            rows.append(row)
            continue
        row["learner"] = sub.book.learner or sub.path.stem
        if not sub.book.answers:
            flags[name].append("saved no answers")
        verdict_edits, context_edits = [], []
        for ex_id, entry in sorted(sub.book.answers.items()):
            found = _recheck(ex_id, entry)
            if entry.get("ok") and found["status"] != "pass":
                verdict_edits.append(ex_id)
            if found.get("context"):
                context_edits.append(f"{ex_id}: {found['context'][0]}")
            if ex_id in assignment.exercises:
                row[ex_id] = found["status"]
                row["score"] += found["status"] == "pass"
        for ex_id in assignment.exercises:
            row.setdefault(ex_id, "missing")
        if verdict_edits:
            flags[name].append(f"tampered verdict: {', '.join(verdict_edits)} fail on re-check")
        if context_edits:
            flags[name].append("context not from the lab: " + "; ".join(context_edits))
        if verdict_edits or context_edits:
            result.tampered.append(name)
        rows.append(row)
    _flag_copies(subs, flags, result)
    for row in rows:
        row["out_of"] = len(assignment.exercises)
        row["percent"] = round(100 * row["score"] / row["out_of"], 1)
        row["flags"] = "; ".join(flags[row["file"]])
    columns = ["learner", "file", "score", "out_of", "percent", *assignment.exercises, "flags"]
    result.table = pd.DataFrame(rows, columns=columns)
    return result


def _flag_copies(
    subs: Sequence[_Submission], flags: dict[str, list[str]], result: ClassGrades
) -> None:
    copied: set[str] = set()
    for i, a in enumerate(subs):
        for b in subs[i + 1 :]:
            if a.book is None or b.book is None:
                continue
            pair = (a.path.name, b.path.name)
            if a.sha256 == b.sha256:
                flags[pair[0]].append(f"byte-identical to {pair[1]}")
                flags[pair[1]].append(f"byte-identical to {pair[0]}")
                copied.update(pair)
                continue
            shared = _copy_evidence(a.book, b.book)
            if shared:
                what = f"same answers and measured context as {{}} ({', '.join(shared)})"
                flags[pair[0]].append(what.format(pair[1]))
                flags[pair[1]].append(what.format(pair[0]))
                copied.update(pair)
    result.copied = sorted(copied)
