"""Figures of the simulated engine."""

from __future__ import annotations

import pandas as pd
from figures import trace

from infphys.plots.sim import calibration_errors, sim_timeseries, thin_timeseries
from infphys.sim import CALIBRATION_ROWS, EngineConfig, Workload, simulate, simulate_row


def test_timeseries_figure_from_a_result_and_from_its_frame() -> None:
    l4 = EngineConfig.build("l4", "llama-3.1-8b", weights_precision="fp8", max_model_len=8192)
    res = simulate(
        l4, Workload.closed(48, 96, prompt_tokens=1000, max_tokens=2000), keep_chunk_times=False
    )
    fig = sim_timeseries(res)
    names = [t.name for t in fig.data]
    assert names == ["running", "waiting", "KV blocks in use", "preemptions"]
    assert max(trace(fig, "KV blocks in use").y) > 99  # the KV cache fills
    assert max(trace(fig, "preemptions").y) == res.stats.preemptions
    assert "L4" in fig.layout.title.text
    fig2 = sim_timeseries(res.timeseries, points=50)
    assert len(trace(fig2, "running").x) <= 51


def test_thinning_keeps_peaks() -> None:
    ts = pd.DataFrame(
        {
            "time_s": range(1000),
            "running": [1] * 999 + [50],
            "waiting": 0,
            "kv_usage": 0.5,
            "preemptions_total": 0,
        }
    )
    thin = thin_timeseries(ts, points=10)
    assert len(thin) <= 10 and thin["running"].max() == 50


def test_empty_inputs_draw_an_explaining_chart() -> None:
    assert sim_timeseries(pd.DataFrame()).layout.annotations
    assert calibration_errors([]).layout.annotations


def test_calibration_chart() -> None:
    fig = calibration_errors([simulate_row(CALIBRATION_ROWS[0], requests_fraction=0.05)])
    assert [t.name for t in fig.data] == ["published", "simulated", "error, %"]
