"""Cost: what one concurrent user and one million output tokens cost on rented GPUs.

Assumptions: a GPU is billed per hour whether busy or idle; capacity is the number of
concurrent users (or the output token throughput) the deployment sustains at its latency
objective, measured or simulated.

Worked example: eight H100s at $2.50 per GPU-hour serving 400 concurrent users cost
8 × 2.50 / 400 = $0.05 per user-hour (about $36.50 per user per month of 730 hours). If the same
eight GPUs sustain 20,000 output tokens/s, a million tokens take 50 s and cost
20 / 3600 × 50 = $0.278.
"""

from __future__ import annotations

from dataclasses import dataclass

from infphys._check import positive, positive_int

__all__ = [
    "HOURS_PER_MONTH",
    "UserCost",
    "cost_per_concurrent_user",
    "cost_per_million_tokens",
]

#: Average hours in a month (8,760 / 12).
HOURS_PER_MONTH = 730.0


@dataclass(frozen=True, slots=True)
class UserCost:
    """Cost of one concurrent user (US dollars)."""

    per_hour_usd: float
    per_month_usd: float
    fleet_per_hour_usd: float
    users: float


def cost_per_concurrent_user(
    gpu_hourly_usd: float, concurrent_users: float, *, num_gpus: int = 1
) -> UserCost:
    """Fleet cost per hour divided by the concurrent users it serves.

    >>> round(cost_per_concurrent_user(2.5, 400, num_gpus=8).per_hour_usd, 4)
    0.05
    """
    price = positive("gpu_hourly_usd", gpu_hourly_usd)
    users = positive("concurrent_users", concurrent_users)
    n = positive_int("num_gpus", num_gpus)
    fleet = price * n
    per_hour = fleet / users
    return UserCost(
        per_hour_usd=per_hour,
        per_month_usd=per_hour * HOURS_PER_MONTH,
        fleet_per_hour_usd=fleet,
        users=users,
    )


def cost_per_million_tokens(
    gpu_hourly_usd: float, output_tokens_per_s: float, *, num_gpus: int = 1
) -> float:
    """US dollars per million output tokens at a sustained throughput.

    >>> round(cost_per_million_tokens(2.5, 20_000, num_gpus=8), 3)
    0.278
    """
    price = positive("gpu_hourly_usd", gpu_hourly_usd)
    tps = positive("output_tokens_per_s", output_tokens_per_s)
    n = positive_int("num_gpus", num_gpus)
    seconds = 1e6 / tps
    return price * n / 3600.0 * seconds
