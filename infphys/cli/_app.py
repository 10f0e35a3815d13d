"""The root typer application and the helpers every command shares."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console

app = typer.Typer(
    name="infphys",
    help="Inference physics: calculators, benchmarks and a simulated serving engine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

console = Console()
err_console = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one clear line to stderr and exit with ``code`` (2 for bad input)."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def clean_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn ``ValueError`` (bad input, named argument) into one line on stderr and exit 2."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ValueError as exc:
            fail(str(exc))

    return wrapper


def print_json(data: Any) -> None:
    """Print machine-readable output (plain JSON on stdout, no colour)."""
    sys.stdout.write(json.dumps(data, indent=2, default=_default) + "\n")


def _default(o: object) -> object:
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)
