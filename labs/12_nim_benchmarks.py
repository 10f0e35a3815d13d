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
app = marimo.App(width="medium", app_title="Lab 12 · Reading real NIM benchmarks")


@app.cell(hide_code=True)
def _():
    # marimo alone first: the title and the prose show while the other imports load.
    import marimo as mo

    return (mo,)


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    # Lab 12 · Reading real NIM benchmarks

    *A benchmark table is a capacity plan waiting to be read: latency against throughput, what a
    second GPU buys, and the cheapest way to meet a budget — then one row you predict before you
    look.*

    **Time: about 10 minutes.** Everything here is measured data; no server is needed.

    The data: NVIDIA NIM (a TensorRT-LLM engine) serving Llama-3 8B and 70B Instruct on A100
    and H100 GPUs, measured with GenAI-Perf as a closed loop of *N* streaming clients, each
    sending its next request the moment the last one ends. Each row is one deployment (GPU,
    tensor-parallel size, precision), one prompt → output shape and one *N*.
    """)
    return


@app.cell(hide_code=True)
def _():
    import pandas as pd

    from infphys import catalog, fmt, nim_planning, plots
    from infphys.exercises import labsetup, ui
    from infphys.sim import fidelity

    ui.offline_note()
    return catalog, fidelity, fmt, labsetup, nim_planning, pd, plots, ui


@app.cell(hide_code=True)
def _(catalog, mo):
    mo.md("Source: " + catalog.MEASURED_SOURCES["nim_llama3_serving.csv"] + ".")
    return


@app.cell
def _(labsetup, mo):
    shape_controls, _view = labsetup.controls(
        {
            "model": labsetup.model_select(
                "Llama-3-8B", shown={"Llama-3-8B": "llama-3.1-8b", "Llama-3-70B": "llama-3.1-70b"}
            ),
            # The prompt → output shapes NVIDIA measured, shown as "2,000 → 200".
            "shape": mo.ui.dropdown(
                options={
                    f"{_isl:,} → {_osl:,}": (_isl, _osl)
                    for _isl, _osl in [
                        (200, 200), (200, 1000), (200, 2000), (2000, 200), (2000, 2000),
                        (7000, 1000),
                    ]
                },
                value="200 → 200",
                label="prompt → output tokens",
            ),
        },
    )
    _view
    return (shape_controls,)


@app.cell
def _(labsetup, shape_controls):
    # The settings as plain values, one cell a section: a test overrides a section's at once.
    model, (isl, osl) = labsetup.settings(shape_controls, "model", "shape")
    return isl, model, osl


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## Latency against throughput

    Each curve is one deployment; each point one number of clients (hover for it). Moving right
    along a curve, more clients share each engine step: the tokens/s rise, and so do the time to
    the first token (TTFT) and the inter-token latency (ITL). The useful part of a curve is
    where throughput still rises fast and latency does not: past the knee, clients only queue.
    One point, the **held-back row** of the last section, is left out of this chart.
    """)
    return


@app.cell
def _(isl, model, nim_planning, osl):
    curves = nim_planning.latency_throughput(model.key, isl, osl)
    return (curves,)


@app.cell
def _(curves, mo):
    # The held-back row: a deployment of the chosen model and a concurrency, hidden until the end.
    _configs = curves[["config", "gpu_key", "precision_key", "tp"]].drop_duplicates()
    held_pick = mo.ui.dropdown(
        options={r.config: (r.gpu_key, r.precision_key, int(r.tp)) for r in _configs.itertuples()},
        value=_configs["config"].iloc[-1],
        label="held-back deployment",
    )
    held_level_pick = mo.ui.dropdown(
        options={str(c): int(c) for c in sorted(curves["concurrency"].unique())},
        value="100",
        label="held-back concurrency",
    )
    return held_level_pick, held_pick


@app.cell
def _(held_level_pick, held_pick):
    held_gpu, held_precision, held_tp = held_pick.value
    held_concurrency = int(held_level_pick.value)
    return held_concurrency, held_gpu, held_precision, held_tp


@app.cell
def _(curves, held_concurrency, held_gpu, held_precision, held_tp, plots):
    _held = (
        (curves["gpu_key"] == held_gpu)
        & (curves["precision_key"] == held_precision)
        & (curves["tp"] == held_tp)
        & (curves["concurrency"] == held_concurrency)
    )
    shown_curves = curves[~_held]
    plots.measured.nim_latency_throughput(shown_curves)
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## What the second GPU bought

    Tensor parallelism splits every weight matrix over the GPUs of one instance: each GPU reads
    a share of the weights per step, so the step is shorter, but every layer now ends in an
    all-reduce and the fixed costs per step do not shrink. Compare the tokens/s **per GPU**:
    """)
    return


@app.cell
def _(catalog, curves, mo):
    _gpus = sorted(curves["gpu_key"].unique())
    tp_gpu_pick = mo.ui.dropdown(
        options={catalog.get_gpu(g).name: g for g in _gpus},
        value=catalog.get_gpu(_gpus[-1]).name,
        label="GPU",
    )
    tp_gpu_pick
    return (tp_gpu_pick,)


@app.cell
def _(tp_gpu_pick):
    gpu = tp_gpu_pick.value
    return (gpu,)


@app.cell
def _(gpu, isl, model, nim_planning, osl, plots, ui):
    tp_table = nim_planning.tp_gain(model.key, gpu, isl, osl)
    ui.figure_table(
        plots.measured.nim_tp_gain(tp_table), tp_table,
        ["concurrency", "per_gpu_small", "per_gpu_large", "speedup", "per_gpu_ratio",
         "itl_ms_small", "itl_ms_large"],
        2,
    )
    return (tp_table,)


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## The cheapest deployment for N users

    For each deployment: the **cap** is the highest measured concurrency whose p95 TTFT and p95
    ITL (and every lower level's) meet your budgets; the replicas are ⌈users / cap⌉; US dollars
    per million output tokens is the fleet's price per hour over the tokens it makes in an hour.
    """)
    return


@app.cell
def _(catalog, labsetup, mo):
    budget_controls, _view = labsetup.controls(
        {
            "users": mo.ui.number(1, 5000, step=1, value=100, label="concurrent users"),
            "ttft_budget_ms": mo.ui.slider(
                steps=[250, 500, 1000, 2000, 5000],
                value=round(catalog.DEFAULT_SLO.ttft_ms),  # Nielsen's 1 s flow-of-thought limit
                show_value=True,
                label="p95 TTFT budget (ms)",
            ),
            "itl_budget_ms": mo.ui.slider(
                steps=[20, 30, 50, 75, 100], value=50, show_value=True, label="p95 ITL budget (ms)"
            ),
        },
        {
            "a100_usd": mo.ui.number(
                0.1, 20.0, step=0.05, value=1.80, label="A100 USD per GPU-hour"
            ),
            "h100_usd": mo.ui.number(
                0.1, 20.0, step=0.05, value=2.50, label="H100 USD per GPU-hour"
            ),
        },
        title=None,
    )
    _view
    return (budget_controls,)


@app.cell
def _(budget_controls, labsetup):
    users, ttft_budget_ms, itl_budget_ms, a100_usd, h100_usd = labsetup.settings(
        budget_controls, "users", "ttft_budget_ms", "itl_budget_ms", "a100_usd", "h100_usd"
    )
    return a100_usd, h100_usd, itl_budget_ms, ttft_budget_ms, users


@app.cell
def _(a100_usd, h100_usd, isl, itl_budget_ms, model, nim_planning, osl, ttft_budget_ms, users):
    plan = nim_planning.cheapest_deployment(
        users,
        ttft_budget_ms,
        itl_budget_ms,
        {"a100-80gb-sxm": a100_usd, "h100-sxm": h100_usd},
        model.key,
        isl,
        osl,
    )
    plan[
        [
            "config",
            "cap",
            "replicas",
            "gpus",
            "usd_per_hour",
            "tokens_per_s",
            "usd_per_million_tokens",
            "ok",
        ]
    ].round(3)
    return (plan,)


@app.cell(hide_code=True)
def _(fmt, mo, plan, users):
    _best = plan.iloc[0]
    mo.md(
        f"**Cheapest:** {_best['config']}, {int(_best['gpus'])} GPU(s) for {users} users at "
        f"{fmt.usd(float(_best['usd_per_million_tokens']), 3)} per million tokens."
        if bool(_best["ok"])
        else "**No deployment meets both budgets** at any measured concurrency: loosen one."
    )
    return


@app.cell(hide_code=True)
def _(catalog, held_gpu, held_level_pick, held_pick, held_tp, mo):
    mo.vstack(
        [
            mo.md(
                "## Predict before you look\n\n"
                "One measured row was left out of the chart above: "
                f"**{catalog.get_gpu(held_gpu).name} × {held_tp}** at **{held_level_pick.value} "
                "clients**. Two models predict it: the simulator replays the closed loop through "
                "its TensorRT-LLM scheduler (`replay_nim_row`), and the closed-loop queueing "
                "model prices one decode step at a batch of N plus the prefills that interrupt "
                "it, then applies Little's law (`closed_loop_estimate`). Write your own ITL "
                "guess in exercise q3 *before* you reveal the measurement."
            ),
            mo.hstack([held_pick, held_level_pick], justify="start"),
        ]
    )
    return


@app.cell
def _(
    fidelity,
    held_concurrency,
    held_gpu,
    held_precision,
    held_tp,
    isl,
    model,
    nim_planning,
    osl,
    pd,
):
    held_row = nim_planning.nim_row(
        model.key, held_gpu, held_precision, held_tp, held_concurrency, isl, osl
    )
    sim_pred = fidelity.replay_nim_row(held_row)
    queue_pred = nim_planning.closed_loop_estimate(
        model.key, held_gpu, held_precision, held_tp, held_concurrency, isl, osl
    )
    predictions = pd.DataFrame({"simulator": sim_pred, "queueing model": queue_pred}).loc[
        ["ttft_ms_avg", "itl_ms_avg", "output_tokens_per_s"]
    ]
    predictions.round(1)
    return held_row, predictions, queue_pred, sim_pred


@app.cell
def _(mo):
    reveal = mo.ui.switch(value=False, label="reveal the measurement")
    reveal
    return (reveal,)


@app.cell
def _(fmt, held_row, mo, predictions, reveal):
    revealed = predictions.copy()
    revealed["measured"] = [float(held_row[c]) for c in revealed.index]
    for _col in ("simulator", "queueing model"):
        revealed[f"{_col} error"] = [
            fmt.rel_error(_p, _m)
            for _p, _m in zip(revealed[_col], revealed["measured"], strict=True)
        ]
    _view = (
        revealed.round(1)
        if reveal.value
        else mo.md("*Hidden: answer q3 first, then flip the switch.*")
    )
    _view
    return (revealed,)


@app.cell
def _(fmt, mo, model, tp_table):
    _row = tp_table.iloc[len(tp_table) // 2]
    mo.callout(
        mo.md(
            f"**Key takeaway.** Measured, {model.name} at {int(_row['concurrency'])} clients: "
            f"TP{int(_row['tp_large'])} made {fmt.count(_row['tokens_per_s_large'])} tokens/s "
            f"against TP{int(_row['tp_small'])}'s {fmt.count(_row['tokens_per_s_small'])} "
            f"({_row['speedup']:.2f}× the throughput on {_row['tp_large'] / _row['tp_small']:.0f}× "
            f"the GPUs: {_row['per_gpu_ratio']:.2f}× per GPU). More GPUs per instance buy "
            "latency; more instances buy throughput. Read the cap at your budget, not the peak."
        ),
        kind="info",
    )
    return


@app.cell
def _(plan, revealed):
    # What the answer file keeps of this run besides the answers.
    exercise_runs = {
        "nim_benchmarks": {
            "cheapest": str(plan.iloc[0]["config"]),
            "held_back": {k: float(v) for k, v in revealed["measured"].items()},
        },
    }
    return (exercise_runs,)


@app.cell
def _(
    a100_usd,
    catalog,
    gpu,
    h100_usd,
    held_concurrency,
    held_gpu,
    held_precision,
    held_tp,
    isl,
    itl_budget_ms,
    model,
    osl,
    queue_pred,
    sim_pred,
    tp_table,
    ttft_budget_ms,
    users,
):
    exercise_context = {
        "model": model.key,
        "model_name": model.name,
        "isl": int(isl),
        "osl": int(osl),
        "gpu": gpu,
        "gpu_name": catalog.get_gpu(gpu).name,
        "concurrency": int(tp_table["concurrency"].iloc[len(tp_table) // 2]),
        "users": users,
        "ttft_budget_ms": ttft_budget_ms,
        "itl_budget_ms": itl_budget_ms,
        "a100_usd": a100_usd,
        "h100_usd": h100_usd,
        "held_gpu": held_gpu,
        "held_tp": int(held_tp),
        "held_precision": held_precision,
        "held_concurrency": int(held_concurrency),
        "sim_ttft_ms": round(float(sim_pred["ttft_ms_avg"]), 1),
        "queue_ttft_ms": round(float(queue_pred["ttft_ms_avg"]), 1),
    }
    return (exercise_context,)


@app.cell(hide_code=True)
def _(ui):
    learner, save_button = ui.learner_controls()
    ui.exercises_heading(learner)
    return learner, save_button


@app.cell
def _(exercise_context, ui):
    answers = ui.exercise_form("lab12", exercise_context)
    answers.vstack()
    return (answers,)


@app.cell
def _(answers, exercise_context, exercise_runs, learner, save_button, ui):
    book = ui.answer_book(learner, "lab12", exercise_runs)
    verdicts = ui.check_answers(book, answers.value, exercise_context)
    ui.results_view(verdicts, book, save_button)
    return


if __name__ == "__main__":
    app.run()
