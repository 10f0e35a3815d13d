"""The one workload spec: the Poisson generator, seeds, bounds, and both drivers taking it."""

from __future__ import annotations

import itertools
import random

import pytest

from infphys import measure, sim
from infphys.measure import Level, StubConfig, StubServer, run_levels
from infphys.sim import EngineConfig, simulate
from infphys.workload import Workload, arrival_offsets_s, poisson_arrivals_s


def test_poisson_mean_gap_within_five_standard_errors() -> None:
    # λ = 10/s: gaps are exponential with mean 1/λ = 0.1 s and standard deviation 0.1 s, so the
    # mean of N = 10,000 gaps has standard error 0.1 / sqrt(10,000) = 0.001 s; five standard
    # errors allow [0.095, 0.105].
    n = 10_000
    t = list(itertools.islice(poisson_arrivals_s(10.0, random.Random(3)), n + 1))
    assert t[0] == 0.0
    gaps = [b - a for a, b in itertools.pairwise(t)]
    assert all(g >= 0 for g in gaps)
    assert 0.095 <= sum(gaps) / n <= 0.105


def test_poisson_schedule_is_reproducible_from_the_seed() -> None:
    a = Workload.open(5.0, 200, seed=11).arrival_times_s()
    b = Workload.open(5.0, 200, seed=11).arrival_times_s()
    c = Workload.open(5.0, 200, seed=12).arrival_times_s()
    assert a == b and a != c
    # The workload's schedule is the generator's, on the workload's own seeded stream.
    own = list(itertools.islice(poisson_arrivals_s(5.0, random.Random("11:arrivals")), 200))
    assert a == own
    # A caller's stream (the load generator passes the run's Random(seed)) gives its schedule.
    w = Workload.open(5.0, 3)
    assert list(w.schedule_s(random.Random(7))) == list(
        itertools.islice(poisson_arrivals_s(5.0, random.Random(7)), 3)
    )


def test_constant_and_offline_schedules() -> None:
    assert list(itertools.islice(arrival_offsets_s(4, "constant", random.Random(0)), 3)) == [
        0.0,
        0.25,
        0.5,
    ]
    assert Workload.offline(3).arrival_times_s() == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="rate_per_s"):
        next(poisson_arrivals_s(0.0, random.Random(0)))


def test_one_type_under_three_names() -> None:
    assert Level is Workload and sim.Workload is Workload and measure.Level is Workload


def test_bad_input_names_the_argument() -> None:
    with pytest.raises(ValueError, match="duration_s"):
        Workload.closed(1, 1, duration_s=0)
    with pytest.raises(ValueError, match="labels"):
        Workload.closed(1, 1, labels=[1])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_tokens_max"):
        Workload.closed(1, 1, max_tokens=10, max_tokens_max=5)


def test_duration_bounds_the_simulated_sends() -> None:
    # Constant gaps of 0.1 s: sends at 0.0, 0.1, …, 4.9 s fall before 5 s, the one at 5.0 s
    # does not, so 50 of the 1,000 requests are sent.
    cfg = EngineConfig.build("h200", "llama-3.1-8b")
    w = Workload.open(10, 1000, arrival="constant", duration_s=5.0, prompt_tokens=64, max_tokens=4)
    res = simulate(cfg, w, keep_chunk_times=False, timeseries=False)
    assert len(res.records) == 50
    assert max(r.sent_s for r in res.records) < 5.0
    # A closed loop stops sending at the bound too: one client, each request well over 1 ms.
    closed = Workload.closed(1, 1000, duration_s=0.5, prompt_tokens=64, max_tokens=16)
    res = simulate(cfg, closed, keep_chunk_times=False, timeseries=False)
    assert 1 <= len(res.records) < 1000
    assert max(r.sent_s for r in res.records) < 0.5


def test_load_generator_sends_an_offline_level_and_rejects_simulator_only_settings() -> None:
    with StubServer(StubConfig(tokens=2)) as server:
        result = measure.run_sync(
            run_levels(server.target(), [Workload.offline(4, max_tokens=2)], max_in_flight=2)
        )
        assert [r.status for r in result.records] == ["ok"] * 4
        assert {r.labels["mode"] for r in result.records} == {"offline"}
        assert all(r.labels["scheduled_s"] >= 0 for r in result.records)
        jitter = Workload.closed(1, 2, client_jitter_s=0.001)
        with pytest.raises(ValueError, match=r"levels\[1\].*client_jitter_s"):
            measure.run_sync(run_levels(server.target(), [Workload.closed(1, 1), jitter]))
        ranged = Workload.closed(1, 2, max_tokens=2, max_tokens_max=4)
        with pytest.raises(ValueError, match=r"levels\[0\].*prompts=None"):
            measure.run_sync(run_levels(server.target(), [ranged], prompts=["a", "b"]))


def test_load_generator_replays_a_trace_with_its_sizes() -> None:
    # Sends scheduled at the trace's offsets from the level's start (gaps 0.05 s and 0.10 s),
    # each asking its own prompt size and max_tokens; the stub answers min(8, max_tokens).
    trace = Workload.trace([10.0, 10.05, 10.15], [(8, 2), (16, 3), (4, 1)])
    with StubServer(StubConfig(tokens=8)) as server:
        result = measure.run_sync(run_levels(server.target(), [trace]))
    recs = sorted(result.records, key=lambda r: r.request_id)
    assert [r.status for r in recs] == ["ok"] * 3
    sched = [r.labels["scheduled_s"] for r in recs]
    assert sched[1] - sched[0] == pytest.approx(0.05, abs=1e-9)
    assert sched[2] - sched[1] == pytest.approx(0.10, abs=1e-9)
    assert [r.labels["prompt_tokens_asked"] for r in recs] == [8, 16, 4]
    assert [r.labels["max_tokens"] for r in recs] == [2, 3, 1]
    assert [r.completion_tokens for r in recs] == [2, 3, 1]
    assert {r.labels["mode"] for r in recs} == {"trace"}
