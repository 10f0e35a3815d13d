"""The ``infphys`` command line: one module per group of commands, all on one typer app.

Each command module registers its commands on :data:`infphys.cli._app.app` when imported.
"""

from __future__ import annotations

from infphys.cli import gpu as _gpu  # noqa: F401
from infphys.cli import grade as _grade  # noqa: F401
from infphys.cli import labs as _labs  # noqa: F401
from infphys.cli import measure as _measure  # noqa: F401
from infphys.cli import physics as _physics  # noqa: F401
from infphys.cli import plan as _plan  # noqa: F401
from infphys.cli import sim as _sim  # noqa: F401
from infphys.cli._app import app

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the ``infphys`` console script."""
    app()
