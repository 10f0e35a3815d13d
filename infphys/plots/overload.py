"""Overload figures: several overload runs side by side, and retry policies compared.

Each takes runs (records DataFrames, :class:`~infphys.records.Run` or lists of records) or a
retry table (:func:`infphys.measure.retry.retry_summary`), summarises runs with
:mod:`infphys.stats`, and draws: error rate, p95 of the survivors and goodput per level
(:func:`overload_compare`, goodput from :func:`infphys.analysis.goodput_by_level`), attempts
per request, requests served and user-perceived p95 per retry policy (:func:`retry_compare`).

Example::

    from infphys.plots.overload import overload_compare
    overload_compare({"no limit": run_a, "max_queue=64": run_b}, ttft_slo_s=1.0)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from infphys import stats
from infphys.analysis.load import goodput_by_level, load_column
from infphys.plots._style import PALETTE as _PALETTE
from infphys.plots._style import empty_figure as _empty
from infphys.plots._style import layout as _layout
from infphys.plots._style import line as _line
from infphys.stats import RecordsLike as RunData

__all__ = ["overload_compare", "retry_compare"]


def overload_compare(
    runs: Mapping[str, RunData],
    *,
    ttft_slo_s: float | None = None,
    tpot_slo_s: float | None = None,
    title: str | None = None,
) -> Any:
    """Several overload runs side by side, per level: error rate (%), p95 end-to-end of the
    successful requests (ms) and goodput (requests/s meeting the SLO,
    :func:`infphys.stats.goodput`) next to throughput."""
    title = title or "overload: errors, latency of the survivors, and goodput"
    fig = make_subplots(
        rows=1,
        cols=3,
        subplot_titles=(
            "error rate (%)",
            "p95 e2e of successes (ms)",
            "goodput (dots: throughput), req/s",
        ),
    )
    drawn = 0
    xc = "concurrency"
    for i, (label, data) in enumerate(runs.items()):
        f = stats.as_frame(data)
        if not len(f):
            continue
        s = stats.summarize(f)
        xc = load_column(s)
        s = s.sort_values(xc)
        colour = _PALETTE[i % len(_PALETTE)]
        good = goodput_by_level(f, ttft_slo_s=ttft_slo_s, tpot_slo_s=tpot_slo_s)
        good_per_s = good.set_index("level").loc[s["level"], "goodput_per_s"].to_numpy()
        x = s[xc].astype(str)
        for col, y, name, mode, symbol in (
            (1, s["error_rate"] * 100, label, "lines+markers", "circle"),
            (2, s["e2e_p95_s"] * 1e3, label, "lines+markers", "circle"),
            (3, good_per_s, f"{label} goodput", "lines+markers", "circle"),
            (3, s["throughput_req_per_s"], f"{label} throughput", "markers", "circle-open"),
        ):
            fig.add_trace(
                _line(
                    x, y, name, colour, mode=mode, marker={"symbol": symbol}, legendgroup=label,
                    showlegend=col == 1,
                ),
                row=1,
                col=col,
            )  # fmt: skip
        drawn += 1
    if not drawn:
        return _empty(title, "no requests in these runs")
    for c in (1, 2, 3):
        fig.update_xaxes(title=xc, type="category", row=1, col=c)
        fig.update_yaxes(rangemode="tozero", row=1, col=c)
    return _layout(fig, title, height=420)


def retry_compare(table: pd.DataFrame, *, title: str | None = None) -> Any:
    """Retry policies side by side, from a table with one row per policy.

    Expected columns (as :func:`infphys.measure.retry.retry_summary` gives them): ``policy``,
    ``amplification`` (attempts per user request), ``success_rate`` (user requests that
    eventually succeeded, 0–1) and ``e2e_p95_s`` (user-perceived p95, first send to final
    answer, of the successful user requests).
    """
    title = title or "retry policies under overload"
    need = ("policy", "amplification", "success_rate", "e2e_p95_s")
    missing = [c for c in need if c not in table.columns]
    if missing or not len(table):
        return _empty(title, f"no retry table (missing {', '.join(missing) or 'rows'})")
    fig = make_subplots(
        rows=1,
        cols=3,
        subplot_titles=(
            "attempts per user request",
            "user requests served (%)",
            "user-perceived p95 (ms)",
        ),
    )
    colours = [_PALETTE[i % len(_PALETTE)] for i in range(len(table))]
    x = table["policy"].astype(str)
    for col, y, text in (
        (1, table["amplification"], "%{y:.2f}×"),
        (2, table["success_rate"] * 100, "%{y:.0f}%"),
        (3, table["e2e_p95_s"] * 1e3, "%{y:.0f}"),
    ):
        fig.add_trace(
            go.Bar(x=x, y=y, marker={"color": colours}, texttemplate=text), row=1, col=col
        )
    fig.update_yaxes(rangemode="tozero")
    return _layout(fig, title, showlegend=False, height=400)
