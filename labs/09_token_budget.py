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
app = marimo.App(width="medium", app_title="Lab 9 · The token budget")


@app.cell(hide_code=True)
def _():
    # marimo alone first: the title and the prose show while the other imports load.
    import marimo as mo

    return (mo,)


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    # Lab 9 · The token budget

    *A prompt token and an output token are not the same price: one rides along with
    thousands of others through a compute-bound prefill, the other costs a whole pass over the
    weights.*

    **Time: about 7 minutes.** A grid of prompt sizes × `max_tokens`, a few requests per cell,
    one at a time (about 10 seconds against the simulator).
    """)
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## The idea

    A request's latency splits in two:

    $$\text{e2e} = \underbrace{\text{TTFT}}_{\text{prefill: grows with the prompt}} +
    \underbrace{(N - 1) \times \text{ITL}}_{\text{decode: grows with the output}}$$

    **Prefill** pushes all $P$ prompt tokens through the model in one step (or a few chunks):
    about $2 \times \text{parameters} \times P$ FLOPs, so it is *compute*-bound, and TTFT grows
    slowly with $P$ — until the prompt is long enough to fill the GPU's tensor cores.

    **Decode** produces one token per step, and every step reads all the weights (and the
    KV cache) from memory: it is *bandwidth*-bound, so each output token costs about
    $\text{weight bytes} / \text{bandwidth}$ — a few milliseconds for an 8 B model, whatever
    the prompt.

    `max_tokens` caps $N$: it is the budget that bounds a request's decode time.
    """)
    return


@app.cell(hide_code=True)
def _():
    from infphys import analysis, fmt, measure, plots, records
    from infphys.exercises import lab09 as ex9
    from infphys.exercises import labsetup, ui

    ui.offline_note()
    return analysis, ex9, fmt, labsetup, measure, plots, records, ui


@app.cell
def _():
    # The embedded simulator's clock: wall seconds per simulated second. 1 is real time; on a
    # computer too busy to keep up (the lag note below says so), 2 or 3 slows the simulated
    # GPU down so the computer's delays stay small beside a step. The figures below are read
    # on the simulator's clock, so they do not change with it.
    time_scale = 1.0
    return (time_scale,)


@app.cell
def _(labsetup, mo, time_scale, ui):
    # The target: NIM_BASE_URL if it answers, else the embedded simulator (kept running).
    resolved, target = ui.lab_target(time_scale=time_scale)
    controls, _view = labsetup.controls(
        {
            "prompt_sizes": labsetup.list_dropdown(
                [[64, 512, 2048], [128, 1024, 4096], [64, 256, 1024, 4096]], [64, 512, 2048],
                "prompt sizes (tokens)",
            ),
            "max_tokens_values": labsetup.list_dropdown(
                [[8, 32, 64], [16, 64, 128], [8, 32, 128, 256]], [8, 32, 64], "max_tokens values"
            ),
        },
        {
            "requests_per_cell": mo.ui.slider(
                2, 10, value=3, label="requests per cell", show_value=True
            ),
            "seed": labsetup.seed_input(),
        },
    )
    mo.vstack([ui.target_view(resolved.message), _view])
    return controls, resolved, target


@app.cell
def _(controls, labsetup):
    # The settings as plain values, a row of controls a line (a test overrides them all).
    prompt_sizes, max_tokens_values, requests_per_cell, seed = labsetup.settings(
        controls, "prompt_sizes", "max_tokens_values", "requests_per_cell", "seed"
    )
    return max_tokens_values, prompt_sizes, requests_per_cell, seed


@app.cell
def _(
    max_tokens_values,
    measure,
    prompt_sizes,
    records,
    requests_per_cell,
    seed,
    target,
):
    # One call: every (prompt size, max_tokens) cell, one request at a time. ignore_eos asks a
    # vLLM-based server for the full max_tokens (the simulator always produces exactly that).
    grid = measure.run_sync(
        measure.token_grid(target, prompt_tokens=prompt_sizes, max_tokens=max_tokens_values,
                           requests_per_cell=requests_per_cell, seed=seed,
                           extra_body={"ignore_eos": True}, log_notes=False)
    )
    # Times on the server's clock: a simulator slowed time_scale times is read back at its pace.
    frame = records.on_simulated_clock(grid.frame(), target.time_scale)
    return frame, grid


@app.cell(hide_code=True)
def _(grid, resolved, ui):
    # What this measurement says about itself, once: the simulator's lag, a busy client.
    measurement_notes = ui.run_notes([resolved.lag_note()], grid.warnings)
    ui.notes_view(measurement_notes)
    return (measurement_notes,)


@app.cell
def _(frame, mo, plots):
    mo.vstack(
        [
            # Medians: a p95 needs 20 or more requests per cell, and a cell here has a few.
            plots.labs_load.token_budget_lines(
                frame, value="e2e_p50_s",
                title="Median (p50) end-to-end against max_tokens, by prompt size",
            ),
            plots.load.token_grid_heatmap(
                frame, value="e2e_p50_s",
                title="Median (p50) end-to-end (ms) per prompt size × max_tokens",
            ),
        ]
    )
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## Prefill against decode

    The lines above are nearly parallel: their **slope** is the decode cost of one output
    token (the same for every prompt size), their **offset** the prefill of the prompt. Split
    each cell's time in two and the same picture appears as bars.
    """)
    return


@app.cell
def _(analysis, frame, plots):
    plots.token_budget.split_bars(analysis.token_budget_split(frame))
    return


@app.cell
def _(analysis, frame, resolved):
    # Theory against measurement (on the simulator): the roofline's prefill and decode-step
    # times for one request alone, against the measured p50s.
    _roofline = resolved.sim_config.roofline if resolved.sim_config is not None else None
    theory_table = analysis.token_budget_table(frame, roofline=_roofline)
    theory_table
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    The decode step matches the roofline within a few per cent: it really is one pass over the
    weights. The TTFT of **short** prompts comes out well above the roofline's prefill, and the
    excess is not the model's: a request that arrives while a step is running waits for it to
    end (half a step on average), and the server's chat template adds a few tokens to every
    prompt. At thousands of prompt tokens the prefill itself dominates and the two agree.
    """)
    return


@app.cell
def _(analysis, frame):
    # One call: least-squares lines through the grid (prefill per prompt token, decode per token).
    costs = analysis.token_costs(frame)
    return (costs,)


@app.cell
def _(costs, fmt, mo):
    mo.callout(
        mo.md(
            f"""
            **Key takeaway.** Every 1,000 prompt tokens added
            **{fmt.num(costs.prefill_ms_per_1k_tokens)} ms** of TTFT; every output token added
            **{fmt.num(costs.decode_ms_per_token)} ms** of decode. One output token costs as
            much latency as about **{fmt.count(costs.output_vs_prompt_token)} prompt tokens**:
            trim `max_tokens` and answer length before you trim the prompt — unless a slow
            start (TTFT) is the complaint.
            """
        ),
        kind="info",
    )
    return


@app.cell
def _(costs, resolved):
    # What the answer file keeps of this run besides the answers.
    exercise_runs = {
        "token_grid": {
            "target": resolved.message,
            "prefill_ms_per_1k_tokens": costs.prefill_ms_per_1k_tokens,
            "decode_ms_per_token": costs.decode_ms_per_token,
        },
    }
    return (exercise_runs,)


@app.cell
def _(ex9, frame):
    # What the exercises are checked against: the learner's own grid, its corners' p50s in ms.
    exercise_context = ex9.grid_context(frame)
    return (exercise_context,)


@app.cell(hide_code=True)
def _(ui):
    learner, save_button = ui.learner_controls()
    ui.exercises_heading(learner)
    return learner, save_button


@app.cell
def _(exercise_context, ui):
    answers = ui.exercise_form("lab09", exercise_context)
    answers.vstack()
    return (answers,)


@app.cell
def _(answers, exercise_context, exercise_runs, learner, save_button, ui):
    book = ui.answer_book(learner, "lab09", exercise_runs)
    verdicts = ui.check_answers(book, answers.value, exercise_context)
    ui.results_view(verdicts, book, save_button)
    return


if __name__ == "__main__":
    app.run()
