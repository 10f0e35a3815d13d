"""The fitted step model and the replay against measured rows (values read from the CSVs)."""

from __future__ import annotations

import pandas as pd
import pytest
from frames import row_where, rows_where

from infphys.catalog import load_nim_serving, load_static_batch
from infphys.physics import decode_step_s
from infphys.sim.fidelity import replay_nim_row
from infphys.sim.fit import predict_static


def _static_row(**k: object) -> pd.DataFrame:
    """The one measured row of the static-batch table with these values, as a one-row table."""
    rows = rows_where(load_static_batch(), measured=True, **k)
    assert len(rows) == 1, k
    return rows


def test_static_row_llama2_7b_fp16_h100_batch1() -> None:
    # Measured (trtllm_0.9_static_batch.csv): first token 9.1 ms, token to token 6.76 ms.
    row = _static_row(
        model_key="llama-2-7b", gpu_key="h100-sxm", precision_key="fp16", batch=1, isl=128, osl=128
    )
    assert float(row["token_to_token_ms"].iloc[0]) == pytest.approx(6.76, abs=0.005)
    p = predict_static(row)
    assert float(p["sim_token_to_token_ms"].iloc[0]) == pytest.approx(6.76, rel=0.10)
    assert float(p["sim_first_token_ms"].iloc[0]) == pytest.approx(9.1, rel=0.20)


def test_static_row_llama2_70b_fp8_h100_tp4_batch256() -> None:
    # Measured: token to token 25.09 ms at batch 256, 128/128, FP8, four H100s.
    row = _static_row(
        model_key="llama-2-70b",
        gpu_key="h100-sxm",
        precision_key="fp8",
        tp=4,
        batch=256,
        isl=128,
        osl=128,
    )
    p = predict_static(row)
    assert float(p["sim_token_to_token_ms"].iloc[0]) == pytest.approx(25.09, rel=0.20)


def test_nim_row_8b_h100_one_client() -> None:
    # Measured (nim_llama3_serving.csv): TTFT 12.62 ms, ITL 7.39 ms, 134.9 output tokens/s.
    n = load_nim_serving()
    row = row_where(
        n, model_key="llama-3.1-8b", gpu_key="h100-sxm", tp=1, concurrency=1, isl=200, osl=200
    )
    assert row.itl_ms_avg == pytest.approx(7.39, abs=0.01)
    sim = replay_nim_row(row)
    assert sim["itl_ms_avg"] == pytest.approx(7.39, rel=0.10)
    # A 200-token prefill comes out about 25 % slow here (the static fit's prefill residual is
    # largest for short prompts on one GPU); the bound says how far off it may be.
    assert sim["ttft_ms_avg"] == pytest.approx(12.62, rel=0.30)
    assert sim["output_tokens_per_s"] == pytest.approx(134.9, rel=0.10)


@pytest.mark.parametrize("batch", [1, 8, 64, 256])
def test_more_tp_never_raises_per_gpu_throughput(batch: int) -> None:
    per_gpu = [
        batch / decode_step_s("h100", "llama-3.1-70b", batch, 1000, tp=tp) / tp for tp in (2, 4, 8)
    ]
    assert per_gpu[0] >= per_gpu[1] >= per_gpu[2]


@pytest.mark.parametrize("batch", [1, 16, 128, 512])
def test_fp8_never_slower_than_bf16(batch: int) -> None:
    bf16 = decode_step_s("h100", "llama-3.1-8b", batch, 1000)
    fp8 = decode_step_s(
        "h100", "llama-3.1-8b", batch, 1000, weights_precision="fp8", kv_precision="fp8"
    )
    assert fp8 <= bf16


def test_step_time_grows_with_batch_and_context() -> None:
    by_batch = [decode_step_s("a100", "llama-3.1-8b", b, 1000) for b in (1, 2, 8, 64, 256)]
    by_ctx = [decode_step_s("a100", "llama-3.1-8b", 16, c) for c in (0, 100, 1000, 8000)]
    assert by_batch == sorted(by_batch) and by_ctx == sorted(by_ctx)
