"""A lean HTTP/1.1 client for the measuring path, stamping arrivals with the kernel's clock.

Why not aiohttp here: at concurrency 64 against a server with an exact 50 ms delay (1,280
requests/s), aiohttp costs 300–400 µs of CPU per request on this kit's 2-core reference machine,
so the client's one event-loop thread is about half busy. A timestamp taken when a coroutine
resumes then waits behind every callback queued ahead of it: ``benchmarks/bench_client.py``
reads p50 0.9 to 2.0 ms high with a bare aiohttp client and 1.8 to 7.5 ms high with infphys's
load generator on aiohttp. This client removes both the cause and the symptom:

- **Arrival times from the kernel.** Every socket asks for ``SO_TIMESTAMPNS`` (Linux), and every
  read uses ``recvmsg``, so each piece of the response carries the time the kernel received it,
  not the time Python got round to it. A busy client still delivers less load than asked — the
  load generator reports that — but the latencies it records stay the server's. One limit: a
  read's stamp is the arrival of its *last* bytes, and arrivals left waiting in the socket are
  merged by the kernel into one read, so while the client lags, the end of a stream is stamped
  exactly but earlier chunks in the same read carry the later time (measured:
  ``take_receive_lags_s``). Where the option
  is missing (macOS, Windows), the stamp is taken in the socket's reader callback, the earliest
  point Python sees the bytes.
- **Little work per request.** One ``send`` of a prebuilt request, one reader callback per
  arrival, the ``httptools`` (llhttp, Node's parser) response parser, pooled keep-alive
  connections: a bare loop over it spent 95–126 µs of CPU per 8-token streamed request where
  the bare aiohttp client spent 300–346 µs.

``sent`` is stamped just before the request's bytes go to the kernel on an open connection, so
neither a new connection's set-up nor a wait for a pooled connection counts as server latency.

Scope: plain ``http://`` (local NIM, vLLM, SGLang, the simulator) on Linux and macOS.
``https://`` targets, and Windows, go through aiohttp in
:class:`infphys.measure.client.ChatClient`. No proxies, no compression (the request asks for
none), no HTTP/2.

Errors are :class:`WireError` subclasses carrying the record's error class
(:data:`infphys.records.ERROR_CLASSES`): ``dns``, ``connect_refused``, ``connect_timeout``,
``read_timeout`` (no byte for ``read_s``), ``connection_reset`` (the server closed or reset the
connection before the response ended) and ``client_error`` (a response that is not HTTP/1.x).
The connection, its response and the errors are in :mod:`infphys.measure._wire_conn`;
:class:`WireClient` here pools connections to one origin.

Worked example (the stub answers 8 tokens after 50 ms)::

    wire = WireClient("http://127.0.0.1:8000", connect_s=10, read_s=60)
    resp = await wire.post("/v1/chat/completions", body, {"Content-Type": "application/json"})
    # resp.status == 200; resp.sent_s is time.perf_counter() just before the send
    async for data, arrived_s in resp:   # arrived_s - resp.sent_s ≈ 0.050
        ...
    await wire.close()
"""

from __future__ import annotations

import asyncio
import collections
import socket
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from infphys.measure._wire_conn import (
    KERNEL_TIMESTAMPS,
    SO_TIMESTAMPNS,
    WIRE_SUPPORTED,
    Conn,
    WireConnectError,
    WireError,
    WireReadTimeout,
    WireReset,
    WireResponse,
)

__all__ = [
    "KERNEL_TIMESTAMPS",
    "WIRE_SUPPORTED",
    "WireClient",
    "WireConnectError",
    "WireError",
    "WireReadTimeout",
    "WireReset",
    "WireResponse",
]

#: A pooled connection idle this long is closed rather than reused: servers close idle
#: keep-alive connections (uvicorn, under vLLM, after 5 s), and a send racing that close fails.
_IDLE_LIMIT_S = 4.0
_DNS_TTL_S = 300.0
#: Receive lags kept for :meth:`WireClient.take_receive_lags_s` (a bounded buffer).
_LAG_SAMPLES = 200_000


class WireClient:
    """Pooled keep-alive HTTP/1.1 connections to one ``http://`` origin.

    Args:
        base_url: ``http://host[:port]`` (a path part is ignored; give it to :meth:`post`).
        connect_s: TCP connect limit, seconds.
        read_s: longest silence while a response is expected, seconds.
        max_connections: open connections at most (0: unlimited).
        kernel_timestamps: ask the kernel for receive timestamps where the platform has them.
    """

    def __init__(
        self,
        base_url: str,
        *,
        connect_s: float,
        read_s: float,
        max_connections: int = 0,
        kernel_timestamps: bool = True,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"base_url must be an http:// URL with a host (got {base_url!r})")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.host_header = parts.netloc.rsplit("@", 1)[-1]
        self.connect_s = connect_s
        self.read_s = read_s
        self.kernel_timestamps = kernel_timestamps and KERNEL_TIMESTAMPS
        self.loop = asyncio.get_running_loop()
        self._idle: list[Conn] = []
        self._open: set[Conn] = set()
        self._slots = asyncio.Semaphore(max_connections) if max_connections > 0 else None
        self._addrs: list[tuple[Any, ...]] = []
        self._addrs_until = 0.0
        self._lags_s: collections.deque[float] = collections.deque(maxlen=_LAG_SAMPLES)
        self.kernel_stamped_reads = 0
        self._closed = False

    # -- statistics ---------------------------------------------------------------------------

    def note_lag(self, lag_s: float) -> None:
        self.kernel_stamped_reads += 1
        self._lags_s.append(lag_s)

    def take_receive_lags_s(self) -> list[float]:
        """How long after the kernel received each read the client got to it (then cleared).

        Empty without kernel timestamps. Large values mean a busy client: its latencies are
        still right (they use the kernel's times), the load it delivers is not what was asked.
        """
        out = list(self._lags_s)
        self._lags_s.clear()
        return out

    # -- connections --------------------------------------------------------------------------

    async def _resolve(self) -> list[tuple[Any, ...]]:
        now = time.monotonic()
        if self._addrs and now < self._addrs_until:
            return self._addrs
        try:
            infos = await self.loop.getaddrinfo(
                self.host, self.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
        except socket.gaierror as exc:
            raise WireConnectError("dns", f"cannot resolve {self.host!r}: {exc}") from None
        if not infos:
            raise WireConnectError("dns", f"cannot resolve {self.host!r}: no addresses")
        self._addrs, self._addrs_until = infos, now + _DNS_TTL_S
        return infos

    async def _connect(self) -> Conn:
        infos = await self._resolve()
        errors: list[str] = []
        for family, kind, proto, _name, addr in infos:
            sock = socket.socket(family, kind, proto)
            sock.setblocking(False)
            try:
                async with asyncio.timeout(self.connect_s):
                    await self.loop.sock_connect(sock, addr)
            except TimeoutError:
                sock.close()
                raise WireConnectError(
                    "connect_timeout",
                    f"no TCP connection to {self.host}:{self.port} within {self.connect_s:g} s",
                ) from None
            except BaseException as exc:
                sock.close()
                if not isinstance(exc, OSError):
                    raise
                errors.append(f"{addr[0]}: {exc.strerror or exc}")
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.kernel_timestamps:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                except OSError:
                    self.kernel_timestamps = False
            conn = Conn(self, sock)
            self._open.add(conn)
            return conn
        raise WireConnectError(
            "connect_refused",
            f"cannot connect to {self.host}:{self.port} ({'; '.join(errors) or 'no address'})",
        )

    def _pooled(self) -> Conn | None:
        now = time.perf_counter()
        while self._idle:
            conn = self._idle.pop()
            if now - conn.idle_since < _IDLE_LIMIT_S and conn.alive():
                return conn
            conn.close()
        return None

    async def _acquire(self, fresh: bool) -> tuple[Conn, bool]:
        """A connection for one request, holding a slot (a pooled one if alive, unless
        ``fresh``); and whether it was reused."""
        if self._slots is not None:
            await self._slots.acquire()
            if self._closed:
                self._slots.release()
                raise WireError("the client is closed")
        conn = None if fresh else self._pooled()
        reused = conn is not None
        if conn is None:
            try:
                conn = await self._connect()
            except BaseException:
                if self._slots is not None:
                    self._slots.release()
                raise
        conn.busy = True
        return conn, reused

    def put_back(self, conn: Conn) -> None:
        """A connection whose response ended: idle in the pool (or closed, after close())."""
        if self._closed:
            conn.close()
            return
        if conn.busy:
            conn.busy = False
            if self._slots is not None:
                self._slots.release()
        conn.idle_since = time.perf_counter()
        self._idle.append(conn)

    def forget(self, conn: Conn) -> None:
        """A connection that closed: out of the pool, its slot freed."""
        self._open.discard(conn)
        if conn.busy:
            conn.busy = False
            if self._slots is not None:
                self._slots.release()
        elif conn in self._idle:
            self._idle.remove(conn)

    # -- requests -----------------------------------------------------------------------------

    def request_bytes(self, path: str, body: bytes, headers: Mapping[str, str]) -> bytes:
        """The bytes of one ``POST``; header names and values may not contain CR or LF."""
        lines = [f"POST {path} HTTP/1.1", f"Host: {self.host_header}"]
        for name, value in headers.items():
            if any(ch in name + value for ch in "\r\n") or ":" in name:
                raise ValueError(f"headers: {name!r} has a line break or colon in it")
            lines.append(f"{name}: {value}")
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    async def post(self, path: str, body: bytes, headers: Mapping[str, str]) -> WireResponse:
        """Send one ``POST`` and return once the response's status and headers are in.

        ``resp.sent_s`` is ``time.perf_counter()`` just before the bytes went to the kernel.
        A request that fails on a reused connection before any response byte (the server
        closed it while it was idle) is sent once more on a new connection.
        """
        if self._closed:
            raise WireError("the client is closed")
        data = self.request_bytes(path, body, headers)
        for attempt in (0, 1):
            # The retry goes to a new connection: the pooled ones are likely as stale.
            conn, reused = await self._acquire(fresh=attempt > 0)
            resp = WireResponse(conn, time.perf_counter())
            conn.start(resp)
            try:
                try:
                    n = conn.sock.send(data)
                except (BlockingIOError, InterruptedError):
                    n = 0
                if n < len(data):  # a large body: the rest waits for room in the socket
                    await self.loop.sock_sendall(conn.sock, memoryview(data)[n:])
                await resp._headers()
            except (WireReset, ConnectionError) as exc:
                resp.release()
                if reused and attempt == 0 and not resp.status:
                    continue
                if isinstance(exc, WireError):
                    raise
                raise WireReset(f"connection reset while sending: {exc}") from None
            except BaseException:
                resp.release()
                raise
            return resp
        raise AssertionError("unreachable")  # pragma: no cover

    async def close(self) -> None:
        """Close every connection (idle or busy); responses in progress fail with a reset."""
        self._closed = True
        for conn in list(self._open):
            conn.fail(WireReset("the client was closed"))
        self._idle.clear()
