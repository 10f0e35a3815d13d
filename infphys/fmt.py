"""Display formatting: numbers with their unit, the same way on the site, in the labs and the CLI.

Quantities inside infphys are SI base units (bytes, bytes/s, FLOP/s, seconds); these helpers turn
them into short labelled strings. By default a value keeps three significant figures, and an
integer part is never rounded away (``2,039 GB/s``, not ``2.04e3``); pass ``digits`` for a fixed
number of decimals instead.

Vendors quote memory in GB (10^9 bytes) and bandwidth in GB/s or TB/s; NVML and most tools
report GiB (2^30 bytes). Both are here, labelled, so a page says which it shows.

Worked example: Llama-3.1-8B holds 16.06 × 10^9 bytes of BF16 weights; an H100 SXM reads
3.35 × 10^12 B/s, so one decode step takes at least 16.06 / 3.35 = 4.79 ms:

>>> gb(16.06e9), tb_s(3.35e12), ms(16.06e9 / 3.35e12)
('16.1 GB', '3.35 TB/s', '4.79 ms')
"""

from __future__ import annotations

import math

__all__ = [
    "bytes_",
    "count",
    "gb",
    "gb_s",
    "gib",
    "kib",
    "mib",
    "ms",
    "num",
    "pct",
    "plain",
    "rel_error",
    "seconds",
    "tb_s",
    "tflops",
    "tok_s",
    "us",
    "usd",
]


def num(value: float, digits: int | None = None, *, sig: int = 3) -> str:
    """``value`` with thousands separators: ``digits`` decimals, or ``sig`` significant figures.

    >>> num(16.06e9 / 1e9), num(2039), num(0.004791), num(1234.5, 1)
    ('16.1', '2,039', '0.00479', '1,234.5')
    """
    x = float(value)
    if not math.isfinite(x):
        return "∞" if x > 0 else ("−∞" if x < 0 else "n/a")
    if digits is None:
        if x == 0:
            return "0"
        if sig < 1:
            raise ValueError(f"sig must be an integer >= 1 (got {sig!r})")
        digits = max(0, sig - 1 - math.floor(math.log10(abs(x))))
        rounded = round(x, digits)  # 9.996 rounds up a decade: keep 3 figures, '10.0'
        if rounded != 0:
            digits = max(0, sig - 1 - math.floor(math.log10(abs(rounded))))
    elif digits < 0:
        raise ValueError(f"digits must be an integer >= 0 (got {digits!r})")
    text = f"{x:,.{digits}f}"
    return text.replace("-", "−") if text.startswith("-") else text


def _unit(value: float, scale: float, unit: str, digits: int | None) -> str:
    return f"{num(value / scale, digits)} {unit}"


def count(value: float) -> str:
    """A whole count with thousands separators (rounded to the nearest integer).

    >>> count(131072)
    '131,072'
    """
    return num(round(float(value)), 0)


def plain(value: float) -> str:
    """A whole number as a :func:`count`, without decimals; any other as :func:`num`.

    >>> plain(50.0), plain(2.5), plain(0.125)
    ('50', '2.50', '0.125')
    """
    return count(value) if float(value).is_integer() else num(value)


def gb(bytes_: float, digits: int | None = None) -> str:
    """Bytes as vendor gigabytes (10^9 B). ``gb(80e9)`` → ``'80.0 GB'``."""
    return _unit(bytes_, 1e9, "GB", digits)


def gib(bytes_: float, digits: int | None = None) -> str:
    """Bytes as gibibytes (2^30 B), as NVML and vLLM report. ``gib(2**30)`` → ``'1.00 GiB'``."""
    return _unit(bytes_, 2**30, "GiB", digits)


def mib(bytes_: float, digits: int | None = None) -> str:
    """Bytes as mebibytes (2^20 B)."""
    return _unit(bytes_, 2**20, "MiB", digits)


def kib(bytes_: float, digits: int | None = None) -> str:
    """Bytes as kibibytes (2^10 B). ``kib(131072)`` → ``'128 KiB'``."""
    return _unit(bytes_, 2**10, "KiB", digits)


def bytes_(value: float, digits: int | None = None) -> str:
    """Bytes in the largest binary unit that keeps the number at least 1.

    >>> bytes_(131072), bytes_(512), bytes_(1.5 * 2**30)
    ('128 KiB', '512 B', '1.50 GiB')
    """
    x = float(value)
    for scale, unit in ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if abs(x) >= scale:
            return _unit(x, scale, unit, digits)
    return _unit(x, 1, "B", digits)


def gb_s(bytes_per_s: float, digits: int | None = None) -> str:
    """Bandwidth in GB/s (10^9 B/s). ``gb_s(2.039e12)`` → ``'2,039 GB/s'``."""
    return _unit(bytes_per_s, 1e9, "GB/s", digits)


def tb_s(bytes_per_s: float, digits: int | None = None) -> str:
    """Bandwidth in TB/s (10^12 B/s). ``tb_s(3.35e12)`` → ``'3.35 TB/s'``."""
    return _unit(bytes_per_s, 1e12, "TB/s", digits)


def tflops(flops_per_s: float, digits: int | None = None) -> str:
    """Throughput in TFLOP/s (10^12 FLOP/s). ``tflops(989e12)`` → ``'989 TFLOP/s'``."""
    return _unit(flops_per_s, 1e12, "TFLOP/s", digits)


def seconds(value_s: float, digits: int | None = None) -> str:
    """Seconds. ``seconds(1.04)`` → ``'1.04 s'``."""
    return _unit(value_s, 1.0, "s", digits)


def ms(value_s: float, digits: int | None = None) -> str:
    """Seconds shown in milliseconds. ``ms(0.00479)`` → ``'4.79 ms'``."""
    return _unit(value_s, 1e-3, "ms", digits)


def us(value_s: float, digits: int | None = None) -> str:
    """Seconds shown in microseconds. ``us(3e-6)`` → ``'3.00 µs'``."""
    return _unit(value_s, 1e-6, "µs", digits)


def tok_s(tokens_per_s: float, digits: int | None = None) -> str:
    """Tokens per second. ``tok_s(208.6)`` → ``'209 tokens/s'``."""
    return _unit(tokens_per_s, 1.0, "tokens/s", digits)


def pct(fraction: float, digits: int | None = None) -> str:
    """A fraction as a percentage. ``pct(0.8)`` → ``'80.0%'``; ``pct(0.065, 1)`` → ``'6.5%'``."""
    return f"{num(float(fraction) * 100, digits)}%"


def rel_error(value: float | None, reference: float | None, digits: int = 0) -> str:
    """How far ``value`` lies from ``reference``, (value − reference) / reference, as a signed
    percentage: a measurement against theory, or a prediction against a measurement.

    ``rel_error(8.8, 8.0)`` → ``'+10%'``; ``rel_error(3.9, 4.0, 1)`` → ``'-2.5%'``; ``'n/a'``
    where either is missing (None, NaN, ±inf) or the reference is 0.
    """
    if value is None or reference is None:
        return "n/a"
    v, r = float(value), float(reference)
    if not (math.isfinite(v) and math.isfinite(r)) or r == 0:
        return "n/a"
    return f"{(v / r - 1) * 100:+.{int(digits)}f}%"


def usd(dollars: float, digits: int = 2) -> str:
    """US dollars, two decimals by default. ``usd(2.5)`` → ``'$2.50'``."""
    text = num(dollars, digits)
    return f"−${text[1:]}" if text.startswith("−") else f"${text}"
