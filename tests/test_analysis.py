"""The analysis layer's shared helpers and physics.request_latency_s, against hand calculations."""

from __future__ import annotations

import math

import pytest

from infphys import analysis, physics
from infphys.exercises import exercises_for
from infphys.records import RequestRecord, records_to_frame


def test_request_latency_is_ttft_plus_the_remaining_tokens() -> None:
    # 50 ms TTFT, 10 ms TPOT, 128 tokens: 50 + 127 × 10 = 1,320 ms.
    assert physics.request_latency_s(0.050, 0.010, 128) == pytest.approx(1.320)
    # One token is its TTFT; a mean of 2.5 tokens is 1.5 TPOTs after the first.
    assert physics.request_latency_s(0.2, 0.01, 1) == pytest.approx(0.2)
    assert physics.request_latency_s(0.2, 0.01, 2.5) == pytest.approx(0.215)


@pytest.mark.parametrize("arg", ["ttft_s", "tpot_s", "output_tokens"])
def test_request_latency_rejects_negative_input_by_name(arg: str) -> None:
    kwargs = {"ttft_s": 0.1, "tpot_s": 0.01, "output_tokens": 10.0, arg: -1.0}
    with pytest.raises(ValueError, match=arg):
        physics.request_latency_s(**kwargs)


def test_lab07_expected_end_to_end_uses_the_same_formula() -> None:
    # Lab 7, question 2: 120 ms TTFT + (64 − 1) × 12 ms = 876 ms.
    q2 = next(ex for ex in exercises_for(7) if ex.id == "lab07.q2")
    assert q2.expected(ttft_mean_ms=120.0, tpot_mean_ms=12.0, output_tokens=64) == 876.0


def test_error_pct_signs_and_missing_values() -> None:
    assert analysis.error_pct(8.6, 8.0) == 7.5  # 0.6 / 8.0 = +7.5 %
    assert analysis.error_pct(3.9, 4.0) == -2.5
    assert math.isnan(analysis.error_pct(1.0, 0.0))
    assert math.isnan(analysis.error_pct(math.nan, 1.0))
    assert math.isnan(analysis.error_pct(1.0, math.inf))


def test_closed_loop_vs_little_by_hand() -> None:
    # 4 slots, 0.5 s each: 2 clients take 0.5 s, 8 clients 8 / (4 / 0.5) = 1.0 s.
    rows = [
        RequestRecord(
            i,
            float(i),
            first_token_s=float(i) + 0.1,
            end_s=float(i) + latency_s,
            completion_tokens=10,
            labels={"level": level, "concurrency": clients},
        )
        for level, (clients, latency_s) in enumerate(((2, 0.5), (8, 1.05)))
        for i in range(4)
    ]
    t = analysis.closed_loop_vs_little(records_to_frame(rows), servers=4, service_s=0.5)
    assert t["predicted_mean_ms"].tolist() == [500.0, 1000.0]
    assert t["error_%"].tolist() == [0.0, 5.0]
