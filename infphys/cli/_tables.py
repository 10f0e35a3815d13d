"""The two kinds of table the commands print, built in one place.

- :func:`column_table`: a titled table of rows, the title on the left, numbers right-aligned and
  the named text columns left-aligned (``infphys roofline``, ``copy-bw``, ``plan-fleet``,
  ``models``, …).
- :func:`quantity_table`: a headerless two-column table of "quantity, value" lines
  (``infphys kv``, ``cost``, ``simulate``).
- :func:`fmt`, :func:`fmt_ms`: a number as a cell, "—" where there is none.

Worked example: ``column_table("Copy bandwidth", ("size", "median per copy"))`` has two
right-aligned columns; ``quantity_table("KV cache", [("per token", "128 KiB")])`` prints one line
``per token   128 KiB`` under the title.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from typing import Any

from rich.table import Table

__all__ = ["column_table", "fmt", "fmt_ms", "quantity_table"]


def column_table(
    title: str,
    columns: Iterable[str],
    *,
    text: Collection[str] = (),
    no_wrap: bool = False,
) -> Table:
    """A table titled ``title`` (on the left) with ``columns``, rows still to add.

    The columns named in ``text`` are left-aligned, every other one (a number) right-aligned;
    ``no_wrap`` keeps each cell on one line. ``column_table("t", ("GPU", "memory"),
    text=("GPU",))`` gives "GPU" on the left and "memory" on the right.
    """
    t = Table(title=title, title_justify="left")
    for col in columns:
        t.add_column(col, justify="left" if col in text else "right", no_wrap=no_wrap)
    return t


def quantity_table(title: str, rows: Iterable[tuple[str, str]]) -> Table:
    """A headerless table of ``(quantity, value)`` rows: quantities in bold, values right-aligned.

    ``quantity_table("KV cache", [("per token", "128 KiB")])`` has one row.
    """
    t = Table(title=title, show_header=False, title_justify="left")
    t.add_column("quantity", style="bold")
    t.add_column("value", justify="right")
    for k, v in rows:
        t.add_row(k, v)
    return t


def fmt(v: Any, digits: int = 1, *, scale: float = 1.0) -> str:
    """A number as a table cell: ``v × scale`` with thousands separators and ``digits`` decimals.

    None and NaN give "—"; text that is not a number is shown as it is.
    ``fmt(1674.2, 0)`` is ``"1,674"``; an ITL of 0.0592 s in ms, ``fmt(0.0592, 1, scale=1e3)``,
    is ``"59.2"``.
    """
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "—" if v is None else str(v)
    return "—" if math.isnan(f) else f"{f * scale:,.{digits}f}"


def fmt_ms(v: Any) -> str:
    """Seconds as milliseconds: one decimal below 100 ms, whole ms above (``1,674``)."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "—"
    if math.isnan(f):
        return "—"
    return f"{f * 1e3:,.1f}" if abs(f) < 0.1 else f"{f * 1e3:,.0f}"
