"""The fleet chapter renders, and its prose carries the package's numbers (checked by hand).

Rendered with the site's Jinja environment (docs/hooks/infphys_site.py), charts stubbed out.
The page runs a few fleets on the simulator and a small plan at render time.
"""

from __future__ import annotations

import math
import re

import pytest
from pagerender import render

from infphys.physics import prefill_time


def _num(s: str) -> float:
    return float(s.replace(",", ""))


def test_measured_tp_gain_is_quoted_right() -> None:
    text = render("physics/fleet.md")
    # NIM rows (nim_llama3_serving.csv), Llama-3-8B FP16 on H100, 200 → 200, 100 clients:
    # TP1 6,549.965 tokens/s, TP2 9,157.412: 9,157.412 / 6,549.965 = 1.398 → "1.40×".
    m = re.search(r"one H100 made \*\*([\d,]+)\*\* output tokens/s and a TP2 pair \*\*([\d,]+)\*\*"
                  r": the second GPU bought \*\*([\d.]+)×\*\*", text)  # fmt: skip
    assert m, "the TP sentence is gone from fleet.md"
    assert (_num(m[1]), _num(m[2]), _num(m[3])) == (6550, 9157, 1.40)
    # At 200 clients: 2 × 6,549.965 = 13,099.9 against TP2's 11,364.5: 1.15×.
    assert "**13,100** tokens/s against TP2's **11,365** at 200 (1.15×)" in text


def test_prefill_pool_problem_rounds_up() -> None:
    text = render("physics/fleet.md")
    m = re.search(r"the pool needs 20 × [\d.]+ ms = ([\d.]+) GPU-seconds .*?\*\*(\d+)\*\* replicas",
                  text)  # fmt: skip
    assert m, "worked problem 2 is gone from fleet.md"
    # 20/s × the H200's prefill of 4,000 tokens (about 120 ms) = 2.4 s of prefill per second.
    need = 20 * prefill_time("h200-sxm", "llama-3.1-8b", 4000).total_s
    assert _num(m[1]) == pytest.approx(need, abs=0.01)
    assert int(m[2]) == math.ceil(need) == 3


def test_disaggregation_and_router_claims_hold() -> None:
    text = render("physics/fleet.md")
    m = re.search(r"the p95 ITL fell from ([\d.,]+) ms to ([\d.,]+) ms at equal GPUs", text)
    assert m and _num(m[2]) < 0.2 * _num(m[1])
    m = re.search(r"least-outstanding cut the p95 TTFT from ([\d.,]+) ms \(round-robin\) to "
                  r"([\d.,]+) ms", text)  # fmt: skip
    assert m and _num(m[2]) < _num(m[1])
    # Worked problem 3 by hand: 50/s × 4 s = 200 in flight, ⌈200 / 64⌉ = 4 replicas.
    assert "⌈200 / 64⌉ = **4**" in text
    assert "the planner simulated" in text and "answered: **" in text
