# /// script
# requires-python = ">=3.11"
# dependencies = [
#     "marimo==0.25.2",
#     "numpy>=1.26",
#     "pandas>=2.1",
#     "plotly>=5.20",
#     "aiohttp>=3.9",
#     "nvidia-ml-py>=12",
#     # infphys itself: installed from this repository (pip install -e ".[labs]").
#     "infphys",
# ]
# ///

import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Lab 5 · Throughput")


@app.cell(hide_code=True)
def _():
    # marimo alone first: the title and the prose show while the other imports load.
    import marimo as mo

    return (mo,)


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    # Lab 5 · Throughput: one at a time against all at once

    *A GPU serving one user is mostly waiting on memory; serving many, it does almost the same
    work per step for all of them — so throughput is something you get from concurrency, not
    from a faster request.*

    **Time: about 7 minutes.** Send N requests one after the other, then all together, and
    count the tokens the server says it generated.
    """)
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## The idea

    Throughput is **tokens per second of wall time**, counted from the server's own `usage`:

    $$\text{throughput} = \frac{\sum_i \text{completion tokens}_i}{t_\text{last end} -
    t_\text{first send}}$$

    Run N requests sequentially and the wall time is the *sum* of their latencies. Run them
    concurrently and the latencies *overlap*: the wall time is little more than one latency,
    because each decode step reads the weights once for the whole batch. Dividing tokens by
    the summed latencies of a concurrent run is therefore wrong by a factor equal to the
    average number of requests in flight (Little's Law, $L = \lambda W$).
    """)
    return


@app.cell(hide_code=True)
def _():
    import pandas as pd

    from infphys import fmt, measure, physics, plots, stats
    from infphys.exercises import labsetup, ui

    ui.offline_note()
    return fmt, labsetup, measure, pd, physics, plots, stats, ui


@app.cell
def _(labsetup, mo, ui):
    # The target: NIM_BASE_URL if it answers, else the embedded simulator (kept running); the
    # theory's GPU and model start at the simulator's.
    resolved, target = ui.lab_target()
    theory_picks = labsetup.theory_selects(resolved)
    controls, _view = labsetup.controls(
        {
            "n_requests": mo.ui.slider(2, 64, step=1, value=8, show_value=True, label="N requests"),
            **labsetup.request_row(
                [32, 128, 512], 128, [32, 64, 128, 256], 64, "max_tokens per request"
            ),
        },
        [*theory_picks],
    )
    mo.vstack([ui.target_view(resolved.message), _view])
    return controls, resolved, target, theory_picks


@app.cell
def _(controls, labsetup, theory_picks):
    # The settings as plain values, in one cell: a test overrides them all (tests/labrun.py).
    n_requests, max_tokens, prompt_tokens, seed = labsetup.settings(
        controls, "n_requests", "max_tokens", "prompt_tokens", "seed"
    )
    theory_gpu, theory_model = theory_picks.value
    return (
        max_tokens,
        n_requests,
        prompt_tokens,
        seed,
        theory_gpu,
        theory_model,
    )


@app.cell
def _(max_tokens, measure, n_requests, prompt_tokens, seed, target):
    # N requests one after the other: concurrency 1.
    sequential = measure.run_sync(
        measure.run_closed_loop(
            target, concurrency=1, requests=n_requests, prompt_tokens=prompt_tokens,
            max_tokens=max_tokens, seed=seed, log_notes=False,
        )
    )
    return (sequential,)


@app.cell
def _(max_tokens, measure, n_requests, prompt_tokens, seed, target):
    # The same N requests all at once, with the GPU watcher sampling during the burst.
    with measure.GPUWatcher(interval_s=0.05) as burst_watch:
        concurrent = measure.run_sync(
            measure.run_closed_loop(target, concurrency=n_requests, requests=n_requests,
                                    prompt_tokens=prompt_tokens, max_tokens=max_tokens, seed=seed,
                                    log_notes=False)
        )
    return burst_watch, concurrent


@app.cell(hide_code=True)
def _(concurrent, resolved, sequential, ui):
    # What this measurement says about itself, once: the simulator's lag, a busy client.
    measurement_notes = ui.run_notes(
        [resolved.lag_note()], [*sequential.warnings, *concurrent.warnings]
    )
    ui.notes_view(measurement_notes)
    return (measurement_notes,)


@app.cell
def _(concurrent, sequential, stats):
    # Tokens/s from `usage` (stats.throughput), and the mistaken sum of latencies.
    sequential_frame = sequential.frame()
    concurrent_frame = concurrent.frame()
    seq_tp = stats.throughput(sequential_frame)
    conc_tp = stats.throughput(concurrent_frame)
    sequential_tokens_per_s = seq_tp.output_tokens_per_s
    concurrent_tokens_per_s = conc_tp.output_tokens_per_s
    latency_sum_s = float(concurrent_frame["e2e_s"].sum())
    wall_s = conc_tp.window_s
    tokens_from_usage = bool((concurrent_frame["token_count_source"] == "usage").all())
    return (
        concurrent_frame,
        concurrent_tokens_per_s,
        latency_sum_s,
        sequential_frame,
        sequential_tokens_per_s,
        tokens_from_usage,
        wall_s,
    )


@app.cell
def _(
    concurrent_tokens_per_s,
    fmt,
    max_tokens,
    n_requests,
    pd,
    physics,
    prompt_tokens,
    sequential_tokens_per_s,
    theory_gpu,
    theory_model,
):
    # Theory: the decode roofline at batch 1 and at batch N (context mid-answer), kit defaults.
    _ctx = prompt_tokens + max_tokens // 2
    _, theory_sequential = physics.tokens_per_s_ceiling(theory_gpu, theory_model, 1, _ctx)
    _, theory_concurrent = physics.tokens_per_s_ceiling(theory_gpu, theory_model, n_requests, _ctx)
    comparison = pd.DataFrame(
        [
            {"run": "sequential (1 at a time)", "theory tokens/s": theory_sequential,
             "measured tokens/s": sequential_tokens_per_s},
            {"run": f"concurrent ({n_requests} at once)", "theory tokens/s": theory_concurrent,
             "measured tokens/s": concurrent_tokens_per_s},
        ]
    )
    comparison["error"] = [
        fmt.rel_error(_m, _t, 1)
        for _m, _t in zip(comparison["measured tokens/s"], comparison["theory tokens/s"],
                          strict=True)
    ]
    comparison.round(1)
    return comparison, theory_concurrent, theory_sequential


@app.cell(hide_code=True)
def _(mo, tokens_from_usage):
    mo.md(
        "Theory is the decode roofline (weights plus the batch's KV read once per step, at 80 % "
        "of datasheet bandwidth); it leaves out prefill, the server's per-step overhead and the "
        "HTTP path, so measured throughput sits below it. "
        + ("Every token count came from the server's `usage` field."
           if tokens_from_usage else
           "**Some token counts are estimates** (the server sent no `usage`).")
    )
    return


@app.cell
def _(concurrent_frame, n_requests, pd, plots, sequential_frame):
    _both = pd.concat(
        [
            sequential_frame.assign(run="sequential"),
            concurrent_frame.assign(run=f"concurrent ×{n_requests}"),
        ],
        ignore_index=True,
    )
    plots.labs.sequential_vs_concurrent(
        _both, title="Each bar is one request, from send to last token"
    )
    return


@app.cell
def _(burst_watch, plots, ui):
    _watched = plots.gpu.watch_figure(burst_watch.frame, title="GPU during the concurrent burst")
    ui.watch_view(burst_watch, "the burst", _watched)
    return


@app.cell
def _(
    concurrent_tokens_per_s,
    fmt,
    latency_sum_s,
    mo,
    n_requests,
    sequential_tokens_per_s,
    wall_s,
):
    speedup = concurrent_tokens_per_s / sequential_tokens_per_s
    understatement = latency_sum_s / wall_s
    mo.callout(
        mo.md(
            f"**Key takeaway.** The same {n_requests} requests made "
            f"**{fmt.tok_s(sequential_tokens_per_s)}** one at a time and "
            f"**{fmt.tok_s(concurrent_tokens_per_s)}** all at once: **{speedup:.1f}×** the "
            f"throughput for the same work. Their latencies add up to {fmt.seconds(latency_sum_s)} "
            f"but the burst took {fmt.seconds(wall_s)} of wall time, so tokens ÷ summed latencies "
            f"would understate the throughput **{understatement:.1f}×**."
        ),
        kind="info",
    )
    return speedup, understatement


@app.cell
def _(exercise_context, n_requests, resolved):
    # What the answer file keeps of this run besides the answers.
    exercise_runs = {
        "sequential_vs_concurrent": {"target": resolved.message, "n_requests": n_requests, **exercise_context},
    }
    return (exercise_runs,)


@app.cell
def _(concurrent_tokens_per_s, latency_sum_s, sequential_tokens_per_s, wall_s):
    # Rounded as the prompts show them, so a learner's arithmetic on the shown numbers passes.
    exercise_context = {
        "sequential_tokens_per_s": round(sequential_tokens_per_s, 1),
        "concurrent_tokens_per_s": round(concurrent_tokens_per_s, 1),
        "latency_sum_s": round(latency_sum_s, 3),
        "wall_s": round(wall_s, 3),
    }
    return (exercise_context,)


@app.cell(hide_code=True)
def _(ui):
    learner, save_button = ui.learner_controls()
    ui.exercises_heading(learner)
    return learner, save_button


@app.cell
def _(exercise_context, ui):
    answers = ui.exercise_form("lab05", exercise_context)
    answers.vstack()
    return (answers,)


@app.cell
def _(answers, exercise_context, exercise_runs, learner, save_button, ui):
    book = ui.answer_book(learner, "lab05", exercise_runs)
    verdicts = ui.check_answers(book, answers.value, exercise_context)
    ui.results_view(verdicts, book, save_button)
    return


if __name__ == "__main__":
    app.run()
