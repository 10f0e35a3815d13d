# /// script
# requires-python = ">=3.11"
# dependencies = [
#     "marimo==0.25.2",
#     "numpy>=1.26",
#     "pandas>=2.1",
#     "plotly>=5.20",
#     "aiohttp>=3.9",
#     # infphys itself: installed from this repository (pip install -e ".[labs]").
#     "infphys",
# ]
# ///

import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Lab 1 · Preflight")


@app.cell(hide_code=True)
def _():
    # marimo alone first: the title and the prose show while the other imports load.
    import marimo as mo

    return (mo,)


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    # Lab 1 · Preflight: what are we measuring?

    *Every number in this course is a measurement of some server; before trusting one, know
    which server answered, and check that it answers properly.*

    **Time: about 5 minutes.** Find the target, run the preflight, time one request.
    """)
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## The idea

    The labs talk to any OpenAI-compatible server (NIM, vLLM, SGLang, TGI, llama.cpp). Which
    one comes from the environment, as in NVIDIA's NIM notebooks:

    | variable | default | meaning |
    |---|---|---|
    | `NIM_BASE_URL` | `http://localhost:8000` | scheme, host and port of the server |
    | `NIM_CHAT_PATH` | `/v1/chat/completions` | the chat API's path |
    | `NIM_GEN_MODEL` | `meta/llama-3.1-8b-instruct` | the `model` of every request |
    | `NIM_API_KEY` | (none) | sent as a bearer token |

    If nothing answers at `NIM_BASE_URL`, the labs start the **embedded simulator**: a real HTTP
    server on 127.0.0.1 whose answers take the time a chosen GPU and model would take. One
    streamed request then splits into two phases:

    $$\text{e2e} = \text{TTFT} + (n - 1) \times \text{TPOT}$$

    where TTFT (time to first token) is mostly the **prefill** of the prompt, and TPOT (time
    per output token) is one **decode** step.
    """)
    return


@app.cell(hide_code=True)
def _():
    import pandas as pd

    from infphys import catalog, fmt, measure, physics, plots
    from infphys.exercises import labsetup, ui

    ui.offline_note()
    return catalog, fmt, labsetup, measure, pd, physics, plots, ui


@app.cell
def _(mo, pd, ui):
    # The target: NIM_BASE_URL if it answers, else the embedded simulator (kept running).
    resolved, target = ui.lab_target()
    _cfg = resolved.sim_config
    target_table = pd.DataFrame(
        [
            {"setting": "base URL", "value": target.base_url},
            {"setting": "chat path", "value": target.chat_path},
            {"setting": "model", "value": target.model},
            {"setting": "simulated", "value": "yes" if resolved.simulated else "no"},
        ]
        + (
            [
                {"setting": "simulated GPU", "value": f"{_cfg.tp}× {_cfg.gpu.name}"},
                {"setting": "simulated model",
                 "value": f"{_cfg.model.name} ({_cfg.weights_precision.name})"},
            ]
            if _cfg is not None
            else []
        )
    )
    mo.vstack([mo.md(f"## 1 · The target\n\n{resolved.message}"), target_table])
    return resolved, target, target_table


@app.cell
def _(measure, mo, target):
    # 2 · The live preflight: models, readiness, one tiny streamed answer.
    verdict = measure.preflight_sync(target)
    preflight_ok = verdict.ok
    _steps = [
        {"step": s.name, "ok": s.ok, "status": s.status, "detail": s.detail,
         "ms": round(s.elapsed_s * 1e3, 1)}
        for s in verdict.steps
    ]
    mo.vstack(
        [
            mo.md("## 2 · Preflight"),
            mo.callout(mo.md(str(verdict)), kind="success" if verdict.ok else "danger"),
            mo.ui.table(_steps, selection=None),
        ]
    )
    return (preflight_ok,)


@app.cell
def _(labsetup, resolved):
    # The theory's GPU and model: the simulator's, else the course's defaults (the simulator's
    # and the home page's); pick the real ones when a real server answers.
    theory_picks = labsetup.theory_selects(resolved)
    controls, _view = labsetup.controls(
        labsetup.request_row([32, 128, 512, 2048], 128, [16, 64, 128, 256], 64),
        [*theory_picks],
        title="3 · Time one request",
    )
    _view
    return controls, theory_picks


@app.cell
def _(controls, labsetup, theory_picks):
    # The settings as plain values, in one cell: a test overrides them all (tests/labrun.py).
    max_tokens, prompt_tokens, seed = labsetup.settings(
        controls, "max_tokens", "prompt_tokens", "seed"
    )
    theory_gpu, theory_model = theory_picks.value
    return max_tokens, prompt_tokens, seed, theory_gpu, theory_model


@app.cell
def _(max_tokens, measure, prompt_tokens, seed, target):
    # One streamed request after one warm-up (connection set-up, the server's first-call costs),
    # timed by the measuring client; token counts from `usage`.
    probe = measure.run_sync(
        measure.run_closed_loop(
            target, concurrency=1, requests=1, warmup=1, prompt_tokens=prompt_tokens,
            max_tokens=max_tokens, seed=seed, log_notes=False,
        )
    )
    request = next(r for r in probe.records if not r.warmup)
    ttft_s = request.ttft_s
    e2e_s = request.e2e_s
    completion_tokens = request.completion_tokens
    tpot_s = request.tpot_s
    return completion_tokens, e2e_s, probe, request, tpot_s, ttft_s


@app.cell(hide_code=True)
def _(probe, resolved, ui):
    # What this measurement says about itself, once: the simulator's lag, a busy client.
    measurement_notes = ui.run_notes([resolved.lag_note()], probe.warnings)
    ui.notes_view(measurement_notes)
    return (measurement_notes,)


@app.cell
def _(
    fmt,
    max_tokens,
    pd,
    physics,
    prompt_tokens,
    request,
    theory_gpu,
    theory_model,
    tpot_s,
    ttft_s,
):
    # The model (the fitted step model, the simulator's own) against the measured request.
    _theory_ttft = physics.prefill_time(theory_gpu, theory_model, prompt_tokens).total_s
    _theory_tpot = physics.decode_step_s(theory_gpu, theory_model, 1,
                                         prompt_tokens + max_tokens // 2)
    comparison = pd.DataFrame(
        [
            {"quantity": "TTFT (prefill), ms", "theory": _theory_ttft * 1e3,
             "measured": ttft_s * 1e3},
            {"quantity": "TPOT (one decode step), ms", "theory": _theory_tpot * 1e3,
             "measured": (tpot_s or float("nan")) * 1e3},
        ]
    )
    comparison["error"] = [
        fmt.rel_error(_m, _t)
        for _m, _t in zip(comparison["measured"], comparison["theory"], strict=True)
    ]
    token_source = request.token_count_source
    comparison.round(2)
    return comparison, token_source


@app.cell(hide_code=True)
def _(catalog, mo, token_source):
    _p = catalog.FITTED_STEP_PARAMS
    mo.md(f"""
    The theory is the kit's step model, fitted to measured TensorRT-LLM and NIM step times: a
    prefill of the prompt's FLOPs at {_p.gemm_flops_efficiency:.0%} of the dense peak (Hopper), a
    decode step that reads the weights at {_p.weight_bandwidth_efficiency:.0%} of the datasheet
    bandwidth, plus {_p.layer_overhead_s * 1e6:.0f} µs per layer and
    {_p.sequence_overhead_s * 1e6:.0f} µs per sequence of fixed costs (kernel launches, sampling).
    The simulator runs the same model, so against it the two agree up to the HTTP path; against a
    real server the difference is what that server adds or saves. Token counts here came from:
    **{token_source}**.
    """)
    return


@app.cell
def _(plots, request):
    plots.labs.token_timeline(
        request.chunk_times_s, request.sent_s, title="One streamed request, token by token"
    )
    return


@app.cell(hide_code=True)
def _(mo, target):
    mo.md(f"""
    ## 4 · How to switch targets

    This lab measured `{target.base_url}`. To measure your own server instead, stop the labs
    (Ctrl-C) and start them with its address, for example:

    ```
    NIM_BASE_URL=http://gpu-box:8000 NIM_GEN_MODEL=meta/llama-3.1-8b-instruct infphys labs
    ```

    If that server does not answer, the labs say so and fall back to the simulator. The same
    variables work for every `infphys` command (`infphys preflight`, `infphys sweep`, …).
    """)
    return


@app.cell
def _(completion_tokens, e2e_s, fmt, mo, preflight_ok, resolved, tpot_s, ttft_s):
    _rate = 1 / tpot_s if tpot_s else float("nan")
    mo.callout(
        mo.md(
            f"**Key takeaway.** {'The target answers correctly' if preflight_ok else 'The target failed its preflight'}"
            f" ({'simulated' if resolved.simulated else 'a real server'}). One request took "
            f"{fmt.ms(ttft_s)} to its first token and {fmt.seconds(e2e_s)} for "
            f"{completion_tokens} tokens: **{fmt.ms(tpot_s or float('nan'))} per token, "
            f"{fmt.tok_s(_rate)} for one user**. Everything later in the course is this "
            "request, many times over, at the same time."
        ),
        kind="info",
    )
    return


@app.cell
def _(exercise_context, preflight_ok, resolved):
    # What the answer file keeps of this run besides the answers.
    exercise_runs = {
        "preflight": {"target": resolved.message, "preflight_ok": preflight_ok, **exercise_context},
    }
    return (exercise_runs,)


@app.cell
def _(completion_tokens, e2e_s, ttft_s):
    # Rounded as the prompts show them, so a learner's arithmetic on the shown numbers passes.
    exercise_context = {
        "ttft_s": round(ttft_s, 4),
        "e2e_s": round(e2e_s, 4),
        "completion_tokens": int(completion_tokens),
    }
    return (exercise_context,)


@app.cell(hide_code=True)
def _(ui):
    learner, save_button = ui.learner_controls()
    ui.exercises_heading(learner)
    return learner, save_button


@app.cell
def _(exercise_context, ui):
    answers = ui.exercise_form("lab01", exercise_context)
    answers.vstack()
    return (answers,)


@app.cell
def _(answers, exercise_context, exercise_runs, learner, save_button, ui):
    book = ui.answer_book(learner, "lab01", exercise_runs)
    verdicts = ui.check_answers(book, answers.value, exercise_context)
    ui.results_view(verdicts, book, save_button)
    return


if __name__ == "__main__":
    app.run()
