"""plots.overload: the figures draw the analysis layer's numbers, found by trace name."""

from __future__ import annotations

import pandas as pd
import pytest

from infphys.analysis import goodput_by_level
from infphys.plots.overload import overload_compare, retry_compare
from infphys.records import RequestRecord, records_to_frame


def _run() -> pd.DataFrame:
    # Two levels of four requests; at concurrency 8 one request fails. TTFTs 0.1 s and 0.9 s.
    rows = []
    for level, c in enumerate((4, 8)):
        for i in range(4):
            ttft = 0.1 if i < 2 else 0.9
            fail = level == 1 and i == 3
            rows.append(
                RequestRecord(
                    10 * level + i,
                    float(i),
                    first_token_s=None if fail else i + ttft,
                    end_s=i + 1.0,
                    completion_tokens=None if fail else 4,
                    status="failed" if fail else "ok",
                    error_class="timeout" if fail else None,
                    labels={"level": level, "concurrency": c},
                )
            )
    return records_to_frame(rows)


def test_overload_compare_draws_goodput_by_level() -> None:
    run = _run()
    fig = overload_compare({"a": run}, ttft_slo_s=0.5)
    traces = {t.name: t for t in fig.data if t.xaxis == "x3"}
    good = goodput_by_level(run, ttft_slo_s=0.5)
    assert list(traces["a goodput"].y) == pytest.approx(good["goodput_per_s"].tolist())
    errors = next(t for t in fig.data if t.xaxis == "x")
    # Level 2: one of four finished requests failed: 25 %.
    assert list(errors.y) == pytest.approx([0.0, 25.0])


def test_retry_compare_one_panel_per_column() -> None:
    table = pd.DataFrame(
        {
            "policy": ["none", "3 tries"],
            "amplification": [1.0, 2.5],
            "success_rate": [0.6, 0.9],
            "e2e_p95_s": [1.2, 3.4],
        }
    )
    fig = retry_compare(table)
    assert [list(t.y) for t in fig.data] == [[1.0, 2.5], [60.0, 90.0], [1200.0, 3400.0]]
