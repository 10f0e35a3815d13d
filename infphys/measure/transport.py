"""The transport interface of the measuring client: one POST in, a timed response out.

:class:`~infphys.measure.client.ChatClient` builds request bodies and reads answers (SSE or
JSON, token counts, error classes); a *transport* moves the bytes and says when each piece
arrived. The boundary is small (modelled on httpx's ``_transports/base.py``):

- :meth:`Transport.post` sends one ``POST`` to a path of the target's origin and returns a
  :class:`Response` once its status and headers are in;
- a :class:`Response` has ``status``, ``headers`` (lower-case names), ``content_type``,
  ``sent_s`` (``time.perf_counter()`` just before the request went out) and is an async
  iterator of ``(bytes, arrival time)``, one item per read, plus ``read(limit)``,
  ``finish(limit_s)`` (read past the end of a stream so the connection can be reused) and
  ``release()``.

Three transports implement it:

- :class:`WireTransport`: infphys's HTTP/1.1 client (:mod:`infphys.measure._wire`), every read
  stamped with the kernel's receive time (``http://`` only; the default there);
- :class:`AiohttpTransport`: aiohttp, stamped when the coroutine resumes (``https://``, Windows,
  or ``http_stack="aiohttp"`` for comparison);
- :class:`MockTransport`: scripted in-memory responses whose pieces arrive at stated offsets
  after the send, for tests (no socket, no clock but the offsets).

:func:`make_transport` is the one place where a stack is chosen for a target.

Worked example: a :class:`MockTransport` answering every request with three SSE pieces at
+10, +20 and +30 ms, the last one holding ``data: [DONE]``, makes ``ChatClient.chat`` return a
record with TTFT 10 ms and e2e 30 ms, exactly (``tests/test_measure_transport.py``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol
from urllib.parse import urlsplit

import aiohttp
import httptools

from infphys.measure._failures import Timeouts
from infphys.measure._wire import KERNEL_TIMESTAMPS, WIRE_SUPPORTED, WireClient, WireResponse

__all__ = [
    "AiohttpTransport",
    "HttpStack",
    "MockResponse",
    "MockTransport",
    "Response",
    "Transport",
    "WireTransport",
    "make_transport",
]

#: Which HTTP client sends the requests: ``"wire"`` (infphys's own, kernel receive timestamps,
#: ``http://`` only), ``"aiohttp"``, or ``"auto"`` (wire for ``http://``, aiohttp for
#: ``https://``).
HttpStack = Literal["auto", "wire", "aiohttp"]


class Response(Protocol):
    """A response whose status and headers are in; the body comes piece by piece."""

    @property
    def status(self) -> int:
        """The HTTP status code."""
        ...

    @property
    def headers(self) -> Mapping[str, str]:
        """Response headers, names in lower case."""
        ...

    @property
    def sent_s(self) -> float:
        """``time.perf_counter()`` just before the request went out."""
        ...

    @property
    def content_type(self) -> str:
        """The media type, lower case, without parameters (``text/event-stream``)."""
        ...

    def __aiter__(self) -> AsyncIterator[tuple[bytes, float]]: ...

    async def read(self, limit_bytes: int) -> bytes:
        """The body, up to ``limit_bytes``."""
        ...

    async def finish(self, limit_s: float) -> None:
        """Read (and drop) the rest of the body for up to ``limit_s``, then release."""
        ...

    def release(self) -> None:
        """Give the connection back (finished body) or close it."""
        ...


class Transport(Protocol):
    """Moves requests to one origin and times the answers."""

    @property
    def description(self) -> str:
        """Which stack sends and how arrivals are timed (stored in run headers)."""
        ...

    def open(self) -> None:
        """Create the connection pool (inside a running event loop); idempotent."""
        ...

    async def post(self, path: str, body: bytes, headers: Mapping[str, str]) -> Response:
        """Send one ``POST`` to ``path``; return once the status and headers are in."""
        ...

    def take_receive_lags_s(self) -> list[float]:
        """Seconds between the kernel receiving each read and the client reading it, since
        the last call (empty where the stack has no kernel timestamps)."""
        ...

    async def close(self) -> None: ...


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


# -- the wire stack ---------------------------------------------------------------------------


class WireTransport:
    """infphys's HTTP/1.1 client with kernel receive timestamps (``http://`` only)."""

    def __init__(self, base_url: str, timeouts: Timeouts, max_connections: int = 0) -> None:
        if urlsplit(base_url).scheme != "http":
            raise ValueError(f"base_url: the wire stack needs an http:// URL (got {base_url!r})")
        self.base_url = _origin(base_url)
        self.timeouts = timeouts
        self.max_connections = max_connections
        self._wire: WireClient | None = None

    @property
    def description(self) -> str:
        kernel = KERNEL_TIMESTAMPS if self._wire is None else self._wire.kernel_timestamps
        stamps = "kernel receive timestamps" if kernel else "reader-callback stamps"
        return f"infphys wire (HTTP/1.1, httptools {httptools.__version__}, {stamps})"

    def open(self) -> None:
        if self._wire is None:
            self._wire = WireClient(
                self.base_url,
                connect_s=self.timeouts.connect_s,
                read_s=self.timeouts.read_s,
                max_connections=self.max_connections,
            )

    async def post(self, path: str, body: bytes, headers: Mapping[str, str]) -> WireResponse:
        if self._wire is None:
            self.open()
        assert self._wire is not None
        return await self._wire.post(path, body, headers)

    def take_receive_lags_s(self) -> list[float]:
        return self._wire.take_receive_lags_s() if self._wire is not None else []

    async def close(self) -> None:
        if self._wire is not None:
            wire, self._wire = self._wire, None
            await wire.close()


# -- the aiohttp stack ------------------------------------------------------------------------


class AiohttpResponse:
    """aiohttp's response as a :class:`Response`: pieces stamped when the coroutine resumes."""

    __slots__ = ("_resp", "content_type", "headers", "sent_s", "status")

    def __init__(self, resp: aiohttp.ClientResponse, sent_s: float) -> None:
        self._resp = resp
        self.sent_s = sent_s
        self.status = resp.status
        self.headers = {k.lower(): v for k, v in resp.headers.items()}
        self.content_type = resp.content_type or ""

    def __aiter__(self) -> AiohttpResponse:
        return self

    async def __anext__(self) -> tuple[bytes, float]:
        data = await self._resp.content.readany()
        if not data:
            raise StopAsyncIteration
        return data, time.perf_counter()

    async def read(self, limit_bytes: int) -> bytes:
        return await self._resp.content.read(limit_bytes)

    async def finish(self, limit_s: float) -> None:
        content = self._resp.content
        try:
            async with asyncio.timeout(limit_s):
                while not content.at_eof() and await content.readany():
                    pass
        except (TimeoutError, aiohttp.ClientError, OSError):
            pass
        self.release()

    def release(self) -> None:
        self._resp.release()


class AiohttpTransport:
    """aiohttp's client session (any scheme; arrivals stamped in Python)."""

    def __init__(self, base_url: str, timeouts: Timeouts, max_connections: int = 0) -> None:
        self.base_url = _origin(base_url)
        self.timeouts = timeouts
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    @property
    def description(self) -> str:
        return f"aiohttp {aiohttp.__version__}"

    def open(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.max_connections, ttl_dns_cache=300)
            timeout = aiohttp.ClientTimeout(
                total=None, sock_connect=self.timeouts.connect_s, sock_read=self.timeouts.read_s
            )
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=timeout, auto_decompress=True
            )

    async def post(self, path: str, body: bytes, headers: Mapping[str, str]) -> AiohttpResponse:
        self.open()
        assert self._session is not None
        sent_s = time.perf_counter()
        resp = await self._session.post(self.base_url + path, data=body, headers=dict(headers))
        return AiohttpResponse(resp, sent_s)

    def take_receive_lags_s(self) -> list[float]:
        return []

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


# -- in memory, for tests ---------------------------------------------------------------------


@dataclass(frozen=True)
class MockResponse:
    """A scripted answer: ``pieces`` are ``(bytes, seconds after the send)``, in order."""

    status: int = 200
    headers: Mapping[str, str] = field(
        default_factory=lambda: {"content-type": "text/event-stream"}
    )
    pieces: Sequence[tuple[bytes, float]] = ()
    error: BaseException | None = None


class _MockBody:
    __slots__ = ("_pieces", "content_type", "error", "headers", "released", "sent_s", "status")

    def __init__(self, script: MockResponse, sent_s: float) -> None:
        self.status = script.status
        self.headers = {k.lower(): v for k, v in script.headers.items()}
        self.content_type = self.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        self.sent_s = sent_s
        self._pieces = [(data, sent_s + offset_s) for data, offset_s in script.pieces]
        self.error = script.error
        self.released = False

    def __aiter__(self) -> _MockBody:
        return self

    async def __anext__(self) -> tuple[bytes, float]:
        if self._pieces:
            return self._pieces.pop(0)
        if self.error is not None:
            raise self.error
        raise StopAsyncIteration

    async def read(self, limit_bytes: int) -> bytes:
        out = b"".join(data for data, _ in self._pieces)
        self._pieces = []
        return out[:limit_bytes]

    async def finish(self, limit_s: float) -> None:
        self._pieces = []
        self.release()

    def release(self) -> None:
        self.released = True


class MockTransport:
    """Answers every ``POST`` with ``handler(path, body, headers)`` (a :class:`MockResponse`);
    the requests it saw are kept in :attr:`requests` as ``(path, body)``."""

    def __init__(self, handler: Callable[[str, bytes, Mapping[str, str]], MockResponse]) -> None:
        self.handler = handler
        self.requests: list[tuple[str, bytes]] = []
        self.opened = False
        self.closed = False

    @property
    def description(self) -> str:
        return "in-memory mock transport"

    def open(self) -> None:
        self.opened = True

    async def post(self, path: str, body: bytes, headers: Mapping[str, str]) -> _MockBody:
        self.requests.append((path, body))
        sent_s = time.perf_counter()
        return _MockBody(self.handler(path, body, headers), sent_s)

    def take_receive_lags_s(self) -> list[float]:
        return []

    async def close(self) -> None:
        self.closed = True


# -- choosing a stack -------------------------------------------------------------------------


def make_transport(
    url: str, http_stack: HttpStack, timeouts: Timeouts, max_connections: int = 0
) -> Transport:
    """The transport for ``url``: ``"auto"`` takes the wire stack for ``http://`` where the
    platform supports it (Linux, macOS), aiohttp otherwise.

    Raises:
        ValueError: naming ``http_stack`` when it is unknown, or ``"wire"`` for a target or
            platform the wire client cannot serve.
    """
    if http_stack not in ("auto", "wire", "aiohttp"):
        raise ValueError(f"http_stack must be 'auto', 'wire' or 'aiohttp' (got {http_stack!r})")
    is_http = urlsplit(url).scheme == "http"
    if http_stack == "wire" and not is_http:
        raise ValueError(
            f"http_stack='wire' needs an http:// target (got {_origin(url)!r}); "
            "use 'auto' or 'aiohttp' for https://"
        )
    if http_stack == "wire" and not WIRE_SUPPORTED:
        raise ValueError(
            "http_stack='wire' needs a selector event loop and recvmsg, which this platform "
            "lacks (Windows); use 'auto' or 'aiohttp'"
        )
    if http_stack == "wire" or (http_stack == "auto" and is_http and WIRE_SUPPORTED):
        return WireTransport(url, timeouts, max_connections)
    return AiohttpTransport(url, timeouts, max_connections)
