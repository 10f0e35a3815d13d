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
app = marimo.App(width="medium", app_title="Lab 11 · Tuning and capacity planning")


@app.cell(hide_code=True)
def _():
    # marimo alone first: the title and the prose show while the other imports load.
    import marimo as mo

    return (mo,)


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    # Lab 11 · Tuning and capacity planning

    *The knee is not a law of nature: four engine settings decide where it falls, and the
    p95 objective decides how many GPUs you buy.*

    **Time: about 8 minutes.** Everything here runs on the **virtual-time simulator**
    (vLLM's scheduler priced by the roofline): a sweep of ten concurrency levels for six
    engine settings takes a few seconds, where the same sweep on a real GPU takes an hour.
    """)
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## The idea

    A serving engine runs at most

    $$\text{running} = \min\Big(\texttt{max\_num\_seqs},\ \Big\lfloor
    \frac{\text{KV blocks}}{\lceil (\text{prompt} + \text{output}) / 16 \rceil}\Big\rfloor\Big)$$

    requests at once. The KV blocks are what `gpu_memory_utilization` × memory leaves after
    the weights and an activation reserve, divided by the bytes of a block (half as many bytes
    with an FP8 KV cache). Past that limit, extra clients queue: by Little's Law
    ($L = \lambda W$) a closed loop of $c$ clients at a throughput stuck at its plateau $X$
    waits $W = c / X$, so the p95 climbs in a straight line with $c$.

    The **SLO cap** is the highest concurrency whose p95 meets the objective; a replica serves
    that many concurrent users, and

    $$\text{GPUs} = \Big\lceil \frac{\text{users}}{\text{cap}} \Big\rceil \times
    \text{GPUs per replica}.$$
    """)
    return


@app.cell(hide_code=True)
def _():
    from infphys import analysis, fmt, planning, plots, sim, tuning
    from infphys.exercises import labsetup, ui

    ui.offline_note()
    return analysis, fmt, labsetup, planning, plots, sim, tuning, ui


@app.cell
def _(labsetup, mo, ui):
    controls, _view = labsetup.controls(
        "**The deployment and the workload**",
        {
            "gpu": ui.gpu_dropdown("H100 SXM", "GPU"),
            "model": ui.model_dropdown("Llama-3.1-8B", "model"),
            "tp": labsetup.int_dropdown([1, 2, 4, 8], 1, "GPUs per replica (tp)"),
        },
        {
            "prompt_tokens": mo.ui.slider(
                steps=[128, 256, 512, 1000, 2000, 4000, 8000], value=2000,
                label="prompt tokens per request", show_value=True,
            ),
            "max_tokens": mo.ui.slider(
                steps=[32, 64, 128, 256, 512, 1024], value=128, label="output tokens per request",
                show_value=True,
            ),
        },
        {
            "slo_p95_s": mo.ui.number(
                0.5, 120.0, step=0.5, value=10.0, label="p95 end-to-end SLO (s)"
            ),
            "users": mo.ui.number(
                1, 1_000_000, step=1, value=1000, label="concurrent users to serve"
            ),
            "concurrency_levels": mo.ui.dropdown(
                options={
                    "1 … 128, doubling (8 levels)": [1, 2, 4, 8, 16, 32, 64, 128],
                    "1 … 512, doubling (10 levels)": [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
                    "1 … 512, ×1.5 (15 levels)": [
                        1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512
                    ],
                    "1 … 1024, ×1.5 (17 levels)": [
                        1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024
                    ],
                },
                value="1 … 512, ×1.5 (15 levels)",
                label="concurrency levels swept",
            ),
            "seed": labsetup.seed_input(),
        },
        "**The knobs** (each is swept alone against vLLM's defaults: max_num_seqs 256, "
        "gpu_memory_utilization 0.9, max_num_batched_tokens 8192, KV cache BF16)",
        {
            "max_num_seqs": mo.ui.slider(
                steps=[16, 32, 64, 128, 256, 512, 1024], value=512, label="max_num_seqs",
                show_value=True,
            ),
            "gpu_memory_utilization": mo.ui.slider(
                0.5, 0.95, step=0.05, value=0.95, label="gpu_memory_utilization", show_value=True
            ),
        },
        {
            "max_num_batched_tokens": mo.ui.slider(
                steps=[1024, 2048, 4096, 8192, 16384], value=2048, label="max_num_batched_tokens",
                show_value=True,
            ),
            "kv_precision": mo.ui.dropdown(options=["bf16", "fp8"], value="fp8", label="KV cache"),
        },
    )
    _view
    return (controls,)


@app.cell
def _(controls, labsetup):
    # The settings as plain values, a row of controls a line (a test overrides them all).
    gpu, model, tp = labsetup.settings(controls, "gpu", "model", "tp")
    prompt_tokens, max_tokens = labsetup.settings(controls, "prompt_tokens", "max_tokens")
    slo_p95_s, users, concurrency_levels, seed = labsetup.settings(
        controls, "slo_p95_s", "users", "concurrency_levels", "seed"
    )
    max_num_seqs, _gpu_memory_utilization = labsetup.settings(
        controls, "max_num_seqs", "gpu_memory_utilization"
    )
    gpu_memory_utilization = round(_gpu_memory_utilization, 2)  # the slider's steps are floats
    max_num_batched_tokens, kv_precision = labsetup.settings(
        controls, "max_num_batched_tokens", "kv_precision"
    )
    return (
        concurrency_levels,
        gpu,
        gpu_memory_utilization,
        kv_precision,
        max_num_batched_tokens,
        max_num_seqs,
        max_tokens,
        model,
        prompt_tokens,
        seed,
        slo_p95_s,
        tp,
        users,
    )


@app.cell(hide_code=True)
def _(gpu, model, tp, ui):
    ui.target_view(
        f"the virtual-time simulator: {model} on {tp}× {gpu}, computed here in a few seconds "
        "(no live server, NIM_BASE_URL is not used: a sweep this size takes an hour live)."
    )
    return


@app.cell
def _(gpu, max_tokens, model, prompt_tokens, seed, sim, tp):
    # The baseline: vLLM's defaults on this deployment (max_model_len = one request's length).
    try:
        base_config = sim.EngineConfig.build(
            gpu=gpu, model=model, tp=tp, seed=seed, max_model_len=prompt_tokens + max_tokens
        )
        config_problem = ""
    except ValueError as _exc:
        base_config, config_problem = None, str(_exc)
    return base_config, config_problem


@app.cell
def _(
    gpu_memory_utilization,
    kv_precision,
    max_num_batched_tokens,
    max_num_seqs,
):
    # Each knob alone, then all of them together.
    your_changes = {
        "max_num_seqs": max_num_seqs,
        "gpu_memory_utilization": gpu_memory_utilization,
        "max_num_batched_tokens": max(max_num_batched_tokens, max_num_seqs),
        "kv_precision": kv_precision,
    }
    variants = {
        "baseline (defaults)": {},
        **{f"{_k} = {_v}": {_k: _v} for _k, _v in your_changes.items()},
        "all four changes": your_changes,
    }
    return (variants,)


@app.cell
def _(
    base_config,
    concurrency_levels,
    max_tokens,
    prompt_tokens,
    seed,
    slo_p95_s,
    tuning,
    variants,
):
    # One call: a closed-loop sweep per variant, in virtual time.
    knobs = (
        tuning.compare_knobs(
            base_config, variants, slo_p95_s=slo_p95_s, concurrency=concurrency_levels,
            prompt_tokens=prompt_tokens, max_tokens=max_tokens, seed=seed,
        )
        if base_config is not None
        else None
    )
    return (knobs,)


@app.cell
def _(config_problem, knobs, mo, plots, slo_p95_s):
    (
        plots.capacity.knob_sweeps(
            knobs.frames, slo_s=slo_p95_s,
            title="Each knob against the baseline: throughput (★ knee) and p95",
        )
        if knobs is not None
        else mo.callout(mo.md(f"This deployment cannot run: {config_problem}"), kind="warn")
    )
    return


@app.cell
def _(knobs):
    # Where each setting puts the batch limit, the knee and the SLO cap.
    knob_table = knobs.table.drop(columns=["change"]) if knobs is not None else None
    knob_table
    return


@app.cell
def _(knobs, mo, planning, slo_p95_s, tp, users):
    mo.stop(knobs is None)
    # The capacity plans: the baseline and all four changes, against the same SLO.
    plan_base = planning.plan_capacity(
        knobs.sweeps["baseline (defaults)"].summary(), slo_s=slo_p95_s, users=users,
        gpus_per_replica=tp,
    )
    plan_tuned = planning.plan_capacity(
        knobs.sweeps["all four changes"].summary(), slo_s=slo_p95_s, users=users,
        gpus_per_replica=tp,
    )
    return plan_base, plan_tuned


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## Theory against the simulator

    The batch limit predicted by the formula above, for each setting, against the most
    requests the simulated engine actually ran at once (at the highest concurrency swept).
    """)
    return


@app.cell
def _(analysis, knobs, mo):
    mo.stop(knobs is None)
    theory_table = analysis.comparison_table(
        [
            (f"{_r.variant}: requests running at once", _r.max_running_predicted,
             _r.max_running_simulated, "requests",
             "min(max_num_seqs, KV blocks / blocks per request)")
            for _r in knobs.table.itertuples()
        ]
    )
    theory_table
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    The engine may run **more** requests at once than the formula says: the scheduler admits a
    request on the blocks its prompt needs *now*, not on the blocks it will hold at its last
    token. The cache overfills, and when the longest requests need a block that is gone, the
    newest running request is **preempted** (its KV freed, its work recomputed later): the
    `preemptions` column of the knob table. That recomputation is wasted GPU time, which is
    why a KV-bound engine's throughput *falls* past its knee.

    `max_num_batched_tokens` limits something else: the tokens one step computes. With long
    prompts and short answers, a small budget admits about one prompt per step, so the number
    running settles near *output tokens per request* (each request stays that many steps):
    fewer preemptions and a steadier p95, at the cost of TTFT when arrivals bunch up.
    """)
    return


@app.cell
def _(fmt, mo, plan_base, plan_tuned, slo_p95_s, users):
    def _plan_text(p, label):
        if p.cap is None:
            return f"{label}: no concurrency meets a p95 of {slo_p95_s:g} s — no number of GPUs helps"
        return (
            f"{label}: **{fmt.count(p.cap)} users per replica** "
            f"(p95 {fmt.seconds(p.cap_latency_s)}), so {fmt.count(users)} users need "
            f"**{fmt.count(p.gpus)} GPUs**"
        )

    gpus_saved = (
        plan_base.gpus - plan_tuned.gpus
        if plan_base.cap is not None and plan_tuned.cap is not None
        else None
    )
    _saved = (
        f" Tuning changes the bill by **{fmt.count(gpus_saved)} GPUs** "
        f"({fmt.pct(gpus_saved / plan_base.gpus, 0)} of the baseline)."
        if gpus_saved is not None
        else ""
    )
    mo.callout(
        mo.md(
            f"""
            **Key takeaway.** {_plan_text(plan_base, "Baseline")}.
            {_plan_text(plan_tuned, "With all four changes")}.{_saved}
            Find the limit that binds first (the batch, the KV cache, or the step's token
            budget) and move that one: the others change nothing.
            """
        ),
        kind="info",
    )
    return (gpus_saved,)


@app.cell
def _(plan_base, plan_tuned):
    # What the answer file keeps of this run besides the answers.
    exercise_runs = {
        "capacity_plan": {
            "slo_p95_s": plan_base.slo_s,
            "users": plan_base.users,
            "baseline_cap": plan_base.cap,
            "baseline_gpus": plan_base.gpus,
            "tuned_cap": plan_tuned.cap,
            "tuned_gpus": plan_tuned.gpus,
        },
    }
    return (exercise_runs,)


@app.cell
def _(
    base_config,
    knobs,
    max_tokens,
    mo,
    plan_base,
    prompt_tokens,
    slo_p95_s,
    tp,
    users,
):
    mo.stop(knobs is None)
    _base = knobs.sweeps["baseline (defaults)"].summary().sort_values("concurrency")
    # What the exercises are checked against: the learner's own sweep and settings.
    exercise_context = {
        "concurrency": [int(c) for c in _base["concurrency"]],
        "e2e_p95_s": [round(float(v), 4) for v in _base["e2e_p95_s"]],
        "slo_p95_s": slo_p95_s,
        "users": users,
        "cap_concurrency": int(plan_base.cap) if plan_base.cap is not None else 1,
        "tp": tp,
        "kv_capacity_tokens": base_config.kv_capacity_tokens,
        "block_tokens": base_config.block_tokens,
        "prompt_tokens": prompt_tokens,
        "max_tokens": max_tokens,
        "max_num_seqs": base_config.max_num_seqs,
    }
    return (exercise_context,)


@app.cell(hide_code=True)
def _(ui):
    learner, save_button = ui.learner_controls()
    ui.exercises_heading(learner)
    return learner, save_button


@app.cell
def _(exercise_context, ui):
    answers = ui.exercise_form("lab11", exercise_context)
    answers.vstack()
    return (answers,)


@app.cell
def _(answers, exercise_context, exercise_runs, learner, save_button, ui):
    book = ui.answer_book(learner, "lab11", exercise_runs)
    verdicts = ui.check_answers(book, answers.value, exercise_context)
    ui.results_view(verdicts, book, save_button)
    return


if __name__ == "__main__":
    app.run()
