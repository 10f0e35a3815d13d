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


def _records(rows: list[tuple[float, float, int, int]], **labels: int) -> list[RequestRecord]:
    """One request per (TTFT s, e2e s, tokens, level) row, sent at 0 s, with ``labels``;
    level k is at concurrency 4 × (k + 1)."""
    return [
        RequestRecord(
            i, 0.0, first_token_s=ttft, end_s=e2e, completion_tokens=n,
            labels={"level": lv, "concurrency": 4 * (lv + 1), **labels},
        )
        for i, (ttft, e2e, n, lv) in enumerate(rows)
    ]  # fmt: skip


def test_token_budget_split_is_the_median_of_each_requests_decode_time() -> None:
    # One cell (256-token prompt, max_tokens 128), three measured requests:
    #   A: TTFT 50 ms, 128 tokens at 10 ms TPOT: e2e 50 + 127 × 10 = 1,320 ms, decode 1,270 ms
    #   B: TTFT 60 ms, stopped at 64 tokens, 12 ms TPOT: e2e 60 + 63 × 12 = 816 ms, decode 756 ms
    #   C: TTFT 300 ms, e2e 1,580 ms, 128 tokens: decode 1,280 ms (TPOT 1,280 / 127 ≈ 10.08 ms)
    # Median TTFT 60 ms; median decode median(1270, 756, 1280) = 1,270 ms. The shortcuts differ:
    # median e2e − median TTFT = 1,320 − 60 = 1,260 ms; 127 × median TPOT (10.08 ms) = 1,280 ms.
    # A warm-up request and a failed one are left out.
    cell = {"prompt_tokens_asked": 256, "max_tokens": 128}
    rows = _records(
        [(0.050, 1.320, 128, 0), (0.060, 0.816, 64, 0), (0.300, 1.580, 128, 0),
         (0.001, 9.000, 128, 0), (0.001, 9.000, 1, 0)],
        **cell,
    )  # fmt: skip
    rows[3].warmup = True
    rows[4].status, rows[4].error_class = "failed", "timeout"
    split = analysis.token_budget_split(records_to_frame(rows))
    assert split[["prompt_tokens", "max_tokens", "requests"]].values.tolist() == [[256, 128, 3]]
    assert split["ttft_p50_s"].iloc[0] == pytest.approx(0.060)
    assert split["decode_p50_s"].iloc[0] == pytest.approx(1.270)


def test_token_budget_split_of_a_run_that_is_not_a_grid_is_empty() -> None:
    rows = [RequestRecord(0, 0.0, first_token_s=0.1, end_s=0.5, completion_tokens=5)]
    assert analysis.token_budget_split(records_to_frame(rows)).empty


def test_ttft_decode_by_level_by_hand() -> None:
    # Concurrency 4: (TTFT, e2e) = (0.10, 0.50), (0.12, 0.60), (0.30, 0.62) s: median TTFT
    # 0.12 s, median decode median(0.40, 0.48, 0.32) = 0.40 s. Concurrency 8: one request,
    # 0.2 s then 0.9 s: decode 0.7 s.
    rows = _records(
        [(0.10, 0.50, 8, 0), (0.12, 0.60, 8, 0), (0.30, 0.62, 8, 0), (0.20, 0.90, 8, 1)]
    )
    t = analysis.ttft_decode_by_level(records_to_frame(rows))
    assert t["concurrency"].tolist() == [4, 8]
    assert t["requests"].tolist() == [3, 1]
    assert t["ttft_p50_s"].tolist() == pytest.approx([0.12, 0.20])
    assert t["decode_p50_s"].tolist() == pytest.approx([0.40, 0.70])


def test_errors_by_level_by_hand() -> None:
    # Concurrency 4: 2 ok, 1 timeout, 1 http_5xx, 1 incomplete: 4 finished, so timeout 25 %,
    # http_5xx 25 %, incomplete 1 / 5 = 20 %. Concurrency 8: 4 ok, no errors: 0 % each.
    rows = _records([(0.1, 0.5, 8, 0)] * 5 + [(0.1, 0.5, 8, 1)] * 4)
    for r, error in zip(rows[2:4], ("timeout", "http_5xx"), strict=True):
        r.first_token_s, r.status, r.error_class = None, "failed", error
    rows[4].status = "incomplete"
    t = analysis.errors_by_level(records_to_frame(rows))
    assert t.columns.tolist() == ["concurrency", "http_5xx", "timeout", "incomplete"]
    assert t.to_numpy(dtype=float).ravel().tolist() == pytest.approx(
        [4, 25.0, 25.0, 20.0, 8, 0.0, 0.0, 0.0]
    )


def _level(
    clients: int, latency_s: float, level: int, *, failed: bool = False
) -> list[RequestRecord]:
    """Four requests of one closed-loop level, each ``latency_s`` long, or four timeouts."""
    return [
        RequestRecord(
            i, float(i), first_token_s=None if failed else float(i) + 0.1,
            end_s=float(i) + latency_s, completion_tokens=0 if failed else 10,
            status="failed" if failed else "ok", error_class="total_timeout" if failed else None,
            labels={"level": level, "concurrency": clients},
        )
        for i in range(4)
    ]  # fmt: skip


def test_service_time_is_the_mean_at_the_last_level_the_batch_holds() -> None:
    # Levels of 1, 4, 16 clients with mean e2e 0.40, 0.50, 1.90 s on a batch of 8: the last
    # level that fits is 4 clients, so s = 0.50 s. On a batch of 2 no level but the first fits.
    rows = [*_level(1, 0.40, 0), *_level(4, 0.50, 1), *_level(16, 1.90, 2)]
    assert analysis.service_time_s(records_to_frame(rows), servers=8) == pytest.approx(0.50)
    assert analysis.service_time_s(records_to_frame(rows), servers=2) == pytest.approx(0.40)
    # Every request of the level of 4 timed out: the level of 1 is the last with a latency.
    rows = [*_level(1, 0.40, 0), *_level(4, 60.0, 1, failed=True), *_level(16, 1.90, 2)]
    assert analysis.service_time_s(records_to_frame(rows), servers=8) == pytest.approx(0.40)


def test_no_service_time_when_every_request_timed_out() -> None:
    rows = [*_level(1, 60.0, 0, failed=True), *_level(4, 60.0, 1, failed=True)]
    assert analysis.service_time_s(records_to_frame(rows), servers=8) is None
    with pytest.raises(ValueError, match="servers"):
        analysis.service_time_s(records_to_frame(rows), servers=0)


def test_top_finished_level_passes_over_a_level_with_no_finished_request() -> None:
    # Open-loop rates 2, 4, 6 /s: four requests each, 0.4 s, 0.5 s, then all timed out at 6/s.
    # The highest level with a p95 is 4 /s (0.5 s); with nothing finished, None.
    def level(rate: float, latency_s: float, lv: int, failed: bool = False) -> list[RequestRecord]:
        return [
            RequestRecord(
                i, float(i), first_token_s=None if failed else float(i) + 0.1,
                end_s=float(i) + latency_s, completion_tokens=0 if failed else 10,
                status="failed" if failed else "ok",
                error_class="total_timeout" if failed else None,
                labels={"level": lv, "rate_per_s": rate},
            )
            for i in range(4)
        ]  # fmt: skip

    rows = [*level(2, 0.4, 0), *level(4, 0.5, 1), *level(6, 9.0, 2, failed=True)]
    top = analysis.top_finished_level(records_to_frame(rows))
    assert top is not None
    assert (top["rate_per_s"], top["e2e_p95_s"]) == (4, pytest.approx(0.5))
    assert analysis.top_finished_level(records_to_frame(level(6, 9.0, 0, failed=True))) is None
