"""marimo glue for exercises: an answer widget, a verdict callout, a save panel.

marimo is imported lazily inside each function, so ``import infphys.exercises`` never needs it.
In a notebook, one cell makes and shows the widget; the next checks its value (marimo re-runs it
whenever the learner types) and shows the verdict::

    # cell 1
    q1 = exercise_widget(lab03.Q1_KV_PER_TOKEN, model=model.value)
    q1
    # cell 2
    v1 = book.check(lab03.Q1_KV_PER_TOKEN, q1.value, model=model.value)
    verdict_view(v1)

The widget's label is the exercise's title and its prompt filled with the learner's context.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from infphys.exercises.book import AnswerBook, default_answers_dir
from infphys.exercises.core import Exercise, Verdict, get_exercise

__all__ = [
    "exercise_widget",
    "notes_view",
    "run_notes",
    "save_view",
    "target_view",
    "verdict_view",
]

_CalloutKind = Literal["neutral", "warn", "success", "info", "danger"]
_CALLOUT_KIND: dict[str, _CalloutKind] = {
    "correct": "success",
    "wrong": "danger",
    "invalid": "warn",
    "missing": "neutral",
}


def exercise_widget(exercise: Exercise | str, **context: Any) -> Any:
    """A ``mo.ui.text`` (number) or ``mo.ui.dropdown`` (choice) labelled with the exercise.

    The label shows the id, title and prompt (with ``{placeholders}`` filled from ``context``);
    a number's box says which unit to type. Its ``value`` is what the learner typed or chose
    (``""`` or ``None`` until then), ready for :meth:`AnswerBook.check`.
    """
    import marimo as mo

    ex = get_exercise(exercise)
    stop = "" if ex.title.endswith(("?", "!", ".")) else "."
    label = f"**{ex.id} · {ex.title}{stop}** {ex.render_prompt(**context)}"
    if ex.kind == "choice":
        return mo.ui.dropdown(options=list(ex.choices), value=None, label=label, full_width=True)
    if ex.unit == "×":
        placeholder = "your answer: a factor, such as 2.5"
    elif ex.unit:
        placeholder = f"your answer in {ex.unit}"
    else:
        placeholder = "your answer"
    return mo.ui.text(value="", placeholder=placeholder, label=label, full_width=True)


def verdict_view(verdict: Verdict) -> Any:
    """The verdict as a marimo callout: green when correct, red when wrong, with the hint."""
    import marimo as mo

    return mo.callout(mo.md(verdict._repr_markdown_()), kind=_CALLOUT_KIND[verdict.status])


def save_view(book: AnswerBook, save_clicked: bool, directory: str | None = None) -> Any:
    """Save the book when ``save_clicked`` (a ``mo.ui.run_button``'s value) and say where.

    Without a click it says how many answers pass and where they would go; with a click but no
    learner name it asks for one.
    """
    import marimo as mo

    folder = directory if directory is not None else str(default_answers_dir())
    if not save_clicked:
        return mo.md(
            f"{book.passed} of {len(book.answers)} answers checked so far pass. "
            f"Type your name and press the button to save them in `{folder}/`."
        )
    if not book.learner:
        return mo.callout(mo.md("Type your name first: the file is named after it."), kind="warn")
    path = book.save(directory)
    return mo.callout(
        mo.md(f"Saved {len(book.answers)} answers for **{book.learner}** to `{path}`."),
        kind="success",
    )


def target_view(line: str) -> Any:
    """The one line saying which server a lab measures, as a neutral callout."""
    import marimo as mo

    return mo.callout(mo.md(f"**Measuring:** {line}"), kind="neutral")


def run_notes(lag_notes: Iterable[str | None] = (), warnings: Iterable[str] = ()) -> list[str]:
    """What a lab tells the learner once about its own measurement, in plain sentences.

    ``lag_notes`` are the simulator's (:meth:`infphys.measure.Target.lag_note`, None
    when it kept up): the first one is kept. ``warnings`` are the load generator's per-level
    notes (:attr:`infphys.measure.LoadResult.warnings`): they become one sentence naming how
    many levels were affected. Example: two levels whose client ran late give
    ``["At 2 of the load levels your computer could not send and read the requests on time;
    the figures there describe your computer as much as the server."]``.
    """
    notes = [n for n in lag_notes if n][:1]
    levels = list(dict.fromkeys(w for w in warnings if w))
    if levels:
        count = "one" if len(levels) == 1 else str(len(levels))
        notes.append(
            f"At {count} of the load levels your computer could not send and read the requests "
            "on time; the figures there describe your computer as much as the server."
        )
    return notes


def notes_view(notes: list[str]) -> Any:
    """:func:`run_notes` as one warning callout, or nothing when there is nothing to say."""
    import marimo as mo

    if not notes:
        return mo.md("")
    return mo.callout(mo.md(" ".join(notes)), kind="warn")
