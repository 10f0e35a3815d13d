"""Exercises: a question, the right answer computed from the learner's own numbers, a verdict.

An :class:`Exercise` asks for a number or a choice. Its right answer is not a constant: a
``solution`` function computes it from the *context* the lab passes in (the learner's settings
and measurements), so a neighbour's number, computed for other settings, fails. A number passes
when it lies within the exercise's :class:`Tolerance` of the solution (relative, absolute, or
the larger of the two; the bound is inclusive).

Every exercise is registered by id (``lab03.q1``) in :data:`EXERCISES` when its lab module is
imported; ``infphys.exercises`` imports them all.

Worked example (an exercise defined in a test or a lab module)::

    >>> def kv_per_token(layers: int, kv_heads: int, head_dim: int, bytes_per_element: float):
    ...     return 2 * layers * kv_heads * head_dim * bytes_per_element
    >>> ex = Exercise(
    ...     id="lab99.q1", title="KV bytes per token",
    ...     prompt="How many KV bytes does one token add ({layers} layers)?",
    ...     solution=kv_per_token, tolerance=Tolerance(relative=0.01), unit="bytes",
    ...     hint="2 × layers × KV heads × head dim × bytes.", explanation="K and V, every layer.",
    ...     register=False)
    >>> llama_8b = dict(layers=32, kv_heads=8, head_dim=128, bytes_per_element=2)
    >>> ex.check("131,072", **llama_8b).ok          # 2 × 32 × 8 × 128 × 2
    True
    >>> ex.check(524288, **llama_8b).status          # hidden size in place of KV heads × dim
    'wrong'
    >>> ex.check("lots", **llama_8b).message
    "'lots' is not a number: type a plain number in bytes, such as 1234.5."
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from infphys import fmt

__all__ = [
    "EXERCISES",
    "Exercise",
    "Tolerance",
    "Verdict",
    "answer_key",
    "check",
    "concept_exercise",
    "exercises_for",
    "fixed_answer",
    "get_exercise",
    "register",
]

ExerciseKind = Literal["number", "choice"]
VerdictStatus = Literal["correct", "wrong", "invalid", "missing"]

#: Every registered exercise, by id (``lab03.q1``). Filled when the lab modules are imported.
EXERCISES: dict[str, Exercise] = {}

_ID = re.compile(r"^(lab\d{2})\.q\d+$")
# A number, optionally signed, with thousands separators already removed.
_NUMBER = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*(.*)$")
_SEPARATORS = str.maketrans({",": "", "_": "", "\u202f": "", "\u2009": "", "\u00a0": "", "−": "-"})


@dataclass(frozen=True, slots=True)
class Tolerance:
    """How far a numeric answer may be from the solution and still pass.

    The allowed distance is ``max(absolute, relative × |solution|)``, inclusive.

    >>> Tolerance(relative=0.05).allows(104.9, 100), Tolerance(relative=0.05).allows(106, 100)
    (True, False)
    >>> Tolerance(absolute=1).describe("users")
    '±1 users'
    """

    relative: float = 0.0
    absolute: float = 0.0

    def __post_init__(self) -> None:
        for name in ("relative", "absolute"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not v >= 0:
                raise ValueError(f"Tolerance.{name} must be a number >= 0 (got {v!r})")
            if not math.isfinite(v):
                raise ValueError(f"Tolerance.{name} must be finite (got {v!r})")

    def bound(self, expected: float) -> float:
        """The largest distance from ``expected`` that passes."""
        return max(self.absolute, self.relative * abs(expected))

    def allows(self, answer: float, expected: float) -> bool:
        """True if ``answer`` lies within :meth:`bound` of ``expected`` (a hair of float slack)."""
        bound = self.bound(expected)
        slack = 1e-9 * max(abs(expected), 1e-300)
        return abs(answer - expected) <= bound + slack

    def describe(self, unit: str = "") -> str:
        """``'±2%'``, ``'±0.5 ms'``, ``'±2% or ±1 users, whichever is larger'`` or ``'exact'``."""
        parts = []
        if self.relative:
            parts.append(f"±{fmt.plain(self.relative * 100)}%")
        if self.absolute:
            parts.append(f"±{fmt.plain(self.absolute)}{' ' + unit if unit else ''}")
        if not parts:
            return "exact"
        return parts[0] if len(parts) == 1 else f"{parts[0]} or {parts[1]}, whichever is larger"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of checking one answer.

    Attributes:
        ok: True if the answer passes.
        status: ``correct``, ``wrong``, ``invalid`` (not a number, not one of the choices) or
            ``missing`` (nothing typed yet).
        message: one sentence for the learner.
        hint: the exercise's hint when the answer is wrong or invalid, else empty.
    """

    ok: bool
    status: VerdictStatus
    message: str
    hint: str = ""

    def _repr_markdown_(self) -> str:
        mark = {"correct": "✅", "wrong": "❌", "invalid": "⚠️", "missing": "✏️"}[self.status]
        text = f"{mark} {self.message}"
        return f"{text}\n\n*Hint:* {self.hint}" if self.hint else text


class _KeepMissing(dict[str, Any]):
    """A format mapping that leaves unknown ``{placeholders}`` in place."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _parse_number(answer: object, unit: str) -> float | str:
    """The answer as a float, or a message saying why it is not one."""
    example = f"type a plain number{' in ' + unit if unit else ''}, such as 1234.5."
    if isinstance(answer, bool):
        return f"{answer!r} is not a number: {example}"
    if isinstance(answer, int | float):
        value = float(answer)
    elif hasattr(answer, "item") and not isinstance(answer, str | bytes):
        try:
            value = float(answer.item())
        except (TypeError, ValueError):
            return f"{answer!r} is not a number: {example}"
    elif isinstance(answer, str):
        text = answer.strip().translate(_SEPARATORS).replace(" ", "")
        if unit == "USD" and text.startswith("$"):
            text = text[1:]
        m = _NUMBER.match(text)
        if m is None:
            return f"{answer.strip()!r} is not a number: {example}"
        value = float(m.group(1))
        rest = m.group(2).strip()
        if rest and rest.lower() != unit.replace(" ", "").lower():
            wanted = f"in {unit}" if unit else "without a unit"
            return f"{answer.strip()!r}: give the number {wanted}, with no other text."
    else:
        return f"{answer!r} is not a number: {example}"
    if not math.isfinite(value):
        return f"{answer!r} is not a finite number: {example}"
    return value


def _is_blank(answer: object) -> bool:
    return answer is None or (isinstance(answer, str) and not answer.strip())


@dataclass(frozen=True)
class Exercise:
    """One question of a lab, with a right answer computed from the learner's context.

    Attributes:
        id: ``labNN.qM``; the lab is the part before the dot.
        title: a few words (``"KV bytes per token"``).
        prompt: the question, in markdown. ``{name}`` placeholders are filled from the context
            by :meth:`render_prompt`.
        solution: computes the right answer from the context (keyword arguments named after
            its parameters; extra context keys are ignored). Returns a number for ``number``
            exercises, one of ``choices`` for ``choice`` exercises.
        tolerance: how close a number must be (ignored for choices).
        hint: shown with a wrong or invalid answer; says how to get there, not the answer.
        explanation: the worked answer, for instructors.
        kind: ``number`` or ``choice``.
        choices: the options of a ``choice`` exercise, as shown.
        unit: the unit the answer is typed in (``bytes``, ``ms``, ``users``); a number typed
            with exactly this unit after it is accepted.
        register: add to :data:`EXERCISES` on creation (a duplicate id raises ``ValueError``).
    """

    id: str
    title: str
    prompt: str
    solution: Callable[..., float | str]
    hint: str
    explanation: str
    tolerance: Tolerance = field(default_factory=lambda: Tolerance(relative=0.02))
    kind: ExerciseKind = "number"
    choices: tuple[str, ...] = ()
    unit: str = ""
    register: bool = field(default=True, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _ID.match(self.id):
            raise ValueError(f"Exercise id must look like 'lab03.q1' (got {self.id!r})")
        if self.kind not in ("number", "choice"):
            raise ValueError(f"Exercise kind must be 'number' or 'choice' (got {self.kind!r})")
        if self.kind == "choice":
            if len(self.choices) < 2:
                raise ValueError(f"{self.id}: a choice exercise needs at least 2 choices")
            if len({c.strip().lower() for c in self.choices}) != len(self.choices):
                raise ValueError(f"{self.id}: choices must differ (case-insensitively)")
        elif self.choices:
            raise ValueError(f"{self.id}: only a choice exercise has choices")
        for name in ("title", "prompt", "hint", "explanation"):
            if not str(getattr(self, name)).strip():
                raise ValueError(f"{self.id}: {name} must not be empty")
        if self.register:
            register(self)

    @property
    def lab(self) -> str:
        """The lab this exercise belongs to (``lab03``)."""
        return self.id.split(".", 1)[0]

    @property
    def needs(self) -> tuple[str, ...]:
        """Context keys the solution requires (its parameters without defaults)."""
        params = inspect.signature(self.solution).parameters.values()
        return tuple(
            p.name
            for p in params
            if p.default is inspect.Parameter.empty
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        )

    def _arguments(self, context: Mapping[str, Any]) -> dict[str, Any]:
        missing = [k for k in self.needs if k not in context]
        if missing:
            raise ValueError(
                f"{self.id} needs the context {', '.join(missing)} "
                f"(got {', '.join(sorted(context)) or 'nothing'})"
            )
        params = inspect.signature(self.solution).parameters
        if any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return dict(context)
        return {k: v for k, v in context.items() if k in params}

    def expected(self, **context: Any) -> float | str:
        """The right answer for this context (for instructors and tests; labs never show it)."""
        value = self.solution(**self._arguments(context))
        if self.kind == "choice":
            if value not in self.choices:
                raise ValueError(f"{self.id}: solution returned {value!r}, not one of the choices")
            return value
        return float(value)

    def render_prompt(self, **context: Any) -> str:
        """The prompt with ``{name}`` placeholders filled from the context (a placeholder with
        no value is left as it is).

        >>> get_exercise("lab03.q1").render_prompt(model_name="Llama-3.1-8B")[:50]
        'How many bytes of KV cache does one token of **Lla'
        """
        shown = {
            k: (fmt.plain(v) if isinstance(v, int | float) and not isinstance(v, bool) else v)
            for k, v in context.items()
        }
        try:
            return self.prompt.format_map(_KeepMissing(shown))
        except (IndexError, ValueError, AttributeError):
            return self.prompt

    def _choice(self, answer: object) -> str | None:
        """The choice the answer names: its text (any case) or its letter (``a``, ``b``, …)."""
        low = str(answer).strip().lower()
        letter = low.rstrip(")").strip()
        for i, c in enumerate(self.choices):
            if low == c.strip().lower() or letter == chr(ord("a") + i):
                return c
        return None

    def check(self, answer: object, **context: Any) -> Verdict:
        """Check ``answer`` against the solution for ``context``.

        A blank answer is ``missing``; text that is not a number (or not one of the choices) is
        ``invalid`` with a message saying what to type. Missing context keys are a lab bug and
        raise ``ValueError``.
        """
        if _is_blank(answer):
            return Verdict(False, "missing", "No answer yet.")
        expected = self.expected(**context)
        if self.kind == "choice":
            chosen = self._choice(answer)
            if chosen is None:
                options = "; ".join(f"{chr(ord('a') + i)}) {c}" for i, c in enumerate(self.choices))
                return Verdict(
                    False,
                    "invalid",
                    f"{str(answer).strip()!r} is not one of the choices: {options}.",
                    self.hint,
                )
            if chosen == expected:
                return Verdict(True, "correct", f"Correct: {chosen}.")
            return Verdict(
                False, "wrong", f"Not this one: {chosen!r} is not the answer.", self.hint
            )
        parsed = _parse_number(answer, self.unit)
        if isinstance(parsed, str):
            return Verdict(False, "invalid", parsed, self.hint)
        assert isinstance(expected, float)
        unit = f" {self.unit}" if self.unit else ""
        tol = self.tolerance.describe(self.unit)
        if self.tolerance.allows(parsed, expected):
            return Verdict(
                True,
                "correct",
                f"Correct: {fmt.plain(parsed)}{unit} is within {tol} of "
                f"{fmt.plain(expected)}{unit}, the value for your settings.",
            )
        direction = "too high" if parsed > expected else "too low"
        return Verdict(
            False,
            "wrong",
            f"Not yet: {fmt.plain(parsed)}{unit} is {direction} for your settings "
            f"(it must be within {tol}).",
            self.hint,
        )


def fixed_answer(answer: str) -> Callable[[], str]:
    """The ``solution`` of a question whose right answer is the same for every learner.

    The solution takes no context, so the exercise needs none: a choice question about a
    concept (what ran out at the KV wall: ``"KV-cache memory"``) rather than about the
    learner's numbers.

    >>> fixed_answer("KV-cache memory")()
    'KV-cache memory'
    """

    def solution() -> str:
        return answer

    return solution


def concept_exercise(
    *,
    id: str,
    title: str,
    prompt: str,
    choices: tuple[str, ...],
    hint: str,
    explanation: str,
    register: bool = True,
) -> Exercise:
    """A choice exercise about a concept: its right answer, the first of ``choices``, is the same
    for every learner, so it needs no context.

    The choices are shown in the order given (the answer first); the other fields are those of
    :class:`Exercise`.

    >>> ex = concept_exercise(
    ...     id="lab99.q2", title="What ran out?", prompt="What ran out at the KV wall?",
    ...     choices=("KV-cache memory", "compute (FLOP/s)"), hint="Not the FLOPs.",
    ...     explanation="The KV cache filled up.", register=False)
    >>> ex.kind, ex.expected(), ex.check("b").status
    ('choice', 'KV-cache memory', 'wrong')
    """
    if not choices:
        raise ValueError(f"{id}: a concept exercise needs its choices, the answer first")
    return Exercise(
        id=id,
        title=title,
        prompt=prompt,
        solution=fixed_answer(choices[0]),
        kind="choice",
        choices=choices,
        hint=hint,
        explanation=explanation,
        register=register,
    )


def register(exercise: Exercise) -> Exercise:
    """Add ``exercise`` to :data:`EXERCISES`; a second exercise with the same id raises."""
    if exercise.id in EXERCISES and EXERCISES[exercise.id] is not exercise:
        raise ValueError(f"an exercise with id {exercise.id!r} is already registered")
    EXERCISES[exercise.id] = exercise
    return exercise


def get_exercise(exercise: Exercise | str) -> Exercise:
    """The registered exercise with this id (or the exercise itself)."""
    if isinstance(exercise, Exercise):
        return exercise
    try:
        return EXERCISES[exercise]
    except KeyError:
        known = ", ".join(sorted(EXERCISES)) or "none registered"
        raise ValueError(f"unknown exercise {exercise!r} (known: {known})") from None


def exercises_for(lab: str | int) -> list[Exercise]:
    """The registered exercises of one lab (``"lab03"``, ``"03"`` or ``3``), in id order.

    >>> [e.id for e in exercises_for(3)][:1]
    ['lab03.q1']
    """
    key = f"lab{int(lab):02d}" if isinstance(lab, int) or str(lab).isdigit() else str(lab)
    return sorted(
        (e for e in EXERCISES.values() if e.lab == key),
        key=lambda e: int(e.id.rsplit("q", 1)[1]),
    )


def check(exercise: Exercise | str, answer: object, **context: Any) -> Verdict:
    """Check ``answer`` to a registered exercise (by id) for ``context``.

    >>> check("lab03.q1", "131072", model="llama-3.1-8b", kv_precision="bf16").ok
    True
    """
    return get_exercise(exercise).check(answer, **context)


def answer_key(lab: str | int | None = None) -> str:
    """Markdown for instructors: every exercise (of one lab, or all) with hint and explanation.

    >>> answer_key(3).splitlines()[0]
    '### lab03.q1 · KV bytes per token'
    """
    exercises = (
        exercises_for(lab)
        if lab is not None
        else sorted(EXERCISES.values(), key=lambda e: (e.lab, int(e.id.rsplit("q", 1)[1])))
    )
    blocks = []
    for e in exercises:
        tol = "" if e.kind == "choice" else f" Tolerance: {e.tolerance.describe(e.unit)}."
        options = (
            "\n".join(f"- {chr(ord('a') + i)}) {c}" for i, c in enumerate(e.choices)) + "\n\n"
            if e.choices
            else ""
        )
        blocks.append(
            f"### {e.id} · {e.title}\n\n{e.prompt}\n\n{options}"
            f"*Answer in:* {e.unit or e.kind}.{tol}\n\n*Hint:* {e.hint}\n\n"
            f"*Explanation:* {e.explanation}\n"
        )
    return "\n".join(blocks)
