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
app = marimo.App(width="medium", app_title="Lab 10 · Overload and backpressure")


@app.cell(hide_code=True)
def _():
    # marimo alone first: the title and the prose show while the other imports load.
    import marimo as mo

    return (mo,)


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    # Lab 10 · Overload and backpressure

    *An overloaded server does not get slower for everyone a little: it keeps its throughput
    and hands the excess to a queue, and the queue turns into timeouts, retries and a storm.
    What you do at the edge — cap, shed, back off — decides whether users see errors or
    nothing at all.*

    **Time: about 10 minutes.** Three live experiments (about 30 seconds in all). They run
    against **small simulated servers started here**, one per run: overloading a shared
    endpoint is impolite, and admission control (`--max-queue`) is a simulator setting.
    """)
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## The idea

    A server that runs at most $S$ requests at once (`max_num_seqs`), each for $s$ seconds,
    completes at most $X = S / s$ requests per second. Give it $c > S$ closed-loop clients and
    $c - S$ of them wait in its queue; by Little's Law each request then takes

    $$W = \frac{c}{X} = \frac{c \, s}{S},$$

    so a client timeout $T$ starts firing at about $c = T \, S / s$ clients. The throughput
    stays at $X$, but work finished after its client gave up is wasted: **goodput** (requests
    per second that meet the SLO) falls while throughput does not.

    - **Capping concurrency** (the batch limit, or a gateway's limit) moves the queue, it does
      not shorten it.
    - **Admission control** bounds the queue: beyond `max_queue` waiting requests the server
      answers **503** at once, so what it accepts finishes in time and what it refuses fails
      fast.
    - **Retries** decide what happens next: immediate, blind retries multiply the load exactly
      when there is none to spare; exponential backoff with jitter spreads them out.
    """)
    return


@app.cell(hide_code=True)
def _():
    from infphys import analysis, catalog, fmt, measure, plots, sim, stats
    from infphys.exercises import labsetup, ui

    ui.offline_note()
    return analysis, catalog, fmt, labsetup, measure, plots, sim, stats, ui


@app.cell
def _(catalog, labsetup, mo):
    controls, _view = labsetup.controls(
        labsetup.server_row("A100 80GB SXM", "Llama-3.1-8B", [4, 8, 16, 32], 8, "simulated "),
        {
            "client_levels": labsetup.list_dropdown(
                [[4, 8, 16, 32], [4, 8, 16, 32, 64], [2, 4, 8, 16, 32]], [4, 8, 16, 32],
                "clients (closed-loop concurrency)",
            ),
            "requests_per_level": mo.ui.slider(
                32, 256, step=32, value=64, label="requests per level", show_value=True
            ),
            "timeout_s": mo.ui.slider(
                steps=[0.25, 0.5, 1.0, 2.0, 5.0], value=0.5, label="client timeout (s)",
                show_value=True,
            ),
        },
        {
            "open_fractions": labsetup.list_dropdown(
                [[0.5, 1.0, 1.5, 2.0], [0.8, 1.2, 2.0, 3.0], [1.0, 2.0]], [0.5, 1.0, 1.5, 2.0],
                "open-loop rates (× capacity)",
            ),
            "open_requests": mo.ui.slider(
                20, 200, step=20, value=40, label="requests per rate", show_value=True
            ),
            "max_queue": mo.ui.slider(
                steps=[1, 2, 4, 8, 16, 32], value=8, label="admission control: max_queue",
                show_value=True,
            ),
        },
        {
            # TTFT starts at Nielsen's 1 s flow-of-thought limit (infphys.catalog.DEFAULT_SLO).
            "ttft_slo_s": mo.ui.slider(
                steps=[0.1, 0.25, 0.5, 1.0], value=catalog.DEFAULT_SLO.ttft_s,
                label="SLO: TTFT (s)", show_value=True,
            ),
            "tpot_slo_s": mo.ui.slider(
                steps=[0.01, 0.02, 0.05, 0.1], value=0.05, label="SLO: TPOT (s)", show_value=True
            ),
        },
        {
            "burst_factor": mo.ui.slider(
                steps=[1.5, 2.0, 3.0, 4.0], value=3.0, label="retry burst (× capacity)",
                show_value=True,
            ),
            "burst_users": mo.ui.slider(
                40, 400, step=20, value=100, label="user requests in the burst", show_value=True
            ),
        },
        labsetup.request_row([16, 64, 256], 64, [8, 16, 32], 16),
    )
    _view
    return (controls,)


@app.cell
def _(controls, labsetup):
    # The settings as plain values, a row of controls a line (a test overrides them all).
    gpu, model, max_num_seqs = labsetup.settings(controls, "gpu", "model", "max_num_seqs")
    client_levels, requests_per_level, timeout_s = labsetup.settings(
        controls, "client_levels", "requests_per_level", "timeout_s"
    )
    open_fractions, open_requests, max_queue = labsetup.settings(
        controls, "open_fractions", "open_requests", "max_queue"
    )
    ttft_slo_s, tpot_slo_s = labsetup.settings(controls, "ttft_slo_s", "tpot_slo_s")
    burst_factor, burst_users = labsetup.settings(controls, "burst_factor", "burst_users")
    prompt_tokens, max_tokens, seed = labsetup.settings(
        controls, "prompt_tokens", "max_tokens", "seed"
    )
    return (
        burst_factor,
        burst_users,
        client_levels,
        gpu,
        max_num_seqs,
        max_queue,
        max_tokens,
        model,
        open_fractions,
        open_requests,
        prompt_tokens,
        requests_per_level,
        seed,
        timeout_s,
        tpot_slo_s,
        ttft_slo_s,
    )


@app.cell
def _():
    # The simulators' clock: wall seconds per simulated second. 1 is real time; on a computer
    # too busy to keep up (the lag note below says so), 2 or 3 slows the simulated GPU down so
    # the computer's delays stay small beside a step — every latency that many times longer,
    # so scale the timeout and the SLOs above alike.
    time_scale = 1.0
    return (time_scale,)


@app.cell
def _(gpu, max_num_seqs, model, sim, time_scale):
    def serve_fresh(max_queue=None):
        # The simulated server on the settings above, started afresh for each run (an idle
        # engine, no queue left over); max_queue=None leaves its queue unbounded.
        return sim.serve(gpu, model, max_num_seqs=max_num_seqs, max_queue=max_queue,
                         time_scale=time_scale, log_lag=False)

    return (serve_fresh,)


@app.cell(hide_code=True)
def _(fmt, gpu, max_num_seqs, model, time_scale, ui):
    _slowed = f", its clock slowed × {time_scale:g}" if time_scale != 1 else ""
    ui.target_view(
        f"a simulated {model} on one {gpu}, max_num_seqs = {fmt.count(max_num_seqs)}, started "
        f"afresh on 127.0.0.1 for each run{_slowed} (never NIM_BASE_URL: this lab overloads "
        "its server)."
    )
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## 1 · Timeouts: rising clients, a fixed timeout

    Each level is a closed loop of $c$ clients whose requests give up after the timeout.
    """)
    return


@app.cell
def _(
    client_levels,
    max_tokens,
    measure,
    prompt_tokens,
    requests_per_level,
    seed,
    serve_fresh,
    time_scale,
    timeout_s,
):
    # One call: the overload run (no admission control: the queue is unbounded, as in vLLM).
    with serve_fresh() as _sim:
        unbounded = measure.run_sync(
            measure.overload(
                _sim, concurrency=client_levels, requests_per_level=requests_per_level,
                timeout_s=timeout_s, prompt_tokens=prompt_tokens, max_tokens=max_tokens,
                seed=seed, metrics_interval_s=0.1 * time_scale, log_notes=False,
            )
        )
        unbounded_lag_note = _sim.lag_note()
    unbounded_frame = unbounded.frame()
    return unbounded, unbounded_frame, unbounded_lag_note


@app.cell
def _(plots, unbounded_frame):
    plots.load.error_rate_vs_load(
        unbounded_frame, title="Errors by class as clients rise (no admission control)"
    )
    return


@app.cell
def _(analysis, max_num_seqs, mo, stats, timeout_s, unbounded_frame):
    unbounded_summary = stats.summarize(unbounded_frame)
    # The service time s: the mean e2e at the last level whose clients the batch still holds.
    service_s = analysis.service_time_s(unbounded_frame, servers=max_num_seqs)
    mo.stop(
        service_s is None,
        mo.callout(
            mo.md(f"Every request timed out (timeout {timeout_s:g} s), so there is no service "
                  "time to read: raise the timeout or lower the output tokens."),
            kind="warn",
        ),
    )
    # The server's capacity: the highest throughput of the closed-loop overload run.
    capacity_req_per_s = float(unbounded_summary["throughput_req_per_s"].max())
    # Theory against measurement: W = max(1, c / S) × s (Little's Law with X = S / s).
    theory_table = analysis.closed_loop_vs_little(unbounded_frame, servers=max_num_seqs,
                                                  service_s=service_s)
    theory_table
    return capacity_req_per_s, service_s, unbounded_summary


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    Up to the batch limit, latency stays at the service time; past it, it grows as $c\,s/S$.
    Where timeouts fire, the measured mean falls *below* the prediction: the requests that
    would have taken longest are the ones that timed out, and a timed-out request has no
    latency to average (survivorship) — read the error rate next to it.

    **Capped concurrency** is why this happens at all: the server caps the batch at
    `max_num_seqs`, and the excess waits in its queue. The bottom panel below shows it —
    *running* pinned at the cap, *waiting* growing with the clients. A gateway that caps
    concurrency in front of the server only moves that queue; it does not shorten it.
    """)
    return


@app.cell
def _(plots, unbounded, unbounded_frame):
    plots.labs_load.run_timeline(
        unbounded_frame, metrics=unbounded.metrics,
        title="No admission control: latencies, running (capped) and waiting",
    )
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## 2 · Admission control: a bounded queue answers 503

    Users do not wait for each other: they arrive at a rate. The same Poisson schedule — from
    half the capacity measured above to twice it — is sent to two fresh servers, one with an
    unbounded queue (vLLM's default) and one started with `--max-queue`, which refuses new
    requests at once while that many wait. Both clients keep the timeout.
    """)
    return


@app.cell
def _(
    capacity_req_per_s,
    max_queue,
    max_tokens,
    measure,
    open_fractions,
    open_requests,
    prompt_tokens,
    seed,
    serve_fresh,
    timeout_s,
):
    # The open-loop levels: Poisson arrivals at fractions of the capacity, the timeout recorded.
    _levels = [
        measure.Level(requests=open_requests, rate_per_s=round(_f * capacity_req_per_s, 3),
                      prompt_tokens=prompt_tokens, max_tokens=max_tokens,
                      labels={"timeout_s": timeout_s})
        for _f in open_fractions
    ]
    # One call per server, each fresh: the same schedule without (max_queue None: unbounded, as
    # in vLLM) and with admission control.
    _timeouts = measure.Timeouts(connect_s=timeout_s, read_s=timeout_s, total_s=timeout_s)
    _frames, open_lag_notes = [], []
    for _queue in (None, max_queue):
        with serve_fresh(_queue) as _sim:
            _run = measure.run_levels(_sim, _levels, kind="overload", timeouts=_timeouts, seed=seed,
                                      drain_s=timeout_s + 1, log_notes=False)
            _frames.append(measure.run_sync(_run).frame())
            open_lag_notes.append(_sim.lag_note())
    open_unbounded, open_bounded = _frames
    return open_bounded, open_lag_notes, open_unbounded


@app.cell
def _(max_queue, open_bounded, open_unbounded, plots, tpot_slo_s, ttft_slo_s):
    plots.overload.overload_compare(
        {"unbounded queue": open_unbounded, f"max_queue = {max_queue}": open_bounded},
        ttft_slo_s=ttft_slo_s, tpot_slo_s=tpot_slo_s,
        title="Without and with admission control: errors, survivors' p95, goodput",
    )
    return


@app.cell
def _(analysis, open_bounded, open_unbounded, tpot_slo_s, ttft_slo_s):
    # Goodput against throughput per arrival rate, without and with admission control.
    goodput_unbounded, goodput_bounded = (
        analysis.goodput_by_level(
            _f, ttft_slo_s=ttft_slo_s, tpot_slo_s=tpot_slo_s
        ).set_index("rate_per_s")
        for _f in (open_unbounded, open_bounded)
    )
    goodput_unbounded.join(
        goodput_bounded[["goodput_per_s", "error_rate"]].add_suffix("_with_max_queue")
    )
    return goodput_bounded, goodput_unbounded


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## 3 · Retries: blind against backoff

    A burst of user requests (Poisson, faster than the server's capacity) hits a server with a
    bounded queue. Each policy sees the same schedule on a fresh server: no retries, blind
    retries (up to 5 attempts, at once), and exponential backoff with full jitter (up to 5
    attempts, waits drawn from 0–0.5 s, 0–1 s, 0–2 s, 0–4 s).
    """)
    return


@app.cell
def _(
    burst_factor,
    burst_users,
    capacity_req_per_s,
    max_queue,
    max_tokens,
    measure,
    prompt_tokens,
    seed,
    serve_fresh,
    time_scale,
    timeout_s,
):
    # Waits are on the simulator's clock: a slowed one (time_scale) waits as much longer.
    retry_policies = [
        measure.RetryPolicy.no_retry(),
        measure.RetryPolicy.blind(max_attempts=5),
        measure.RetryPolicy.backoff(max_attempts=5, base_delay_s=0.5 * time_scale,
                                    max_delay_s=5.0 * time_scale),
    ]
    # One call: the same burst once per policy, a (simulated) second of quiet in between (the
    # bounded queue drains in a fraction of it, so each policy meets an idle server).
    with serve_fresh(max_queue) as _sim:
        retried = measure.run_sync(
            measure.retry_run(
                _sim, retry_policies,
                rate_per_s=burst_factor * capacity_req_per_s, user_requests=burst_users,
                prompt_tokens=prompt_tokens, max_tokens=max_tokens,
                timeouts=measure.Timeouts(total_s=timeout_s * 4), seed=seed,
                pause_s=1.0 * time_scale,
            )
        )
        retry_lag_note = _sim.lag_note()
    retry_table = retried.summary()
    retry_table
    return retry_lag_note, retry_table


@app.cell(hide_code=True)
def _(open_lag_notes, retry_lag_note, ui, unbounded, unbounded_lag_note):
    # What these measurements say about themselves, once: a simulator's lag, a busy client.
    measurement_notes = ui.run_notes(
        [unbounded_lag_note, *open_lag_notes, retry_lag_note], unbounded.warnings
    )
    ui.notes_view(measurement_notes)
    return (measurement_notes,)


@app.cell
def _(plots, retry_table):
    plots.overload.retry_compare(retry_table, title="The same burst, three retry policies")
    return


@app.cell
def _(
    capacity_req_per_s,
    fmt,
    goodput_bounded,
    goodput_unbounded,
    max_queue,
    mo,
    retry_table,
    timeout_s,
    unbounded_summary,
):
    _clients = unbounded_summary.sort_values("concurrency").iloc[-1]
    _rate = goodput_unbounded.index.max()
    _top, _top_bounded = goodput_unbounded.loc[_rate], goodput_bounded.loc[_rate]
    _blind = retry_table.set_index("policy").loc["blind retries"]
    _backoff = retry_table.set_index("policy").loc["backoff + jitter"]
    mo.callout(
        mo.md(
            f"""
            **Key takeaway.** With a {timeout_s:g} s timeout, {int(_clients['concurrency'])}
            clients saw **{fmt.pct(_clients['error_rate'], 0)}** of their requests fail
            against a server of about {fmt.num(capacity_req_per_s)} requests/s. Offered
            {fmt.num(_rate)} requests/s, it delivered a goodput of
            **{fmt.num(_top['goodput_per_s'])}** requests/s with an unbounded queue and
            **{fmt.num(_top_bounded['goodput_per_s'])}** with `max_queue = {max_queue}`.
            Blind retries sent **{_blind['amplification']:.2f}×** the attempts and served
            {fmt.pct(_blind['success_rate'], 0)} of users; backoff with jitter sent
            {_backoff['amplification']:.2f}× and served
            **{fmt.pct(_backoff['success_rate'], 0)}**, at a user-perceived p95 of
            {fmt.seconds(_backoff['e2e_p95_s'])}: a late answer instead of an error. Shed
            early, retry late.
            """
        ),
        kind="info",
    )
    return


@app.cell
def _(goodput_bounded, goodput_unbounded, retry_table):
    # What the answer file keeps of this run besides the answers.
    exercise_runs = {
        "overload": {
            "goodput_unbounded_per_s": goodput_unbounded["goodput_per_s"].tolist(),
            "goodput_bounded_per_s": goodput_bounded["goodput_per_s"].tolist(),
            "retry_amplification": {
                str(_r.policy): float(_r.amplification) for _r in retry_table.itertuples()
            },
        },
    }
    return (exercise_runs,)


@app.cell
def _(goodput_unbounded, max_num_seqs, retry_table, service_s, timeout_s):
    _blind = retry_table.set_index("policy").loc["blind retries"]
    # The goodput question uses the busiest level where some requests still met the SLO.
    _some = goodput_unbounded[goodput_unbounded["met"] > 0]
    _level = (_some if len(_some) else goodput_unbounded).iloc[-1]
    # What the exercises are checked against: the learner's own runs and settings.
    exercise_context = {
        "max_num_seqs": max_num_seqs,
        "service_ms": round(service_s * 1e3, 2),
        "timeout_s": timeout_s,
        "met": int(_level["met"]),
        "judged": int(_level["judged"]),
        "window_s": round(float(_level["window_s"]), 3),
        "attempts": int(_blind["attempts"]),
        "user_requests": int(_blind["user_requests"]),
    }
    return (exercise_context,)


@app.cell(hide_code=True)
def _(ui):
    learner, save_button = ui.learner_controls()
    ui.exercises_heading(learner)
    return learner, save_button


@app.cell
def _(exercise_context, ui):
    answers = ui.exercise_form("lab10", exercise_context)
    answers.vstack()
    return (answers,)


@app.cell
def _(answers, exercise_context, exercise_runs, learner, save_button, ui):
    book = ui.answer_book(learner, "lab10", exercise_runs)
    verdicts = ui.check_answers(book, answers.value, exercise_context)
    ui.results_view(verdicts, book, save_button)
    return


if __name__ == "__main__":
    app.run()
