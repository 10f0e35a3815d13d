"""Lab 6 (cost) exercises: cost per concurrent user and per million tokens.

Context the lab passes (the learner's price and fleet, and a capacity measured or simulated at
the learner's SLO):

- ``gpu_hourly_usd``: price of one GPU-hour; ``num_gpus``: GPUs in the deployment.
- ``concurrent_users``: users the deployment serves (the learner's calculator input for q1, the
  simulated SLO cap for q3).
- ``output_tokens_per_s``: output tokens/s it sustains at that load.

Worked example: eight H100s at $2.50 per GPU-hour serving 400 concurrent users cost
8 × 2.50 / 400 = $0.05 per user-hour; at 20,000 output tokens/s a million tokens cost $0.278.
"""

from __future__ import annotations

from infphys.exercises.core import Exercise, Tolerance
from infphys.physics import cost_per_concurrent_user, cost_per_million_tokens

__all__ = ["Q1_USER_HOUR", "Q2_PER_MILLION", "Q3_USER_MONTH"]


def _user_hour_usd(gpu_hourly_usd: float, num_gpus: int, concurrent_users: float) -> float:
    cost = cost_per_concurrent_user(gpu_hourly_usd, concurrent_users, num_gpus=num_gpus)
    return cost.per_hour_usd


def _per_million_usd(gpu_hourly_usd: float, num_gpus: int, output_tokens_per_s: float) -> float:
    return cost_per_million_tokens(gpu_hourly_usd, output_tokens_per_s, num_gpus=num_gpus)


def _user_month_usd(gpu_hourly_usd: float, num_gpus: int, concurrent_users: float) -> float:
    return cost_per_concurrent_user(
        gpu_hourly_usd, concurrent_users, num_gpus=num_gpus
    ).per_month_usd


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
