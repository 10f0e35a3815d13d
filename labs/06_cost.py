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
    (simulated) capacity.
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
    time per output token (TPOT): 50 ms means every user streams at least 20 tokens/s.
    """)
    return


@app.cell
def _(mo):
    price_number = mo.ui.number(0.1, 50.0, step=0.05, value=2.5, label="price per GPU-hour (USD)")
    gpus_number = mo.ui.number(1, 1024, step=1, value=8, label="GPUs in the fleet")
    users_number = mo.ui.number(1, 1_000_000, step=1, value=400, label="concurrent users served")
    mo.vstack(
        [
            mo.md("## 1 · The calculator"),
            mo.hstack([price_number, gpus_number, users_number], justify="start"),
        ]
    )
    return gpus_number, price_number, users_number


@app.cell(hide_code=True)
def _():
    import os

    import pandas as pd

    from infphys import fmt, physics
    from infphys.catalog import GPUS, MODELS, get_gpu, get_model
    from infphys.exercises import AnswerBook
    from infphys.exercises import lab06 as ex6
    from infphys.exercises.ui import exercise_widget, save_view, verdict_view
    from infphys.planning import plan_capacity
    from infphys.plots import labs as lab_plots
    from infphys.sim.config import EngineConfig
    from infphys.sim.virtual import simulate
    from infphys.sim.workload import Workload
    from infphys.stats import summarize

    return (
        AnswerBook,
        EngineConfig,
        GPUS,
        MODELS,
        Workload,
        ex6,
        exercise_widget,
        fmt,
        get_gpu,
        get_model,
        lab_plots,
        os,
        pd,
        physics,
        plan_capacity,
        save_view,
        simulate,
        summarize,
        verdict_view,
    )


@app.cell
def _(price_number):
    # The settings as plain values, one cell each, so that a test can override any of them.
    gpu_hourly_usd = float(price_number.value)
    return (gpu_hourly_usd,)


@app.cell
def _(gpus_number):
    num_gpus = int(gpus_number.value)
    return (num_gpus,)


@app.cell
def _(users_number):
    concurrent_users = int(users_number.value)
    return (concurrent_users,)


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
def _(GPUS, MODELS, mo):
    model_pick = mo.ui.dropdown(
        options={m.name: m.key for m in MODELS.values()}, value="Llama-3.1-8B", label="model"
    )
    gpu_pick = mo.ui.dropdown(
        options={g.name: g.key for g in GPUS.values()}, value="H100 SXM", label="GPU (one replica)"
    )
    slo_slider = mo.ui.slider(10, 200, step=5, value=50, show_value=True,
                              label="SLO: p95 TPOT (ms)")
    prompt_pick = mo.ui.dropdown(["256", "1024", "4096"], value="1024", label="prompt tokens")
    output_pick = mo.ui.dropdown(["128", "256", "512"], value="256", label="output tokens")
    seed_number = mo.ui.number(0, 10_000, step=1, value=0, label="seed")
    mo.vstack(
        [
            mo.md("## 2 · The price at a simulated capacity"),
            mo.hstack([model_pick, gpu_pick, slo_slider], justify="start"),
            mo.hstack([prompt_pick, output_pick, seed_number], justify="start"),
        ]
    )
    return gpu_pick, model_pick, output_pick, prompt_pick, seed_number, slo_slider


@app.cell
def _(get_model, model_pick):
    model = get_model(model_pick.value)
    return (model,)


@app.cell
def _(get_gpu, gpu_pick):
    gpu = get_gpu(gpu_pick.value)
    return (gpu,)


@app.cell
def _(slo_slider):
    tpot_slo_s = slo_slider.value / 1e3
    return (tpot_slo_s,)


@app.cell
def _(prompt_pick):
    prompt_tokens = int(prompt_pick.value)
    return (prompt_tokens,)


@app.cell
def _(output_pick):
    output_tokens = int(output_pick.value)
    return (output_tokens,)


@app.cell
def _(seed_number):
    seed = int(seed_number.value)
    return (seed,)


@app.cell
def _():
    # Concurrency levels of the sweep (closed-loop users).
    levels = [1, 2, 4, 8, 16, 32, 64, 128, 256]
    return (levels,)


@app.cell
def _(
    EngineConfig,
    Workload,
    gpu,
    levels,
    model,
    output_tokens,
    pd,
    prompt_tokens,
    seed,
    simulate,
    summarize,
):
    # A closed-loop sweep on the simulator (virtual time): one simulate() and one summary per level.
    try:
        sim_config = EngineConfig.build(gpu=gpu, model=model, seed=seed,
                                        max_model_len=prompt_tokens + output_tokens)
        sim_problem = ""
    except ValueError as _exc:
        sim_config, sim_problem = None, str(_exc)
    if sim_config is None:
        sweep = pd.DataFrame()
    else:
        sweep = pd.concat(
            [
                summarize(
                    simulate(
                        sim_config,
                        Workload.closed(concurrency=_c, requests=max(8, 2 * _c),
                                        prompt_tokens=prompt_tokens, max_tokens=output_tokens,
                                        ignore_eos=True, seed=seed),
                        keep_chunk_times=False,
                    ).to_frame(),
                    by=None,
                )
                for _c in levels
            ],
            ignore_index=True,
        )
    return sim_problem, sweep


@app.cell
def _(gpu_hourly_usd, physics, plan_capacity, sweep, tpot_slo_s):
    # The SLO cap and the price of a token at every level (one call each).
    if sweep.empty:
        plan = None
    else:
        sweep["usd_per_million_tokens"] = [
            physics.cost_per_million_tokens(gpu_hourly_usd, _tps) for _tps in sweep["output_tokens_per_s"]
        ]
        plan = plan_capacity(sweep, slo_s=tpot_slo_s, users=1, latency_column="tpot_p95_s")
    cap_users = None if plan is None or plan.cap is None else int(plan.cap)
    cap_tokens_per_s = None if cap_users is None else plan.cap_output_tokens_per_s
    return cap_tokens_per_s, cap_users, plan


@app.cell
def _(cap_users, gpu, lab_plots, mo, model, sim_problem, sweep, tpot_slo_s):
    if sweep.empty:
        _out = mo.callout(mo.md(f"The simulator cannot run this configuration: {sim_problem}"),
                          kind="warn")
    else:
        _out = lab_plots.slo_sweep(
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
    # Theory (the decode roofline at the cap, mid-answer context) against the simulator.
    if cap_users is None:
        comparison = pd.DataFrame()
        theory_tokens_per_s = None
    else:
        _ctx = prompt_tokens + output_tokens // 2
        _per_user, theory_tokens_per_s = physics.tokens_per_s_ceiling(gpu, model, cap_users, _ctx)
        _rows = [
            ("output tokens/s at the cap", theory_tokens_per_s, cap_tokens_per_s),
            ("USD per million tokens at the cap",
             physics.cost_per_million_tokens(gpu_hourly_usd, theory_tokens_per_s),
             physics.cost_per_million_tokens(gpu_hourly_usd, cap_tokens_per_s)),
        ]
        comparison = pd.DataFrame(
            [
                {"quantity": _q, "roofline": _t, "simulated": _s,
                 "error": f"{(_s / _t - 1) * 100:+.1f}%"}
                for _q, _t, _s in _rows
            ]
        )
    comparison.round(3)
    return comparison, theory_tokens_per_s


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
def _(cap_tokens_per_s, cap_users, fmt, gpu, gpu_hourly_usd, mo, physics, tpot_slo_s):
    if cap_users is None:
        cost_per_user_month_usd = None
        cost_per_million_usd = None
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
    # A dollar sign opens LaTeX in marimo's markdown: escape it.
    mo.callout(mo.md(_text.replace("$", r"\$")), kind="info")
    return cost_per_million_usd, cost_per_user_month_usd


@app.cell(hide_code=True)
def _(mo, os):
    learner = mo.ui.text(
        value=os.environ.get("INFPHYS_LEARNER", ""), label="Your name (for the answer file)"
    )
    mo.vstack([mo.md("## Exercises"), learner])
    return (learner,)


@app.cell
def _(
    AnswerBook,
    cap_tokens_per_s,
    cap_users,
    concurrent_users,
    gpu_hourly_usd,
    learner,
    num_gpus,
):
    book = AnswerBook(learner.value, lab="lab06")
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
    return book, calculator_context, capacity_context


@app.cell
def _(calculator_context, ex6, exercise_widget):
    q1 = exercise_widget(ex6.Q1_USER_HOUR, **calculator_context)
    q1
    return (q1,)


@app.cell
def _(book, calculator_context, ex6, q1, verdict_view):
    v1 = book.check(ex6.Q1_USER_HOUR, q1.value, **calculator_context)
    verdict_view(v1)
    return (v1,)


@app.cell
def _(capacity_context, ex6, exercise_widget):
    q2 = exercise_widget(ex6.Q2_PER_MILLION, **capacity_context)
    q2
    return (q2,)


@app.cell
def _(book, capacity_context, ex6, q2, verdict_view):
    v2 = book.check(ex6.Q2_PER_MILLION, q2.value, **capacity_context)
    verdict_view(v2)
    return (v2,)


@app.cell
def _(capacity_context, ex6, exercise_widget):
    q3 = exercise_widget(ex6.Q3_USER_MONTH, **capacity_context)
    q3
    return (q3,)


@app.cell
def _(book, capacity_context, ex6, q3, verdict_view):
    v3 = book.check(ex6.Q3_USER_MONTH, q3.value, **capacity_context)
    verdict_view(v3)
    return (v3,)


@app.cell
def _(mo):
    save_button = mo.ui.run_button(label="Save my answers")
    save_button
    return (save_button,)


@app.cell
def _(
    book,
    cap_tokens_per_s,
    cap_users,
    gpu,
    model,
    save_button,
    save_view,
    tpot_slo_s,
    v1,
    v2,
    v3,
):
    _ = (v1, v2, v3)  # save after every answer has been checked
    book.add_run(
        "slo_capacity",
        {"gpu": gpu.key, "model": model.key, "tpot_slo_s": tpot_slo_s, "cap_users": cap_users,
         "cap_output_tokens_per_s": cap_tokens_per_s},
    )
    save_view(book, save_button.value)
    return


if __name__ == "__main__":
    app.run()
