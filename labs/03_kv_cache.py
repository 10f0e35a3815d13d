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
app = marimo.App(width="medium", app_title="Lab 3 · The KV-cache cliff")


@app.cell(hide_code=True)
def _():
    # marimo alone first: the title and the prose show while the other imports load.
    import marimo as mo

    return (mo,)


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    # Lab 3 · The KV-cache cliff

    *Every user you admit rents a slice of GPU memory for as long as their conversation lasts;
    when the slices run out, the server does not slow down gracefully — it stops admitting.*

    **Time: about 10 minutes.** Move the sliders, read the two VRAM lines, then watch the
    simulated server hit the same wall.
    """)
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## The idea

    Each token a sequence has seen leaves a key and a value vector in **every layer**:

    $$\text{KV bytes per token} = 2 \times \text{layers} \times \text{KV heads} \times
    \text{head dim} \times \text{bytes per element}$$

    A user with a context of $n$ tokens holds $n$ times that, so memory grows in a straight
    line with users: $\text{weights} + \text{users} \times n \times \text{KV per token}$. The
    GPU's memory is a horizontal line; where the two cross, the next user does not fit.

    Many quick calculators write **hidden** where *KV heads × head dim* belongs:
    $2 \times \text{layers} \times \text{hidden} \times \text{bytes}$. That ignores
    grouped-query attention (8 KV heads shared by 32 query heads in Llama-3.1-8B: 4× too
    much) and MLA (DeepSeek-V3 caches one small latent: 25× too much). Both lines are drawn
    below.
    """)
    return


@app.cell(hide_code=True)
def _():
    import dataclasses

    import pandas as pd

    from infphys import catalog, fmt, physics, plots, sim
    from infphys.exercises import labsetup, ui

    ui.offline_note()
    return catalog, dataclasses, fmt, labsetup, pd, physics, plots, sim, ui


@app.cell
def _(labsetup, mo, ui):
    model_preset = ui.model_dropdown("Llama-3.1-8B", "model preset")
    # The other controls, one dictionary keyed by the setting each sets (shown with the shape
    # sliders below).
    controls = mo.ui.dictionary(
        {
            "kv_precision": mo.ui.dropdown(
                options=["bf16", "fp8", "fp32"], value="bf16", label="KV-cache precision"
            ),
            "weights_precision": mo.ui.dropdown(
                options=["bf16", "fp8", "int4"], value="bf16", label="weights precision"
            ),
            "context_tokens": mo.ui.slider(
                steps=[1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072],
                value=8192,
                label="context per user (prompt + output tokens)",
                show_value=True,
            ),
            "max_users": mo.ui.slider(
                8, 512, step=8, value=160, label="users to plot", show_value=True
            ),
            "gpu_a": labsetup.gpu_select("H100 SXM", "VRAM line 1 (the simulated GPU)"),
            "gpu_b": labsetup.gpu_select("H200 SXM", "VRAM line 2"),
        }
    )
    return controls, model_preset


@app.cell
def _(catalog, mo, model_preset):
    # The shape sliders start at the preset's values; move them to invent a model.
    preset = catalog.get_model(model_preset.value)
    layers_slider = mo.ui.slider(
        max(1, preset.sliding_window_layers), 160, value=preset.layers, label="layers",
        show_value=True,
    )
    hidden_slider = mo.ui.slider(
        512, 32768, step=64, value=preset.hidden, label="hidden size", show_value=True
    )
    kv_heads_pick = mo.ui.dropdown(
        options=[str(d) for d in range(1, preset.heads + 1) if preset.heads % d == 0],
        value=str(preset.kv_heads),
        label=f"KV heads (of {preset.heads} query heads)",
    )
    return hidden_slider, kv_heads_pick, layers_slider, preset


@app.cell(hide_code=True)
def _(
    controls,
    hidden_slider,
    kv_heads_pick,
    labsetup,
    layers_slider,
    model_preset,
):
    labsetup.controls_view(
        [model_preset, controls["kv_precision"], controls["weights_precision"]],
        [layers_slider, hidden_slider, kv_heads_pick],
        [controls["context_tokens"], controls["max_users"]],
        [controls["gpu_a"], controls["gpu_b"]],
    )
    return


@app.cell
def _(dataclasses, hidden_slider, kv_heads_pick, layers_slider, preset):
    # The model's shape: the preset with the learner's edits (a test overrides `model_spec`).
    model_spec = dataclasses.replace(
        preset,
        layers=layers_slider.value,
        hidden=hidden_slider.value,
        kv_heads=int(kv_heads_pick.value),
    )
    return (model_spec,)


@app.cell
def _(controls, labsetup):
    # The settings as plain values, in one cell: a test overrides them all (tests/labrun.py).
    context_tokens, max_users, kv_precision, weights_precision, gpu_a, gpu_b = labsetup.settings(
        controls, "context_tokens", "max_users", "kv_precision", "weights_precision", "gpu_a", "gpu_b"
    )
    return (
        context_tokens,
        gpu_a,
        gpu_b,
        kv_precision,
        max_users,
        weights_precision,
    )


@app.cell
def _(
    context_tokens,
    gpu_a,
    gpu_b,
    kv_precision,
    max_users,
    model_spec,
    physics,
    weights_precision,
):
    # The widget: weights + KV for 1 … max_users users, correct and naive, against two VRAM lines.
    vram_lines = {gpu_a.name: gpu_a.memory_bytes, gpu_b.name: gpu_b.memory_bytes}
    cliff = physics.kv_cliff(
        model_spec, context_tokens, max_users, vram_lines_bytes=vram_lines,
        weights_precision=weights_precision, kv_precision=kv_precision,
    )
    cliff_naive = physics.kv_cliff(
        model_spec, context_tokens, max_users, vram_lines_bytes=vram_lines,
        weights_precision=weights_precision, kv_precision=kv_precision, naive=True,
    )
    kv_bytes_per_token = cliff.kv_bytes_per_token
    kv_bytes_per_token_naive = cliff_naive.kv_bytes_per_token
    return cliff, cliff_naive, kv_bytes_per_token, kv_bytes_per_token_naive


@app.cell(hide_code=True)
def _(
    cliff,
    cliff_naive,
    context_tokens,
    fmt,
    kv_bytes_per_token,
    kv_bytes_per_token_naive,
    mo,
    model_spec,
):
    def _crash(c):
        return "beyond the chart" if c is None else f"user {fmt.count(c)}"

    _crash_lines = "  \n".join(
        f"**{name}** ({fmt.gb(vram)} = {fmt.gib(vram)}): out of memory at "
        f"{_crash(cliff.crash_users[name])} "
        f"(naive formula: {_crash(cliff_naive.crash_users[name])})"
        for name, vram in cliff.vram_lines_bytes.items()
    )
    mo.vstack(
        [
            mo.hstack(
                [
                    mo.stat(fmt.count(kv_bytes_per_token) + " B", label="KV per token",
                            caption=f"{model_spec.attention_kind}, correct formula"),
                    mo.stat(fmt.count(kv_bytes_per_token_naive) + " B", label="naive KV per token",
                            caption="2 × layers × hidden × bytes"),
                    mo.stat(fmt.gb(float(cliff.kv_bytes[0])), label="KV per user",
                            caption=f"{fmt.count(context_tokens)} tokens; "
                            f"{fmt.gib(float(cliff.kv_bytes[0]))} in nvidia-smi's units"),
                    mo.stat(fmt.gb(cliff.weights_bytes), label="weights",
                            caption=f"{model_spec.params_total / 1e9:.2f} B parameters; "
                            f"{fmt.gib(cliff.weights_bytes)}"),
                ],
                justify="start",
            ),
            mo.md("**The crash estimate** (raw VRAM, nothing held back):  \n" + _crash_lines),
        ]
    )
    return


@app.cell
def _(cliff, cliff_naive, context_tokens, fmt, model_spec, plots):
    plots.labs.kv_cliff_compare(
        cliff, cliff_naive,
        title=f"{model_spec.name}: weights + KV cache, {fmt.count(context_tokens)} tokens per user",
    )
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## Confirm it on the simulator

    A real engine does not hand out all of VRAM. vLLM keeps 10 % back
    (`gpu_memory_utilization = 0.9`) and reserves room for activations (about 2 GiB), so the
    **engine's wall** is lower than the crash line above:

    $$\text{users that fit} = \left\lfloor \frac{0.9 \times \text{memory} - \text{weights} - \text{reserve}}{n \times \text{KV per token}} \right\rfloor$$

    Below, the embedded simulator (vLLM's scheduler with paged KV blocks, in virtual time)
    serves closed-loop users around that wall: each user sends a request of
    `context − output` prompt tokens and asks for `output` tokens. Up to the wall every user
    runs; beyond it the engine runs out of KV blocks, so requests **wait** for admission
    and running ones get **preempted** (evicted and recomputed later).
    """)
    return


@app.cell
def _(labsetup):
    sim_controls, _view = labsetup.controls(
        {
            "output_tokens": labsetup.int_dropdown(
                [64, 128, 256, 512], 256, "output tokens per request"
            ),
            "seed": labsetup.seed_input(),
        },
        title=None,
    )
    _view
    return (sim_controls,)


@app.cell
def _(context_tokens, labsetup, sim_controls):
    _output_tokens, seed = labsetup.settings(sim_controls, "output_tokens", "seed")
    output_tokens = min(_output_tokens, context_tokens // 2)
    return output_tokens, seed


@app.cell
def _(
    context_tokens,
    gpu_a,
    kv_precision,
    model_spec,
    output_tokens,
    physics,
    seed,
    sim,
    weights_precision,
):
    prompt_tokens = context_tokens - output_tokens
    # The calculator's wall, in whole KV blocks of 16 tokens as vLLM allocates them.
    engine_wall_users = physics.max_concurrent_sequences(
        gpu_a, model_spec, context_tokens, weights_precision=weights_precision,
        kv_precision=kv_precision, block_tokens=16,
    )
    try:
        sim_config = sim.EngineConfig.build(
            gpu=gpu_a, model=model_spec, weights_precision=weights_precision,
            kv_precision=kv_precision, max_model_len=context_tokens, seed=seed,
        )
        sim_problem = ""
    except ValueError as _exc:
        sim_config, sim_problem = None, str(_exc)
    return engine_wall_users, prompt_tokens, sim_config, sim_problem


@app.cell
def _(
    engine_wall_users,
    output_tokens,
    pd,
    prompt_tokens,
    seed,
    sim,
    sim_config,
):
    # Concurrency levels from half the wall to twice it: one simulator sweep (a warm-up round,
    # then two rounds per level), its engine figures under the chart's column names.
    sweep_levels = sorted(
        {max(1, round(engine_wall_users * f)) for f in (0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0)}
    ) if engine_wall_users > 0 else []
    sweep = pd.DataFrame()
    if sim_config is not None and sweep_levels:
        _lv = sim.sweep(sim_config, sweep_levels, prompt_tokens=prompt_tokens,
                        max_tokens=output_tokens, rounds_per_level=2, min_requests_per_level=8,
                        seed=seed).levels
        sweep = pd.DataFrame(
            {
                "concurrency": _lv["concurrency"],
                "max_running": _lv["peak_running"].astype(int),
                "mean_waiting": _lv["mean_waiting"],
                "preemptions": _lv["preemptions"].astype(int),
                "output_tokens_per_s": _lv["output_tokens_per_s"],
                "tpot_mean_ms": _lv["tpot_mean_s"] * 1e3,
                "kv_usage_peak": _lv["peak_kv_usage"],
            }
        )
    return (sweep,)


@app.cell
def _(
    engine_wall_users,
    fmt,
    gpu_a,
    mo,
    model_spec,
    plots,
    sim_problem,
    sweep,
):
    if sim_problem:
        _out = mo.callout(mo.md(f"The simulator cannot run this configuration: {sim_problem}"),
                          kind="warn")
    elif sweep.empty:
        _out = mo.callout(mo.md("No user fits: the weights alone fill the GPU."), kind="warn")
    else:
        _out = plots.labs.kv_wall_sweep(
            sweep, engine_wall_users,
            title=f"Simulated {gpu_a.name}, {model_spec.name}: "
            f"the wall at {fmt.count(engine_wall_users)} users",
        )
    _out
    return


@app.cell
def _(context_tokens, engine_wall_users, fmt, pd, sim_config, sweep):
    # Theory against the simulator, with the error of each.
    if sweep.empty or sim_config is None:
        sim_peak_running = None
        first_preempting_users = None
        comparison = pd.DataFrame()
    else:
        sim_peak_running = int(sweep["max_running"].max())
        _pre = sweep[sweep["preemptions"] > 0]
        first_preempting_users = int(_pre["concurrency"].min()) if len(_pre) else None
        _calm = sweep[sweep["preemptions"] == 0]
        _rows = [
            ("users the KV cache holds (block accounting)",
             sim_config.kv_capacity_tokens // context_tokens),
            ("most requests running at once", sim_peak_running),
            ("highest concurrency without preemptions",
             int(_calm["concurrency"].max()) if len(_calm) else None),
        ]
        comparison = pd.DataFrame(
            [
                {
                    "quantity": _q,
                    "calculator": engine_wall_users,
                    "simulator": _s,
                    "error": fmt.rel_error(_s, engine_wall_users, 1),
                }
                for _q, _s in _rows
            ]
        )
    comparison
    return first_preempting_users, sim_peak_running


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    The simulator's engine may run a few more sequences than the calculator at first: a
    request holds only its prompt's blocks when admitted and grows one token per step, so
    the cache overfills until the longest requests need blocks that are no longer free. Then
    the newest request is preempted, and from there the number running stays at the wall.
    """)
    return


@app.cell
def _(
    cliff,
    cliff_naive,
    context_tokens,
    engine_wall_users,
    first_preempting_users,
    fmt,
    gpu_a,
    kv_bytes_per_token,
    kv_bytes_per_token_naive,
    mo,
    model_spec,
):
    naive_factor = kv_bytes_per_token_naive / kv_bytes_per_token
    _seen = (
        f"the simulator started preempting at **{fmt.count(first_preempting_users)}** users"
        if first_preempting_users is not None
        else "the simulator's sweep did not reach the wall"
    )
    _crash = cliff.crash_users[gpu_a.name]
    _crash_naive = cliff_naive.crash_users[gpu_a.name]
    _crash_text = (
        f" The naive formula would crash the {gpu_a.name} at user {fmt.count(_crash_naive)} "
        f"instead of {fmt.count(_crash)}."
        if _crash is not None and _crash_naive is not None
        else ""
    )
    mo.callout(
        mo.md(
            f"""
            **Key takeaway.** {model_spec.name} at {fmt.count(context_tokens)} tokens per user
            holds **{fmt.count(kv_bytes_per_token)} bytes of KV per token**, so one
            {gpu_a.name} serves at most **{fmt.count(engine_wall_users)} users** — and
            {_seen}. The quick formula overstates the KV cache **{naive_factor:.1f}×**.{_crash_text}
            Halve the context and the wall doubles: concurrency is bought with context.
            """
        ),
        kind="info",
    )
    return


@app.cell
def _(engine_wall_users, first_preempting_users, sim_peak_running):
    # What the answer file keeps of this run besides the answers.
    exercise_runs = {
        "kv_wall": {
            "calculator_users": engine_wall_users,
            "simulator_peak_running": sim_peak_running,
            "first_preempting_users": first_preempting_users,
        },
    }
    return (exercise_runs,)


@app.cell
def _(
    context_tokens,
    dataclasses,
    gpu_a,
    kv_precision,
    model_preset,
    model_spec,
    preset,
    weights_precision,
):
    # What the exercises are checked against: the learner's own settings.
    exercise_context = {
        "model": model_preset.value if model_spec == preset else dataclasses.asdict(model_spec),
        "model_name": model_spec.name,
        "gpu": gpu_a.key,
        "gpu_name": gpu_a.name,
        "context_tokens": context_tokens,
        "kv_precision": kv_precision,
        "weights_precision": weights_precision,
    }
    return (exercise_context,)


@app.cell(hide_code=True)
def _(ui):
    learner, save_button = ui.learner_controls()
    ui.exercises_heading(learner)
    return learner, save_button


@app.cell
def _(exercise_context, ui):
    answers = ui.exercise_form("lab03", exercise_context)
    answers.vstack()
    return (answers,)


@app.cell
def _(answers, exercise_context, exercise_runs, learner, save_button, ui):
    book = ui.answer_book(learner, "lab03", exercise_runs)
    verdicts = ui.check_answers(book, answers.value, exercise_context)
    ui.results_view(verdicts, book, save_button)
    return


if __name__ == "__main__":
    app.run()
