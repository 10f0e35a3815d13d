"""Reading NVIDIA's measured NIM benchmarks: curves, what TP buys, the cheapest deployment.

Functions over :func:`infphys.catalog.load_nim_serving` (GenAI-Perf closed loops of
``concurrency`` streaming clients against one NIM instance of ``tp`` GPUs; Llama-3 8B and 70B
Instruct on A100 and H100). Rows measured twice are averaged. Lab 12 shows them.

- :func:`latency_throughput`: TTFT and ITL against output tokens/s, one curve per deployment.
- :func:`tp_gain`: output tokens/s per GPU at two TP sizes, concurrency by concurrency.
- :func:`cheapest_deployment`: every deployment's cap under a p95 TTFT and ITL budget, the
  GPUs it needs for N users and the US dollars per million output tokens, cheapest first.
- :func:`closed_loop_estimate`: the queueing model of one row, from the step model alone.

Worked example (measured, Llama-3-8B FP16, 200 → 200 tokens, 50 clients): one H100 gives
4,394 output tokens/s at an ITL of 10.7 ms and two give 6,071 at 7.88 ms, so the second GPU
raises the total 1.38× but the tokens per GPU fall from 4,394 to 3,035 (0.69×): at this load
TP2 buys latency, not throughput per GPU.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from infphys.catalog import FITTED_STEP_PARAMS, StepParams, load_nim_serving
from infphys.evidence import CONFIG_COLUMNS, config_label
from infphys.physics import (
    cost_per_million_tokens,
    decode_step_s,
    prefill_time,
    request_latency_s,
)
from infphys.planning import replicas_needed, slo_cap_index

__all__ = [
    "METRICS",
    "cheapest_deployment",
    "closed_loop_estimate",
    "latency_throughput",
    "nim_row",
    "tp_gain",
    "ttft_knee",
]

#: The measured columns the functions here average over repeated measurements.
METRICS = (
    "ttft_ms_avg",
    "ttft_ms_p95",
    "itl_ms_avg",
    "itl_ms_p95",
    "e2e_ms_avg",
    "requests_per_s",
    "output_tokens_per_s",
)
_KEYS = [*CONFIG_COLUMNS, "isl", "osl", "concurrency"]


def _rows(frame: pd.DataFrame, **equal: object) -> pd.DataFrame:
    """The rows of ``frame`` whose columns hold the given values, e.g.
    ``_rows(curves, gpu_key="h100-sxm", tp=2)``: the H100 rows at TP2."""
    mask = pd.Series(True, index=frame.index)
    for column, value in equal.items():
        mask &= frame[column] == value
    return frame[mask]


def latency_throughput(
    model: str = "llama-3.1-8b", isl: int = 200, osl: int = 200, data: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per (deployment, concurrency) of ``model`` at one prompt → output shape.

    Columns: the deployment keys, ``config`` (:func:`~infphys.evidence.config_label`),
    ``concurrency``, the :data:`METRICS` (repeats averaged), ``tokens_per_s_per_gpu`` and
    ``source``; sorted by deployment, then concurrency. ``data`` defaults to the NIM table.
    """
    d = load_nim_serving() if data is None else data
    d = d[(d["model_key"] == model) & (d["isl"] == isl) & (d["osl"] == osl)]
    if d.empty:
        raise ValueError(f"no NIM rows for {model} at {isl} → {osl} tokens")
    g = d.groupby(_KEYS, as_index=False).agg({**{c: "mean" for c in METRICS}, "source": "first"})
    g["config"] = [
        config_label(gk, p, t)
        for gk, p, t in g[["gpu_key", "precision_key", "tp"]].itertuples(index=False)
    ]
    g["tokens_per_s_per_gpu"] = g["output_tokens_per_s"] / g["tp"]
    return g.sort_values(["gpu_key", "precision_key", "tp", "concurrency"]).reset_index(drop=True)


def tp_gain(
    model: str = "llama-3.1-8b",
    gpu: str = "h100-sxm",
    isl: int = 200,
    osl: int = 200,
    data: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """What more GPUs per instance bought, at each concurrency both TP sizes were measured at.

    Takes the smallest and the largest TP of ``model`` on ``gpu``. Columns: ``concurrency``,
    ``tp_small``, ``tp_large``, ``tokens_per_s_small`` / ``_large`` (whole instance),
    ``per_gpu_small`` / ``_large``, ``speedup`` (large ÷ small, whole instance),
    ``per_gpu_ratio`` (large ÷ small per GPU: below 1, each GPU does less), ``itl_ms_small`` /
    ``_large``.
    """
    c = latency_throughput(model, isl, osl, data)
    c = c[c["gpu_key"] == gpu]
    tps = sorted(c["tp"].unique())
    if len(tps) < 2:
        raise ValueError(f"{model} on {gpu} was measured at one TP size only ({tps})")
    small, large = c[c["tp"] == tps[0]], c[c["tp"] == tps[-1]]
    cols = ["concurrency", "output_tokens_per_s", "itl_ms_avg"]
    m = small[cols].merge(large[cols], on="concurrency", suffixes=("_small", "_large"))
    out = pd.DataFrame(
        {
            "concurrency": m["concurrency"].astype(int),
            "tp_small": int(tps[0]),
            "tp_large": int(tps[-1]),
            "tokens_per_s_small": m["output_tokens_per_s_small"],
            "tokens_per_s_large": m["output_tokens_per_s_large"],
            "per_gpu_small": m["output_tokens_per_s_small"] / tps[0],
            "per_gpu_large": m["output_tokens_per_s_large"] / tps[-1],
            "itl_ms_small": m["itl_ms_avg_small"],
            "itl_ms_large": m["itl_ms_avg_large"],
        }
    )
    out["speedup"] = out["tokens_per_s_large"] / out["tokens_per_s_small"]
    out["per_gpu_ratio"] = out["per_gpu_large"] / out["per_gpu_small"]
    return out.sort_values("concurrency").reset_index(drop=True)


def cheapest_deployment(
    users: int,
    ttft_ms: float,
    itl_ms: float,
    gpu_hourly_usd: Mapping[str, float],
    model: str = "llama-3.1-8b",
    isl: int = 200,
    osl: int = 200,
    data: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Every deployment of ``model`` that can serve ``users`` concurrent users within budget.

    Per deployment: the **cap** is the highest measured concurrency such that it and every
    level below it meet both p95 budgets (:func:`~infphys.planning.slo_cap_index`); the
    replicas are ceil(users / cap), each loaded with users / replicas clients, whose output
    tokens/s is interpolated between measured levels; US dollars per million output tokens =
    fleet price / fleet tokens (:func:`~infphys.physics.cost_per_million_tokens`).
    ``gpu_hourly_usd`` maps GPU keys to a price; deployments on GPUs without one are skipped.

    Columns: ``config``, ``gpu_key``, ``precision_key``, ``tp``, ``cap`` (0: not even one
    client meets the budgets), ``replicas``, ``gpus``, ``usd_per_hour``, ``tokens_per_s``,
    ``usd_per_million_tokens`` (NaN when cap is 0), ``ok``; the cheapest feasible first.

    Worked example: 100 users, TTFT p95 ≤ 1 s, ITL p95 ≤ 50 ms, A100 $1.80 and H100 $2.50 per
    GPU-hour, Llama-3-8B 200 → 200: one H100 meets both budgets up to 150 clients (at 200
    the p95 TTFT is 1,019 ms), so one replica serves the 100 users at the measured 6,550
    tokens/s for $2.50 an hour: 2.50 / 3600 × 10⁶ / 6,550 = $0.106 per million tokens.
    """
    if int(users) < 1:
        raise ValueError(f"users must be a whole number >= 1 (got {users!r})")
    curves = latency_throughput(model, isl, osl, data)
    out: list[dict[str, object]] = []
    configs = curves[["gpu_key", "precision_key", "tp"]].drop_duplicates()
    for gk, p, tp in configs.itertuples(index=False):
        if gk not in gpu_hourly_usd:
            continue
        c = _rows(curves, gpu_key=gk, precision_key=p, tp=tp).sort_values("concurrency")
        level = c["concurrency"].to_numpy(float)
        worst = np.maximum(
            c["ttft_ms_p95"].to_numpy(float) / ttft_ms, c["itl_ms_p95"].to_numpy(float) / itl_ms
        )
        i = slo_cap_index(level.tolist(), worst.tolist(), 1.0)
        cap = 0 if i is None else int(level[i])
        row: dict[str, object] = {
            "config": config_label(str(gk), str(p), int(tp)),
            "gpu_key": gk,
            "precision_key": p,
            "tp": int(tp),
            "cap": cap,
        }
        price = float(gpu_hourly_usd[str(gk)])
        if cap == 0:
            row.update(
                replicas=0,
                gpus=0,
                usd_per_hour=math.nan,
                tokens_per_s=math.nan,
                usd_per_million_tokens=math.nan,
                ok=False,
            )
        else:
            replicas = replicas_needed(users, cap)
            load = users / replicas
            per_replica = float(np.interp(load, level, c["output_tokens_per_s"].to_numpy(float)))
            gpus = replicas * int(tp)
            row.update(
                replicas=replicas,
                gpus=gpus,
                usd_per_hour=gpus * price,
                tokens_per_s=per_replica * replicas,
                usd_per_million_tokens=cost_per_million_tokens(
                    price, per_replica * replicas, num_gpus=gpus
                ),
                ok=True,
            )
        out.append(row)
    if not out:
        raise ValueError("gpu_hourly_usd names none of the GPUs the model was measured on")
    table = pd.DataFrame(out)
    return table.sort_values(
        ["ok", "usd_per_million_tokens"], ascending=[False, True], na_position="last"
    ).reset_index(drop=True)


def nim_row(
    model: str,
    gpu: str,
    precision: str,
    tp: int,
    concurrency: int,
    isl: int,
    osl: int,
    data: pd.DataFrame | None = None,
) -> pd.Series:
    """One measured NIM row (repeats averaged) as a Series with the loader's column names."""
    c = latency_throughput(model, isl, osl, data)
    hit = _rows(c, gpu_key=gpu, precision_key=precision, tp=tp, concurrency=concurrency)
    if hit.empty:
        raise ValueError(
            f"no NIM row for {model} on {gpu} × {tp} {precision}, {concurrency} clients, "
            f"{isl} → {osl} tokens"
        )
    row = hit.iloc[0].copy()
    row["model_key"] = model
    return row


def closed_loop_estimate(
    model: str,
    gpu: str,
    precision: str,
    tp: int,
    concurrency: int,
    isl: int,
    osl: int,
    *,
    params: StepParams = FITTED_STEP_PARAMS,
    frontend_s: float | None = None,
) -> dict[str, float]:
    """The queueing model of a closed loop of ``concurrency`` clients, from step times alone.

    With no think time every client always has a request in the engine, so the batch is the
    concurrency N. Each decode step costs the step model's time at batch N and mean context
    ``isl + osl / 2``; a request's prefill runs once per ``osl`` tokens it receives, so the
    prefills of N requests add ``N / osl`` prompt prefills to every decode step on average
    (TensorRT-LLM runs a context phase as its own step here, unchunked). Then

        ITL  = decode_step(N) + (N / osl) × prefill(isl)
        TTFT = frontend + prefill(isl) + ITL / 2     (a request waits for the running step)
        tokens/s = N × osl / (TTFT + (osl − 1) × ITL)                       (Little's law)

    ``frontend_s`` defaults to the fitted NIM frontend latency
    (:data:`infphys.sim.fidelity.NIM_SERVING`). Returns ``ttft_ms_avg``, ``itl_ms_avg`` and
    ``output_tokens_per_s``. No queueing for KV space or batch slots: valid while all N fit.
    """
    if frontend_s is None:
        from infphys.sim.fidelity import NIM_SERVING

        frontend_s = NIM_SERVING.frontend_latency_s
    knobs = {"weights_precision": precision, "kv_precision": precision, "tp": tp, "params": params}
    n = int(concurrency)
    step = decode_step_s(gpu, model, n, int(isl + osl // 2), **knobs)
    prefill = prefill_time(gpu, model, int(isl), **knobs).total_s
    itl = step + n / osl * prefill
    ttft = frontend_s + prefill + itl / 2
    e2e = request_latency_s(ttft, itl, osl)
    return {
        "ttft_ms_avg": ttft * 1e3,
        "itl_ms_avg": itl * 1e3,
        "output_tokens_per_s": n * osl / e2e,
    }


def ttft_knee(
    model: str = "llama-3.1-8b",
    gpu: str = "h100-sxm",
    precision: str = "fp16",
    tp: int = 1,
    shapes: tuple[tuple[int, int], ...] = ((200, 200), (2000, 200)),
    replayed: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """TTFT against concurrency: NIM's measurement, the closed-loop model and the simulator.

    For one deployment and each prompt → output shape, one row per measured concurrency
    (repeats averaged): ``measured_ms`` (``ttft_ms_avg``), ``measured_p95_ms``
    (``ttft_ms_p95``), ``model_ms`` (:func:`closed_loop_estimate`, no queueing for batch
    slots) and ``sim_ms`` (the simulator's replay of the same row,
    :func:`infphys.evidence.nim_replay` unless ``replayed`` is given), with ``isl``, ``osl``,
    ``shape`` (``"200 → 200"``), ``config`` and ``source``.

    Worked example (measured): Llama-3-8B FP16 on one H100, 200 → 200 tokens: the mean TTFT
    is 12.62 ms for one client and 848.072 ms for 250, as each new request waits for the steps
    already running; with 2,000-token prompts, 51.661 ms and 7,039.355 ms. The closed-loop
    model, with no queue for prefills, gives 19.4 and 32.1 ms for the short prompts.
    """
    if replayed is None:
        from infphys.evidence import nim_replay

        replayed = nim_replay()
    keys = ["concurrency"]
    parts: list[pd.DataFrame] = []
    for isl, osl in shapes:
        rep = _rows(
            replayed,
            model_key=model,
            gpu_key=gpu,
            precision_key=precision,
            tp=tp,
            isl=isl,
            osl=osl,
        )
        if rep.empty:
            raise ValueError(
                f"no NIM rows for {model} on {gpu} × {tp} {precision} at {isl} → {osl} tokens"
            )
        g = rep.groupby(keys, as_index=False).agg(
            measured_ms=("ttft_ms_avg", "mean"),
            measured_p95_ms=("ttft_ms_p95", "mean"),
            sim_ms=("sim_ttft_ms_avg", "mean"),
            source=("source", "first"),
        )
        g["model_ms"] = [
            closed_loop_estimate(model, gpu, precision, tp, int(n), isl, osl)["ttft_ms_avg"]
            for n in g["concurrency"]
        ]
        g["isl"], g["osl"] = isl, osl
        g["shape"] = f"{isl:,} → {osl:,}"
        g["config"] = config_label(gpu, precision, tp, model)
        parts.append(g)
    return pd.concat(parts, ignore_index=True)
