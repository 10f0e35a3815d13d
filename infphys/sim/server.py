"""The real-time driver: an OpenAI-compatible HTTP server whose answers take simulated GPU time.

:class:`SimServer` runs the same :class:`~infphys.sim.engine.Engine` as the virtual driver,
against the wall clock: it computes a step, sleeps until the step's simulated end (times
``time_scale``), then sends every token of the step to its stream as one SSE chunk each. Requests
that arrive during a step wait for the next one, as in vLLM.

HTTP surface (vLLM's shapes, so any OpenAI client works unchanged):

- ``POST /v1/chat/completions`` and ``POST /v1/completions``, streamed or not. A stream starts
  with a chunk carrying ``{"role": "assistant", "content": ""}``, then one content chunk per
  token; the last content chunk carries ``finish_reason``; with
  ``stream_options.include_usage`` a final chunk has empty ``choices`` and the ``usage``; then
  ``data: [DONE]``.
- ``GET /v1/models`` (with an ``infphys`` block: simulated, GPU, engine, ``time_scale``),
  ``GET /v1/health/live``, ``GET /v1/health/ready``, ``GET /health``.
- Prometheus text at ``/metrics`` and ``/v1/metrics``, each with both vocabularies: vLLM's
  (``vllm:num_requests_running``, ``vllm:num_requests_waiting``, ``vllm:kv_cache_usage_perc``,
  ``vllm:num_preemptions_total``, TTFT and e2e histograms, token counters) and NIM 1.x's
  (``num_requests_running``, ``num_requests_waiting``, ``gpu_cache_usage_perc``, …), plus the
  driver's own ``infphys_sim_*`` health figures. Each server has its own registry.
- Errors as ``{"error": {"message", "type", "param", "code"}}``: 400 for bad JSON, missing
  fields, ``max_tokens`` out of range or prompt + ``max_tokens`` beyond the context (vLLM's
  message); 404 for another model name; 401 when an API key is set and the bearer token is
  missing or wrong; 503 beyond ``max_queue`` waiting requests (off by default, like vLLM).

Prompt tokens are counted without a tokenizer: the pieces a BPE pre-tokenizer splits text into
(runs of letters or digits, runs of punctuation; one token per common English word, as the
measuring client's synthetic prompts assume), plus Llama 3's chat-template framing for chat
requests (begin-of-text, a 4-token header and an end-of-turn per message, and the assistant
header: 5 + 5 per message). ``prompt`` as a list of token ids counts exactly.

Keeping up: every step's tokens are due at ``start + simulated end × time_scale``. The driver
measures how late each step's delivery is (``infphys_sim_step_lag_seconds``), counts late steps
(later than ``lag_tolerance_s`` = 2 ms or 10 % of the step's wall duration, whichever is larger),
logs a warning on the ``infphys.sim`` logger when more than 10 % of recent steps are late, and
reports the recent lag in every response header (``x-infphys-sim-lag-ms``). A delay beyond
``rebase_lag_s`` cannot be caught up without a burst of tokens, so the timeline is shifted and
the stall counted (``infphys_sim_stall_seconds_total``). On a 2-core laptop the Python event
loop, not the simulated GPU, limits how many concurrent streams are served faithfully: see
``benchmarks/bench_sim.py``.

Worked example: with ``time_scale=2``, Llama-3.1-8B on an H200 decodes one stream at 5.83 ms
simulated per token, so a client sees a token every 11.7 ms of wall time, and ``/v1/models`` and
every response header say ``time_scale`` 2.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from infphys._check import non_negative, positive, positive_int
from infphys.catalog import GPUSpec, ModelSpec
from infphys.sim.config import EngineConfig, default_served_model_name
from infphys.sim.engine import Engine, RequestRejected, SimRequest, StepOutcome

__all__ = [
    "DEFAULT_LAG_TOLERANCE_S",
    "SimServer",
    "SimTarget",
    "count_chat_prompt_tokens",
    "count_completion_prompt_tokens",
    "count_text_tokens",
    "run_server",
    "serve",
]

log = logging.getLogger("infphys.sim")

#: A step delivered later than this after its due time counts as late (wall seconds) ...
DEFAULT_LAG_TOLERANCE_S = 0.002
#: ... or later than this fraction of the step's own wall duration, whichever is larger.
LAG_TOLERANCE_FRACTION = 0.1
#: Beyond this lag the timeline is shifted instead of caught up (wall seconds).
DEFAULT_REBASE_LAG_S = 0.25
_WARN_EVERY_S = 5.0
#: GIL switch interval while an embedded server runs in a background thread (seconds).
SWITCH_INTERVAL_S = 0.0005

_PIECE = re.compile(r"[^\W_]+|[^\w\s]+|_+")
#: Words the simulated model "says", one token each; cycled.
_OUTPUT_WORDS: tuple[str, ...] = (
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "while",
    "seven",
    "bright",
    "stars",
    "keep",
    "watch",
    "above",
    "calm",
    "water",
    "and",
    "small",
    "boats",
    "drift",
    "toward",
    "home",
    "as",
    "night",
    "falls",
    "slowly",
    "on",
    "every",
    "quiet",
    "hill",
)
_OUTPUT_TEXT: tuple[str, ...] = tuple(" " + w for w in _OUTPUT_WORDS)
_OUTPUT_JSON: tuple[str, ...] = tuple(json.dumps(t) for t in _OUTPUT_TEXT)
_TTFT_BUCKETS = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
    160.0,
    640.0,
    2560.0,
)
_E2E_BUCKETS = (
    0.3,
    0.5,
    0.8,
    1.0,
    1.5,
    2.0,
    2.5,
    5.0,
    10.0,
    15.0,
    20.0,
    30.0,
    40.0,
    50.0,
    60.0,
    120.0,
    240.0,
    480.0,
    960.0,
    1920.0,
    7680.0,
)
_TPOT_BUCKETS = (
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.4,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
)


# --- prompt token counting ----------------------------------------------------------------
def count_text_tokens(text: str) -> int:
    """Tokens of ``text`` by BPE pre-tokenizer pieces (words, numbers, punctuation runs).

    >>> count_text_tokens("the cat sat on the mat")
    6
    >>> count_text_tokens("Hello, world!")
    4
    """
    return len(_PIECE.findall(text))


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for p in content:
            if isinstance(p, dict) and isinstance(p.get("text"), str):
                parts.append(p["text"])
            elif isinstance(p, str):
                parts.append(p)
        return " ".join(parts)
    raise ValueError("content must be a string or a list of text parts")


def count_chat_prompt_tokens(messages: Iterable[Mapping[str, Any]]) -> int:
    """Prompt tokens of a chat request: content pieces plus Llama 3's template framing.

    Framing: ``<|begin_of_text|>`` (1), per message a header ``<|start_header_id|>role
    <|end_header_id|>\\n\\n`` (4) and ``<|eot_id|>`` (1), and the assistant header (4).

    >>> count_chat_prompt_tokens([{"role": "user", "content": "the cat sat"}])
    13
    """
    n = 5
    for m in messages:
        n += 5 + count_text_tokens(_content_text(m.get("content")))
    return n


def count_completion_prompt_tokens(prompt: str | list[int]) -> int:
    """Prompt tokens of a completions request: ids counted exactly, text by pieces plus BOS.

    >>> count_completion_prompt_tokens([1, 2, 3])
    3
    >>> count_completion_prompt_tokens("the cat sat")
    4
    """
    if isinstance(prompt, list):
        return len(prompt)
    return 1 + count_text_tokens(prompt)


# --- per-request state --------------------------------------------------------------------
@dataclass(slots=True, eq=False)
class _Stream:
    """One request as the engine loop and its HTTP handler share it.

    For a streamed response the engine loop formats and writes each step's chunks itself
    (``resp`` set, ``sent`` tokens written so far), so a token costs one socket write and no
    task switch; the handler only waits for the end. When a write would block (the client reads
    slowly), ``blocked`` hands the rest to the handler.
    """

    req: SimRequest | None
    event: asyncio.Event
    arrival_wall_s: float
    produced: int = 0
    done: bool = False
    aborted: bool = False
    finish_reason: str | None = None
    first_token_wall_s: float | None = None
    resp: web.StreamResponse | None = None
    sent: int = 0
    blocked: bool = False
    broken: bool = False
    closed: bool = False
    chat: bool = True
    head: str = ""
    include_usage: bool = False
    prompt_tokens: int = 0
    pending: Any = None


@dataclass(slots=True)
class ServerStats:
    """How well the real-time driver keeps up (wall seconds).

    Attributes:
        steps: steps run.
        late_steps: steps delivered late: more than ``lag_tolerance_s`` (2 ms) or 10 % of the
            step's wall duration after their due time, whichever is larger.
        last_lag_s, max_lag_s, mean_lag_s: lateness of step deliveries.
        stall_s_total, rebases: delay written off by shifting the timeline, and how often.
        requests_total, rejected_503, rejected_4xx, aborted: request counts.
        rejected_context: of ``rejected_4xx``, requests refused because prompt + ``max_tokens``
            exceeds ``max_model_len`` (the engine's context; it is never more than its KV cache).
        busy_s: wall time the engine loop spent with requests in the engine.
        recent_lag_s: moving average of the lag (what the response header reports).
        peak_waiting: most requests ever waiting at once (bounded by ``max_queue``).
    """

    steps: int = 0
    late_steps: int = 0
    last_lag_s: float = 0.0
    max_lag_s: float = 0.0
    lag_sum_s: float = 0.0
    stall_s_total: float = 0.0
    rebases: int = 0
    requests_total: int = 0
    rejected_503: int = 0
    rejected_4xx: int = 0
    rejected_context: int = 0
    aborted: int = 0
    busy_s: float = 0.0
    recent_lag_s: float = 0.0
    peak_waiting: int = 0

    @property
    def mean_lag_s(self) -> float:
        return self.lag_sum_s / self.steps if self.steps else 0.0

    @property
    def late_fraction(self) -> float:
        return self.late_steps / self.steps if self.steps else 0.0

    @property
    def kept_up(self) -> bool:
        """No stall, and at most 5 % of steps late (judged once 50 steps have run)."""
        return self.rebases == 0 and (self.steps < 50 or self.late_fraction <= 0.05)

    def as_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "late_steps": self.late_steps,
            "late_fraction": self.late_fraction,
            "mean_lag_s": self.mean_lag_s,
            "max_lag_s": self.max_lag_s,
            "stall_s_total": self.stall_s_total,
            "rebases": self.rebases,
            "requests_total": self.requests_total,
            "rejected_503": self.rejected_503,
            "rejected_4xx": self.rejected_4xx,
            "rejected_context": self.rejected_context,
            "aborted": self.aborted,
            "peak_waiting": self.peak_waiting,
            "kept_up": self.kept_up,
        }


class _HTTPError(Exception):
    def __init__(self, status: int, message: str, err_type: str, param: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.err_type = err_type
        self.param = param


def _error_response(
    status: int, message: str, err_type: str, param: str | None = None
) -> web.Response:
    body = {"error": {"message": message, "type": err_type, "param": param, "code": status}}
    return web.json_response(body, status=status)


def _bad(message: str, param: str | None = None) -> _HTTPError:
    return _HTTPError(400, message, "BadRequestError", param)


class _Collector(Collector):
    """Engine gauges and counters, read at scrape time (no per-step cost)."""

    def __init__(self, server: SimServer) -> None:
        self.server = server

    def collect(self) -> Iterator[Metric]:
        s = self.server
        e = s.engine
        name = s.served_model_name
        lab = ["model_name"]

        def gauge(metric: str, doc: str, value: float) -> GaugeMetricFamily:
            g = GaugeMetricFamily(metric, doc, labels=lab)
            g.add_metric([name], value)
            return g

        def counter(metric: str, doc: str, value: float) -> CounterMetricFamily:
            c = CounterMetricFamily(metric, doc, labels=lab)
            c.add_metric([name], value)
            return c

        running, waiting, usage = float(e.num_running), float(e.num_waiting), e.kv_usage
        yield gauge(
            "vllm:num_requests_running", "Number of requests in model execution batches.", running
        )
        yield gauge(
            "vllm:num_requests_waiting", "Number of requests waiting to be processed.", waiting
        )
        yield gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", usage)
        yield gauge(
            "vllm:gpu_cache_usage_perc",
            "GPU KV-cache usage (name before vLLM 0.10). 1 means 100 percent usage.",
            usage,
        )
        yield counter(
            "vllm:num_preemptions",
            "Cumulative number of preemption from the engine.",
            float(e.preemptions_total),
        )
        yield counter(
            "vllm:prompt_tokens",
            "Number of prefill tokens processed.",
            float(e.prompt_tokens_total),
        )
        yield counter(
            "vllm:generation_tokens",
            "Number of generation tokens processed.",
            float(e.generation_tokens_total),
        )
        yield gauge("num_requests_running", "Number of requests currently running on GPU.", running)
        yield gauge("num_requests_waiting", "Number of requests waiting to be processed.", waiting)
        yield gauge("num_requests_swapped", "Number of requests swapped to CPU.", 0.0)
        yield gauge(
            "num_request_max",
            "Max number of concurrently running requests.",
            float(s.config.max_num_seqs),
        )
        yield gauge("gpu_cache_usage_perc", "GPU KV-cache usage. 1 means 100 percent usage.", usage)
        yield counter(
            "num_preemptions",
            "Cumulative number of preemption from the engine.",
            float(e.preemptions_total),
        )
        yield counter(
            "prompt_tokens", "Number of prefill tokens processed.", float(e.prompt_tokens_total)
        )
        yield counter(
            "generation_tokens",
            "Number of generation tokens processed.",
            float(e.generation_tokens_total),
        )
        st = s.stats
        yield gauge(
            "infphys_sim_step_lag_seconds",
            "How late the last step's tokens went out (wall seconds).",
            st.last_lag_s,
        )
        yield gauge(
            "infphys_sim_step_lag_max_seconds",
            "Largest step lateness (wall seconds).",
            st.max_lag_s,
        )
        yield counter("infphys_sim_steps", "Engine steps run.", float(st.steps))
        yield counter(
            "infphys_sim_late_steps",
            "Steps delivered later than the tolerance.",
            float(st.late_steps),
        )
        yield counter(
            "infphys_sim_stall_seconds",
            "Delay written off by shifting the timeline (the server fell behind).",
            st.stall_s_total,
        )
        yield counter(
            "infphys_sim_rejected_requests",
            "Requests refused with 503 because the queue was full.",
            float(st.rejected_503),
        )
        yield gauge("infphys_sim_time_scale", "Wall seconds per simulated second.", s.time_scale)


class SimServer:
    """The simulated engine behind an OpenAI-compatible HTTP API (aiohttp), on one event loop.

    Args:
        config: the simulated engine.
        served_model_name: the ``model`` clients must send (default: NIM's name for catalog
            Llamas, e.g. ``meta/llama-3.1-8b-instruct``).
        time_scale: wall seconds per simulated second (2 slows the world down twice).
        api_key: require ``Authorization: Bearer <api_key>`` on the ``/v1`` API routes.
        max_queue: refuse new requests with 503 while this many wait (None: unbounded).
        lag_tolerance_s: a step delivered later than this (or than 10 % of its wall duration,
            whichever is larger) is late.
        rebase_lag_s: beyond this lag the timeline shifts and the stall is counted.
    """

    def __init__(
        self,
        config: EngineConfig,
        *,
        served_model_name: str | None = None,
        time_scale: float = 1.0,
        api_key: str | None = None,
        max_queue: int | None = None,
        lag_tolerance_s: float = DEFAULT_LAG_TOLERANCE_S,
        rebase_lag_s: float = DEFAULT_REBASE_LAG_S,
    ) -> None:
        if not isinstance(config, EngineConfig):
            raise ValueError(f"config must be an EngineConfig (got {config!r})")
        self.config = config
        self.served_model_name = served_model_name or default_served_model_name(config.model)
        self.time_scale = positive("time_scale", time_scale)
        self.api_key = api_key or None
        self.max_queue = None if max_queue is None else positive_int("max_queue", max_queue)
        self.lag_tolerance_s = non_negative("lag_tolerance_s", lag_tolerance_s)
        self.rebase_lag_s = positive("rebase_lag_s", rebase_lag_s)
        self.engine = Engine(config)
        self.stats = ServerStats()
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_Collector(self))
        lab = ["model_name"]
        reg = self.registry
        self._h_ttft = [
            Histogram(
                "vllm:time_to_first_token_seconds",
                "Histogram of time to first token in seconds.",
                lab,
                buckets=_TTFT_BUCKETS,
                registry=reg,
            ),
            Histogram(
                "time_to_first_token_seconds",
                "Histogram of time to first token in seconds (NIM 1.x).",
                lab,
                buckets=_TTFT_BUCKETS,
                registry=reg,
            ),
        ]
        self._h_e2e = [
            Histogram(
                "vllm:e2e_request_latency_seconds",
                "Histogram of end to end request latency in seconds.",
                lab,
                buckets=_E2E_BUCKETS,
                registry=reg,
            ),
            Histogram(
                "e2e_request_latency_seconds",
                "Histogram of end to end request latency in seconds (NIM 1.x).",
                lab,
                buckets=_E2E_BUCKETS,
                registry=reg,
            ),
        ]
        self._h_tpot = [
            Histogram(
                "vllm:request_time_per_output_token_seconds",
                "Histogram of time_per_output_token_seconds per request.",
                lab,
                buckets=_TPOT_BUCKETS,
                registry=reg,
            ),
            Histogram(
                "time_per_output_token_seconds",
                "Histogram of time per output token in seconds (NIM 1.x).",
                lab,
                buckets=_TPOT_BUCKETS,
                registry=reg,
            ),
        ]
        self._ttft_children = [h.labels(model_name=self.served_model_name) for h in self._h_ttft]
        self._e2e_children = [h.labels(model_name=self.served_model_name) for h in self._h_e2e]
        self._tpot_children = [h.labels(model_name=self.served_model_name) for h in self._h_tpot]
        self._streams: set[_Stream] = set()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._wall0 = 0.0
        self._last_warn = -_WARN_EVERY_S
        self._window_steps = 0
        self._window_late = 0
        self._created = int(time.time())
        self.host = "127.0.0.1"
        self.port = 0

    # --- clocks --------------------------------------------------------------------------
    def _sim_now(self) -> float:
        loop = asyncio.get_running_loop()
        return (loop.time() - self._wall0) / self.time_scale

    # --- lifecycle -----------------------------------------------------------------------
    def build_app(self) -> web.Application:
        """The aiohttp application (routes, auth middleware, response headers)."""
        app = web.Application(middlewares=[self._auth_middleware], client_max_size=64 * 2**20)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/completions", self._completions)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/v1/health/live", self._live)
        app.router.add_get("/v1/health/ready", self._ready)
        app.router.add_get("/health", self._health)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/v1/metrics", self._metrics)
        app.on_response_prepare.append(self._on_prepare)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Bind and start serving on the running loop; return the port."""
        loop = asyncio.get_running_loop()
        self._wall0 = loop.time()
        self._wake = asyncio.Event()
        self._runner = web.AppRunner(
            self.build_app(), handler_cancellation=True, shutdown_timeout=2.0, access_log=None
        )
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, host, port)
        await self._site.start()
        self.host = host
        self.port = self._site.port
        self._task = asyncio.create_task(self._engine_loop(), name="infphys-sim-engine")
        return self.port

    async def stop(self) -> None:
        """Stop the engine loop, end every open stream, close the listener and connections."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for s in list(self._streams):
            s.aborted = True
            s.event.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- the engine loop -----------------------------------------------------------------
    async def _engine_loop(self) -> None:
        loop = asyncio.get_running_loop()
        eng = self.engine
        assert self._wake is not None
        wake = self._wake
        scale = self.time_scale
        while True:
            if eng.idle:
                wake.clear()
                await wake.wait()
                continue
            t_busy = loop.time()
            out = eng.step(want_emitted=True)
            due = self._wall0 + out.end_s * scale
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                await asyncio.sleep(0)
            lag = max(0.0, loop.time() - due)
            self._deliver(out, loop.time())
            self._account(lag, loop.time(), out.duration_s * scale)
            self.stats.busy_s += loop.time() - t_busy

    def _account(self, lag: float, now: float, step_wall_s: float) -> None:
        st = self.stats
        st.steps += 1
        st.last_lag_s = lag
        st.lag_sum_s += lag
        st.recent_lag_s = 0.9 * st.recent_lag_s + 0.1 * lag
        if lag > st.max_lag_s:
            st.max_lag_s = lag
        late = lag > max(self.lag_tolerance_s, LAG_TOLERANCE_FRACTION * step_wall_s)
        if late:
            st.late_steps += 1
        self._window_steps += 1
        self._window_late += late
        if lag > self.rebase_lag_s:
            self._wall0 += lag
            st.stall_s_total += lag
            st.rebases += 1
        if now - self._last_warn >= _WARN_EVERY_S and self._window_steps >= 20:
            frac = self._window_late / self._window_steps
            if frac > 0.1 or lag > self.rebase_lag_s:
                log.warning(
                    "infphys sim server at %s:%d is falling behind the wall clock: %.0f%% of "
                    "the last %d steps went out late (over %.1f ms or 10%% of the step; now "
                    "%.1f ms, max %.1f ms, %d stalls); measured latencies include this lag — "
                    "lower the concurrency or raise time_scale",
                    self.host,
                    self.port,
                    100 * frac,
                    self._window_steps,
                    1e3 * self.lag_tolerance_s,
                    1e3 * lag,
                    1e3 * st.max_lag_s,
                    st.rebases,
                )
                self._last_warn = now
            self._window_steps = 0
            self._window_late = 0

    def _deliver(self, out: StepOutcome, now: float) -> None:
        eng = self.engine
        for r in out.first_tokens:
            s = r.payload
            s.first_token_wall_s = now
            for h in self._ttft_children:
                h.observe(now - s.arrival_wall_s)
        for r in out.finished:
            s = r.payload
            s.done = True
            s.finish_reason = r.finish_reason
            e2e = now - s.arrival_wall_s
            for h in self._e2e_children:
                h.observe(e2e)
            if r.output > 1 and s.first_token_wall_s is not None:
                tpot = (now - s.first_token_wall_s) / (r.output - 1)
                for h in self._tpot_children:
                    h.observe(tpot)
        assert out.emitted is not None
        for r in out.emitted:
            s = r.payload
            s.produced = eng.output_tokens(r)
            if s.resp is not None and not (s.blocked or s.broken or s.closed):
                self._flush(s)
            elif s.done or s.resp is not None:
                s.event.set()
        for r in out.finished:
            s = r.payload
            if s.resp is None or s.blocked or s.closed:
                s.event.set()

    def _chunks(self, s: _Stream) -> bytes:
        """SSE chunks for tokens ``s.sent`` … ``s.produced`` (and the end of the stream)."""
        words = _OUTPUT_JSON
        nw = len(words)
        head = s.head
        if s.chat:
            mid, tail = '"delta":{"content":', '},"logprobs":null,"finish_reason":null}]}\n\n'
            last = '},"logprobs":null,"finish_reason":%s,"stop_reason":null}]}\n\n'
        else:
            mid = '"text":'
            tail = ',"logprobs":null,"finish_reason":null,"stop_reason":null}]}\n\n'
            last = ',"logprobs":null,"finish_reason":%s,"stop_reason":null}]}\n\n'
        parts: list[str] = []
        n = s.produced
        if s.sent == 0 and s.chat and n > 0:
            parts.append(
                head + '"delta":{"role":"assistant","content":""},"logprobs":null,'
                '"finish_reason":null}]}\n\n'
            )
        for i in range(s.sent, n):
            if s.done and i == n - 1:
                parts.append(head + mid + words[i % nw] + last % json.dumps(s.finish_reason))
            else:
                parts.append(head + mid + words[i % nw] + tail)
        s.sent = n
        if s.done:
            if s.include_usage:
                usage = json.dumps(
                    {
                        "prompt_tokens": s.prompt_tokens,
                        "total_tokens": s.prompt_tokens + n,
                        "completion_tokens": n,
                    },
                    separators=(",", ":"),
                )
                prefix = head[: head.index('"choices"')]
                parts.append(prefix + f'"choices":[],"usage":{usage}}}\n\n')
            parts.append("data: [DONE]\n\n")
            s.closed = True
        return "".join(parts).encode()

    def _flush(self, s: _Stream) -> None:
        """Write ``s``'s new chunks now, from the engine loop, without a task switch.

        ``StreamResponse.write`` only suspends when the transport is paused (the client is not
        reading); then the suspended write is handed to the handler (``blocked``).
        """
        assert s.resp is not None
        data = self._chunks(s)
        if not data:
            return
        coro = s.resp.write(data)
        try:
            fut = coro.send(None)
        except StopIteration:
            if s.closed:
                s.event.set()
            return
        except ConnectionResetError:
            s.broken = True
            s.event.set()
            return
        s.blocked = True
        s.pending = (coro, fut)
        s.event.set()

    def _submit(self, prompt_tokens: int, max_tokens: int | None, ignore_eos: bool) -> _Stream:
        """Queue a request in the engine (raises _HTTPError for 400 and 503)."""
        eng = self.engine
        if self.max_queue is not None and eng.num_waiting >= self.max_queue:
            self.stats.rejected_503 += 1
            raise _HTTPError(
                503,
                f"The server is overloaded: {eng.num_waiting} requests are waiting "
                f"(max_queue={self.max_queue}). Retry later.",
                "ServiceUnavailableError",
            )
        loop = asyncio.get_running_loop()
        now_sim = self._sim_now()
        if eng.idle:
            eng.set_now(now_sim)
        stream = _Stream(req=None, event=asyncio.Event(), arrival_wall_s=loop.time())
        try:
            stream.req = eng.add_request(
                prompt_tokens, max_tokens, arrival_s=now_sim, payload=stream, ignore_eos=ignore_eos
            )
        except RequestRejected as exc:
            self.stats.rejected_4xx += 1
            if "maximum context length" in exc.message:
                self._note_too_long(prompt_tokens, max_tokens)
            raise _HTTPError(exc.status, exc.message, "BadRequestError", exc.param) from None
        self.stats.requests_total += 1
        self.stats.peak_waiting = max(self.stats.peak_waiting, eng.num_waiting)
        self._streams.add(stream)
        assert self._wake is not None
        self._wake.set()
        return stream

    def _note_too_long(self, prompt_tokens: int, max_tokens: int | None) -> None:
        """Count a request refused for its length; warn at the 1st, 10th, 100th, … of them."""
        st = self.stats
        st.rejected_context += 1
        n = st.rejected_context
        if n == 1 or (n % 10 == 0 and str(n).rstrip("0") == "1"):
            asked = (
                f"{prompt_tokens:,} prompt + {max_tokens:,} max_tokens"
                if max_tokens
                else (f"a {prompt_tokens:,}-token prompt")
            )
            log.warning(
                "%s request(s) refused with HTTP 400 so far: longer than max_model_len %s "
                "tokens (the last asked for %s; the KV cache holds %s tokens)",
                f"{n:,}",
                f"{self.config.max_model_len:,}",
                asked,
                f"{self.config.kv_capacity_tokens:,}",
            )

    def _drop(self, stream: _Stream) -> None:
        """The client went away (or the server stops): free the request's engine resources."""
        self._streams.discard(stream)
        if stream.req is not None and not stream.done:
            self.engine.abort(stream.req)
            self.stats.aborted += 1

    # --- HTTP ----------------------------------------------------------------------------
    @web.middleware
    async def _auth_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.api_key and request.path in (
            "/v1/chat/completions",
            "/v1/completions",
            "/v1/models",
        ):
            auth = request.headers.get("Authorization", "")
            if auth != f"Bearer {self.api_key}":
                return _error_response(
                    401,
                    "Unauthorized: missing or wrong API key (send 'Authorization: Bearer <key>').",
                    "AuthenticationError",
                )
        resp: web.StreamResponse = await handler(request)
        return resp

    async def _on_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        h = response.headers
        h["x-infphys-simulated"] = "true"
        h["x-infphys-time-scale"] = f"{self.time_scale:g}"
        h["x-infphys-sim-lag-ms"] = f"{1e3 * self.stats.recent_lag_s:.1f}"

    async def _models(self, request: web.Request) -> web.Response:
        cfg = self.config
        card = {
            "id": self.served_model_name,
            "object": "model",
            "created": self._created,
            "owned_by": "infphys",
            "root": self.served_model_name,
            "parent": None,
            "max_model_len": cfg.max_model_len,
            "permission": [],
            "infphys": {
                "simulated": True,
                "time_scale": self.time_scale,
                "gpu": cfg.gpu.name,
                "model": cfg.model.name,
                "engine": cfg.describe(),
                # The whole configuration, so a client that finds this server through
                # NIM_BASE_URL (``infphys labs``) can still draw the roofline beside it.
                "config": cfg.to_dict(),
            },
        }
        return web.json_response({"object": "list", "data": [card]})

    async def _live(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "health.response", "message": "Service is live."})

    async def _ready(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "health.response", "message": "Service is ready."})

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _parse(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise _bad(f"Invalid JSON in request body: {exc}") from None
        if not isinstance(body, dict):
            raise _bad("The request body must be a JSON object.")
        model = body.get("model")
        if model is not None and model != self.served_model_name:
            raise _HTTPError(404, f"The model `{model}` does not exist.", "NotFoundError", "model")
        n = body.get("n", 1)
        if n not in (None, 1):
            raise _bad("n > 1 is not supported by the infphys simulator.", "n")
        if body.get("stream_options") is not None and not body.get("stream"):
            raise _bad("Stream options can only be defined when `stream=True`.", "stream_options")
        return body

    @staticmethod
    def _max_tokens(body: Mapping[str, Any]) -> int | None:
        mt = body.get("max_completion_tokens")
        if mt is None:
            mt = body.get("max_tokens")
        if mt is None:
            return None
        if isinstance(mt, bool) or not isinstance(mt, int):
            raise _bad(f"max_tokens must be an integer (got {mt!r}).", "max_tokens")
        if mt < 1:
            raise _bad(f"max_tokens must be at least 1, got {mt}.", "max_tokens")
        return mt

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await self._parse(request)
            messages = body.get("messages")
            if not isinstance(messages, list) or not messages:
                raise _bad("Field required: messages (a non-empty list).", "messages")
            for i, m in enumerate(messages):
                if not isinstance(m, dict) or "role" not in m:
                    raise _bad(f"messages[{i}] must be an object with a role.", "messages")
            try:
                prompt_tokens = count_chat_prompt_tokens(messages)
            except ValueError as exc:
                raise _bad(str(exc), "messages") from None
            stream = self._submit(
                prompt_tokens, self._max_tokens(body), bool(body.get("ignore_eos", False))
            )
        except _HTTPError as e:
            return _error_response(e.status, e.message, e.err_type, e.param)
        return await self._respond(request, body, stream, prompt_tokens, chat=True)

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await self._parse(request)
            prompt = body.get("prompt")
            if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str | list):
                prompt = prompt[0]
            if isinstance(prompt, list):
                if not prompt or not all(
                    isinstance(t, int) and not isinstance(t, bool) for t in prompt
                ):
                    raise _bad(
                        "prompt must be a string or a list of token ids (one prompt).", "prompt"
                    )
            elif not isinstance(prompt, str):
                raise _bad("Field required: prompt.", "prompt")
            prompt_tokens = count_completion_prompt_tokens(prompt)
            stream = self._submit(
                prompt_tokens, self._max_tokens(body), bool(body.get("ignore_eos", False))
            )
        except _HTTPError as e:
            return _error_response(e.status, e.message, e.err_type, e.param)
        return await self._respond(request, body, stream, prompt_tokens, chat=False)

    async def _respond(
        self,
        request: web.Request,
        body: Mapping[str, Any],
        stream: _Stream,
        prompt_tokens: int,
        *,
        chat: bool,
    ) -> web.StreamResponse:
        rid = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex
        created = int(time.time())
        name = self.served_model_name
        try:
            if body.get("stream"):
                opts = body.get("stream_options") or {}
                include_usage = bool(opts.get("include_usage")) if isinstance(opts, dict) else False
                obj = "chat.completion.chunk" if chat else "text_completion"
                stream.chat = chat
                stream.include_usage = include_usage
                stream.prompt_tokens = prompt_tokens
                stream.head = (
                    f'data: {{"id":"{rid}","object":"{obj}","created":{created},'
                    f'"model":{json.dumps(name)},"choices":[{{"index":0,'
                )
                return await self._stream(request, stream)
            while not (stream.done or stream.aborted):
                stream.event.clear()
                await stream.event.wait()
            if stream.aborted:
                return _error_response(
                    503, "The server is shutting down.", "ServiceUnavailableError"
                )
            n = stream.produced
            text = "".join(_OUTPUT_TEXT[i % len(_OUTPUT_TEXT)] for i in range(n))
            usage = {
                "prompt_tokens": prompt_tokens,
                "total_tokens": prompt_tokens + n,
                "completion_tokens": n,
                "prompt_tokens_details": None,
            }
            choice: dict[str, Any]
            if chat:
                choice = {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "reasoning_content": None,
                        "content": text,
                        "tool_calls": [],
                    },
                    "logprobs": None,
                    "finish_reason": stream.finish_reason,
                    "stop_reason": None,
                }
                obj = "chat.completion"
            else:
                choice = {
                    "index": 0,
                    "text": text,
                    "logprobs": None,
                    "finish_reason": stream.finish_reason,
                    "stop_reason": None,
                    "prompt_logprobs": None,
                }
                obj = "text_completion"
            return web.json_response(
                {
                    "id": rid,
                    "object": obj,
                    "created": created,
                    "model": name,
                    "choices": [choice],
                    "usage": usage,
                    "prompt_logprobs": None,
                }
            )
        finally:
            self._drop(stream)

    async def _stream(self, request: web.Request, stream: _Stream) -> web.StreamResponse:
        resp = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
            },
        )
        await resp.prepare(request)
        try:
            # Tokens that came while the headers were being prepared; later ones are written by
            # the engine loop (see _flush), unless a write blocks and hands over to us.
            if stream.produced > stream.sent or stream.done:
                await resp.write(self._chunks(stream))
            stream.resp = resp
            while not (stream.closed or stream.aborted or stream.broken):
                stream.event.clear()
                await stream.event.wait()
                if stream.blocked:
                    coro, fut = stream.pending
                    stream.pending = None
                    try:
                        while True:
                            await fut
                            fut = coro.send(None)
                    except StopIteration:
                        pass
                    stream.blocked = False
                    if stream.produced > stream.sent or (stream.done and not stream.closed):
                        await resp.write(self._chunks(stream))
            if stream.closed and not stream.broken:
                await resp.write_eof()
        except ConnectionResetError:
            stream.broken = True
        return resp


# --- running it ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SimTarget:
    """Where an embedded simulated server listens: what a measuring client needs.

    It has the attributes and methods of :class:`infphys.measure.Target` that the measuring
    client uses (``base_url``, ``chat_path``, ``model``, ``api_key``, ``chat_url``, ``url``,
    ``headers``, ``public_dict``, ``redact``), so it can be passed where a target is expected.

    Attributes:
        base_url: ``http://127.0.0.1:<port>``.
        model: the served model name to send.
        chat_path, completions_path: API paths.
        api_key: the key the server requires (None: none).
        time_scale: wall seconds per simulated second (divide measured times by it).
        config: the simulated engine.
        server: the running server (its ``stats`` say whether it kept up).
    """

    base_url: str
    model: str
    chat_path: str = "/v1/chat/completions"
    completions_path: str = "/v1/completions"
    api_key: str | None = None
    time_scale: float = 1.0
    config: EngineConfig | None = field(default=None, repr=False)
    server: SimServer | None = field(default=None, repr=False, compare=False)

    @property
    def chat_url(self) -> str:
        return self.base_url + self.chat_path

    def url(self, path: str) -> str:
        return self.base_url + path

    def headers(self) -> dict[str, str]:
        h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if self.api_key:
            h["Authorization"] = f"Bearer {self.api_key}"
        return h

    def public_dict(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "chat_path": self.chat_path,
            "model": self.model,
            "api_key_set": self.api_key is not None,
            "simulated": True,
            "time_scale": self.time_scale,
        }

    def redact(self, text: str) -> str:
        """``text`` with the API key (if any) replaced by ``***``."""
        if self.api_key and self.api_key in text:
            return text.replace(self.api_key, "***")
        return text

    def describe(self) -> str:
        """One line: which simulated GPU and model answer where."""
        cfg = self.config
        what = f"{cfg.model.name} on {cfg.tp}× {cfg.gpu.name}" if cfg is not None else self.model
        scale = f", time ×{self.time_scale:g}" if self.time_scale != 1 else ""
        return f"simulated {what} at {self.base_url} (model {self.model}{scale})"


class _ServerThread:
    """A SimServer on its own event loop in a background thread."""

    def __init__(self, server: SimServer, host: str, port: int) -> None:
        self.server = server
        self.host = host
        self.port = port
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="infphys-sim-server", daemon=True)

    def start(self, timeout_s: float = 30.0) -> None:
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise RuntimeError("the simulated server did not start in time")
        if self._error is not None:
            self._thread.join(timeout_s)
            raise self._error

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            self.port = await self.server.start(self.host, self.port)
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            await self.server.stop()
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self.server.stop()

    def stop(self, timeout_s: float = 30.0) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout_s)


def _check_host(host: str) -> str:
    if not isinstance(host, str) or not host:
        raise ValueError(f"host must be an address such as '127.0.0.1' (got {host!r})")
    return host


@contextlib.contextmanager
def serve(
    gpu: GPUSpec | str = "h200",
    model: ModelSpec | str = "llama-3.1-8b",
    *,
    config: EngineConfig | None = None,
    served_model_name: str | None = None,
    time_scale: float = 1.0,
    api_key: str | None = None,
    max_queue: int | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    process: bool = False,
    **settings: Any,
) -> Iterator[SimTarget]:
    """Run a simulated server on a free loopback port, in a background thread or a process.

    ``with infphys.sim.serve(gpu="h200", model="llama-3.1-8b") as t:`` gives a
    :class:`SimTarget` (``t.base_url``, ``t.model``, ``t.chat_path``); the server stops when the
    block ends, and a warning is logged if it could not keep up with the wall clock.

    Args:
        gpu, model: catalog names (ignored when ``config`` is given).
        config: a full engine configuration.
        served_model_name, time_scale, api_key, max_queue: see :class:`SimServer`.
        host, port: where to listen (default: loopback, a free port).
        process: run the server in a child process instead of a thread. The server and a
            measuring client in this process then use two cores and two interpreter locks, so
            it keeps up with about 4× the concurrency (``benchmarks/bench_sim.py``); its lag
            figures are then read from ``/metrics`` (``t.server`` is None). Starting takes a
            second or two.
        settings: other :class:`EngineConfig` fields (``weights_precision``, ``tp``,
            ``max_num_seqs``, …).
    """
    cfg = config if config is not None else EngineConfig.build(gpu, model, **settings)
    if config is not None and settings:
        cfg = config.with_(**settings)
    non_negative("port", port)
    server = SimServer(
        cfg,
        served_model_name=served_model_name,
        time_scale=time_scale,
        api_key=api_key,
        max_queue=max_queue,
    )
    host = _check_host(host)
    if process:
        with _serve_process(server, host, int(port)) as target:
            yield target
        return
    thread = _ServerThread(server, host, int(port))
    # The server shares the GIL with the caller's threads (a measuring client, a notebook).
    # Python hands the GIL over every 5 ms by default, so a step due now could wait 5 ms behind
    # a busy client thread; a 0.5 ms interval keeps deliveries on time.
    switch_s = sys.getswitchinterval()
    sys.setswitchinterval(min(switch_s, SWITCH_INTERVAL_S))
    try:
        thread.start()
    except BaseException:
        sys.setswitchinterval(switch_s)
        raise
    target = SimTarget(
        base_url=f"http://{host}:{thread.port}",
        model=server.served_model_name,
        api_key=api_key,
        time_scale=server.time_scale,
        config=cfg,
        server=server,
    )
    try:
        yield target
    finally:
        thread.stop()
        sys.setswitchinterval(switch_s)
        st = server.stats
        if not st.kept_up:
            log.warning(
                "the simulated server did not keep up with the wall clock: %d of %d steps late "
                "(max %.1f ms), %d stalls totalling %.2f s; latencies measured against it "
                "include this lag",
                st.late_steps,
                st.steps,
                1e3 * st.max_lag_s,
                st.rebases,
                st.stall_s_total,
            )


@contextlib.contextmanager
def _serve_process(server: SimServer, host: str, port: int) -> Iterator[SimTarget]:
    """``server``'s settings served by ``python -m infphys.sim._child`` until the block ends."""
    import infphys

    spec = {
        "config": server.config.to_dict(),
        "server": {
            "served_model_name": server.served_model_name,
            "time_scale": server.time_scale,
            "api_key": server.api_key,
            "max_queue": server.max_queue,
            "lag_tolerance_s": server.lag_tolerance_s,
            "rebase_lag_s": server.rebase_lag_s,
        },
        "host": host,
        "port": port,
    }
    root = os.path.dirname(os.path.dirname(os.path.abspath(infphys.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    proc = subprocess.Popen(
        [sys.executable, "-m", "infphys.sim._child", json.dumps(spec)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("port "):
            proc.wait(timeout=30)
            raise RuntimeError(
                f"the simulated server process did not start (exit code {proc.returncode})"
            )
        bound = int(line.split()[1])
        yield SimTarget(
            base_url=f"http://{host}:{bound}",
            model=server.served_model_name,
            api_key=server.api_key,
            time_scale=server.time_scale,
            config=server.config,
            server=None,
        )
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def run_server(
    server: SimServer,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    on_ready: Any = None,
) -> None:
    """Serve in the foreground until interrupted (Ctrl-C); ``on_ready(port)`` once listening."""
    _check_host(host)

    async def main() -> None:
        bound = await server.start(host, port)
        try:
            if on_ready is not None:
                on_ready(bound)
            await asyncio.Event().wait()
        finally:
            await server.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
