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
app = marimo.App(width="medium", app_title="Lab 13 · From one GPU to a fleet")


@app.cell(hide_code=True)
def _():
    # marimo alone first: the title and the prose show while the other imports load.
    import marimo as mo

    return (mo,)


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    # Lab 13 · From one GPU to a fleet

    *How many GPUs, in what shape: one TP2 instance or two replicas, which router, and when does
    splitting prefill from decode pay? Then let the planner find the cheapest fleet.*

    **Time: about 15 minutes.** Everything runs on the simulator in virtual time (a fleet of
    replicas behind a router, each a continuous-batching engine priced by the fitted step
    model), beside NVIDIA's measured TP1/TP2 points; no server is needed.
    """)
    return


@app.cell(hide_code=True)
def _():
    from infphys import catalog, fleet_compare, fleet_estimate, fleet_planning, fmt
    from infphys import nim_planning, physics, plots
    from infphys.exercises import ui

    ui.offline_note()
    return (
        catalog,
        fleet_compare,
        fleet_estimate,
        fleet_planning,
        fmt,
        nim_planning,
        physics,
        plots,
        ui,
    )


@app.cell(hide_code=True)
def _(catalog, mo):
    mo.md(
        r"""
    ## TP or replicas: what the measurements say

    Tensor parallelism splits every weight matrix over the GPUs of one instance: each step
    reads half the weights per GPU, but ends every layer in an all-reduce and keeps its fixed
    costs. NVIDIA measured Llama-3-8B on H100s at TP1 and TP2 (closed loops of *N* clients,
    200 → 200 tokens): compare the tokens/s **per GPU**. Source: """
        + catalog.MEASURED_SOURCES["nim_llama3_serving.csv"]
        + "."
    )
    return


@app.cell
def _(catalog, nim_planning, plots, ui):
    model = catalog.get_model("llama-3.1-8b")
    gpu = "h100-sxm"
    gpu_name = catalog.get_gpu(gpu).name
    tp_measured = nim_planning.tp_gain(model.key, gpu, 200, 200)
    ui.figure_table(
        plots.measured.nim_tp_gain(tp_measured), tp_measured,
        ["concurrency", "tokens_per_s_small", "tokens_per_s_large", "speedup", "per_gpu_ratio"],
        2,
    )
    return gpu, gpu_name, model, tp_measured


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    The simulator asks the same question at a load you choose: two H100s as one TP2 instance or
    as two TP1 replicas behind a least-outstanding router, Poisson arrivals of 2,000 → 200
    tokens. Raise the rate towards saturation and watch which layout keeps its p95.
    """)
    return


@app.cell
def _(mo):
    tp_rate = mo.ui.slider(steps=[2, 4, 6, 8, 10, 12], value=6, show_value=True, label="requests/s")
    tp_rate
    return (tp_rate,)


@app.cell
def _(fleet_compare, plots, tp_rate, ui):
    _cfg, _w = fleet_compare.tp_scenario(rate_per_s=float(tp_rate.value), requests=200)
    tp_table = fleet_compare.compare_tp_replicas(_cfg, 2, _w)
    ui.figure_table(
        plots.fleet.fleet_tp_replicas(tp_table), tp_table,
        ["layout", "ttft_p95_s", "itl_p95_s", "output_tokens_per_s"], 4,
    )
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## Which router?

    A router chooses the replica of each request as it arrives. *Round-robin* takes turns;
    *least-outstanding* picks the replica with the fewest requests (running + waiting);
    *least-KV* the emptiest KV cache; *session-affinity* hashes the session so a conversation
    keeps its prefix cache. Under Poisson arrivals whose answers range from a few tokens to
    2,000 (H200s of 8 seats each), a blind router sends work to a replica busy with long
    answers while another has free seats. Same arrivals for all four:
    """)
    return


@app.cell
def _(mo):
    router_replicas = mo.ui.slider(2, 6, value=4, show_value=True, label="replicas")
    router_replicas
    return (router_replicas,)


@app.cell
def _(fleet_compare, plots, router_replicas, ui):
    replicas = int(router_replicas.value)
    _cfg, _w = fleet_compare.bursty_scenario(replicas, requests=400)
    router_table = fleet_compare.compare_routers(_cfg, replicas, _w)
    ui.figure_table(
        plots.fleet.fleet_routers(router_table), router_table,
        ["router", "ttft_p50_s", "ttft_p95_s", "requests_per_s", "e2e_mean_s"], 4,
    )
    return replicas, router_table


@app.cell(hide_code=True)
def _(fmt, mo, router_table):
    _lo = router_table.set_index("router").loc["least-outstanding"]
    mo.md(
        f"""
    ## Little's Law across the fleet

    L = λW holds for the whole fleet as for one server. With least-outstanding routing the fleet
    completed **{_lo["requests_per_s"]:.2f} requests/s** at a mean end-to-end latency of
    **{_lo["e2e_mean_s"]:.3f} s**, so **{fmt.num(_lo["in_flight_littles"], 1)}** requests were
    in flight on average, **{fmt.num(_lo["in_flight_per_replica"], 1)}** per replica: the batch
    each engine ran. Each replica has 8 seats: at this load most of the time there are free ones.
    """
    )
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## When disaggregation pays

    Colocated, a replica prefills a long prompt in steps that also carry its decoders, so every
    arrival stretches their gap between tokens to a prefill step. Split into a prefill pool and a
    decode pool (the KV cache moves over NVLink, about 1 ms for 4,000 tokens), decode steps hold
    decode tokens only. The price: fewer GPUs prefill, so the TTFT queues. 4,000-token prompts,
    16-token answers, 3.5 requests/s per GPU, H200s:
    """)
    return


@app.cell
def _(mo):
    split_gpus = mo.ui.slider(2, 4, value=2, show_value=True, label="GPUs")
    split_gpus
    return (split_gpus,)


@app.cell
def _(fleet_compare, plots, split_gpus, ui):
    _g = int(split_gpus.value)
    _cfg, _w = fleet_compare.long_prompt_scenario(_g)
    split_table = fleet_compare.compare_disaggregation(_cfg, _g, _w)
    ui.figure_table(
        plots.fleet.fleet_disaggregation(split_table), split_table,
        ["layout", "itl_p95_s", "ttft_p95_s", "requests_per_s"], 4,
    )
    return (split_table,)


@app.cell
def _(fleet_compare, model, physics):
    # One prompt's prefill on the long-prompt scenario's GPU: what a prefill replica is busy for.
    _cfg, _w = fleet_compare.long_prompt_scenario(2)
    split_rate_per_s = float(_w.rate_per_s or 0.0)
    prefill_s = physics.prefill_time(_cfg.gpu, model, _w.prompt_tokens).total_s
    return prefill_s, split_rate_per_s


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## The cheapest fleet for your users

    The planner (`infphys.fleet_planning.plan_fleet`, also `infphys plan-fleet`) estimates every
    GPU × precision × replica count with the step model and M/M/c queues, simulates the cheapest
    candidates and their neighbours, and returns the cheapest fleet whose **simulated** p95 TTFT
    and ITL meet your objective. Here it searches L40S, H100 and H200 at TP1 (GPU-hour prices
    are assumptions: $1.20, $2.50, $3.50), colocated and split.
    """)
    return


@app.cell
def _(mo):
    plan_users = mo.ui.slider(steps=[16, 32, 64, 128], value=32, show_value=True, label="users")
    plan_ttft = mo.ui.slider(
        steps=[0.5, 1.0, 2.0], value=1.0, show_value=True, label="p95 TTFT (s)"
    )
    plan_itl = mo.ui.slider(steps=[30, 50, 100], value=50, show_value=True, label="p95 ITL (ms)")
    mo.hstack([plan_users, plan_ttft, plan_itl], justify="start")
    return plan_itl, plan_ttft, plan_users


@app.cell
def _(
    catalog,
    fleet_estimate,
    fleet_planning,
    mo,
    plan_itl,
    plan_ttft,
    plan_users,
    plots,
):
    plan = fleet_planning.plan_fleet(
        fleet_estimate.FleetDemand(
            users=int(plan_users.value), prompt_tokens=2000, output_tokens=200
        ),
        catalog.LatencySLO(float(plan_ttft.value), float(plan_itl.value) / 1e3),
        prices_usd={"l40s": 1.20, "h100-sxm": 2.50, "h200-sxm": 3.50},
        tps=(1,),
        max_gpus=16,
        requests=96,
        max_shapes=4,
        rounds=1,
        waves=1,
    )
    mo.vstack(
        [
            mo.md(f"**{plan.message}**"),
            plots.fleet.fleet_pareto(plan.candidates, plan.pareto),
            plan.candidates[plan.candidates["simulated"]][
                [
                    "label",
                    "usd_per_hour",
                    "sim_ttft_p95_s",
                    "est_ttft_p95_s",
                    "sim_itl_p95_s",
                    "est_itl_p95_s",
                    "usd_per_million_tokens",
                    "ok",
                ]
            ].round(4),
        ]
    )
    return (plan,)


@app.cell
def _(mo, tp_measured):
    _row = tp_measured.set_index("concurrency").loc[100]
    mo.callout(
        mo.md(
            f"**Key takeaway.** Measured, a second H100 as TP2 bought {_row['speedup']:.2f}× "
            f"the tokens/s of one ({_row['per_gpu_ratio']:.2f}× per GPU): TP buys latency, "
            "replicas buy throughput. Route on queue length, not turns; split prefill from "
            "decode when long prompts meet a tight ITL; and let Little's Law check every fleet: "
            "in flight = rate × latency."
        ),
        kind="info",
    )
    return


@app.cell
def _(plan, split_table):
    # What the answer file keeps of this run besides the answers.
    exercise_runs = {
        "fleet": {
            "cheapest": plan.best["label"] if plan.best else None,
            "split_itl_p95_s": dict(
                zip(split_table["layout"], split_table["itl_p95_s"].astype(float), strict=True)
            ),
        },
    }
    return (exercise_runs,)


@app.cell
def _(
    gpu,
    gpu_name,
    model,
    prefill_s,
    replicas,
    router_table,
    split_rate_per_s,
):
    _r = router_table.set_index("router")
    _lo = _r.loc["least-outstanding"]
    exercise_context = {
        "model": model.key,
        "model_name": model.name,
        "gpu": gpu,
        "gpu_name": gpu_name,
        "concurrency": 100,
        "replicas": replicas,
        "requests_per_s": round(float(_lo["requests_per_s"]), 3),
        "e2e_mean_s": round(float(_lo["e2e_mean_s"]), 4),
        "rr_ttft_p95_ms": round(float(_r.loc["round-robin", "ttft_p95_s"]) * 1e3, 1),
        "lo_ttft_p95_ms": round(float(_lo["ttft_p95_s"]) * 1e3, 1),
        "kv_ttft_p95_ms": round(float(_r.loc["least-kv", "ttft_p95_s"]) * 1e3, 1),
        "sa_ttft_p95_ms": round(float(_r.loc["session-affinity", "ttft_p95_s"]) * 1e3, 1),
        "rate_per_s": split_rate_per_s,
        "prefill_ms": round(prefill_s * 1e3, 2),
    }
    return (exercise_context,)


@app.cell(hide_code=True)
def _(ui):
    learner, save_button = ui.learner_controls()
    ui.exercises_heading(learner)
    return learner, save_button


@app.cell
def _(exercise_context, ui):
    answers = ui.exercise_form("lab13", exercise_context)
    answers.vstack()
    return (answers,)


@app.cell
def _(answers, exercise_context, exercise_runs, learner, save_button, ui):
    book = ui.answer_book(learner, "lab13", exercise_runs)
    verdicts = ui.check_answers(book, answers.value, exercise_context)
    ui.results_view(verdicts, book, save_button)
    return


if __name__ == "__main__":
    app.run()
