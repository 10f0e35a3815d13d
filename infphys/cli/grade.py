"""``infphys grade``: re-check a folder of learners' answer files and tabulate who passed what.

``infphys grade answers/`` re-checks every answer in every ``*.json`` file of the folder against
the context it was given (a verdict edited in a file counts for nothing), prints who passed what
and with ``--csv`` writes the same table as CSV.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from infphys.cli._app import app, clean_errors, console

__all__ = ["grade_cmd"]

_STATUS_STYLE = {"pass": "green", "fail": "red", "invalid": "yellow", "unknown": "magenta"}


@app.command("grade")
@clean_errors
def grade_cmd(
    directory: Annotated[
        Path, typer.Argument(help="Folder of learners' answer files (*.json).", show_default=False)
    ],
    csv: Annotated[
        Path | None, typer.Option("--csv", help="Also write the table to this CSV file.")
    ] = None,
    details: Annotated[
        bool, typer.Option("--details", help="One row per answer instead of per learner.")
    ] = False,
    lab: Annotated[
        str | None, typer.Option("--lab", help="Only this lab's exercises (lab03 or 3).")
    ] = None,
) -> None:
    """Re-check a folder of answer files and show who passed what (and save it as CSV)."""
    from infphys.exercises import grade, grade_answers

    frame = grade_answers(directory, lab=lab) if details else grade(directory, lab=lab)
    if csv is not None:
        csv.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(csv, index=False)
    if details:
        table = Table(title=f"Answers in {directory}", title_justify="left")
        for col in ("learner", "exercise", "answer", "expected", "status", "tampered"):
            table.add_column(col, justify="right" if col in ("answer", "expected") else "left")
        for row in frame.itertuples(index=False):
            table.add_row(
                str(row.learner),
                _blank(row.exercise),
                _blank(row.answer),
                _blank(row.expected),
                _styled(str(row.status)),
                "yes" if row.tampered is True else "",
            )
    else:
        ids = [c for c in frame.columns if "." in str(c)]
        table = Table(title=f"Grades in {directory}", title_justify="left")
        table.add_column("learner")
        table.add_column("passed", justify="right")
        for ex_id in ids:
            table.add_column(str(ex_id), justify="center")
        table.add_column("notes")
        for _, r in frame.iterrows():
            notes = []
            if int(r["tampered"]):
                notes.append(f"[red]{int(r['tampered'])} stored pass(es) fail on re-check[/]")
            if r["error"]:
                notes.append(f"[yellow]{r['error']}[/]")
            table.add_row(
                str(r["learner"]),
                f"{int(r['passed'])}/{int(r['answered'])}",
                *(_styled(str(r[c])) for c in ids),
                "; ".join(notes),
            )
    console.print(table)
    if csv is not None:
        console.print(f"wrote {csv}")


def _blank(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def _styled(status: str) -> str:
    style = _STATUS_STYLE.get(status)
    return f"[{style}]{status}[/]" if style else status
