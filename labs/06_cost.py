# /// script
# requires-python = ">=3.11"
# dependencies = [
#     "marimo==0.25.2",
#     "numpy>=1.26",
#     "pandas>=2.1",
#     "plotly>=5.20",
#     # infphys itself: installed from this repository (pip install -e ".[labs]").
#     "infphys",
# ]
# ///

import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Lab 6 · What a user costs")


@app.cell(hide_code=True)
def _():
    # marimo alone first: the title and the prose show while the other imports load.
    import marimo as mo

    return (mo,)


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    # Lab 6 · What a concurrent user costs

    *A GPU is billed by the hour whether it is busy or not, so the price of a user is the fleet's
    price divided by the users it can serve **within your latency objective** — not at its peak
    throughput.*

    **Time: about 5 minutes.** First the back-of-envelope calculator, then the price at a real
    (simulated) capacity. Sections 3 (what a second GPU costs) and 4 (own, rent or pay per
    token) are for after the session, about 10 minutes more.
    """)
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## The idea

    $$\text{cost per user-hour} = \frac{\text{GPUs} \times \text{price per GPU-hour}}
    {\text{concurrent users served}} \qquad
    \text{cost per } 10^6 \text{ tokens} = \frac{\text{GPUs} \times \text{price per GPU-hour}}
    {3600} \times \frac{10^6}{\text{output tokens/s}}$$

    Both denominators are capacities, and a capacity only means something **at an SLO**: a
    server "handles" any number of users if they are willing to wait. Here the SLO is the p95
    time per output token (TPOT): 50 ms means every user streams at least 20 tokens/s. It starts
    at the **reading pace**, about 190 ms per token: adults read about 238 words a minute
    silently (Brysbaert 2019), some 317 tokens, and faster text is not read faster
    (`infphys.catalog.DEFAULT_SLO`; the cost chapter derives it).
    """)
    return


@app.cell
def _(labsetup, mo):
    calculator_controls, _view = labsetup.controls(
        {
            "gpu_hourly_usd": mo.ui.number(
                0.1, 50.0, step=0.05, value=2.5, label="price per GPU-hour (USD)"
            ),
            "num_gpus": mo.ui.number(1, 1024, step=1, value=8, label="GPUs in the fleet"),
            "concurrent_users": mo.ui.number(
                1, 1_000_000, step=1, value=400, label="concurrent users served"
            ),
        },
        title="1 · The calculator",
    )
    _view
    return (calculator_controls,)


@app.cell(hide_code=True)
def _():
    import pandas as pd

    from infphys import catalog, evidence, fmt, physics, planning, plots, sim
    from infphys.exercises import labsetup, ui

    ui.offline_note()
    return (
        catalog,
        evidence,
        fmt,
        labsetup,
        pd,
        physics,
        planning,
        plots,
        sim,
        ui,
    )


@app.cell
def _(calculator_controls, labsetup):
    # The settings as plain values, one cell a section: a test overrides a section's at once.
    gpu_hourly_usd, num_gpus, concurrent_users = labsetup.settings(
        calculator_controls, "gpu_hourly_usd", "num_gpus", "concurrent_users"
    )
    return concurrent_users, gpu_hourly_usd, num_gpus


@app.cell
def _(concurrent_users, fmt, gpu_hourly_usd, mo, num_gpus, physics):
    user_cost = physics.cost_per_concurrent_user(gpu_hourly_usd, concurrent_users, num_gpus=num_gpus)
    mo.hstack(
        [
            mo.stat(fmt.usd(user_cost.fleet_per_hour_usd), label="fleet per hour"),
            mo.stat(fmt.usd(user_cost.per_hour_usd, 4), label="per user-hour"),
            mo.stat(fmt.usd(user_cost.per_month_usd), label="per user-month (730 h)"),
        ],
        justify="start",
    )
    return (user_cost,)


@app.cell
def _(catalog, labsetup, mo):
    price_controls, _view = labsetup.controls(
        {
            "model": labsetup.model_select("Llama-3.1-8B"),
            "gpu": labsetup.gpu_select("H100 SXM", "GPU (one replica)"),
            # Default: the reading pace (DEFAULT_SLO.itl_s, 189 ms), rounded to the slider's 5 ms
            # step.
            "tpot_slo_ms": mo.ui.slider(
                10, 200, step=5, value=int(round(catalog.DEFAULT_SLO.itl_ms / 5) * 5),
                show_value=True, label="SLO: p95 TPOT (ms)",
            ),
        },
        {
            "prompt_tokens": labsetup.int_dropdown([256, 1024, 4096], 1024, "prompt tokens"),
            "output_tokens": labsetup.int_dropdown([128, 256, 512], 256, "output tokens"),
            "seed": labsetup.seed_input(),
        },
        title="2 · The price at a simulated capacity",
    )
    _view
    return (price_controls,)


@app.cell
def _(labsetup, price_controls):
    model, gpu, _tpot_slo_ms, prompt_tokens, output_tokens, seed = labsetup.settings(
        price_controls, "model", "gpu", "tpot_slo_ms", "prompt_tokens", "output_tokens", "seed"
    )
    tpot_slo_s = _tpot_slo_ms / 1e3
    return gpu, model, output_tokens, prompt_tokens, seed, tpot_slo_s


@app.cell
def _():
    # Concurrency levels of the sweep (closed-loop users).
    levels = [1, 2, 4, 8, 16, 32, 64, 128, 256]
    return (levels,)


@app.cell
def _(gpu, levels, model, output_tokens, pd, prompt_tokens, seed, sim):
    # A closed-loop sweep on the simulator (virtual time): infphys.sim.sweep, one row per level.
    try:
        _config = sim.EngineConfig.build(gpu=gpu, model=model, seed=seed,
                                         max_model_len=prompt_tokens + output_tokens)
    except ValueError as _exc:
        sweep, sim_problem = pd.DataFrame(), str(_exc)
    else:
        sweep = sim.sweep(
            _config, levels, prompt_tokens=prompt_tokens, max_tokens=output_tokens,
            rounds_per_level=2, min_requests_per_level=8, seed=seed, timeseries=False,
        ).summary()  # fmt: skip
        sim_problem = ""
    return sim_problem, sweep


@app.cell
def _(gpu_hourly_usd, physics, planning, sweep, tpot_slo_s):
    # The SLO cap and the price of a token at every level (one call each).
    if sweep.empty:
        plan = None
    else:
        sweep["usd_per_million_tokens"] = [
            physics.cost_per_million_tokens(gpu_hourly_usd, _tps) for _tps in sweep["output_tokens_per_s"]
        ]
        plan = planning.plan_capacity(sweep, slo_s=tpot_slo_s, users=1, latency_column="tpot_p95_s")
    cap_users = None if plan is None or plan.cap is None else int(plan.cap)
    cap_tokens_per_s = None if cap_users is None else plan.cap_output_tokens_per_s
    return cap_tokens_per_s, cap_users


@app.cell
def _(cap_users, gpu, mo, model, plots, sim_problem, sweep, tpot_slo_s):
    if sweep.empty:
        _out = mo.callout(mo.md(f"The simulator cannot run this configuration: {sim_problem}"),
                          kind="warn")
    else:
        _out = plots.labs.slo_sweep(
            sweep, slo_s=tpot_slo_s, cap=cap_users,
            title=f"Simulated {gpu.name}, {model.name}: latency and price against concurrency",
        )
    _out
    return


@app.cell
def _(
    cap_tokens_per_s,
    cap_users,
    gpu,
    gpu_hourly_usd,
    model,
    output_tokens,
    pd,
    physics,
    prompt_tokens,
):
    from infphys.analysis import comparison_table

    # Theory (the decode roofline at the cap, mid-answer context) against the simulator.
    if cap_users is None:
        comparison = pd.DataFrame()
    else:
        _ctx = prompt_tokens + output_tokens // 2
        _theory = physics.tokens_per_s_ceiling(gpu, model, cap_users, _ctx)[1]
        comparison = comparison_table(
            [
                ("output tokens/s at the cap", _theory, cap_tokens_per_s, "tokens/s"),
                ("price at the cap", physics.cost_per_million_tokens(gpu_hourly_usd, _theory),
                 physics.cost_per_million_tokens(gpu_hourly_usd, cap_tokens_per_s),
                 "USD per million output tokens"),
            ]
        ).rename(columns={"measured": "simulated"})  # fmt: skip
    comparison
    return comparison, comparison_table


@app.cell(hide_code=True)
def _(cap_users, fmt, mo, output_tokens, prompt_tokens):
    _prefill = (
        ""
        if cap_users is None
        else f" Here {fmt.count(cap_users)} users each finish one answer every "
        f"{output_tokens} steps, so every step also computes about "
        f"{fmt.count(cap_users * prompt_tokens / output_tokens)} prompt tokens for the requests "
        "that replace them."
    )
    mo.md(
        "The roofline above prices pure decode steps. The simulated server also computes the "
        "prompts of arriving requests inside the same steps (chunked prefill), and pays a fixed "
        "overhead per step." + _prefill + " Pricing from a datasheet is optimistic: price from a "
        "measured — or at least simulated — capacity."
    )
    return


@app.cell
def _(cap_tokens_per_s, cap_users, fmt, gpu, gpu_hourly_usd, levels, mo, physics, tpot_slo_s):
    if cap_users is None:
        cost_per_user_month_usd = cost_per_million_usd = None
        _text = (
            f"**Key takeaway.** Not even one user meets a p95 TPOT of {fmt.ms(tpot_slo_s)} on "
            f"this {gpu.name}: loosen the SLO or pick a faster GPU."
        )
    else:
        cost_per_user_month_usd = physics.cost_per_concurrent_user(
            gpu_hourly_usd, cap_users
        ).per_month_usd
        cost_per_million_usd = physics.cost_per_million_tokens(gpu_hourly_usd, cap_tokens_per_s)
        _text = (
            f"**Key takeaway.** At a p95 TPOT of {fmt.ms(tpot_slo_s)}, one {gpu.name} at "
            f"{fmt.usd(gpu_hourly_usd)}/h serves **{fmt.count(cap_users)} concurrent users**: "
            f"**{fmt.usd(cost_per_user_month_usd)} per user-month** and "
            f"**{fmt.usd(cost_per_million_usd, 3)} per million output tokens**. Tighten the SLO "
            "and both go up: latency is what you are buying."
        )
        if cap_users == max(levels):
            _text += (
                f" ({fmt.count(cap_users)} is the largest concurrency swept: at this SLO latency "
                "does not bind below it, the KV cache or the engine's batch cap will.)"
            )
    # A dollar sign opens LaTeX in marimo's markdown: escape it.
    mo.callout(mo.md(_text.replace("$", r"\$")), kind="info")
    return cost_per_million_usd, cost_per_user_month_usd


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## 3 · What a second GPU buys, in dollars

    NVIDIA measured the same NIM deployments at two tensor-parallel sizes (Llama-3-8B on one and
    two GPUs, Llama-3-70B on four and eight). A larger instance answers faster, but every GPU is
    billed: if each GPU of the pair does 70 % of the work one GPU does alone, a million tokens
    cost 1 / 0.70 = 1.43 times as much. The table prices every measured row at your price per
    GPU-hour (section 1) and takes the median over prompt lengths and concurrencies.
    """)
    return


@app.cell
def _(evidence, gpu_hourly_usd):
    # The measured rows alone (no simulation); the site's capacity chapter uses the same table.
    tp_costs = evidence.tp_cost(gpu_hourly_usd)
    tp_costs[
        ["config", "rows", "per_gpu_ratio", "usd_per_million_small", "usd_per_million_large",
         "cost_ratio"]
    ].round(3)
    return (tp_costs,)


@app.cell
def _(fmt, mo, tp_costs):
    _worst = tp_costs.loc[tp_costs["cost_ratio"].idxmax()]
    _best = tp_costs.loc[tp_costs["cost_ratio"].idxmin()]
    mo.callout(
        mo.md(
            f"**Key takeaway.** Per token, the larger instance costs **{_best.cost_ratio:.2f}×** "
            f"({_best.config}) to **{_worst.cost_ratio:.2f}×** ({_worst.config}) as much: each "
            f"GPU does {fmt.pct(_worst.per_gpu_ratio, 0)}–{fmt.pct(_best.per_gpu_ratio, 0)} of "
            "the work it did in the smaller instance. Buy the second GPU for latency or for "
            "room in the KV cache, not for cheaper tokens. Data: "
            f"{tp_costs.source.iloc[0]}."
        ),
        kind="info",
    )
    return


@app.cell
def _(mo):
    replay_button = mo.ui.run_button(
        label="Replay these rows on the simulator (15–30 s) and compare, as on the site"
    )
    replay_button
    return (replay_button,)


@app.cell
def _(evidence, mo, plots, replay_button):
    # The capacity chapter's chart: the same function, the same table (measured and simulated).
    if replay_button.value:
        tp_replayed = evidence.tp_scaling()
        _out = plots.measured.tp_scaling_measured_vs_simulated(tp_replayed)
    else:
        tp_replayed = None
        _out = mo.md("*Press the button to replay every measured row on the simulator.*")
    _out
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## 4 · Own, rent or pay per token: the total cost of ownership

    Three ways to serve the same load for a year, each priced per million input and output
    tokens. Owned servers and rented GPUs must be **sized for the peak** and are paid for every
    hour; an API bills the tokens of the average load. A GPU splits its time between prefill
    ($I/r_\text{in}$ GPUs busy for $I$ input tokens/s) and decode ($O/r_\text{out}$), and the
    bill is split between input and output tokens by that time.

    **Every price below is an example input, not a quote: put in your own.** The GPU rates start
    from the roofline for the model and GPU of section 2 at its simulated SLO cap; the cloud
    price is the price per GPU-hour of section 1.
    """)
    return


@app.cell
def _(cap_users, gpu, mo, model, output_tokens, physics, prompt_tokens):
    # Defaults for one GPU's rates: roofline prefill of one prompt, roofline decode at the cap.
    _defaults = physics.roofline_throughput(
        gpu, model, prompt_tokens=prompt_tokens, users=cap_users or 1,
        context_tokens=prompt_tokens + output_tokens // 2,
    )
    tco_inputs = mo.ui.dictionary(
        {
            "avg_in": mo.ui.number(1, 10_000_000, step=100, value=20_000,
                                   label="average input tokens/s (example)"),
            "avg_out": mo.ui.number(1, 10_000_000, step=100, value=2_000,
                                    label="average output tokens/s (example)"),
            "peak": mo.ui.slider(1.0, 10.0, step=0.5, value=3.0, show_value=True,
                                 label="peak ÷ average (example)"),
            "prefill": mo.ui.number(1, 10_000_000, step=100, value=round(_defaults.input_tokens_per_s),
                                    label="one GPU's prefill, tokens/s"),
            "decode": mo.ui.number(1, 10_000_000, step=10, value=round(_defaults.output_tokens_per_s),
                                   label="one GPU's decode at the SLO, tokens/s"),
            "server_usd": mo.ui.number(1_000, 10_000_000, step=1_000, value=300_000,
                                       label="server price, USD (example)"),
            "server_gpus": mo.ui.number(1, 16, step=1, value=8, label="GPUs per server"),
            "years": mo.ui.number(1, 10, step=0.5, value=4, label="written off over, years"),
            "kw": mo.ui.number(0.1, 50, step=0.1, value=10.2, label="server power, kW (example)"),
            "power_util": mo.ui.slider(0.0, 1.0, step=0.05, value=0.6, show_value=True,
                                       label="average power draw, share of rated"),
            "usd_per_kwh": mo.ui.number(0.01, 1.0, step=0.01, value=0.10,
                                        label="electricity, USD/kWh (example)"),
            "pue": mo.ui.number(1.0, 3.0, step=0.05, value=1.4, label="PUE (example)"),
            "ru": mo.ui.number(1, 20, step=1, value=8, label="rack units per server"),
            "usd_per_ru_year": mo.ui.number(1, 10_000, step=10, value=500,
                                            label="hosting, USD per rack unit per year (example)"),
            "api_in": mo.ui.number(0.001, 100, step=0.01, value=0.10,
                                   label="API, USD per million input tokens (example)"),
            "api_out": mo.ui.number(0.001, 100, step=0.01, value=0.40,
                                    label="API, USD per million output tokens (example)"),
        }
    )  # fmt: skip

    def _row(*keys: str) -> object:
        return mo.hstack([tco_inputs[_k] for _k in keys], justify="start")

    mo.vstack(
        [
            mo.md("**The load**"),
            _row("avg_in", "avg_out", "peak"),
            mo.md("**One GPU's rates**"),
            _row("prefill", "decode"),
            mo.md("**Owning a server**"),
            _row("server_usd", "server_gpus", "years"),
            _row("kw", "power_util", "usd_per_kwh", "pue"),
            _row("ru", "usd_per_ru_year"),
            mo.md("**A per-token API**"),
            _row("api_in", "api_out"),
        ]
    )
    return (tco_inputs,)


@app.cell
def _(gpu_hourly_usd, physics, tco_inputs):
    from infphys.analysis import tco_table

    _v = {_k: float(_x) for _k, _x in tco_inputs.value.items()}
    tco_load = physics.TokenLoad(_v["avg_in"], _v["avg_out"], _v["peak"])
    tco_rates = physics.GpuThroughput(_v["prefill"], _v["decode"])
    # OnPremInputs' fields in order: price, GPUs, years; power, its share, price, PUE; hosting.
    tco_server = physics.OnPremInputs(
        _v["server_usd"], int(_v["server_gpus"]), _v["years"],
        _v["kw"], _v["power_util"], _v["usd_per_kwh"], _v["pue"], _v["ru"], _v["usd_per_ru_year"],
    )  # fmt: skip
    # One call per way of serving (infphys.physics.tco).
    tco_results = [
        physics.on_prem_tco(tco_load, tco_rates, tco_server),
        physics.rented_tco(tco_load, tco_rates, gpu_hourly_usd),
        physics.api_tco(tco_load, _v["api_in"], _v["api_out"]),
    ]
    own_gpu_hour = physics.on_prem_usd_per_gpu_hour(tco_server)
    tco_table(tco_results).round(3)
    return own_gpu_hour, tco_load, tco_rates, tco_results, tco_table


@app.cell
def _(fmt, gpu_hourly_usd, mo, own_gpu_hour, plots, tco_results):
    _own, _rent, _api = tco_results
    _cheapest = min(tco_results, key=lambda _r: _r.usd_per_million_output)
    _text = (
        f"**Key takeaway.** An owned GPU costs {fmt.usd(own_gpu_hour.total_usd, 3)} per hour of "
        f"the year ({fmt.usd(own_gpu_hour.capital_usd, 3)} write-off, "
        f"{fmt.usd(own_gpu_hour.power_usd, 3)} power, {fmt.usd(own_gpu_hour.hosting_usd, 3)} "
        f"rack space) against {fmt.usd(gpu_hourly_usd)} rented. Sized for the peak, the owned "
        f"fleet ({_own.gpus} GPUs) is busy {fmt.pct(_own.average_utilisation, 0)} of the time and "
        f"the rented one ({_rent.gpus} GPUs) {fmt.pct(_rent.average_utilisation, 0)}. Cheapest per "
        f"million output tokens here: **{_cheapest.option}** at "
        f"{fmt.usd(_cheapest.usd_per_million_output, 3)}. Raise the peak and watch the "
        "self-hosted prices climb while the API's stays put."
    )
    mo.vstack(
        [
            plots.measured_serving.tco_per_million(tco_results),
            mo.callout(mo.md(_text.replace("$", r"\$")), kind="info"),
        ]
    )
    return


@app.cell
def _(cap_tokens_per_s, cap_users, gpu, model, tpot_slo_s):
    # What the answer file keeps of this run besides the answers.
    exercise_runs = {
        "slo_capacity": {
            "gpu": gpu.key, "model": model.key, "tpot_slo_s": tpot_slo_s, "cap_users": cap_users,
            "cap_output_tokens_per_s": cap_tokens_per_s,
        },
    }
    return (exercise_runs,)


@app.cell
def _(
    cap_tokens_per_s,
    cap_users,
    concurrent_users,
    gpu_hourly_usd,
    num_gpus,
    tco_load,
    tco_rates,
):
    # q1 is about the calculator's fleet; q2 and q3 about one simulated GPU at the SLO cap.
    calculator_context = {
        "gpu_hourly_usd": gpu_hourly_usd,
        "num_gpus": num_gpus,
        "concurrent_users": concurrent_users,
    }
    capacity_context = {
        "gpu_hourly_usd": gpu_hourly_usd,
        "num_gpus": 1,
        "concurrent_users": cap_users or 1,
        "output_tokens_per_s": round(cap_tokens_per_s or 1.0, 1),
    }
    # q4 is about the total cost of ownership section: your load, one GPU's rates, rented.
    tco_context = {
        "gpu_hourly_usd": gpu_hourly_usd,
        "average_input_tokens_per_s": tco_load.average_input_tokens_per_s,
        "average_output_tokens_per_s": tco_load.average_output_tokens_per_s,
        "peak_to_average": tco_load.peak_to_average,
        "input_tokens_per_s": round(tco_rates.input_tokens_per_s, 1),
        "output_tokens_per_s": round(tco_rates.output_tokens_per_s, 1),
    }
    # Each question is shown and checked with the numbers of its own context.
    exercise_contexts = {"q1": calculator_context, "q2": capacity_context,
                         "q3": capacity_context, "q4": tco_context}
    return (exercise_contexts,)


@app.cell(hide_code=True)
def _(ui):
    learner, save_button = ui.learner_controls()
    ui.exercises_heading(learner)
    return learner, save_button


@app.cell
def _(exercise_contexts, ui):
    answers = ui.exercise_form("lab06", contexts=exercise_contexts)
    answers.vstack()
    return (answers,)


@app.cell
def _(answers, exercise_contexts, exercise_runs, learner, save_button, ui):
    book = ui.answer_book(learner, "lab06", exercise_runs)
    verdicts = ui.check_answers(book, answers.value, contexts=exercise_contexts)
    ui.results_view(verdicts, book, save_button)
    return


if __name__ == "__main__":
    app.run()
