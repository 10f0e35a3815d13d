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
app = marimo.App(width="medium", app_title="Lab 4 · FP8")


@app.cell(hide_code=True)
def _():
    # marimo alone first: the title and the prose show while the other imports load.
    import marimo as mo

    return (mo,)


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    # Lab 4 · FP8: what halving the bytes buys

    *Decode is a memory-bandwidth problem and capacity is a memory-size problem, so a number
    format with half the bytes attacks both at once — but not by the same factor.*

    **Time: about 7 minutes.** Compare BF16 and FP8 on paper, then on the simulator.
    """)
    return


@app.cell(hide_code=True)
def _():
    import importlib.metadata
    import importlib.util

    import pandas as pd

    from infphys import fmt, physics, plots, sim
    from infphys.exercises import labsetup, ui
    from infphys.exercises import lab04 as ex4

    ui.offline_note()
    return ex4, fmt, importlib, labsetup, pd, physics, plots, sim, ui


@app.cell(hide_code=True)
def _(mo, physics):
    _bf16_gb = physics.weight_bytes("llama-3.1-8b", "bf16") / 1e9
    _fp8_gb = physics.weight_bytes("llama-3.1-8b", "fp8") / 1e9
    mo.md(r"""
    ## The idea

    FP8 (E4M3) stores one byte per number instead of BF16's two. Two things shrink:

    - **weights**: $\text{parameters} \times \text{bytes}$ — """ + f"{_bf16_gb:.2f} GB → {_fp8_gb:.2f} GB" + r""" for
      Llama-3.1-8B;
    - **KV cache** (if you also set `kv_cache_dtype=fp8`):
      $2 \times \text{layers} \times \text{KV heads} \times \text{head dim} \times \text{bytes}$
      per token.

    A batch-1 decode step reads every weight and the sequence's KV once, so its floor is
    $\text{bytes read} / \text{bandwidth}$: halving the bytes halves the floor. The users that
    fit are $(\text{usable memory} - \text{weights}) / (\text{context} \times \text{KV per
    token})$: the numerator *grows* as the weights shrink while the denominator halves, so
    capacity **more than doubles**.
    """)
    return


@app.cell
def _(labsetup, mo):
    controls, _view = labsetup.controls(
        {"model": labsetup.model_select("Llama-3.1-8B"), "gpu": labsetup.gpu_select("H100 SXM")},
        {
            "context_tokens": mo.ui.slider(
                steps=[1024, 2048, 4096, 8192, 16384, 32768], value=8192, show_value=True,
                label="context per user (tokens)",
            ),
            "seed": labsetup.seed_input(),
        },
    )
    _view
    return (controls,)


@app.cell
def _(controls, labsetup):
    # The settings as plain values, in one cell: a test overrides them all (tests/labrun.py).
    model, gpu, context_tokens, seed = labsetup.settings(
        controls, "model", "gpu", "context_tokens", "seed"
    )
    return context_tokens, gpu, model, seed


@app.cell
def _():
    # The two schemes compared: (weights precision, KV-cache precision).
    schemes = {"BF16": ("bf16", "bf16"), "FP8": ("fp8", "fp8")}
    return (schemes,)


@app.cell
def _(context_tokens, gpu, model, pd, physics, schemes):
    # Theory, one row per scheme: each column is one call into infphys.physics.
    theory = pd.DataFrame(
        [
            {
                "scheme": _name,
                "weights_gb": physics.weight_bytes(model, _w) / 1e9,
                "kv_bytes_per_token": physics.kv_bytes_per_token(model, _kv),
                "max_users": physics.max_concurrent_sequences(
                    gpu, model, context_tokens, weights_precision=_w, kv_precision=_kv
                ),
                "decode_floor_ms": physics.decode_floor_s(
                    gpu, model, 1, context_tokens, weights_precision=_w, kv_precision=_kv
                ) * 1e3,
            }
            for _name, (_w, _kv) in schemes.items()
        ]
    ).set_index("scheme")
    users_bf16 = int(theory.loc["BF16", "max_users"])
    users_fp8 = int(theory.loc["FP8", "max_users"])
    theory_capacity_ratio = users_fp8 / users_bf16 if users_bf16 else float("inf")
    theory_floor_ratio = theory.loc["BF16", "decode_floor_ms"] / theory.loc["FP8", "decode_floor_ms"]
    theory.round(2)
    return theory, theory_capacity_ratio, theory_floor_ratio, users_bf16, users_fp8


@app.cell
def _(context_tokens, gpu, model, plots):
    plots.memory.precision_capacity(
        deployments=[(model.key, gpu.key, 1)],
        schemes=[("bf16", "bf16"), ("fp8", "bf16"), ("fp8", "fp8")],
        context_tokens=context_tokens,
    )
    return


@app.cell(hide_code=True)
def _(gpu, mo):
    _note = (
        ""
        if gpu.has_fp8
        else f"\n\n**Note:** the {gpu.name} has no FP8 tensor cores: engines run FP8 weights "
        "there as weight-only (dequantised to BF16 for the math), so the bytes shrink but the "
        "FLOP/s do not double."
    )
    mo.md(
        "## Confirm it on the simulator\n\n"
        "The embedded simulator serves the same model twice, once per scheme: **low load** "
        "(one user) shows the inter-token latency, **high load** (twice as many users as FP8 "
        "can hold) shows how many sequences the KV cache really keeps running, and the tokens/s."
        + _note
    )
    return


@app.cell
def _(context_tokens, gpu, model, pd, schemes, seed, sim, users_fp8):
    # One simulate() per (scheme, load). Small, fast settings: virtual time, a few ms each.
    low_load = sim.Workload.closed(
        concurrency=1, requests=4, prompt_tokens=512, max_tokens=128, ignore_eos=True, seed=seed
    )
    high_users = max(2, min(2 * users_fp8, 512))
    _out = min(256, context_tokens // 2)
    high_load = sim.Workload.closed(
        concurrency=high_users, requests=2 * high_users, prompt_tokens=context_tokens - _out,
        max_tokens=_out, ignore_eos=True, seed=seed,
    )
    _rows = []
    sim_problem = ""
    for _name, (_w, _kv) in schemes.items():
        try:
            _cfg = sim.EngineConfig.build(
                gpu=gpu, model=model, weights_precision=_w, kv_precision=_kv,
                max_model_len=context_tokens, max_num_seqs=512, seed=seed,
            )
        except ValueError as _exc:
            sim_problem = f"{_name}: {_exc}"
            continue
        _lo = sim.simulate(_cfg, low_load, keep_chunk_times=False).summary()
        _hi = sim.simulate(_cfg, high_load, keep_chunk_times=False).summary()
        _rows.append(
            {
                "scheme": _name,
                "itl_low_load_ms": _lo["tpot_mean_s"] * 1e3,
                "running_high_load": int(_hi["peak_running"]),
                "tokens_per_s_high_load": _hi["output_tokens_per_s"],
                "preemptions": int(_hi["preemptions"]),
            }
        )
    simulated = pd.DataFrame(_rows).set_index("scheme") if _rows else pd.DataFrame()
    return high_users, sim_problem, simulated


@app.cell
def _(fmt, mo, pd, sim_problem, simulated, theory_capacity_ratio, theory_floor_ratio):
    # Theory against the simulator, as ratios FP8 over BF16 (ITL: BF16 over FP8).
    if len(simulated) == 2:
        itl_ratio = simulated.loc["BF16", "itl_low_load_ms"] / simulated.loc["FP8", "itl_low_load_ms"]
        capacity_ratio = (
            simulated.loc["FP8", "running_high_load"] / simulated.loc["BF16", "running_high_load"]
        )
        comparison = pd.DataFrame(
            [
                {"gain": "ITL at low load (BF16 ÷ FP8)", "theory": theory_floor_ratio,
                 "simulated": itl_ratio},
                {"gain": "sequences held at high load (FP8 ÷ BF16)",
                 "theory": theory_capacity_ratio, "simulated": capacity_ratio},
            ]
        )
        comparison["error"] = [
            fmt.rel_error(_s, _t, 1)
            for _s, _t in zip(comparison["simulated"], comparison["theory"], strict=True)
        ]
        _view = mo.vstack([simulated.round(2), comparison.round(2)])
    else:
        itl_ratio = capacity_ratio = float("nan")
        comparison = pd.DataFrame()
        _view = mo.callout(mo.md(f"The simulator cannot run this configuration: {sim_problem}"),
                           kind="warn")
    _view
    return capacity_ratio, comparison, itl_ratio


@app.cell
def _(gpu, model, plots, simulated, theory):
    if len(simulated) == 2:
        _fig = plots.labs.bar_compare(
            {
                "users that fit (theory)": theory["max_users"].to_dict(),
                "running at high load (sim)": simulated["running_high_load"].to_dict(),
                "ITL at low load, ms (sim)": simulated["itl_low_load_ms"].to_dict(),
                "tokens/s at high load (sim)": simulated["tokens_per_s_high_load"].to_dict(),
            },
            title=f"{model.name} on {gpu.name}: BF16 against FP8",
        )
    else:
        _fig = plots.labs.bar_compare(
            {"users that fit (theory)": theory["max_users"].to_dict()},
            title=f"{model.name} on {gpu.name}: BF16 against FP8 (theory only)",
        )
    _fig
    return


@app.cell(hide_code=True)
def _(context_tokens, ex4, gpu, mo, model):
    _split = ex4.fixed_cost_split(gpu.key, model.key, context_tokens)
    mo.md(
        "Why is the simulated ITL gain smaller than 2×? Every engine step also pays a fixed cost "
        "— kernel launches, scheduling, sampling — that no number format shrinks: "
        f"{_split['bf16_fixed_s'] * 1e3:.2f} ms of this batch-1 step in the simulator's fitted "
        f"step model, beside {_split['bf16_bytes_s'] * 1e3:.2f} ms (BF16) or "
        f"{_split['fp8_bytes_s'] * 1e3:.2f} ms (FP8) that depend on the bytes: "
        f"{_split['speedup']:.2f}× in all. At high load the weights are read once for the whole "
        "batch, so what the batch really gains from FP8 is room: more sequences decoding together."
    )
    return


@app.cell(hide_code=True)
def _(mo):
    from infphys import evidence
    from infphys.plots import measured as measured_plots

    fp8_measured = evidence.fp8_speedup("h100-sxm")
    _b1 = fp8_measured[fp8_measured["batch"] == 1]
    mo.vstack(
        [
            mo.md(
                "**What FP8 bought on real hardware.** NVIDIA measured the same models in FP16 "
                "and FP8 on H100s (TensorRT-LLM 0.9, static batches, 128 → 128 tokens). At "
                f"batch 1 the FP8 step was **{_b1['measured'].median():.2f}×** faster (median "
                f"over {len(_b1)} models), against {_b1['model'].median():.2f}× from the "
                f"fitted step model and {_b1['ideal'].median():.2f}× from bytes alone. The gain "
                "shrinks as the batch grows and the KV reads and the matrix products, not the "
                "weights, take the time."
            ),
            measured_plots.measured_fp8_speedup(fp8_measured),
        ]
    )
    return evidence, fp8_measured, measured_plots


@app.cell(hide_code=True)
def _(importlib, mo):
    # Is vLLM installed here? Detected, never required.
    if importlib.util.find_spec("vllm") is not None:
        try:
            _version = importlib.metadata.version("vllm")
        except importlib.metadata.PackageNotFoundError:
            _version = "unknown version"
        vllm_status = f"vLLM {_version} is installed"
        _text = (
            f"**{vllm_status}.** To compare on real hardware, serve the model twice and point "
            "`NIM_BASE_URL` at each:\n\n"
            "```\nvllm serve meta-llama/Llama-3.1-8B-Instruct\n"
            "vllm serve meta-llama/Llama-3.1-8B-Instruct --quantization fp8 --kv-cache-dtype fp8\n```"
        )
    else:
        vllm_status = "vLLM is not installed"
        _text = (
            f"**{vllm_status}** on this machine — the simulator stands in for it. On a GPU "
            "machine, `pip install vllm` and serve with `--quantization fp8 --kv-cache-dtype fp8` "
            "to repeat this comparison for real."
        )
    mo.callout(mo.md(_text), kind="neutral")
    return (vllm_status,)


@app.cell
def _(
    capacity_ratio,
    context_tokens,
    fmt,
    gpu,
    itl_ratio,
    mo,
    model,
    theory,
    users_bf16,
    users_fp8,
):
    _floor_bf16 = float(theory.loc["BF16", "decode_floor_ms"])
    _floor_fp8 = float(theory.loc["FP8", "decode_floor_ms"])
    mo.callout(
        mo.md(
            f"**Key takeaway.** On one {gpu.name} with {model.name} at "
            f"{fmt.count(context_tokens)} tokens per user, FP8 weights and KV raise the users "
            f"that fit from **{fmt.count(users_bf16)} to {fmt.count(users_fp8)}** "
            f"({users_fp8 / max(users_bf16, 1):.2f}×) and cut the batch-1 decode step from "
            f"{_floor_bf16:.2f} ms to {_floor_fp8:.2f} ms. On the simulator, ITL improved "
            f"**{itl_ratio:.2f}×** and the sequences held **{capacity_ratio:.2f}×**: FP8 buys "
            "capacity more than speed."
        ),
        kind="info",
    )
    return


@app.cell
def _(high_users, simulated, vllm_status):
    # What the answer file keeps of this run besides the answers (nothing when nothing ran).
    exercise_runs = (
        {
            "bf16_vs_fp8": {
                "high_load_users": high_users, "vllm": vllm_status,
                **{f"{k}_{s}": v for s, row in simulated.iterrows() for k, v in row.items()},
            }
        }
        if len(simulated)
        else {}
    )
    return (exercise_runs,)


@app.cell
def _(capacity_ratio, context_tokens, gpu, itl_ratio, model):
    exercise_context = {
        "model": model.key,
        "model_name": model.name,
        "gpu": gpu.key,
        "gpu_name": gpu.name,
        "context_tokens": context_tokens,
        "itl_ratio": round(float(itl_ratio), 2),
        "capacity_ratio": round(float(capacity_ratio), 2),
    }
    return (exercise_context,)


@app.cell(hide_code=True)
def _(ui):
    learner, save_button = ui.learner_controls()
    ui.exercises_heading(learner)
    return learner, save_button


@app.cell
def _(exercise_context, ui):
    answers = ui.exercise_form("lab04", exercise_context)
    answers.vstack()
    return (answers,)


@app.cell
def _(answers, exercise_context, exercise_runs, learner, save_button, ui):
    book = ui.answer_book(learner, "lab04", exercise_runs)
    verdicts = ui.check_answers(book, answers.value, exercise_context)
    ui.results_view(verdicts, book, save_button)
    return


if __name__ == "__main__":
    app.run()
