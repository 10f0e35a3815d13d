"""The root typer application and the helpers every command shares."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console

from infphys.cli._options import option_groups

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
T = TypeVar("T")


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one clear line to stderr and exit with ``code`` (2 for bad input)."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def warn(message: str) -> None:
    """Print one warning line to stderr (``warning: …`` in yellow); the command carries on."""
    err_console.print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)


def clean_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn ``ValueError`` (bad input, named argument) into one line on stderr and exit 2."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ValueError as exc:
            fail(str(exc))

    return wrapper


def command(
    name: str | None = None, **settings: Any
) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Register a function as the command ``name`` (default: the function's name) on :data:`app`.

    Every command is built the same way: its option groups expanded into options
    (:func:`~infphys.cli._options.option_groups`), a ``ValueError`` turned into one line on
    stderr and exit 2 (:func:`clean_errors`), then registered with ``settings`` (``epilog``, …)
    passed to ``app.command``. ``@command("sweep")`` gives the command ``infphys sweep``.
    """

    def register(func: Callable[..., R]) -> Callable[..., R]:
        built: Callable[..., R] = clean_errors(option_groups(func))
        app.command(name, **settings)(built)
        return built

    return register


def print_json(data: Any) -> None:
    """Print machine-readable output (plain JSON on stdout, no colour)."""
    sys.stdout.write(json.dumps(data, indent=2, default=_default) + "\n")


def _default(o: object) -> object:
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)


def check_option(
    option: str,
    value: float | None,
    *,
    at_least: float | None = None,
    above: float | None = None,
    at_most: float | None = None,
) -> None:
    """Reject a value no physical setting can have, naming the option (``ValueError``).

    None (an option not given) passes; NaN and infinity never do.

    >>> check_option("--users", 64, at_least=1)
    >>> check_option("--users", -1, at_least=1)
    Traceback (most recent call last):
    ValueError: --users must be at least 1 (got -1)
    >>> check_option("--gpu-hourly-usd", float("nan"), above=0)
    Traceback (most recent call last):
    ValueError: --gpu-hourly-usd must be a finite number (got nan)
    """
    if value is None:
        return
    if not math.isfinite(value):
        raise ValueError(f"{option} must be a finite number (got {value:g})")
    shown = f"{value:g}" if isinstance(value, float) else str(value)
    if at_least is not None and value < at_least:
        raise ValueError(f"{option} must be at least {at_least:g} (got {shown})")
    if above is not None and value <= above:
        raise ValueError(f"{option} must be more than {above:g} (got {shown})")
    if at_most is not None and value > at_most:
        raise ValueError(f"{option} must be at most {at_most:g} (got {shown})")


def parse_list(option: str, text: str, kind: Callable[[str], T]) -> list[T]:
    """Read a comma-separated option value into a list of ``kind`` (``int``, ``float``, ``str``).

    Spaces around items and empty items are ignored. A number must be finite and > 0 (every
    list option counts something: requests, tokens, MiB, requests/s); a string is kept as it is.
    Bad input raises ``ValueError`` naming ``option``.

    >>> parse_list("--concurrency", "1, 2,4", int)
    [1, 2, 4]
    >>> parse_list("--precisions", "bf16,fp8", str)
    ['bf16', 'fp8']
    >>> parse_list("--rate", "2,0", float)
    Traceback (most recent call last):
    ValueError: --rate: every value must be > 0 (got '0')
    """
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise ValueError(f"{option} must be a comma-separated list (got {text!r})")
    out: list[T] = []
    for item in items:
        try:
            value = kind(item)
        except ValueError:
            name = getattr(kind, "__name__", "value")
            raise ValueError(f"{option}: {item!r} is not a valid {name}") from None
        if isinstance(value, int | float) and not (math.isfinite(value) and value > 0):
            raise ValueError(f"{option}: every value must be > 0 (got {item!r})")
        out.append(value)
    return out
