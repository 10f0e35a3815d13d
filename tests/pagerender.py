"""A docs page as the site renders it, for tests of the numbers in its prose.

:func:`render` runs a page of ``docs/`` through the site's own Jinja environment
(``docs/hooks/infphys_site.py``) with every chart stubbed out (no simulator runs for a chart),
and collapses whitespace so that a sentence wrapped over two lines is found by one regex.
Example: ``render("physics/batching.md")`` holds "⌊410,384 / 1,024⌋ = **400** sequences".
"""

from __future__ import annotations

import importlib.util
import re
from functools import cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


@cache
def _environment() -> Any:
    spec = importlib.util.spec_from_file_location(
        "infphys_site_hook", REPO / "docs/hooks/infphys_site.py"
    )
    assert spec is not None and spec.loader is not None
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    return hook._environment()


@cache
def render(page: str) -> str:
    """``docs/<page>`` as Markdown after the Jinja pass, charts left out, whitespace collapsed."""
    text = (REPO / "docs" / page).read_text(encoding="utf-8")
    out = _environment().from_string(text).render(chart=lambda *a, **k: "", page=None, config=None)
    return re.sub(r"\s+", " ", out)


def number(text: str) -> float:
    """A number as the prose writes it: ``"6,549.965"`` → 6549.965 (thousands commas dropped)."""
    return float(text.replace(",", ""))


def quoted(page: str, pattern: str) -> list[float]:
    r"""The numbers that the first sentence of ``docs/<page>`` (rendered) matching ``pattern``
    quotes: the regex's groups, read by :func:`number`. Fails, naming the page and the
    pattern, when no sentence matches (reworded, or a number typed in that no longer fits).

    Example: ``quoted("physics/batching.md", r"⌊([\d,]+) / ([\d,]+)⌋")`` is
    ``[410384.0, 1024.0]``.
    """
    m = re.search(pattern, render(page))
    assert m, f"docs/{page}: no sentence matches {pattern!r}"
    return [number(g) for g in m.groups()]
