"""Labs 12 (reading real NIM benchmarks: holds a row back) and 13 (from one GPU to a fleet: shows
the fleet effects): each runs headless and checks its exercises.

Measured values are quoted from infphys/catalog/data/nim_llama3_serving.csv in the comments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from labrun import LABS, Picked, check_exercises, check_marimo_and_header, lab_fixture, run_lab

from infphys.exercises import exercises_for

LAB12 = LABS / "12_nim_benchmarks.py"
LAB13 = LABS / "13_fleet.py"
lab12 = lab_fixture(LAB12)
lab13 = lab_fixture(LAB13)
pytestmark = pytest.mark.usefixtures("isolated_lab")  # for the runs a test makes itself


@pytest.mark.parametrize("lab", [LAB12, LAB13], ids=lambda p: p.stem)
def test_marimo_check_and_header(lab: Path) -> None:
    check_marimo_and_header(lab)


# --- lab 12 -----------------------------------------------------------------------------------


def test_the_held_back_row_is_not_drawn(lab12: dict[str, Any]) -> None:
    shown, curves = lab12["shown_curves"], lab12["curves"]
    assert len(shown) == len(curves) - 1
    held = lab12["held_row"]
    # Default: H100 × 2, 100 clients, 200 → 200: "…H100_80GB_HBM3,2,fp16,100,200,200,…" ITL
    # 10.4335 ms, 9,157.412 tokens/s.
    assert (held["gpu_key"], held["tp"], held["concurrency"]) == ("h100-sxm", 2, 100)
    assert held["itl_ms_avg"] == pytest.approx(10.4335)
    revealed = lab12["revealed"]
    assert revealed.loc["output_tokens_per_s", "measured"] == pytest.approx(9157.412)
    # Both predictions are in the right order of magnitude for the ITL.
    for col in ("simulator", "queueing model"):
        assert 0.5 < revealed.loc["itl_ms_avg", col] / 10.4335 < 2.0


def test_lab12_exercises_pass_right_and_fail_wrong(lab12: dict[str, Any]) -> None:
    check_exercises(12, lab12)
    ctx = lab12["exercise_context"]
    # q1 at 50 clients on H100: 6070.76 / 2 / 4394.32 = 0.691 per GPU.
    assert ctx["concurrency"] == 50
    assert exercises_for(12)[0].check("0.69", **ctx).ok
    # q2 at the defaults (100 users, 1 s, 50 ms, 1.80 / 2.50 USD): 0.106 USD per million.
    assert exercises_for(12)[1].check("0.106", **ctx).ok
    # q3: within 25 % of the measured 10.4335 ms.
    assert exercises_for(12)[2].check("12.5", **ctx).ok
    assert not exercises_for(12)[2].check("14", **ctx).ok


def test_more_users_and_a_tighter_budget_change_the_plan() -> None:
    out = run_lab(
        LAB12, users=1000, ttft_budget_ms=1000.0, itl_budget_ms=20.0, a100_usd=1.8, h100_usd=2.5
    )
    plan = out["plan"].set_index("config")
    # ITL p95 ≤ 20 ms: H100 × 1 reaches 19.05 ms at 150 clients and 27.7 ms at 200 (cap 150);
    # 1,000 users need ceil(1000 / 150) = 7 replicas.
    assert plan.loc["H100 SXM × 1 · FP16", "replicas"] == 7
    assert out["exercise_context"]["users"] == 1000


# --- lab 13 -----------------------------------------------------------------------------------


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


def test_lab13_exercises_pass_right_and_fail_wrong(lab13: dict[str, Any]) -> None:
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
    d = run_lab(LAB13, answers=Picked({"q3": "least-outstanding", "q4": "2"}))
    v = d["verdicts"]
    assert list(v) == ["q1", "q2", "q3", "q4"]
    assert v["q3"].ok and v["q4"].status == "wrong" and v["q1"].status == "missing"
    assert d["book"].passed == 1
