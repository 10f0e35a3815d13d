"""A small OpenAI-compatible server on loopback, with a fixed delay and injectable faults.

For tests, benchmarks and learners who want to see what a client does when a server misbehaves.
It is not the simulator (``infphys.sim`` prices each step with the roofline); it answers every
request after ``delay_s`` with ``tokens`` tokens spaced ``token_gap_s`` apart, so its latency is
known exactly: with ``delay_s=0.050`` and no gap, every request's true end-to-end time is 50 ms.

Endpoints: ``POST /v1/chat/completions`` (streamed as SSE with ``stream: true``, including the
``usage`` chunk when ``stream_options.include_usage`` is set; a JSON body otherwise),
``GET /v1/models``, ``GET /v1/health/ready`` and ``GET /health``, and Prometheus metrics in
vLLM's names on ``/metrics`` or NIM 1.x's names on ``/v1/metrics`` (``metrics_style``).

Faults (``fault``, applied to every ``fault_every``-th chat request):

====================  ==========================================================================
``http_500``          500 with an OpenAI-style ``{"error": {...}}`` body
``http_429``          429 with ``Retry-After: retry_after_s``
``http_503``          503 (e.g. a model still loading)
``stall``             accept the request, then send nothing for ``stall_s`` (a read timeout)
``close_mid_stream``  send ``fault_after_tokens`` tokens, then drop the connection
``malformed_sse``     send ``fault_after_tokens`` tokens, then a line that is no SSE field
``non_json``          200 with an HTML body instead of JSON or SSE
``error_event``       a 200 stream carrying ``data: {"error": {...}}`` after a few tokens
``trickle``           a token every ``trickle_gap_s`` for up to ``stall_s`` (a total timeout)
``no_done``           a complete stream that ends without ``data: [DONE]``
====================  ==========================================================================

Prompt tokens in ``usage`` are the whitespace-separated words of the messages (the counting of
:mod:`infphys.measure.prompts`). With ``api_key`` set, requests without that bearer token get 401.
A request for a model other than ``model`` gets vLLM's 404 body.

Use it in a test (same event loop) or from a notebook or script (a background thread)::

    async with StubServer(StubConfig(delay_s=0.05)) as server:
        target = server.target()

    with StubServer(StubConfig(fault="http_429")) as server:
        ...

or from a shell: ``infphys stub --delay-ms 50 --tokens 8`` prints its URL and serves until
Ctrl-C.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from aiohttp import web

from infphys._check import non_negative, non_negative_int, positive, positive_int
from infphys._closing import AsyncClosing
from infphys.measure.prompts import WORDS
from infphys.measure.target import DEFAULT_MODEL, Target

__all__ = ["FAULTS", "StubConfig", "StubServer"]

#: The fault modes the stub can inject.
FAULTS: tuple[str, ...] = (
    "http_500",
    "http_429",
    "http_503",
    "stall",
    "close_mid_stream",
    "malformed_sse",
    "non_json",
    "error_event",
    "trickle",
    "no_done",
)


@dataclass(frozen=True, slots=True)
class StubConfig:
    """How the stub answers.

    Attributes:
        model: the one model it serves (others get 404).
        delay_s: wait before the response headers and first token, seconds.
        tokens: completion tokens per answer (fewer if the request's ``max_tokens`` is smaller,
            with ``finish_reason="length"``).
        token_gap_s: gap between successive tokens, seconds (0: all tokens in one write).
        fault: one of :data:`FAULTS`, or None.
        fault_every: inject the fault into every n-th chat request (1: all).
        retry_after_s: the ``Retry-After`` header of ``http_429``, seconds.
        fault_after_tokens: tokens sent before a mid-stream fault.
        trickle_gap_s: gap between tokens of ``trickle``, seconds.
        stall_s: how long ``stall`` and ``trickle`` last before giving up, seconds.
        api_key: bearer token to require (None: no authentication).
        metrics_style: ``vllm`` (on ``/metrics``), ``nim`` (on ``/v1/metrics``) or ``none``.
        kv_capacity_requests: requests in flight that fill the reported KV cache to 1.0.
        ready: False makes ``/v1/health/ready`` answer 503 (a model still loading).
    """

    model: str = DEFAULT_MODEL
    delay_s: float = 0.0
    tokens: int = 8
    token_gap_s: float = 0.0
    fault: str | None = None
    fault_every: int = 1
    retry_after_s: int = 1
    fault_after_tokens: int = 2
    trickle_gap_s: float = 0.05
    stall_s: float = 30.0
    api_key: str | None = None
    metrics_style: Literal["vllm", "nim", "none"] = "vllm"
    kv_capacity_requests: int = 64
    ready: bool = True

    def __post_init__(self) -> None:
        non_negative("delay_s", self.delay_s)
        positive_int("tokens", self.tokens)
        non_negative("token_gap_s", self.token_gap_s)
        if self.fault is not None and self.fault not in FAULTS:
            allowed = ", ".join(FAULTS)
            raise ValueError(f"fault must be one of {allowed} or None (got {self.fault!r})")
        positive_int("fault_every", self.fault_every)
        non_negative_int("retry_after_s", self.retry_after_s)
        non_negative_int("fault_after_tokens", self.fault_after_tokens)
        positive("trickle_gap_s", self.trickle_gap_s)
        positive("stall_s", self.stall_s)
        if self.metrics_style not in ("vllm", "nim", "none"):
            raise ValueError(
                f"metrics_style must be vllm, nim or none (got {self.metrics_style!r})"
            )
        positive_int("kv_capacity_requests", self.kv_capacity_requests)

    def __repr__(self) -> str:
        d = asdict(self)
        d["api_key"] = "<set>" if self.api_key else None
        return "StubConfig(" + ", ".join(f"{k}={v!r}" for k, v in d.items()) + ")"


def _error_body(message: str, kind: str, code: int) -> bytes:
    return json.dumps({"error": {"message": message, "type": kind, "code": code}}).encode()


_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}


#: ``{"content": " word"}, "finish_reason": null}]}`` and the blank line, for every word.
_TOKEN_TAILS: tuple[bytes, ...] = tuple(
    json.dumps({"content": " " + w}, separators=(",", ":")).encode()
    + b',"finish_reason":null}]}\n\n'
    for w in WORDS
)


@dataclass(slots=True)
class _Answer:
    """The SSE lines of one answer, rendered from templates (the stub must outpace clients)."""

    id: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    finish: str
    head: bytes = field(init=False)

    def __post_init__(self) -> None:
        self.head = (
            f'data: {{"id":"{self.id}","object":"chat.completion.chunk",'
            f'"created":{int(time.time())},"model":{json.dumps(self.model)},'
            '"choices":[{"index":0,"delta":'
        ).encode()

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return (
            self.head
            + json.dumps(delta, separators=(",", ":")).encode()
            + b',"finish_reason":'
            + json.dumps(finish).encode()
            + b"}]}\n\n"
        )

    def role(self) -> bytes:
        return self._chunk({"role": "assistant", "content": ""})

    def token(self, k: int) -> bytes:
        return self.head + _TOKEN_TAILS[k % len(_TOKEN_TAILS)]

    def finish_chunk(self) -> bytes:
        return self._chunk({}, self.finish)

    def usage(self) -> bytes:
        obj = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self.model,
            "choices": [],
            "usage": self.usage_dict(),
        }
        return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"

    def usage_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }

    def body(self) -> bytes:
        text = "".join(" " + WORDS[k % len(WORDS)] for k in range(self.completion_tokens))
        obj = {
            "id": self.id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": self.finish,
                }
            ],
            "usage": self.usage_dict(),
        }
        return json.dumps(obj).encode()


class StubServer(AsyncClosing):
    """The stub on ``127.0.0.1`` and a free port; ``async with`` or (in a thread) ``with``."""

    def __init__(self, config: StubConfig | None = None, *, host: str = "127.0.0.1") -> None:
        self.config = config or StubConfig()
        self.host = host
        self.port: int | None = None
        self.requests_total = 0
        self.in_flight = 0
        self.prompt_tokens_total = 0
        self.generation_tokens_total = 0
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None

    # -- addresses ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("the stub server is not running")
        return f"http://{self.host}:{self.port}"

    def target(self, **overrides: Any) -> Target:
        """A :class:`Target` pointing at this server (its model and key)."""
        values: dict[str, Any] = {
            "base_url": self.base_url,
            "model": self.config.model,
            "api_key": self.config.api_key,
        }
        values.update(overrides)
        return Target(**values)

    # -- lifecycle in the current event loop -------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/v1/health/ready", self._ready)
        app.router.add_get("/health", self._ready)
        if self.config.metrics_style == "vllm":
            app.router.add_get("/metrics", self._metrics)
        elif self.config.metrics_style == "nim":
            app.router.add_get("/v1/metrics", self._metrics)
        return app

    async def start(self) -> StubServer:
        runner = web.AppRunner(
            self._app(), access_log=None, handle_signals=False, shutdown_timeout=0.2
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, 0)
        await site.start()
        addresses = runner.addresses
        if not addresses:
            await runner.cleanup()
            raise RuntimeError("stub server did not bind a socket")
        self.port = int(addresses[0][1])
        self._runner = runner
        return self

    async def close(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> StubServer:
        return await self.start()

    # -- lifecycle in a background thread -----------------------------------------------------

    def __enter__(self) -> StubServer:
        ready = threading.Event()
        errors: list[BaseException] = []

        async def main() -> None:
            self._stop_event = asyncio.Event()
            try:
                await self.start()
            except BaseException as exc:
                errors.append(exc)
                ready.set()
                return
            ready.set()
            try:
                await self._stop_event.wait()
            finally:
                await self.close()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(main())
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="infphys-stub", daemon=True)
        self._thread.start()
        if not ready.wait(timeout=10.0):
            raise RuntimeError("stub server did not start within 10 s")
        if errors:
            raise errors[0]
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._loop is not None and self._stop_event is not None:
            self._loop.call_soon_threadsafe(self._stop_event.set)
        if self._thread is not None:
            self._thread.join(timeout=10.0)
            self._thread = None

    # -- handlers ----------------------------------------------------------------------------

    def _authorised(self, request: web.Request) -> bool:
        key = self.config.api_key
        return key is None or request.headers.get("Authorization") == f"Bearer {key}"

    def _unauthorised(self) -> web.Response:
        return web.Response(
            status=401,
            body=_error_body("stub: missing or wrong API key", "AuthenticationError", 401),
            content_type="application/json",
        )

    async def _models(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return self._unauthorised()
        data = [{"id": self.config.model, "object": "model", "owned_by": "infphys-stub"}]
        return web.json_response({"object": "list", "data": data})

    async def _ready(self, request: web.Request) -> web.Response:
        if not self.config.ready:
            return web.json_response(
                {"object": "health.response", "message": "Service is not ready."}, status=503
            )
        return web.json_response({"object": "health.response", "message": "Service is ready."})

    async def _metrics(self, request: web.Request) -> web.Response:
        c = self.config
        kv = min(1.0, self.in_flight / c.kv_capacity_requests)
        label = f'{{model_name="{c.model}"}}'
        if c.metrics_style == "vllm":
            lines = [
                "# HELP vllm:num_requests_running Number of requests in model execution batches.",
                "# TYPE vllm:num_requests_running gauge",
                f"vllm:num_requests_running{label} {float(self.in_flight)}",
                "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.",
                "# TYPE vllm:num_requests_waiting gauge",
                f"vllm:num_requests_waiting{label} 0.0",
                "# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.",
                "# TYPE vllm:kv_cache_usage_perc gauge",
                f"vllm:kv_cache_usage_perc{label} {kv}",
                "# HELP vllm:num_preemptions_total Cumulative number of preemption.",
                "# TYPE vllm:num_preemptions_total counter",
                f"vllm:num_preemptions_total{label} 0.0",
                "# HELP vllm:prompt_tokens_total Number of prefill tokens processed.",
                "# TYPE vllm:prompt_tokens_total counter",
                f"vllm:prompt_tokens_total{label} {float(self.prompt_tokens_total)}",
                "# HELP vllm:generation_tokens_total Number of generation tokens processed.",
                "# TYPE vllm:generation_tokens_total counter",
                f"vllm:generation_tokens_total{label} {float(self.generation_tokens_total)}",
            ]
        else:
            lines = [
                "# HELP gpu_cache_usage_perc GPU KV-cache usage. 1 means 100 percent usage",
                "# TYPE gpu_cache_usage_perc gauge",
                f"gpu_cache_usage_perc{label} {kv}",
                "# HELP num_requests_running Number of requests currently running on GPU",
                "# TYPE num_requests_running gauge",
                f"num_requests_running{label} {float(self.in_flight)}",
                "# HELP num_requests_waiting Number of requests waiting to be processed",
                "# TYPE num_requests_waiting gauge",
                f"num_requests_waiting{label} 0.0",
                "# HELP num_request_max Max number of concurrently running requests",
                "# TYPE num_request_max gauge",
                f"num_request_max{label} {float(c.kv_capacity_requests)}",
                "# HELP prompt_tokens_total Number of prefill tokens processed",
                "# TYPE prompt_tokens_total counter",
                f"prompt_tokens_total{label} {float(self.prompt_tokens_total)}",
                "# HELP generation_tokens_total Number of generation tokens processed",
                "# TYPE generation_tokens_total counter",
                f"generation_tokens_total{label} {float(self.generation_tokens_total)}",
            ]
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            return self._unauthorised()
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("body is not an object")
        except ValueError:
            return web.Response(
                status=400,
                body=_error_body("stub: request body is not a JSON object", "BadRequestError", 400),
                content_type="application/json",
            )
        c = self.config
        model = body.get("model")
        if model != c.model:
            return web.Response(
                status=404,
                body=_error_body(f"The model `{model}` does not exist.", "NotFoundError", 404),
                content_type="application/json",
            )
        self.requests_total += 1
        fault = c.fault if c.fault and self.requests_total % c.fault_every == 0 else None
        self.in_flight += 1
        try:
            return await self._answer(request, body, fault)
        except ConnectionResetError:
            # The client went away (it timed out, or was cancelled): nothing left to send.
            raise asyncio.CancelledError from None
        finally:
            self.in_flight -= 1

    async def _answer(
        self, request: web.Request, body: dict[str, Any], fault: str | None
    ) -> web.StreamResponse:
        c = self.config
        if fault in ("http_500", "http_429", "http_503"):
            status = int(fault[-3:])
            messages = {
                500: "stub: internal server error",
                429: "stub: rate limit exceeded, retry later",
                503: "stub: service unavailable (model loading)",
            }
            headers = {"Retry-After": str(c.retry_after_s)} if status == 429 else {}
            return web.Response(
                status=status,
                body=_error_body(messages[status], "ServerError", status),
                content_type="application/json",
                headers=headers,
            )
        if fault == "stall":
            await asyncio.sleep(c.stall_s)
            return web.Response(status=504, text="stub: stalled")
        if c.delay_s > 0:
            await asyncio.sleep(c.delay_s)
        if fault == "non_json":
            return web.Response(
                status=200,
                text="<html><body>upstream proxy page</body></html>",
                content_type="text/html",
            )

        prompt_tokens = 0
        for m in body.get("messages") or []:
            content = m.get("content") if isinstance(m, dict) else None
            if isinstance(content, str):
                prompt_tokens += len(content.split())
        asked = body.get("max_tokens") or body.get("max_completion_tokens")
        n = min(c.tokens, asked) if isinstance(asked, int) and asked > 0 else c.tokens
        finish = "length" if isinstance(asked, int) and n >= asked else "stop"
        ans = _Answer(f"chatcmpl-stub-{self.requests_total}", c.model, prompt_tokens, n, finish)
        self.prompt_tokens_total += prompt_tokens
        self.generation_tokens_total += n

        if not body.get("stream"):
            return web.Response(body=ans.body(), content_type="application/json")

        opts = body.get("stream_options")
        want_usage = isinstance(opts, dict) and bool(opts.get("include_usage"))
        tail = ans.finish_chunk() + (ans.usage() if want_usage else b"")
        if fault != "no_done":
            tail += b"data: [DONE]\n\n"
        if fault is None and c.token_gap_s <= 0:
            # Everything at once: one body with a length, the cheapest answer for the server.
            payload = ans.role() + b"".join(ans.token(k) for k in range(n)) + tail
            return web.Response(body=payload, headers=_SSE_HEADERS)
        resp = web.StreamResponse(headers=_SSE_HEADERS)
        await resp.prepare(request)

        if fault == "trickle":
            deadline = time.monotonic() + c.stall_s
            await resp.write(ans.role())
            k = 0
            while time.monotonic() < deadline:
                await resp.write(ans.token(k))
                k += 1
                await asyncio.sleep(c.trickle_gap_s)
            return resp

        if fault in ("close_mid_stream", "malformed_sse", "error_event"):
            head = ans.role() + b"".join(ans.token(k) for k in range(c.fault_after_tokens))
            await resp.write(head)
            if fault == "close_mid_stream":
                await asyncio.sleep(0.01)
                transport = request.transport
                if transport is not None:
                    transport.abort()
                raise asyncio.CancelledError
            if fault == "malformed_sse":
                await resp.write(b"this line is not an SSE field\n\n")
            else:
                err = {"error": {"message": "stub: engine failed mid-stream", "code": 500}}
                await resp.write(b"data: " + json.dumps(err).encode() + b"\n\n")
            await resp.write(b"data: [DONE]\n\n")
            await resp.write_eof()
            return resp

        if c.token_gap_s <= 0:
            await resp.write(ans.role() + b"".join(ans.token(k) for k in range(n)) + tail)
        else:
            await resp.write(ans.role() + ans.token(0))
            for k in range(1, n):
                await asyncio.sleep(c.token_gap_s)
                await resp.write(ans.token(k))
            await resp.write(tail)
        await resp.write_eof()
        return resp
