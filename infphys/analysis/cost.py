"""What serving costs, as the table a lab shows: the same load served several ways.

Each row is one :class:`~infphys.physics.TcoResult` (owned servers, rented GPUs, a per-token
API), under the assumptions of :mod:`infphys.physics.tco`: self-hosted fleets are sized for the
peak and paid for all year, an API bills the average load's tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from infphys.physics import TcoResult

__all__ = ["tco_table"]


def tco_table(results: Sequence[TcoResult]) -> pd.DataFrame:
    """One row per way of serving: GPUs for the peak, share of the year they are busy, the
    yearly bill, and US dollars per million input and per million output tokens.

    Worked example: 20,000 input and 2,000 output tokens/s on average, peaks 3× that, on GPUs
    that prefill 40,000 and decode 2,500 tokens/s: 4 rented GPUs at $2.50/h cost
    4 × 2.50 × 8,760 = $87,600 a year; the API at $0.10 and $0.40 per million tokens
    bills 630,720 × 0.10 + 63,072 × 0.40 = $88,301.

    >>> from infphys.physics import GpuThroughput, TokenLoad, api_tco, rented_tco
    >>> load = TokenLoad(20_000, 2_000, 3)
    >>> rows = [rented_tco(load, GpuThroughput(40_000, 2_500), 2.50), api_tco(load, 0.10, 0.40)]
    >>> t = tco_table(rows)
    >>> t["option"].tolist(), t["GPUs (peak)"].tolist(), t["USD per year"].round().tolist()
    (['cloud GPU-hours', 'per-token API'], [4, 0], [87600.0, 88301.0])
    """
    return pd.DataFrame(
        [
            {
                "option": r.option,
                "GPUs (peak)": r.gpus,
                "busy on average": r.average_utilisation,
                "USD per year": r.annual_usd,
                "USD per M input": r.usd_per_million_input,
                "USD per M output": r.usd_per_million_output,
            }
            for r in results
        ],
        columns=[
            "option",
            "GPUs (peak)",
            "busy on average",
            "USD per year",
            "USD per M input",
            "USD per M output",
        ],
    )
