"""Labs 10 and 11 run headless (``app.run()``) with small settings, against the embedded
simulator (``tests/labsim.py`` runs them): timeouts rising with clients, admission control's
503s, retry policies, the SLO cap and the GPUs it implies, and what a changed knob moves.

Lab 10 starts its own real-time simulators, slowed (``labsim.TIME_SCALE``), with every
duration of the test (timeouts, SLOs) scaled alike. Headless times are printed at the end of
the module (``-s``).
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from labrun import check_exercises
from labsim import (
    SMALL_A100,
    lab_fixture,
    offline_labs,
    require_the_load_delivered,
    run_lab,
    slowed,
    slowed_lab_fixture,
)

pytestmark = pytest.mark.slow

_offline = offline_labs()


# --- lab 10 -----------------------------------------------------------------------------------

# Timeout and SLOs in simulated seconds, scaled to the wall clock by ``slowed``.
LAB10 = {
    **SMALL_A100,
    "client_levels": [2, 4, 16, 32],
    "requests_per_level": 32,
    "timeout_s": 0.25,
    "max_queue": 4,
    "open_fractions": [0.5, 2.0],
    "open_requests": 40,
    "ttft_slo_s": 0.1,
    "tpot_slo_s": 0.05,
    "burst_factor": 3.0,
    "burst_users": 60,
}


lab10 = slowed_lab_fixture(10, "max_num_seqs 4, timeout 0.25 s", LAB10, "unbounded_summary")


def test_lab10_timeouts_rise_with_clients(lab10: dict[str, Any]) -> None:
    require_the_load_delivered(lab10)
    s = lab10["unbounded_summary"].set_index("concurrency")
    assert s.loc[2, "error_rate"] == 0
    # 32 clients on 4 slots wait ~8 service times (~0.8 s) against a 0.25 s timeout.
    assert s.loc[32, "error_rate"] > 0.3
    errors = lab10["unbounded_frame"].query("status == 'failed'")["error_class"]
    assert set(errors) <= {"total_timeout", "read_timeout"}
    t = lab10["theory_table"].set_index("concurrency")
    assert abs(t.loc[2, "error_%"]) < 30  # below the batch limit: the bare service time


def test_lab10_admission_control_sheds_with_503(lab10: dict[str, Any]) -> None:
    require_the_load_delivered(lab10)
    bounded = lab10["open_bounded"]
    top = bounded[bounded["level"] == bounded["level"].max()]  # 2 × capacity
    failed = top[top["status"] == "failed"]
    refused = failed[failed["http_status"] == 503]
    # Admission control refuses with 503 (on a busy machine, where the real-time simulator
    # falls behind the wall clock, a few accepted requests may still time out).
    assert len(refused) > 0 and len(refused) >= 0.75 * len(failed)
    # Refused requests fail fast (well inside one 98 ms service time); accepted ones finish
    # within the timeout.
    assert (refused["e2e_s"] < 0.1 * lab10["time_scale"]).all()
    assert top[top["status"] == "ok"]["e2e_s"].max() < lab10["timeout_s"]
    # Half the capacity: nobody is refused, nobody times out.
    low = bounded[bounded["level"] == 0]
    assert (low["status"] == "ok").all()
    rate = lab10["goodput_unbounded"].index.max()
    good = lab10["goodput_bounded"].loc[rate, "goodput_per_s"]
    assert good >= lab10["goodput_unbounded"].loc[rate, "goodput_per_s"]
    unbounded_errors = lab10["open_unbounded"].query("status == 'failed'")["error_class"]
    assert set(unbounded_errors) <= {"total_timeout", "read_timeout"}


def test_lab10_retry_policies(lab10: dict[str, Any]) -> None:
    require_the_load_delivered(lab10)
    t = lab10["retry_table"].set_index("policy")
    assert t.loc["no retry", "amplification"] == 1.0
    assert t.loc["blind retries", "amplification"] > t.loc["backoff + jitter", "amplification"]
    assert t.loc["backoff + jitter", "success_rate"] >= t.loc["no retry", "success_rate"]
    assert t.loc["backoff + jitter", "success_rate"] >= t.loc["blind retries", "success_rate"]


def test_lab10_exercises(lab10: dict[str, Any]) -> None:
    check_exercises(10, lab10)


def test_lab10_a_longer_timeout_fails_less(lab10: dict[str, Any]) -> None:
    require_the_load_delivered(lab10)
    # Only the 32-client level is compared: the rerun keeps it (and 2 clients, the bare service
    # time) and drops the middle levels and half the open-loop work, which nothing here reads.
    small = {"client_levels": [2, 32], "open_fractions": [0.5], "open_requests": 20}
    longer = {**LAB10, **small, "timeout_s": 2.0, "burst_users": 30}
    patient = run_lab(10, "timeout 2 s", slowed(longer, lab10["time_scale"]))
    before = lab10["unbounded_summary"].set_index("concurrency").loc[32, "error_rate"]
    after = patient["unbounded_summary"].set_index("concurrency").loc[32, "error_rate"]
    assert after < before and after < 0.1


def test_lab10_says_so_when_every_request_timed_out() -> None:
    # A 1 ms timeout: no request of 64 + 8 tokens (98 ms on the simulated A100) can finish, so
    # there is no service time to read. The lab stops there with a callout, not a ValueError
    # about a NaN service time, and nothing after it runs.
    hopeless = {**LAB10, "client_levels": [2], "requests_per_level": 4, "timeout_s": 0.001}
    defs = run_lab(10, "timeout 1 ms", hopeless)
    assert defs["unbounded_summary"]["error_rate"].tolist() == [1.0]
    assert defs["service_s"] is None
    assert "capacity_req_per_s" not in defs


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
