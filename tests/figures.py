"""Reading a plotly figure in a test: traces by name, not by their position in ``fig.data``."""

from __future__ import annotations

from typing import Any


def traces(fig: Any, name: str) -> list[Any]:
    """The figure's traces called ``name``, in drawing order (one per dropdown view, say)."""
    found = [t for t in fig.data if t.name == name]
    assert found, f"no trace named {name!r} (names: {sorted({str(t.name) for t in fig.data})})"
    return found


def trace(fig: Any, name: str) -> Any:
    """The first trace called ``name`` (the one the figure shows first)."""
    return traces(fig, name)[0]
