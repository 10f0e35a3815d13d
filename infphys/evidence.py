"""Measured data beside the models: the tables the chapters and the fidelity page draw.

Each function reads the measured tables of :mod:`infphys.catalog.measured` and prices the same
rows with the step model (:data:`~infphys.catalog.FITTED_STEP_PARAMS` by default, and
:data:`~infphys.catalog.IDEAL_STEP_PARAMS`, the datasheet roofline, for floors) or the simulator
(:mod:`infphys.sim.fidelity`). Nothing here draws; :mod:`infphys.plots.measured` does.

- :func:`nim_replay` / :func:`fidelity_table`: every NIM row replayed on the simulator (once per
  process: about 12 s) and the median |error| per configuration and overall.
- :func:`static_decode_vs_batch`: token-to-token time against the batch, measured and modelled.
- :func:`static_prefill_vs_prompt`: first-token time against the prompt tokens of a prefill.
- :func:`fp8_speedup`: FP16 step time ÷ FP8 step time at equal batch, measured and modelled.
- :func:`bandwidth_fraction`: the share of the datasheet bandwidth batch-1 decode reaches.
- :func:`tp_scaling`: what the larger tensor-parallel size bought per GPU, measured and simulated.
- :func:`tp_cost`: what that does to the price of a million output tokens, measured.

Every table carries a ``source`` column (the provenance string of
:data:`~infphys.catalog.MEASURED_SOURCES`); cite it where the figure is shown.

Worked example (TensorRT-LLM 0.9 static table, Llama-2-7B FP16 on one H100 SXM, batch 1,
128 prompt and 128 output tokens): the measured token-to-token time is 6.76 ms; the weights
less the embedding table (13.2 GB) and 192 tokens of KV cache, read at 3.35 TB/s, take 3.97 ms,
so the step ran at 3.97 / 6.76 ≈ 59 % of the datasheet bandwidth, counting every microsecond as
spent reading bytes.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd

from infphys.catalog import (
    FITTED_STEP_PARAMS,
    IDEAL_STEP_PARAMS,
    MEASURED_SOURCES,
    StepParams,
    get_gpu,
    get_model,
    load_nim_serving,
    load_static_batch,
)
from infphys.physics import cost_per_million_tokens, decode_floor_s
from infphys.sim import fidelity
from infphys.sim.fit import predict_static, static_model

__all__ = [
    "CONFIG_COLUMNS",
    "FIDELITY_COLUMNS",
    "bandwidth_fraction",
    "bandwidth_fraction_by_gpu",
    "config_label",
    "fidelity_table",
    "fp8_speedup",
    "nim_replay",
    "static_decode_vs_batch",
    "static_prefill_vs_prompt",
    "tp_cost",
    "tp_scaling",
]

#: The columns that name one deployment in the measured tables.
CONFIG_COLUMNS = ("model_key", "gpu_key", "precision_key", "tp")
#: The NIM columns the fidelity table reports.
FIDELITY_COLUMNS = ("ttft_ms_avg", "itl_ms_avg", "output_tokens_per_s")

_NIM = "nim_llama3_serving.csv"
_STATIC = "trtllm_0.9_static_batch.csv"


def config_label(gpu_key: str, precision_key: str, tp: int, model_key: str | None = None) -> str:
    """A deployment as a reader says it.

    >>> config_label("h100-sxm", "fp16", 2, "llama-3.1-8b")
    'Llama-3.1-8B · H100 SXM × 2 · FP16'
    >>> config_label("a100-80gb-sxm", "bf16", 8)
    'A100 80GB SXM × 8 · BF16'
    """
    head = f"{get_model(model_key).name} · " if model_key else ""
    return f"{head}{get_gpu(gpu_key).name} × {int(tp)} · {precision_key.upper()}"


@cache
def _replayed() -> pd.DataFrame:
    return fidelity.replay_nim(load_nim_serving())


def nim_replay() -> pd.DataFrame:
    """Every NIM row with the simulator's ``sim_<column>`` and ``err_<column>`` beside it.

    :func:`infphys.sim.fidelity.replay_nim` of :func:`~infphys.catalog.load_nim_serving`,
    computed once per process (the site's build asks for it on several charts and tables) and
    returned as a fresh copy. Adds ``config`` (:func:`config_label`) and ``shape``
    (``"200 → 200"``: prompt → output tokens).
    """
    out = _replayed().copy()
    out["config"] = [
        config_label(g, p, t, m) for m, g, p, t in out[list(CONFIG_COLUMNS)].itertuples(index=False)
    ]
    out["shape"] = [f"{i:,} → {o:,}" for i, o in zip(out["isl"], out["osl"], strict=True)]
    return out


def fidelity_table(replayed: pd.DataFrame | None = None) -> pd.DataFrame:
    """Median |simulated / measured − 1| per deployment and over all rows.

    One row per deployment (``config``) plus a last row ``all rows``; columns ``rows`` (NIM
    rows replayed) and one fraction per :data:`FIDELITY_COLUMNS` (0.1 is 10 %). ``replayed``
    defaults to :func:`nim_replay`.
    """
    r = nim_replay() if replayed is None else replayed
    s = fidelity.summarise(r, FIDELITY_COLUMNS)
    counts = r.groupby(list(CONFIG_COLUMNS)).size()
    labels: list[str] = []
    rows: list[int] = []
    for key in s.index:
        if key[0] == "overall":
            labels.append("all rows")
            rows.append(len(r))
        else:
            m, g, p, t = key
            labels.append(config_label(g, p, int(t), m))
            rows.append(int(counts.loc[key]))
    out = s.reset_index(drop=True)
    out.insert(0, "rows", rows)
    out.insert(0, "config", labels)
    return out


def _static_rows(**where: object) -> pd.DataFrame:
    d = load_static_batch()
    d = d[d["measured"] & d["token_to_token_ms"].notna()]
    for col, value in where.items():
        d = d[d[col] == value]
    return d.sort_values("batch").reset_index(drop=True)


def _priced(rows: pd.DataFrame, params: StepParams) -> pd.DataFrame:
    return predict_static(rows, params)


def static_decode_vs_batch(
    model: str = "llama-2-7b",
    gpu: str = "h100-sxm",
    precision: str = "fp16",
    tp: int = 1,
    isl: int = 128,
    osl: int = 128,
    *,
    params: StepParams = FITTED_STEP_PARAMS,
) -> pd.DataFrame:
    """Token-to-token time against the batch: measured (TensorRT-LLM 0.9) and modelled.

    One row per measured batch size of that deployment and shape: ``batch``,
    ``measured_ms``, ``model_ms`` (``params``, the fitted step model by default) and
    ``floor_ms`` (the ideal roofline), ``source``. Raises ``ValueError`` when the table has
    no such rows.
    """
    rows = _static_rows(
        model_key=model, gpu_key=gpu, precision_key=precision, tp=tp, isl=isl, osl=osl
    )
    if rows.empty:
        raise ValueError(
            f"no measured static-batch rows for {model} on {gpu} × {tp} in {precision}, "
            f"{isl} → {osl} tokens"
        )
    fitted = _priced(rows, params)
    ideal = _priced(rows, IDEAL_STEP_PARAMS)
    return pd.DataFrame(
        {
            "batch": rows["batch"].astype(int),
            "measured_ms": rows["token_to_token_ms"],
            "model_ms": fitted["sim_token_to_token_ms"],
            "floor_ms": ideal["sim_token_to_token_ms"],
            "source": MEASURED_SOURCES[_STATIC],
        }
    )


def fp8_speedup(
    gpu: str = "h100-sxm",
    isl: int = 128,
    osl: int = 128,
    *,
    params: StepParams = FITTED_STEP_PARAMS,
) -> pd.DataFrame:
    """FP16 token-to-token time ÷ FP8's at equal model, TP and batch, measured and modelled.

    Every pair of measured static-batch rows on ``gpu`` that differ only in precision. Columns:
    ``model_key``, ``tp``, ``label``, ``batch``, ``measured`` (the measured ratio), ``model``
    (the ratio of the fitted step model's times), ``ideal`` (the datasheet roofline's ratio:
    2 while reading weights dominates), ``source``.
    """
    d = _static_rows(gpu_key=gpu, isl=isl, osl=osl)
    keys = ["model_key", "tp", "batch"]
    fp16, fp8 = d[d["precision_key"] == "fp16"], d[d["precision_key"] == "fp8"]
    both = fp16[keys].merge(fp8[keys], on=keys)
    if both.empty:
        raise ValueError(f"no FP16 and FP8 rows measured alike on {gpu}, {isl} → {osl} tokens")
    pair = {
        p: both.merge(part, on=keys, how="left").reset_index(drop=True)
        for p, part in (("fp16", fp16), ("fp8", fp8))
    }
    ratio: dict[str, np.ndarray] = {
        "measured": (pair["fp16"]["token_to_token_ms"] / pair["fp8"]["token_to_token_ms"]).to_numpy(
            float
        )
    }
    for name, p in (("model", params), ("ideal", IDEAL_STEP_PARAMS)):
        a = _priced(pair["fp16"], p)["sim_token_to_token_ms"].to_numpy(float)
        b = _priced(pair["fp8"], p)["sim_token_to_token_ms"].to_numpy(float)
        ratio[name] = a / b
    out = both.reset_index(drop=True).copy()
    out["label"] = [
        f"{get_model(m).name} × {int(t)}" for m, t in zip(out["model_key"], out["tp"], strict=True)
    ]
    for name, values in ratio.items():
        out[name] = values
    out["source"] = MEASURED_SOURCES[_STATIC]
    return out.sort_values(["label", "batch"]).reset_index(drop=True)


def bandwidth_fraction(*, params: StepParams = FITTED_STEP_PARAMS) -> pd.DataFrame:
    """Share of the datasheet bandwidth each measured batch-1 decode step reached.

    For every static-batch row at batch 1: the ideal roofline's step (bytes read at the
    datasheet bandwidth, :func:`~infphys.physics.decode_floor_s`, at the mean context
    ``isl + osl / 2``) divided by the measured token-to-token time, and the same for the step
    model (``model``): what fraction a step would reach if it spent all its time reading bytes.
    Columns: ``gpu_key``, ``gpu``, ``model_key``, ``precision_key``, ``tp``, ``isl``, ``osl``,
    ``measured``, ``model``, ``source``.
    """
    d = _static_rows(batch=1)
    floors: list[float] = []
    cols = d[["model_key", "gpu_key", "precision_key", "tp", "isl", "osl"]]
    for mk, gk, pk, tp, isl, osl in cols.itertuples(index=False):
        m = static_model(str(mk))
        floors.append(
            decode_floor_s(
                str(gk),
                m,
                1,
                int(isl) + int(osl) // 2,
                weights_precision=str(pk),
                kv_precision=str(pk),
                tp=int(tp),
                moe_routing="same_experts" if m.is_moe else "uniform",
            )
        )
    floor_ms = np.array(floors) * 1e3
    fitted = _priced(d, params)["sim_token_to_token_ms"].to_numpy(float)
    return pd.DataFrame(
        {
            "gpu_key": d["gpu_key"],
            "gpu": [get_gpu(str(g)).name for g in d["gpu_key"]],
            "model_key": d["model_key"],
            "precision_key": d["precision_key"],
            "tp": d["tp"].astype(int),
            "isl": d["isl"].astype(int),
            "osl": d["osl"].astype(int),
            "measured": floor_ms / d["token_to_token_ms"].to_numpy(float),
            "model": floor_ms / fitted,
            "source": MEASURED_SOURCES[_STATIC],
        }
    )


def bandwidth_fraction_by_gpu(table: pd.DataFrame | None = None) -> pd.DataFrame:
    """Median of :func:`bandwidth_fraction` per GPU: ``gpu``, ``rows``, ``measured``, ``model``.

    Sorted from the highest measured fraction down.
    """
    t = bandwidth_fraction() if table is None else table
    g = t.groupby("gpu").agg(
        rows=("measured", "size"), measured=("measured", "median"), model=("model", "median")
    )
    return g.sort_values("measured", ascending=False).reset_index()


def tp_scaling(replayed: pd.DataFrame | None = None, *, simulated: bool = True) -> pd.DataFrame:
    """Output tokens/s per GPU at the larger TP size ÷ at the smaller, measured and simulated.

    For each model and GPU measured at two TP sizes (Llama-3-8B at TP1 and TP2, Llama-3-70B at
    TP4 and TP8 on H100), at every prompt → output shape and concurrency measured at both:
    ``per_gpu_ratio_measured`` and ``per_gpu_ratio_simulated`` (1: the second set of GPUs did as
    much work per GPU as the first; 0.5: the instance got no faster at all), from the replay
    of :func:`nim_replay` (default) and the measured rows it carries. ``tokens_per_s_small`` and
    ``tokens_per_s_large`` are the measured output tokens/s of the whole instance at each size.
    ``simulated=False`` skips the replay (seconds of simulation) and reads the measured rows of
    :func:`~infphys.catalog.load_nim_serving` alone; ``per_gpu_ratio_simulated`` is then NaN.

    Worked example (measured): Llama-3-8B FP16 on H100, 200 → 200 tokens, 100 clients:
    6,550 tokens/s on one GPU, 9,157 on two, so each GPU of the pair does 9,157 / 2 / 6,550 =
    0.70 of what one GPU alone did: a second GPU bought 1.40×, not 2×.
    """
    if replayed is not None:
        rep = replayed
    elif simulated:
        rep = nim_replay()
    else:
        rep = load_nim_serving().assign(sim_output_tokens_per_s=np.nan)
    keys = ["model_key", "gpu_key", "precision_key", "isl", "osl", "concurrency", "tp"]
    g = rep.groupby(keys, as_index=False)[["output_tokens_per_s", "sim_output_tokens_per_s"]].mean()
    parts: list[pd.DataFrame] = []
    for (m, gpu, prec), d in g.groupby(["model_key", "gpu_key", "precision_key"]):
        tps = sorted(int(x) for x in d["tp"].unique())
        if len(tps) < 2:
            continue
        lo, hi = tps[0], tps[-1]
        on = ["isl", "osl", "concurrency"]
        j = d[d["tp"] == lo].merge(d[d["tp"] == hi], on=on, suffixes=("_lo", "_hi"))
        parts.append(
            pd.DataFrame(
                {
                    "model_key": m,
                    "gpu_key": gpu,
                    "precision_key": prec,
                    "tp_small": lo,
                    "tp_large": hi,
                    "isl": j["isl"].astype(int),
                    "osl": j["osl"].astype(int),
                    "concurrency": j["concurrency"].astype(int),
                    "tokens_per_s_small": j["output_tokens_per_s_lo"],
                    "tokens_per_s_large": j["output_tokens_per_s_hi"],
                    "per_gpu_ratio_measured": (j["output_tokens_per_s_hi"] / hi)
                    / (j["output_tokens_per_s_lo"] / lo),
                    "per_gpu_ratio_simulated": (j["sim_output_tokens_per_s_hi"] / hi)
                    / (j["sim_output_tokens_per_s_lo"] / lo),
                    "source": MEASURED_SOURCES[_NIM],
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def tp_cost(gpu_hourly_usd: float, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """What the larger TP size costs per million output tokens against the smaller, measured.

    One row per model, GPU and pair of TP sizes of :func:`tp_scaling` (``table``; default the
    measured rows alone): ``rows`` (shapes × concurrencies measured at both sizes), the median
    ``per_gpu_ratio`` (per-GPU tokens/s, larger ÷ smaller), the median ``usd_per_million_small``
    and ``usd_per_million_large`` (:func:`~infphys.physics.cost_per_million_tokens` at the
    measured throughput, every GPU billed at ``gpu_hourly_usd``) and the median ``cost_ratio``
    (larger ÷ smaller, row by row: 1 / ``per_gpu_ratio``), plus ``config`` and ``source``.

    Worked example: Llama-3-8B FP16 on H100s, 200 → 200 tokens, 100 clients, $2.50 per GPU-hour:
    one GPU makes 6,550 tokens/s, 2.50 / 3600 × 10^6 / 6,550 = $0.106 per million; two make
    9,157, 5.00 / 3600 × 10^6 / 9,157 = $0.152: the pair's tokens cost 1.43 times as much.
    """
    price = float(gpu_hourly_usd)
    t = tp_scaling(simulated=False) if table is None else table
    t = t.assign(
        usd_small=[
            cost_per_million_tokens(price, x, num_gpus=int(n))
            for x, n in zip(t["tokens_per_s_small"], t["tp_small"], strict=True)
        ],
        usd_large=[
            cost_per_million_tokens(price, x, num_gpus=int(n))
            for x, n in zip(t["tokens_per_s_large"], t["tp_large"], strict=True)
        ],
    )
    t["ratio"] = t["usd_large"] / t["usd_small"]
    keys = ["model_key", "gpu_key", "precision_key", "tp_small", "tp_large"]
    out = t.groupby(keys, as_index=False).agg(
        rows=("ratio", "size"),
        per_gpu_ratio=("per_gpu_ratio_measured", "median"),
        usd_per_million_small=("usd_small", "median"),
        usd_per_million_large=("usd_large", "median"),
        cost_ratio=("ratio", "median"),
    )
    out["config"] = [
        f"{get_model(m).name} · {get_gpu(g).name} · {p.upper()}: TP{lo} → TP{hi}"
        for m, g, p, lo, hi in out[keys].itertuples(index=False)
    ]
    out["source"] = MEASURED_SOURCES[_NIM]
    return out


#: Deployments of the static table that :func:`static_prefill_vs_prompt` shows by default:
#: (model, GPU, precision, TP), one per GPU generation and two model sizes.
PREFILL_DEPLOYMENTS: tuple[tuple[str, str, str, int], ...] = (
    ("llama-2-7b", "a100-80gb-sxm", "fp16", 1),
    ("llama-2-7b", "h100-sxm", "fp16", 1),
    ("llama-2-7b", "h200-sxm", "fp8", 1),
    ("llama-2-7b", "l40s", "fp8", 1),
    ("llama-2-70b", "h100-sxm", "fp8", 2),
)


def static_prefill_vs_prompt(
    deployments: tuple[tuple[str, str, str, int], ...] = PREFILL_DEPLOYMENTS,
    *,
    osl: int = 128,
    params: StepParams = FITTED_STEP_PARAMS,
) -> pd.DataFrame:
    """First-token time against the prompt tokens one prefill computes: measured and modelled.

    Every measured static-batch row (TensorRT-LLM 0.9) of each deployment (model, GPU,
    precision, TP) at ``osl`` output tokens: the batch's ``batch`` prompts of ``isl`` tokens
    are prefilled together, so ``prefill_tokens`` = batch × isl. Columns: ``config``,
    ``batch``, ``isl``, ``prefill_tokens``, ``measured_ms`` (``first_token_ms``), ``model_ms``
    (the step model's prefill, ``params`` fitted by default), ``source``; sorted by deployment
    and ``prefill_tokens``.

    Worked example (measured): Llama-2-7B FP16 on one H100 SXM, batch 1: a 128-token prompt's
    first token after 9.09 ms, a 2,048-token prompt's after 54.91 ms: 16 times the tokens for
    6.0 times the time, because a short prompt leaves the tensor cores waiting on the weights.
    """
    parts: list[pd.DataFrame] = []
    for model, gpu, precision, tp in deployments:
        rows = _static_rows(model_key=model, gpu_key=gpu, precision_key=precision, tp=tp, osl=osl)
        rows = rows[rows["first_token_ms"].notna()]
        if rows.empty:
            raise ValueError(
                f"no measured static-batch rows for {model} on {gpu} × {tp} in {precision} "
                f"at {osl} output tokens"
            )
        priced = _priced(rows, params)
        parts.append(
            pd.DataFrame(
                {
                    "config": config_label(gpu, precision, tp, model),
                    "batch": rows["batch"].astype(int),
                    "isl": rows["isl"].astype(int),
                    "prefill_tokens": (rows["batch"] * rows["isl"]).astype(int),
                    "measured_ms": rows["first_token_ms"],
                    "model_ms": priced["sim_first_token_ms"],
                    "source": MEASURED_SOURCES[_STATIC],
                }
            )
        )
    out = pd.concat(parts, ignore_index=True)
    out = out.sort_values(["config", "prefill_tokens", "isl"], kind="stable")
    return out.reset_index(drop=True)
