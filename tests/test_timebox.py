"""The session plans in ``docs/instructors.md`` add up from the labs' own time estimates.

Each lab states its time once, at the top (``**Time: about N minutes.**``). The 90-minute plan
runs Labs 1–11 and the 60-minute plan a subset, each lab at its own estimate, plus a welcome and
a wrap-up; Labs 12 and 13 are optional homework in both.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LABS = sorted((ROOT / "labs").glob("[0-9][0-9]_*.py"))
GUIDE = (ROOT / "docs" / "instructors.md").read_text(encoding="utf-8")
TIME = re.compile(r"Time: about (\d+) minutes")
ENTRY = re.compile(r'\(\s*"([^"]+)",\s*(\d+),\s*"(lab\d\d|)"\s*\)')


def lab_minutes() -> dict[str, int]:
    """``{"lab01": 5, …}``: the one time estimate each lab file states."""
    out: dict[str, int] = {}
    for path in LABS:
        found = TIME.findall(path.read_text(encoding="utf-8"))
        assert len(found) == 1, f"{path.name}: {len(found)} time estimates"
        out[f"lab{path.name[:2]}"] = int(found[0])
    return out


def plan(name: str) -> list[tuple[str, int, str]]:
    """The ``{% set name = [...] %}`` list of (block, minutes, lab) in the instructor guide."""
    block = re.search(r"\{%\s*set " + name + r" = \[(.*?)\] %\}", GUIDE, re.S)
    assert block is not None, name
    return [(label, int(m), lab) for label, m, lab in ENTRY.findall(block.group(1))]


def test_every_lab_states_its_time() -> None:
    minutes = lab_minutes()
    assert sorted(minutes) == [f"lab{i:02d}" for i in range(1, 14)]


@pytest.mark.parametrize(
    ("name", "total", "homework"),
    [
        ("plan90", 90, {"lab12", "lab13"}),
        ("plan60", 60, {"lab02", "lab04", "lab06", "lab10", "lab12", "lab13"}),
    ],
)
def test_plan_is_the_labs_own_estimates(name: str, total: int, homework: set[str]) -> None:
    minutes = lab_minutes()
    rows = plan(name)
    in_plan = {lab for _, _, lab in rows if lab}
    assert in_plan == set(minutes) - homework
    for label, m, lab in rows:
        if lab:
            assert m == minutes[lab], f"{name}: {label} at {m} min, the lab says {minutes[lab]}"
    assert sum(m for _, m, _ in rows) == total


def test_plans_by_hand() -> None:
    # Worked from the labs' headers: 5 + 7 + 10 + 7 + 7 + 5 + 6 + 10 + 7 + 10 + 8 = 82 minutes
    # of labs 1–11, + 5 welcome + 3 wrap-up = 90; without labs 2, 4, 6, 10 (7 + 7 + 5 + 10 =
    # 29): 53 + 4 welcome + 3 wrap-up = 60.
    m = lab_minutes()
    assert sum(m[f"lab{i:02d}"] for i in range(1, 12)) == 82
    assert sum(m[k] for k in ("lab02", "lab04", "lab06", "lab10")) == 29
