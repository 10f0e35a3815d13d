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
app = marimo.App(width="medium", app_title="Lab 7 · Little's Law and the baseline")


@app.cell(hide_code=True)
def _():
    # marimo alone first: the title and the prose show while the other imports load.
    import marimo as mo

    return (mo,)


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    # Lab 7 · Little's Law and the baseline

    *Before you load a server, measure it alone: one user, one request at a time. That
    baseline is the floor every later latency is compared with — and Little's Law already
    tells you what throughput it allows.*

    **Time: about 6 minutes.** The run below sends a couple of dozen short requests one after
    another (about 10 seconds against the simulator).
    """)
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## The idea

    **Latency is a distribution, not a number.** Report its median (p50) and its tail: p95 and
    p99 are the values 95 % and 99 % of requests stay under. Users remember the tail.

    **Little's Law.** In any stable system — a queue, a GPU batch, a shop — the mean number of
    requests inside, $L$, the rate at which they pass through, $\lambda$, and the mean time each
    spends inside, $W$, obey

    $$L = \lambda \, W.$$

    No distribution is assumed; it is the same area (requests × seconds) counted two ways. At
    concurrency 1 there is (almost) always exactly one request in flight, so $L \approx 1$ and
    the throughput one user can get is $\lambda = 1 / W$.

    **The parts of a request.** The first token arrives after the time to first token (TTFT,
    mostly the prefill of the prompt); each of the remaining $N - 1$ tokens after one decode
    step (the time per output token, TPOT):

    $$W = \text{TTFT} + (N - 1) \times \text{TPOT}.$$
    """)
    return


@app.cell(hide_code=True)
def _():
    import pandas as pd

    from infphys import analysis, fmt, measure, physics, plots, stats
    from infphys.exercises import labsetup, ui

    ui.offline_note()
    return analysis, fmt, labsetup, measure, pd, physics, plots, stats, ui


@app.cell
def _(labsetup, mo, ui):
    # The target: NIM_BASE_URL if it answers, else the embedded simulator (kept running).
    resolved, target = ui.lab_target()
    controls, _view = labsetup.controls(
        {
            "requests": mo.ui.slider(10, 100, step=2, value=24, label="requests", show_value=True),
            "prompt_tokens": labsetup.int_dropdown([16, 64, 256, 1024], 64, "prompt tokens"),
            "max_tokens": mo.ui.slider(
                steps=[8, 16, 32, 64, 128, 256], value=32, label="max_tokens (output)",
                show_value=True,
            ),
        },
        {
            "warmup": labsetup.int_dropdown([0, 1, 2], 1, "warm-up requests"),
            "target_req_per_s": mo.ui.number(
                1, 10_000, step=1, value=20, label="a request rate to plan for (requests/s)"
            ),
            "seed": labsetup.seed_input(),
        },
    )
    mo.vstack([ui.target_view(resolved.message), _view])
    return controls, resolved, target


@app.cell
def _(controls, labsetup):
    # The settings as plain values, a row of controls a line (a test overrides them all).
    requests, prompt_tokens, max_tokens = labsetup.settings(
        controls, "requests", "prompt_tokens", "max_tokens"
    )
    warmup, target_req_per_s, seed = labsetup.settings(
        controls, "warmup", "target_req_per_s", "seed"
    )
    return max_tokens, prompt_tokens, requests, seed, target_req_per_s, warmup


@app.cell
def _(max_tokens, measure, prompt_tokens, requests, seed, target, warmup):
    # One call: the baseline, one request at a time (a closed loop at concurrency 1).
    baseline = measure.run_sync(
        measure.run_closed_loop(target, concurrency=1, requests=requests, warmup=warmup,
                                prompt_tokens=prompt_tokens, max_tokens=max_tokens, seed=seed,
                                log_notes=False)
    )
    frame = baseline.frame()
    return baseline, frame


@app.cell(hide_code=True)
def _(baseline, resolved, ui):
    # What this measurement says about itself, once: the simulator's lag, a busy client.
    measurement_notes = ui.run_notes([resolved.lag_note()], baseline.warnings)
    ui.notes_view(measurement_notes)
    return (measurement_notes,)


@app.cell
def _(frame, stats):
    # The statistics: percentiles per latency, the means, and Little's Law over the run.
    summary = stats.summarize(frame).iloc[0]
    _ok = stats.measured(frame).query("status == 'ok'")
    ttft = stats.describe_latency(_ok["ttft_s"])
    tpot = stats.describe_latency(_ok["tpot_s"])
    e2e = stats.describe_latency(_ok["e2e_s"])
    output_tokens = int(round(_ok["completion_tokens"].mean())) if len(_ok) else 0
    # Warm-up requests are left out of L, λ and W alike (they ran before the measured window).
    little = stats.littles_law(stats.measured(frame))
    return e2e, little, output_tokens, summary, tpot, ttft


@app.cell
def _(e2e, pd, tpot, ttft):
    percentile_table = pd.DataFrame(
        [
            {"latency": _name, "p50_ms": _d.p50_s * 1e3, "p95_ms": _d.p95_s * 1e3,
             "p99_ms": _d.p99_s * 1e3, "mean_ms": _d.mean_s * 1e3, "max_ms": _d.max_s * 1e3,
             "requests": _d.count}
            for _name, _d in (("TTFT", ttft), ("TPOT", tpot), ("end-to-end", e2e))
        ]
    ).round(2)
    percentile_table
    return (percentile_table,)


@app.cell
def _(frame, mo, plots):
    mo.vstack(
        [
            plots.load.latency_histogram(
                frame, metric="e2e",
                title="End-to-end latency at concurrency 1 (p50, p95, p99 marked)",
            ),
            plots.labs_load.latency_box(
                frame, metrics=("ttft", "tpot", "e2e"),
                title="TTFT, TPOT and end-to-end (every request a dot)",
            ),
        ]
    )
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## Little's Law on your own data

    The chart counts the requests in flight at every instant of your run. Its time average
    over the measured window is $L$; the table puts it next to $\lambda W$ (requests finished
    per second × their mean latency). At concurrency 1, $L$ is slightly below 1: between one
    request's last byte and the next one's send, the client itself holds the floor.
    """)
    return


@app.cell
def _(frame, little, plots):
    plots.labs_load.in_flight_timeline(
        frame, little=little,
        title="Requests in flight: measured L against λ·W (shaded: the window)",
    )
    return


@app.cell
def _(max_tokens, prompt_tokens, resolved):
    # The roofline's decode step for one sequence with half its answer written (simulated
    # targets only: for a real endpoint the GPU and model behind it are not known here).
    decode_step_theory_s = (
        resolved.sim_config.roofline.step_for([1], [prompt_tokens + max_tokens // 2]).total_s
        if resolved.sim_config is not None
        else None
    )
    return (decode_step_theory_s,)


@app.cell
def _(analysis, decode_step_theory_s, e2e, little, physics, summary, tpot):
    _rows = [
        ("mean requests in flight L", little.predicted_in_flight, little.mean_in_flight,
         "requests", "Little's Law: λ × W"),
        ("throughput", physics.littles_law_throughput_per_s(1, e2e.mean_s),
         summary["throughput_req_per_s"], "requests/s", "1 / W (L = 1 request in flight)"),
    ]
    if decode_step_theory_s is not None:
        _rows.append(
            ("time per output token", decode_step_theory_s * 1e3, tpot.mean_s * 1e3, "ms",
             "roofline: one decode step at batch 1 on the simulated GPU")
        )
    theory_table = analysis.comparison_table(_rows)
    theory_table
    return


@app.cell
def _(e2e, fmt, little, mo, summary):
    tail_ratio = e2e.p99_s / e2e.p50_s
    little_error = little.ratio - 1.0
    mo.callout(
        mo.md(
            f"""
            **Key takeaway.** One user at a time got **{summary['throughput_req_per_s']:.2f}
            requests/s** through, which is $1/W$ for $W$ = {fmt.ms(e2e.mean_s)}: Little's Law
            held within **{fmt.pct(abs(little_error), 1)}** on your own data. Your p99 is
            **{tail_ratio:.2f}×** your p50 even with no other user around. To serve more
            requests per second the server must hold more of them at once ($L = \\lambda W$);
            lab 8 measures what that costs in latency.
            """
        ),
        kind="info",
    )
    return little_error, tail_ratio


@app.cell
def _(e2e, little, resolved, summary):
    # What the answer file keeps of this run besides the answers.
    exercise_runs = {
        "baseline": {
            "target": resolved.message,
            "requests": int(summary["requests"]),
            "e2e_p50_s": e2e.p50_s,
            "e2e_p95_s": e2e.p95_s,
            "e2e_p99_s": e2e.p99_s,
            "throughput_req_per_s": float(summary["throughput_req_per_s"]),
            "littles_law_ratio": little.ratio,
        },
    }
    return (exercise_runs,)


@app.cell
def _(e2e, output_tokens, target_req_per_s, tpot, ttft):
    # What the exercises are checked against: the learner's own measurements.
    exercise_context = {
        "e2e_mean_ms": round(e2e.mean_s * 1e3, 3),
        "ttft_mean_ms": round(ttft.mean_s * 1e3, 3),
        "tpot_mean_ms": round(tpot.mean_s * 1e3, 4),
        "output_tokens": output_tokens,
        "target_req_per_s": target_req_per_s,
    }
    return (exercise_context,)


@app.cell(hide_code=True)
def _(ui):
    learner, save_button = ui.learner_controls()
    ui.exercises_heading(learner)
    return learner, save_button


@app.cell
def _(exercise_context, ui):
    answers = ui.exercise_form("lab07", exercise_context)
    answers.vstack()
    return (answers,)


@app.cell
def _(answers, exercise_context, exercise_runs, learner, save_button, ui):
    book = ui.answer_book(learner, "lab07", exercise_runs)
    verdicts = ui.check_answers(book, answers.value, exercise_context)
    ui.results_view(verdicts, book, save_button)
    return


if __name__ == "__main__":
    app.run()
