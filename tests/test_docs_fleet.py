"""The fleet chapter renders, and its prose carries the package's numbers (checked by hand).

Rendered with the site's Jinja environment (docs/hooks/infphys_site.py), charts stubbed out.
The page runs a few fleets on the simulator and a small plan at render time.
"""

from __future__ import annotations

import math

import pytest
from pagerender import quoted, render

from infphys.physics import prefill_time


def test_measured_tp_gain_is_quoted_right() -> None:
    text = render("physics/fleet.md")
    # NIM rows (nim_llama3_serving.csv), Llama-3-8B FP16 on H100, 200 → 200, 100 clients:
    # TP1 6,549.965 tokens/s, TP2 9,157.412: 9,157.412 / 6,549.965 = 1.398 → "1.40×".
    tp = quoted(
        "physics/fleet.md",
        r"one H100 made \*\*([\d,]+)\*\* output tokens/s and a TP2 pair \*\*([\d,]+)\*\*: "
        r"the second GPU bought \*\*([\d.]+)×\*\*",
    )
    assert tp == [6550, 9157, 1.40]
    # At 200 clients: 2 × 6,549.965 = 13,099.9 against TP2's 11,364.5: 1.15×.
    assert "**13,100** tokens/s against TP2's **11,365** at 200 (1.15×)" in text


def test_prefill_pool_problem_rounds_up() -> None:
    busy_s, replicas = quoted(
        "physics/fleet.md",
        r"the pool needs 20 × [\d.]+ ms = ([\d.]+) GPU-seconds .*?\*\*(\d+)\*\* replicas",
    )
    # 20/s × the H200's prefill of 4,000 tokens (about 120 ms) = 2.4 s of prefill per second.
    need = 20 * prefill_time("h200-sxm", "llama-3.1-8b", 4000).total_s
    assert busy_s == pytest.approx(need, abs=0.01)
    assert replicas == math.ceil(need) == 3


def test_disaggregation_and_router_claims_hold() -> None:
    text = render("physics/fleet.md")
    colocated, split = quoted(
        "physics/fleet.md", r"the p95 ITL fell from ([\d.,]+) ms to ([\d.,]+) ms at equal GPUs"
    )
    assert split < 0.2 * colocated
    round_robin, least_outstanding = quoted(
        "physics/fleet.md",
        r"least-outstanding cut the p95 TTFT from ([\d.,]+) ms \(round-robin\) to ([\d.,]+) ms",
    )
    assert least_outstanding < round_robin
    # Worked problem 3 by hand: 50/s × 4 s = 200 in flight, ⌈200 / 64⌉ = 4 replicas.
    assert "⌈200 / 64⌉ = **4**" in text
    assert "the planner simulated" in text and "answered: **" in text
