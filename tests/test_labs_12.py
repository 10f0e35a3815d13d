"""Lab 12 (reading real NIM benchmarks): runs headless, holds a row back, checks its exercises.

Measured values are quoted from infphys/catalog/data/nim_llama3_serving.csv in the comments.
"""

from __future__ import annotations

from typing import Any

import pytest
from labrun import LABS, check_exercises, check_marimo_and_header, lab_fixture, run_lab

from infphys.exercises import exercises_for

LAB = LABS / "12_nim_benchmarks.py"
lab12 = lab_fixture(LAB)
pytestmark = pytest.mark.usefixtures("isolated_lab")  # for the runs a test makes itself


def test_marimo_check_and_header() -> None:
    check_marimo_and_header(LAB)


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


def test_exercises_pass_right_and_fail_wrong(lab12: dict[str, Any]) -> None:
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
        LAB, users=1000, ttft_budget_ms=1000.0, itl_budget_ms=20.0, a100_usd=1.8, h100_usd=2.5
    )
    plan = out["plan"].set_index("config")
    # ITL p95 ≤ 20 ms: H100 × 1 reaches 19.05 ms at 150 clients and 27.7 ms at 200 (cap 150);
    # 1,000 users need ceil(1000 / 150) = 7 replicas.
    assert plan.loc["H100 SXM × 1 · FP16", "replicas"] == 7
    assert out["exercise_context"]["users"] == 1000
