"""Linux processes as ``/proc`` shows them, for tests that check no child outlives a stop.

``/proc/<pid>/stat`` reads ``pid (comm) state ppid …``; the command name may hold spaces and
parentheses, so the fields are read after the last ``)``. A zombie (state ``Z``) has exited and
waits to be reaped: it counts as gone.
"""

from __future__ import annotations

from pathlib import Path


def stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, state letter) of a process, or None when there is none."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), fields[0]


def alive(pid: int) -> bool:
    """Whether ``pid`` is a process that has not exited (a zombie has)."""
    st = stat(pid)
    return st is not None and st[1] != "Z"


def _parents() -> dict[int, int]:
    out: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (st := stat(int(entry.name))) is not None:
            out[int(entry.name)] = st[0]
    return out


def children(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` now."""
    return {child for child, parent in _parents().items() if parent == pid}


def descendants(root: int) -> set[int]:
    """Children of ``root``, their children, and so on, now."""
    parents = _parents()
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found
