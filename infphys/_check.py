"""Input checks shared by the pure layers: each raises ``ValueError`` naming the argument."""

from __future__ import annotations

import math
from collections.abc import Iterable


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            import numpy as np

            if isinstance(value, np.integer | np.floating):
                value = float(value)
            else:
                raise TypeError
        except TypeError:
            raise ValueError(f"{name} must be a number (got {value!r})") from None
    f = float(value)  # type: ignore[arg-type]
    if math.isnan(f):
        raise ValueError(f"{name} must be a number, not NaN")
    return f


def positive(name: str, value: object) -> float:
    """``value`` as a float if it is a finite number > 0, else ``ValueError`` naming ``name``."""
    f = _number(name, value)
    if not (f > 0 and math.isfinite(f)):
        raise ValueError(f"{name} must be a finite number > 0 (got {value!r})")
    return f


def non_negative(name: str, value: object) -> float:
    """``value`` as a float if it is a finite number ≥ 0."""
    f = _number(name, value)
    if not (f >= 0 and math.isfinite(f)):
        raise ValueError(f"{name} must be a finite number >= 0 (got {value!r})")
    return f


def fraction(name: str, value: object, *, allow_zero: bool = False) -> float:
    """``value`` as a float in (0, 1] (or [0, 1] with ``allow_zero``)."""
    f = _number(name, value)
    lo_ok = f >= 0 if allow_zero else f > 0
    if not (lo_ok and f <= 1):
        bound = "[0, 1]" if allow_zero else "(0, 1]"
        raise ValueError(f"{name} must be in {bound} (got {value!r})")
    return f


def positive_int(name: str, value: object) -> int:
    """``value`` as an int if it is a whole number ≥ 1."""
    f = _number(name, value)
    if not (f >= 1 and math.isfinite(f) and f == int(f)):
        raise ValueError(f"{name} must be a whole number >= 1 (got {value!r})")
    return int(f)


def non_negative_int(name: str, value: object) -> int:
    """``value`` as an int if it is a whole number ≥ 0."""
    f = _number(name, value)
    if not (f >= 0 and math.isfinite(f) and f == int(f)):
        raise ValueError(f"{name} must be a whole number >= 0 (got {value!r})")
    return int(f)


def non_negative_ints(name: str, values: Iterable[object]) -> list[int]:
    """Every element a whole number ≥ 0 (the message names ``name[i]``)."""
    return [non_negative_int(f"{name}[{i}]", v) for i, v in enumerate(values)]
