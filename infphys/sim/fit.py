"""Fitting the step model to measured step times (TensorRT-LLM 0.9's static-batch table).

Each measured static-batch row is one batch of ``batch`` requests of ``isl`` prompt and ``osl``
output tokens run together: ``first_token_ms`` is one prefill step of all ``batch × isl``
prompt tokens, ``token_to_token_ms`` the mean decode step of ``batch`` sequences whose cached
context grows from ``isl`` to ``isl + osl`` (on average ``isl + osl / 2``). Both are priced with
:func:`infphys.physics.price_step` (the same function the simulator uses), for every row at
once, and :func:`fit_step_params` finds the :class:`~infphys.catalog.StepParams` that minimise
a robust sum of squared log ratios (simulated / measured) within physical bounds.

How the rows are read: FP8 rows use FP8 weights *and* an FP8 KV cache (their peak memory proves
it: Llama-2-7B at batch 896 × 256 tokens holds 60 GB of KV in FP8, 120 GB in FP16, on an 80 GB
GPU); ``mixed`` rows are FP16. The benchmark used random weights, so an MoE model's router sends
every token to the same experts (``same_experts``: Mixtral's step time is flat from batch 1 to
64, where uniform routing would read all 8 experts from batch 8 on); trtllm-bench runs
Mistral-7B with an attention window as long as the sequence, so its sliding window is dropped.

Worked example: Llama-2-7B FP16 on one H100 at batch 1, 128/128: the measured decode step is
6.76 ms against a weight-read floor of 13.2 GB / 3.35 TB/s = 3.94 ms; the fit explains the gap
with the achieved bandwidth, the per-layer and per-step costs.

Run ``python -m infphys.sim.fit`` to refit and print the parameters; ``--write`` stores them in
``infphys/catalog/step_fit.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from infphys.catalog import (
    FITTED_STEP_PARAMS,
    MEASURED_SOURCES,
    ModelSpec,
    StepFitSummary,
    StepParams,
    get_model,
    load_nim_serving,
    load_static_batch,
)
from infphys.physics import RooflineModel, StepConstants, price_step

__all__ = [
    "BOUNDS",
    "StepFit",
    "fit_step_params",
    "predict_static",
    "static_model",
]

#: Physical bounds of every parameter (lower, upper).
BOUNDS: dict[str, tuple[float, float]] = {
    "weight_bandwidth_efficiency": (0.3, 1.0),
    "fp8_weight_bandwidth_efficiency": (0.3, 1.0),
    "kv_bandwidth_efficiency": (0.3, 1.0),
    "gemm_flops_efficiency": (0.2, 1.0),
    "fp8_gemm_flops_efficiency": (0.2, 1.0),
    "gemm_half_efficiency_tokens": (0.0, 2048.0),
    "ampere_gemm_flops_efficiency": (0.2, 1.0),
    "ada_gemm_flops_efficiency": (0.2, 1.0),
    "attention_half_efficiency_blocks": (0.0, 512.0),
    "attention_flops_efficiency": (0.05, 1.0),
    "roofline_sharpness": (1.0, 30.0),
    "step_overhead_s": (0.0, 0.01),
    "layer_overhead_s": (0.0, 2e-4),
    "sequence_overhead_s": (0.0, 1e-4),
    "allreduce_latency_s": (0.0, 1e-4),
    "allreduce_bandwidth_efficiency": (0.1, 1.0),
}


#: The fit's data, named briefly (the full provenance is in ``MEASURED_SOURCES``).
_SOURCE = (
    "infphys/catalog/data/trtllm_0.9_static_batch.csv and the single-client rows of "
    "nim_llama3_serving.csv (MEASURED_SOURCES)"
)
assert "trtllm_0.9_static_batch.csv" in MEASURED_SOURCES


def static_model(model_key: str) -> ModelSpec:
    """The model as trtllm-bench ran it: full attention window (see the module docstring)."""
    m = get_model(model_key)
    if m.sliding_window_layers:
        return dataclasses.replace(m, sliding_window=None, sliding_window_layers=0)
    return m


def _constants(rows: pd.DataFrame) -> StepConstants:
    """Step constants per row, as the static benchmark ran (see :func:`static_model`)."""
    keys = ["model_key", "gpu_key", "precision_key", "tp"]
    cache: dict[tuple[Any, ...], StepConstants] = {}
    per_row: list[StepConstants] = []
    for k in rows[keys].itertuples(index=False):
        t = tuple(k)
        if t not in cache:
            m = static_model(t[0])
            cache[t] = RooflineModel.build(
                t[1],
                m,
                weights_precision=t[2],
                kv_precision=t[2],
                tp=int(t[3]),
                moe_routing="same_experts" if m.is_moe else "uniform",
            ).constants
        per_row.append(cache[t])
    return StepConstants(
        *(np.array([c[i] for c in per_row], dtype=float) for i in range(len(StepConstants._fields)))
    )


def _total(r: Any) -> Any:
    return (
        r.gemm_s
        + np.maximum(r.attention_memory_s, r.attention_compute_s)
        + r.comm_s
        + (r.overhead_s)
    )


def _decode_step_s(c: StepConstants, params: StepParams, batch: Any, context: Any) -> Any:
    """Seconds of one decode step: ``batch`` sequences, one new token each after ``context``
    cached tokens (arrays, one entry per row). Each token attends to its context and itself."""
    return _total(
        price_step(
            c,
            params,
            new_tokens=batch,
            kv_tokens_read=batch * context,
            attention_pairs=batch * (context + 1),
            sequences=batch,
        )
    )


def _prefill_step_s(c: StepConstants, params: StepParams, batch: Any, prompt: Any) -> Any:
    """Seconds of one step prefilling ``batch`` whole prompts of ``prompt`` tokens, nothing
    cached: prompt·(prompt + 1)/2 causal attention pairs per sequence."""
    return _total(
        price_step(
            c,
            params,
            new_tokens=batch * prompt,
            kv_tokens_read=0.0 * batch,
            attention_pairs=batch * prompt * (prompt + 1) / 2.0,
            sequences=batch,
        )
    )


def predict_static(rows: pd.DataFrame, params: StepParams = FITTED_STEP_PARAMS) -> pd.DataFrame:
    """Price every static-batch row; adds ``sim_`` and ``err_`` for both measured times."""
    out = rows.copy()
    c = _constants(out)
    b = out["batch"].to_numpy(float)
    isl = out["isl"].to_numpy(float)
    osl = out["osl"].to_numpy(float)
    ctx = isl + osl / 2.0
    dec = _decode_step_s(c, params, b, ctx)
    pre = _prefill_step_s(c, params, b, isl)
    out["sim_token_to_token_ms"] = dec * 1e3
    out["sim_first_token_ms"] = pre * 1e3
    for col in ("token_to_token_ms", "first_token_ms"):
        out[f"err_{col}"] = out[f"sim_{col}"] / out[col] - 1.0
    return out


@dataclass(frozen=True)
class StepFit:
    """A fit's parameters and how well they reproduce the rows they were fitted on."""

    params: StepParams
    summary: StepFitSummary
    rows: pd.DataFrame
    frontend_latency_s: float = 0.0


def _nim_profile_rows(nim: pd.DataFrame) -> pd.DataFrame:
    """NIM rows with one client: single-request step profiles of the NIM engine itself."""
    one = nim[nim["concurrency"] == 1]
    keys = ["model_key", "gpu_key", "precision_key", "tp", "isl", "osl"]
    return one.groupby(keys, as_index=False)[["ttft_ms_avg", "itl_ms_avg"]].mean()


def fit_step_params(
    rows: pd.DataFrame | None = None,
    nim_rows: pd.DataFrame | None = None,
    *,
    start: StepParams = FITTED_STEP_PARAMS,
    start_frontend_latency_s: float = 0.004,
    loss: str = "soft_l1",
    f_scale: float = 0.1,
    nim_share: float = 0.5,
) -> StepFit:
    """Fit :class:`~infphys.catalog.StepParams` to measured step times.

    ``rows``: static-batch rows (default: all measured ones). ``nim_rows``: NIM serving rows
    (default: all); only their single-client rows are used, as step profiles of the NIM engine
    (TTFT = the frontend's latency + one prefill step of ``isl`` tokens; ITL = one decode step
    at batch 1 with ``isl + osl / 2`` cached tokens); pass an empty frame to fit the static
    table alone. Each table carries half the weight, however many rows it has.
    """
    from scipy.optimize import least_squares

    data = load_static_batch() if rows is None else rows
    data = data[data["measured"]].reset_index(drop=True)
    if data.empty:
        raise ValueError("rows: no measured static-batch rows to fit")
    prof = _nim_profile_rows(load_nim_serving() if nim_rows is None else nim_rows)
    names = [f.name for f in fields(StepParams)]
    lo = np.array([BOUNDS[n][0] for n in names] + [0.0])
    hi = np.array([BOUNDS[n][1] for n in names] + [0.05])
    x0 = np.clip(
        np.array([float(getattr(start, n)) for n in names] + [start_frontend_latency_s]), lo, hi
    )
    c = _constants(data)
    b = data["batch"].to_numpy(float)
    isl = data["isl"].to_numpy(float)
    ctx = isl + data["osl"].to_numpy(float) / 2.0
    y_dec = data["token_to_token_ms"].to_numpy(float) / 1e3
    y_pre = data["first_token_ms"].to_numpy(float) / 1e3
    has_dec = np.isfinite(y_dec)
    n_static = int(has_dec.sum()) + len(y_pre)
    cn = _constants(prof) if len(prof) else None
    n_isl = prof["isl"].to_numpy(float)
    n_ctx = n_isl + prof["osl"].to_numpy(float) / 2.0
    one = np.ones(len(prof))
    y_ttft = prof["ttft_ms_avg"].to_numpy(float) / 1e3
    y_itl = prof["itl_ms_avg"].to_numpy(float) / 1e3
    # Equal weight per table: scale the NIM residuals by sqrt(n_static / n_nim).
    w_nim = math.sqrt(nim_share / (1 - nim_share) * n_static / len(prof)) if len(prof) else 0.0

    def residuals(x: np.ndarray) -> np.ndarray:
        p = StepParams(**{n: float(v) for n, v in zip(names, x[:-1], strict=True)})
        dec = _decode_step_s(c, p, b, ctx)
        pre = _prefill_step_s(c, p, b, isl)
        parts = [np.log(dec[has_dec] / y_dec[has_dec]), np.log(pre / y_pre)]
        if cn is not None:
            ttft = x[-1] + _prefill_step_s(cn, p, one, n_isl)
            itl = _decode_step_s(cn, p, one, n_ctx)
            parts += [w_nim * np.log(ttft / y_ttft), w_nim * np.log(itl / y_itl)]
        return np.concatenate(parts)

    res = least_squares(residuals, x0, bounds=(lo, hi), loss=loss, f_scale=f_scale)
    params = StepParams(**{n: float(v) for n, v in zip(names, res.x[:-1], strict=True)})
    scored = predict_static(data, params)
    e_pre = scored["err_first_token_ms"].abs()
    e_dec = scored["err_token_to_token_ms"].abs().dropna()
    summary = StepFitSummary(
        source=_SOURCE,
        rows=len(data) + len(prof),
        median_abs_error_first_token=float(e_pre.median()),
        median_abs_error_token_to_token=float(e_dec.median()),
        p90_abs_error_first_token=float(e_pre.quantile(0.9)),
        p90_abs_error_token_to_token=float(e_dec.quantile(0.9)),
        method="least squares, soft-L1 loss, log ratios",
    )
    return StepFit(params, summary, scored, float(res.x[-1]))


def _wrap(text: str, width: int = 80) -> list[str]:
    """``text`` in pieces of at most ``width`` characters, split after spaces."""
    out, line = [], ""
    for word in text.split(" "):
        if line and len(line) + len(word) + 1 > width:
            out.append(line + " ")
            line = word
        else:
            line = f"{line} {word}" if line else word
    return [*out, line]


def _literal(v: float) -> str:
    # Below a picosecond or a 1e-12 fraction a parameter is at its bound of zero.
    return repr(round(v, 6 - math.floor(math.log10(abs(v)))) if abs(v) > 1e-12 else 0.0)


def write_fitted(fit: StepFit, path: Path | None = None) -> Path:
    """Store a fit in ``infphys/catalog/step_fit.py`` (between its FITTED markers)."""
    target = path or Path(__file__).resolve().parents[1] / "catalog" / "step_fit.py"
    text = target.read_text()
    p = "\n".join(
        f"    {f.name}={_literal(getattr(fit.params, f.name))}," for f in fields(StepParams)
    )
    s = fit.summary
    block = (
        "# --- BEGIN FITTED ---\n"
        f"FITTED_STEP_PARAMS = StepParams(\n{p}\n)\n"
        "FIT_SUMMARY = StepFitSummary(\n"
        "    source=(\n"
        + "".join(f"        {json.dumps(part)}\n" for part in _wrap(s.source))
        + "    ),\n"
        f"    rows={s.rows},\n"
        f"    median_abs_error_first_token={s.median_abs_error_first_token:.4f},\n"
        f"    median_abs_error_token_to_token={s.median_abs_error_token_to_token:.4f},\n"
        f"    p90_abs_error_first_token={s.p90_abs_error_first_token:.4f},\n"
        f"    p90_abs_error_token_to_token={s.p90_abs_error_token_to_token:.4f},\n"
        f"    method={json.dumps(s.method)},\n"
        ")\n"
        f"NIM_FRONTEND_LATENCY_S = {_literal(fit.frontend_latency_s)}\n"
        "# --- END FITTED ---"
    )
    new = re.sub(r"# --- BEGIN FITTED ---.*# --- END FITTED ---", lambda _: block, text, flags=re.S)
    target.write_text(new)
    return target


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="store the fit in the catalog")
    args = ap.parse_args(argv)
    fit = fit_step_params()
    for f in fields(StepParams):
        print(f"{f.name:34s} {getattr(fit.params, f.name):.6g}")
    s = fit.summary
    print(
        f"rows {s.rows}: median |error| first token {s.median_abs_error_first_token:.1%}, "
        f"token-to-token {s.median_abs_error_token_to_token:.1%}"
    )
    if args.write:
        print("wrote", write_fitted(fit))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
