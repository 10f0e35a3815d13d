"""A learner's answers in one JSON file, and grading a folder of such files.

Each lab keeps an :class:`AnswerBook` for the learner. Checking an answer through the book
records the answer, the context it was checked against (the learner's settings and
measurements) and the verdict; a lab can add short run summaries (what the learner measured or
simulated). :meth:`AnswerBook.save` merges everything into ONE file per learner,
``<folder>/<learner-slug>.json``, so the labs done one after another end up in the same file.

:mod:`infphys.exercises.grading` reads a folder of those files and re-checks every stored answer
against its stored context with the current exercises: a verdict edited by hand in the file counts
for nothing. Files are written readable by everyone on the machine (mode 0644), so an instructor
collecting them from a shared folder can read them.

File format (``schema`` ``infphys.answers/1``)::

    {"schema": "infphys.answers/1", "learner": "Ada Lovelace", "infphys_version": "0.1.0",
     "created_utc": "2026-11-20T09:00:00+00:00", "updated_utc": "2026-11-20T09:40:12+00:00",
     "answers": {"lab03.q1": {"lab": "lab03", "answer": "131072", "context": {...},
                              "ok": true, "status": "correct", "message": "...",
                              "attempts": 2, "answered_utc": "..."}},
     "runs": {"lab05": {"burst": {"recorded_utc": "...", "summary": {...}}}}}

Worked example::

    >>> import tempfile
    >>> book = AnswerBook("Ada Lovelace")
    >>> book.check("lab03.q1", "131072", model="llama-3.1-8b", kv_precision="bf16").ok
    True
    >>> tmp = tempfile.TemporaryDirectory()
    >>> book.save(tmp.name).name
    'ada-lovelace.json'
    >>> from infphys.exercises.grading import grade
    >>> row = grade(tmp.name).iloc[0]
    >>> row["learner"], int(row["passed"]), row["lab03.q1"]
    ('Ada Lovelace', 1, 'pass')
    >>> tmp.cleanup()
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infphys.exercises.core import Exercise, Verdict, get_exercise

__all__ = [
    "ANSWERS_DIR_ENV",
    "ANSWERS_FILE_MODE",
    "SCHEMA",
    "AnswerBook",
    "default_answers_dir",
    "learner_slug",
]

#: The ``schema`` field of an answers file.
SCHEMA = "infphys.answers/1"
#: Permissions of a saved answers file: the learner writes it, everyone may read it.
ANSWERS_FILE_MODE = 0o644
#: Environment variable naming the folder where the labs save answers (default ``./answers``).
ANSWERS_DIR_ENV = "INFPHYS_ANSWERS_DIR"


def _now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def default_answers_dir() -> Path:
    """``$INFPHYS_ANSWERS_DIR`` if set, else ``answers/`` in the working directory."""
    return Path(os.environ.get(ANSWERS_DIR_ENV) or "answers")


def learner_slug(learner: str) -> str:
    """The file-name form of a learner's name.

    >>> learner_slug("  Ada Lovelace (room 2) ")
    'ada-lovelace-room-2'
    """
    slug = re.sub(r"[^a-z0-9]+", "-", str(learner).strip().lower()).strip("-")
    if not slug:
        raise ValueError(
            f"learner must contain at least one letter or digit (got {learner!r}): "
            "type your name before saving"
        )
    return slug


def _plain(value: Any, where: str) -> Any:
    """``value`` as plain JSON data (numpy scalars and tuples converted), else ``ValueError``."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where} must be finite to be stored (got {value!r})")
        return value
    if hasattr(value, "item") and not isinstance(value, list | tuple | dict):
        return _plain(value.item(), where)
    if isinstance(value, list | tuple):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{where}[{k!r}]") for k, v in value.items()}
    raise ValueError(f"{where} must be plain data (numbers, text, lists, dicts); got {value!r}")


class AnswerBook:
    """One learner's answers, verdicts and run summaries, saved as one JSON file.

    Args:
        learner: the learner's name as typed (the file is named after :func:`learner_slug`).
        lab: the lab that run summaries belong to by default (``"lab05"``).

    Only answers that were actually checked (correct or wrong) are recorded; a blank or
    unreadable answer leaves an earlier attempt in place.
    """

    def __init__(self, learner: str = "", lab: str | None = None) -> None:
        self.learner = str(learner).strip()
        self.lab = lab
        self.created_utc = _now_utc()
        self.updated_utc = self.created_utc
        self.answers: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, dict[str, dict[str, Any]]] = {}

    def __repr__(self) -> str:
        return (
            f"AnswerBook(learner={self.learner!r}, answers={len(self.answers)}, "
            f"passed={self.passed})"
        )

    @property
    def passed(self) -> int:
        """How many recorded answers passed when they were checked."""
        return sum(1 for a in self.answers.values() if a.get("ok"))

    def check(self, exercise: Exercise | str, answer: object, **context: Any) -> Verdict:
        """Check ``answer`` (see :meth:`Exercise.check`) and record it with its context."""
        ex = get_exercise(exercise)
        verdict = ex.check(answer, **context)
        if verdict.status in ("correct", "wrong"):
            stored_answer = _plain(answer, "answer")
            stored_context = _plain(dict(context), "context")
            old = self.answers.get(ex.id)
            same = (
                old is not None
                and old.get("answer") == stored_answer
                and old.get("context") == stored_context
            )
            attempts = int(old.get("attempts", 1)) if old else 0
            now = _now_utc()
            self.answers[ex.id] = {
                "lab": ex.lab,
                "answer": stored_answer,
                "context": stored_context,
                "ok": verdict.ok,
                "status": verdict.status,
                "message": verdict.message,
                "attempts": attempts if same else attempts + 1,
                "answered_utc": old["answered_utc"] if same and old else now,
            }
            self.updated_utc = now
        return verdict

    def add_run(self, name: str, summary: Mapping[str, Any], *, lab: str | None = None) -> None:
        """Keep a short summary of a run (settings and headline numbers) under ``lab``/``name``.

        A second summary with the same lab and name replaces the first.
        """
        key = lab or self.lab
        if not key:
            raise ValueError("add_run needs a lab (pass lab='lab05' or set AnswerBook(lab=...))")
        if not str(name).strip():
            raise ValueError("add_run needs a non-empty run name")
        now = _now_utc()
        self.runs.setdefault(key, {})[str(name)] = {
            "recorded_utc": now,
            "summary": _plain(dict(summary), f"summary of {name!r}"),
        }
        self.updated_utc = now

    # --- files -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The book as the JSON-ready dictionary written by :meth:`save`."""
        from infphys import __version__

        return {
            "schema": SCHEMA,
            "learner": self.learner,
            "infphys_version": __version__,
            "created_utc": self.created_utc,
            "updated_utc": self.updated_utc,
            "answers": {k: dict(v) for k, v in sorted(self.answers.items())},
            "runs": {lab: dict(sorted(r.items())) for lab, r in sorted(self.runs.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AnswerBook:
        """Rebuild a book from :meth:`to_dict`'s output (``ValueError`` if it is not one)."""
        if not isinstance(data, Mapping) or data.get("schema") != SCHEMA:
            raise ValueError(f"not an infphys answers file (schema must be {SCHEMA!r})")
        answers = data.get("answers", {})
        runs = data.get("runs", {})
        if not isinstance(answers, Mapping) or not isinstance(runs, Mapping):
            raise ValueError("answers and runs must be JSON objects")
        book = cls(str(data.get("learner", "")))
        book.created_utc = str(data.get("created_utc", book.created_utc))
        book.updated_utc = str(data.get("updated_utc", book.updated_utc))
        book.answers = {str(k): dict(v) for k, v in answers.items() if isinstance(v, Mapping)}
        book.runs = {
            str(lab): {str(n): dict(r) for n, r in rs.items() if isinstance(r, Mapping)}
            for lab, rs in runs.items()
            if isinstance(rs, Mapping)
        }
        return book

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> AnswerBook:
        """Read a book from a file written by :meth:`save`."""
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{p} is not valid JSON ({exc.msg}, line {exc.lineno})") from None
        return cls.from_dict(data)

    def merge(self, other: AnswerBook) -> AnswerBook:
        """Take ``other``'s answers and runs where they are newer than this book's (in place)."""
        for key, entry in other.answers.items():
            mine = self.answers.get(key)
            if mine is None or str(entry.get("answered_utc", "")) >= str(
                mine.get("answered_utc", "")
            ):
                self.answers[key] = dict(entry)
        for lab, runs in other.runs.items():
            for name, run in runs.items():
                mine_run = self.runs.get(lab, {}).get(name)
                if mine_run is None or str(run.get("recorded_utc", "")) >= str(
                    mine_run.get("recorded_utc", "")
                ):
                    self.runs.setdefault(lab, {})[name] = dict(run)
        self.created_utc = min(self.created_utc, other.created_utc)
        self.updated_utc = max(self.updated_utc, other.updated_utc)
        if not self.learner:
            self.learner = other.learner
        return self

    def path(self, directory: str | os.PathLike[str] | None = None) -> Path:
        """Where :meth:`save` writes: ``<directory>/<learner-slug>.json``."""
        folder = Path(directory) if directory is not None else default_answers_dir()
        return folder / f"{learner_slug(self.learner)}.json"

    def save(self, directory: str | os.PathLike[str] | None = None) -> Path:
        """Merge into the learner's file (created if absent) and write it atomically.

        Answers already in the file from other labs are kept; for the same exercise the newer
        answer wins. Returns the path written.
        """
        target = self.path(directory)
        merged = AnswerBook(self.learner)
        merged.created_utc, merged.updated_utc = self.created_utc, self.updated_utc
        if target.exists():
            merged = AnswerBook.load(target)
        merged.merge(self)
        merged.learner = self.learner
        target.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(merged.to_dict(), indent=2, ensure_ascii=False) + "\n"
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=".tmp")
        try:
            # mkstemp makes the file 0600; the instructor who collects it must be able to read it.
            os.fchmod(fd, ANSWERS_FILE_MODE)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target
