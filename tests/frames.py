"""Picking rows of a table in a test by column values, instead of a chain of ``&`` masks.

Example: the NIM row for Llama-3-8B on one H100 with one client, 200 → 200 tokens::

    row = row_where(load_nim_serving(), model_key="llama-3.1-8b", gpu_key="h100-sxm", tp=1,
                    concurrency=1, isl=200, osl=200)
    row["itl_ms_avg"]   # 7.3857 (ms)
"""

from __future__ import annotations

from typing import Any

import pandas as pd


def rows_where(table: pd.DataFrame, **equal: Any) -> pd.DataFrame:
    """The rows of ``table`` whose columns equal every value given, in the table's order."""
    missing = sorted(set(equal) - set(table.columns))
    assert not missing, f"no column {missing} (columns: {list(table.columns)})"
    hit = table
    for column, value in equal.items():
        hit = hit[hit[column] == value]
    return hit


def row_where(table: pd.DataFrame, **equal: Any) -> pd.Series:
    """The one row of ``table`` with these column values; fails, naming them, unless exactly one."""
    hit = rows_where(table, **equal)
    assert len(hit) == 1, f"{len(hit)} rows where {equal}"
    return hit.iloc[0]
