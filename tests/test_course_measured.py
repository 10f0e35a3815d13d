"""The token-budget, queueing and lab-6 charts' data against the CSV values they come from.

Expected values are read off the measured CSV files by hand (the row is quoted in each comment),
not from the functions under test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from frames import row_where, rows_where

from infphys import evidence, nim_planning
from infphys.catalog import MEASURED_SOURCES, load_nim_serving
from infphys.plots import measured_serving

# --- token budget: prefill against prompt length ----------------------------------------------


@pytest.fixture(scope="module")
def prefill() -> pd.DataFrame:
    return evidence.static_prefill_vs_prompt()


def test_prefill_points_are_the_csv_values(prefill: pd.DataFrame) -> None:
    # trtllm_0.9_static_batch.csv: "LLaMA v2 7B,H100 80GB HBM3,mixed,1,1,1,128,128,9.09,..." and
    # "LLaMA v2 7B,H100 80GB HBM3,mixed,1,1,1,2048,128,54.91,...".
    h100 = prefill[prefill["config"] == "Llama-2-7B · H100 SXM × 1 · FP16"]
    assert row_where(h100, batch=1, isl=128)["measured_ms"] == 9.09
    assert row_where(h100, batch=1, isl=2048)["measured_ms"] == 54.91
    assert row_where(h100, batch=1, isl=2048)["prefill_tokens"] == 2048
    # Five deployments, every point a measured row with the static table's provenance.
    assert prefill["config"].nunique() == 5
    assert prefill["measured_ms"].notna().all()
    assert (prefill["source"] == MEASURED_SOURCES["trtllm_0.9_static_batch.csv"]).all()


def test_prefill_model_follows_the_measurements(prefill: pd.DataFrame) -> None:
    # The fitted step model prices these prefills within 25 % (median within 10 %); a model
    # that forgot the prompt's quadratic attention or the batch would be off by far more.
    err = (prefill["model_ms"] / prefill["measured_ms"] - 1).abs()
    assert err.max() < 0.25
    assert err.median() < 0.10
    # Cost grows with the tokens: 16× the prompt at batch 1 costs 6.0× the time (54.91 / 9.09).
    h100 = prefill[prefill["config"] == "Llama-2-7B · H100 SXM × 1 · FP16"]
    ratio = (
        row_where(h100, batch=1, isl=2048)["model_ms"]
        / row_where(h100, batch=1, isl=128)["model_ms"]
    )
    assert 4.5 < ratio < 8


def test_prefill_unknown_deployment_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no measured static-batch rows for llama-2-7b on b200"):
        evidence.static_prefill_vs_prompt((("llama-2-7b", "b200", "fp8", 1),))


# --- queueing: the NIM TTFT knee --------------------------------------------------------------


@pytest.fixture(scope="module")
def knee() -> pd.DataFrame:
    # A stand-in replay (simulated TTFT = 2 × measured) so that the test needs no simulation;
    # the site passes evidence.nim_replay().
    nim = load_nim_serving()
    return nim_planning.ttft_knee(replayed=nim.assign(sim_ttft_ms_avg=2 * nim["ttft_ms_avg"]))


def test_knee_points_are_the_csv_values(knee: pd.DataFrame) -> None:
    # nim_llama3_serving.csv, Llama-3-8B, H100_80GB_HBM3, 1 GPU, fp16:
    # concurrency 1, 200 → 200: TTFT 12.62 ms (p95 13.083); 250: 848.072 ms (p95 1316.127);
    # concurrency 250, 2000 → 200: 7039.355 ms.
    short = knee[knee["isl"] == 200]
    assert row_where(short, concurrency=1)["measured_ms"] == pytest.approx(12.62)
    assert row_where(short, concurrency=1)["measured_p95_ms"] == pytest.approx(13.083)
    assert row_where(short, concurrency=250)["measured_ms"] == pytest.approx(848.072)
    assert row_where(knee[knee["isl"] == 2000], concurrency=250)["measured_ms"] == pytest.approx(
        7039.355
    )
    assert set(knee["shape"]) == {"200 → 200", "2,000 → 200"}
    assert (knee["sim_ms"] == 2 * knee["measured_ms"]).all()


def test_knee_model_is_the_closed_loop_estimate(knee: pd.DataFrame) -> None:
    row = row_where(knee[knee["isl"] == 2000], concurrency=100)
    est = nim_planning.closed_loop_estimate("llama-3.1-8b", "h100-sxm", "fp16", 1, 100, 2000, 200)
    assert row["model_ms"] == pytest.approx(est["ttft_ms_avg"])
    # The model has no queue for prefills: from 1 to 250 clients its TTFT grows far less than
    # the measured 12.62 → 848 ms (67×). That gap is what the chapter shows.
    short = knee[knee["isl"] == 200].set_index("concurrency")
    model_ms = short["model_ms"].to_dict()
    assert model_ms[250] / model_ms[1] < 5


def test_knee_unknown_shape_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no NIM rows"):
        nim_planning.ttft_knee(shapes=((128, 128),), replayed=load_nim_serving())


# --- lab 6: what the second GPU costs ----------------------------------------------------------


def test_tp_scaling_measured_only_carries_the_csv_throughputs() -> None:
    # Llama-3-8B FP16 on H100, 200 → 200, 100 clients: 6,549.965 tokens/s on one GPU, 9,157.412
    # on two (nim_llama3_serving.csv).
    t = evidence.tp_scaling(simulated=False)
    r = row_where(
        t, model_key="llama-3.1-8b", gpu_key="h100-sxm", isl=200, osl=200, concurrency=100
    )
    assert (r["tokens_per_s_small"], r["tokens_per_s_large"]) == (6549.965, 9157.412)
    # 9,157.412 / 2 / 6,549.965 = 0.69904.
    assert r["per_gpu_ratio_measured"] == pytest.approx(0.69904, abs=1e-5)
    assert np.isnan(r["per_gpu_ratio_simulated"])


def test_tp_cost_by_hand() -> None:
    t = evidence.tp_scaling(simulated=False)
    one = rows_where(
        t, model_key="llama-3.1-8b", gpu_key="h100-sxm", isl=200, osl=200, concurrency=100
    )
    row = evidence.tp_cost(2.5, one).iloc[0]
    # $2.50 / 3600 × 10^6 / 6,549.965 = $0.106023; 2 × 2.50 / 3600 × 10^6 / 9,157.412 = $0.151668.
    assert row["usd_per_million_small"] == pytest.approx(0.106023, abs=1e-6)
    assert row["usd_per_million_large"] == pytest.approx(0.151668, abs=1e-6)
    assert row["cost_ratio"] == pytest.approx(0.151668 / 0.106023, rel=1e-5)
    assert row["config"] == "Llama-3.1-8B · H100 SXM · FP16: TP1 → TP2"
    # Over every shape and concurrency, each of the three TP pairs pays more per token.
    full = evidence.tp_cost(2.5)
    assert len(full) == 3
    assert (full["cost_ratio"] > 1).all()
    assert list(full["cost_ratio"]) == pytest.approx(list(1 / full["per_gpu_ratio"]), rel=0.05)


# --- the figures draw that data -----------------------------------------------------------------


def test_figures_draw_the_tables(prefill: pd.DataFrame, knee: pd.DataFrame) -> None:
    fig = measured_serving.measured_prefill_vs_prompt(prefill)
    measured = [t for t in fig.data if t.name.endswith("measured")]
    assert len(measured) == 5
    assert sum(len(t.y) for t in measured) == len(prefill)
    assert "TensorRT-LLM 0.9" in fig.layout.annotations[0].text
    fig = measured_serving.nim_ttft_knee(knee)
    knee_points = {t.name: list(t.y) for t in fig.data if t.name.endswith("measured")}
    assert knee_points["200 → 200: measured"][0] == pytest.approx(12.62)
    assert "NIM" in fig.layout.annotations[0].text
