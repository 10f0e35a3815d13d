"""A fleet on paper: candidates, demand, and the step-model + queueing estimate of their p95s.

The fleet planner (:mod:`infphys.fleet_planning`) simulates only the fleets this estimate says
could meet the objective. Everything here is arithmetic over the fitted step model
(:class:`~infphys.physics.roofline.RooflineModel`, the prices the simulator pays per step) and
the queueing formulas of :mod:`infphys.physics.queueing`; no simulation.

A **candidate** is a GPU, a precision (weights and KV cache), a tensor-parallel degree and a
count of replicas; a disaggregated one has ``prefill_replicas`` more replicas doing prefill only.
A **demand** is either ``users`` concurrent users (a closed loop with no think time: a user
sends the next request as soon as the last one ends) or ``rate_per_s`` Poisson arrivals, with
prompt and output lengths (uniform ranges allowed; the estimate uses their means).

The estimate, per replica of a colocated fleet of N receiving λ/N requests/s, prompt P and
output O tokens, mean context P + O/2:

- prefill: a prompt costs ``prefill_s`` on the replica (one step, or ceil(P / token budget)
  chunks); prefill takes a share f = λ/N × prefill_s of the replica's time (f ≥ 1: unstable);
- decode: n requests decode at once, n = λ/N × O × ITL (Little's Law), mean ITL =
  decode_step(n) / (1 − f), solved as a fixed point; n at most the replica's slots,
  min(max_num_seqs, KV-limited concurrency);
- ITL p95: when more than 5 % of steps carry a prefill chunk (λ/N × chunks × ITL > 0.05) the
  p95 gap is a step with a chunk in it, else a plain decode step;
- TTFT p95: half a step + the step carrying the prefill, plus the p95 wait for the prefill
  (M/M/1 with service ``prefill_s``) and for a slot (M/M/c over the slots, service time the
  request's whole stay).

Disaggregated: the prefill pool is one M/M/c queue (c = prefill replicas, service ``prefill_s``)
and its p95 response is the TTFT (plus the KV transfer); the decode pool runs decode steps only
(its ITL p95 is a plain decode step). A closed loop's rate λ is the one where λ × W(λ) = users
(Little's Law over the loop), found by bisection.

Worked example: 1,000 users, 2,000 → 200 tokens, Llama-3.1-8B BF16 on 16 H100s (TP1): a
prompt's prefill takes 60.5 ms, so a replica prefills at most 16.5 prompts/s. The loop settles
near λ ≈ 150 requests/s (9.4 per replica, 57 % of each replica's time prefilling), 61 requests
decoding at once in 14.2 ms steps, a mean ITL of 32.7 ms; the steps that carry a prompt take
65.9 ms and are more than 5 % of them, so that is the estimated p95 ITL: a 50 ms objective is
missed until prefills are rare, which is where disaggregation pays.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from infphys._check import positive, positive_int
from infphys.catalog import LatencySLO
from infphys.physics.queueing import mm1, mmc
from infphys.planning import kv_limited_concurrency
from infphys.sim.config import EngineConfig
from infphys.sim.fleet import kv_transfer_s
from infphys.sim.workload import Workload

__all__ = [
    "ASSUMED_GPU_HOURLY_USD",
    "FleetCandidate",
    "FleetDemand",
    "FleetEstimate",
    "estimate_fleet",
    "shapes",
]

#: US dollars per GPU-hour the planner assumes where none are given: round numbers in the range
#: of on-demand cloud prices, not quotes (the same as the cost chapter's); pass your own.
ASSUMED_GPU_HOURLY_USD: dict[str, float] = {
    "a100-80gb-sxm": 1.80,
    "h100-sxm": 2.50,
    "h200-sxm": 3.50,
    "b200": 5.50,
    "l40s": 1.20,
}

_ITL_TAIL_SHARE = 0.05  # a p95 is the value 5 % of gaps exceed


@dataclass(frozen=True, slots=True)
class FleetDemand:
    """What the fleet must serve: ``users`` concurrent users or ``rate_per_s`` arrivals.

    ``prompt_tokens``/``output_tokens`` are fixed lengths, or the low ends of uniform ranges
    whose high ends are ``prompt_tokens_max``/``output_tokens_max``.
    """

    users: int | None = None
    rate_per_s: float | None = None
    prompt_tokens: int = 2000
    output_tokens: int = 200
    prompt_tokens_max: int | None = None
    output_tokens_max: int | None = None

    def __post_init__(self) -> None:
        if (self.users is None) == (self.rate_per_s is None):
            raise ValueError("users or rate_per_s: give exactly one of them")
        if self.users is not None:
            positive_int("users", self.users)
        if self.rate_per_s is not None:
            positive("rate_per_s", self.rate_per_s)
        p = positive_int("prompt_tokens", self.prompt_tokens)
        o = positive_int("output_tokens", self.output_tokens)
        if (
            self.prompt_tokens_max is not None
            and positive_int("prompt_tokens_max", self.prompt_tokens_max) < p
        ):
            raise ValueError(f"prompt_tokens_max must be >= prompt_tokens (got < {p})")
        if (
            self.output_tokens_max is not None
            and positive_int("output_tokens_max", self.output_tokens_max) < o
        ):
            raise ValueError(f"output_tokens_max must be >= output_tokens (got < {o})")

    @property
    def mean_prompt_tokens(self) -> float:
        hi = self.prompt_tokens if self.prompt_tokens_max is None else self.prompt_tokens_max
        return (self.prompt_tokens + hi) / 2

    @property
    def mean_output_tokens(self) -> float:
        hi = self.output_tokens if self.output_tokens_max is None else self.output_tokens_max
        return (self.output_tokens + hi) / 2

    def workload(self, requests: int, *, seed: int = 0) -> Workload:
        """The simulator's load: ``requests`` measured requests after a warm-up.

        Closed loop: the first round (``users`` requests, all sent at once: a burst no steady
        load has) is a warm-up; open loop: the first tenth of ``requests``. Requests ask for
        exactly their output length (``ignore_eos``).
        """
        n = positive_int("requests", requests)
        sizes = {
            "prompt_tokens": self.prompt_tokens,
            "max_tokens": self.output_tokens,
            "prompt_tokens_max": self.prompt_tokens_max,
            "max_tokens_max": self.output_tokens_max,
            "ignore_eos": True,
            "seed": seed,
        }
        if self.users is not None:
            return Workload.closed(self.users, n, warmup=self.users, client_jitter_s=0.001, **sizes)
        return Workload.open(float(self.rate_per_s or 0.0), n, warmup=max(1, n // 10), **sizes)


@dataclass(frozen=True, slots=True)
class FleetCandidate:
    """One fleet: ``replicas`` serving replicas (decode replicas when disaggregated) of
    ``tp`` GPUs each, plus ``prefill_replicas`` prefill-only replicas (0: colocated);
    ``chunk_tokens`` the engine's token budget per step (None: its default, 8,192)."""

    gpu_key: str
    precision_key: str
    tp: int
    replicas: int
    prefill_replicas: int = 0
    chunk_tokens: int | None = None

    def __post_init__(self) -> None:
        positive_int("tp", self.tp)
        if self.chunk_tokens is not None:
            positive_int("chunk_tokens", self.chunk_tokens)
        positive_int("replicas", self.replicas)
        if self.prefill_replicas < 0:
            raise ValueError(f"prefill_replicas must be >= 0 (got {self.prefill_replicas})")

    @property
    def disaggregated(self) -> bool:
        return self.prefill_replicas > 0

    @property
    def gpus(self) -> int:
        return (self.replicas + self.prefill_replicas) * self.tp

    @property
    def label(self) -> str:
        shape = f"{self.gpu_key} {self.precision_key} TP{self.tp}"
        if self.chunk_tokens is not None:
            shape += f" chunk {self.chunk_tokens}"
        if self.disaggregated:
            return f"{shape} × ({self.prefill_replicas}P + {self.replicas}D)"
        return f"{shape} × {self.replicas}"

    def config(self, model: str) -> EngineConfig:
        """One replica's engine (FP8 means FP8 weights and an FP8 KV cache)."""
        return _config(self.gpu_key, self.precision_key, self.tp, model, self.chunk_tokens)


@lru_cache(maxsize=256)
def _config(
    gpu: str, precision: str, tp: int, model: str, chunk_tokens: int | None = None
) -> EngineConfig:
    extra = {} if chunk_tokens is None else {"max_num_batched_tokens": chunk_tokens}
    return EngineConfig.build(
        gpu, model, weights_precision=precision, kv_precision=precision, tp=tp, **extra
    )


@dataclass(frozen=True, slots=True)
class FleetEstimate:
    """The estimate of one candidate (see the module docstring); inf when unstable."""

    rate_per_s: float
    ttft_p95_s: float
    itl_mean_s: float
    itl_p95_s: float
    prefill_utilization: float
    decode_batch: float
    slots: int

    def meets(self, slo: LatencySLO, margin: float = 1.0) -> bool:
        """True when both p95s are within ``margin`` × the objective (``slo`` on the p95)."""
        return self.ttft_p95_s <= margin * slo.ttft_s and self.itl_p95_s <= margin * slo.itl_s


class _Shape:
    """Step times of one replica shape at one prompt/output length, tabled by batch."""

    def __init__(self, cfg: EngineConfig, prompt: float, output: float) -> None:
        rm = cfg.roofline
        p = max(1, round(prompt))
        ctx = max(0, round(prompt + output / 2))
        budget = cfg.max_num_batched_tokens
        self.chunks = max(1, math.ceil(p / budget))
        chunk = math.ceil(p / self.chunks)
        self.slots = max(
            1,
            min(
                cfg.max_num_seqs,
                kv_limited_concurrency(
                    cfg.kv_capacity_tokens,
                    max(1, round(prompt + output)),
                    block_tokens=cfg.block_tokens,
                ),
            ),
        )
        self.prefill_s = rm.step_for([p], [0]).total_s
        # Step times at ~30 batch sizes, linear in between (a step is affine in the batch
        # between the roofline's corners, so this is within a fraction of a percent).
        grid = sorted({1, self.slots, *(round(1.25**k) for k in range(40) if 1.25**k < self.slots)})
        self._grid = grid
        self.decode = [rm.step_for([1] * n, [ctx] * n).total_s for n in grid]
        self.mixed = [rm.step_for([1] * n + [chunk], [ctx] * n + [0]).total_s for n in grid]
        self.transfer_s = kv_transfer_s(cfg, p)

    def at(self, table: list[float], n: float) -> float:
        """``table`` (:attr:`decode` or :attr:`mixed`) at batch ``n``, interpolated."""
        x = min(max(n, 1.0), float(self.slots))
        g = self._grid
        i = max(1, min(bisect.bisect_left(g, x), len(g) - 1))
        x0, x1 = g[i - 1], g[i]
        return table[i - 1] + (table[i] - table[i - 1]) * (x - x0) / (x1 - x0)


@lru_cache(maxsize=256)
def _shape(
    gpu: str,
    precision: str,
    tp: int,
    model: str,
    prompt: float,
    output: float,
    chunk_tokens: int | None = None,
) -> _Shape:
    return _Shape(_config(gpu, precision, tp, model, chunk_tokens), prompt, output)


def _decode_batch(shape: _Shape, rate: float, output: float, slowdown: float) -> float:
    """n = k × step(n), k = rate × output × slowdown (Little's Law over the decoding requests),
    solved by Newton steps on the step table's local line; above the slots: slots + 1."""
    k = rate * output * slowdown
    n = 1.0
    for _ in range(20):
        lo = min(max(math.floor(n), 1), shape.slots - 1) if shape.slots > 1 else 1
        s0 = shape.at(shape.decode, lo)
        slope = shape.at(shape.decode, lo + 1) - s0 if shape.slots > 1 else 0.0
        if k * slope >= 1:
            return shape.slots + 1.0
        new = k * (s0 - slope * lo) / (1 - k * slope)
        if abs(new - n) < 1e-9 * max(1.0, n):
            return new
        n = new
        if n > shape.slots:
            return shape.slots + 1.0
    return n


def _wait_p95(rate: float, service_s: float, servers: int) -> tuple[float, float]:
    """(mean, p95) queueing wait of M/M/c; inf when unstable."""
    if rate <= 0:
        return 0.0, 0.0
    if rate >= servers / service_s:
        return math.inf, math.inf
    if servers >= 16 and rate * service_s < 0.5 * servers:
        return 0.0, 0.0  # P(wait) < 1 % (Erlang C at c = 16, ρ = 0.5 is 0.7 %): no queue
    q = mmc(rate, 1.0 / service_s, servers) if servers > 1 else mm1(rate, 1.0 / service_s)
    return q.mean_wait_s, q.wait_percentile_s(0.95)


_INF = FleetEstimate(math.inf, math.inf, math.inf, math.inf, math.inf, math.inf, 0)


def _at_rate(
    c: FleetCandidate, shape: _Shape, rate: float, output: float
) -> tuple[FleetEstimate, float]:
    """The estimate at a fleet arrival rate, and the mean time a request spends (for Little)."""
    if c.disaggregated:
        wait_mean, wait_p95 = _wait_p95(rate, shape.prefill_s, c.prefill_replicas)
        util = rate * shape.prefill_s / c.prefill_replicas
        r_dec = rate / c.replicas
        n = _decode_batch(shape, r_dec, output, 1.0)
        itl = shape.at(shape.decode, n)
        slot_mean, slot_p95 = _wait_p95(r_dec, output * itl, shape.slots)
        if not math.isfinite(wait_mean + slot_mean) or n > shape.slots:
            return _INF, math.inf
        ttft_mean = shape.prefill_s + wait_mean + shape.transfer_s
        ttft_p95 = shape.prefill_s + wait_p95 + shape.transfer_s + slot_p95
        stay = ttft_mean + slot_mean + (output - 1) * itl
        return FleetEstimate(rate, ttft_p95, itl, itl, util, n, shape.slots), stay
    r = rate / c.replicas
    f = r * shape.prefill_s
    if f >= 1:
        return _INF, math.inf
    n = _decode_batch(shape, r, output, 1.0 / (1.0 - f))
    if n > shape.slots:
        return _INF, math.inf
    step = shape.at(shape.decode, n)
    heavy = shape.at(shape.mixed, n)
    itl_mean = step / (1.0 - f)
    share = r * shape.chunks * itl_mean
    itl_p95 = heavy if share > _ITL_TAIL_SHARE else step
    pre_mean, pre_p95 = _wait_p95(r, shape.prefill_s, 1)
    base = itl_mean / 2 + heavy * shape.chunks
    service = base + pre_mean + (output - 1) * itl_mean
    slot_mean, slot_p95 = _wait_p95(r, service, shape.slots)
    if not math.isfinite(pre_mean + slot_mean):
        return _INF, math.inf
    ttft_p95 = base + pre_p95 + slot_p95
    return FleetEstimate(rate, ttft_p95, itl_mean, itl_p95, f, n, shape.slots), service + slot_mean


def estimate_fleet(
    c: FleetCandidate, demand: FleetDemand, model: str = "llama-3.1-8b"
) -> FleetEstimate:
    """The step-model + queueing estimate of ``c`` under ``demand`` (module docstring).

    Assumptions: means of the length ranges stand for every request; the router spreads load
    evenly; waits are M/M/1 or M/M/c (Poisson arrivals, exponential service), so the p95s are
    rough: the planner simulates before it trusts them.

    Worked example: one H200 (BF16, TP1) at 2 requests/s of 2,000 → 200 tokens spends
    2 × 60.5 ms = 12 % of its time prefilling and decodes about 3 requests at once, ~7 ms a step:

    >>> e = estimate_fleet(FleetCandidate("h200-sxm", "bf16", 1, 1), FleetDemand(rate_per_s=2))
    >>> round(e.prefill_utilization, 2), e.itl_p95_s < 0.05
    (0.12, True)
    """
    shape = _shape(
        c.gpu_key,
        c.precision_key,
        c.tp,
        model,
        demand.mean_prompt_tokens,
        demand.mean_output_tokens,
        c.chunk_tokens,
    )
    output = demand.mean_output_tokens
    if demand.rate_per_s is not None:
        return _at_rate(c, shape, demand.rate_per_s, output)[0]
    users = float(demand.users or 0)
    lo, hi = 0.0, users / (shape.prefill_s + output * shape.decode[0])  # no faster than alone
    for _ in range(32):  # λ × W(λ) rises with λ: bisect for λ × W = users
        mid = 0.5 * (lo + hi)
        _, stay = _at_rate(c, shape, mid, output)
        if mid * stay < users:
            lo = mid
        else:
            hi = mid
    return _at_rate(c, shape, lo, output)[0]


def shapes(
    gpus: Sequence[str],
    precisions: Sequence[str],
    tps: Sequence[int],
    model: str,
) -> list[tuple[str, str, int]]:
    """The (GPU, precision, TP) triples that build a valid engine for ``model``."""
    out: list[tuple[str, str, int]] = []
    for g in gpus:
        for p in precisions:
            for tp in tps:
                try:
                    _config(g, p, int(tp), model)
                except ValueError:
                    continue
                out.append((g, p, int(tp)))
    return out
