"""``infphys labs``: copy the course labs to a folder the learner owns and open them in marimo.

The labs ship inside the package (:mod:`infphys.labkit`). ``infphys labs`` copies them to a
working folder, ``./infphys-labs/`` by default (``--dir``), without overwriting a lab the learner
edited (``--refresh`` replaces it and keeps their copy as ``<name>.bak``); answers are saved in
``<folder>/answers/`` unless ``INFPHYS_ANSWERS_DIR`` says otherwise. ``--list`` shows what ships,
``--copy-only`` copies and stops, ``--labs-dir`` opens a folder in place (a checkout's ``labs/``).

Then it resolves the target (``NIM_BASE_URL`` if it answers, else the embedded
simulator, started here and kept alive while marimo runs), then runs ``marimo edit`` (or
``marimo run`` with ``--run``) on the labs folder, bound to 127.0.0.1, through
:mod:`infphys.labs_server`: cells run as soon as a lab opens, whatever the learner's marimo
config says, and charts load MathJax from that server, not a CDN. The notebooks reach the
target through ``NIM_BASE_URL`` and ``NIM_GEN_MODEL`` in marimo's environment, and
``INFPHYS_SIM_FALLBACK=1`` when that target is the simulator started here (a lab with a fallback
of its own, such as Lab 8's small A100, then uses that instead).

Ctrl-C (SIGINT), SIGTERM and SIGHUP all stop marimo, every process it started (it runs in its own
process group) and the simulator; the command then exits 0.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from infphys.cli._app import command, err_console, fail
from infphys.cli._signals import end_process_group, stop_on_signals
from infphys.labkit import CopyReport, copy_labs, default_work_dir, lab_files, lab_source

__all__ = ["default_labs_dir", "labs_cmd", "marimo_command"]


def default_labs_dir() -> Path:
    """Where the labs ship: ``infphys/labs_data`` in a wheel, ``labs/`` in a checkout."""
    return lab_source()


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


@command("labs")
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
    work_dir: Annotated[
        Path | None,
        typer.Option("--dir", help="Your working folder for the labs [default: ./infphys-labs]."),
    ] = None,
    refresh: Annotated[
        bool,
        typer.Option(
            "--refresh", help="Replace labs you edited with the shipped ones (yours kept as .bak)."
        ),
    ] = False,
    list_only: Annotated[
        bool, typer.Option("--list", help="List the labs that ship with infphys, then stop.")
    ] = False,
    copy_only: Annotated[
        bool, typer.Option("--copy-only", help="Copy the labs to --dir, then stop.")
    ] = False,
    labs_dir: Annotated[
        Path | None,
        typer.Option("--labs-dir", help="Open this folder of notebooks in place (no copy)."),
    ] = None,
) -> None:
    """Copy the course labs to your folder and open them in marimo (against NIM_BASE_URL or the
    embedded simulator).

    Ctrl-C, SIGTERM and SIGHUP stop marimo, everything it started and the simulator. Exit
    status: 0 after such a stop or when marimo exits normally; 2 for bad options.
    """
    if not 0 < port < 65536:
        fail(f"--port must be in 1..65535 (got {port})")
    if labs_dir is not None and (work_dir is not None or refresh or copy_only):
        fail("--labs-dir opens a folder in place: leave out --dir, --refresh and --copy-only")
    if list_only:
        source = labs_dir or lab_source()
        files = lab_files(source)
        err_console.print(f"{len(files)} files in {source}:", highlight=False, soft_wrap=True)
        for f in files:
            sys.stdout.write(f.name + "\n")
        return
    env = dict(os.environ)
    if labs_dir is not None:
        folder = labs_dir
        if not folder.is_dir() or not any(folder.glob("*.py")):
            fail(f"--labs-dir: no lab notebooks (*.py) in {folder}")
    else:
        folder = (work_dir or default_work_dir()).resolve()
        report = copy_labs(folder, refresh=refresh)
        _say_copied(report)
        env.setdefault("INFPHYS_ANSWERS_DIR", str(folder / "answers"))
        if copy_only:
            return
    if shutil.which("marimo") is None and not _has_module("marimo"):
        fail("marimo is not installed: pip install 'infphys[labs]'")
    cmd = marimo_command(
        folder.resolve(), port=port, no_browser=no_browser, headless=headless, run=run
    )
    raise typer.Exit(_open(cmd, env, cwd=folder, port=port))


def _say_copied(report: CopyReport) -> None:
    parts = [
        f"{len(report.by_action(a))} {a}"
        for a in ("copied", "updated", "unchanged", "refreshed", "kept")
        if report.by_action(a)
    ]
    err_console.print(
        f"labs in {report.folder}: {', '.join(parts)}", highlight=False, soft_wrap=True
    )
    for name in report.by_action("kept"):
        err_console.print(
            f"[yellow]kept your edited {name}[/] (infphys labs --refresh replaces it, "
            "saving yours as .bak)",
            highlight=False,
            soft_wrap=True,
        )


def _open(cmd: list[str], env: dict[str, str], *, cwd: Path, port: int) -> int:
    """Resolve the target, run marimo until it exits or a stop signal; stop everything."""
    from infphys.resolve import SIM_FALLBACK_ENV, resolve_target

    with stop_on_signals() as stopped:
        try:
            with resolve_target() as resolved:
                err_console.print(resolved.message, highlight=False, soft_wrap=True)
                env["NIM_BASE_URL"] = resolved.target.base_url
                env["NIM_CHAT_PATH"] = resolved.target.chat_path
                env["NIM_GEN_MODEL"] = resolved.target.model
                if resolved.sim is not None:  # nothing answered: the labs see the fallback
                    env[SIM_FALLBACK_ENV] = "1"
                err_console.print(
                    f"labs: http://127.0.0.1:{port}  (Ctrl-C stops marimo and the target)"
                )
                return _run_until_stopped(cmd, env, cwd)
        except KeyboardInterrupt:  # a stop signal while the target was starting
            return _stopped(stopped.signum)


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _run_until_stopped(cmd: list[str], env: dict[str, str], cwd: Path) -> int:
    """Run ``cmd`` in its own process group; on a stop signal end the whole group.

    Returns marimo's exit status, or 0 when a stop signal ended it.
    """
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, start_new_session=True)
    signum: int | None = None
    try:
        code = proc.wait()
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
    finally:
        end_process_group(proc)
    return code if signum is None else _stopped(signum)


def _stopped(signum: int | None) -> int:
    name = signal.Signals(signum or signal.SIGINT).name
    err_console.print(f"stopped by {name}: marimo and the target are shut down", highlight=False)
    return 0
