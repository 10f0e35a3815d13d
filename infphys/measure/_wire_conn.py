"""One keep-alive HTTP/1.1 connection of the wire client, its response, and its errors.

:class:`Conn` owns a TCP socket and an ``httptools`` response parser; its reader callback
drains the socket with ``recvmsg`` and, on Linux, reads each piece's kernel receive time from
the ``SO_TIMESTAMPNS`` control message. :class:`WireResponse` hands the body's pieces to the
caller as ``(data, arrived_s)`` pairs on the ``time.perf_counter()`` clock. The errors
(:class:`WireError` and subclasses) carry the record's error class. The pool that hands out
connections is :class:`infphys.measure._wire.WireClient`.

Worked example: a control message of 16 bytes ``(sec=1700000000, nsec=250000000)`` is the
wall-clock time 1700000000.25 s; the connection turns it into the ``perf_counter`` clock by
subtracting the offset between the two clocks (:func:`realtime_offset_ns`), so a chunk that
reached the kernel 3 ms before Python read it carries an arrival 3 ms earlier than the read.
"""

from __future__ import annotations

import asyncio
import collections
import socket
import struct
import sys
import time
from typing import TYPE_CHECKING

import httptools

if TYPE_CHECKING:
    from infphys.measure._wire import WireClient

__all__ = [
    "ANC_BYTES",
    "KERNEL_TIMESTAMPS",
    "SO_TIMESTAMPNS",
    "WIRE_SUPPORTED",
    "Conn",
    "WireConnectError",
    "WireError",
    "WireReadTimeout",
    "WireReset",
    "WireResponse",
    "realtime_offset_ns",
]

# SO_TIMESTAMPNS (and its control message SCM_TIMESTAMPNS) is 35 on Linux's generic ABI
# (x86, arm, riscv, …); the socket module does not export it.
SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("@ll")
ANC_BYTES = socket.CMSG_SPACE(_TIMESPEC.size) if hasattr(socket, "CMSG_SPACE") else 0
#: Whether the wire client runs here: it needs ``loop.add_reader`` and ``recvmsg``, which
#: Windows' default (proactor) event loop and sockets lack.
WIRE_SUPPORTED: bool = sys.platform != "win32" and hasattr(socket.socket, "recvmsg")
#: Whether this platform can ask the kernel for receive timestamps.
KERNEL_TIMESTAMPS: bool = WIRE_SUPPORTED and sys.platform == "linux" and ANC_BYTES > 0
_READ_BYTES = 256 * 1024
_READS_PER_CALLBACK = 16
#: A bracket of the clock offset this narrow, ns, needs no second try (a few clock reads).
_NARROW_NS = 2_000


def realtime_offset_ns(tries: int = 3) -> int:
    """``time.time_ns() - time.perf_counter_ns()`` at one instant, to within a few µs.

    The wall clock is read between two ``perf_counter`` reads and paired with their midpoint;
    a thread preempted between the reads widens that bracket by the preemption (milliseconds
    on a busy machine), so up to ``tries`` brackets are read and the narrowest one is kept.
    Read with two calls instead, a preemption between them would shift the offset by its whole
    length, and a kernel stamp converted with it could land after the moment Python read it.

    Worked example: brackets ``(p0=100, wall=10⁹+5,000,100, p1=5,000,200)`` (preempted 5 ms
    between the first two reads) and ``(6,000,000, 10⁹+6,000,500, 6,001,000)``: the second is
    1 µs wide, its midpoint 6,000,500, so the offset is exactly 10⁹ ns; the first alone would
    give 10⁹ + 2,499,950.
    """
    best_width = best = -1
    for _ in range(max(1, tries)):
        before = time.perf_counter_ns()
        wall = time.time_ns()
        after = time.perf_counter_ns()
        if best_width < 0 or after - before < best_width:
            best_width, best = after - before, wall - (before + after) // 2
        if best_width <= _NARROW_NS:
            break
    return best


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

    def __init__(self, conn: Conn, sent_s: float) -> None:
        self._conn: Conn | None = conn
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


class Conn:
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
        off_ns = realtime_offset_ns() if kernel else 0
        for _ in range(_READS_PER_CALLBACK):
            try:
                data, anc, _flags, _addr = sock.recvmsg(_READ_BYTES, ANC_BYTES)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                self.fail(WireReset(f"connection reset while reading: {exc}"))
                return
            now = time.perf_counter()
            stamp = now
            if anc:
                for level, kind, raw in anc:
                    if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
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
            # Bytes already waiting in the socket arrived while this loop was busy elsewhere
            # (a late loop, not a silent server): read them before calling it a timeout.
            self._readable()
            if self.resp is not resp or resp.complete or self.closed:
                return
            silent_s = time.perf_counter() - self.last_rx
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
