"""``infphys plan-fleet``: the cheapest fleet meeting a p95 TTFT and ITL objective.

Calls :func:`infphys.fleet_planning.plan_fleet` and prints the answer, the fleets it simulated
(with the estimate beside each) and the Pareto front of price against p95 TTFT; ``--json``
prints :meth:`~infphys.fleet_planning.FleetPlan.as_dict`. Bad input prints one line and exits 2.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

from infphys.catalog import LatencySLO
from infphys.cli._app import check_option, command, console, parse_list, print_json
from infphys.cli._options import SimulatedPromptTokensOpt
from infphys.cli._tables import column_table, fmt
from infphys.fleet_estimate import ASSUMED_GPU_HOURLY_USD, FleetDemand
from infphys.fleet_planning import plan_fleet


def _prices(items: list[str] | None) -> dict[str, float]:
    """``["h100-sxm=2.5", …]`` → a price table (default: the assumed prices)."""
    if not items:
        return dict(ASSUMED_GPU_HOURLY_USD)
    out: dict[str, float] = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            price = float(value)
        except ValueError:
            price = float("nan")
        if not sep or not key or not price > 0:
            raise ValueError(f"--price must be GPU=USD_PER_HOUR with a price > 0 (got {item!r})")
        out[key.strip()] = price
    return out


def _chunks(text: str | None) -> tuple[int | None, ...]:
    """``"8192,2048"`` → (8192, 2048); None → the planner's default (the engine's 8,192
    and 2,048)."""
    if text is None:
        return (None, 2048)
    return tuple(parse_list("--chunk-tokens", text, int))


@command("plan-fleet")
def plan_fleet_command(
    users: Annotated[
        int | None, typer.Option("--users", help="Concurrent users (closed loop, no think time).")
    ] = None,
    rate: Annotated[
        float | None, typer.Option("--rate", help="Or: Poisson arrivals, requests/s.")
    ] = None,
    prompt_tokens: SimulatedPromptTokensOpt = 2000,
    output_tokens: Annotated[int, typer.Option("--output-tokens", help="Output tokens.")] = 200,
    prompt_tokens_max: Annotated[
        int | None, typer.Option("--prompt-tokens-max", help="Uniform prompt lengths up to this.")
    ] = None,
    output_tokens_max: Annotated[
        int | None, typer.Option("--output-tokens-max", help="Uniform output lengths up to this.")
    ] = None,
    p95_ttft_s: Annotated[float, typer.Option("--p95-ttft-s", help="p95 TTFT objective, s.")] = 1.0,
    p95_itl_ms: Annotated[
        float, typer.Option("--p95-itl-ms", help="p95 ITL objective, ms.")
    ] = 50.0,
    model: Annotated[str, typer.Option("--model", "-m", help="Catalog model.")] = "llama-3.1-8b",
    price: Annotated[
        list[str] | None,
        typer.Option("--price", help="GPU=USD per GPU-hour (repeat; only these GPUs are tried)."),
    ] = None,
    max_gpus: Annotated[int, typer.Option("--max-gpus", help="Largest fleet considered.")] = 256,
    requests: Annotated[
        int | None, typer.Option("--requests", help="Measured requests per simulation.")
    ] = None,
    chunk_tokens: Annotated[
        str | None,
        typer.Option(
            "--chunk-tokens",
            help="Token budgets per engine step to try, comma-separated (default: 8192,2048).",
        ),
    ] = None,
    no_disaggregation: Annotated[
        bool, typer.Option("--no-disaggregation", help="Colocated fleets only.")
    ] = False,
    workers: Annotated[
        int, typer.Option("--workers", help="Local processes simulating (default: CPU count).")
    ] = 0,
    scheduler: Annotated[
        str | None,
        typer.Option("--scheduler", help="A Dask scheduler address (needs infphys[dask])."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seeds every simulation.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Find the cheapest fleet (GPU × precision × TP × replicas, or a prefill/decode split)
    that meets a p95 TTFT and ITL objective, simulated, beside the queueing estimate."""
    check_option("--users", users, at_least=1)
    check_option("--rate", rate, above=0)
    check_option("--prompt-tokens", prompt_tokens, at_least=1)
    check_option("--output-tokens", output_tokens, at_least=1)
    check_option("--p95-ttft-s", p95_ttft_s, above=0)
    check_option("--p95-itl-ms", p95_itl_ms, above=0)
    check_option("--max-gpus", max_gpus, at_least=1)
    check_option("--requests", requests, at_least=1)
    check_option("--workers", workers, at_least=0)
    if (users is None) == (rate is None):
        raise ValueError("give exactly one of --users and --rate")
    demand = FleetDemand(
        users=users,
        rate_per_s=rate,
        prompt_tokens=prompt_tokens,
        output_tokens=output_tokens,
        prompt_tokens_max=prompt_tokens_max,
        output_tokens_max=output_tokens_max,
    )
    slo = LatencySLO(p95_ttft_s, p95_itl_ms / 1e3)
    kw: dict[str, Any] = {
        "model": model,
        "chunk_tokens": _chunks(chunk_tokens),
        "prices_usd": _prices(price),
        "max_gpus": max_gpus,
        "requests": requests,
        "disaggregation": not no_disaggregation,
        "seed": seed,
        "workers": workers or max(1, os.cpu_count() or 1),
    }
    if scheduler is not None:
        try:
            from distributed import Client
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ValueError("--scheduler needs Dask: pip install 'infphys[dask]'") from exc
        with Client(scheduler) as client:  # type: ignore[no-untyped-call]
            plan = plan_fleet(demand, slo, client=client, **kw)
    else:
        plan = plan_fleet(demand, slo, **kw)
    if as_json:
        print_json(plan.as_dict())
        return
    console.print(plan.message, highlight=False)
    sim = plan.candidates[plan.candidates["simulated"]]
    t = column_table(
        "Fleets simulated (estimate: step model + M/M/c)",
        ("fleet", "GPUs", "$/h", "$/M tok", "TTFT p95 s", "est.", "ITL p95 ms", "est.", "ok"),
        text=("fleet",),
    )
    for r in sim.to_dict("records"):
        t.add_row(
            str(r["label"]),
            str(r["gpus"]),
            f"{r['usd_per_hour']:,.2f}",
            fmt(r["usd_per_million_tokens"], 3),
            fmt(r["sim_ttft_p95_s"], 3),
            fmt(r["est_ttft_p95_s"], 3),
            fmt(r["sim_itl_p95_s"], 1, scale=1e3),
            fmt(r["est_itl_p95_s"], 1, scale=1e3),
            "yes" if r["ok"] else "no",
        )
    console.print(t)
    front = ", ".join(
        f"{r['label']} (${r['usd_per_hour']:,.2f}/h, {r['sim_ttft_p95_s']:.3f} s)"
        for r in plan.pareto.to_dict("records")
    )
    console.print(f"Pareto front (price vs p95 TTFT): {front}", highlight=False)
    console.print(
        "GPU-hour prices assumed: "
        + ", ".join(f"{k} ${v:.2f}" for k, v in plan.prices_usd.items()),
        highlight=False,
    )
