"""Statistics against values worked out by hand (the arithmetic is in each test's comments)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from infphys import stats
from infphys.records import RequestRecord, on_simulated_clock, records_to_frame


def rec(
    i: int,
    sent: float,
    ttft: float | None,
    e2e: float | None,
    *,
    tokens: int = 11,
    status: str = "ok",
    error: str | None = None,
    warmup: bool = False,
    **labels: object,
) -> RequestRecord:
    first = None if ttft is None else sent + ttft
    end = None if e2e is None else sent + e2e
    return RequestRecord(
        request_id=i,
        sent_s=sent,
        first_token_s=first,
        end_s=end,
        completion_tokens=tokens if status == "ok" else None,
        token_count_source="usage",
        status=status,  # type: ignore[arg-type]
        error_class=error,
        warmup=warmup,
        labels=dict(labels),
    )


def test_percentiles_use_numpy_linear_method() -> None:
    # Type 7: p95 of 1..20 is at rank 0.95 × 19 = 18.05 → 19 + 0.05 × (20 − 19) = 19.05.
    p = stats.percentiles(range(1, 21))
    assert p["p95"] == pytest.approx(19.05)
    assert p["p50"] == pytest.approx(10.5)
    # p99: rank 0.99 × 19 = 18.81 → 19.81
    assert p["p99"] == pytest.approx(19.81)
    assert math.isnan(stats.percentiles([])["p50"])
    s = stats.describe_latency([0.1, 0.4, 0.2, 0.3, float("nan")])
    assert (s.count, s.min_s, s.max_s) == (4, 0.1, 0.4)
    assert s.mean_s == pytest.approx(0.25) and s.p50_s == pytest.approx(0.25)


def test_throughput_and_errors_by_hand() -> None:
    # 10 requests sent at 0.0, 0.2, …, 1.8 s, each 0.2 s long: the window is 0.0 → 2.0 s.
    # Nine succeed with 100 tokens; one (id 4) fails with http_5xx. A warm-up request before
    # them and an incomplete one after are excluded / counted apart.
    records = [
        rec(i, 0.2 * i, 0.05, 0.2, tokens=100)
        if i != 4
        else rec(i, 0.2 * i, None, 0.2, status="failed", error="http_5xx")
        for i in range(10)
    ]
    records.append(rec(10, -1.0, 0.05, 0.2, warmup=True))
    records.append(rec(11, 1.9, None, 0.1, status="incomplete"))
    f = records_to_frame(records)
    tp = stats.throughput(f)
    # window: first measured send 0.0, last measured end max(1.8 + 0.2, 1.9 + 0.1) = 2.0 s
    assert tp.window_s == pytest.approx(2.0)
    # 9 ok / 2.0 s = 4.5 req/s; 900 tokens / 2.0 s = 450 tokens/s
    assert (tp.ok, tp.failed, tp.incomplete) == (9, 1, 1)
    assert tp.requests_per_s == pytest.approx(4.5)
    assert tp.output_tokens_per_s == pytest.approx(450.0)
    er = stats.error_rates(f).set_index("error_class")
    # 1 failed of 10 finished = 10 %; 1 incomplete of 11 measured
    assert er.loc["http_5xx", "fraction"] == pytest.approx(0.1)
    assert er.loc["incomplete", "count"] == 1
    assert er.loc["incomplete", "fraction"] == pytest.approx(1 / 11)


def test_goodput_by_hand() -> None:
    # 4 requests over a 2 s window. TTFT 0.1, 0.2, 0.6, 0.1 s; 11 tokens each.
    # TPOT = (e2e − TTFT) / 10: request 0: (0.3 − 0.1)/10 = 20 ms; 1: (0.4 − 0.2)/10 = 20 ms;
    # 2: (0.8 − 0.6)/10 = 20 ms; 3: (0.9 − 0.1)/10 = 80 ms.
    # SLO TTFT ≤ 0.5 s and TPOT ≤ 50 ms: 0 and 1 meet both, 2 misses TTFT, 3 misses TPOT.
    # A fifth request failed: judged, not met. Window: 0.0 → max end = 1.1 + 0.9 = 2.0 s.
    records = [
        rec(0, 0.0, 0.1, 0.3),
        rec(1, 0.5, 0.2, 0.4),
        rec(2, 1.0, 0.6, 0.8),
        rec(3, 1.1, 0.1, 0.9),
        rec(4, 1.2, None, 0.1, status="failed", error="http_429"),
    ]
    g = stats.goodput(records, ttft_slo_s=0.5, tpot_slo_s=0.050)
    assert (g.met, g.judged) == (2, 5)
    assert g.attainment == pytest.approx(0.4)
    assert g.goodput_per_s == pytest.approx(2 / 2.0)
    # Without a TPOT objective request 3 meets the TTFT one: 3 of 5.
    assert stats.goodput(records, ttft_slo_s=0.5).met == 3
    with pytest.raises(ValueError, match="ttft_slo_s"):
        stats.goodput(records, ttft_slo_s=0)


def test_distserve_goodput_is_the_highest_rate_meeting_90_percent() -> None:
    # Rate 1: 10/10 meet; rate 2: 9/10 meet (90 % ≥ 90 %); rate 4: 5/10 meet.
    records: list[RequestRecord] = []
    i = 0
    for rate, misses in ((1.0, 0), (2.0, 1), (4.0, 5)):
        for k in range(10):
            ttft = 1.0 if k < misses else 0.1
            records.append(rec(i, i * 0.1, ttft, ttft + 0.5, rate_per_s=rate, level=rate))
            i += 1
    assert stats.distserve_goodput(records, ttft_slo_s=0.5) == 2.0
    assert stats.distserve_goodput(records, ttft_slo_s=0.01) is None
    with pytest.raises(ValueError, match="by"):
        stats.distserve_goodput(records, by="concurrency")


def test_in_flight_by_hand() -> None:
    # [0, 2], [1, 3], [1, 2] in the window [0, 3]: 2 + 2 + 1 = 5 request-seconds / 3 s = 1.667;
    # peak 3 during [1, 2).
    f = records_to_frame([rec(0, 0, 0.1, 2), rec(1, 1, 0.1, 2), rec(2, 1, 0.1, 1)])
    occ = stats.in_flight(f)
    assert (occ.window_start_s, occ.window_end_s) == (0.0, 3.0)
    assert occ.mean == pytest.approx(5 / 3)
    assert occ.peak == 3
    # Back-to-back requests never overlap: [0, 1] then [1, 2] peak at 1, not 2.
    assert stats.in_flight([rec(0, 0, 0.1, 1), rec(1, 1, 0.1, 1)]).peak == 1


def test_littles_law_by_hand() -> None:
    # Requests sent at 0, 1, …, 9 s, each taking 2 s. Window [0, 9] (first to last send).
    # In flight: 1 during [0, 1), 2 during [1, 9) → L = (1 + 16) / 9 = 1.889.
    # Ending inside the window: the requests sent at 0…7 (ends 2…9) → 8 of them:
    # λ = 8 / 9 = 0.889 per s, W = 2 s, λW = 1.778; ratio 1.889 / 1.778 = 1.0625.
    records = [rec(i, float(i), 0.1, 2.0) for i in range(10)]
    law = stats.littles_law(records)
    assert law.mean_in_flight == pytest.approx(17 / 9)
    assert law.throughput_per_s == pytest.approx(8 / 9)
    assert law.mean_latency_s == pytest.approx(2.0)
    assert law.predicted_in_flight == pytest.approx(16 / 9)
    assert law.ratio == pytest.approx(1.0625)
    assert law.holds  # within the default 10 %
    assert not stats.littles_law(records, tolerance=0.05).holds


def test_summarize_per_level_and_itl() -> None:
    # Level 0 (c=1): two requests with chunks at +0.1, +0.2, +0.4 s → gaps 0.1, 0.2.
    # Level 1 (c=2): one failed request → error rate 1.0.
    a = rec(0, 0.0, 0.1, 0.4, tokens=3, concurrency=1, level=0)
    a.chunk_times_s = [0.1, 0.2, 0.4]
    b = rec(1, 1.0, 0.1, 0.4, tokens=3, concurrency=1, level=0)
    b.chunk_times_s = [1.1, 1.2, 1.4]
    c = rec(2, 2.0, None, 0.1, status="failed", error="read_timeout", concurrency=2, level=1)
    s = stats.summarize([a, b, c])
    assert s["concurrency"].tolist() == [1, 2]
    assert s["ok"].tolist() == [2, 0] and s["error_rate"].tolist() == [0.0, 1.0]
    # ITL values 0.1, 0.2, 0.1, 0.2 → p50 0.15; TPOT each (0.4 − 0.1) / 2 = 0.15
    assert s.loc[0, "itl_p50_s"] == pytest.approx(0.15)
    assert s.loc[0, "tpot_p50_s"] == pytest.approx(0.15)
    assert s.loc[0, "e2e_p50_s"] == pytest.approx(0.4)
    assert not s.loc[0, "tokens_estimated"]
    assert np.allclose(np.sort(stats.itl_values([a, b])), [0.1, 0.1, 0.2, 0.2])
    # no level column: one row for the whole run
    assert len(stats.summarize([rec(0, 0, 0.1, 0.2)])) == 1


def test_sweep_knee_and_cliff() -> None:
    # Throughput flattens after 16; p95 doubles the first level's (100 ms) at 32.
    summary = pd.DataFrame(
        {
            "concurrency": [1, 2, 4, 8, 16, 32, 64],
            "throughput_req_per_s": [10, 20, 39, 70, 95, 100, 101],
            "e2e_p95_s": [0.10, 0.10, 0.11, 0.12, 0.15, 0.25, 0.60],
        }
    )
    k = stats.sweep_knee(summary)
    assert k is not None
    assert (k.knee_index, k.knee_x) == (4, 16)  # the lead's find_knee docstring example
    assert (k.cliff_index, k.cliff_x) == (5, 32)
    # Still rising linearly in log x (convex): no knee inside the sweep.
    rising = summary.assign(throughput_req_per_s=[1, 2, 4, 8, 16, 32, 64])
    k2 = stats.sweep_knee(rising)
    assert k2 is not None and k2.knee_index is None and k2.knee_x is None
    assert stats.sweep_knee(summary.head(2)) is None


def test_littles_law_excludes_warmup_from_l_lambda_and_w() -> None:
    # Concurrency 1, each request 2 s: warm-up [0, 2], then measured [2, 4], [4, 6], [6, 8],
    # [8, 10]. Window = first..last measured send = [2, 8]. Measured only: L = 1 (always one in
    # flight), λ = 3 ended / 6 s = 0.5/s, W = 2 s → λW = 1, ratio 1. Counting the warm-up (it
    # ends at 2 s, inside the window) would give λ = 4/6 and a ratio of 0.75.
    from infphys.records import RequestRecord
    from infphys.stats import littles_law

    recs = [RequestRecord(request_id=0, sent_s=0.0, first_token_s=0.1, end_s=2.0, warmup=True)]
    recs += [
        RequestRecord(request_id=i, sent_s=2.0 * i, first_token_s=2.0 * i + 0.1, end_s=2.0 * i + 2)
        for i in range(1, 5)
    ]
    ll = littles_law(recs)
    assert ll.ratio == pytest.approx(1.0)


def test_successful_keeps_ok_rows_and_passes_an_empty_frame() -> None:
    # Statuses ok, error, ok, timeout (warm-up on the first): rows 0 and 2, warm-up kept;
    # through measured() first, only row 2.
    f = pd.DataFrame({"status": ["ok", "error", "ok", "timeout"], "warmup": [1, 0, 0, 0]})
    assert stats.successful(f).index.tolist() == [0, 2]
    assert stats.successful(stats.measured(f)).index.tolist() == [2]
    empty = pd.DataFrame()  # no status column at all: an empty run
    assert stats.successful(empty) is empty


def test_a_slowed_simulators_run_reads_back_on_its_own_clock() -> None:
    # Wall clock, a simulator slowed 3×: sent at 0.3 s, tokens at 0.6, 0.9, 1.2, 1.5 s. TTFT
    # 0.3 s, e2e 1.2 s, TPOT (1.2 − 0.3) / 3 = 0.3 s; on its clock each a third of that.
    r = RequestRecord(
        request_id=0,
        sent_s=0.3,
        first_token_s=0.6,
        end_s=1.5,
        chunk_times_s=[0.6, 0.9, 1.2, 1.5],
        completion_tokens=4,
        labels={"timeout_s": 6.0},
    )
    wall = records_to_frame([r])
    sim = on_simulated_clock(wall, 3)
    row = sim.iloc[0]
    assert (row["sent_s"], row["ttft_s"], row["e2e_s"]) == pytest.approx((0.1, 0.1, 0.4))
    assert (row["tpot_s"], row["itl_mean_s"]) == pytest.approx((0.1, 0.1))
    assert row["chunk_times_s"] == pytest.approx([0.2, 0.3, 0.4, 0.5])
    # The client's own setting and the counts are not times the request measured.
    assert (row["timeout_s"], row["completion_tokens"], row["n_chunks"]) == (6.0, 4, 4)
    assert wall.iloc[0]["e2e_s"] == pytest.approx(1.2)  # a copy: the run itself is unchanged
    pd.testing.assert_frame_equal(on_simulated_clock(wall, 1), wall)
    for bad in (0, -3, float("nan"), "3"):
        with pytest.raises(ValueError, match="time_scale"):
            on_simulated_clock(wall, bad)  # type: ignore[arg-type]
