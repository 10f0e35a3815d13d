"""Lab 13 (from one GPU to a fleet): runs headless, shows the fleet effects, checks its exercises.

Measured values are quoted from infphys/catalog/data/nim_llama3_serving.csv in the comments.
"""

from __future__ import annotations

from typing import Any

import pytest
from labrun import LABS, Picked, check_exercises, check_marimo_and_header, lab_fixture, run_lab

from infphys.exercises import exercises_for

LAB = LABS / "13_fleet.py"
lab13 = lab_fixture(LAB)
pytestmark = pytest.mark.usefixtures("isolated_lab")  # for the runs a test makes itself


def test_marimo_check_and_header() -> None:
    check_marimo_and_header(LAB)


def test_the_fleet_effects_show(lab13: dict[str, Any]) -> None:
    # Measured (NIM, Llama-3-8B FP16 on H100, 200 → 200, 100 clients): 6,550 tokens/s on one
    # GPU (6,549.965), 9,157 on two: the second GPU as TP bought 1.40×, 0.70× per GPU.
    row = lab13["tp_measured"].set_index("concurrency").loc[100]
    assert row["speedup"] == pytest.approx(9157.412 / 6549.965, rel=0.01)
    # Routers, same arrivals: joining the shortest queue beats taking turns at the tail.
    r = lab13["router_table"].set_index("router")["ttft_p95_s"]
    assert r["least-outstanding"] < 0.5 * r["round-robin"]
    # Two H200s, 4,000-token prompts and 16-token answers at 7/s: colocated, a decoder's gap
    # includes a prefill step (~120 ms); split, the decode replica's steps hold no prefill
    # (one step, ~7 ms).
    s = lab13["split_table"].set_index("prefill_replicas")
    assert s.loc[1, "itl_p95_s"] < 0.015 < 0.05 < s.loc[0, "itl_p95_s"]
    assert s.loc[1, "ttft_p95_s"] > s.loc[0, "ttft_p95_s"]  # the price: one GPU prefills
    # The planner answered for the default 32 users.
    assert lab13["plan"].feasible


def test_exercises_pass_right_and_fail_wrong(lab13: dict[str, Any]) -> None:
    check_exercises(13, lab13)
    ctx = lab13["exercise_context"]
    q1, q2, q3, q4 = exercises_for(13)
    assert q1.check("1.40", **ctx).ok  # 9,157.412 / 6,549.965
    # q2 by hand: L = λW / replicas.
    assert q2.check(f"{ctx['requests_per_s'] * ctx['e2e_mean_s'] / ctx['replicas']:.3f}", **ctx).ok
    assert q3.check("least-outstanding", **ctx).ok
    # q4: 7/s × about 120 ms = 0.84 s of prefill per second: one replica.
    assert ctx["rate_per_s"] == 7.0 and 110 < ctx["prefill_ms"] < 130
    assert q4.check("1", **ctx).ok and not q4.check("2", **ctx).ok


def test_prefill_replicas_by_hand() -> None:
    (q4,) = [e for e in exercises_for(13) if e.id == "lab13.q4"]
    # 20/s × 120 ms = 2.4 s of prefill per second: 3 replicas (2 would run 120 % busy).
    assert q4.expected(rate_per_s=20.0, prefill_ms=120.0) == 3
    assert q4.expected(rate_per_s=5.0, prefill_ms=200.0) == 1


def test_answer_form_checks_the_learners_answers() -> None:
    # q3: joining the shortest queue wins (least-outstanding, as above); q4 at 7/s × ~120 ms of
    # prefill is 0.84 s per second: one prefill replica, so 2 is wrong.
    d = run_lab(LAB, answers=Picked({"q3": "least-outstanding", "q4": "2"}))
    v = d["verdicts"]
    assert list(v) == ["q1", "q2", "q3", "q4"]
    assert v["q3"].ok and v["q4"].status == "wrong" and v["q1"].status == "missing"
    assert d["book"].passed == 1
