"""How close the simulator comes to measured serving: every measured row replayed and compared.

Two measured tables ship with the package (:mod:`infphys.catalog.measured`):

- NIM serving rows (GenAI-Perf closed loops of ``concurrency`` streaming clients) are replayed
  as closed loops through the TensorRT-LLM scheduler (``scheduler="trtllm"``), because NIM runs
  TensorRT-LLM for these models. The engine settings are TensorRT-LLM's as far as they are
  public: ``max_batch_size`` 256, no chunked context, ``GUARANTEED_NO_EVICT``, 64-token KV
  blocks, 90 % of the memory left after the weights and a 4 GiB activation workspace for the KV
  cache (the saturated rows agree: Llama-3-8B on one 80 GB GPU holds about 400,000 tokens, 92
  requests of 2,000 + 2,000 at most), and ``max_num_tokens`` 32,768, the cap of TensorRT-LLM's
  own build heuristic (``tensorrt_llm/bench/build/tuning.py``). The rows pin that budget down:
  it sets how many prompts one step prefills, and so the TTFT under load (scanned over 8,192 …
  65,536 with :func:`scan_serving`: median |TTFT error| 23 %, 14 %, 12 %, 16 %, 17 % at 8,192,
  24,576, 32,768, 49,152, 65,536).
  :class:`NimServing` adds what the step times cannot show: the frontend's latency (fitted with
  the step model to the single-client rows) and a per-stream cost per step (detokenising and
  sending each token).
- Static-batch rows (TensorRT-LLM 0.9, random weights) are replayed offline: ``batch`` requests
  at t = 0, all prefilled in one step, then decoded together (see :mod:`infphys.sim.fit` for
  how the benchmark ran: FP8 KV, random-weight MoE routing, full attention window).

What breaks closed-loop lockstep, and what does not. Identical clients that send identical
requests and finish in the same step send again together. In the replay, clients wait a
uniform random [0, 2 ms) before each send (GenAI-Perf's own overhead); prompt lengths that vary
by a token or two (the measured mean is 199.66 for 200) change nothing, since a clump is
admitted in one step whatever its exact lengths. What spreads a clump is the token budget:
without chunked context a step takes only as many whole prompts as fit, so a clump larger than
that is admitted over several steps, finishes over several steps and comes back spread. The
measured rows show exactly this: at 2,000/200 tokens and 25 clients the mean TTFT, 904 ms, is
what 4 steps of up to 8 prefills of 2,000 tokens take when every client waits for its part of
the clump (a budget of 8,192 tokens, 4 prompts a step, spreads the clump and gives 450 ms).

Errors are ``simulated / measured − 1``; :func:`summarise` gives the median |error| per group of
(model, GPU, precision, TP) and overall. ``benchmarks/bench_fidelity.py`` prints them.

Worked example: NIM, Llama-3-8B FP16 on one H100, 200/200 tokens, one client: measured TTFT
12.6 ms and ITL 7.39 ms; :func:`replay_nim_row` prices the same request (a 200-token prefill,
then 199 decode steps of about 7.4 ms) and returns the simulated pair beside them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from infphys.catalog import (
    FITTED_STEP_PARAMS,
    NIM_FRONTEND_LATENCY_S,
    StepParams,
    get_gpu,
    get_model,
)
from infphys.physics import weight_bytes
from infphys.sim.config import EngineConfig
from infphys.sim.fit import static_model
from infphys.sim.virtual import SimResult, simulate
from infphys.sim.workload import Workload

__all__ = [
    "NIM_SERVING",
    "NimServing",
    "nim_engine_config",
    "replay_nim",
    "replay_nim_row",
    "replay_static",
    "replay_static_row",
    "scan_serving",
    "summarise",
]

#: GenAI-Perf's client overhead between one answer and the next send, as a uniform jitter.
CLIENT_JITTER_S = 0.002
#: TensorRT-LLM's default share of the free memory given to the KV cache.
KV_CACHE_FREE_GPU_MEM_FRACTION = 0.9


@dataclass(frozen=True, slots=True)
class NimServing:
    """NIM's serving constants that the step model cannot see.

    Attributes:
        frontend_latency_s: from a request's arrival at NIM to its arrival at the engine
            (fitted with the step model to the single-client rows).
        frontend_service_s: the frontend's time per request when it handles one at a time
            (0: requests pass in parallel; the NIM rows do not call for more).
        stream_overhead_s: NIM's cost per running request per step, on top of the step
            model's per-sequence cost: each step's token is detokenised and streamed as a
            server-sent event before the next step starts. Chosen by
            :func:`scan_serving` over the NIM rows (0–60 µs: with 0 the replay runs 8–15 % fast
            at 100 clients and more; 40 µs takes the median |ITL error| from 8.6 % to 6.0 % and
            tokens/s from 8.0 % to 5.3 %).
        activation_reserve_bytes: per GPU, memory TensorRT-LLM keeps for activations and
            workspace before it sizes the KV cache.
        max_batch_size, max_num_tokens, block_tokens: the engine's limits.
    """

    frontend_latency_s: float = NIM_FRONTEND_LATENCY_S
    frontend_service_s: float = 0.0
    stream_overhead_s: float = 40e-6
    activation_reserve_bytes: float = 4 * 2**30
    max_batch_size: int = 256
    max_num_tokens: int = 32768
    block_tokens: int = 64
    chunked_context: bool = False


#: Fitted to the NIM rows (``infphys.sim.fit.fit_nim_serving``).
NIM_SERVING = NimServing()


def nim_engine_config(
    model: str,
    gpu: str,
    precision: str,
    tp: int,
    *,
    serving: NimServing = NIM_SERVING,
    step_params: StepParams = FITTED_STEP_PARAMS,
    max_model_len: int | None = None,
) -> EngineConfig:
    """The simulated engine for a NIM configuration (catalog keys; see the module docstring)."""
    g, m = get_gpu(gpu), get_model(model)
    w = weight_bytes(m, precision) / tp
    reserve = serving.activation_reserve_bytes
    kv = KV_CACHE_FREE_GPU_MEM_FRACTION * (g.memory_bytes - w - reserve)
    util = min(1.0, (kv + w + reserve) / g.memory_bytes)
    return EngineConfig.build(
        gpu,
        model,
        weights_precision=precision,
        kv_precision=precision,
        tp=tp,
        scheduler="trtllm",
        chunked_prefill=serving.chunked_context,
        max_num_seqs=serving.max_batch_size,
        max_num_batched_tokens=serving.max_num_tokens,
        block_tokens=serving.block_tokens,
        gpu_memory_utilization=util,
        activation_reserve_bytes=reserve,
        frontend_latency_s=serving.frontend_latency_s,
        frontend_service_s=serving.frontend_service_s,
        step_params=step_params.with_(
            sequence_overhead_s=step_params.sequence_overhead_s + serving.stream_overhead_s
        ),
        max_model_len=max_model_len,
    )


def _row_metrics(res: SimResult) -> dict[str, float]:
    """GenAI-Perf's figures of one replayed row, from :meth:`SimResult.summary` (successful
    measured requests): mean and p95 TTFT, mean inter-token latency (the mean of each
    request's (e2e − TTFT) / (tokens − 1)) in ms, and output tokens/s; NaN when none succeeded.
    """
    s = res.summary()
    nan = math.nan
    return {
        "ttft_ms_avg": s.get("ttft_mean_s", nan) * 1e3,
        "ttft_ms_p95": s.get("ttft_p95_s", nan) * 1e3,
        "itl_ms_avg": s.get("tpot_mean_s", nan) * 1e3,
        "output_tokens_per_s": s.get("output_tokens_per_s", nan),
    }


def replay_nim_row(
    row: Any,
    *,
    serving: NimServing = NIM_SERVING,
    step_params: StepParams = FITTED_STEP_PARAMS,
    rounds: int = 3,
    seed: int = 0,
) -> dict[str, float]:
    """Simulate one NIM row (a mapping or namedtuple with the loader's columns)."""
    c, isl, osl = int(row.concurrency), int(row.isl), int(row.osl)
    cfg = nim_engine_config(
        row.model_key,
        row.gpu_key,
        row.precision_key,
        int(row.tp),
        serving=serving,
        step_params=step_params,
        max_model_len=isl + osl + 8,
    )
    wl = Workload.closed(
        c,
        max(rounds * c, 12),
        warmup=c,
        prompt_tokens=isl,
        max_tokens=osl,
        ignore_eos=True,
        seed=seed,
        client_jitter_s=CLIENT_JITTER_S,
    )
    res = simulate(cfg, wl, keep_chunk_times=False, timeseries=False)
    return _row_metrics(res)


_NIM_COLUMNS = ("ttft_ms_avg", "ttft_ms_p95", "itl_ms_avg", "output_tokens_per_s")


def replay_nim(
    rows: pd.DataFrame,
    *,
    serving: NimServing = NIM_SERVING,
    step_params: StepParams = FITTED_STEP_PARAMS,
    rounds: int = 3,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Replay NIM rows; returns them with ``sim_<column>`` and ``err_<column>`` added.

    Rows measured twice are replayed once (same settings, same simulation).
    """
    keys = ["model_key", "gpu_key", "precision_key", "tp", "concurrency", "isl", "osl"]
    out = rows.copy()
    uniq = out[keys].drop_duplicates()
    cache: dict[tuple[Any, ...], dict[str, float]] = {}
    for i, r in enumerate(uniq.itertuples(index=False)):
        cache[tuple(r)] = replay_nim_row(r, serving=serving, step_params=step_params, rounds=rounds)
        if progress is not None:
            progress(i + 1, len(uniq))
    sims = [cache[tuple(r)] for r in out[keys].itertuples(index=False)]
    for col in _NIM_COLUMNS:
        out[f"sim_{col}"] = [s[col] for s in sims]
        out[f"err_{col}"] = out[f"sim_{col}"] / out[col] - 1.0
    return out


def replay_static_row(
    row: Any, *, step_params: StepParams = FITTED_STEP_PARAMS
) -> dict[str, float]:
    """Simulate one static-batch row: ``batch`` requests at once, prefilled in one step."""
    b, isl, osl = int(row.batch), int(row.isl), int(row.osl)
    m = static_model(row.model_key)
    if m.max_context_tokens < isl + osl:  # trtllm-bench ran GPT-J at 2048 + 2048 tokens
        m = replace(m, max_context_tokens=isl + osl)
    cfg = EngineConfig.build(
        row.gpu_key,
        m,
        weights_precision=row.precision_key,
        kv_precision=row.precision_key,
        tp=int(row.tp),
        scheduler="trtllm",
        max_num_seqs=b,
        max_num_batched_tokens=b * isl + b,
        block_tokens=64,
        gpu_memory_utilization=1.0,
        activation_reserve_bytes=0.0,
        moe_routing="same_experts" if m.is_moe else "uniform",
        step_params=step_params,
        max_model_len=isl + osl,
    )
    wl = Workload.offline(b, prompt_tokens=isl, max_tokens=osl, ignore_eos=True)
    res = simulate(cfg, wl, keep_chunk_times=False, timeseries=False)
    recs = [r for r in res.records if r.status == "ok"]
    first = max(float(r.first_token_s or 0.0) for r in recs)
    end = max(float(r.end_s or 0.0) for r in recs)
    return {
        "first_token_ms": first * 1e3,
        "token_to_token_ms": (end - first) / max(osl - 1, 1) * 1e3,
    }


def replay_static(
    rows: pd.DataFrame, *, step_params: StepParams = FITTED_STEP_PARAMS
) -> pd.DataFrame:
    """Replay measured static-batch rows; adds ``sim_`` and ``err_`` columns (NaN: did not fit)."""
    out = rows[rows["measured"]].copy()
    sims: list[dict[str, float]] = []
    for r in out.itertuples(index=False):
        try:
            sims.append(replay_static_row(r, step_params=step_params))
        except ValueError:
            sims.append({"first_token_ms": math.nan, "token_to_token_ms": math.nan})
    for col in ("first_token_ms", "token_to_token_ms"):
        out[f"sim_{col}"] = [s[col] for s in sims]
        out[f"err_{col}"] = out[f"sim_{col}"] / out[col] - 1.0
    return out


def summarise(
    replayed: pd.DataFrame,
    columns: Iterable[str],
    by: Iterable[str] = ("model_key", "gpu_key", "precision_key", "tp"),
) -> pd.DataFrame:
    """Median |error| of each column per group, plus an ``overall`` row."""
    cols = list(columns)
    err = replayed[[*by, *[f"err_{c}" for c in cols]]].copy()
    for c in cols:
        err[f"err_{c}"] = err[f"err_{c}"].abs()
    groups = err.groupby(list(by)).median()
    overall = err[[f"err_{c}" for c in cols]].median().to_frame().T
    overall.index = pd.MultiIndex.from_tuples(
        [("overall",) + ("",) * (len(list(by)) - 1)], names=groups.index.names
    )
    return pd.concat([groups, overall]).rename(columns=lambda c: c.removeprefix("err_"))


def scan_serving(
    rows: pd.DataFrame,
    field: str,
    values: Iterable[float],
    *,
    serving: NimServing = NIM_SERVING,
) -> pd.DataFrame:
    """Overall median |error| of TTFT, ITL and tokens/s over ``rows`` for each value of one
    :class:`NimServing` field (e.g. ``max_num_tokens`` or ``stream_overhead_s``)."""
    if field not in NimServing.__dataclass_fields__:
        raise ValueError(f"field: {field!r} is not a NimServing field")
    out = []
    for v in values:
        changes: dict[str, Any] = {field: v}
        rep = replay_nim(rows, serving=replace(serving, **changes))
        s = summarise(rep, ["ttft_ms_avg", "itl_ms_avg", "output_tokens_per_s"]).iloc[-1]
        out.append({field: v, **{k: float(s[k]) for k in s.index}})
    return pd.DataFrame(out)
