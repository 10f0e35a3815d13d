"""A lean HTTP/1.1 client for the measuring path, stamping arrivals with the kernel's clock.

Why not aiohttp here: at concurrency 64 against a server with an exact 50 ms delay (1,280
requests/s), aiohttp costs 300–400 µs of CPU per request on this kit's 2-core reference machine,
so the client's one event-loop thread is about half busy. A timestamp taken when a coroutine
resumes then waits behind every callback queued ahead of it: ``benchmarks/bench_client.py``
read p50 +0.9 to +2.0 ms with a bare aiohttp client and +1.8 to +7.5 ms with infphys's load
generator on aiohttp, over three runs (aiperf's was 30–40 ms too high). This client cures the
cause and the symptom:

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
import struct
import sys
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httptools

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

# SO_TIMESTAMPNS (and its control message SCM_TIMESTAMPNS) is 35 on Linux's generic ABI
# (x86, arm, riscv, …); the socket module does not export it.
_SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("@ll")
_ANC_BYTES = socket.CMSG_SPACE(_TIMESPEC.size) if hasattr(socket, "CMSG_SPACE") else 0
#: Whether the wire client runs here: it needs ``loop.add_reader`` and ``recvmsg``, which
#: Windows' default (proactor) event loop and sockets lack.
WIRE_SUPPORTED: bool = sys.platform != "win32" and hasattr(socket.socket, "recvmsg")
#: Whether this platform can ask the kernel for receive timestamps.
KERNEL_TIMESTAMPS: bool = WIRE_SUPPORTED and sys.platform == "linux" and _ANC_BYTES > 0
_READ_BYTES = 256 * 1024
_READS_PER_CALLBACK = 16
#: A pooled connection idle this long is closed rather than reused: servers close idle
#: keep-alive connections (uvicorn, under vLLM, after 5 s), and a send racing that close fails.
_IDLE_LIMIT_S = 4.0
_DNS_TTL_S = 300.0
#: Receive lags kept for :meth:`WireClient.take_receive_lags_s` (a bounded buffer).
_LAG_SAMPLES = 200_000


class WireError(Exception):
    """A failed request; ``error_class`` is the record's error class."""

    error_class = "client_error"


class WireConnectError(WireError):
    """No connection: ``error_class`` is ``dns``, ``connect_refused`` or ``connect_timeout``."""

    def __init__(self, error_class: str, message: str) -> None:
        super().__init__(message)
        self.error_class = error_class


class WireReadTimeout(WireError):
    """No byte arrived for ``read_s`` seconds while a response was expected."""

    error_class = "read_timeout"


class WireReset(WireError):
    """The connection closed or reset before the response ended."""

    error_class = "connection_reset"


class WireResponse:
    """One response: status and headers at once, the body piece by piece with arrival times.

    Iterate it (``async for data, arrived_s in resp``) for the body: each item is the bytes one
    read delivered and the ``time.perf_counter()`` time they arrived. Iteration ends with the
    body; an error (timeout, reset) is raised from the iteration. Call :meth:`release` when done
    (the client does it for a body read to its end): an unfinished response closes its
    connection, a finished one returns it to the pool.
    """

    __slots__ = (
        "_conn",
        "_error",
        "_pieces",
        "_waiter",
        "complete",
        "headers",
        "reason",
        "sent_s",
        "status",
    )

    def __init__(self, conn: _Conn, sent_s: float) -> None:
        self._conn: _Conn | None = conn
        self._pieces: collections.deque[tuple[bytes, float]] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._error: WireError | None = None
        self.sent_s = sent_s
        self.status = 0
        self.reason = ""
        self.headers: dict[str, str] = {}
        self.complete = False

    @property
    def content_type(self) -> str:
        """The media type, lower case, without parameters (``text/event-stream``)."""
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    # -- called by the connection --------------------------------------------------------

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _fail(self, error: WireError) -> None:
        if self._error is None and not self.complete:
            self._error = error
        self._wake()

    # -- called by the reader -------------------------------------------------------------

    async def _wait(self) -> None:
        conn = self._conn
        if conn is None:
            raise WireReset("the response was released")
        self._waiter = conn.loop.create_future()
        conn.arm_read_timer()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def _headers(self) -> None:
        while not self.status and self._error is None:
            await self._wait()
        if self._error is not None and not self.status:
            raise self._error

    def __aiter__(self) -> WireResponse:
        return self

    async def __anext__(self) -> tuple[bytes, float]:
        pieces = self._pieces
        while True:
            if pieces:
                return pieces.popleft()
            if self.complete:
                self.release()
                raise StopAsyncIteration
            if self._error is not None:
                self.release()
                raise self._error
            await self._wait()

    async def finish(self, limit_s: float) -> None:
        """Wait up to ``limit_s`` for the rest of the body (unread pieces are dropped), then
        release: the connection goes back to the pool if the body ended in time."""
        try:
            async with asyncio.timeout(limit_s):
                while not self.complete and self._error is None:
                    self._pieces.clear()
                    await self._wait()
        except TimeoutError:
            pass
        self.release()

    async def read(self, limit_bytes: int) -> bytes:
        """The body, up to ``limit_bytes`` (the rest is dropped with the connection)."""
        out = bytearray()
        async for data, _ in self:
            out += data
            if len(out) >= limit_bytes:
                break
        self.release()
        return bytes(out[:limit_bytes])

    def release(self) -> None:
        """Give the connection back (finished body) or close it (anything else)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.detach(self)


class _Conn:
    """One keep-alive TCP connection and its response parser (httptools callbacks)."""

    __slots__ = (
        "_interim",
        "_stamp",
        "busy",
        "client",
        "closed",
        "fd",
        "idle_since",
        "keep_alive",
        "last_rx",
        "loop",
        "parser",
        "resp",
        "sock",
        "timer",
    )

    def __init__(self, client: WireClient, sock: socket.socket) -> None:
        self.client = client
        self.sock = sock
        self.fd = sock.fileno()
        self.loop = client.loop
        self.parser = httptools.HttpResponseParser(self)
        self.resp: WireResponse | None = None
        self.closed = False
        self.busy = False
        self.keep_alive = True
        self.idle_since = 0.0
        self.last_rx = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self._stamp = 0.0
        self._interim = False

    # -- httptools callbacks --------------------------------------------------------------

    def _current(self) -> WireResponse | None:
        """The response being parsed; None once it is complete (later bytes are stray)."""
        resp = self.resp
        return None if resp is None or resp.complete else resp

    def on_message_begin(self) -> None:
        if self._current() is None:
            # A second response in one read, unasked for: the server is talking out of turn.
            # Ignore it and do not reuse the connection.
            self.keep_alive = False

    def on_status(self, status: bytes) -> None:
        resp = self._current()
        if resp is not None:
            resp.reason = status.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        resp = self._current()
        if resp is None:
            return
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        old = resp.headers.get(key)
        resp.headers[key] = text if old is None else f"{old}, {text}"

    def on_headers_complete(self) -> None:
        resp = self._current()
        if resp is None:
            return
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            # An interim response (100 Continue, 103 Early Hints): RFC 9110 §15.2 says to read
            # past it to the final one. (101 raises HttpParserUpgrade in feed_data.)
            self._interim = True
            resp.headers = {}
            resp.reason = ""
            return
        resp.status = status
        resp._wake()

    def on_body(self, body: bytes) -> None:
        resp = self._current()
        if resp is not None:
            resp._pieces.append((body, self._stamp))

    def on_message_complete(self) -> None:
        resp = self._current()
        if resp is None:
            return
        if self._interim:
            self._interim = False
            return
        if self.keep_alive:
            self.keep_alive = self.parser.should_keep_alive()
        resp.complete = True
        resp._wake()

    # -- reading ----------------------------------------------------------------------------

    def _readable(self) -> None:
        sock = self.sock
        client = self.client
        kernel = client.kernel_timestamps
        off_ns = time.time_ns() - time.perf_counter_ns() if kernel else 0
        for _ in range(_READS_PER_CALLBACK):
            try:
                data, anc, _flags, _addr = sock.recvmsg(_READ_BYTES, _ANC_BYTES)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                self.fail(WireReset(f"connection reset while reading: {exc}"))
                return
            now = time.perf_counter()
            stamp = now
            if anc:
                for level, kind, raw in anc:
                    if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS:
                        sec, nsec = _TIMESPEC.unpack_from(raw)
                        kts = (sec * 1_000_000_000 + nsec - off_ns) / 1e9
                        if now - 60.0 < kts <= now:
                            stamp = kts
                            client.note_lag(now - kts)
            self.last_rx = now
            if not data:
                self._eof()
                return
            resp = self.resp
            if resp is None or resp.complete:
                # Bytes nobody asked for (a server talking out of turn): drop the connection.
                self.fail(WireReset("unexpected data on an idle connection"))
                return
            self._stamp = stamp
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserUpgrade:
                self.fail(WireError("the server switched protocols (HTTP upgrade)"))
                return
            except httptools.HttpParserError as exc:
                self.fail(WireError(f"malformed HTTP response: {exc}"))
                return
            if resp.complete:
                break
            if len(data) < _READ_BYTES:
                break
        resp = self.resp
        if resp is not None:
            resp._wake()

    def _eof(self) -> None:
        resp = self.resp
        if resp is not None and not resp.complete and resp.status:
            # A body delimited by the end of the connection is complete at EOF.
            headers = resp.headers
            if "content-length" not in headers and "chunked" not in headers.get(
                "transfer-encoding", ""
            ):
                resp.complete = True
                self.keep_alive = False
                resp._wake()
                self._stop_reading()
                return
        self.fail(WireReset("the server closed the connection before the response ended"))

    def arm_read_timer(self) -> None:
        """Make sure a read timeout is pending (one timer, moved lazily, per response)."""
        if self.timer is None and not self.closed:
            self.timer = self.loop.call_at(
                self.loop.time() + self.client.read_s, self._check_read_timeout
            )

    def _check_read_timeout(self) -> None:
        self.timer = None
        resp = self.resp
        if resp is None or resp.complete or self.closed:
            return
        silent_s = time.perf_counter() - self.last_rx
        read_s = self.client.read_s
        if silent_s >= read_s:
            self.fail(WireReadTimeout(f"no data for {read_s:g} s"))
        elif resp._waiter is not None:
            self.timer = self.loop.call_at(
                self.loop.time() + (read_s - silent_s), self._check_read_timeout
            )

    # -- life cycle ---------------------------------------------------------------------------

    def start(self, resp: WireResponse) -> None:
        self.resp = resp
        self.last_rx = time.perf_counter()
        self.loop.add_reader(self.fd, self._readable)

    def _stop_reading(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if not self.closed:
            self.loop.remove_reader(self.fd)

    def fail(self, error: WireError) -> None:
        resp = self.resp
        self.close()
        if resp is not None:
            resp._fail(error)

    def detach(self, resp: WireResponse) -> None:
        if self.resp is not resp:
            return
        self.resp = None
        self._stop_reading()
        if resp.complete and self.keep_alive and not self.closed:
            self.client.put_back(self)
        else:
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self._stop_reading()
        self.closed = True
        self.client.forget(self)
        self.sock.close()

    def alive(self) -> bool:
        """A pooled connection the server has not closed (peeks without reading)."""
        try:
            data = self.sock.recv(1, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            return False
        # b"" is the server's close; bytes out of turn make the connection unusable too.
        del data
        return False


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
        self._idle: list[_Conn] = []
        self._open: set[_Conn] = set()
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

    async def _connect(self) -> _Conn:
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
                    sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
                except OSError:
                    self.kernel_timestamps = False
            conn = _Conn(self, sock)
            self._open.add(conn)
            return conn
        raise WireConnectError(
            "connect_refused",
            f"cannot connect to {self.host}:{self.port} ({'; '.join(errors) or 'no address'})",
        )

    def _pooled(self) -> _Conn | None:
        now = time.perf_counter()
        while self._idle:
            conn = self._idle.pop()
            if now - conn.idle_since < _IDLE_LIMIT_S and conn.alive():
                return conn
            conn.close()
        return None

    async def _acquire(self, fresh: bool) -> tuple[_Conn, bool]:
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

    def put_back(self, conn: _Conn) -> None:
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

    def forget(self, conn: _Conn) -> None:
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
