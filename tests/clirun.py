"""``infphys ARGS`` run in-process as a terminal of a given width would show it.

Example::

    r = run_cli("kv", "--gpu", "v100")
    r.returncode, r.stderr      # 2, 'Error: gpu: unknown GPU 'v100'…' on one 160-column line
"""

from __future__ import annotations

import subprocess

import pytest
from typer.testing import CliRunner

from infphys.cli import _app, app


def run_cli(*args: str, columns: int = 160) -> subprocess.CompletedProcess[str]:
    """``infphys ARGS`` on the typer app in-process (``CliRunner``, which spares a Python start
    per call), its consoles ``columns`` wide and without colour, as ``COLUMNS=<columns>
    NO_COLOR=1`` gives the console script; its exit code, stdout and stderr.

    rich fixes a console's width when ``infphys`` is imported, so the width is set on the
    consoles themselves for the call. An exception other than an exit is raised.
    """
    with pytest.MonkeyPatch.context() as mp:
        for console in (_app.console, _app.err_console):
            mp.setattr(console, "_width", columns)
            mp.setattr(console, "no_color", True)
        env = {"COLUMNS": str(columns), "NO_COLOR": "1"}
        r = CliRunner().invoke(app, list(args), env=env)
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return subprocess.CompletedProcess(list(args), r.exit_code, r.stdout, r.stderr)
