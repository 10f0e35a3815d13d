"""Queueing and cost against textbook values worked by hand."""

from __future__ import annotations

import math

import pytest

from infphys.physics import cost, queueing


def test_littles_law_three_ways() -> None:
    # 64 users, each request 3.2 s → 20 requests/s; and back.
    assert queueing.littles_law_throughput_per_s(64, 3.2) == pytest.approx(20)
    assert queueing.littles_law_in_flight(20, 3.2) == pytest.approx(64)
    assert queueing.littles_law_latency_s(64, 20) == pytest.approx(3.2)


def test_mm1_by_hand() -> None:
    q = queueing.mm1(0.9, 1.0)
    assert q.utilization == pytest.approx(0.9)
    assert q.mean_response_s == pytest.approx(10.0)  # 1/(1 − 0.9)
    assert q.mean_wait_s == pytest.approx(9.0)  # ρ/(μ − λ)
    assert q.mean_in_system == pytest.approx(9.0)  # ρ/(1 − ρ)
    # Response time is exponential with rate 0.1: p95 = ln(20)/0.1 = 29.96 s
    assert q.response_percentile_s(0.95) == pytest.approx(math.log(20) / 0.1)


def test_erlang_c_by_hand() -> None:
    # c = 2, a = 1.8: P0 = 1/(1 + 1.8 + 1.62/0.1) = 1/19; C = 16.2/19 = 0.85263
    assert queueing.erlang_c(2, 1.8) == pytest.approx(16.2 / 19)
    # c = 1 reduces to ρ
    assert queueing.erlang_c(1, 0.7) == pytest.approx(0.7)


def test_mmc_by_hand() -> None:
    q = queueing.mmc(1.8, 1.0, 2)
    assert q.mean_wait_s == pytest.approx((16.2 / 19) / 0.2)  # C/(cμ − λ) = 4.263 s
    assert q.mean_response_s == pytest.approx((16.2 / 19) / 0.2 + 1)
    # P(Wq > t) = C e^{−0.2 t}: the 95th percentile is ln(C/0.05)/0.2
    assert q.wait_percentile_s(0.95) == pytest.approx(math.log((16.2 / 19) / 0.05) / 0.2)
    # Below the wait probability's complement the percentile is zero
    assert queueing.mmc(0.1, 1.0, 4).wait_percentile_s(0.5) == 0.0


def test_pooling_beats_separate_queues() -> None:
    # Two servers sharing one queue vs two separate M/M/1 at the same utilisation.
    assert queueing.mmc(1.8, 1.0, 2).mean_response_s < queueing.mm1(0.9, 1.0).mean_response_s


def test_unstable_queue_rejected() -> None:
    with pytest.raises(ValueError, match="arrival_rate_per_s must be <"):
        queueing.mm1(1.0, 1.0)


def test_kingman_exact_for_mm1_and_scales_with_variability() -> None:
    assert queueing.kingman_wait_s(0.9, 1.0) == pytest.approx(queueing.mm1(0.9, 1.0).mean_wait_s)
    # deterministic service (cs = 0) halves the wait: (1 + 0)/2
    assert queueing.kingman_wait_s(0.9, 1.0, cv_service=0) == pytest.approx(4.5)


def test_find_knee_on_a_saturating_curve() -> None:
    # throughput 100·(1 − e^{−x/8}) over doubling x: the knee is where log-x gains stop
    x = [1, 2, 4, 8, 16, 32, 64, 128]
    y = [100 * (1 - math.exp(-v / 8)) for v in x]
    k = queueing.find_knee(x, y)
    assert x[k] in (8, 16)


def test_find_knee_linear_in_log_is_flat() -> None:
    x = [1, 2, 4, 8]
    y = [0, 1, 2, 3]  # linear in log2(x): no point above the chord → index 0
    assert queueing.find_knee(x, y) == 0


def test_find_latency_cliff() -> None:
    assert queueing.find_latency_cliff([1, 2, 4, 8, 16], [1.0, 1.1, 1.3, 2.5, 6.0]) == 3
    assert queueing.find_latency_cliff([1, 2, 4], [1.0, 1.1, 1.2]) is None


@pytest.mark.parametrize(
    ("call", "arg"),
    [
        (lambda: queueing.find_knee([1, 2], [1, 2]), "at least 3 points"),
        (lambda: queueing.find_knee([1, 1, 2], [1, 2, 3]), "strictly increasing"),
        (lambda: queueing.find_knee([0, 1, 2], [1, 2, 3]), "x must be > 0"),
        (lambda: queueing.find_knee([1, 2, 3], [1, float("nan"), 3]), "finite"),
        (lambda: queueing.mm1(-1, 1), "arrival_rate_per_s"),
        (lambda: queueing.mmc(1, 2, 0), "servers"),
        (lambda: queueing.kingman_wait_s(1.0, 1.0), "utilization"),
        (lambda: cost.cost_per_concurrent_user(0, 10), "gpu_hourly_usd"),
        (lambda: cost.cost_per_million_tokens(2.0, -5), "output_tokens_per_s"),
    ],
)
def test_bad_input_names_the_argument(call: object, arg: str) -> None:
    with pytest.raises(ValueError, match=arg):
        call()  # type: ignore[operator]


def test_cost_per_user_by_hand() -> None:
    # 8 GPUs × $2.50 = $20/h for 400 users → $0.05/user-hour, × 730 h = $36.50/month
    c = cost.cost_per_concurrent_user(2.5, 400, num_gpus=8)
    assert c.per_hour_usd == pytest.approx(0.05)
    assert c.per_month_usd == pytest.approx(36.5)


def test_cost_per_million_tokens_by_hand() -> None:
    # $20/h, 20,000 tok/s: 1e6 tokens in 50 s → 20 × 50 / 3600 = $0.2778
    assert cost.cost_per_million_tokens(2.5, 20_000, num_gpus=8) == pytest.approx(20 * 50 / 3600)


def test_mmc_response_percentile_exact_against_hand_survival() -> None:
    # M/M/2, λ = 1.8, μ = 1: C = 16.2/19, θ = 2 − 1.8 = 0.2.
    # P(T > t) = (1 − C)e^{−t} + C(0.2e^{−t} − e^{−0.2t})/(0.2 − 1); at the returned p95, 0.05.
    q = queueing.mmc(1.8, 1.0, 2)
    t = q.response_percentile_s(0.95)
    c = 16.2 / 19
    survival = (1 - c) * math.exp(-t) + c * (0.2 * math.exp(-t) - math.exp(-0.2 * t)) / (0.2 - 1)
    assert survival == pytest.approx(0.05, abs=1e-9)
    # and M/M/1's closed form, −ln(1 − q)/(μ − λ)
    assert queueing.mmc(0.5, 1.0, 1).response_percentile_s(0.99) == pytest.approx(
        math.log(100) / 0.5
    )


def test_mmc_percentile_at_light_load_is_the_service_tail() -> None:
    # Almost nobody waits: the p95 is the exponential service p95, ln(20)/μ, for c = 1 and 4.
    for c in (1, 4):
        q = queueing.mmc(1e-6, 1.0, c)
        assert q.response_percentile_s(0.95) == pytest.approx(math.log(20), rel=1e-4)


def test_closed_loop_no_think_time() -> None:
    # 64 clients, one server at μ = 2/s: X = 2/s, W = 64/2 = 32 s; 4 servers: X = 8/s, W = 8 s
    one = queueing.closed_loop(64, 2.0)
    assert (one.throughput_per_s, one.mean_response_s) == (2.0, 32.0)
    four = queueing.closed_loop(64, 2.0, servers=4)
    assert four.mean_response_s == pytest.approx(8.0)
    assert queueing.closed_loop(2, 2.0, servers=4).mean_response_s == pytest.approx(0.5)


def test_closed_loop_with_think_time_machine_repairman() -> None:
    # N = 10 clients, Z = 5 s, one server μ = 1/s, r = 1/(μZ) = 0.2:
    # p0 = 1 / Σ_k N!/(N−k)! r^k ; X = (1 − p0) μ ; W = N/X − Z
    n, r = 10, 0.2
    p0 = 1 / sum(math.factorial(n) / math.factorial(n - k) * r**k for k in range(n + 1))
    x = 1 - p0
    m = queueing.closed_loop(n, 1.0, think_time_s=5.0)
    assert m.throughput_per_s == pytest.approx(x)
    assert m.mean_response_s == pytest.approx(n / x - 5.0)


def test_closed_loop_bad_input() -> None:
    with pytest.raises(ValueError, match="think_time_s"):
        queueing.closed_loop(4, 1.0, think_time_s=-1)
