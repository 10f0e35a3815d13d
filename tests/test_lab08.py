"""Lab 8 runs headless (``app.run()``) with small settings, against the embedded simulator
(``tests/labsim.py`` runs it): the knee and the cliff of a closed-loop sweep, Little's Law on the
learner's data, an open loop queueing near capacity, what a larger batch moves, the exercises.

Lab 8 times real-time simulators slowed ``labsim.TIME_SCALE`` times (its ``time_scale``), so that
a busy computer's delays stay small beside a simulated step; a run whose closed loop fell short
of its load, or whose simulator stalled, runs once more twice as slow; if that falls short too,
the tests of what the server did skip with the reason. The tests of the helpers that judge a run
(``short_of_load``, ``stalled``) are here too. Headless times are printed at the end (``-s``).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from labrun import check_exercises
from labsim import (
    SMALL_A100,
    offline_labs,
    require_the_load_delivered,
    run_lab,
    short_of_load,
    simulators_recorded,
    slowed,
    slowed_lab_fixture,
    stalled,
)

import infphys.sim
from infphys import stats
from infphys.sim import hosting
from infphys.sim._metrics import ServerStats

pytestmark = pytest.mark.slow

_offline = offline_labs()


def test_short_of_load_reads_the_closed_loop_below_the_batch_limit() -> None:
    summary = pd.DataFrame({"concurrency": [1, 2, 4, 8], "mean_in_flight": [0.95, 1.70, 3.61, 5.0]})
    # 4 slots: 0.95 ≥ 0.9 × 1 and 3.61 ≥ 0.9 × 4 are fine, 1.70 < 0.9 × 2 is not; 8 clients
    # queue for 4 slots, so their 5.0 in flight says nothing about the client.
    assert short_of_load(summary, 4) == "2 clients kept 1.70 in flight"
    assert short_of_load(summary, 1) is None
    assert slowed({"timeout_s": 0.25, "seed": 0}, 3) == {
        "timeout_s": 0.75,
        "seed": 0,
        "time_scale": 3,
    }


def test_stalled_reads_what_each_simulator_recorded() -> None:
    real = hosting.serve
    with simulators_recorded() as recorded:
        # The labs' own ways in, imported as a lab's import cell does, inside the run.
        from infphys.sim.server import serve

        with serve("a100-80gb-sxm", "llama-3.1-8b", log_lag=False):
            pass
        with infphys.sim.serve("a100-80gb-sxm", "llama-3.1-8b", log_lag=False):
            pass
    assert len(recorded) == 2 and stalled(recorded) is None  # idle: no step, no stall
    late = ServerStats(steps=100, rebases=2, stall_s_total=0.7, max_lag_s=0.4)
    assert stalled([recorded[0], late]) == "a simulator stalled 2× (0.70 s, worst step 400 ms late)"
    assert hosting.serve is real and infphys.sim.serve is real  # restored after the block


# --- lab 8 ------------------------------------------------------------------------------------

LAB08 = {
    **SMALL_A100,
    "concurrency_levels": [1, 2, 4, 8, 16],
    "rounds_per_level": 6,
    "rate_fractions": [0.4, 0.8],
    "open_requests": 60,
}


lab08 = slowed_lab_fixture(8, "max_num_seqs 4", LAB08, "closed_summary")


def test_lab08_knee_and_cliff(lab08: dict[str, Any]) -> None:
    require_the_load_delivered(lab08)
    s = lab08["closed_summary"].set_index("concurrency")
    # The server runs 4 at once: throughput levels off there, inside the sweep.
    assert lab08["knee_concurrency"] in (2, 4, 8)
    assert s.loc[16, "throughput_req_per_s"] < 1.5 * s.loc[4, "throughput_req_per_s"]
    # p95 grows with concurrency past the knee: 16 clients on 4 slots wait ~4 service times.
    assert s.loc[16, "e2e_p95_s"] > 2.5 * s.loc[1, "e2e_p95_s"]
    assert s["e2e_p95_s"].is_monotonic_increasing or s.loc[16, "e2e_p95_s"] == s["e2e_p95_s"].max()
    assert (s["error_rate"] == 0).all()


def test_lab08_littles_law_leaves_only_the_edges(lab08: dict[str, Any]) -> None:
    require_the_load_delivered(lab08)
    t = lab08["little_table"].set_index("concurrency")
    f = stats.measured(lab08["closed_frame"])
    for c, g in f.groupby("concurrency"):
        # Over [a, b] = [first send, last send] nothing is in flight before a, every request
        # that ended counts its whole latency in both L·T and λW·T, and one still in flight at b
        # counts its b − sent in L·T alone. So (L − λW) / λW = Σ(b − sent) over those / Σ latency
        # over the ended ones, worked out here from the records, not by stats.littles_law.
        b = g["sent_s"].max()
        ended = g[g["end_s"] <= b]
        open_at_b = g[g["end_s"] > b]
        ended_latency_s = (ended["end_s"] - ended["sent_s"]).sum()
        edge = (b - open_at_b["sent_s"]).sum() / ended_latency_s
        assert t.loc[c, "error_%"] == pytest.approx(100 * edge, abs=0.1), c
        # A closed loop has one request per client in flight, so at most c − 1 are open at b
        # (the last sender's has run 0 s), each for less than its own latency, and each
        # client's first r − 1 ended inside: the edge is under (c − 1) · max latency / Σ latency,
        # about (c − 1) / (c (r − 1)) where latencies are alike (below the knee).
        assert 0 <= edge < (c - 1) * (g["end_s"] - g["sent_s"]).max() / ended_latency_s or c == 1
    assert t.loc[1, "error_%"] == pytest.approx(0, abs=0.1)  # one client: its last send is b


def test_lab08_open_loop_queues_near_capacity(lab08: dict[str, Any]) -> None:
    require_the_load_delivered(lab08)
    q = lab08["queue_table"]
    assert q["utilisation"].tolist() == pytest.approx([0.4, 0.8], abs=0.01)
    assert q["measured_mean_ms"].iloc[-1] > q["measured_mean_ms"].iloc[0]
    # M/M/4 (the simulated batch limit) is pessimistic for near-constant service times.
    assert lab08["queue_servers"] == 4
    assert (q["error_%"] < 10).all()


def test_lab08_exercises(lab08: dict[str, Any]) -> None:
    check_exercises(8, lab08)


def test_lab08_a_larger_batch_moves_the_knee(lab08: dict[str, Any]) -> None:
    require_the_load_delivered(lab08)
    more = {**LAB08, "max_num_seqs": 16, "open_requests": 40}
    bigger = run_lab(8, "max_num_seqs 16", slowed(more, lab08["time_scale"]))
    # Its own closed loop, up to 16 clients on 16 slots, must have kept them in flight too.
    require_the_load_delivered({**bigger, "too_busy": short_of_load(bigger["closed_summary"], 16)})
    # Four times the batch: a much higher plateau (the client's own pace caps it short of 4×
    # on two cores), and 16 clients no longer queue behind 4 slots (about 4 service times).
    assert bigger["capacity_req_per_s"] > 1.5 * lab08["capacity_req_per_s"]
    p95_16 = bigger["closed_summary"].set_index("concurrency").loc[16, "e2e_p95_s"]
    assert p95_16 < 0.6 * lab08["closed_summary"].set_index("concurrency").loc[16, "e2e_p95_s"]
    knee = bigger["knee_concurrency"]
    assert knee is None or knee > lab08["knee_concurrency"]
