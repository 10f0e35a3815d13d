"""Lab 6 (cost) exercises: cost per concurrent user and per million tokens.

Context the lab passes (the learner's price and fleet, and a capacity measured or simulated at
the learner's SLO):

- ``gpu_hourly_usd``: price of one GPU-hour; ``num_gpus``: GPUs in the deployment.
- ``concurrent_users``: users the deployment serves (the learner's calculator input for q1, the
  simulated SLO cap for q3).
- ``output_tokens_per_s``: output tokens/s it sustains at that load (for q4: one GPU's decode
  rate at the SLO).
- q4 (total cost of ownership): ``average_input_tokens_per_s``, ``average_output_tokens_per_s``
  and ``peak_to_average`` (the learner's load), ``input_tokens_per_s`` (one GPU's prefill rate)
  and ``output_tokens_per_s``, and ``gpu_hourly_usd`` (the cloud price).

Worked example: eight H100s at $2.50 per GPU-hour serving 400 concurrent users cost
8 × 2.50 / 400 = $0.05 per user-hour; at 20,000 output tokens/s a million tokens cost $0.278.
Renting GPUs for a peak of 3 × (20,000 / 40,000 + 2,000 / 2,500) = 3.9 busy GPUs takes 4; at
$2.50 an hour a busy GPU-second costs 4 × 2.50 / 3600 / 1.3 = $0.002137, so a million output
tokens cost 0.002137 × 10^6 / 2,500 = $0.855.
"""

from __future__ import annotations

from infphys.exercises.core import Exercise, Tolerance
from infphys.physics import (
    GpuThroughput,
    TokenLoad,
    cost_per_concurrent_user,
    cost_per_million_tokens,
    rented_tco,
)

__all__ = ["Q1_USER_HOUR", "Q2_PER_MILLION", "Q3_USER_MONTH", "Q4_TCO_RENTED"]


def _user_hour_usd(gpu_hourly_usd: float, num_gpus: int, concurrent_users: float) -> float:
    cost = cost_per_concurrent_user(gpu_hourly_usd, concurrent_users, num_gpus=num_gpus)
    return cost.per_hour_usd


def _per_million_usd(gpu_hourly_usd: float, num_gpus: int, output_tokens_per_s: float) -> float:
    return cost_per_million_tokens(gpu_hourly_usd, output_tokens_per_s, num_gpus=num_gpus)


def _user_month_usd(gpu_hourly_usd: float, num_gpus: int, concurrent_users: float) -> float:
    return cost_per_concurrent_user(
        gpu_hourly_usd, concurrent_users, num_gpus=num_gpus
    ).per_month_usd


def _rented_per_million_output_usd(
    gpu_hourly_usd: float,
    average_input_tokens_per_s: float,
    average_output_tokens_per_s: float,
    peak_to_average: float,
    input_tokens_per_s: float,
    output_tokens_per_s: float,
) -> float:
    load = TokenLoad(average_input_tokens_per_s, average_output_tokens_per_s, peak_to_average)
    rates = GpuThroughput(input_tokens_per_s, output_tokens_per_s)
    return rented_tco(load, rates, gpu_hourly_usd).usd_per_million_output


Q1_USER_HOUR = Exercise(
    id="lab06.q1",
    title="Cost per concurrent user-hour",
    prompt=(
        "**{num_gpus}** GPU(s) at **{gpu_hourly_usd} USD** per GPU-hour serve "
        "**{concurrent_users}** concurrent users within your SLO. What does one user cost per "
        "hour, in US dollars?"
    ),
    solution=_user_hour_usd,
    tolerance=Tolerance(relative=0.02),
    unit="USD",
    hint="Fleet price per hour (GPUs × price) divided by the users it serves at the same time.",
    explanation=(
        "GPUs × price / users: 8 × 2.50 USD / 400 = 0.05 USD per user-hour. The GPU is billed "
        "whether "
        "busy or idle, so the capacity at the SLO, not the peak throughput, sets the price."
    ),
)

Q2_PER_MILLION = Exercise(
    id="lab06.q2",
    title="Cost per million output tokens",
    prompt=(
        "At the SLO the deployment sustains **{output_tokens_per_s}** output tokens/s. What "
        "does a million output tokens cost, in US dollars?"
    ),
    solution=_per_million_usd,
    tolerance=Tolerance(relative=0.02),
    unit="USD",
    hint="A million tokens take 10^6 / (tokens/s) seconds of the whole fleet's time.",
    explanation=(
        "Fleet USD/s × seconds per million tokens: 8 × 2.50 / 3600 × 10^6 / 20,000 = 0.278 USD. "
        "Compare with an API's price per million tokens to see where self-hosting pays."
    ),
)

Q3_USER_MONTH = Exercise(
    id="lab06.q3",
    title="Cost per user per month at the SLO",
    prompt=(
        "At your SLO the simulated server holds **{concurrent_users}** concurrent users on "
        "**{num_gpus}** GPU(s) at **{gpu_hourly_usd} USD** per GPU-hour. What does one concurrent "
        "user cost per month (730 hours), in US dollars?"
    ),
    solution=_user_month_usd,
    tolerance=Tolerance(relative=0.02),
    unit="USD",
    hint="GPUs × price / users gives the cost per user-hour; a month is 730 hours.",
    explanation=(
        "Per user-hour × 730: 8 × 2.50 USD / 400 × 730 = 36.50 USD. A 'concurrent user' is a seat "
        "that always has a request in flight; real users think between requests, so one seat "
        "serves several people. Tighten the SLO and the cap falls, so every seat costs more."
    ),
)

Q4_TCO_RENTED = Exercise(
    id="lab06.q4",
    title="Rented for the peak: the price of a million output tokens",
    prompt=(
        "Your service averages **{average_input_tokens_per_s}** input and "
        "**{average_output_tokens_per_s}** output tokens/s, and its peak is "
        "**{peak_to_average}×** the average. One GPU prefills **{input_tokens_per_s}** tokens/s "
        "and decodes **{output_tokens_per_s}** tokens/s at your SLO. You rent whole GPUs at "
        "**{gpu_hourly_usd} USD** per GPU-hour, all year, enough for the peak, and split the "
        "bill by GPU time. What does a million output tokens cost, in US dollars?"
    ),
    solution=_rented_per_million_output_usd,
    tolerance=Tolerance(relative=0.02),
    unit="USD",
    hint=(
        "Busy GPUs = input/s ÷ prefill rate + output/s ÷ decode rate. Rent ⌈peak × busy⌉ GPUs; "
        "the fleet's USD per second ÷ the average busy GPUs is the price of a busy GPU-second; "
        "an output token takes 1 / decode rate of it."
    ),
    explanation=(
        "Peak: 3 × (20,000 / 40,000 + 2,000 / 2,500) = 3.9 → 4 GPUs; 4 × 2.50 / 3600 / 1.3 "
        "= 0.002137 USD per busy GPU-second; × 10^6 / 2,500 = 0.855 USD per million output "
        "tokens, twice the 0.427 that a flat load (2 GPUs) would pay. The idle GPUs of the quiet "
        "hours are part of the price."
    ),
)
