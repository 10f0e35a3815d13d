"""Lab 9 (the token budget) exercises: what a prompt token and an output token each cost.

Context the lab passes (from the learner's token-budget grid, :func:`infphys.stats.summarize`
per cell; times in ms):

- ``prompt_tokens_small``, ``ttft_small_ms``, ``prompt_tokens_large``, ``ttft_large_ms``: the
  mean TTFT at the smallest and largest prompt sizes of the grid (at its smallest
  ``max_tokens``);
- ``max_tokens_small``, ``e2e_small_ms``, ``max_tokens_large``, ``e2e_large_ms``: the mean
  end-to-end latency at the smallest and largest ``max_tokens`` (at the smallest prompt);
- ``prompt_tokens``, ``max_tokens``, ``ttft_ms``, ``tpot_ms``: one cell of the grid, its
  TTFT and its time per output token (p50s).

All times are the p50s of the cells. Worked example: TTFT is 12 ms at 64 prompt tokens and
75 ms at 2,048, so a prompt token costs (75 − 12) / (2,048 − 64) = 0.0318 ms: 31.8 ms per
1,000 tokens of prefill. End-to-end is 60 ms at 8 output tokens and 420 ms at 64, so an output
token costs (420 − 60) / 56 = 6.4 ms: about 200 times a prompt token. A cell of 2,048 prompt
and 64 output tokens spends 75 ms in prefill
and 63 × 6.4 = 403 ms in decode: decode dominates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from infphys.exercises.contexts import SPECS
from infphys.exercises.core import Exercise, Tolerance, concept_exercise
from infphys.physics import request_latency_s
from infphys.stats import summarize

if TYPE_CHECKING:
    from infphys.stats import RecordsLike

__all__ = [
    "Q1_PREFILL_COST",
    "Q2_DECODE_COST",
    "Q3_WHICH_DOMINATES",
    "Q4_SLOW_START",
    "grid_context",
]


def grid_context(data: RecordsLike) -> dict[str, int | float]:
    """The context above, read off the four corners of the learner's token-budget grid.

    ``data`` is the grid's run (:func:`infphys.measure.token_grid`, its records or their
    frame), summarised per cell by :func:`infphys.stats.summarize`; the corners are the
    smallest and largest prompt sizes and ``max_tokens`` it holds, and their p50s become ms,
    rounded to 3 decimals (TPOT to 4). Example: a grid of prompts 64 and 2,048 by max_tokens 8
    and 32 whose (64, 8) cell has a median TTFT of 0.0123456 s gives ``ttft_small_ms`` 12.346.
    The decimals are those grading recomputes the answers with (:mod:`infphys.exercises.contexts`).

    Raises:
        KeyError: when a corner cell of the grid holds no request.
    """
    cells = summarize(data).set_index(["prompt_tokens_asked", "max_tokens"])
    prompts, budgets = cells.index.get_level_values(0), cells.index.get_level_values(1)
    p_small, p_large = int(prompts.min()), int(prompts.max())
    m_small, m_large = int(budgets.min()), int(budgets.max())

    decimals = SPECS["lab09.q1"].decimals  # what grading recomputes the answers from

    def ms(key: str, prompt_tokens: int, max_tokens: int, column: str) -> tuple[str, float]:
        seconds = cast(float, cells.loc[(prompt_tokens, max_tokens), column])
        return key, round(float(seconds) * 1e3, decimals[key])

    return {
        "prompt_tokens_small": p_small,
        "prompt_tokens_large": p_large,
        "max_tokens_small": m_small,
        "max_tokens_large": m_large,
        "prompt_tokens": p_large,
        "max_tokens": m_large,
        **dict(
            (
                ms("ttft_small_ms", p_small, m_small, "ttft_p50_s"),
                ms("ttft_large_ms", p_large, m_small, "ttft_p50_s"),
                ms("e2e_small_ms", p_small, m_small, "e2e_p50_s"),
                ms("e2e_large_ms", p_small, m_large, "e2e_p50_s"),
                ms("ttft_ms", p_large, m_large, "ttft_p50_s"),
                ms("tpot_ms", p_large, m_large, "tpot_p50_s"),
            )
        ),
    }


def _slope(x0: float, y0: float, x1: float, y1: float, what: str) -> float:
    if x1 == x0:
        raise ValueError(f"{what}: the two sizes must differ (got {x0!r} twice)")
    return (y1 - y0) / (x1 - x0)


def _prefill_cost(
    prompt_tokens_small: int, ttft_small_ms: float, prompt_tokens_large: int, ttft_large_ms: float
) -> float:
    per_token_ms = _slope(
        prompt_tokens_small, ttft_small_ms, prompt_tokens_large, ttft_large_ms, "prompt_tokens"
    )
    return 1000.0 * per_token_ms


def _decode_cost(
    max_tokens_small: int, e2e_small_ms: float, max_tokens_large: int, e2e_large_ms: float
) -> float:
    return _slope(max_tokens_small, e2e_small_ms, max_tokens_large, e2e_large_ms, "max_tokens")


_PARTS = ("prefill (the TTFT)", "decode (the output tokens after the first)")


def _which_dominates(ttft_ms: float, tpot_ms: float, max_tokens: int) -> str:
    decode_ms = request_latency_s(ttft_ms, tpot_ms, max_tokens) - ttft_ms
    return _PARTS[0] if ttft_ms >= decode_ms else _PARTS[1]


Q1_PREFILL_COST = Exercise(
    id="lab09.q1",
    title="What a prompt token costs",
    prompt=(
        "Your TTFT was **{ttft_small_ms} ms** at **{prompt_tokens_small}** prompt tokens and "
        "**{ttft_large_ms} ms** at **{prompt_tokens_large}**. How many ms of TTFT does every "
        "1,000 extra prompt tokens add?"
    ),
    solution=_prefill_cost,
    tolerance=Tolerance(relative=0.05),
    unit="ms",
    hint="The slope of TTFT against prompt size, times 1,000.",
    explanation=(
        "(75 − 12) / (2,048 − 64) × 1,000 = 31.8 ms per 1,000 tokens. Prefill processes the "
        "whole prompt in one (or a few chunked) steps, so it is compute-bound: about 2 × "
        "parameters FLOPs per token against the GPU's tensor throughput. A prompt token is "
        "cheap because thousands share one pass over the weights."
    ),
)

Q2_DECODE_COST = Exercise(
    id="lab09.q2",
    title="What an output token costs",
    prompt=(
        "At the smallest prompt your end-to-end latency was **{e2e_small_ms} ms** with "
        "max_tokens **{max_tokens_small}** and **{e2e_large_ms} ms** with **{max_tokens_large}**. "
        "How many ms does each extra output token add?"
    ),
    solution=_decode_cost,
    tolerance=Tolerance(relative=0.05),
    unit="ms",
    hint="The slope of end-to-end latency against max_tokens.",
    explanation=(
        "(420 − 60) / (64 − 8) = 6.4 ms: one decode step, the inter-token latency. Each step "
        "reads every weight once to produce one token per sequence, so it is bound by memory "
        "bandwidth: 16 GB of Llama-3.1-8B weights at a few TB/s is a few ms. An output token "
        "costs one or two hundred times a prompt token: budget max_tokens carefully."
    ),
)

Q3_WHICH_DOMINATES = Exercise(
    id="lab09.q3",
    title="Prefill or decode?",
    prompt=(
        "In your grid, the cell with **{prompt_tokens}** prompt tokens and max_tokens "
        "**{max_tokens}** had a TTFT of **{ttft_ms} ms** and a time per output token of "
        "**{tpot_ms} ms**. Which part of its end-to-end time is larger?"
    ),
    solution=_which_dominates,
    kind="choice",
    choices=_PARTS,
    hint="Compare the TTFT with (max_tokens − 1) × TPOT.",
    explanation=(
        "Decode is (N − 1) × TPOT; prefill is the TTFT. With thousands of prompt tokens and a "
        "short answer (classification, RAG with a one-line answer) prefill wins; for chat and "
        "code generation decode almost always dominates."
    ),
)

_SLOW_START = (
    "shorten the prompt (system prompt, retrieved context): the TTFT is prefill",
    "lower max_tokens: the TTFT is decode",
    "raise max_num_seqs so more requests run at once",
    "switch the KV cache to FP8 to halve the ITL",
)


Q4_SLOW_START = concept_exercise(
    id="lab09.q4",
    title="Answers that start late",
    prompt=(
        "At low load, users say answers take long to start but then stream quickly. What do you "
        "change first?"
    ),
    choices=_SLOW_START,
    hint="Which term of e2e = TTFT + (N − 1) × ITL are they complaining about, and what sets it?",
    explanation=(
        "A late start at low load is a long TTFT, and at low load the TTFT is the prefill of the "
        "prompt: cut the prompt (or cache its prefix). max_tokens only changes how long the "
        "stream lasts. Under heavy load the TTFT also includes queueing, which labs 8 and 10 "
        "address."
    ),
)
