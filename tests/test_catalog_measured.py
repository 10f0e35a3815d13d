"""Measured data in the package: row counts, values read back exactly, names mapped to keys."""

from __future__ import annotations

import csv
from collections.abc import Callable
from importlib.resources import files

import pandas as pd
import pytest
from frames import row_where, rows_where

from infphys.catalog import (
    MEASURED_SOURCES,
    get_gpu,
    get_model,
    get_precision,
    load_nim_serving,
    load_static_batch,
    measured_gpu_key,
    measured_model_key,
    measured_precision_key,
)

DATA = files("infphys.catalog").joinpath("data")
NIM = "nim_llama3_serving.csv"
STATIC = "trtllm_0.9_static_batch.csv"


def _header(file: str) -> list[str]:
    with DATA.joinpath(file).open(encoding="utf-8") as f:
        return next(csv.reader(f))


def test_row_counts() -> None:
    assert len(load_nim_serving()) == 525
    static = load_static_batch()
    assert len(static) == 3449
    # Rows with a first_token_ms value; the other 571 are configurations with no result.
    assert int(static["measured"].sum()) == 2878
    assert static.loc[~static["measured"], "first_token_ms"].isna().all()
    assert load_nim_serving()["measured"].all()


@pytest.mark.parametrize(("file", "loader"), [(NIM, load_nim_serving), (STATIC, load_static_batch)])
def test_file_columns_kept_in_order_and_keys_added(
    file: str, loader: Callable[[], pd.DataFrame]
) -> None:
    df = loader()
    header = _header(file)
    assert list(df.columns[: len(header)]) == header
    assert {"model_key", "gpu_key", "precision_key", "tp", "measured", "source"} <= set(df.columns)


def test_named_nim_row_reads_back_exactly() -> None:
    r = row_where(
        load_nim_serving(),
        model="meta-llama3-70b-instruct",
        gpu="A100-SXM4-80GB",
        n_gpus=8,
        precision="bf16",
        concurrency=1,
        isl=200,
        osl=200,
    )
    assert r["ttft_ms_avg"] == 49.476
    assert r["output_tokens_per_s"] == 45.499
    assert r["itl_ms_avg"] == 21.8392
    assert r["e2e_ms_avg"] == 4395.48
    assert (r["model_key"], r["gpu_key"], r["precision_key"], r["tp"]) == (
        "llama-3.1-70b",
        "a100-80gb-sxm",
        "bf16",
        8,
    )
    # Little's law for one closed-loop client: 200 tokens / 45.499 tokens/s = 4.3957 s, and
    # TTFT + 199 × ITL = 49.476 + 199 × 21.8392 = 4,395.48 ms, as the measured e2e.
    assert 200 / r["output_tokens_per_s"] * 1e3 == pytest.approx(r["e2e_ms_avg"], rel=1e-3)
    assert r["ttft_ms_avg"] + 199 * r["itl_ms_avg"] == pytest.approx(r["e2e_ms_avg"], rel=1e-4)


def test_named_static_rows_read_back_exactly() -> None:
    sel = rows_where(
        load_static_batch(), model="Falcon 180B", gpu="A100-SXM4-80GB", precision="mixed", tp=8,
        isl=128, osl=128,
    ).set_index("batch")  # fmt: skip
    ok = sel.loc[2]
    assert (ok["first_token_ms"], ok["token_to_token_ms"]) == (105.14, 35.3574)
    assert (ok["latency_ms"], ok["throughput_tok_s"], ok["gpu_peak_memory_gb"]) == (
        4595.53,
        55.71,
        51.38,
    )
    assert ok["measured"] and ok["precision_key"] == "fp16" and ok["model_key"] == "falcon-180b"
    empty = sel.loc[1]  # recorded without a result: kept, with empty values
    assert not empty["measured"]
    assert pd.isna(empty["first_token_ms"]) and pd.isna(empty["gpu_peak_memory_gb"])


def test_nim_tp_is_n_gpus() -> None:
    df = load_nim_serving()
    assert (df["tp"] == df["n_gpus"]).all()
    assert sorted(df["tp"].unique()) == [1, 2, 4, 8]


def test_every_data_set_name_maps_to_a_catalog_entry() -> None:
    for df in (load_nim_serving(), load_static_batch()):
        for name in df["model"].unique():
            key = measured_model_key(name)
            assert get_model(key).key == key
        for name in df["gpu"].unique():
            key = measured_gpu_key(name)
            assert get_gpu(key).key == key
        for name in df["precision"].unique():
            assert get_precision(measured_precision_key(name)) is not None
        assert df["model_key"].notna().all() and df["gpu_key"].notna().all()


def test_sources_name_the_file_and_the_origin() -> None:
    assert set(MEASURED_SOURCES) == {NIM, STATIC}
    for file, loader in ((NIM, load_nim_serving), (STATIC, load_static_batch)):
        src = MEASURED_SOURCES[file]
        assert file in src
        assert "wbing520/ai-performance-engineering" in src and "0e25b2e2" in src
        assert (loader()["source"] == src).all()
    readme = DATA.joinpath("README.md").read_text(encoding="utf-8")
    assert "wbing520/ai-performance-engineering" in readme and "0e25b2e2" in readme


def test_loaders_return_copies() -> None:
    df = load_nim_serving()
    df.loc[0, "ttft_ms_avg"] = -1.0
    assert load_nim_serving().loc[0, "ttft_ms_avg"] == 49.476


def test_peak_memory_within_the_catalog_capacity() -> None:
    # Vendors' "80 GB" A100/H100 hold 80 GiB, so peaks reach about 6% above the GB figure
    # (A100 84.82 GB of 80). GH200's 96.82 GB fits the 96 GB HBM3 entry the data is mapped to.
    df = load_static_batch()
    peak = df.groupby("gpu_key")["gpu_peak_memory_gb"].max()
    for key, gb in peak.items():
        assert gb * 1e9 <= 1.07 * get_gpu(str(key)).memory_bytes
    assert peak["gh200"] == 96.82
