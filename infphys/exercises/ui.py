"""marimo glue for exercises: the answer widgets, the verdicts, the save panel of a lab.

marimo is imported lazily inside each function, so ``import infphys.exercises`` never needs it.
A lab's exercise section is four cells; only the first (the learner's own numbers) is the lab's
own, the last three are the same in every lab::

    # cell 1: the numbers the prompts and solutions use, and what the answer file keeps of the
    # learner's run besides the answers
    exercise_context = {"model": model.key, "users": 50}
    exercise_runs = {"kv_wall": {"calculator_users": engine_wall_users}}
    # cell 2: the name box and the save button (made once: typing a name re-runs nothing above)
    learner, save_button = learner_controls()
    exercises_heading(learner)
    # cell 3: one widget per exercise of the lab, shown one under another
    answers = exercise_form("lab03", exercise_context)
    answers.vstack()
    # cell 4: the answer book, every answer checked (marimo re-runs this whenever the learner
    # answers, types a name or the run changes), saved on a click
    book = answer_book(learner, "lab03", exercise_runs)
    verdicts = check_answers(book, answers.value, exercise_context)
    results_view(verdicts, book, save_button)

The lab's own cell comes first in the file: it shows nothing, and marimo runs cells in the order
their names need, not the order they are written. The form depends only on the context, so a
new name or a new run (which only the book depends on) never wipes the learner's typed
answers; a lab whose run record reads results the context does not may define
``exercise_runs`` in a cell of its own. A lab whose questions are checked against different
contexts passes ``contexts={"q1": ..., "q2": ...}`` to :func:`exercise_form` and
:func:`check_answers` instead of one context.

A widget's label is the exercise's title and its prompt filled with the learner's context. In a
headless run a test replaces ``answers`` with anything whose ``value`` maps ``"q1"``… to answers,
and reads ``verdicts["q1"]``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from infphys.exercises.book import AnswerBook, default_answers_dir
from infphys.exercises.core import Exercise, Verdict, exercises_for, get_exercise

if TYPE_CHECKING:
    from infphys.measure.target import Target
    from infphys.resolve import ResolvedTarget

__all__ = [
    "LEARNER_ENV",
    "AnswerBook",
    "FallbackServer",
    "answer_book",
    "check_answers",
    "exercise_form",
    "exercise_widget",
    "exercises_heading",
    "figure_table",
    "gpu_dropdown",
    "lab_target",
    "learner_controls",
    "model_dropdown",
    "notes_view",
    "offline_note",
    "results_view",
    "run_notes",
    "save_view",
    "target_view",
    "verdict_view",
    "watch_view",
]

#: Environment variable that pre-fills the learner's name box (a classroom machine's login).
LEARNER_ENV = "INFPHYS_LEARNER"

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


def _question_key(exercise: Exercise) -> str:
    """``lab05.q2`` → ``q2``: the key of an exercise in :func:`exercise_form`'s value."""
    return exercise.id.rsplit(".", 1)[1]


def _contexts(
    exercises: list[Exercise],
    context: Mapping[str, Any] | None,
    contexts: Mapping[str, Mapping[str, Any]] | None,
) -> dict[str, Mapping[str, Any]]:
    """Each exercise's key (``"q1"``…) → the context it is shown and checked with.

    Raises:
        ValueError: when neither or both of ``context`` and ``contexts`` are given, or when
            ``contexts`` misses a question of the lab (naming it).
    """
    both_or_neither = "pass either context (one for all questions) or contexts (per question)"
    if contexts is None:
        if context is None:
            raise ValueError(both_or_neither)
        return {_question_key(ex): context for ex in exercises}
    if context is not None:
        raise ValueError(both_or_neither)
    missing = [_question_key(ex) for ex in exercises if _question_key(ex) not in contexts]
    if missing:
        raise ValueError(f"contexts has no context for {', '.join(missing)}")
    return {_question_key(ex): contexts[_question_key(ex)] for ex in exercises}


def exercise_form(
    lab: str | int,
    context: Mapping[str, Any] | None = None,
    *,
    contexts: Mapping[str, Mapping[str, Any]] | None = None,
) -> Any:
    """One :func:`exercise_widget` per exercise of ``lab``, as a ``mo.ui.dictionary``.

    Each prompt is filled from ``context``, or from ``contexts[key]`` where questions are checked
    against different contexts (Lab 06's ``{"q1": calculator_context, "q2": ...}``).
    Its ``value`` maps ``"q1"``, ``"q2"``… to what the learner typed or chose; show it with
    ``answers.vstack()`` (the widgets one under another, in id order, still bound to it).
    For ``"lab05"`` (three exercises) the value starts as ``{"q1": "", "q2": "", "q3": None}``
    (the third is a choice).

    Raises:
        ValueError: when ``lab`` has no exercises (naming it), or for ``context``/``contexts``
            as :func:`check_answers` says.
    """
    import marimo as mo

    exercises = exercises_for(lab)
    if not exercises:
        raise ValueError(f"lab {lab!r} has no exercises (see infphys.exercises)")
    by_key = _contexts(exercises, context, contexts)
    widgets = {
        _question_key(ex): exercise_widget(ex, **by_key[_question_key(ex)]) for ex in exercises
    }
    return mo.ui.dictionary(widgets)


def check_answers(
    book: AnswerBook,
    answers: Mapping[str, object],
    context: Mapping[str, Any] | None = None,
    *,
    contexts: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Verdict]:
    """Check every exercise of ``book.lab`` against ``answers`` (keyed ``"q1"``…) in ``book``.

    Each is checked against ``context``, or against ``contexts[key]`` where the lab's questions
    use different contexts. A question missing from ``answers`` counts as not answered yet
    (``missing``). Returns the verdicts by key, in id order; :meth:`AnswerBook.check` records
    the ones that count.

    Raises:
        ValueError: when the book names no lab, or a lab with no exercises; when neither or
            both of ``context`` and ``contexts`` are given; when ``contexts`` misses a question.
    """
    if not book.lab:
        raise ValueError("book.lab is empty: make the book with AnswerBook(learner, lab='labNN')")
    exercises = exercises_for(book.lab)
    if not exercises:
        raise ValueError(f"book.lab {book.lab!r} has no exercises")
    by_key = _contexts(exercises, context, contexts)
    verdicts = {}
    for ex in exercises:
        key = _question_key(ex)
        verdicts[key] = book.check(ex, answers.get(key, ""), **by_key[key])
    return verdicts


def answer_book(learner: Any, lab: str, runs: Mapping[str, Mapping[str, Any]]) -> AnswerBook:
    """The answer book of ``lab`` for the name typed in ``learner`` (the box from
    :func:`learner_controls`), holding ``runs``: what the answer file keeps of the learner's run
    besides the answers, by name (each passed to :meth:`AnswerBook.add_run`).

    Made afresh in the cell that checks the answers, so a new name or a new run re-checks the
    answers already typed instead of re-creating the form that holds them. For Lab 5,
    ``answer_book(learner, "lab05", {"sequential_vs_concurrent": {"n_requests": 8}})``.

    Raises:
        ValueError: for a run that holds something other than plain data (from ``add_run``).
    """
    book = AnswerBook(learner.value, lab=lab)
    for name, summary in runs.items():
        book.add_run(name, summary)
    return book


def gpu_dropdown(value: str, label: str = "GPU") -> Any:
    """A ``mo.ui.dropdown`` of every catalog GPU, showing names; its ``value`` is the key.

    ``value`` is the GPU first selected, by key or name (``"h100"`` or ``"H100 SXM"``).

    Raises:
        ValueError: for a GPU the catalog does not hold (from :func:`infphys.catalog.get_gpu`).
    """
    import marimo as mo

    from infphys.catalog import GPUS, get_gpu

    return mo.ui.dropdown(
        options={g.name: g.key for g in GPUS.values()},
        value=get_gpu(value).name,
        label=label,
    )


def model_dropdown(value: str, label: str = "model") -> Any:
    """A ``mo.ui.dropdown`` of every catalog model, like :func:`gpu_dropdown`."""
    import marimo as mo

    from infphys.catalog import MODELS, get_model

    return mo.ui.dropdown(
        options={m.name: m.key for m in MODELS.values()},
        value=get_model(value).name,
        label=label,
    )


def learner_controls() -> tuple[Any, Any]:
    """The learner's name box (pre-filled from ``INFPHYS_LEARNER``) and the save button."""
    import marimo as mo

    learner = mo.ui.text(
        value=os.environ.get(LEARNER_ENV, ""), label="Your name (for the answer file)"
    )
    return learner, mo.ui.run_button(label="Save my answers")


def exercises_heading(learner: Any) -> Any:
    """The exercise section's heading with the name box under it."""
    import marimo as mo

    return mo.vstack([mo.md("## Exercises"), learner])


def results_view(verdicts: Mapping[str, Verdict], book: AnswerBook, save_button: Any) -> Any:
    """Each verdict under its question's key, then the save button and :func:`save_view`.

    ``save_button`` is the ``mo.ui.run_button`` from :func:`learner_controls`: the book is
    saved when it was pressed (its ``value`` is true for the run it triggered).
    """
    import marimo as mo

    rows = [
        mo.callout(
            mo.md(f"**{key}** · {verdict._repr_markdown_()}"), kind=_CALLOUT_KIND[verdict.status]
        )
        for key, verdict in verdicts.items()
    ]
    return mo.vstack([*rows, save_button, save_view(book, bool(save_button.value))])


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


def lab_target(**settings: Any) -> tuple[ResolvedTarget, Target]:
    """The endpoint a lab measures, as every lab resolves it, and the target itself.

    ``NIM_BASE_URL`` when a server answers there, else the embedded simulator (kept running for
    the session), via :func:`infphys.resolve.resolve_target` with ``log_lag=False``: the lab
    shows the simulator's lag once (:func:`run_notes`) instead of logging it. ``settings`` go
    to ``resolve_target`` (``sim_gpu="a100"``…). Show ``resolved.message`` with
    :func:`target_view`.
    """
    from infphys.resolve import resolve_target

    resolved = resolve_target(log_lag=False, **settings)
    return resolved, resolved.target


@dataclass(frozen=True)
class FallbackServer:
    """The server a lab that starts its own measures: the target that answered at
    ``NIM_BASE_URL``, else a small simulated one (``gpu``, ``model`` as catalog keys, its batch
    limit ``max_num_seqs``, its clock slowed ``time_scale`` times) started afresh for each run,
    an idle engine with no queue left over.

    ``resolved`` is :func:`infphys.resolve.resolve_target` called with ``fallback=False`` (it
    probes, starts nothing). A simulator that ``infphys labs`` started because nothing answered
    counts as no server: the lab's own fallback replaces it. For Lab 8 with nothing answering:
    ``fallback`` is True, and ``note`` ends "measuring this lab's fallback instead: a simulated
    llama-3.1-8b on one a100-80gb-sxm with max_num_seqs = 8, started on 127.0.0.1 for each run".
    """

    resolved: ResolvedTarget
    gpu: str
    model: str
    max_num_seqs: int
    time_scale: float = 1.0

    @property
    def fallback(self) -> bool:
        """True when the lab measures its own simulated server, not the resolved target."""
        return not self.resolved.answered or self.resolved.launcher_fallback

    @property
    def note(self) -> str:
        """One line saying which server the lab measures, for :func:`target_view`."""
        r = self.resolved
        if not self.fallback:
            return r.message
        why = (
            f"{r.message}, which `infphys labs` started because nothing answered at NIM_BASE_URL"
            if r.launcher_fallback
            else r.message
        )
        return (
            f"{why}; measuring this lab's fallback instead: a simulated {self.model} on one "
            f"{self.gpu} with max_num_seqs = {self.max_num_seqs}, started on 127.0.0.1 for each run"
            + (f", its clock slowed × {self.time_scale:g}" if self.time_scale != 1 else "")
        )

    @contextlib.contextmanager
    def run(self) -> Iterator[tuple[Any, Callable[[], str | None]]]:
        """The server for one run and what says (in one sentence, else None) whether a
        simulator ran late; the fallback is started on entry and stopped on exit."""
        if not self.fallback:
            yield self.resolved.target, self.resolved.lag_note
            return
        from infphys.sim import serve

        with serve(
            self.gpu,
            self.model,
            max_num_seqs=self.max_num_seqs,
            time_scale=self.time_scale,
            served_model_name=self.resolved.target.model,
            log_lag=False,
        ) as sim:
            yield sim, sim.lag_note


def target_view(line: str) -> Any:
    """The one line saying which server a lab measures, as a neutral callout."""
    import marimo as mo

    return mo.callout(mo.md(f"**Measuring:** {line}"), kind="neutral")


def offline_note(env: Mapping[str, str] | None = None) -> Any:
    """Nothing under ``infphys labs``; otherwise a line saying the charts reach a CDN.

    marimo's chart renderer loads MathJax from ``cdn.jsdelivr.net`` for every plotly chart,
    and plain ``marimo edit`` or ``marimo run`` has no setting to stop it (marimo ignores a
    notebook's ``html_head_file`` in the editor). ``infphys labs`` serves the labs through
    :mod:`infphys.labs_server`, which keeps every request on 127.0.0.1 and sets
    ``INFPHYS_LABS_SERVER=1`` for the kernels; this note tells a learner who opened a lab
    another way what leaves their computer and how to avoid it.
    """
    import marimo as mo

    source = os.environ if env is None else env
    if source.get("INFPHYS_LABS_SERVER") == "1":
        return mo.md("")
    return mo.callout(
        mo.md(
            "Opened without `infphys labs`: the charts of this lab load MathJax from "
            "`cdn.jsdelivr.net` (marimo's chart renderer does), so this page makes a request "
            "outside your computer, and hangs on it where there is no internet. Start the labs "
            "with `infphys labs` to keep every request on this machine."
        ),
        kind="neutral",
    )


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


def watch_view(watch: Any, during: str, figure: Any) -> Any:
    """What the GPU watcher saw during a measurement: a caption over its ``figure``.

    ``watch`` is the :class:`infphys.measure.gpu.GPUWatcher` that sampled it (``reason`` and
    ``interval_s`` are read) and ``figure`` its plot (:func:`infphys.plots.gpu.watch_figure`).
    The caption says what was sampled and how often, or why nothing was: for a watcher of
    0.05 s during "the copy", "**The GPU watcher during the copy** (memory, utilisation,
    power; sampled every 50 ms)".
    """
    import marimo as mo

    how = watch.reason or f"sampled every {watch.interval_s * 1e3:.0f} ms"
    caption = f"**The GPU watcher during {during}** (memory, utilisation, power; {how})"
    return mo.vstack([mo.md(caption), figure])


def figure_table(figure: Any, table: Any, columns: Sequence[str], decimals: int) -> Any:
    """A figure over the rows it draws: ``figure`` above ``table[columns]``, rounded to
    ``decimals`` places (a simulated comparison's p95 seconds to 4, a benchmark's ratios to 2).

    Raises:
        KeyError: for a column ``table`` does not have (from pandas).
    """
    import marimo as mo

    return mo.vstack([figure, table[list(columns)].round(decimals)])


def notes_view(notes: list[str]) -> Any:
    """:func:`run_notes` as one warning callout, or nothing when there is nothing to say."""
    import marimo as mo

    if not notes:
        return mo.md("")
    return mo.callout(mo.md(" ".join(notes)), kind="warn")
