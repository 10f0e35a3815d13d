"""Measure real servers: target, preflight, streaming client, load generator, server metrics.

``measure`` talks to any OpenAI-compatible server (NVIDIA NIM, vLLM, SGLang, TGI, llama.cpp) and
produces :class:`infphys.records.RequestRecord` runs that ``infphys.stats`` and ``infphys.plots``
read — the same records the simulator produces. Everything that does I/O is a coroutine; call it
with ``await`` in a notebook cell, or through :func:`run_sync`.

    from infphys.measure import Target, preflight_sync, run_sync, sweep
    target = Target.from_env()
    print(preflight_sync(target))
    result = run_sync(sweep(target, concurrency=[1, 2, 4, 8], requests_per_level=40,
                            path="runs/sweep.jsonl"))
    result.summary()

:mod:`infphys.measure.stub` is a loopback server with injectable faults for tests and
experiments.
"""

from __future__ import annotations

from infphys.measure._sync import run_sync
from infphys.measure.client import ChatClient, Timeouts, classify_exception, classify_status
from infphys.measure.gpu import (
    GPUWatcher,
    copy_bandwidth,
    engine_check,
    roofline_experiment,
    watch_gpu,
)
from infphys.measure.load import (
    DeliveredLoad,
    Level,
    LoadProgress,
    LoadResult,
    open_loop,
    overload,
    run_closed_loop,
    run_levels,
    sweep,
    token_grid,
)
from infphys.measure.metrics import (
    METRICS_PATHS,
    VOCABULARY,
    MetricsScraper,
    load_metrics,
    parse_metrics,
)
from infphys.measure.preflight import PreflightStep, PreflightVerdict, preflight, preflight_sync
from infphys.measure.prompts import (
    WORDS,
    PromptList,
    PromptSource,
    SyntheticPrompts,
    estimate_tokens,
    synthetic_prompt,
)
from infphys.measure.retry import (
    RETRYABLE,
    RetryPolicy,
    RetryResult,
    retry_after_s,
    retry_run,
    retry_summary,
)
from infphys.measure.stub import FAULTS, StubConfig, StubServer
from infphys.measure.target import Target
from infphys.measure.transport import MockResponse, MockTransport, Transport, make_transport

# Plain ``sorted()`` order, as tests/test_api.py checks (ruff's RUF022 puts constants first).
__all__ = [  # noqa: RUF022
    "ChatClient",
    "DeliveredLoad",
    "FAULTS",
    "GPUWatcher",
    "Level",
    "LoadProgress",
    "LoadResult",
    "METRICS_PATHS",
    "MetricsScraper",
    "MockResponse",
    "MockTransport",
    "PreflightStep",
    "PreflightVerdict",
    "PromptList",
    "PromptSource",
    "RETRYABLE",
    "RetryPolicy",
    "RetryResult",
    "StubConfig",
    "StubServer",
    "SyntheticPrompts",
    "Target",
    "Timeouts",
    "Transport",
    "VOCABULARY",
    "WORDS",
    "classify_exception",
    "classify_status",
    "copy_bandwidth",
    "engine_check",
    "estimate_tokens",
    "load_metrics",
    "make_transport",
    "open_loop",
    "overload",
    "parse_metrics",
    "preflight",
    "preflight_sync",
    "retry_after_s",
    "retry_run",
    "retry_summary",
    "roofline_experiment",
    "run_closed_loop",
    "run_levels",
    "run_sync",
    "sweep",
    "synthetic_prompt",
    "token_grid",
    "watch_gpu",
]
