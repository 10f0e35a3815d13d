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

Prompt tokens are counted without a tokenizer (:mod:`infphys.sim._tokens`); the request checks
and response shapes are in :mod:`infphys.sim._openai`, the metrics in :mod:`infphys.sim._metrics`.
:func:`~infphys.sim.hosting.serve` and :func:`~infphys.sim.hosting.run_server` (also importable
from here) run a server in a thread, a child process or the foreground.

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
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from infphys._check import non_negative, positive, positive_int
from infphys.sim._metrics import EngineCollector, LatencyHistograms, ServerStats
from infphys.sim._openai import (
    HTTPError,
    Stream,
    bad,
    chat_prompt_tokens,
    check_body,
    completion_body,
    completions_prompt_tokens,
    error_response,
    max_tokens,
    sse_chunks,
)
from infphys.sim._tokens import (
    count_chat_prompt_tokens,
    count_completion_prompt_tokens,
    count_text_tokens,
)
from infphys.sim.config import EngineConfig, default_served_model_name
from infphys.sim.engine import Engine, RequestRejected, StepOutcome

if TYPE_CHECKING:
    from infphys.sim.hosting import SimTarget, run_server, serve

__all__ = [
    "DEFAULT_LAG_TOLERANCE_S",
    "ServerStats",
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
_HOSTING = ("SWITCH_INTERVAL_S", "SimTarget", "run_server", "serve")


def __getattr__(name: str) -> Any:
    """``serve``, ``run_server`` and ``SimTarget`` live in :mod:`infphys.sim.hosting`."""
    if name in _HOSTING:
        from infphys.sim import hosting

        return getattr(hosting, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
        log_lag: log the "falling behind the wall clock" warning (False: only count it in
            :attr:`stats`, whose :meth:`ServerStats.lag_note` a lab shows once instead).
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
        log_lag: bool = True,
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
        self.log_lag = bool(log_lag)
        self.engine = Engine(config)
        self.stats = ServerStats()
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(EngineCollector(self))
        self._latency = LatencyHistograms(self.registry, self.served_model_name)
        self._streams: set[Stream] = set()
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
            if self.log_lag and (frac > 0.1 or lag > self.rebase_lag_s):
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
            for h in self._latency.ttft:
                h.observe(now - s.arrival_wall_s)
        for r in out.finished:
            s = r.payload
            s.done = True
            s.finish_reason = r.finish_reason
            e2e = now - s.arrival_wall_s
            for h in self._latency.e2e:
                h.observe(e2e)
            if r.output > 1 and s.first_token_wall_s is not None:
                tpot = (now - s.first_token_wall_s) / (r.output - 1)
                for h in self._latency.tpot:
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

    def _flush(self, s: Stream) -> None:
        """Write ``s``'s new chunks now, from the engine loop, without a task switch.

        ``StreamResponse.write`` only suspends when the transport is paused (the client is not
        reading); then the suspended write is handed to the handler (``blocked``).
        """
        assert s.resp is not None
        data = sse_chunks(s)
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

    def _submit(self, prompt_tokens: int, max_tokens: int | None, ignore_eos: bool) -> Stream:
        """Queue a request in the engine (raises HTTPError for 400 and 503)."""
        eng = self.engine
        if self.max_queue is not None and eng.num_waiting >= self.max_queue:
            self.stats.rejected_503 += 1
            raise HTTPError(
                503,
                f"The server is overloaded: {eng.num_waiting} requests are waiting "
                f"(max_queue={self.max_queue}). Retry later.",
                "ServiceUnavailableError",
            )
        loop = asyncio.get_running_loop()
        now_sim = self._sim_now()
        if eng.idle:
            eng.set_now(now_sim)
        stream = Stream(req=None, event=asyncio.Event(), arrival_wall_s=loop.time())
        try:
            stream.req = eng.add_request(
                prompt_tokens, max_tokens, arrival_s=now_sim, payload=stream, ignore_eos=ignore_eos
            )
        except RequestRejected as exc:
            self.stats.rejected_4xx += 1
            if "maximum context length" in exc.message:
                self._note_too_long(prompt_tokens, max_tokens)
            raise HTTPError(exc.status, exc.message, "BadRequestError", exc.param) from None
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

    def _drop(self, stream: Stream) -> None:
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
                return error_response(
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
            raise bad(f"Invalid JSON in request body: {exc}") from None
        return check_body(body, self.served_model_name)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await self._parse(request)
            prompt_tokens = chat_prompt_tokens(body)
            stream = self._submit(
                prompt_tokens, max_tokens(body), bool(body.get("ignore_eos", False))
            )
        except HTTPError as e:
            return error_response(e.status, e.message, e.err_type, e.param)
        return await self._respond(request, body, stream, prompt_tokens, chat=True)

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await self._parse(request)
            prompt_tokens = completions_prompt_tokens(body)
            stream = self._submit(
                prompt_tokens, max_tokens(body), bool(body.get("ignore_eos", False))
            )
        except HTTPError as e:
            return error_response(e.status, e.message, e.err_type, e.param)
        return await self._respond(request, body, stream, prompt_tokens, chat=False)

    async def _respond(
        self,
        request: web.Request,
        body: Mapping[str, Any],
        stream: Stream,
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
                return error_response(
                    503, "The server is shutting down.", "ServiceUnavailableError"
                )
            return web.json_response(
                completion_body(stream, rid, created, name, prompt_tokens, chat=chat)
            )
        finally:
            self._drop(stream)

    async def _stream(self, request: web.Request, stream: Stream) -> web.StreamResponse:
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
                await resp.write(sse_chunks(stream))
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
                        await resp.write(sse_chunks(stream))
            if stream.closed and not stream.broken:
                await resp.write_eof()
        except ConnectionResetError:
            stream.broken = True
        return resp
