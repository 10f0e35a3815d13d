"""DataFrames with ``attrs`` as plain JSON: NaN and infinities become None, numpy scalars Python."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

__all__ = [
    "frame_to_dict",
    "jsonable",
]


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars as Python numbers, non-finite floats as None, tuples as lists.

    >>> jsonable({"a": float("nan"), "b": (1, 2.5)})
    {'a': None, 'b': [1, 2.5]}
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def frame_to_dict(frame: pd.DataFrame) -> dict[str, Any]:
    """``{"attrs": {...}, "rows": [{column: value}, ...]}``, ready for ``json.dumps``."""
    return {
        "attrs": jsonable(dict(frame.attrs)),
        "rows": jsonable(frame.to_dict(orient="records")),
    }
