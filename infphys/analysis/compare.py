"""Theory next to measurement: the relative error, rounding, and the comparison table.

``error_%`` is always (measured − theory) / theory × 100, rounded to 0.1: positive when the
measurement comes out above the prediction. Worked example: a roofline TPOT of 8.0 ms against
a measured 8.6 ms is +7.5 %.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

__all__ = ["comparison_table", "error_pct", "sig"]


def error_pct(measured: float, theory: float) -> float:
    """(measured − theory) / theory × 100, rounded to 0.1; NaN when either is missing (NaN,
    ±inf) or the theory is 0 (no error is defined against 0).

    >>> error_pct(8.6, 8.0)
    7.5
    >>> error_pct(3.9, 4.0)
    -2.5
    >>> math.isnan(error_pct(1.0, 0.0))
    True
    """
    m, t = float(measured), float(theory)
    if not (math.isfinite(m) and math.isfinite(t)) or t == 0:
        return math.nan
    return round((m - t) / t * 100.0, 1)


def sig(value: float, digits: int = 4) -> float:
    """``value`` rounded to ``digits`` significant figures (NaN, ±inf and 0 unchanged).

    >>> sig(1234.567), sig(0.000123456, 3)
    (1235.0, 0.000123)
    """
    if not math.isfinite(value) or value == 0:
        return value
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def comparison_table(
    rows: Sequence[tuple[str, float, float, str] | tuple[str, float, float, str, str]],
) -> pd.DataFrame:
    """Theory (or a prediction) next to the measured value, with the relative error.

    Each row is ``(quantity, theory, measured, unit)`` or ``(…, unit, basis)`` where ``basis``
    says where the theory comes from. ``error_%`` is :func:`error_pct` (NaN when the theory is
    0 or missing). Values keep 4 significant figures.

    >>> t = comparison_table([("throughput", 4.0, 3.9, "requests/s", "1 / W")])
    >>> float(t.loc[0, "error_%"]), list(t.columns)
    (-2.5, ['quantity', 'theory', 'measured', 'error_%', 'unit', 'basis'])
    """
    out: list[dict[str, Any]] = []
    with_basis = any(len(r) == 5 for r in rows)
    for r in rows:
        if len(r) not in (4, 5):
            raise ValueError(
                f"rows: each row is (quantity, theory, measured, unit[, basis]); got {r!r}"
            )
        quantity, theory, measured, unit = r[0], float(r[1]), float(r[2]), r[3]
        row: dict[str, Any] = {
            "quantity": quantity,
            "theory": sig(theory),
            "measured": sig(measured),
            "error_%": error_pct(measured, theory),
            "unit": unit,
        }
        if with_basis:
            row["basis"] = r[4] if len(r) == 5 else ""
        out.append(row)
    cols = ["quantity", "theory", "measured", "error_%", "unit"] + (["basis"] if with_basis else [])
    return pd.DataFrame(out, columns=cols)
