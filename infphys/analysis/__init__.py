"""Tables, fits and errors computed from runs and the physics: what the figures and labs show.

Presentation layer, beside :mod:`infphys.plots` (which only draws) and
:mod:`infphys.exercises`: each function here takes runs (records DataFrames, :class:`Run`,
lists of records) or model parameters, calls :mod:`infphys.stats` and :mod:`infphys.physics`,
and returns a DataFrame or a small dataclass. A lab shows the table and hands it to a figure.

- :mod:`infphys.analysis.compare`: the relative error (:func:`error_pct`), significant figures
  (:func:`sig`) and the theory-versus-measured table every lab shows (:func:`comparison_table`).
- :mod:`infphys.analysis.cost`: the table of one load served several ways (:func:`tco_table`).
- :mod:`infphys.analysis.load`: per-level tables of a load run against queueing theory
  (Little's Law, a batch-limited closed loop, M/M/c), goodput, errors and the TTFT/decode
  split per level, and the token grid's TTFT/decode split, table and fitted per-token costs.
"""

from __future__ import annotations

from infphys.analysis.compare import comparison_table, error_pct, sig
from infphys.analysis.cost import tco_table
from infphys.analysis.load import (
    TokenCosts,
    closed_loop_vs_little,
    errors_by_level,
    goodput_by_level,
    littles_law_by_level,
    open_loop_vs_mmc,
    service_time_s,
    token_budget_split,
    token_budget_table,
    token_costs,
    top_finished_level,
    ttft_decode_by_level,
)

__all__ = [
    "TokenCosts",
    "closed_loop_vs_little",
    "comparison_table",
    "error_pct",
    "errors_by_level",
    "goodput_by_level",
    "littles_law_by_level",
    "open_loop_vs_mmc",
    "service_time_s",
    "sig",
    "tco_table",
    "token_budget_split",
    "token_budget_table",
    "token_costs",
    "top_finished_level",
    "ttft_decode_by_level",
]
