"""``infphys grade``: grade a folder of learners' answer files against an assignment.

``infphys grade answers/ --assignment day3.toml --csv grades.csv`` lists every learner who
saved a file (also one who saved without answering), scores each out of the assigned exercises,
shows one column per assigned exercise, flags unreadable, tampered and copied files, and writes
the same table as CSV for an LMS. See :func:`infphys.exercises.grade_class`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from infphys.cli._app import command, console, err_console, fail
from infphys.cli._tables import column_table

__all__ = ["grade_cmd"]

_STATUS_STYLE = {"pass": "green", "fail": "red", "invalid": "yellow", "unknown": "magenta"}

_EPILOG = (
    "Exit status: 0 every file read, nothing tampered, no copies; 1 a file is unreadable (not "
    "JSON, not an answers file, no permission); 2 bad usage (no such folder, no *.json, unknown "
    "exercise or lab, bad assignment file); 3 a file is tampered (a stored verdict the re-check "
    "rejects, or a context that differs from what the lab stores); 4 copies (byte-identical "
    "files, or the same answers with the same measurements or timestamps). When several apply, "
    "the first in this order."
)


@command("grade", epilog=_EPILOG)
def grade_cmd(
    directory: Annotated[
        Path, typer.Argument(help="Folder of learners' answer files (*.json).", show_default=False)
    ],
    assignment_file: Annotated[
        Path | None,
        typer.Option(
            "--assignment", help="TOML or JSON file naming the assigned labs and/or exercises."
        ),
    ] = None,
    labs: Annotated[
        list[str] | None,
        typer.Option("--lab", help="Assign every exercise of this lab (lab03 or 3); repeatable."),
    ] = None,
    exercises: Annotated[
        list[str] | None,
        typer.Option("--exercise", help="Assign this exercise (lab03.q1); repeatable."),
    ] = None,
    csv: Annotated[
        Path | None, typer.Option("--csv", help="Also write the table to this CSV file.")
    ] = None,
    details: Annotated[
        bool, typer.Option("--details", help="One row per answer instead of per learner.")
    ] = False,
) -> None:
    """Re-check a folder of answer files: score each learner out of the assignment, flag
    tampered, unreadable and copied files, and save the table as CSV.

    Without --assignment, --lab or --exercise, every exercise anyone answered is assigned.
    """
    from infphys.exercises import Assignment, grade_answers, grade_class

    assignment = None
    if assignment_file is not None or labs or exercises:
        base = Assignment.load(assignment_file) if assignment_file else None
        assignment = Assignment.build(
            labs=labs or (),
            exercises=[*(base.exercises if base else ()), *(exercises or ())],
            name=base.name if base else "",
        )
    result = grade_class(directory, assignment)
    if details:
        frame = grade_answers(directory)
        ids = set(result.assignment.exercises)
        frame = frame[frame["exercise"].isin(ids) | frame["exercise"].isna()]
        _print_details(frame, directory)
    else:
        frame = result.table
        _print_table(frame, directory, result.assignment.name)
    if csv is not None:
        try:
            csv.parent.mkdir(parents=True, exist_ok=True)
            frame.to_csv(csv, index=False)
        except OSError as exc:
            fail(f"--csv {csv}: cannot write ({exc.strerror or exc})")
        console.print(f"wrote {csv}", highlight=False)
    for label, files in (
        ("unreadable", result.unreadable),
        ("tampered", result.tampered),
        ("copied", result.copied),
    ):
        if files:
            err_console.print(
                f"[red]{label}:[/] {', '.join(files)}", highlight=False, soft_wrap=True
            )
    raise typer.Exit(result.exit_code)


def _print_table(frame: Any, directory: Path, name: str) -> None:
    ids = [c for c in frame.columns if "." in str(c)]
    title = f"Grades in {directory}" + (f" · {name}" if name else "")
    table = Table(title=title, title_justify="left")
    table.add_column("learner")
    table.add_column("score", justify="right")
    for ex_id in ids:
        table.add_column(str(ex_id), justify="center")
    table.add_column("flags")
    for _, r in frame.iterrows():
        table.add_row(
            str(r["learner"]),
            f"{int(r['score'])}/{int(r['out_of'])}",
            *(_styled(str(r[c])) for c in ids),
            f"[red]{r['flags']}[/]" if r["flags"] else "",
        )
    console.print(table)


def _print_details(frame: Any, directory: Path) -> None:
    table = column_table(
        f"Answers in {directory}",
        ("learner", "exercise", "answer", "expected", "status", "tampered"),
        text=("learner", "exercise", "status", "tampered"),
    )
    for row in frame.itertuples(index=False):
        marks = []
        if row.tampered is True:
            marks.append("verdict")
        if isinstance(row.context_problems, str) and row.context_problems:
            marks.append("context")
        table.add_row(
            str(row.learner),
            _blank(row.exercise),
            _blank(row.answer),
            _blank(row.expected),
            _styled(str(row.status)),
            ", ".join(marks),
        )
    console.print(table)


def _blank(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def _styled(status: str) -> str:
    style = _STATUS_STYLE.get(status)
    return f"[{style}]{status}[/]" if style else status
