"""The browser modules' hold on the CPU (``tests/cputurn.py``): a lab run waits while any
browser module holds its share of the run's lock file, and not at all when none does."""

from __future__ import annotations

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
    second.give_back()
    # Nobody holds it: the lab goes on, long before its limit.
    assert wait_for_the_browser(path, limit_s=600) < 600
