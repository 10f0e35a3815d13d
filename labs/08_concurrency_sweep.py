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
app = marimo.App(width="medium", app_title="Lab 8 · The concurrency sweep")


@app.cell(hide_code=True)
def _():
    # marimo alone first: the title and the prose show while the other imports load.
    import marimo as mo

    return (mo,)


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    # Lab 8 · The concurrency sweep

    *Add users and throughput climbs — until it does not. Past that knee every extra user
    buys only latency, and the p95 falls off a cliff long before the server looks "full".*

    **Time: about 10 minutes.** A closed-loop sweep (6 levels) and an open-loop sweep
    (4 rates), live: against `NIM_BASE_URL` when a server answers there, else against a small
    simulated server started here (about 30 seconds).
    """)
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## The idea

    **Closed loop** (the original notebook's load): $c$ clients, each sending its next request
    as soon as its last one ends. There are always $c$ requests in flight, so Little's Law fixes
    the throughput $X$ and the mean latency $W$ together:

    $$X = \frac{c}{W}.$$

    While the server batches everything it is sent, $W$ barely moves and $X$ grows with $c$.
    Once it runs as many requests as it can (its batch limit, its KV cache, or its compute), $X$
    stays at its plateau and $W = c / X$ grows in a straight line: the **knee**.

    **Open loop**: requests arrive at a rate $\lambda$ (Poisson) whatever happens to earlier
    ones — as real users do. With the server's capacity $X_{\max}$, its utilisation is
    $\rho = \lambda / X_{\max}$, and queueing theory (M/M/$c$, Erlang C) says the wait grows
    like $1 / (1 - \rho)$: fine at 50 %, painful at 90 %, unbounded at 100 %.
    """)
    return


@app.cell(hide_code=True)
def _():
    from infphys import analysis, fmt, measure, plots, resolve, stats
    from infphys.exercises import labsetup, ui

    ui.offline_note()
    return analysis, fmt, labsetup, measure, plots, resolve, stats, ui


@app.cell
def _(labsetup, mo):
    # The simulator's settings apply when nothing answers at NIM_BASE_URL (the fallback): a
    # small A100 server whose knee lies inside the sweep.
    controls, _view = labsetup.controls(
        labsetup.server_row(
            "A100 80GB SXM", "Llama-3.1-8B", [2, 4, 8, 16, 32], 8, "fallback simulator: "
        ),
        {
            "concurrency_levels": labsetup.list_dropdown(
                [[1, 2, 4, 8, 16, 32], [1, 2, 4, 8, 16], [1, 4, 16, 64], [1, 2, 4, 8, 16, 32, 64]],
                [1, 2, 4, 8, 16, 32],
                "closed-loop concurrency levels",
            ),
            "rounds_per_level": mo.ui.slider(
                2, 16, value=4, label="rounds per level (requests = rounds × c)", show_value=True
            ),
        },
        {
            "rate_fractions": labsetup.list_dropdown(
                [[0.3, 0.5, 0.7, 0.85], [0.5, 0.8, 0.95], [0.25, 0.5, 0.75, 1.0, 1.25]],
                [0.3, 0.5, 0.7, 0.85],
                "open-loop rates (× the closed loop's plateau)",
            ),
            "open_requests": mo.ui.slider(
                20, 400, step=20, value=40, label="requests per open-loop rate", show_value=True
            ),
        },
        labsetup.request_row([16, 64, 256, 1024], 64, [8, 16, 32, 64, 128], 16),
    )
    _view
    return (controls,)


@app.cell
def _(controls, labsetup):
    # The settings as plain values, a row of controls a line (a test overrides them all).
    gpu, model, max_num_seqs = labsetup.settings(controls, "gpu", "model", "max_num_seqs")
    concurrency_levels, rounds_per_level = labsetup.settings(
        controls, "concurrency_levels", "rounds_per_level"
    )
    rate_fractions, open_requests = labsetup.settings(controls, "rate_fractions", "open_requests")
    prompt_tokens, max_tokens, seed = labsetup.settings(
        controls, "prompt_tokens", "max_tokens", "seed"
    )
    return (
        concurrency_levels,
        gpu,
        max_num_seqs,
        max_tokens,
        model,
        open_requests,
        prompt_tokens,
        rate_fractions,
        rounds_per_level,
        seed,
    )


@app.cell
def _(resolve):
    # The target: NIM_BASE_URL if a server answers there (probed once, nothing started).
    resolved = resolve.resolve_target(fallback=False)
    # The engine behind it when it is an infphys simulator (it publishes its configuration).
    published = resolved.sim_config if resolved.answered else None
    return published, resolved


@app.cell
def _():
    # The fallback simulator's clock: wall seconds per simulated second. 1 is real time; on a
    # computer too busy to keep up (the lag note below says so), 2 or 3 slows the simulated
    # GPU down so the computer's delays stay small beside a step — every latency that many
    # times longer, every rate that many times lower.
    time_scale = 1.0
    return (time_scale,)


@app.cell
def _(gpu, max_num_seqs, model, resolved, time_scale, ui):
    # Otherwise the fallback: a small simulated server started afresh for each run (an idle
    # engine, no queue left over), on the settings above, its lag counted and shown once below.
    # A simulator that `infphys labs` started because nothing answered is a fallback too.
    server = ui.FallbackServer(resolved, gpu, model, max_num_seqs, time_scale)
    fallback, server_for_run, server_note = server.fallback, server.run, server.note
    return fallback, server_for_run, server_note


@app.cell(hide_code=True)
def _(server_note, ui):
    ui.target_view(server_note)
    return


@app.cell
def _(measure, seed, server_for_run):
    def run_sweep(levels):
        """One sweep of ``levels`` on the server above (a fallback one is started afresh), its
        metrics scraped every 0.1 s of its clock: the result, and the simulator's lag note (None
        if none)."""
        with server_for_run() as (target, lag_note):
            result = measure.run_sync(measure.run_levels(target, levels, kind="sweep", seed=seed,
                                                         metrics_interval_s=0.1 * target.time_scale,
                                                         log_notes=False))
            return result, lag_note()

    return (run_sweep,)


@app.cell
def _(
    concurrency_levels,
    max_tokens,
    measure,
    prompt_tokens,
    rounds_per_level,
    run_sweep,
):
    # The closed-loop sweep: rounds × c requests per level (at least 8), no warm-up.
    _levels = [
        measure.Level(requests=max(rounds_per_level * _c, 8), concurrency=_c,
                      prompt_tokens=prompt_tokens, max_tokens=max_tokens)
        for _c in concurrency_levels
    ]
    closed, closed_lag_note = run_sweep(_levels)
    closed_frame = closed.frame()
    return closed, closed_frame, closed_lag_note


@app.cell
def _(closed_frame, stats):
    closed_summary = stats.summarize(closed_frame).sort_values("concurrency")
    knee = stats.sweep_knee(closed_summary)
    # The knee's level (None when throughput still rose at the last level: no knee in reach).
    knee_concurrency = (
        int(knee.knee_x) if knee is not None and knee.knee_x is not None else None
    )
    return closed_summary, knee, knee_concurrency


@app.cell
def _(closed_frame, mo, plots):
    mo.vstack(
        [
            plots.load.latency_vs_load(closed_frame, title="Closed loop: end-to-end p50, p95, p99"),
            plots.load.throughput_vs_load(
                closed_frame, title="Closed loop: throughput, the knee marked"
            ),
            plots.load.error_rate_vs_load(closed_frame, title="Closed loop: errors"),
        ]
    )
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## Little's Law at every level

    Each level's time-averaged requests in flight $L$ against its throughput times its mean
    latency, $\lambda W$, over the stretch while requests were being sent (the level's first
    send to its last). Little's Law itself has no error; a run's edges do. The stretch starts
    with nothing in flight but ends with up to $c - 1$ requests part-way through: they count in
    $L$, and not yet in $\lambda$. Clients in step (one batch, ending together) leave no residue.
    Below the knee, clients that drift apart by a fraction of a service time leave up to
    $(c-1)/(c(r-1))$ of a level of $r$ rounds; past it they queue, spread over the whole
    latency, and leave about half a request each: near $1/(2(r-1))$. More rounds, smaller
    residue.
    """)
    return


@app.cell
def _(analysis, closed_frame):
    little_table = analysis.littles_law_by_level(closed_frame)
    little_table
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## Server metrics on the same clock

    Every request's latency at the moment it was sent (top), and the server's own gauges,
    scraped from its Prometheus endpoint during the run (bottom): requests running, requests
    waiting, KV-cache usage. Past the knee, *waiting* becomes non-zero: that queue is where the
    extra latency is spent.
    """)
    return


@app.cell
def _(closed, closed_frame, plots):
    plots.labs_load.run_timeline(closed_frame, metrics=closed.metrics,
                                 title="Closed loop: latencies and server gauges over time")
    return


@app.cell
def _(closed_summary):
    # The plateau: the most the closed loop got through, the service capacity of the server.
    capacity_req_per_s = float(closed_summary["throughput_req_per_s"].max())
    return (capacity_req_per_s,)


@app.cell
def _(
    capacity_req_per_s,
    max_tokens,
    measure,
    open_requests,
    prompt_tokens,
    rate_fractions,
    run_sweep,
):
    # The open-loop sweep, on a fresh server: Poisson arrivals at fractions of the plateau.
    _levels = [
        measure.Level(requests=open_requests, rate_per_s=round(_f * capacity_req_per_s, 3),
                      arrival="poisson", prompt_tokens=prompt_tokens, max_tokens=max_tokens)
        for _f in rate_fractions
    ]
    opened, open_lag_note = run_sweep(_levels)
    open_frame = opened.frame()
    return open_frame, open_lag_note, opened


@app.cell(hide_code=True)
def _(closed, closed_lag_note, open_lag_note, opened, ui):
    # What this measurement says about itself, once: the simulator's lag, a busy client.
    measurement_notes = ui.run_notes(
        [closed_lag_note, open_lag_note], [*closed.warnings, *opened.warnings]
    )
    ui.notes_view(measurement_notes)
    return (measurement_notes,)


@app.cell
def _(closed_frame, open_frame, plots):
    plots.labs_load.latency_vs_throughput(
        {"closed loop": closed_frame, "open loop (Poisson)": open_frame},
        title="Same server, two loads: latency against the throughput delivered",
    )
    return


@app.cell
def _(
    analysis,
    capacity_req_per_s,
    concurrency_levels,
    fallback,
    knee_concurrency,
    max_num_seqs,
    open_frame,
    published,
):
    # Theory against measurement: each rate against M/M/c with the measured plateau as its
    # capacity and c = the server's batch limit: the fallback's setting, or the one an infphys
    # simulator publishes; a real server does not publish it, so c is then its knee's
    # concurrency (or the highest level if it never saturated), and the prose below says so.
    if fallback:
        queue_servers = max_num_seqs
    elif published is not None:
        queue_servers = published.max_num_seqs
    else:
        queue_servers = knee_concurrency or max(concurrency_levels)
    queue_servers_source = (
        "the server's batch limit (max_num_seqs)"
        if fallback or published is not None
        else "the knee's concurrency (this server does not publish its batch limit)"
    )
    queue_table = analysis.open_loop_vs_mmc(
        open_frame, servers=queue_servers, capacity_req_per_s=capacity_req_per_s
    )
    queue_table
    return queue_servers, queue_servers_source


@app.cell(hide_code=True)
def _(mo, queue_servers, queue_servers_source):
    mo.md(rf"""
    Here $c$ = {queue_servers}: {queue_servers_source}.
    M/M/{queue_servers} assumes exponential service times; a batching server's are nearly
    constant, so its queue is calmer than the model says (Kingman: the wait scales with
    $(c_a^2 + c_s^2)/2$, about half with $c_s \approx 0$). And M/M/c gives the *steady state*:
    close to $\rho = 1$ a queue takes longer to build than a run of a hundred requests lasts,
    so short runs look better than the long-run average. Both agree on the shape: the wait
    explodes as $\rho \to 1$, and at $\rho \geq 1$ the queue only grows (no steady state).
    """)
    return


@app.cell
def _(open_frame, opened, plots):
    plots.labs_load.run_timeline(open_frame, metrics=opened.metrics,
                                 title="Open loop: latencies and server gauges over time")
    return


@app.cell
def _(
    analysis,
    capacity_req_per_s,
    closed_summary,
    concurrency_levels,
    fmt,
    knee_concurrency,
    mo,
    open_frame,
):
    # The highest rate at which some request finished, against the closed loop's single-user p95.
    _near = analysis.top_finished_level(open_frame)
    mo.stop(
        _near is None,
        mo.callout(mo.md("No open-loop request finished: there is no tail to compare."),
                   kind="warn"),
    )
    _closed_best = closed_summary.iloc[0]
    p95_growth = float(_near["e2e_p95_s"] / _closed_best["e2e_p95_s"])
    _knee_text = (
        f"Throughput stopped paying at **{knee_concurrency} concurrent requests** (plateau "
        f"{fmt.num(capacity_req_per_s)} requests/s); beyond it, latency grows as $c / X$."
        if knee_concurrency is not None
        else f"Throughput was still rising at {max(concurrency_levels)} concurrent requests "
        f"({fmt.num(capacity_req_per_s)} requests/s): this server's knee lies beyond the sweep "
        "(lab 11 sweeps further on the virtual-time simulator)."
    )
    mo.callout(
        mo.md(
            f"""
            **Key takeaway.** {_knee_text} Offered as Poisson arrivals at
            {fmt.pct(_near['rate_per_s'] / capacity_req_per_s, 0)} of that plateau, the same
            server's p95 was **{p95_growth:.1f}×** its single-user p95: size a deployment with
            the open loop's tail, not the closed loop's average.
            """
        ),
        kind="info",
    )
    return (p95_growth,)


@app.cell
def _(capacity_req_per_s, knee_concurrency, p95_growth, server_note):
    # What the answer file keeps of this run besides the answers.
    exercise_runs = {
        "concurrency_sweep": {
            "server": server_note,
            "knee_concurrency": knee_concurrency,
            "capacity_req_per_s": capacity_req_per_s,
            "open_loop_p95_growth": p95_growth,
        },
    }
    return (exercise_runs,)


@app.cell
def _(capacity_req_per_s, closed_summary, knee, open_frame, stats):
    _has_knee = knee is not None and knee.knee_index is not None
    _at_knee = closed_summary.iloc[knee.knee_index if _has_knee else -1]
    _rates = stats.summarize(open_frame)["rate_per_s"]
    _below = _rates[_rates < 0.95 * capacity_req_per_s]
    # What the exercises are checked against: the learner's own sweeps.
    exercise_context = {
        "concurrency": int(_at_knee["concurrency"]),
        "throughput_req_per_s": round(float(_at_knee["throughput_req_per_s"]), 3),
        "capacity_req_per_s": round(capacity_req_per_s, 3),
        "rate_per_s": round(float(_below.max() if len(_below) else 0.8 * capacity_req_per_s), 3),
    }
    return (exercise_context,)


@app.cell(hide_code=True)
def _(ui):
    learner, save_button = ui.learner_controls()
    ui.exercises_heading(learner)
    return learner, save_button


@app.cell
def _(exercise_context, ui):
    answers = ui.exercise_form("lab08", exercise_context)
    answers.vstack()
    return (answers,)


@app.cell
def _(answers, exercise_context, exercise_runs, learner, save_button, ui):
    book = ui.answer_book(learner, "lab08", exercise_runs)
    verdicts = ui.check_answers(book, answers.value, exercise_context)
    ui.results_view(verdicts, book, save_button)
    return


if __name__ == "__main__":
    app.run()
