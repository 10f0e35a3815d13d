"""infphys.fmt: numbers with their unit, checked against strings written out by hand."""

from __future__ import annotations

import math

import pytest

from infphys import fmt


@pytest.mark.parametrize(
    ("got", "want"),
    [
        # 8.03 B parameters × 2 bytes = 16.06 GB; three significant figures.
        (fmt.gb(16.06e9), "16.1 GB"),
        (fmt.gb(80e9, 0), "80 GB"),
        # 2^30 bytes is exactly one GiB; an "80 GB" H100 is 74.5 GiB.
        (fmt.gib(2**30), "1.00 GiB"),
        (fmt.gib(80e9), "74.5 GiB"),
        (fmt.mib(2**20 * 81559), "81,559 MiB"),
        # Llama-3.1-8B: 131,072 bytes of KV cache per token = 128 KiB.
        (fmt.kib(131072), "128 KiB"),
        (fmt.bytes_(131072), "128 KiB"),
        (fmt.bytes_(512), "512 B"),
        (fmt.bytes_(1.5 * 2**30), "1.50 GiB"),
        # The integer part is never rounded away.
        (fmt.gb_s(2.039e12), "2,039 GB/s"),
        (fmt.tb_s(3.35e12), "3.35 TB/s"),
        (fmt.tflops(989e12), "989 TFLOP/s"),
        # 16.06 GB / 3.35 TB/s = 4.794 ms.
        (fmt.ms(16.06e9 / 3.35e12), "4.79 ms"),
        (fmt.us(3e-6), "3.00 µs"),
        (fmt.seconds(1.04), "1.04 s"),
        (fmt.tok_s(1 / 4.794e-3), "209 tokens/s"),
        (fmt.pct(0.8), "80.0%"),
        (fmt.pct(0.065, 1), "6.5%"),
        (fmt.usd(2.5), "$2.50"),
        (fmt.usd(-2.5), "−$2.50"),
        (fmt.count(131072.4), "131,072"),
        (fmt.num(1234.5, 1), "1,234.5"),
        (fmt.plain(50.0), "50"),
        (fmt.plain(2.5), "2.50"),
        (fmt.num(0.004791), "0.00479"),
        (fmt.num(-0.5), "−0.500"),
        (fmt.num(0), "0"),
    ],
)
def test_formats(got: str, want: str) -> None:
    assert got == want


def test_rounding_up_a_decade_keeps_three_figures() -> None:
    assert fmt.num(9.996) == "10.0"
    assert fmt.num(99.96) == "100"
    assert fmt.num(0.0009996) == "0.00100"


def test_non_finite() -> None:
    assert fmt.num(math.inf) == "∞"
    assert fmt.num(-math.inf) == "−∞"
    assert fmt.num(math.nan) == "n/a"


def test_bad_precision_names_the_argument() -> None:
    with pytest.raises(ValueError, match="digits"):
        fmt.num(1.0, -1)
    with pytest.raises(ValueError, match="sig"):
        fmt.num(1.0, sig=0)


def test_rel_error_signed_percent_against_the_reference() -> None:
    # A roofline TPOT of 8.0 ms against a measured 8.8 ms: 0.8 / 8.0 = +10 %; against 8.6 ms,
    # 0.6 / 8.0 = +7.5 %; 3.9 against 4.0 is -0.1 / 4.0 = -2.5 %.
    assert fmt.rel_error(8.8, 8.0) == "+10%"
    assert fmt.rel_error(8.6, 8.0, 1) == "+7.5%"
    assert fmt.rel_error(3.9, 4.0, 1) == "-2.5%"
    # An H100 copy at 2,900 GB/s against the datasheet's 3,350 GB/s: -13.4 %.
    assert fmt.rel_error(2.9e12, 3.35e12) == "-13%"
    for value, reference in ((None, 1.0), (1.0, None), (math.nan, 1.0), (1.0, 0.0)):
        assert fmt.rel_error(value, reference) == "n/a"
