"""Lab 10 runs headless (``app.run()``) with small settings, against the embedded simulator
(``tests/labsim.py`` runs it): timeouts rising with clients, admission control's 503s, retry
policies, the exercises, and the callout when every request timed out.

Lab 10 starts its own real-time simulators, slowed (``labsim.TIME_SCALE``), with every duration
of the test (timeouts, SLOs) scaled alike. Its run with a longer timeout is in
``test_labs_10_11.py``, so that the two run side by side. Headless times are printed at the end
of the module (``-s``).
"""

from __future__ import annotations

from typing import Any

import pytest
from labrun import check_exercises
from labsim import LAB10, offline_labs, require_the_load_delivered, run_lab, slowed_lab_fixture

pytestmark = pytest.mark.slow

_offline = offline_labs()


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


def test_lab10_says_so_when_every_request_timed_out() -> None:
    # A 1 ms timeout: no request of 64 + 8 tokens (98 ms on the simulated A100) can finish, so
    # there is no service time to read. The lab stops there with a callout, not a ValueError
    # about a NaN service time, and nothing after it runs.
    hopeless = {**LAB10, "client_levels": [2], "requests_per_level": 4, "timeout_s": 0.001}
    defs = run_lab(10, "timeout 1 ms", hopeless)
    assert defs["unbounded_summary"]["error_rate"].tolist() == [1.0]
    assert defs["service_s"] is None
    assert "capacity_req_per_s" not in defs
