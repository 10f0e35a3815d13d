"""infphys.evidence and infphys.nim_planning: measured tables beside the models.

Expected values are read from the shipped CSVs (the line is quoted in each comment) or worked by
hand from them; none is recomputed with the function under test.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
from figures import trace
from frames import row_where, rows_where

from infphys import evidence, nim_planning
from infphys.catalog import IDEAL_STEP_PARAMS, MEASURED_SOURCES, load_nim_serving
from infphys.plots import measured as measured_plots
from infphys.sim.fidelity import replay_nim


def test_static_decode_vs_batch_reads_the_measured_rows() -> None:
    t = evidence.static_decode_vs_batch("llama-2-7b", "h100-sxm", "fp16", 1, 128, 128)
    # trtllm_0.9_static_batch.csv: "LLaMA v2 7B,H100 80GB HBM3,mixed,1,1,1,128,128,9.09,6.7616,…"
    # and "…,mixed,1,1,128,128,128,367.63,12.1295,…".
    first = t.iloc[0]
    assert first["batch"] == 1 and first["measured_ms"] == pytest.approx(6.7616)
    assert t.set_index("batch").loc[128, "measured_ms"] == pytest.approx(12.1295)
    # Floor at batch 1: (6.738e9 − 32,000 × 4,096) params × 2 B = 13.21 GB of weights, plus
    # 192 tokens × 2 × 32 × 4,096 × 2 B = 0.10 GB of KV, at 3.35 TB/s = 3.97 ms.
    assert first["floor_ms"] == pytest.approx(3.97, rel=0.01)
    assert (t["floor_ms"] <= t["model_ms"]).all()
    assert t["source"].iloc[0] == MEASURED_SOURCES["trtllm_0.9_static_batch.csv"]


def test_static_decode_vs_batch_names_a_missing_deployment() -> None:
    with pytest.raises(ValueError, match="no measured static-batch rows"):
        evidence.static_decode_vs_batch("llama-2-7b", "h100-sxm", "fp16", 8)


def test_fp8_speedup_measured_ratio() -> None:
    t = evidence.fp8_speedup("h100-sxm", 128, 128)
    row = row_where(t, model_key="llama-2-7b", batch=1)
    # "…H100 80GB HBM3,mixed,1,1,1,128,128,9.09,6.7616,…" over "…,fp8,1,1,1,128,128,6.36,4.0976,…"
    assert row["measured"] == pytest.approx(6.7616 / 4.0976)
    # Half the bytes and nothing else: the ideal roofline gives 2 at batch 1 on one GPU.
    assert row["ideal"] == pytest.approx(2.0, rel=0.01)
    assert 1.0 < row["model"] < 2.0


def test_bandwidth_fraction_of_one_row() -> None:
    t = evidence.bandwidth_fraction()
    assert (t["measured"] > 0).all() and (t["measured"] <= 1.0).all()
    row = row_where(
        t, model_key="llama-2-7b", gpu_key="h100-sxm", precision_key="fp16", isl=128, osl=128
    )
    assert row["measured"] == pytest.approx(3.97 / 6.7616, rel=0.01)  # floor above ÷ measured
    by_gpu = evidence.bandwidth_fraction_by_gpu(t)
    assert by_gpu["rows"].sum() == len(t)
    assert list(by_gpu["measured"]) == sorted(by_gpu["measured"], reverse=True)


def test_fidelity_table_on_a_small_replay() -> None:
    rows = rows_where(load_nim_serving(), model_key="llama-3.1-8b", isl=200, osl=200)
    rows = rows[rows["concurrency"].isin([1, 10])]
    replayed = replay_nim(rows, rounds=1)
    table = evidence.fidelity_table(replayed)
    assert table["config"].iloc[-1] == "all rows"
    assert table["rows"].iloc[-1] == len(rows) == table["rows"].iloc[:-1].sum()
    assert "Llama-3.1-8B · H100 SXM × 1 · FP16" in set(table["config"])
    want = replayed["err_itl_ms_avg"].abs().median()
    assert table["itl_ms_avg"].iloc[-1] == pytest.approx(want)


def test_latency_throughput_and_tp_gain_from_the_csv() -> None:
    curves = nim_planning.latency_throughput("llama-3.1-8b", 200, 200)
    assert set(curves["config"]) == {
        "A100 80GB SXM × 1 · FP16", "A100 80GB SXM × 2 · FP16",
        "H100 SXM × 1 · FP16", "H100 SXM × 2 · FP16",
    }  # fmt: skip
    t = nim_planning.tp_gain("llama-3.1-8b", "h100-sxm", 200, 200).set_index("concurrency")
    # nim_llama3_serving.csv, 50 clients, 200 → 200: "…H100_80GB_HBM3,1,fp16,50,…,4394.32" and
    # "…,2,fp16,50,…,6070.76": 6070.76 / 2 / 4394.32 = 0.6908 per GPU, 1.3815 in total.
    assert t.loc[50, "per_gpu_ratio"] == pytest.approx(0.6908, rel=1e-3)
    assert t.loc[50, "speedup"] == pytest.approx(1.3815, rel=1e-3)
    assert t.loc[50, "itl_ms_large"] == pytest.approx(7.8782)


def test_cheapest_deployment_worked_example() -> None:
    prices = {"a100-80gb-sxm": 1.80, "h100-sxm": 2.50}
    plan = nim_planning.cheapest_deployment(100, 1000, 50, prices, "llama-3.1-8b", 200, 200)
    best = plan.iloc[0]
    # H100 × 1: p95 TTFT 735.8 ms at 150 clients, 1,018.7 ms at 200, so the cap is 150; one
    # replica runs all 100 clients at the measured 6,549.965 tokens/s:
    # 2.50 / 3600 × 10⁶ / 6,549.965 = 0.10602 USD per million.
    assert best["config"] == "H100 SXM × 1 · FP16"
    assert (best["cap"], best["replicas"], best["gpus"]) == (150, 1, 1)
    assert best["usd_per_million_tokens"] == pytest.approx(0.10602, rel=1e-3)
    # 1,000 users: ceil(1000 / 150) = 7 replicas of one H100.
    more = nim_planning.cheapest_deployment(1000, 1000, 50, prices, "llama-3.1-8b", 200, 200)
    h1 = more.set_index("config").loc["H100 SXM × 1 · FP16"]
    assert (h1["replicas"], h1["gpus"]) == (7, 7)
    # A budget nobody meets: every row infeasible, NaN price.
    none = nim_planning.cheapest_deployment(10, 1.0, 50, prices, "llama-3.1-8b", 200, 200)
    assert not none["ok"].any() and none["usd_per_million_tokens"].isna().all()


def test_cheapest_deployment_bad_input() -> None:
    with pytest.raises(ValueError, match="users"):
        nim_planning.cheapest_deployment(0, 1000, 50, {"h100-sxm": 2.5})
    with pytest.raises(ValueError, match="gpu_hourly_usd"):
        nim_planning.cheapest_deployment(10, 1000, 50, {"l40s": 1.0})


def test_closed_loop_estimate_at_one_client_is_the_decode_floor() -> None:
    # One client, an 8-token prompt, 2,000 output tokens, ideal roofline, no frontend: the ITL is
    # one batch-1 decode step, 15.01 GB / 3.35 TB/s = 4.48 ms, plus a little KV and prefill.
    e = nim_planning.closed_loop_estimate(
        "llama-3.1-8b", "h100-sxm", "bf16", 1, 1, 8, 2000, params=IDEAL_STEP_PARAMS, frontend_s=0.0
    )
    assert e["itl_ms_avg"] == pytest.approx(4.48, rel=0.05)
    # Little's law: one client receives 1 / ITL tokens per second, near enough.
    assert e["output_tokens_per_s"] == pytest.approx(1e3 / e["itl_ms_avg"], rel=0.01)


def test_nim_row_averages_repeats_and_names_a_missing_row() -> None:
    row = nim_planning.nim_row("llama-3.1-8b", "h100-sxm", "fp16", 1, 50, 200, 200)
    assert row["itl_ms_avg"] == pytest.approx(10.7318)  # "…,1,fp16,50,200,200,…,10.7318,…"
    with pytest.raises(ValueError, match="no NIM row"):
        nim_planning.nim_row("llama-3.1-8b", "h100-sxm", "fp16", 1, 7, 200, 200)


def test_measured_plots_draw_the_tables() -> None:
    dec = evidence.static_decode_vs_batch()
    fig = measured_plots.measured_decode_vs_batch(dec)
    assert [t.name for t in fig.data] == ["datasheet floor", "fitted step model", "measured"]
    assert list(trace(fig, "measured").y) == list(dec["measured_ms"])
    assert any("Data:" in (a.text or "") for a in fig.layout.annotations)
    curves = nim_planning.latency_throughput()
    fig = measured_plots.nim_latency_throughput(curves)
    assert len(fig.data) == 2 * curves["config"].nunique()
    fig = measured_plots.nim_tp_gain()
    assert {t.name for t in fig.data} == {"TP1, per GPU", "TP2, per GPU"}
    fig = measured_plots.measured_fp8_speedup()
    assert len(fig.data) == 2 * evidence.fp8_speedup()["label"].nunique()
    fig = measured_plots.measured_bandwidth_fraction()
    assert len(fig.data) == 2


def test_nim_fidelity_plot_dropdown_per_deployment() -> None:
    rows = load_nim_serving()
    rows = rows[(rows["isl"] == 200) & (rows["osl"] == 200) & (rows["concurrency"] <= 2)]
    replayed = replay_nim(rows, rounds=1)
    replayed["config"] = [
        evidence.config_label(g, p, t, m)
        for m, g, p, t in replayed[list(evidence.CONFIG_COLUMNS)].itertuples(index=False)
    ]
    replayed["shape"] = "200 → 200"
    fig = measured_plots.nim_fidelity(replayed)
    buttons = fig.layout.updatemenus[0].buttons
    assert len(buttons) == 8  # 8 deployments in the NIM table
    # Each deployment: measured and simulated, TTFT and ITL = 4 traces visible per button.
    assert all(sum(b.args[0]["visible"]) == 4 for b in buttons)
    # The first deployment's measured TTFT at one client, the point the figure opens on.
    assert not math.isnan(float(pd.Series(trace(fig, "200 → 200 measured").y).iloc[0]))
