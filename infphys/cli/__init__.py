"""The ``infphys`` command line: one module per group of commands, all on one typer app.

Each command module registers its commands on :data:`infphys.cli._app.app` when imported.
"""

from __future__ import annotations

from infphys.cli import physics as _physics  # noqa: F401
from infphys.cli._app import app

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the ``infphys`` console script."""
    app()
