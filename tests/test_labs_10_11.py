"""Lab 10 with a longer timeout, and lab 11, run headless (``app.run()``) with small settings,
against the embedded simulator (``tests/labsim.py`` runs them): a timeout that outlasts the queue
fails next to nothing; the SLO cap and the GPUs it implies, and what a changed knob moves.

Lab 10 starts its own real-time simulators, slowed (``labsim.TIME_SCALE``), with every duration
of the test (timeouts, SLOs) scaled alike; its run with the short timeout is ``test_lab10.py``.
Headless times are printed at the end of the module (``-s``).
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from labrun import check_exercises
from labsim import (
    LAB10,
    lab_fixture,
    offline_labs,
    require_the_load_delivered,
    run_lab,
    slowed_lab_fixture,
)

pytestmark = pytest.mark.slow

_offline = offline_labs()


# --- lab 10, a longer timeout -----------------------------------------------------------------

# Only the 32-client level is read (and 2 clients, the bare service time, which the lab needs);
# half the open-loop work, which nothing here reads.
LAB10_PATIENT = {
    **LAB10,
    "client_levels": [2, 32],
    "open_fractions": [0.5],
    "open_requests": 20,
    "timeout_s": 2.0,
    "burst_users": 30,
}


lab10 = slowed_lab_fixture(10, "timeout 2 s", LAB10_PATIENT, "unbounded_summary")


def test_lab10_a_longer_timeout_fails_less(lab10: dict[str, Any]) -> None:
    require_the_load_delivered(lab10)
    # 32 clients on 4 slots wait about 32 / 4 = 8 service times (Little's Law, the lab's own
    # prediction): ~0.8 s of the simulated A100, between the two timeouts. Against 0.25 s
    # (test_lab10.py) over 30 % of them time out; against 2 s, next to none.
    t = lab10["theory_table"].set_index("concurrency")
    predicted_s = t.loc[32, "predicted_mean_ms"] / 1e3 / lab10["time_scale"]
    assert LAB10["timeout_s"] < predicted_s < LAB10_PATIENT["timeout_s"]
    s = lab10["unbounded_summary"].set_index("concurrency")
    assert s.loc[32, "error_rate"] < 0.1


# --- lab 11 -----------------------------------------------------------------------------------

LAB11 = {
    "gpu": "h100-sxm",
    "model": "llama-3.1-8b",
    "tp": 1,
    "prompt_tokens": 1000,
    "max_tokens": 128,
    "slo_p95_s": 5.0,
    "users": 1000,
    "concurrency_levels": [1, 2, 4, 8, 16, 32, 64, 128, 256],
    "seed": 0,
    "max_num_seqs": 64,
    "gpu_memory_utilization": 0.95,
    "max_num_batched_tokens": 2048,
    "kv_precision": "fp8",
}


lab11 = lab_fixture(11, "9 levels × 6 settings", LAB11)


def test_lab11_capacity_plan(lab11: dict[str, Any]) -> None:
    plan = lab11["plan_base"]
    assert plan.cap in LAB11["concurrency_levels"]
    assert plan.cap_latency_s <= 5.0
    assert plan.gpus == math.ceil(1000 / plan.cap)
    base = lab11["knobs"].sweeps["baseline (defaults)"].summary().set_index("concurrency")
    # The next level up misses the SLO (or the sweep ended).
    levels = LAB11["concurrency_levels"]
    nxt = levels.index(plan.cap) + 1
    assert nxt == len(levels) or base.loc[levels[nxt], "e2e_p95_s"] > 5.0


def test_lab11_knobs_move_the_limits(lab11: dict[str, Any]) -> None:
    t = lab11["knobs"].table.set_index("variant")
    base = t.loc["baseline (defaults)"]
    assert t.loc["kv_precision = fp8", "kv_capacity_tokens"] == pytest.approx(
        2 * base["kv_capacity_tokens"], rel=1e-3
    )
    assert t.loc["max_num_seqs = 64", "max_running_simulated"] == 64
    assert t.loc["gpu_memory_utilization = 0.95", "kv_capacity_tokens"] > base["kv_capacity_tokens"]
    theory = lab11["theory_table"].set_index("quantity")
    row = theory.loc["max_num_seqs = 64: requests running at once"]
    assert row["theory"] == 64 and row["error_%"] == 0


def test_lab11_exercises(lab11: dict[str, Any]) -> None:
    check_exercises(11, lab11)


def test_lab11_a_looser_slo_and_more_users(lab11: dict[str, Any]) -> None:
    looser = run_lab(11, "SLO 10 s, 4,000 users", {**LAB11, "slo_p95_s": 10.0, "users": 4000})
    before, after = lab11["plan_base"], looser["plan_base"]
    assert after.cap >= before.cap
    assert after.gpus == math.ceil(4000 / after.cap)
