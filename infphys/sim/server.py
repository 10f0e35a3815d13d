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
  ``vllm:num_preemptions_total``, token counters, histograms of TTFT, e2e, inter-token, queue,
  prefill and decode time, tokens per request and per step, ``vllm:request_success_total``)
  and NIM 1.x's
  (``num_requests_running``, ``num_requests_waiting``, ``gpu_cache_usage_perc``, …), plus the
  driver's own ``infphys_sim_*`` health figures. Each server has its own registry.
- Errors as ``{"error": {"message", "type", "param", "code"}}``: 400 for a body that is not
  ``application/json`` (vLLM's "Unsupported Media Type" message), bad JSON, missing fields,
  ``max_tokens`` out of range or prompt + ``max_tokens`` beyond the context (vLLM's message,
  naming the prompt on ``/v1/completions``); 404 for another model name or an unknown path, 405
  for a wrong method; 401 when an API key is set and the bearer token is missing or wrong; 503
  beyond ``max_queue`` waiting requests (off by default, like vLLM).
- A fleet (``replicas`` > 1, or ``prefill_replicas`` for disaggregated serving) answers on the
  same endpoint: each request goes to a replica chosen by the virtual-time fleet's router, and
  ``/metrics`` labels every engine series with ``replica``.

Prompt tokens are counted without a tokenizer (:mod:`infphys.sim._tokens`), in 64 KB slices with
the event loop free between them, so a 10 MB prompt does not hold other streams back; the
engine loops are in :mod:`infphys.sim._replica`, the request checks
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
import json
import logging
import random
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from infphys._check import non_negative, positive, positive_int
from infphys.sim._metrics import EngineCollector, RequestMetrics, ServerStats
from infphys.sim._openai import (
    HTTPError,
    Stream,
    bad,
    chat_prompt_parts_of,
    check_body,
    completion_body,
    completions_prompt_parts_of,
    error_response,
    max_tokens,
    sse_chunks,
)
from infphys.sim._replica import Replica
from infphys.sim._tokens import (
    count_chat_prompt_tokens,
    count_completion_prompt_tokens,
    count_text_tokens,
    count_tokens_yielding,
)
from infphys.sim.config import EngineConfig, check_engine_config, default_served_model_name
from infphys.sim.engine import Engine, RequestRejected, SimRequest
from infphys.sim.fleet import Router, check_router, kv_transfer_s

if TYPE_CHECKING:
    from infphys.sim.hosting import run_server, serve

__all__ = [
    "DEFAULT_LAG_TOLERANCE_S",
    "ServerStats",
    "SimServer",
    "count_chat_prompt_tokens",
    "count_completion_prompt_tokens",
    "count_text_tokens",
    "run_server",
    "serve",
]

log = logging.getLogger("infphys.sim")

#: A step delivered later than this after its due time counts as late (wall seconds) ...
DEFAULT_LAG_TOLERANCE_S = 0.002
#: Beyond this lag the timeline is shifted instead of caught up (wall seconds).
DEFAULT_REBASE_LAG_S = 0.25
_HOSTING = ("SWITCH_INTERVAL_S", "run_server", "serve")
#: vLLM's answer to a body that is not ``application/json`` (its ``validate_json_request``).
UNSUPPORTED_MEDIA_TYPE = "Unsupported Media Type: Only 'application/json' is allowed"


def __getattr__(name: str) -> Any:
    """``serve`` and ``run_server`` live in :mod:`infphys.sim.hosting`."""
    if name in _HOSTING:
        from infphys.sim import hosting

        return getattr(hosting, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class SimServer:
    """The simulated engine(s) behind an OpenAI-compatible HTTP API (aiohttp), on one event loop.

    Args:
        config: the simulated engine (every replica's, in a fleet).
        served_model_name: the ``model`` clients must send (default: NIM's name for catalog
            Llamas, e.g. ``meta/llama-3.1-8b-instruct``).
        time_scale: wall seconds per simulated second (2 slows the world down twice).
        api_key: require ``Authorization: Bearer <api_key>`` on the ``/v1`` API routes.
        max_queue: refuse new requests with 503 while this many wait in the chosen replica
            (None: unbounded).
        lag_tolerance_s: a step delivered later than this (or than 10 % of its wall duration,
            whichever is larger) is late.
        rebase_lag_s: beyond this lag the timeline shifts and the stall is counted.
        log_lag: log the "falling behind the wall clock" warning (False: only count it in
            :attr:`stats`, whose :meth:`ServerStats.lag_note` a lab shows once instead).
        replicas: engines behind one endpoint (decode replicas when ``prefill_replicas`` > 0).
        prefill_replicas: disaggregated serving: this many prefill replicas; a request's KV
            cache then moves to a decode replica after its first token
            (:func:`~infphys.sim.fleet.kv_transfer_s` × ``time_scale`` later).
        router: how a request picks its replica, one of :data:`~infphys.sim.fleet.ROUTERS`
            (the same :class:`~infphys.sim.fleet.Router` as the virtual-time fleet).
        seed: seeds the router's tie-breaks and disaggregated output lengths.

    With more than one replica every engine series in ``/metrics`` carries a ``replica`` label
    and the router's gauges are added; with one, the metrics are a single vLLM server's.
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
        replicas: int = 1,
        prefill_replicas: int = 0,
        router: str = "round-robin",
        seed: int = 0,
    ) -> None:
        self.config = check_engine_config("config", config)
        check_router("router", router)
        self.served_model_name = served_model_name or default_served_model_name(config.model)
        self.time_scale = positive("time_scale", time_scale)
        self.api_key = api_key or None
        self.max_queue = None if max_queue is None else positive_int("max_queue", max_queue)
        self.lag_tolerance_s = non_negative("lag_tolerance_s", lag_tolerance_s)
        self.rebase_lag_s = positive("rebase_lag_s", rebase_lag_s)
        self.log_lag = bool(log_lag)
        n_decode = positive_int("replicas", replicas)
        self.prefill_replicas = int(non_negative("prefill_replicas", prefill_replicas))
        self.router = router
        self.seed = int(seed)
        self.registry = CollectorRegistry(auto_describe=True)
        n = n_decode + self.prefill_replicas
        self.request_metrics = RequestMetrics(
            self.registry,
            self.served_model_name,
            max_model_len=config.max_model_len,
            fleet=n > 1,
        )
        roles = ["prefill"] * self.prefill_replicas + (
            ["decode"] * n_decode if self.prefill_replicas else ["serve"] * n_decode
        )
        self.replicas = [Replica(self, i, config, role) for i, role in enumerate(roles)]
        self._front = self.replicas[: self.prefill_replicas] or self.replicas
        self._back = self.replicas[self.prefill_replicas :]
        self._route_front = Router(router, self.seed, None)
        self._route_back = Router(router, self.seed + 1, None)
        self._rng = random.Random(f"{self.seed}:outputs")
        self._routed = 0
        self.kv_transfers_in_flight = 0
        self.registry.register(EngineCollector(self))
        self._streams: set[Stream] = set()
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._created = int(time.time())
        self.host = "127.0.0.1"
        self.port = 0

    @property
    def engine(self) -> Engine:
        """The first replica's engine (the only one of a single-engine server)."""
        return self.replicas[0].engine

    @property
    def stats(self) -> ServerStats:
        """How well the server keeps up: the engine's figures, or all replicas' together."""
        if len(self.replicas) == 1:
            return self.replicas[0].stats
        return ServerStats.merged([r.stats for r in self.replicas])

    @property
    def shape(self) -> str:
        """The fleet in words, e.g. ``4 replicas (least-outstanding)``; "" for one engine."""
        if self.prefill_replicas:
            return (
                f"disaggregated: {self.prefill_replicas} prefill + {len(self._back)} decode "
                f"replicas ({self.router})"
            )
        if len(self.replicas) > 1:
            return f"{len(self.replicas)} replicas ({self.router})"
        return ""

    def describe(self) -> str:
        """One line: the engine, and the fleet's shape when there is one."""
        what = self.config.label
        return f"{what}; {self.shape}" if self.shape else what

    # --- lifecycle -----------------------------------------------------------------------
    def build_app(self) -> web.Application:
        """The aiohttp application (routes, auth and error middleware, response headers)."""
        app = web.Application(
            middlewares=[self._error_middleware, self._auth_middleware],
            client_max_size=64 * 2**20,
        )
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
        self._runner = web.AppRunner(
            self.build_app(), handler_cancellation=True, shutdown_timeout=2.0, access_log=None
        )
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, host, port)
        await self._site.start()
        self.host = host
        self.port = self._site.port
        wall0 = loop.time()
        for rep in self.replicas:
            rep.start(wall0)
        return self.port

    async def stop(self) -> None:
        """Stop the engine loops, end every open stream, close the listener and connections."""
        for rep in self.replicas:
            await rep.stop()
        for s in list(self._streams):
            if s.transfer is not None:
                s.transfer.cancel()
            s.aborted = True
            s.event.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- requests ------------------------------------------------------------------------
    def _submit(
        self, prompt_tokens: int, max_tokens: int | None, ignore_eos: bool, *, chat: bool = True
    ) -> Stream:
        """Route a request to a replica and queue it there (raises HTTPError for 400 and 503)."""
        pool = self._front
        rep = pool[self._route_front.pick([r.engine for r in pool], self._routed)]
        eng = rep.engine
        if self.max_queue is not None and eng.num_waiting >= self.max_queue:
            rep.stats.rejected_503 += 1
            raise HTTPError(
                503,
                f"The server is overloaded: {eng.num_waiting} requests are waiting "
                f"(max_queue={self.max_queue}). Retry later.",
                "ServiceUnavailableError",
            )
        loop = asyncio.get_running_loop()
        now_sim = rep.sim_now()
        if eng.idle:
            eng.set_now(now_sim)
        stream = Stream(req=None, event=asyncio.Event(), arrival_wall_s=loop.time())
        stream.prompt_tokens = prompt_tokens
        split = {"output_target": 1} if self.prefill_replicas else {}
        try:
            req = eng.add_request(
                prompt_tokens,
                max_tokens,
                arrival_s=now_sim,
                payload=stream,
                ignore_eos=ignore_eos,
                **split,
            )
        except RequestRejected as exc:
            rep.stats.rejected_4xx += 1
            message, param = exc.message, exc.param
            if "maximum context length" in message:
                self._note_too_long(rep, prompt_tokens, max_tokens)
                if not chat:  # vLLM's completions wording: a prompt, not messages
                    message = message.replace("messages", "prompt")
                    param = "prompt" if param == "messages" else param
            raise HTTPError(exc.status, message, "BadRequestError", param) from None
        if self.prefill_replicas:
            mt = req.max_tokens
            target = mt if ignore_eos else rep.config.output_lengths.draw(mt, self._rng)
            stream.decode_target = max(1, target)
        stream.req = req
        stream.replica = rep
        self._routed += 1
        rep.routed += 1
        st = rep.stats
        st.requests_total += 1
        st.peak_waiting = max(st.peak_waiting, eng.num_waiting)
        self._streams.add(stream)
        rep.queued(stream)
        rep.wake()
        return stream

    def hand_off(self, stream: Stream, req: SimRequest, prefill: Replica) -> None:
        """After its first token, move a prefilled request's KV cache to a decode replica."""
        xfer_s = kv_transfer_s(prefill.config, req.prompt_tokens)
        self.kv_transfers_in_flight += 1
        loop = asyncio.get_running_loop()
        stream.req = None
        stream.transfer = loop.call_later(
            xfer_s * self.time_scale, self._arrive_decode, stream, req.max_tokens
        )

    def _arrive_decode(self, stream: Stream, max_tokens: int) -> None:
        """A KV cache arrived: queue its request on a decode replica, prompt already cached."""
        self.kv_transfers_in_flight -= 1
        stream.transfer = None
        if stream.aborted or stream.broken or stream not in self._streams:
            return
        pool = self._back
        rep = pool[self._route_back.pick([r.engine for r in pool], self._routed)]
        eng = rep.engine
        now_sim = rep.sim_now()
        if eng.idle:
            eng.set_now(now_sim)
        try:
            stream.req = eng.add_request(
                stream.prompt_tokens,
                max_tokens,
                arrival_s=now_sim,
                payload=stream,
                output_target=min(stream.decode_target, max_tokens),
                prefilled_at_s=now_sim,
            )
        except (RequestRejected, ValueError):  # cannot happen for a request prefill accepted
            stream.aborted = True
            stream.event.set()
            return
        stream.replica = rep
        rep.routed += 1
        rep.wake()

    def _note_too_long(self, rep: Replica, prompt_tokens: int, max_tokens: int | None) -> None:
        """Count a request refused for its length; warn at the 1st, 10th, 100th, … of them."""
        rep.stats.rejected_context += 1
        n = self.stats.rejected_context
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
        if stream.transfer is not None:
            stream.transfer.cancel()
            stream.transfer = None
            self.kv_transfers_in_flight -= 1
        rep = stream.replica
        if stream.req is not None and not stream.done and rep is not None:
            if stream.req.state in ("waiting", "running"):
                rep.engine.abort(stream.req)
            rep.stats.aborted += 1
            rep.metrics.success("abort").inc()

    # --- HTTP ----------------------------------------------------------------------------
    @web.middleware
    async def _error_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Unknown routes and methods answer OpenAI-shaped JSON, as vLLM's handler does."""
        try:
            resp: web.StreamResponse = await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return error_response(exc.status, exc.reason, exc.reason)
        return resp

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
        if request.content_type != "application/json":
            raise bad(UNSUPPORTED_MEDIA_TYPE)
        raw = await request.read()
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise bad(f"Invalid JSON in request body: {exc}") from None
        return check_body(body, self.served_model_name)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, chat=True)

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, chat=False)

    async def _handle(self, request: web.Request, *, chat: bool) -> web.StreamResponse:
        try:
            body = await self._parse(request)
            parts = chat_prompt_parts_of(body) if chat else completions_prompt_parts_of(body)
            mt = max_tokens(body)
            prompt_tokens = await count_tokens_yielding(*parts)
            stream = self._submit(prompt_tokens, mt, bool(body.get("ignore_eos", False)), chat=chat)
        except HTTPError as e:
            return error_response(e.status, e.message, e.err_type, e.param)
        return await self._respond(request, body, stream, prompt_tokens, chat=chat)

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
