# /// script
# requires-python = ">=3.11"
# dependencies = [
#     "marimo==0.25.2",
#     "numpy>=1.26",
#     "pandas>=2.1",
#     "plotly>=5.20",
#     "nvidia-ml-py>=12",
#     # optional: torch (CPU or CUDA build) runs the copy benchmark and the roofline experiment
#     # on a GPU; without it they run on host memory with numpy / a scaled-down model.
#     # infphys itself: installed from this repository (pip install -e ".[labs]").
#     "infphys",
# ]
# ///

import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Lab 2 · Know your metal")


@app.cell(hide_code=True)
def _():
    # marimo alone first: the title and the prose show while the other imports load.
    import marimo as mo

    return (mo,)


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    # Lab 2 · Know your metal

    *Before you measure a server, know the machine under it: how many bytes per second its
    memory can move sets the speed limit of every decode step.*

    **Time: about 7 minutes** (the two benchmarks take under a minute together). Every part has
    a "no GPU here" path: on a laptop the benchmarks run on host memory and a scaled-down model,
    labelled as such, and the catalog stands in for the GPU.
    """)
    return


@app.cell(hide_code=True)
def _():
    import pandas as pd

    from infphys import catalog, fmt, measure, physics, plots
    from infphys.exercises import labsetup, ui

    ui.offline_note()
    return catalog, fmt, labsetup, measure, pd, physics, plots, ui


@app.cell(hide_code=True)
def _(catalog, mo, physics):
    _h100 = catalog.get_gpu("h100")
    _w = physics.weight_bytes("llama-3.1-8b")
    _floor_ms = 1e3 * physics.decode_floor_s("h100", "llama-3.1-8b")
    mo.md(rf"""
    ## The idea

    A decode step reads every weight once, whatever the batch. So the shortest step is

    $$t_\text{{step}} \ge \frac{{\text{{weight bytes}}}}{{\text{{memory bandwidth}}}}
    \qquad\text{{e.g. }} \frac{{{_w / 1e9:.2f}\ \text{{GB}}}}{{{_h100.bandwidth_bytes_per_s / 1e12:.2f}\ \text{{TB/s}}}} = {_floor_ms:.2f}\ \text{{ms
    (Llama-3.1-8B, BF16, H100 SXM)}}$$

    A kernel is memory-bound while it does fewer FLOPs per byte than the **ridge point**,
    $\text{{peak FLOP/s}} / \text{{bandwidth}}$ ({physics.ridge_point("h100"):.0f} for an H100 in BF16). Decode at small batch
    does about one FLOP per weight byte: deep in memory-bound land.
    """)
    return


@app.cell
def _(measure):
    # 1 · Engine check: which GPUs NVML sees (never raises; says why when there is none).
    engine = measure.engine_check()
    has_gpu = engine.ok
    return engine, has_gpu


@app.cell(hide_code=True)
def _(engine, fmt, has_gpu, mo, pd):
    if has_gpu:
        _rows = pd.DataFrame(
            [
                {
                    "GPU": g.name,
                    # Both units: nvidia-smi shows MiB; GiB = MiB / 1,024.
                    "memory": (
                        f"{fmt.mib(g.memory_total_bytes, 0)} = {fmt.gib(g.memory_total_bytes)}"
                        if g.memory_total_bytes else "n/a"
                    ),
                    "compute capability": ".".join(map(str, g.compute_capability or ())) or "n/a",
                    "catalog entry": g.catalog.name if g.catalog else "not in catalog",
                }
                for g in engine.gpus
            ]
        )
        _view = mo.vstack(
            [mo.md(f"## 1 · Engine check\n\n**{engine.verdict}** (driver {engine.driver_version})"),
             _rows]
        )
    else:
        _view = mo.vstack(
            [
                mo.md("## 1 · Engine check"),
                mo.callout(
                    mo.md(
                        f"**No GPU here.** {engine.verdict}. {engine.torch or ''}\n\n"
                        "That is fine: pick the GPU you want to reason about below; the "
                        "benchmarks run on this machine's host memory and say so."
                    ),
                    kind="neutral",
                ),
            ]
        )
    _view
    return


@app.cell
def _(engine, has_gpu, labsetup):
    _detected = engine.gpus[0].catalog if has_gpu and engine.gpus[0].catalog else None
    table_controls, _view = labsetup.controls(
        {
            "gpu": labsetup.gpu_select(
                _detected.name if _detected else "H100 SXM",
                "GPU to reason about" + (" (detected)" if _detected else ""),
            ),
            "model": labsetup.model_select("Llama-3.1-8B", "model for the weight-read floor"),
        },
        title="2 · The bandwidth context table",
    )
    _view
    return (table_controls,)


@app.cell
def _(labsetup, table_controls):
    # The settings as plain values, one cell a section: a test overrides a section's at once.
    gpu, model = labsetup.settings(table_controls, "gpu", "model")
    return gpu, model


@app.cell
def _(catalog, model, pd, physics):
    # The catalog, with what each GPU's bandwidth means for one model (one call per column).
    _weights = physics.weight_bytes(model)
    bandwidth_table = pd.DataFrame(
        [
            {
                "GPU": g.name,
                "memory (GB)": g.memory_bytes / 1e9,
                "memory (GiB, as nvidia-smi ÷ 1,024)": g.memory_bytes / 2**30,
                "bandwidth (TB/s)": g.bandwidth_bytes_per_s / 1e12,
                "BF16 (TFLOP/s)": g.bf16_flops_per_s / 1e12,
                "FP8 (TFLOP/s)": (g.fp8_flops_per_s or 0) / 1e12,
                "ridge point (FLOP/byte)": physics.ridge_point(g),
                f"{model.name} BF16 floor (ms)": _weights / g.bandwidth_bytes_per_s * 1e3,
                "source": g.sources.get("bandwidth_bytes_per_s", ""),
            }
            for g in catalog.GPUS.values()
        ]
    ).sort_values("bandwidth (TB/s)", ignore_index=True)
    bandwidth_table.round(2)
    return


@app.cell
def _(plots):
    plots.physics.gpu_specs()
    return


@app.cell(hide_code=True)
def _(has_gpu, mo):
    mo.md(
        "## 3 · Copy bandwidth, counted both ways\n\n"
        "A copy of *S* bytes reads *S* and writes *S*: the memory moves **2 × S**. Datasheets "
        "count both directions; the original notebook counted *S* once and made an H100 look "
        "like a 1.3 TB/s part. "
        + ("This runs on your GPU." if has_gpu else
           "**No GPU here:** this runs on host memory (CPU RAM) — it teaches the method, "
           "not a GPU's figure.")
    )
    return


@app.cell
def _(labsetup, mo):
    copy_controls, _view = labsetup.controls(
        {
            "largest_mib": labsetup.int_dropdown([16, 64, 256, 1024], 64, "largest copy (MiB)"),
            "repeats": mo.ui.number(3, 50, step=1, value=5, label="timings per size"),
        },
        title=None,
    )
    _view
    return (copy_controls,)


@app.cell
def _(copy_controls, labsetup):
    _largest_mib, copy_repeats = labsetup.settings(copy_controls, "largest_mib", "repeats")
    copy_largest_bytes = _largest_mib * 2**20
    return copy_largest_bytes, copy_repeats


@app.cell
def _(copy_largest_bytes, copy_repeats, measure):
    # The copy benchmark, with the GPU watcher sampling alongside (empty, with a reason, if no GPU).
    with measure.GPUWatcher(interval_s=0.05) as copy_watch:
        copy = measure.copy_bandwidth(
            sizes_bytes=[1 * 2**20, copy_largest_bytes // 4, copy_largest_bytes],
            repeats=copy_repeats,
            warmup=1,
            time_budget_s=20.0,
        )
    copy_bytes = int(copy.frame["size_bytes"].iloc[-1])
    copy_s = float(copy.frame["median_s"].iloc[-1])
    return copy, copy_bytes, copy_s, copy_watch


@app.cell
def _(copy, fmt, gpu, mo, pd):
    # Theory (datasheet) against measured, for the GPU measured or the GPU chosen above.
    _datasheet = copy.catalog or (gpu if copy.memory == "device" else None)
    _rows = [
        {"convention": "read + written (2 × size / time)",
         "measured": fmt.gb_s(copy.bandwidth_bytes_per_s)},
        {"convention": "copied once (size / time)",
         "measured": fmt.gb_s(copy.bandwidth_copied_once_bytes_per_s)},
    ]
    copy_table = pd.DataFrame(_rows)
    if _datasheet is not None:
        copy_table["datasheet"] = fmt.gb_s(_datasheet.bandwidth_bytes_per_s)
        copy_table["error"] = [
            fmt.rel_error(copy.bandwidth_bytes_per_s, _datasheet.bandwidth_bytes_per_s),
            fmt.rel_error(copy.bandwidth_copied_once_bytes_per_s, _datasheet.bandwidth_bytes_per_s),
        ]
    else:
        copy_table["datasheet"] = "none: host memory has no catalog entry"
        copy_table["error"] = "n/a"
    mo.vstack([mo.md(f"*{copy.label}*"), copy_table])
    return (copy_table,)


@app.cell
def _(copy, copy_watch, mo, plots, ui):
    # The copy's bandwidth by size, then what the GPU watcher saw while it ran.
    _watched = plots.gpu.watch_figure(copy_watch.frame, title="GPU during the copy benchmark")
    mo.vstack(
        [plots.gpu.copy_bandwidth_figure(copy), ui.watch_view(copy_watch, "the copy", _watched)]
    )
    return


@app.cell(hide_code=True)
def _(has_gpu, mo):
    mo.md(
        "## 4 · The roofline experiment\n\n"
        "Time real decode steps (random weights, the model's real matrix shapes) at several "
        "batch sizes and put them on the roofline's prediction. "
        + ("On this GPU: Llama-3.1-8B in BF16 (and FP8 where the GPU has FP8 units)."
           if has_gpu else
           "**No GPU here:** a two-layer Llama-shaped stack runs on the CPU and is priced "
           "against this machine's own measured bandwidth and FLOP/s. A CPU shares its cores "
           "with everything else running, so expect noisy timings and large errors.")
    )
    return


@app.cell
def _(labsetup, mo):
    experiment_controls, _view = labsetup.controls(
        {
            "budget_s": mo.ui.number(2, 120, step=1, value=8, label="time budget (s)"),
            "seed": labsetup.seed_input(),
        },
        title=None,
    )
    _view
    return (experiment_controls,)


@app.cell
def _(experiment_controls, labsetup):
    experiment_budget_s, seed = labsetup.settings(experiment_controls, "budget_s", "seed")
    return experiment_budget_s, seed


@app.cell
def _(experiment_budget_s, has_gpu, measure, seed):
    experiment = measure.roofline_experiment(
        batch_sizes=None if has_gpu else (1, 4, 16, 64),
        time_budget_s=experiment_budget_s,
        seed=seed,
    )
    return (experiment,)


@app.cell
def _(experiment, plots):
    plots.gpu.roofline_experiment_figure(experiment)
    return


@app.cell
def _(experiment, mo):
    # Theory (the roofline at the kit's default efficiencies) against the measured step.
    roofline_table = experiment[
        ["precision", "batch", "step_s", "predicted_default_step_s", "error_vs_default",
         "predicted_bound"]
    ].assign(
        measured_ms=lambda f: f["step_s"] * 1e3,
        predicted_ms=lambda f: f["predicted_default_step_s"] * 1e3,
        error=lambda f: [f"{e * 100:+.0f}%" for e in f["error_vs_default"]],
    )[["precision", "batch", "measured_ms", "predicted_ms", "error", "predicted_bound"]]
    mo.vstack(
        [
            mo.md(f"*{experiment.attrs.get('model', '')} on {experiment.attrs.get('gpu_name', '')}"
                  f" — {experiment.attrs.get('gpu_source', '')}*"),
            roofline_table.round(3),
        ]
    )
    return (roofline_table,)


@app.cell
def _(copy, fmt, gpu, has_gpu, mo, model, physics):
    weight_floor_s = physics.weight_bytes(model) / gpu.bandwidth_bytes_per_s
    _frac = copy.fraction_of_datasheet
    _measured = (
        f"Your copy moved **{fmt.gb_s(copy.bandwidth_bytes_per_s)}** counted both ways"
        + (f", {_frac * 100:.0f}% of the datasheet." if _frac is not None else
           " on host memory — a GPU's HBM is 100 to 1,000 times faster.")
    )
    mo.callout(
        mo.md(
            f"**Key takeaway.** {model.name} holds {fmt.gb(physics.weight_bytes(model))} of BF16 "
            f"weights; at the {gpu.name}'s {fmt.tb_s(gpu.bandwidth_bytes_per_s)} no decode step "
            f"can take less than **{fmt.ms(weight_floor_s)}** — at most "
            f"{1 / weight_floor_s:,.0f} tokens/s for one user, whatever the FLOP/s. "
            + _measured
            + ("" if has_gpu else " (No GPU here: the figures above are the catalog's.)")
        ),
        kind="info",
    )
    return (weight_floor_s,)


@app.cell
def _(copy, engine, experiment):
    # What the answer file keeps of this run besides the answers.
    exercise_runs = {
        "metal": {
            "engine": engine.verdict,
            "copy_label": copy.label,
            "copy_bandwidth_bytes_per_s": copy.bandwidth_bytes_per_s,
            "roofline_points": len(experiment),
            "roofline_device": experiment.attrs.get("gpu_name", ""),
        },
    }
    return (exercise_runs,)


@app.cell
def _(copy_bytes, copy_s, gpu, model):
    exercise_context = {
        "gpu": gpu.key,
        "gpu_name": gpu.name,
        "model": model.key,
        "model_name": model.name,
        "copy_bytes": copy_bytes,
        "copy_s": copy_s,
    }
    return (exercise_context,)


@app.cell(hide_code=True)
def _(ui):
    learner, save_button = ui.learner_controls()
    ui.exercises_heading(learner)
    return learner, save_button


@app.cell
def _(exercise_context, ui):
    answers = ui.exercise_form("lab02", exercise_context)
    answers.vstack()
    return (answers,)


@app.cell
def _(answers, exercise_context, exercise_runs, learner, save_button, ui):
    book = ui.answer_book(learner, "lab02", exercise_runs)
    verdicts = ui.check_answers(book, answers.value, exercise_context)
    ui.results_view(verdicts, book, save_button)
    return


if __name__ == "__main__":
    app.run()
