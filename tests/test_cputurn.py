"""The browser modules' hold on the CPU (``tests/cputurn.py``): a lab run waits while any
browser module holds its share of the run's lock file, and not at all when none does."""

from __future__ import annotations

import fcntl
from pathlib import Path

from cputurn import Turn, wait_for_the_browser


def test_a_lab_waits_while_a_browser_module_holds_its_share(tmp_path: Path) -> None:
    path = tmp_path / "turn.lock"
    assert wait_for_the_browser(path) == 0.0  # no browser module has started
    first, second = Turn(path), Turn(path)
    first.take()
    first.take()  # taking it twice is taking it once
    second.take()  # two browser modules side by side share it
    assert first.held and second.held
    # Held: the lab gives up waiting only at its limit (a lower bound, safe on a busy machine).
    assert wait_for_the_browser(path, limit_s=0.3) >= 0.3
    first.give_back()
    assert not first.held
    assert wait_for_the_browser(path, limit_s=0.3) >= 0.3  # the other module still runs
    assert path.exists()  # the first to give its share back leaves the file to the other
    second.give_back()
    assert not path.exists()  # the last one removes it
    # Nobody holds it: the lab goes on at once.
    assert wait_for_the_browser(path, limit_s=600) == 0.0
    # A lab that opened the file while it was held goes on once the last share is given back.
    first.take()
    with open(path) as waiting:
        first.give_back()
        fcntl.flock(waiting, fcntl.LOCK_EX | fcntl.LOCK_NB)  # would raise if still held
