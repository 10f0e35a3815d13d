"""The measuring client: one chat completion in, one :class:`~infphys.records.RequestRecord` out.

What is timed (seconds on the run's clock, ``time.perf_counter()`` minus the run's zero):

- ``sent_s``: just before the request's bytes go to the kernel on an open connection (wire
  stack; on aiohttp, just before the request is handed to aiohttp);
- ``chunk_times_s``: when each SSE event carrying content (``delta.content``, or a reasoning
  model's ``delta.reasoning_content``) arrived: on the wire stack the kernel's receive timestamp
  of the read that delivered it, so a busy client does not inflate it; on aiohttp, when the
  client read it. Events delivered by one read share one timestamp: on the wire stack the
  arrival of the read's last bytes. A prompt client reads each arrival on its own; when a busy
  one leaves several waiting in the socket, the kernel merges them and they all carry the latest
  time, so ``end_s`` stays exact while ``first_token_s`` can read late and gaps merge (the load
  generator's receive lag says by how much);
- ``first_token_s``: the first of those; ``end_s``: when ``data: [DONE]`` arrived (or the
  failure happened).

Token counts come from the final ``usage`` chunk, asked for with
``stream_options: {"include_usage": true}`` (``token_count_source="usage"``). A server that sends
no ``usage`` gets an estimate, flagged in reports: for a stream, completion tokens = content
chunks and prompt tokens = prompt characters / 4 (``token_count_source="chunks"``; exact for
servers that send one token per chunk, an undercount for those that batch tokens); for a JSON
body, both are characters / 4 (``"chars/4"``).

A non-streamed request (``stream=False``) has one "chunk", the
whole body: its TTFT equals its e2e, which is what its user experiences.

Definitions, and how other tools name them (they disagree):

- TTFT = first content chunk − send. vLLM bench: TTFT; aiperf: time_to_first_token;
  guidellm: time_to_first_token.
- ITL = the gaps between successive content chunks (a distribution over chunks). vLLM bench:
  ITL (the same); aiperf's inter_token_latency and guidellm's inter_token_latency are our
  TPOT, not this.
- TPOT = (e2e − TTFT) / (completion tokens − 1), one value per request. vLLM bench: TPOT;
  aiperf and guidellm: inter_token_latency.
- e2e = end − send. vLLM bench: E2EL; aiperf and guidellm: request_latency.

Errors never escape :meth:`ChatClient.send`: each is classified into one of
:data:`infphys.records.ERROR_CLASSES` (see :func:`classify_exception` and the HTTP rules in
:meth:`ChatClient.send`), and a request cancelled from outside (the end of a bounded run, Ctrl-C)
is marked ``incomplete`` before the cancellation goes on.

Timeouts (:class:`Timeouts`): ``connect_s`` bounds the TCP connect; ``read_s`` bounds every
silence — before the first byte of the response and between reads (a stalled server is a
``read_timeout``); ``total_s`` bounds the whole request (a server that trickles bytes forever is
a ``total_timeout``).

The bytes travel through a transport (:mod:`infphys.measure.transport`: the wire stack, aiohttp,
or an in-memory mock for tests); the client itself has one code path for all of them.

HTTP stack (``benchmarks/bench_client.py`` measures both on a 2-core machine over loopback):

- ``http://`` targets go through :mod:`infphys.measure._wire` (``http_stack="auto"``, the
  default): a lean HTTP/1.1 client on raw non-blocking sockets with the ``httptools`` parser,
  whose every read carries the kernel's receive timestamp. Against a server with an exact 50 ms
  delay at concurrency 64 it reads p50 0.05 ms high (the server itself delivers 50.025 ms), at
  0.76–0.94 of a bare aiohttp client's request rate.
- ``https://`` targets (hosted endpoints) go through aiohttp, since the wire client speaks no
  TLS; ``http_stack="aiohttp"`` forces it on any target, for comparison. Its timestamps are
  taken when a coroutine resumes, behind every callback queued on a half-busy event loop: on
  the same server a load generator on aiohttp reads p50 1.8 to 7.5 ms high, so these latencies
  carry the client's own delays.
- httpx is not a stack here: at concurrency 64, 0 ms server, 8-token answers it sends about 290
  requests/s with one shared ``AsyncClient`` where a bare aiohttp client sends about 5,000; a
  load generator that costs ten times the CPU per request becomes the bottleneck it measures.

SSE parsing is :mod:`infphys.measure._sse` (see there for why); time limits and error classes
are :mod:`infphys.measure._failures`.

Worked example (against the stub with a 50 ms delay and 8 tokens)::

    async with StubServer(StubConfig(delay_s=0.05)) as server:
        async with ChatClient(server.target()) as client:
            rec = await client.chat("hello there", max_tokens=8)
    # rec.status == "ok", rec.e2e_s ≈ 0.050, rec.completion_tokens == 8,
    # rec.token_count_source == "usage"
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from infphys._check import positive_int
from infphys._closing import AsyncClosing
from infphys.measure._failures import (
    ERROR_BODY_LIMIT_BYTES,
    MESSAGE_LIMIT_CHARS,
    Failure,
    Timeouts,
    classify_exception,
    classify_status,
    message_of,
    server_message,
)
from infphys.measure._sse import SSEParser, loads_json
from infphys.measure.prompts import estimate_tokens
from infphys.measure.target import Target
from infphys.measure.transport import HttpStack, Response, Transport, make_transport
from infphys.records import RequestRecord

__all__ = ["ChatClient", "HttpStack", "Timeouts", "classify_exception", "classify_status"]

_DRAIN_S = 0.5


class ChatClient(AsyncClosing):
    """Sends chat completions to one target and times them.

    Args:
        target: where to send.
        timeouts: per-request limits (:class:`Timeouts`).
        stream: stream with SSE (default) or ask for one JSON body.
        include_usage: send ``stream_options: {"include_usage": true}`` (turn off for a server
            that rejects the field; token counts then fall back to estimates).
        extra_body: fields merged into every request body (``temperature``, vLLM's
            ``ignore_eos``, …).
        clock_zero_s: the ``time.perf_counter()`` value that is time 0 of the run (default: now).
        max_connections: connection pool size (0: unlimited, so the load shape decides).
        http_stack: ``"auto"`` (default: infphys's wire client for ``http://`` targets, with
            kernel receive timestamps on Linux; aiohttp for ``https://`` and on Windows),
            ``"wire"`` or ``"aiohttp"`` (:func:`infphys.measure.transport.make_transport`).
        transport: send through this :class:`~infphys.measure.transport.Transport` instead
            (e.g. a :class:`~infphys.measure.transport.MockTransport` in tests);
            ``http_stack`` is then ignored.
    """

    def __init__(
        self,
        target: Target,
        *,
        timeouts: Timeouts | None = None,
        stream: bool = True,
        include_usage: bool = True,
        extra_body: Mapping[str, Any] | None = None,
        clock_zero_s: float | None = None,
        max_connections: int = 0,
        http_stack: HttpStack = "auto",
        transport: Transport | None = None,
    ) -> None:
        if not isinstance(target, Target):
            raise ValueError(f"target must be a Target (got {type(target).__name__})")
        if max_connections != 0:
            positive_int("max_connections", max_connections)
        self.target = target
        self.timeouts = timeouts or Timeouts()
        self.stream = bool(stream)
        self.include_usage = bool(include_usage)
        self.extra_body: dict[str, Any] = dict(extra_body or {})
        self.clock_zero_s = time.perf_counter() if clock_zero_s is None else clock_zero_s
        self.max_connections = max_connections
        self.transport: Transport = transport or make_transport(
            target.chat_url, http_stack, self.timeouts, max_connections
        )
        self._headers = target.headers()
        self._chat_url = target.chat_url
        parts = urlsplit(self._chat_url)
        self._chat_path = parts.path + (f"?{parts.query}" if parts.query else "")

    @property
    def http_client(self) -> str:
        """Which HTTP stack sends the requests, and how arrivals are timed (for run headers)."""
        return self.transport.description

    # -- session -----------------------------------------------------------------------------

    async def __aenter__(self) -> ChatClient:
        self.open()
        return self

    def open(self) -> None:
        """Create the connection pool (inside a running event loop); idempotent."""
        self.transport.open()

    async def close(self) -> None:
        await self.transport.close()

    def take_receive_lags_s(self) -> list[float]:
        """Seconds between the kernel receiving each read and the client getting to it, since
        the last call (the wire transport with kernel timestamps only; else empty)."""
        return self.transport.take_receive_lags_s()

    def now_s(self) -> float:
        """Seconds since the run's zero."""
        return time.perf_counter() - self.clock_zero_s

    # -- requests ----------------------------------------------------------------------------

    def payload(self, prompt: str, max_tokens: int) -> bytes:
        """The JSON body of one request."""
        body: dict[str, Any] = {
            "model": self.target.model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens,
        }
        if self.stream:
            body["stream"] = True
            if self.include_usage:
                body["stream_options"] = {"include_usage": True}
        body.update(self.extra_body)
        return json.dumps(body, separators=(",", ":")).encode()

    async def chat(
        self,
        prompt: str,
        *,
        max_tokens: int = 64,
        request_id: int = 0,
        labels: Mapping[str, Any] | None = None,
        warmup: bool = False,
    ) -> RequestRecord:
        """Send one request and return its record (never raises for a failed request)."""
        positive_int("max_tokens", max_tokens)
        rec = RequestRecord(
            request_id=request_id, sent_s=self.now_s(), labels=dict(labels or {}), warmup=warmup
        )
        return await self.send(rec, prompt, max_tokens)

    async def send(self, rec: RequestRecord, prompt: str, max_tokens: int) -> RequestRecord:
        """Fill ``rec`` in place with what happened to one request, and return it.

        Classification: a non-200 status is ``http_429``/``http_5xx``/``http_4xx`` with the
        server's message; a 200 stream must end with ``data: [DONE]`` (else ``no_done``), carry
        only SSE ``data``/``event``/``id``/``retry`` lines (else ``malformed_sse``) whose data is
        JSON (else ``malformed_json``) without an ``error`` object (else ``stream_error_event``);
        a 200 non-SSE body must be a JSON chat completion (else ``malformed_json``). Transport
        errors go through :func:`classify_exception`; the ``total_s`` limit is
        ``total_timeout``.

        Raises:
            asyncio.CancelledError: after marking ``rec`` incomplete, if cancelled from outside.
        """
        self.open()
        body = self.payload(prompt, max_tokens)
        t0 = self.clock_zero_s
        perf = time.perf_counter
        deadline = asyncio.timeout(self.timeouts.total_s)
        rec.sent_s = perf() - t0
        try:
            async with deadline:
                await self._exchange(rec, body)
            if rec.status == "ok":
                self._count_tokens(rec, prompt)
        except asyncio.CancelledError:
            rec.status = "incomplete"
            rec.error_class = None
            rec.error_message = "cancelled before it finished (end of a bounded run)"
            if rec.end_s is None:
                rec.end_s = perf() - t0
            raise
        except Failure as f:
            if rec.end_s is None:
                rec.end_s = perf() - t0
            self._fail(rec, f.error_class, f.message)
        except Exception as exc:
            rec.end_s = perf() - t0
            if deadline.expired():
                cls = "total_timeout"
                msg = f"no complete answer within total_s={self.timeouts.total_s:g} s"
            else:
                cls = classify_exception(exc)
                msg = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                if cls == "read_timeout":
                    msg = f"no data for read_s={self.timeouts.read_s:g} s ({msg})"
            self._fail(rec, cls, msg)
        return rec

    async def _exchange(self, rec: RequestRecord, body: bytes) -> None:
        """One POST through the transport, its answer read into ``rec``."""
        t0 = self.clock_zero_s
        resp = await self.transport.post(self._chat_path, body, self._headers)
        try:
            rec.sent_s = resp.sent_s - t0
            rec.http_status = resp.status
            if resp.status != 200:
                raw = await resp.read(ERROR_BODY_LIMIT_BYTES)
                rec.end_s = time.perf_counter() - t0
                self._http_failure(rec, resp.status, raw, resp.headers.get("retry-after"))
                return
            if self.stream and resp.content_type == "text/event-stream":
                await self._read_stream(rec, resp)
            else:
                buf = bytearray()
                last_s = time.perf_counter()
                async for data, arrived_s in resp:
                    buf += data
                    last_s = arrived_s
                self._parse_body(rec, bytes(buf), last_s - t0, resp.content_type)
        finally:
            resp.release()

    def _http_failure(
        self, rec: RequestRecord, status: int, raw: bytes, retry_after: str | None
    ) -> None:
        msg = f"HTTP {status}: {server_message(raw)}"
        if retry_after:
            msg += f" (Retry-After: {retry_after})"
        self._fail(rec, classify_status(status), msg)

    def _fail(self, rec: RequestRecord, error_class: str, message: str) -> None:
        rec.status = "failed"
        rec.error_class = error_class
        rec.error_message = self.target.redact(message)[:MESSAGE_LIMIT_CHARS]

    async def _read_stream(self, rec: RequestRecord, pieces: Response) -> None:
        """Read an SSE body: each piece is the bytes of one read and their arrival time."""
        parser = SSEParser()
        t0 = self.clock_zero_s
        times = rec.chunk_times_s
        loads = loads_json
        done = False
        async for data, arrived_s in pieces:
            now = arrived_s - t0
            for ev in parser.feed(data):
                payload = ev.data
                if payload == "[DONE]":
                    done = True
                    rec.end_s = now
                    break
                if ev.event == "error":
                    raise Failure("stream_error_event", f"error event: {payload[:300]}")
                try:
                    obj = loads(payload)
                except ValueError:
                    raise Failure(
                        "malformed_json", f"SSE data is not JSON: {payload[:200]!r}"
                    ) from None
                if not isinstance(obj, dict):
                    raise Failure("malformed_json", f"SSE data is not an object: {payload[:200]!r}")
                choices = obj.get("choices")
                if choices:
                    c0 = choices[0]
                    delta = c0.get("delta")
                    if delta and (
                        delta.get("content")
                        or delta.get("reasoning_content")
                        or delta.get("reasoning")
                    ):
                        if rec.first_token_s is None:
                            rec.first_token_s = now
                        times.append(now)
                    fr = c0.get("finish_reason")
                    if fr:
                        rec.finish_reason = fr
                elif obj.get("error") or obj.get("object") == "error":
                    # OpenAI and vLLM send {"error": {...}}; older vLLM {"object": "error", ...}.
                    raise Failure(
                        "stream_error_event",
                        f"error event in a 200 stream: {message_of(obj)}",
                    )
                usage = obj.get("usage")
                if usage:
                    self._usage(rec, usage)
            if parser.unknown_fields:
                raise Failure(
                    "malformed_sse",
                    f"line with unknown SSE field {parser.unknown_fields[0]!r}",
                )
            if done:
                break
        if done:
            await pieces.finish(_DRAIN_S)
            return
        rec.end_s = time.perf_counter() - t0
        pending = parser.close()
        if parser.unknown_fields:
            raise Failure(
                "malformed_sse", f"line with unknown SSE field {parser.unknown_fields[0]!r}"
            )
        tail = " (an unterminated event was pending)" if pending else ""
        raise Failure("no_done", f"stream ended without data: [DONE]{tail}")

    def _parse_body(self, rec: RequestRecord, raw: bytes, now: float, ctype: str) -> None:
        """A non-streamed answer: one JSON chat completion that arrived (in full) at ``now``."""
        rec.end_s = now
        try:
            obj = json.loads(raw)
        except ValueError:
            snippet = raw[:120].decode("utf-8", errors="replace")
            raise Failure(
                "malformed_json",
                f"200 body is not JSON ({ctype or 'no content type'}): {snippet!r}",
            ) from None
        if not isinstance(obj, dict):
            raise Failure("malformed_json", "200 body is not a JSON object")
        if obj.get("error"):
            raise Failure("stream_error_event", f"error object in a 200 body: {message_of(obj)}")
        choices = obj.get("choices")
        if not choices or not isinstance(choices, list):
            raise Failure("malformed_json", "200 body has no choices")
        c0 = choices[0]
        message = c0.get("message") or {}
        if message.get("content") or message.get("reasoning_content"):
            rec.first_token_s = now
            rec.chunk_times_s.append(now)
        rec.finish_reason = c0.get("finish_reason")
        usage = obj.get("usage")
        if usage:
            self._usage(rec, usage)
        if rec.token_count_source != "usage":
            text = message.get("content") or message.get("reasoning_content") or ""
            rec.completion_tokens = estimate_tokens(text) if text else 0
            rec.token_count_source = "chars/4"

    @staticmethod
    def _usage(rec: RequestRecord, usage: Any) -> None:
        if not isinstance(usage, dict):
            return
        p, c = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if isinstance(p, int) and isinstance(c, int):
            rec.prompt_tokens = p
            rec.completion_tokens = c
            rec.token_count_source = "usage"

    @staticmethod
    def _count_tokens(rec: RequestRecord, prompt: str) -> None:
        if rec.token_count_source == "usage":
            return
        rec.prompt_tokens = estimate_tokens(prompt)
        if rec.token_count_source != "chars/4":
            rec.completion_tokens = len(rec.chunk_times_s)
            rec.token_count_source = "chunks"
