"""Planning a fleet: the cheapest GPUs × precision × TP × replicas (× prefill/decode split)
that meets a p95 TTFT and ITL objective, found with the simulator, beside the estimate.

:func:`plan_fleet` works in three stages:

1. **Estimate** every shape (GPU, precision, TP; colocated or disaggregated) at every replica
   count up to ``max_gpus`` with :func:`~infphys.fleet_estimate.estimate_fleet` (step model +
   M/M/c, milliseconds each) and keep, per shape, the smallest fleet whose estimate meets the
   objective (for disaggregation, the cheapest prefill/decode split that does).
2. **Prune**: only the shapes whose estimated fleet costs at most ``(1 + cost_slack)`` × the
   cheapest fleet estimated to meet the objective go on, at most ``max_shapes`` of them.
   (Stage 1 keeps a fleet whose estimate is within ``estimate_margin`` × the objective, since
   the estimate is rough; the ceiling comes from one that meets the objective itself.)
3. **Simulate** each kept shape's estimated fleet and its neighbours (one replica fewer and
   more; for a split, one prefill or decode replica fewer and more) with
   :func:`~infphys.sim.fleet.simulate_fleet` / :func:`~infphys.sim.fleet.simulate_disaggregated`
   (least-outstanding router, ``requests`` measured requests, seeded), in parallel on local
   processes or on a Dask cluster; then walk each shape up (none met the objective) or down
   (the smallest met it) for at most ``rounds`` more rounds. Shapes go in waves by estimated
   price: when no simulated fleet that meets the objective is as cheap as the next shape's
   estimate, the next ``max_shapes`` shapes are simulated (at most ``waves`` waves).

The answer is the cheapest simulated fleet whose simulated p95 TTFT and p95 ITL both meet the
objective (ties: lower p95 TTFT). US dollars per million output tokens = the fleet's price per
hour over its simulated output tokens/s (:func:`~infphys.physics.cost_per_million_tokens`).

Parallel evaluation: ``client`` a :class:`distributed.Client` runs each simulation as one Dask
task (``pip install infphys[dask]``); otherwise ``workers`` > 1 runs them in a local
``ProcessPoolExecutor``, and ``workers=1`` in this process. The jobs are the same and seeded
the same, so every path gives the same plan.

Worked example: 1 request/s of 200 → 200 tokens, p95 TTFT ≤ 1 s and ITL ≤ 4.7 ms, H100s at
$2.50 and B200s at $5.50 an hour: every H100 decode step reads 16.06 GB of weights, 4.79 ms at
its datasheet 3.35 TB/s, so no count of H100s can meet 4.7 ms; one B200 (a ~4.4 ms step) does,
and the plan is one B200 at $5.50 an hour (``tests/test_fleet_planning.py``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from infphys import stats
from infphys._check import non_negative, positive, positive_int
from infphys.catalog import LatencySLO
from infphys.fleet_estimate import (
    ASSUMED_GPU_HOURLY_USD,
    FleetCandidate,
    FleetDemand,
    estimate_fleet,
    shapes,
)
from infphys.physics.cost import cost_per_million_tokens
from infphys.records import json_safe
from infphys.sim.fleet import simulate_disaggregated, simulate_fleet

__all__ = ["COLUMNS", "FleetPlan", "evaluate_candidate", "pareto_front", "plan_fleet"]

#: The columns of :attr:`FleetPlan.candidates`, in order.
COLUMNS = (
    "label",
    "kind",
    "gpu_key",
    "precision_key",
    "tp",
    "chunk_tokens",
    "prefill_replicas",
    "replicas",
    "gpus",
    "usd_per_hour",
    "est_ttft_p95_s",
    "est_itl_p95_s",
    "est_rate_per_s",
    "simulated",
    "sim_ttft_p95_s",
    "sim_itl_p95_s",
    "sim_rate_per_s",
    "output_tokens_per_s",
    "usd_per_million_tokens",
    "ok",
)


@dataclass(frozen=True, slots=True)
class FleetPlan:
    """What :func:`plan_fleet` found.

    Attributes:
        demand, slo, model: the question.
        candidates: one row per fleet estimated as the smallest of its shape or simulated
            (:data:`COLUMNS`), cheapest feasible first; ``ok``: simulated and meets both p95s.
        best: the answer's row as a dict, None when no simulated fleet met the objective.
        pareto: the simulated fleets no other beats on both price per hour and p95 TTFT.
        message: one line saying what was found (or why nothing was).
        simulations: how many fleets were simulated.
    """

    demand: FleetDemand
    slo: LatencySLO
    model: str
    candidates: pd.DataFrame
    best: dict[str, Any] | None
    pareto: pd.DataFrame
    message: str
    simulations: int = 0
    prices_usd: dict[str, float] = field(default_factory=dict)

    @property
    def feasible(self) -> bool:
        return self.best is not None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "model": self.model,
            "demand": {k: getattr(self.demand, k) for k in self.demand.__dataclass_fields__},
            "slo": {"ttft_p95_s": self.slo.ttft_s, "itl_p95_s": self.slo.itl_s},
            "prices_usd_per_gpu_hour": self.prices_usd,
            "feasible": self.feasible,
            "message": self.message,
            "simulations": self.simulations,
            "best": self.best,
            "pareto": _records(self.pareto),
            "candidates": _records(self.candidates),
        }


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [json_safe({str(k): v for k, v in row.items()}) for row in frame.to_dict("records")]


def evaluate_candidate(job: tuple[FleetCandidate, FleetDemand, str, int, int]) -> dict[str, Any]:
    """Simulate one fleet: ``(candidate, demand, model, requests, seed)`` → its p95s.

    Returns ``sim_ttft_p95_s``, ``sim_itl_p95_s`` (every inter-token gap of the measured
    requests), ``sim_rate_per_s`` and ``output_tokens_per_s`` over the measured window, and
    ``completed`` (finished measured requests). A top-level function of plain data, so a
    process pool or a Dask worker can run it.
    """
    cand, demand, model, requests, seed = job
    cfg = cand.config(model)
    workload = demand.workload(requests, seed=seed)
    kw: dict[str, Any] = {"router": "least-outstanding", "seed": seed, "timeseries": False}
    if cand.disaggregated:
        result = simulate_disaggregated(
            [cfg] * cand.prefill_replicas, [cfg] * cand.replicas, workload, **kw
        )
    else:
        result = simulate_fleet([cfg] * cand.replicas, workload, **kw)
    frame = stats.measured(result.records)
    ok = frame[frame["status"] == "ok"]
    ttft = stats.percentiles(ok["ttft_s"].astype(float), (95,))["p95"]
    itl = stats.percentiles(stats.itl_values(frame), (95,))["p95"]
    tput = stats.throughput(frame)
    return {
        "sim_ttft_p95_s": ttft,
        "sim_itl_p95_s": itl,
        "sim_rate_per_s": tput.requests_per_s,
        "output_tokens_per_s": tput.output_tokens_per_s,
        "completed": len(ok),
    }


def _run_all(
    jobs: list[tuple[FleetCandidate, FleetDemand, str, int, int]], workers: int, client: Any
) -> list[dict[str, Any]]:
    if not jobs:
        return []
    if client is not None:
        futures = client.map(evaluate_candidate, jobs, pure=False)
        return list(client.gather(futures))
    if workers <= 1 or len(jobs) == 1:
        return [evaluate_candidate(j) for j in jobs]
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        return list(pool.map(evaluate_candidate, jobs))


def _first(lo: int, hi: int, ok: Callable[[int], bool]) -> int | None:
    """The smallest n in [lo, hi] with ok(n), assuming ok turns true once and stays (None)."""
    if lo > hi or not ok(hi):
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _smallest(
    base: FleetCandidate, limit: int, demand: FleetDemand, model: str, slo: LatencySLO
) -> FleetCandidate | None:
    """The fewest colocated replicas (≤ ``limit``) whose estimate meets ``slo``.

    Binary search: more replicas of one shape only lower the estimated p95s."""
    n = _first(
        1,
        limit,
        lambda n: estimate_fleet(replace(base, replicas=n), demand, model).meets(slo),
    )
    return None if n is None else replace(base, replicas=n)


def _decode_grid(limit: int) -> list[int]:
    """Decode pool sizes tried: every size to 16, then about 15 % apart."""
    out = list(range(1, min(limit, 16) + 1))
    while out[-1] < limit:
        out.append(min(limit, max(out[-1] + 1, round(out[-1] * 1.15))))
    return out


def _smallest_split(
    base: FleetCandidate, limit: int, demand: FleetDemand, model: str, slo: LatencySLO
) -> FleetCandidate | None:
    """The fewest replicas split into prefill + decode whose estimate meets ``slo``.

    For each decode pool size D (:func:`_decode_grid`) the fewest prefill replicas P meeting
    the TTFT objective (binary search: more prefill replicas only lower the TTFT), then the
    ITL checked there (fewest P: the lowest arrival rate a closed loop reaches, so the best ITL
    with that TTFT)."""
    best: FleetCandidate | None = None
    for d in _decode_grid(limit - 1):
        if best is not None and d + 1 >= best.replicas + best.prefill_replicas:
            break

        def ttft_ok(p: int, d: int = d) -> bool:
            e = estimate_fleet(replace(base, replicas=d, prefill_replicas=p), demand, model)
            return e.ttft_p95_s <= slo.ttft_s

        p = _first(1, limit - d, ttft_ok)
        if p is None:
            continue
        c = replace(base, replicas=d, prefill_replicas=p)
        if estimate_fleet(c, demand, model).meets(slo) and (best is None or c.gpus < best.gpus):
            best = c
    return best


def _neighbours(c: FleetCandidate) -> list[FleetCandidate]:
    out = [c]
    if c.disaggregated:
        for dp, dd in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            p, d = c.prefill_replicas + dp, c.replicas + dd
            if p >= 1 and d >= 1:
                out.append(replace(c, replicas=d, prefill_replicas=p))
    else:
        for dn in (-1, 1):
            if c.replicas + dn >= 1:
                out.append(replace(c, replicas=c.replicas + dn))
    return out


def _next(same: list[FleetCandidate], good: list[FleetCandidate]) -> FleetCandidate | None:
    """The next fleet of one shape to simulate, from those simulated (``same``, by size) and
    those that met the objective (``good``): none met it: a quarter more replicas than the
    largest; the smallest met it: bisect towards the largest that missed below it (each pool
    of a split halfway), or a quarter fewer when none missed."""
    if not same:
        return None
    if not good:
        c = same[-1]
        up, pup = max(1, math.ceil(0.25 * c.replicas)), max(1, math.ceil(0.25 * c.prefill_replicas))
        p = c.prefill_replicas + pup if c.disaggregated else 0
        return replace(c, replicas=c.replicas + up, prefill_replicas=p)
    g = good[0]
    below = [c for c in same if c.gpus < g.gpus and c not in good]
    if g.disaggregated:
        if below:  # halfway (per pool) towards the largest that missed
            b = below[-1]
            d = (b.replicas + g.replicas) // 2
            p = (b.prefill_replicas + g.prefill_replicas) // 2
            c = replace(g, replicas=max(1, d), prefill_replicas=max(1, p))
            return None if c.gpus >= g.gpus or c.gpus <= b.gpus else c
        if g.replicas <= 1 and g.prefill_replicas <= 1:
            return None
        d = max(1, math.floor(0.75 * g.replicas))
        p = max(1, math.floor(0.75 * g.prefill_replicas))
        return replace(g, replicas=d, prefill_replicas=p)
    if below:
        lo = below[-1].replicas
        if g.replicas - lo <= 1:
            return None
        return replace(g, replicas=(lo + g.replicas) // 2)
    if g.replicas <= 1:
        return None
    down = max(1, math.floor(0.25 * g.replicas))
    return replace(g, replicas=g.replicas - down)


def _walk(
    starts: list[FleetCandidate],
    simulated: dict[FleetCandidate, dict[str, Any]],
    meets: Callable[[dict[str, Any]], bool],
    rounds: int,
    limit: int,
    demand: FleetDemand,
    model: str,
    requests: int,
    seed: int,
    workers: int,
    client: Any,
) -> None:
    """Simulate each start and its neighbours, then walk each shape (:func:`_next`) for
    ``rounds`` more rounds; results go into ``simulated``."""
    todo = [n for c in starts for n in _neighbours(c) if n.gpus <= limit]
    for rnd in range(rounds + 1):
        todo = [c for c in dict.fromkeys(todo) if c not in simulated]
        jobs = [(c, demand, model, requests, seed) for c in todo]
        for c, r in zip(todo, _run_all(jobs, workers, client), strict=True):
            simulated[c] = r
        if rnd == rounds:
            return
        todo = []
        for s in starts:
            key = (s.gpu_key, s.precision_key, s.tp, s.chunk_tokens, s.disaggregated)
            same = sorted(
                (
                    c
                    for c in simulated
                    if (c.gpu_key, c.precision_key, c.tp, c.chunk_tokens, c.disaggregated) == key
                ),
                key=lambda c: (c.gpus, c.prefill_replicas),
            )
            nxt = _next(same, [c for c in same if meets(simulated[c])])
            if nxt is not None and nxt not in simulated and nxt.gpus <= limit:
                todo.append(nxt)
        if not todo:
            return


def pareto_front(
    frame: pd.DataFrame, x: str = "usd_per_hour", y: str = "sim_ttft_p95_s"
) -> pd.DataFrame:
    """The rows no other row beats on both ``x`` and ``y`` (lower is better), sorted by ``x``.

    A row is dominated when another is no worse on both and better on one. Rows with a NaN in
    either column are left out.

    >>> f = pd.DataFrame({"usd_per_hour": [1, 2, 3, 2], "sim_ttft_p95_s": [5, 1, 0.5, 3]})
    >>> pareto_front(f)["usd_per_hour"].tolist()
    [1, 2, 3]
    """
    f = frame.dropna(subset=[x, y]).sort_values([x, y], kind="stable")
    keep: list[int] = []
    best_y = math.inf
    for idx, yv in zip(f.index, f[y].astype(float), strict=True):
        if yv < best_y:
            keep.append(idx)
            best_y = yv
    return f.loc[keep].reset_index(drop=True)


def plan_fleet(
    demand: FleetDemand,
    slo: LatencySLO,
    *,
    model: str = "llama-3.1-8b",
    prices_usd: Mapping[str, float] | None = None,
    precisions: Sequence[str] = ("bf16", "fp8"),
    tps: Sequence[int] = (1, 2, 4),
    chunk_tokens: Sequence[int | None] = (None, 2048),
    disaggregation: bool = True,
    max_gpus: int = 256,
    requests: int | None = None,
    seed: int = 0,
    cost_slack: float = 0.5,
    max_shapes: int = 8,
    rounds: int = 3,
    estimate_margin: float = 1.5,
    waves: int = 3,
    workers: int = 1,
    client: Any = None,
) -> FleetPlan:
    """The cheapest fleet meeting ``slo`` for ``demand``, simulated (module docstring).

    Args:
        demand: users or arrival rate, prompt and output lengths.
        slo: p95 TTFT and p95 ITL objectives.
        model: catalog model key.
        prices_usd: GPU key → US dollars per GPU-hour; only these GPUs are considered
            (default :data:`~infphys.fleet_estimate.ASSUMED_GPU_HOURLY_USD`, assumptions).
        precisions, tps: precisions (weights and KV cache) and TP degrees to try.
        chunk_tokens: token budgets per engine step (vLLM's ``max_num_batched_tokens``) to
            try; None is the engine's default (8,192). A smaller budget holds fewer prompts in
            one step, so a decoder's worst gap is shorter (default: both).
        disaggregation: also try prefill/decode splits.
        max_gpus: the largest fleet considered.
        requests: measured requests per simulation (default: 2 × users, or 1,000 arrivals;
            at least 200).
        seed: seeds every simulation.
        cost_slack, max_shapes: pruning (stage 2).
        estimate_margin: stage 1 keeps a fleet whose estimated p95s are within this multiple
            of the objective (the estimate is rough; the simulation decides).
        waves: most waves of shapes simulated (stage 3).
        rounds: extra rounds of walking a shape's replica count after the first.
        workers: local processes (1: in this process); ignored when ``client`` is given.
        client: a ``distributed.Client``: run the simulations on its cluster.

    Raises:
        ValueError: naming the argument, for bad input.
    """
    if not isinstance(demand, FleetDemand):
        raise ValueError(f"demand must be a FleetDemand (got {demand!r})")
    if not isinstance(slo, LatencySLO):
        raise ValueError(f"slo must be a LatencySLO (got {slo!r})")
    prices = dict(ASSUMED_GPU_HOURLY_USD if prices_usd is None else prices_usd)
    if not prices:
        raise ValueError("prices_usd must name at least one GPU")
    for k, v in prices.items():
        if not (isinstance(v, int | float) and v > 0):
            raise ValueError(f"prices_usd[{k!r}] must be a price > 0 (got {v!r})")
    limit = positive_int("max_gpus", max_gpus)
    positive_int("workers", workers)
    positive_int("max_shapes", max_shapes)
    slack = non_negative("cost_slack", cost_slack)
    margin = positive("estimate_margin", estimate_margin)
    loose = LatencySLO(slo.ttft_s * margin, slo.itl_s * margin)
    positive_int("waves", waves)
    if not isinstance(rounds, int) or rounds < 0:
        raise ValueError(f"rounds must be a whole number >= 0 (got {rounds!r})")
    n_req = (
        positive_int("requests", requests)
        if requests is not None
        else max(200, 2 * demand.users if demand.users is not None else 1000)
    )
    chunks = list(dict.fromkeys(chunk_tokens))
    for ch in chunks:
        if ch is not None:
            positive_int("chunk_tokens", ch)
    if not chunks:
        raise ValueError("chunk_tokens must hold at least one budget (None: the default)")
    triples = shapes(list(prices), precisions, tps, model)
    if not triples:
        raise ValueError(f"no GPU × precision × TP in the lists builds an engine for {model!r}")

    # Stage 1: the smallest fleet of each shape whose estimate meets the objective.
    starts: list[FleetCandidate] = []
    for (g, p, tp), chunk in itertools.product(triples, chunks):
        base = FleetCandidate(g, p, tp, 1, 0, chunk)
        found = [_smallest(base, limit // tp, demand, model, loose)]
        if disaggregation and limit // tp >= 2:
            found.append(_smallest_split(base, limit // tp, demand, model, loose))
        starts.extend(c for c in found if c is not None)

    # Stage 2: prune by estimated price.
    def price(c: FleetCandidate) -> float:
        return c.gpus * prices[c.gpu_key]

    starts.sort(key=lambda c: (price(c), c.label))
    estimated = list(starts)
    first = 0
    if starts:
        # The cheapest fleet whose estimate meets the objective itself sets the ceiling; a
        # fleet that only meets it within the margin cannot lower it.
        strict = [c for c in starts if estimate_fleet(c, demand, model).meets(slo)]
        ceiling = (1.0 + slack) * price(strict[0] if strict else starts[0])
        first = max(1, min(max_shapes, sum(1 for c in starts if price(c) <= ceiling)))

    # Stage 3: simulate around each estimate, then walk each shape; in waves of shapes by
    # estimated price, until a simulated fleet that meets the objective costs no more than the
    # next shape's estimated fleet (or ``waves`` waves ran).
    simulated: dict[FleetCandidate, dict[str, Any]] = {}

    def meets(r: dict[str, Any]) -> bool:
        return bool(r["sim_ttft_p95_s"] <= slo.ttft_s and r["sim_itl_p95_s"] <= slo.itl_s)

    done = 0
    for wave in range(waves):
        batch = estimated[done : done + (first if wave == 0 else max_shapes)]
        met = [price(c) for c, r in simulated.items() if meets(r)]
        if not batch or (met and min(met) <= price(batch[0])):
            break
        done += len(batch)
        _walk(batch, simulated, meets, rounds, limit, demand, model, n_req, seed, workers, client)
    rows = []
    for c in dict.fromkeys([*estimated, *simulated]):
        e = estimate_fleet(c, demand, model)
        r = simulated.get(c)
        usd_h = price(c)
        tps_out = float(r["output_tokens_per_s"]) if r else math.nan
        rows.append(
            {
                "label": c.label,
                "kind": "disaggregated" if c.disaggregated else "colocated",
                "gpu_key": c.gpu_key,
                "precision_key": c.precision_key,
                "tp": c.tp,
                "chunk_tokens": c.chunk_tokens,
                "prefill_replicas": c.prefill_replicas,
                "replicas": c.replicas,
                "gpus": c.gpus,
                "usd_per_hour": usd_h,
                "est_ttft_p95_s": float(e.ttft_p95_s),
                "est_itl_p95_s": float(e.itl_p95_s),
                "est_rate_per_s": float(e.rate_per_s),
                "simulated": r is not None,
                "sim_ttft_p95_s": float(r["sim_ttft_p95_s"]) if r else math.nan,
                "sim_itl_p95_s": float(r["sim_itl_p95_s"]) if r else math.nan,
                "sim_rate_per_s": float(r["sim_rate_per_s"]) if r else math.nan,
                "output_tokens_per_s": tps_out,
                "usd_per_million_tokens": (
                    cost_per_million_tokens(usd_h, tps_out)
                    if math.isfinite(tps_out) and tps_out > 0
                    else math.nan
                ),
                "ok": bool(r is not None and meets(r)),
            }
        )
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    if len(table):
        table = table.sort_values(
            ["ok", "usd_per_hour", "sim_ttft_p95_s", "label"],
            ascending=[False, True, True, True],
            na_position="last",
        ).reset_index(drop=True)
    feasible = table[table["ok"]] if len(table) else table
    best = _records(feasible.head(1))[0] if len(feasible) else None
    pareto = pareto_front(table[table["simulated"]]) if len(table) else table
    if best is not None:
        gpus = f"{best['gpus']} GPU" + ("s" if best["gpus"] != 1 else "")
        message = (
            f"cheapest fleet meeting p95 TTFT ≤ {slo.ttft_s:g} s and p95 ITL ≤ "
            f"{slo.itl_s * 1e3:g} ms: {best['label']} ({gpus}, "
            f"${best['usd_per_hour']:.2f}/h; simulated p95 TTFT {best['sim_ttft_p95_s']:.3f} s, "
            f"p95 ITL {best['sim_itl_p95_s'] * 1e3:.1f} ms)"
        )
    elif not starts:
        message = (
            f"no fleet of up to {limit} GPUs meets p95 TTFT ≤ {slo.ttft_s:g} s and p95 ITL ≤ "
            f"{slo.itl_s * 1e3:g} ms even by the estimate: relax the objective or allow "
            "faster GPUs, FP8 or more GPUs"
        )
    else:
        message = (
            f"no simulated fleet met p95 TTFT ≤ {slo.ttft_s:g} s and p95 ITL ≤ "
            f"{slo.itl_s * 1e3:g} ms ({len(simulated)} simulated): the estimate was "
            "optimistic; raise rounds or max_gpus, or relax the objective"
        )
    return FleetPlan(
        demand=demand,
        slo=slo,
        model=model,
        candidates=table,
        best=best,
        pareto=pareto,
        message=message,
        simulations=len(simulated),
        prices_usd=prices,
    )
