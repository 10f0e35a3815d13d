"""Simulated runs behind the serving chapters' figures: sweeps, grids, schedules, saturation.

Each function runs the virtual-time simulator (:func:`infphys.sim.virtual.simulate`) on a small
seeded workload and summarises it with :mod:`infphys.stats` (and :mod:`infphys.analysis.load`);
the figures in :mod:`infphys.plots.batching`, :mod:`infphys.plots.token_budget` and
:mod:`infphys.plots.capacity` draw what these return: concurrency sweeps (:func:`closed_sweep`),
a token grid's TTFT/decode split (:func:`grid_split`), chunked prefill per token budget
(:func:`budget_sweep`), open-loop runs past saturation (:func:`open_loop_runs`), static against
continuous batching (:func:`static_vs_continuous`), preemption remedies
(:func:`preemption_runs`) and one stalled stream (:func:`stalled_request`). Sweeps are cached
for the life of the process, so two figures over the same sweep simulate it once (the site
builds every figure on each build, in under two minutes on two cores).

Worked example: :func:`closed_sweep` at concurrency 1 and 64 for Llama 3.1 8B on an H100 runs
48 and 128 measured requests and returns one :func:`infphys.stats.summarize` row per level, with
the engine's preemptions and tokens/s per user (1 / p50 TPOT).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pandas as pd

from infphys import stats
from infphys.analysis.load import token_budget_split
from infphys.records import RequestRecord, records_to_frame
from infphys.sim.config import EngineConfig
from infphys.sim.sweeps import sweep
from infphys.sim.virtual import SimResult, simulate
from infphys.sim.workload import Workload

__all__ = [
    "DEFAULT_LEVELS",
    "DEFAULT_OUTPUT_TOKENS",
    "DEFAULT_PROMPT_TOKENS",
    "DEFAULT_SCENARIOS",
    "Scenario",
    "Settings",
    "budget_sweep",
    "closed_sweep",
    "engine_config",
    "grid_split",
    "mean_context",
    "non_default",
    "open_loop_runs",
    "preemption_runs",
    "run_frame",
    "saturated_rate_per_s",
    "scenario_name",
    "stalled_request",
    "static_vs_continuous",
]


#: (model, GPU, weights precision) compared by the sweep figures' dropdowns.
DEFAULT_SCENARIOS: tuple[tuple[str, str, str], ...] = (
    ("llama-3.1-8b", "h100-sxm", "bf16"),
    ("llama-3.1-8b", "h200-sxm", "bf16"),
    ("llama-3.1-70b", "h200-sxm", "fp8"),
)
#: Concurrency levels of a closed-loop sweep: doublings, as the labs and `infphys sweep` run.
DEFAULT_LEVELS: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
#: Prompt and output sizes of the sweeps' chat-like workload: uniform over these ranges.
DEFAULT_PROMPT_TOKENS: tuple[int, int] = (512, 1536)
DEFAULT_OUTPUT_TOKENS: tuple[int, int] = (128, 384)

Scenario = tuple[str, str, str]
Settings = tuple[tuple[str, Any], ...]


def engine_config(
    model: str, gpu: str, weights: str = "bf16", settings: Settings = ()
) -> EngineConfig:
    """The simulated engine for ``model`` on ``gpu`` with ``weights`` precision and settings."""
    return EngineConfig.build(gpu=gpu, model=model, weights_precision=weights, **dict(settings))


def run_frame(res: SimResult) -> pd.DataFrame:
    """The run's records as a frame, without the header in ``DataFrame.attrs``: pandas
    deep-copies ``attrs`` on every operation, which doubles the cost of the statistics."""
    return records_to_frame(res.records)


def scenario_name(model: str, gpu: str, weights: str) -> str:
    cfg = engine_config(model, gpu, weights)
    return f"{cfg.model.name} {weights.upper()} on {cfg.gpu.name}"


@functools.lru_cache(maxsize=128)
def closed_sweep(
    model: str,
    gpu: str,
    weights: str,
    levels: tuple[int, ...],
    prompt_tokens: tuple[int, int],
    max_tokens: tuple[int, int],
    settings: Settings = (),
    rounds: int = 2,
    seed: int = 0,
) -> pd.DataFrame:
    """One closed-loop run per concurrency level (:func:`infphys.sim.sweep`: ``rounds`` × c
    measured requests after c warm-up requests, at least 48), summarised by
    :func:`infphys.stats.summarize`, with the engine's preemptions per level. Cached: several
    figures share a sweep."""
    cfg = engine_config(model, gpu, weights, settings)
    sw = sweep(
        cfg, levels, prompt_tokens=prompt_tokens[0], prompt_tokens_max=prompt_tokens[1],
        max_tokens=max_tokens[0], max_tokens_max=max_tokens[1], ignore_eos=False,
        rounds_per_level=rounds, min_requests_per_level=48, seed=seed, timeseries=False,
    )  # fmt: skip
    summary = sw.summary()
    summary["concurrency"] = summary["concurrency"].astype(int)
    summary["preemptions"] = summary["preemptions"].astype(int)
    summary["tokens_per_s_per_user"] = 1.0 / summary["tpot_p50_s"]
    return summary.sort_values("concurrency").reset_index(drop=True)


def non_default(cfg: EngineConfig, setting: str, value: Any) -> Settings:
    """``((setting, value),)``, or ``()`` when ``value`` is what ``cfg`` already has (so that
    sweeps of the same engine share the cache)."""
    current = getattr(cfg, setting)
    same = str(current) == str(value) if setting.endswith("precision") else current == value
    return () if same else ((setting, value),)


def mean_context(prompt_tokens: tuple[int, int], max_tokens: tuple[int, int]) -> float:
    return (sum(prompt_tokens) + sum(max_tokens)) / 2


@functools.lru_cache(maxsize=16)
def grid_split(
    model: str,
    gpu: str,
    prompts: tuple[int, ...],
    outputs: tuple[int, ...],
    concurrency: int,
    requests: int,
    seed: int,
) -> pd.DataFrame:
    """A simulated token grid split into TTFT and decode
    (:func:`infphys.analysis.load.token_budget_split`): one closed-loop run of ``requests``
    measured requests (after ``concurrency`` warm-up ones) at ``concurrency`` per (prompt,
    answer) pair. Cached."""
    cfg = engine_config(model, gpu)
    frames = []
    for p in prompts:
        for n in outputs:
            w = Workload.closed(
                concurrency=concurrency, requests=requests, warmup=concurrency,
                prompt_tokens=int(p), max_tokens=int(n), seed=seed,
            )  # fmt: skip
            frames.append(run_frame(simulate(cfg, w, keep_chunk_times=False, timeseries=False)))
    return token_budget_split(pd.concat(frames, ignore_index=True))


@functools.lru_cache(maxsize=8)
def budget_sweep(
    model: str,
    gpu: str,
    budgets: tuple[int, ...],
    concurrency: int,
    requests: int,
    prompt_tokens: tuple[int, int],
    max_tokens: tuple[int, int],
    seed: int,
) -> pd.DataFrame:
    """Chunked prefill's trade per token budget (``max_num_batched_tokens``): one simulated
    closed loop of ``requests`` measured requests at ``concurrency``, prompts and answers
    uniform in ``prompt_tokens`` and ``max_tokens``, per budget. Columns: ``budget``, the
    median and p99 ITL and the longest gap (``itl_p50_ms``, ``itl_p99_ms``, ``itl_max_ms``),
    the median and p95 TTFT (``ttft_p50_s``, ``ttft_p95_s``) and the output ``tokens_per_s``.
    Cached."""
    base = engine_config(model, gpu)
    rows: list[dict[str, float]] = []
    for b in budgets:
        cfg = base.with_(max_num_batched_tokens=b, max_num_seqs=min(base.max_num_seqs, b))
        w = Workload.closed(
            concurrency=concurrency, requests=requests, warmup=concurrency,
            prompt_tokens=prompt_tokens[0], prompt_tokens_max=prompt_tokens[1],
            max_tokens=max_tokens[0], max_tokens_max=max_tokens[1], seed=seed,
        )  # fmt: skip
        frame = run_frame(simulate(cfg, w, keep_chunk_times=True, timeseries=False))
        s = stats.summarize(frame, by=None).iloc[0]
        itl = stats.itl_values(frame)
        rows.append(
            {
                "budget": b,
                "itl_p50_ms": float(s["itl_p50_s"]) * 1e3,
                "itl_p99_ms": float(s["itl_p99_s"]) * 1e3,
                "itl_max_ms": float(itl.max()) * 1e3 if itl.size else math.nan,
                "ttft_p50_s": float(s["ttft_p50_s"]),
                "ttft_p95_s": float(s["ttft_p95_s"]),
                "tokens_per_s": float(s["output_tokens_per_s"]),
            }
        )
    return pd.DataFrame(rows)


@functools.lru_cache(maxsize=8)
def open_loop_runs(
    model: str,
    gpu: str,
    loads: tuple[float, ...],
    requests: int,
    prompt_tokens: tuple[int, int],
    max_tokens: tuple[int, int],
    seed: int,
) -> pd.DataFrame:
    """Simulated open-loop runs (Poisson arrivals, ``requests`` each) at offered rates that
    are the fractions ``loads`` of :func:`saturated_rate_per_s`, as one records frame: level
    k is ``loads[k]``, its ``rate_per_s`` the offered rate. Cached: do not modify the frame.

    Worked example: an engine that saturates at 10 requests/s, ``loads=(0.5, 2.0)``: two runs
    offered 5 and 20 requests/s; past saturation the second's queue grows for the whole run.
    """
    cfg = engine_config(model, gpu)
    cap = saturated_rate_per_s(model, gpu, prompt_tokens, max_tokens)
    frames = []
    for k, f in enumerate(loads):
        w = Workload.open(
            rate_per_s=cap * float(f), requests=requests, prompt_tokens=prompt_tokens[0],
            prompt_tokens_max=prompt_tokens[1], max_tokens=max_tokens[0],
            max_tokens_max=max_tokens[1], seed=seed,
        )  # fmt: skip
        frame = run_frame(simulate(cfg, w, keep_chunk_times=False, timeseries=False))
        frame["level"] = k
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def static_vs_continuous(
    model: str,
    gpu: str,
    requests: int,
    batch: int,
    prompt_tokens: int,
    max_tokens: tuple[int, int],
    seed: int,
) -> pd.DataFrame:
    """The same offline requests under static and under continuous batching, per request.

    ``requests`` requests arrive at t = 0 with answers uniform in ``max_tokens``. Static: in
    batches of ``batch`` in arrival order, each batch running until its longest answer is done
    (shorter answers padded, as a generate() loop does), so each batch is simulated as
    ``batch`` requests of its longest answer, one batch after another. Continuous: one run
    with ``max_num_seqs = batch``. One row per request, times in s since t = 0: ``tokens`` (its
    own answer), ``static_first_s``, ``static_own_end_s`` (its last useful token),
    ``static_end_s`` (its batch's end), ``continuous_first_s``, ``continuous_end_s``.

    Worked example: 2 requests of 10 and 100 tokens in one static batch both hold their slot
    until the 100-token answer ends; continuously batched, the first slot frees after 10.
    """
    if batch < 1 or requests < batch:
        raise ValueError(f"need 1 <= batch <= requests (got batch={batch}, requests={requests})")
    cfg = engine_config(model, gpu).with_(max_num_seqs=batch)
    w = Workload.offline(
        requests=requests, prompt_tokens=prompt_tokens, max_tokens=max_tokens[0],
        max_tokens_max=max_tokens[1], seed=seed,
    )  # fmt: skip
    useful = [m for _, m in w.sizes()]
    cont = simulate(cfg, w, keep_chunk_times=False, timeseries=False).records
    by_id = {r.request_id: r for r in cont}
    rows: list[dict[str, float]] = []
    t0 = 0.0  # batch k starts when batch k − 1 ends
    for b0 in range(0, requests, batch):
        ids = list(range(b0, min(b0 + batch, requests)))
        one = Workload.offline(
            requests=len(ids), prompt_tokens=prompt_tokens, max_tokens=max(useful[i] for i in ids)
        )
        recs = sorted(simulate(cfg, one, timeseries=False).records, key=lambda r: r.request_id)
        end = t0 + max(r.end_s or 0.0 for r in recs)
        for i, r in zip(ids, recs, strict=True):
            c = by_id[i]
            rows.append(
                {
                    "tokens": useful[i],
                    "static_first_s": t0 + (r.first_token_s or 0.0),
                    "static_own_end_s": t0 + r.chunk_times_s[useful[i] - 1],
                    "static_end_s": end,
                    "continuous_first_s": c.first_token_s or 0.0,
                    "continuous_end_s": c.end_s or 0.0,
                }
            )
        t0 = end
    return pd.DataFrame(rows)


def stalled_request(
    model: str,
    gpu: str,
    concurrency: int,
    requests: int,
    prompt_tokens: tuple[int, int],
    max_tokens: int,
    seed: int,
) -> RequestRecord:
    """The most stalled request of a busy simulated engine: a closed loop of ``concurrency``
    requests with prompts uniform in ``prompt_tokens`` (so other requests' prefills land in
    the middle of some streams) and ``max_tokens`` answers; of the measured successful
    requests with at least 8 tokens, the one whose longest gap between tokens is the largest
    multiple of its median gap.

    Worked example: gaps of 10, 10, 10 and 60 ms score 6; gaps of 12, 12, 12 and 36 ms score
    3; the first is picked.
    """
    cfg = engine_config(model, gpu)
    w = Workload.closed(
        concurrency=concurrency, requests=requests, warmup=concurrency,
        prompt_tokens=prompt_tokens[0], prompt_tokens_max=prompt_tokens[1],
        max_tokens=max_tokens, seed=seed,
    )  # fmt: skip
    records = simulate(cfg, w, keep_chunk_times=True, timeseries=False).records
    best: RequestRecord | None = None
    score = -1.0
    for r in records:
        if r.warmup or r.status != "ok" or len(r.chunk_times_s) < 8:
            continue
        gaps = np.diff(np.asarray(r.chunk_times_s))
        ratio = float(gaps.max() / np.median(gaps))
        if ratio > score:
            best, score = r, ratio
    if best is None:
        raise ValueError("max_tokens: no request with at least 8 tokens to show")
    return best


def preemption_runs(
    model: str,
    gpu: str,
    concurrency: int,
    requests: int,
    prompt_tokens: int,
    max_tokens: tuple[int, int],
    seed: int,
) -> list[tuple[str, EngineConfig, SimResult]]:
    """The same closed loop of ``concurrency`` long conversations (``prompt_tokens`` in,
    answers uniform in ``max_tokens``) on three engines: the default (BF16 KV cache), an FP8
    KV cache (half the bytes per token) and ``max_num_seqs`` halved, the two remedies for
    preemption that vLLM's tuning guide names. Each as (label, engine, run with its time
    series).

    Worked example: 256 chats of 1,024 + up to 3,072 tokens need about 1 M tokens of KV cache
    at once; an engine holding less preempts, and one holding twice as many tokens (FP8)
    preempts fewer or none.
    """
    base = engine_config(model, gpu)
    half = base.max_num_seqs // 2
    variants = (
        ("BF16 KV cache", base),
        ("FP8 KV cache", base.with_(kv_precision="fp8")),
        (f"BF16, max_num_seqs={half}", base.with_(max_num_seqs=half)),
    )
    w = Workload.closed(
        concurrency=concurrency, requests=requests, prompt_tokens=prompt_tokens,
        max_tokens=max_tokens[0], max_tokens_max=max_tokens[1], seed=seed,
    )  # fmt: skip
    return [(label, cfg, simulate(cfg, w, keep_chunk_times=False)) for label, cfg in variants]


@functools.lru_cache(maxsize=8)
def saturated_rate_per_s(
    model: str, gpu: str, prompt: tuple[int, int], output: tuple[int, int]
) -> float:
    """Saturated request rate: every request queued at t = 0 (an offline run)."""
    cfg = engine_config(model, gpu)
    w = Workload.offline(
        requests=4 * cfg.max_num_seqs, prompt_tokens=prompt[0], prompt_tokens_max=prompt[1],
        max_tokens=output[0], max_tokens_max=output[1], seed=7,
    )  # fmt: skip
    return float(
        stats.throughput(
            run_frame(simulate(cfg, w, timeseries=False, keep_chunk_times=False))
        ).requests_per_s
    )
