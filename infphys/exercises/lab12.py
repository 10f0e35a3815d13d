"""Lab 12 (reading NIM benchmarks) exercises: TP per GPU, the cheapest deployment, a prediction.

Context the lab passes (the learner's settings; every answer comes from NVIDIA's measured NIM
table, :func:`infphys.catalog.load_nim_serving`, through :mod:`infphys.nim_planning`):

- ``model``, ``model_name``, ``isl``, ``osl``: the model and the prompt → output shape.
- ``gpu``, ``gpu_name``, ``concurrency``: where to compare TP sizes (q1).
- ``users``, ``ttft_budget_ms``, ``itl_budget_ms``, ``a100_usd``, ``h100_usd``: the planning
  question (q2).
- ``held_gpu``, ``held_tp``, ``held_precision``, ``held_concurrency``: the held-back row (q3,
  q4); ``sim_ttft_ms`` and ``queue_ttft_ms``: the simulator's and the queueing model's TTFT
  predictions for it (q4).

Worked example (measured, Llama-3-8B, 200 → 200 tokens): at 50 clients one H100 gives 4,394
output tokens/s and two give 6,071, 3,035 per GPU: 3,035 / 4,394 = 0.69× per GPU (q1).
"""

from __future__ import annotations

from functools import partial

from infphys.exercises.core import Exercise, Tolerance
from infphys.nim_planning import cheapest_deployment, nim_row, tp_gain

__all__ = ["Q1_TP_PER_GPU", "Q2_CHEAPEST", "Q3_PREDICT_ITL", "Q4_CLOSER"]


def _per_gpu_ratio(model: str, gpu: str, isl: int, osl: int, concurrency: int) -> float:
    t = tp_gain(model, gpu, isl, osl)
    hit = t.loc[t["concurrency"] == concurrency, "per_gpu_ratio"]
    return float(hit.iloc[0])


def _cheapest_usd(
    model: str,
    isl: int,
    osl: int,
    users: int,
    ttft_budget_ms: float,
    itl_budget_ms: float,
    a100_usd: float,
    h100_usd: float,
) -> float:
    table = cheapest_deployment(
        users,
        ttft_budget_ms,
        itl_budget_ms,
        {"a100-80gb-sxm": a100_usd, "h100-sxm": h100_usd},
        model,
        isl,
        osl,
    )
    best = table.iloc[0]
    return float(best["usd_per_million_tokens"]) if bool(best["ok"]) else 0.0


def _measured(
    model: str,
    isl: int,
    osl: int,
    held_gpu: str,
    held_tp: int,
    held_precision: str,
    held_concurrency: int,
    column: str,
) -> float:
    row = nim_row(model, held_gpu, held_precision, held_tp, held_concurrency, isl, osl)
    return float(row[column])


# The context names the held-back row; the column is fixed: the mean ITL NVIDIA measured.
_held_itl_ms = partial(_measured, column="itl_ms_avg")


Q1_TP_PER_GPU = Exercise(
    id="lab12.q1",
    title="What the extra GPUs bought, per GPU",
    prompt=(
        "**{model_name}** on **{gpu_name}**, {isl} → {osl} tokens, **{concurrency}** clients: "
        "divide the output tokens/s **per GPU** at the larger TP by the same at the smaller TP."
    ),
    solution=_per_gpu_ratio,
    tolerance=Tolerance(relative=0.03),
    unit="×",
    hint="Per GPU is the instance's tokens/s divided by its TP; read both from the TP table.",
    explanation=(
        "At 50 clients, Llama-3-8B 200 → 200 on H100: TP1 gives 4,394 tokens/s, TP2 6,071, "
        "3,035 per GPU: 0.69×. Splitting a small model over two GPUs cuts each step's weight "
        "reads in half but adds all-reduces and fixed costs that do not shrink, so each GPU "
        "does less: TP buys latency (a shorter step), not throughput per GPU."
    ),
)

Q2_CHEAPEST = Exercise(
    id="lab12.q2",
    title="The cheapest deployment within budget",
    prompt=(
        "Serve **{users}** concurrent users of **{model_name}** ({isl} → {osl} tokens) with p95 "
        "TTFT ≤ **{ttft_budget_ms} ms** and p95 ITL ≤ **{itl_budget_ms} ms**, A100s at "
        "**{a100_usd} USD** and H100s at **{h100_usd} USD** per GPU-hour. What does a million "
        "output tokens cost on the cheapest deployment, in US dollars (0 if none can)?"
    ),
    solution=_cheapest_usd,
    tolerance=Tolerance(relative=0.03),
    unit="USD",
    hint=(
        "For each deployment: the highest concurrency meeting both budgets, the replicas for "
        "the users, then fleet USD per hour ÷ fleet tokens per hour × 10^6; take the least."
    ),
    explanation=(
        "The cap is the highest measured concurrency whose p95 TTFT and ITL (and every lower "
        "level's) meet the budgets; replicas = ceil(users / cap); each runs users / replicas "
        "clients. 100 users, 1 s and 50 ms, A100 1.80 and H100 2.50 USD: one H100 at TP1 holds "
        "up to 150 clients, 6,550 tokens/s for 2.50 USD an hour: 0.106 USD per million. The "
        "cheapest GPU-hour is not the cheapest token."
    ),
)

Q3_PREDICT_ITL = Exercise(
    id="lab12.q3",
    title="Predict the held-back row",
    prompt=(
        "Before you reveal it: what **ITL** (mean, ms) did NIM measure for {model_name} on "
        "**{held_gpu}** × {held_tp} ({held_precision}) at **{held_concurrency}** clients, "
        "{isl} → {osl} tokens? Within 25 % counts."
    ),
    solution=_held_itl_ms,
    tolerance=Tolerance(relative=0.25),
    unit="ms",
    hint=(
        "Use the simulator's and the queueing model's predictions above, and the measured "
        "points on either side of the held-back concurrency."
    ),
    explanation=(
        "The ITL is one decode step at a batch of about the concurrency, plus the prefills that "
        "interrupt it; the measured neighbours bracket it, and both models land within a few "
        "tens of per cent. TTFT is far harder: under load it is queueing."
    ),
)

_CLOSER = ("the simulator", "the closed-loop queueing model")


def _closer(
    model: str,
    isl: int,
    osl: int,
    held_gpu: str,
    held_tp: int,
    held_precision: str,
    held_concurrency: int,
    sim_ttft_ms: float,
    queue_ttft_ms: float,
) -> str:
    m = _measured(
        model, isl, osl, held_gpu, held_tp, held_precision, held_concurrency, "ttft_ms_avg"
    )
    return _CLOSER[0] if abs(sim_ttft_ms - m) <= abs(queue_ttft_ms - m) else _CLOSER[1]


Q4_CLOSER = Exercise(
    id="lab12.q4",
    title="Which prediction of the TTFT came closer?",
    prompt=(
        "The simulator predicted a mean TTFT of **{sim_ttft_ms} ms** for the held-back row and "
        "the closed-loop queueing model **{queue_ttft_ms} ms**. After the reveal: which was "
        "closer to the measurement?"
    ),
    solution=_closer,
    kind="choice",
    choices=_CLOSER,
    hint="Compare each prediction's distance from the measured TTFT, not their ratio to it.",
    explanation=(
        "At light load the two agree: a prefill plus the frontend. Under load TTFT is mostly "
        "waiting, and neither is reliable there: the queueing model has no wait at all (its TTFT "
        "barely grows with the clients), while the simulator schedules the wait for a context "
        "slot but its timing hangs on the scheduler's details (TTFT is its largest error on "
        "the fidelity page). Judge a prediction by its distance from the measurement, and "
        "trust neither for TTFT under load."
    ),
)
