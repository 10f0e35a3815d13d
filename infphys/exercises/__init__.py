"""Exercises for the labs: questions whose right answers come from the learner's own numbers.

- :class:`Exercise` (``core``): a number or a choice, a ``solution`` computed from the context
  the lab passes (settings and measurements), a :class:`Tolerance`, a hint and an instructor
  explanation; ``Exercise.check(answer, **context)`` returns a :class:`Verdict`.
- :data:`EXERCISES`: every exercise by id (``lab03.q1``), filled by importing the lab modules
  below; :func:`exercises_for` lists one lab's; :func:`answer_key` is the instructors' markdown.
- :class:`AnswerBook` (``book``): records a learner's answers, contexts, verdicts and run
  summaries and merges them into one JSON file per learner.
- :func:`grade_class` (``grading``) re-checks a folder of them (stored verdicts and contexts are
  not trusted), scores each learner out of an :class:`Assignment` and flags tampering and
  copies; :func:`grade` and :func:`grade_answers` are the plain per-file and per-answer tables.
- ``infphys.exercises.ui``: marimo widgets (imported lazily, not from here).
- ``infphys.exercises.labsetup``: the controls at the top of a lab, widgets that hold the value
  a lab computes with, and ``values`` that turns them into its settings (also lazy).

Adding a lab's exercises: write ``infphys/exercises/labNN.py`` defining module-level
``Exercise(...)`` objects (creating one registers it; ``concept_exercise(...)`` makes a choice
whose answer, the first choice, is the same for every learner), then add one import line below.

>>> from infphys.exercises import check
>>> check("lab03.q1", "131072", model="llama-3.1-8b").ok
True
"""

from __future__ import annotations

from infphys.exercises import lab01 as _lab01  # noqa: F401  (registers lab01.*)
from infphys.exercises import lab02 as _lab02  # noqa: F401
from infphys.exercises import lab03 as _lab03  # noqa: F401
from infphys.exercises import lab04 as _lab04  # noqa: F401
from infphys.exercises import lab05 as _lab05  # noqa: F401
from infphys.exercises import lab06 as _lab06  # noqa: F401
from infphys.exercises import lab07 as _lab07  # noqa: F401
from infphys.exercises import lab08 as _lab08  # noqa: F401
from infphys.exercises import lab09 as _lab09  # noqa: F401
from infphys.exercises import lab10 as _lab10  # noqa: F401
from infphys.exercises import lab11 as _lab11  # noqa: F401
from infphys.exercises import lab12 as _lab12  # noqa: F401
from infphys.exercises import lab13 as _lab13  # noqa: F401
from infphys.exercises.book import (
    ANSWERS_DIR_ENV,
    ANSWERS_FILE_MODE,
    SCHEMA,
    AnswerBook,
    default_answers_dir,
    learner_slug,
)
from infphys.exercises.core import (
    EXERCISES,
    Exercise,
    Tolerance,
    Verdict,
    answer_key,
    check,
    exercises_for,
    get_exercise,
    register,
)
from infphys.exercises.grading import Assignment, ClassGrades, grade, grade_answers, grade_class

__all__ = [
    "ANSWERS_DIR_ENV",
    "ANSWERS_FILE_MODE",
    "EXERCISES",
    "SCHEMA",
    "AnswerBook",
    "Assignment",
    "ClassGrades",
    "Exercise",
    "Tolerance",
    "Verdict",
    "answer_key",
    "check",
    "default_answers_dir",
    "exercises_for",
    "get_exercise",
    "grade",
    "grade_answers",
    "grade_class",
    "learner_slug",
    "register",
]
