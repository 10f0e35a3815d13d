"""Load-run figures: drawn from real runs and from empty ones, and a self-contained report."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from figures import trace

from infphys.analysis import errors_by_level
from infphys.measure import StubConfig, StubServer, run_closed_loop, sweep
from infphys.plots import load as plots
from infphys.records import records_to_frame


@pytest.fixture(scope="module")
def sweep_frame() -> pd.DataFrame:
    from infphys.measure import run_sync

    with StubServer(StubConfig(delay_s=0.005, tokens=4, fault="http_503", fault_every=5)) as s:
        result = run_sync(sweep(s.target(), concurrency=[1, 2, 4], requests_per_level=10))
    return result.frame()


def test_figures_from_a_sweep(sweep_frame: pd.DataFrame) -> None:
    lat = plots.latency_vs_load(sweep_frame)
    assert [t.name for t in lat.data] == ["p50 end-to-end", "p95 end-to-end", "p99 end-to-end"]
    assert all(list(t.x) == [1, 2, 4] for t in lat.data)
    assert plots.latency_vs_load(sweep_frame, metric="ttft").layout.yaxis.title.text
    tp = plots.throughput_vs_load(sweep_frame)
    assert len(tp.data) == 2 and all(y > 0 for y in trace(tp, "requests/s (successful)").y)
    # Every fifth request fails with a 503: about 20 % of the finished ones, all http_5xx.
    errors = errors_by_level(sweep_frame)
    assert errors.columns.tolist() == ["concurrency", "http_5xx", "incomplete"]
    assert errors["http_5xx"].mean() == pytest.approx(20.0, abs=10.0)
    err = plots.error_rate_vs_load(sweep_frame)
    assert [t.name for t in err.data] == ["http_5xx"]
    assert list(trace(err, "http_5xx").y) == pytest.approx(errors["http_5xx"].tolist())
    assert len(plots.ttft_decode_split(sweep_frame).data) == 2
    assert len(plots.latency_histogram(sweep_frame).data) == 1
    assert len(plots.latency_histogram(sweep_frame, metric="itl").data) == 1


def test_token_grid_heatmap_and_metrics_figure() -> None:
    from infphys.measure import run_sync, token_grid

    with StubServer(StubConfig(tokens=8)) as s:
        grid = run_sync(
            token_grid(
                s.target(),
                prompt_tokens=[8, 16],
                max_tokens=[2, 4, 8],
                requests_per_cell=1,
                metrics_interval_s=0.01,
            )
        )
    fig = plots.token_grid_heatmap(grid.frame())
    (heat,) = fig.data
    assert heat.z.shape == (2, 3)
    assert plots.server_metrics_over_time(grid.metrics).data  # type: ignore[arg-type]


def test_empty_runs_draw_an_explanation() -> None:
    empty = records_to_frame([])
    for fig in (
        plots.latency_vs_load(empty),
        plots.throughput_vs_load(empty),
        plots.error_rate_vs_load(empty),
        plots.latency_histogram(empty),
        plots.token_grid_heatmap(empty),
        plots.ttft_decode_split(empty),
        plots.server_metrics_over_time(pd.DataFrame()),
    ):
        assert fig.layout.annotations and not fig.data


def test_report_is_self_contained(tmp_path: Path) -> None:
    from infphys.measure import run_sync

    with StubServer(StubConfig(tokens=2)) as s:
        r = run_sync(run_closed_loop(s.target(), requests=3))
    out = plots.write_report_html(r.frame(), tmp_path / "r.html", title="t <1>")
    page = out.read_text()
    assert "<title>t &lt;1&gt;</title>" in page
    assert "<script src=" not in page  # plotly.js inline, nothing loaded from a CDN
    assert page.count("Plotly.newPlot") == 6


def test_bad_metric_names_the_argument(sweep_frame: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="metric"):
        plots.latency_vs_load(sweep_frame, metric="p95")
    with pytest.raises(ValueError, match="x"):
        plots.latency_vs_load(sweep_frame, x="nope")


def test_marker_label_sits_on_a_log_axis_in_log_coordinates() -> None:
    # On a log axis plotly places annotations at log10(x): a label for x = 16 belongs at 1.204,
    # not at 16 (which would stretch the axis to 10^16, as add_vline's own label did).
    import math

    import plotly.graph_objects as go

    from infphys.plots._style import mark_x

    fig = go.Figure(go.Scatter(x=[1, 2, 4, 8, 16, 32], y=[1, 1, 1, 2, 5, 9]))
    fig.update_xaxes(type="log")
    mark_x(fig, 16, "p95 cliff at 16", log_x=True)
    (label,) = fig.layout.annotations
    assert label.x == pytest.approx(math.log10(16))
    assert fig.layout.shapes[0].x0 == 16
    lin = go.Figure()
    mark_x(lin, 16, "knee", log_x=False)
    assert lin.layout.annotations[0].x == 16


def test_server_gauge_traces_one_per_gauge_present() -> None:
    # Running 3 then 5, waiting never reported (NaN), KV usage 0.42 then 0.61: two traces,
    # running on the left axis, KV usage as 42 % and 61 % on the right.
    m = pd.DataFrame(
        {
            "t_s": [0.0, 0.5],
            "requests_running": [3, 5],
            "requests_waiting": [float("nan")] * 2,
            "kv_cache_usage": [0.42, 0.61],
        }
    )
    traces = plots.server_gauge_traces(m, shape="linear")
    assert [(t.name, right) for t, right in traces] == [
        ("running", False),
        ("KV cache usage (%)", True),
    ]
    assert list(traces[1][0].y) == pytest.approx([42.0, 61.0])
    assert traces[0][0].line.shape == "linear"
    assert plots.server_gauge_traces(pd.DataFrame({"t_s": [0.0]})) == []
