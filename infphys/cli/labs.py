"""Course commands: ``labs`` opens the marimo labs, ``grade`` tabulates learners' answer files.

``infphys grade answers/`` re-checks every answer in every ``*.json`` file of the folder against
the context it was given (a verdict edited in a file counts for nothing), prints who passed what
and with ``--csv`` writes the same table as CSV.

``infphys labs`` resolves the target first (``NIM_BASE_URL`` if it answers, else the embedded
simulator, started here and kept alive while marimo runs), then runs ``marimo edit`` (or
``marimo run`` with ``--run``) on the labs folder, bound to 127.0.0.1, through
:mod:`infphys.labs_server`: cells run as soon as a lab opens, whatever the learner's marimo
config says, and charts load MathJax from that server, not a CDN. The notebooks reach the
target through ``NIM_BASE_URL`` and ``NIM_GEN_MODEL`` in marimo's environment.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from infphys.cli._app import app, clean_errors, console, err_console, fail

__all__ = ["default_labs_dir", "grade_cmd", "labs_cmd", "marimo_command"]

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


def default_labs_dir() -> Path:
    """The ``labs/`` folder: next to the working directory's checkout, or the package's repo."""
    here = Path.cwd() / "labs"
    if here.is_dir():
        return here
    return Path(__file__).resolve().parents[2] / "labs"


def marimo_command(
    labs_dir: Path, *, port: int, no_browser: bool, headless: bool, run: bool
) -> list[str]:
    """The marimo command line ``infphys labs`` runs (``edit`` or ``run``, on 127.0.0.1).

    marimo's own CLI, run by :mod:`infphys.labs_server` (run on open, MathJax served locally).

    >>> marimo_command(Path("labs"), port=2718, no_browser=True, headless=False, run=False)[1:]
    ['-m', 'infphys.labs_server', 'edit', 'labs', '--host', '127.0.0.1', '--port', '2718', \
'--no-token', '--headless']
    """
    cmd = [sys.executable, "-m", "infphys.labs_server", "run" if run else "edit", str(labs_dir)]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--no-token"]
    if no_browser or headless:
        cmd.append("--headless")
    return cmd


@app.command("labs")
@clean_errors
def labs_cmd(
    port: Annotated[int, typer.Option("--port", help="Port for marimo on 127.0.0.1.")] = 2718,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Do not open a browser tab.")
    ] = False,
    headless: Annotated[
        bool, typer.Option("--headless", help="Server only (no browser), e.g. over SSH.")
    ] = False,
    run: Annotated[
        bool, typer.Option("--run", help="Open the labs as read-only apps (marimo run).")
    ] = False,
    labs_dir: Annotated[
        Path | None, typer.Option("--labs-dir", help="Folder of lab notebooks.")
    ] = None,
) -> None:
    """Open the course labs in marimo, against NIM_BASE_URL or the embedded simulator."""
    folder = labs_dir or default_labs_dir()
    if not folder.is_dir() or not any(folder.glob("*.py")):
        fail(f"no lab notebooks (*.py) in {folder}; run from the repository or pass --labs-dir")
    if not 0 < port < 65536:
        fail(f"--port must be in 1..65535 (got {port})")
    if shutil.which("marimo") is None and not _has_module("marimo"):
        fail("marimo is not installed: pip install 'infphys[labs]'")
    from infphys.resolve import resolve_target

    with resolve_target() as resolved:
        err_console.print(resolved.message, highlight=False, soft_wrap=True)
        env = dict(os.environ)
        env["NIM_BASE_URL"] = resolved.target.base_url
        env["NIM_CHAT_PATH"] = resolved.target.chat_path
        env["NIM_GEN_MODEL"] = resolved.target.model
        cmd = marimo_command(folder, port=port, no_browser=no_browser, headless=headless, run=run)
        err_console.print(f"labs: http://127.0.0.1:{port}  (Ctrl-C stops marimo and the target)")
        code = _run_until_interrupted(cmd, env)
    raise typer.Exit(code)


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _run_until_interrupted(cmd: list[str], env: dict[str, str]) -> int:
    """Run ``cmd``; on Ctrl-C pass the interrupt on and wait for it to exit."""
    proc = subprocess.Popen(cmd, env=env)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        try:
            return proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()
