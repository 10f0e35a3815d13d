"""The wire client (:mod:`infphys.measure._wire`) against raw loopback servers.

What is tested: the kernel receive timestamps that are the module's point (they keep the
server's timing while the client's event loop is blocked, and the reader-callback fallback does
not), the same through :class:`~infphys.measure.client.ChatClient` (and aiohttp's late stamps for
comparison), body framing (Content-Length, chunked with an extension and a trailer,
close-delimited), the keep-alive pool (reuse, LIFO order, ``Connection: close``, HTTP/1.0, the
idle limit, idle connections the server closed, the retry-once), ``max_connections``, every error
class the client raises, :meth:`WireClient.request_bytes`, the stack choice of ``ChatClient``, and
``close()``.

The servers write exact bytes chosen here, so framing and faults are under the test's control:
:class:`RawServer` runs on the test's own event loop (``asyncio.start_server``) and counts
accepted connections and the peak number open at once; :class:`ThreadServer` answers from its
own thread with blocking sockets, so it keeps time while the test blocks the event loop with
``time.sleep``. Both bind 127.0.0.1 on a free port.

Times are compared with the servers' own ``time.perf_counter()`` stamps taken just before each
write (same process, same clock), so the kernel-timestamp checks are tight (a few ms) and do not
depend on how punctual a busy machine's threads are.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import json
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import pytest
from loopback import free_port

from infphys.measure import _wire, _wire_conn
from infphys.measure._wire import (
    KERNEL_TIMESTAMPS,
    WireClient,
    WireConnectError,
    WireError,
    WireReadTimeout,
    WireReset,
    WireResponse,
)
from infphys.measure.client import ChatClient, HttpStack, Timeouts
from infphys.measure.target import Target
from infphys.measure.transport import AiohttpTransport, WireTransport
from infphys.records import RequestRecord

_T = TypeVar("_T")

#: A kernel receive stamp may read up to this much before the server's perf_counter() stamp
#: taken just before the write, or after the one taken just after it (loopback delivers within
#: the sending write; the client converts CLOCK_REALTIME to perf_counter with an offset read
#: between two perf_counter reads, a few µs apart). Between the two server stamps a busy machine
#: may preempt the sending thread for any time: the bounds move with it.
EARLY_S = 0.002

#: An outer ``asyncio.timeout`` that only stops a test that would hang: a client timeout under
#: test must fire first (its error class says so), however busy the machine.
GUARD_S = 10.0

needs_kernel_stamps = pytest.mark.skipif(
    not KERNEL_TIMESTAMPS, reason="SO_TIMESTAMPNS receive timestamps are Linux-only"
)


# -- helpers: HTTP bytes ------------------------------------------------------------------------


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def reply(body: bytes, status: bytes = b"200 OK", extra: bytes = b"") -> bytes:
    """A Content-Length response."""
    return b"HTTP/1.1 %s\r\nContent-Length: %d\r\n%s\r\n%s" % (status, len(body), extra, body)


CHUNKED_SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
)


def content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def path_of(request: bytes) -> str:
    return request.split(b" ", 2)[1].decode()


# -- helpers: a server on the test's event loop ---------------------------------------------------


class Peer:
    """The server's side of one accepted connection."""

    def __init__(
        self, server: RawServer, number: int, reader: asyncio.StreamReader, w: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.number = number  # 1 for the first connection accepted, 2 for the next, ...
        self.reader = reader
        self.writer = w
        self.requests = 0

    async def request(self) -> bytes | None:
        """The next request's bytes (head and Content-Length body); None at a clean EOF."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise
            return None
        data = head + await self.reader.readexactly(content_length(head))
        self.requests += 1
        self.server.requests.append(data)
        return data

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()


Handler = Callable[[Peer], Awaitable[None]]


class RawServer:
    """``asyncio.start_server`` on 127.0.0.1:0 running ``handler`` for each connection.

    Counts connections accepted, open now (accepted, not yet closed by the handler ending) and
    the peak open at once; keeps every request received. A handler ends when the client goes
    away (EOF or reset are not errors here); any other exception is re-raised at exit.
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.accepts = 0
        self.open_now = 0
        self.peak_open = 0
        self.requests: list[bytes] = []
        self.errors: list[BaseException] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._on_conn, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _on_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.accepts += 1
        self.open_now += 1
        self.peak_open = max(self.peak_open, self.open_now)
        try:
            await self.handler(Peer(self, self.accepts, reader, writer))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # the server is shutting down (__aexit__ cancels what is left)
        except Exception as exc:
            self.errors.append(exc)
        finally:
            self.open_now -= 1
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            self._tasks.discard(task)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()
        if self.errors and exc_type is None:
            raise self.errors[0]

    async def wait_for(self, check: Callable[[], bool], limit_s: float = 1.0) -> None:
        """Wait until ``check()`` holds (a server-side count catching up with the client)."""
        async with asyncio.timeout(limit_s):
            while not check():
                await asyncio.sleep(0.005)


def answer_each(make: Callable[[Peer, bytes], bytes]) -> Handler:
    """A keep-alive handler: answers every request on the connection with ``make(peer, req)``."""

    async def handler(peer: Peer) -> None:
        while (req := await peer.request()) is not None:
            await peer.send(make(peer, req))

    return handler


def answer_in_two(
    first: bytes, second: bytes, pause_s: float = 0.02, keep_alive: bool = True
) -> Handler:
    """A handler that answers a request with ``first``, then ``pause_s`` later ``second`` (two
    writes, so the client reads them apart): every request on the connection, or with
    ``keep_alive=False`` only the first, after which it closes the connection."""

    async def handler(peer: Peer) -> None:
        while await peer.request() is not None:
            await peer.send(first)
            await asyncio.sleep(pause_s)
            await peer.send(second)
            if not keep_alive:
                return

    return handler


@contextlib.asynccontextmanager
async def wire_at(url: str, **kw: Any) -> AsyncIterator[WireClient]:
    """A :class:`WireClient` closed on the way out, even when the test fails (else its sockets
    would warn in some later test)."""
    kw.setdefault("connect_s", 1.0)
    kw.setdefault("read_s", 1.0)
    wire = WireClient(url, **kw)
    try:
        yield wire
    finally:
        await wire.close()


def wire_for(server: RawServer, **kw: Any) -> contextlib.AbstractAsyncContextManager[WireClient]:
    return wire_at(server.url, **kw)


async def body_of(resp: WireResponse) -> bytes:
    async with asyncio.timeout(GUARD_S):
        return b"".join([data async for data, _ in resp])


async def post_body(wire: WireClient, path: str = "/x", body: bytes = b"{}") -> bytes:
    async with asyncio.timeout(GUARD_S):
        resp = await wire.post(path, body, {"Content-Type": "application/json"})
        return await body_of(resp)


# -- helpers: a server on its own thread ----------------------------------------------------------


class ThreadServer:
    """Answers every request with a script of timed writes, from its own thread.

    ``script`` is ``[(at_s, bytes), ...]``: each write goes out ``at_s`` after the request was
    read, whatever the test's event loop is doing. ``sends`` and ``written`` hold
    ``time.perf_counter()`` just before and just after each write of the latest request;
    ``request_seen`` is set once a request is read.
    """

    def __init__(self, script: list[tuple[float, bytes]]) -> None:
        self.script = script
        self.sends: list[float] = []
        self.written: list[float] = []
        self.request_seen = threading.Event()
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._lsock = socket.create_server(("127.0.0.1", 0))
        self._lsock.settimeout(0.02)
        self.url = f"http://127.0.0.1:{self._lsock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._run, name="ThreadServer", daemon=True)

    def __enter__(self) -> ThreadServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(5)
        self._lsock.close()
        assert not self._thread.is_alive()
        if self.errors and exc_type is None:
            raise self.errors[0]

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    conn, _ = self._lsock.accept()
                except TimeoutError:
                    continue
                with conn:
                    conn.settimeout(0.02)
                    self._serve(conn)
        except BaseException as exc:
            self.errors.append(exc)

    def _recv(self, conn: socket.socket) -> bytes | None:
        """Some bytes; b"" at EOF; None when the server is stopping."""
        while not self._stop.is_set():
            try:
                return conn.recv(65536)
            except TimeoutError:
                continue
            except ConnectionError:
                return b""
        return None

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                data = self._recv(conn)
                if not data:
                    return
                buf += data
            head, _, buf = buf.partition(b"\r\n\r\n")
            length = content_length(head + b"\r\n")
            while len(buf) < length:
                data = self._recv(conn)
                if not data:
                    return
                buf += data
            buf = buf[length:]
            t0 = time.perf_counter()
            self.sends = []
            self.written = []
            self.request_seen.set()
            for at_s, data in self.script:
                wait_s = t0 + at_s - time.perf_counter()
                if wait_s > 0:
                    time.sleep(wait_s)
                self.sends.append(time.perf_counter())
                conn.sendall(data)
                self.written.append(time.perf_counter())


#: Tries of a blocked-loop scenario. Its server is a thread of this process, and on a busy
#: machine it can write a piece later than the block of the client's loop that piece was meant
#: to arrive in: such a try's stamps are right but prove nothing, so the scenario runs again.
SCHEDULE_TRIES = 3


async def on_schedule(run: Callable[[], Awaitable[_T]], on_time: Callable[[_T], bool]) -> _T:
    """The first of up to :data:`SCHEDULE_TRIES` runs of ``run()`` whose server kept to its
    script as far as the test needs (``on_time``, judged from the server's own write stamps)."""
    for _ in range(SCHEDULE_TRIES):
        result = await run()
        if on_time(result):
            return result
    pytest.fail(f"the server thread missed its schedule in {SCHEDULE_TRIES} tries in a row")


async def block_loop_once_served(server: ThreadServer, block_s: float) -> float:
    """Once the server has read the request, block this event loop for ``block_s``; return
    ``time.perf_counter()`` when the loop is free again."""
    async with asyncio.timeout(GUARD_S):
        while not server.request_seen.is_set():
            await asyncio.sleep(0.001)
    time.sleep(block_s)
    return time.perf_counter()


# -- 1. kernel timestamps through a blocked event loop -----------------------------------------

THREE_PIECES = [
    (0.0, CHUNKED_SSE_HEAD + chunk(b"first")),
    (0.1, chunk(b"second")),
    (0.2, chunk(b"third") + b"0\r\n\r\n"),
]


@dataclass
class Blocked:
    """One run of :data:`THREE_PIECES` against a client whose loop was blocked after the post."""

    server: ThreadServer
    wire: WireClient
    resp: WireResponse
    block_end: float
    pieces: list[tuple[bytes, float]]
    lags: list[float]


async def _post_then_block(block_s: float, *, kernel: bool) -> Blocked:
    with ThreadServer(THREE_PIECES) as server:
        async with wire_at(server.url, read_s=2.0, kernel_timestamps=kernel) as wire:
            async with asyncio.timeout(GUARD_S):
                resp = await wire.post("/v1/chat", b"{}", {"Accept": "text/event-stream"})
            time.sleep(block_s)  # the event loop (and every reader callback) is stuck here
            block_end = time.perf_counter()
            async with asyncio.timeout(GUARD_S):
                pieces = [item async for item in resp]
            lags = wire.take_receive_lags_s()
            assert wire.take_receive_lags_s() == []  # taken means cleared
    return Blocked(server, wire, resp, block_end, pieces, lags)


class _Clocks:
    """Stands in for ``time`` in ``_wire_conn``: each read pops the next value of its clock."""

    def __init__(self, perf_ns: list[int], wall_ns: list[int]) -> None:
        self.perf, self.wall = list(perf_ns), list(wall_ns)

    def perf_counter_ns(self) -> int:
        return self.perf.pop(0)

    def time_ns(self) -> int:
        return self.wall.pop(0)


def test_the_clock_offset_keeps_the_narrowest_bracket(monkeypatch: pytest.MonkeyPatch) -> None:
    # The true offset is 10^9 ns. The first bracket was preempted for 5 ms between its first
    # perf_counter read (100) and the wall-clock read (taken at perf time 5,000,100); the second
    # was not (reads at 6,000,000, 6,000,500 and 6,001,000).
    # By hand: bracket 1's midpoint is (100 + 5,000,200) // 2 = 2,500,150, so alone it gives
    # 10^9 + 5,000,100 - 2,500,150 = 10^9 + 2,499,950; bracket 2 (1 µs wide) gives 10^9 exactly.
    offset = 10**9
    perf = [100, 5_000_200, 6_000_000, 6_001_000]
    wall = [offset + 5_000_100, offset + 6_000_500]
    monkeypatch.setattr(_wire_conn, "time", _Clocks(perf, wall))
    assert _wire_conn.realtime_offset_ns() == offset
    monkeypatch.setattr(_wire_conn, "time", _Clocks(perf, wall))
    assert _wire_conn.realtime_offset_ns(tries=1) == offset + 2_499_950
    # A narrow first bracket is kept without a second read (which would raise IndexError here).
    monkeypatch.setattr(_wire_conn, "time", _Clocks([10, 1_010], [offset + 510]))
    assert _wire_conn.realtime_offset_ns() == offset


@needs_kernel_stamps
async def test_kernel_timestamps_survive_a_blocked_event_loop() -> None:
    # The server writes "first" with the headers, "second" 100 ms later and "third" (with the
    # last chunk) 200 ms later, while the client's loop sleeps 400 ms. Hand calculation: the
    # kernel stamps the arrivals at ≈0.00, ≈0.10 and ≈0.20 s after the send; Python only gets to
    # them at ≈0.40 s, so a Python-side stamp would read ≥ 0.40 s. The checks below need every
    # piece written 0.15 s before the block ended (the server's stamps say whether it was).
    run = await on_schedule(
        lambda: _post_then_block(0.4, kernel=True),
        lambda r: r.server.written[-1] + EARLY_S <= r.block_end - 0.15,
    )
    wire, resp, block_end, pieces, lags = run.wire, run.resp, run.block_end, run.pieces, run.lags
    sends, written = run.server.sends, run.server.written
    assert resp.status == 200 and resp.content_type == "text/event-stream"
    assert b"".join(d for d, _ in pieces) == b"firstsecondthird"
    stamp = {data: t for data, t in pieces}
    # Each stamp is the kernel's arrival time: during the server's write.
    for data, i in ((b"first", 0), (b"third", 2)):
        assert sends[i] - EARLY_S <= stamp[data] <= written[i] + EARLY_S, (data, stamp, sends)
    # "second" arrived at 0.10 s, but TCP segments that queue up while nobody reads are merged
    # in the kernel's receive queue, and a merged segment carries the latest arrival time: so
    # one read may bring "second" and "third" together, both stamped 0.20 s. Either way it lies
    # between its own arrival and the next write's, far from the 0.40 s Python would say.
    assert sends[1] - EARLY_S <= stamp[b"second"] <= written[2] + EARLY_S, (stamp, sends)
    # Relative to the send, as a latency: third ≈ 0.20 s (the server may run late, never early;
    # how late is bounded above by its own write stamps, checked above).
    assert stamp[b"third"] - resp.sent_s >= 0.2 - EARLY_S
    assert all(t < block_end - 0.1 for _, t in pieces)
    # The client noticed it was late: the read after the block came ≥ 0.40 - 0.20 s after the
    # kernel had "third" (allow for the server running late).
    assert lags and max(lags) >= 0.15
    # The read after the block is kernel-stamped (its stamps lie 0.2 s before Python saw them,
    # checked above). The prompt read of the headers and "first" usually is too, but where every
    # bracket of the clock offset was preempted (realtime_offset_ns, a busy machine) its kernel
    # stamp can read later than Python's clock, and the client then keeps Python's stamp, the
    # same arrival to within that preemption: so at least one, not two.
    assert wire.kernel_timestamps and wire.kernel_stamped_reads >= 1


@needs_kernel_stamps
async def test_each_read_keeps_its_own_kernel_time() -> None:
    # Two blocks, one arrival in each: "second" at 0.10 s inside block A (0 to 0.20 s), "third"
    # at 0.30 s inside block B (≈0.22 to 0.42 s); between them the loop runs the reader once.
    # Hand calculation: stamps ≈ 0.10 and ≈ 0.30 s after the send, not ≈ 0.20 and ≈ 0.42.
    script = [
        (0.0, CHUNKED_SSE_HEAD + chunk(b"first")),
        (0.1, chunk(b"second")),
        (0.3, chunk(b"third") + b"0\r\n\r\n"),
    ]

    async def two_blocks() -> tuple[ThreadServer, list[tuple[bytes, float]], list[float]]:
        with ThreadServer(script) as server:
            async with wire_at(server.url, read_s=2.0) as wire:
                async with asyncio.timeout(GUARD_S):
                    resp = await wire.post("/x", b"{}", {})
                time.sleep(0.2)
                end_a = time.perf_counter()
                await asyncio.sleep(0.02)  # the reader callback runs and stamps "second"
                between = time.perf_counter()
                time.sleep(0.2)
                end_b = time.perf_counter()
                async with asyncio.timeout(GUARD_S):
                    pieces = [item async for item in resp]
        return server, pieces, [end_a, between, end_b]

    def on_time(run: tuple[ThreadServer, list[tuple[bytes, float]], list[float]]) -> bool:
        # "second" written 0.05 s before block A ended, "third" after the reader ran between the
        # blocks (else one read takes both) and 0.05 s before block B ended.
        server, _, (end_a, between, end_b) = run
        written = server.written
        return (
            written[1] + EARLY_S < end_a - 0.05
            and server.sends[2] > between
            and written[2] + EARLY_S < end_b - 0.05
        )

    server, pieces, (end_a, _, end_b) = await on_schedule(two_blocks, on_time)
    sends, written = server.sends, server.written
    assert [d for d, _ in pieces] == [b"first", b"second", b"third"]
    for (_, t), sent_at, written_at in zip(pieces, sends, written, strict=True):
        assert sent_at - EARLY_S <= t <= written_at + EARLY_S, (pieces, sends)
    assert pieces[1][1] < end_a - 0.05 and pieces[2][1] < end_b - 0.05


async def test_without_kernel_timestamps_the_stamps_are_late() -> None:
    # Same server and block as above with kernel_timestamps=False: the stamps are taken in the
    # reader callback, which runs only after the 0.40 s block, so "second" and "third" read
    # ≥ 0.40 s after the send instead of 0.10 / 0.20 s. This is what the kernel stamps cure
    # (and it shows the test above can tell the two apart). Late or not, the server cannot make
    # a stamp taken after the block read earlier, so one run serves.
    run = await _post_then_block(0.4, kernel=False)
    wire, resp, block_end, pieces, lags = run.wire, run.resp, run.block_end, run.pieces, run.lags
    assert b"".join(d for d, _ in pieces) == b"firstsecondthird"
    stamp = {data: t for data, t in pieces}
    assert stamp[b"second"] >= block_end and stamp[b"third"] >= block_end
    assert stamp[b"third"] - resp.sent_s >= 0.35
    assert lags == []
    assert not wire.kernel_timestamps and wire.kernel_stamped_reads == 0


# -- 2. the same through ChatClient --------------------------------------------------------------


def _sse(obj: dict[str, Any] | str) -> bytes:
    text = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))
    return chunk(b"data: " + text.encode() + b"\n\n")


def _delta(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "cmpl-1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


USAGE = {
    "id": "cmpl-1",
    "object": "chat.completion.chunk",
    "created": 0,
    "model": "m",
    "choices": [],
    "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
}

# Tokens "a" at 0 s, "b" at 0.10 s, "c" at 0.50 s (then usage, [DONE], the last chunk).
CHAT_SCRIPT = [
    (0.0, CHUNKED_SSE_HEAD + _sse(_delta({"role": "assistant"})) + _sse(_delta({"content": "a"}))),
    (0.1, _sse(_delta({"content": "b"}))),
    (
        0.5,
        _sse(_delta({"content": "c"}, "length")) + _sse(USAGE) + _sse("[DONE]") + b"0\r\n\r\n",
    ),
]


async def _chat_with_blocked_loop(
    stack: HttpStack,
) -> tuple[RequestRecord, ChatClient, float, ThreadServer, list[float]]:
    with ThreadServer(CHAT_SCRIPT) as server:
        target = Target(base_url=server.url, model="m")
        timeouts = Timeouts(connect_s=1.0, read_s=2.0, total_s=3.0)
        async with ChatClient(
            target, http_stack=stack, timeouts=timeouts, clock_zero_s=0.0
        ) as client:
            # The loop is blocked from just after the server reads the request until ≈0.30 s:
            # token "b" (0.10 s) arrives inside the block, "c" (0.50 s) after it.
            blocker = asyncio.create_task(block_loop_once_served(server, 0.3))
            try:
                async with asyncio.timeout(3):
                    rec = await client.chat("hello", max_tokens=3)
                    block_end = await blocker
            finally:
                blocker.cancel()
            lags = client.take_receive_lags_s()
    return rec, client, block_end, server, lags


@needs_kernel_stamps
async def test_chat_client_on_wire_records_the_servers_spacing_through_a_blocked_loop() -> None:
    # The checks need "b" written 0.1 s before the block ended, and the server's own spacing of
    # "b" and "c" within the 0.3-0.5 s asked of the client's (it is 0.40 s when on time).
    def on_time(run: tuple[RequestRecord, ChatClient, float, ThreadServer, list[float]]) -> bool:
        _, _, block_end, server, _ = run
        sends, written = server.sends, server.written
        return (
            written[1] + EARLY_S < block_end - 0.1
            and sends[2] - written[1] - 2 * EARLY_S >= 0.3
            and written[2] - sends[1] + 2 * EARLY_S <= 0.5
        )

    rec, client, block_end, server, lags = await on_schedule(
        lambda: _chat_with_blocked_loop("wire"), on_time
    )
    sends, written = server.sends, server.written
    assert rec.status == "ok", rec
    assert (rec.prompt_tokens, rec.completion_tokens, rec.token_count_source) == (5, 3, "usage")
    assert rec.finish_reason == "length"
    # clock_zero_s=0, so record times are perf_counter() values, comparable with the server's.
    a, b, c = rec.chunk_times_s
    # "a" may share a read (and so a stamp) with "b" if the block began before it was read.
    assert sends[0] - EARLY_S <= a <= written[1] + EARLY_S
    assert sends[1] - EARLY_S <= b <= written[1] + EARLY_S  # ≈ 0.10 s, not ≈ 0.30 s
    assert sends[2] - EARLY_S <= c <= written[2] + EARLY_S  # ≈ 0.50 s
    assert b < block_end - 0.1
    assert rec.end_s is not None and sends[2] - EARLY_S <= rec.end_s <= written[2] + EARLY_S
    # The gap as the server spaced it, c - b ≈ 0.50 - 0.10 = 0.40 s (aiohttp: ≈ 0.20 s).
    assert 0.3 <= c - b <= 0.5
    assert rec.sent_s < a
    # "b" was read ≥ 0.30 - 0.10 s after the kernel had it: the client knows it was late.
    assert lags and max(lags) >= 0.1
    assert "kernel receive timestamps" in client.http_client


async def test_chat_client_on_aiohttp_records_when_the_blocked_loop_got_round_to_it() -> None:
    # Expected behaviour, documented: aiohttp stamps a chunk when the coroutine reads it, so
    # token "b", which arrived 0.10 s after the send, is recorded after the 0.30 s block.
    def on_time(run: tuple[RequestRecord, ChatClient, float, ThreadServer, list[float]]) -> bool:
        _, _, block_end, server, _ = run
        return block_end > server.sends[1] + 0.1  # "b" sent 0.1 s before the block ended

    rec, client, block_end, server, lags = await on_schedule(
        lambda: _chat_with_blocked_loop("aiohttp"), on_time
    )
    assert rec.status == "ok", rec
    _, b, _ = rec.chunk_times_s
    assert b >= block_end > server.sends[1] + 0.1
    assert lags == []  # no kernel stamps, no lag estimate
    assert client.http_client.startswith("aiohttp")


# -- 3. body framing ------------------------------------------------------------------------------


async def test_content_length_body_in_two_writes_is_reassembled() -> None:
    handler = answer_in_two(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello", b" world")
    async with RawServer(handler) as server, wire_for(server) as wire:
        async with asyncio.timeout(GUARD_S):
            resp = await wire.post("/x", b"{}", {})
        assert (resp.status, resp.reason) == (200, "OK")
        assert await body_of(resp) == b"hello world"
        assert resp.complete


async def test_chunked_body_with_an_extension_and_a_trailer_is_reassembled() -> None:
    # Chunks 5 ("hello", with the extension ";foo=bar") and 6 (" world"), the last chunk and a
    # trailer header; split mid-chunk. Body: "hello world". The connection is then reused,
    # which it can only be if the trailer and the final CRLF were consumed.
    whole = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"
        b"5;foo=bar\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: abc\r\n\r\n"
    )
    cut = whole.index(b"hel") + 3
    handler = answer_in_two(whole[:cut], whole[cut:])
    async with RawServer(handler) as server, wire_for(server) as wire:
        assert await post_body(wire) == b"hello world"
        assert await post_body(wire) == b"hello world"
        assert server.accepts == 1


async def test_close_delimited_body_ends_at_eof_and_the_connection_is_not_reused() -> None:
    # No Content-Length, not chunked: the body is everything until the server closes.
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"
    handler = answer_in_two(head + b"part one, ", b"part two", keep_alive=False)
    async with RawServer(handler) as server, wire_for(server) as wire:
        assert await post_body(wire) == b"part one, part two"
        assert await post_body(wire) == b"part one, part two"
        assert server.accepts == 2  # one connection per response


async def test_headers_are_lower_cased_and_repeats_joined() -> None:
    response = (
        b"HTTP/1.1 201 Created\r\nContent-Type: Text/Event-Stream; charset=utf-8\r\n"
        b"X-A: 1\r\nx-a: 2\r\nContent-Length: 0\r\n\r\n"
    )
    async with RawServer(answer_each(lambda p, r: response)) as server, wire_for(server) as wire:
        async with asyncio.timeout(GUARD_S):
            resp = await wire.post("/x", b"", {})
        assert (resp.status, resp.reason) == (201, "Created")
        assert resp.headers["x-a"] == "1, 2"
        assert resp.content_type == "text/event-stream"
        assert await body_of(resp) == b""


async def test_read_returns_at_most_limit_bytes() -> None:
    async with (
        RawServer(answer_each(lambda p, r: reply(b"hello world"))) as server,
        wire_for(server) as wire,
    ):
        async with asyncio.timeout(GUARD_S):
            resp = await wire.post("/x", b"", {})
            assert await resp.read(5) == b"hello"
            resp = await wire.post("/x", b"", {})
            assert await resp.read(1000) == b"hello world"


async def test_a_large_request_body_arrives_intact() -> None:
    # 8 MiB is more than a loopback socket's send buffer, so the first send() is partial and
    # the rest goes through sock_sendall. The server answers with the SHA-256 of what it read.
    body = bytes(range(256)) * (32 * 1024)

    def digest(peer: Peer, req: bytes) -> bytes:
        return reply(hashlib.sha256(req.split(b"\r\n\r\n", 1)[1]).hexdigest().encode())

    async with RawServer(answer_each(digest)) as server, wire_for(server) as wire:
        assert await post_body(wire, body=body) == hashlib.sha256(body).hexdigest().encode()


# -- 4. and 5. the keep-alive pool ----------------------------------------------------------------


async def test_sequential_requests_share_one_connection() -> None:
    async with (
        RawServer(answer_each(lambda p, r: reply(b"n%d" % p.requests))) as server,
        wire_for(server) as wire,
    ):
        bodies = [await post_body(wire, body=b'{"i":%d}' % i) for i in range(3)]
        assert bodies == [b"n1", b"n2", b"n3"]  # the 1st, 2nd and 3rd request on one connection
        assert server.accepts == 1
        expected = wire.request_bytes("/x", b'{"i":2}', {"Content-Type": "application/json"})
        assert server.requests[2] == expected


async def test_connection_close_in_the_response_makes_the_next_request_reconnect() -> None:
    # The server says "Connection: close" but would answer again on the same connection: only
    # the client honouring the header makes it open a second one.
    async with (
        RawServer(answer_each(lambda p, r: reply(b"ok", extra=b"Connection: close\r\n"))) as server,
        wire_for(server) as wire,
    ):
        assert await post_body(wire) == b"ok"
        assert await post_body(wire) == b"ok"
        assert server.accepts == 2
        await server.wait_for(lambda: server.open_now == 1)  # the client closed the first one


async def test_an_http_10_response_is_not_kept_alive() -> None:
    http10 = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"
    async with RawServer(answer_each(lambda p, r: http10)) as server, wire_for(server) as wire:
        assert await post_body(wire) == b"ok"
        assert await post_body(wire) == b"ok"
        assert server.accepts == 2


async def test_the_pool_is_last_in_first_out() -> None:
    # Two connections busy at once (1 and 2). Connection 2 is released first, then 1, so the
    # pool holds [2, 1] and the next request takes connection 1 (first-in-first-out would
    # take 2). The server answers with the connection's number.
    async with (
        RawServer(answer_each(lambda p, r: reply(b"%d" % p.number))) as server,
        wire_for(server) as wire,
    ):
        async with asyncio.timeout(GUARD_S):
            r1 = await wire.post("/x", b"", {})
            r2 = await wire.post("/x", b"", {})
        assert await body_of(r2) == b"2"
        assert await body_of(r1) == b"1"
        assert await post_body(wire) == b"1"
        assert server.accepts == 2


async def test_a_connection_idle_past_the_limit_is_not_reused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Idle limit 0.2 s (4 s in production): back-to-back requests reuse the connection; after
    # 0.3 s idle the client drops it although the server still holds it open.
    monkeypatch.setattr(_wire, "_IDLE_LIMIT_S", 0.2)
    async with (
        RawServer(answer_each(lambda p, r: reply(b"%d" % p.number))) as server,
        wire_for(server) as wire,
    ):
        assert [await post_body(wire), await post_body(wire)] == [b"1", b"1"]
        await asyncio.sleep(0.3)
        assert await post_body(wire) == b"2"
        assert server.accepts == 2
        await server.wait_for(lambda: server.open_now == 1)


async def test_an_idle_connection_the_server_closed_is_replaced() -> None:
    # The server answers, waits 50 ms and closes. The next request (100 ms later) must not fail:
    # the peek sees the close and a new connection serves it.
    async def handler(peer: Peer) -> None:
        if await peer.request() is not None:
            await peer.send(reply(b"%d" % peer.number))
            await asyncio.sleep(0.05)

    async with RawServer(handler) as server, wire_for(server) as wire:
        assert await post_body(wire) == b"1"
        await server.wait_for(lambda: server.open_now == 0)
        await asyncio.sleep(0.05)
        assert await post_body(wire) == b"2"
        assert server.accepts == 2 and len(server.requests) == 2


async def test_an_idle_connection_with_stray_bytes_is_not_reused() -> None:
    # The server answers "ok", then, 20 ms later, writes a whole unasked-for response ("bad")
    # on the idle connection and keeps it open. The peek before reuse sees bytes waiting and
    # drops the connection; reusing it would read "bad" as the answer to the next request.
    handler = answer_in_two(reply(b"ok"), reply(b"bad"))
    async with RawServer(handler) as server, wire_for(server) as wire:
        assert await post_body(wire) == b"ok"
        await asyncio.sleep(0.1)
        assert await post_body(wire) == b"ok"
        assert server.accepts == 2


async def test_a_request_lost_on_a_reused_connection_is_retried_once_on_a_new_one() -> None:
    # Each connection answers its first request and closes on its second without answering
    # (the race a peek cannot see: the server closes just as the request goes out).
    # Request 1: connection 1. Request 2: reuses 1, which closes; sent again on connection 2.
    async def handler(peer: Peer) -> None:
        if await peer.request() is not None:
            await peer.send(reply(b"%d" % peer.number))
            await peer.request()  # read the second request, then close without an answer

    async with RawServer(handler) as server, wire_for(server) as wire:
        assert await post_body(wire) == b"1"
        assert await post_body(wire) == b"2"
        assert server.accepts == 2
        assert len(server.requests) == 3  # 2 on connection 1 (one lost), 1 on connection 2


async def test_the_retry_goes_to_a_new_connection_even_with_more_pooled() -> None:
    # Same server as above, but two connections are pooled. Request 3 takes one, the server
    # closes it; the request is "sent once more on a new connection", so it succeeds on
    # connection 3. (Regression: at 4417c75 the retry took the other pooled connection, which
    # the server also closed, and raised WireReset.)
    async def handler(peer: Peer) -> None:
        if await peer.request() is not None:
            await peer.send(reply(b"%d" % peer.number))
            await peer.request()

    async with RawServer(handler) as server, wire_for(server) as wire:
        async with asyncio.timeout(GUARD_S):
            r1 = await wire.post("/x", b"", {})
            r2 = await wire.post("/x", b"", {})
        assert {await body_of(r1), await body_of(r2)} == {b"1", b"2"}
        assert await post_body(wire) == b"3"
        assert server.accepts == 3


async def test_finish_returns_a_finished_connection_to_the_pool() -> None:
    # finish() waits for the body's end (50 ms away) and drops the unread pieces; the
    # connection is then reused. A finish() that runs out of time closes it instead.
    async def handler(peer: Peer) -> None:
        while (req := await peer.request()) is not None:
            await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello")
            await asyncio.sleep(0.05 if path_of(req) == "/quick" else 5.0)
            await peer.send(b"world")

    async with RawServer(handler) as server, wire_for(server, read_s=10.0) as wire:
        async with asyncio.timeout(GUARD_S):
            resp = await wire.post("/quick", b"", {})
            await resp.finish(1.0)
        assert resp.complete
        async with asyncio.timeout(GUARD_S):
            resp = await wire.post("/slow", b"", {})
            await resp.finish(0.1)
        assert not resp.complete
        assert server.accepts == 1  # the second request reused the first connection
        assert await post_body(wire, "/quick") == b"helloworld"
        assert server.accepts == 2  # the unfinished one was closed


# -- 6. max_connections ---------------------------------------------------------------------------


async def _six_at_once(max_connections: int) -> tuple[RawServer, list[bytes], float]:
    async def handler(peer: Peer) -> None:
        while await peer.request() is not None:
            await asyncio.sleep(0.05)
            await peer.send(reply(b"ok"))

    async with (
        RawServer(handler) as server,
        wire_for(server, max_connections=max_connections) as wire,
    ):
        t0 = time.perf_counter()
        bodies = await asyncio.gather(*(post_body(wire) for _ in range(6)))
        took = time.perf_counter() - t0
    return server, bodies, took


async def test_max_connections_caps_the_connections_open_at_once() -> None:
    # 6 requests of 50 ms each on at most 2 connections: 3 rounds, ≥ 0.15 s.
    server, bodies, took = await _six_at_once(2)
    assert bodies == [b"ok"] * 6
    assert server.peak_open == 2 and server.accepts == 2
    assert took >= 3 * 0.05 - 0.005


async def test_without_a_cap_six_posts_open_six_connections() -> None:
    # The contrast that shows the cap above is doing the work: 6 at once, 1 round of 50 ms.
    server, bodies, _ = await _six_at_once(0)
    assert bodies == [b"ok"] * 6
    assert server.peak_open == 6 and server.accepts == 6


async def test_a_cancelled_post_frees_its_connection_slot() -> None:
    # max_connections=1 and the first connection never answers: cancelling that post must give
    # the slot back, or the second post would wait for ever. The post is cancelled once the
    # server holds its request (a fixed 0.1 s could end before a busy machine had connected).
    holding = asyncio.Event()

    async def handler(peer: Peer) -> None:
        while await peer.request() is not None:
            if peer.number == 1:
                holding.set()
                await asyncio.sleep(10)
            await peer.send(reply(b"ok"))

    async with (
        RawServer(handler) as server,
        wire_for(server, max_connections=1, read_s=10.0) as wire,
    ):
        first = asyncio.create_task(wire.post("/x", b"", {}))
        async with asyncio.timeout(GUARD_S):
            await holding.wait()
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        async with asyncio.timeout(GUARD_S):  # a slot never given back fails here, not hangs
            assert await post_body(wire) == b"ok"
        assert server.accepts == 2


# -- 7. errors ------------------------------------------------------------------------------------


async def test_connection_refused() -> None:
    async with wire_at(f"http://127.0.0.1:{free_port()}") as wire:
        with pytest.raises(WireConnectError) as info:
            async with asyncio.timeout(GUARD_S):
                await wire.post("/x", b"", {})
    assert info.value.error_class == "connect_refused"


@pytest.mark.skipif(sys.platform != "linux", reason="relies on Linux dropping SYNs on overflow")
async def test_connect_timeout() -> None:
    # A listener with backlog 0 that never accepts: once its accept queue holds one connection,
    # Linux drops further SYNs, so a connect hangs until connect_s=0.2 runs out.
    fillers: list[socket.socket] = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        try:
            for _ in range(3):
                s = socket.socket()
                fillers.append(s)
                s.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    s.connect(("127.0.0.1", port))
            await asyncio.sleep(0.05)
            async with wire_at(f"http://127.0.0.1:{port}", connect_s=0.2) as wire:
                t0 = time.perf_counter()
                with pytest.raises(WireConnectError) as info:
                    async with asyncio.timeout(GUARD_S):
                        await wire.post("/x", b"", {})
                took = time.perf_counter() - t0
        finally:
            for s in fillers:
                s.close()
    # connect_s fired (not the guard), and not before its 0.2 s.
    assert info.value.error_class == "connect_timeout"
    assert took >= 0.2 - 0.01


async def test_a_server_that_never_answers_is_a_read_timeout() -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        await asyncio.sleep(2 * GUARD_S)

    async with RawServer(handler) as server, wire_for(server, read_s=0.2) as wire:
        t0 = time.perf_counter()
        with pytest.raises(WireReadTimeout) as info:
            async with asyncio.timeout(GUARD_S):
                await wire.post("/x", b"", {})
        took = time.perf_counter() - t0
    # read_s fired (not the guard, nor the server giving up), and not before its 0.2 s.
    assert info.value.error_class == "read_timeout"
    assert took >= 0.2 - 0.01


async def test_silence_in_the_middle_of_a_body_is_a_read_timeout() -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello")
        await asyncio.sleep(2 * GUARD_S)

    async with RawServer(handler) as server, wire_for(server, read_s=0.2) as wire:
        got = b""
        async with asyncio.timeout(GUARD_S):
            resp = await wire.post("/x", b"", {})
            t0 = time.perf_counter()
            with pytest.raises(WireReadTimeout):
                async for data, _ in resp:
                    got += data
        took = time.perf_counter() - t0
    # The silence after "hello" tripped read_s (not the guard), not before its 0.2 s.
    assert got == b"hello"
    assert took >= 0.2 - 0.03


async def test_a_slow_but_steady_body_is_not_a_read_timeout() -> None:
    # read_s bounds each silence, not the whole body: 6 pieces 0.25 s apart (1.25 s in all,
    # more than read_s=1.0) must arrive in full. The server shares the client's event loop, so
    # a stall of both shows as silence: the 0.75 s between a gap and read_s absorbs one.
    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for i in range(6):
            await peer.send(chunk(b"p%d" % i))
            await asyncio.sleep(0.25)
        await peer.send(b"0\r\n\r\n")

    async with RawServer(handler) as server, wire_for(server, read_s=1.0) as wire:
        t0 = time.perf_counter()
        assert await post_body(wire) == b"p0p1p2p3p4p5"
        assert time.perf_counter() - t0 >= 1.25


async def test_bytes_waiting_when_the_read_timer_fires_are_not_a_timeout() -> None:
    # The loop was busy past read_s (0.2 s) while "second" reached the socket (at 0.05 s), and
    # its read timer runs before the loop has polled the socket again (a long callback ahead of
    # it in the same turn, called here by hand): it reads what is waiting instead of failing.
    # The try counts when "second" was not read with "first" (a late loop) and was written
    # before the check (a late server thread); on_schedule runs it again otherwise.
    script = [(0.0, CHUNKED_SSE_HEAD + chunk(b"first")), (0.05, chunk(b"second"))]

    async def check_late() -> tuple[bool, WireError | None, list[bytes]]:
        with ThreadServer(script) as server:
            async with wire_at(server.url, read_s=0.2) as wire:
                async with asyncio.timeout(GUARD_S):
                    resp = await wire.post("/x", b"{}", {})
                    first = await anext(aiter(resp))
                assert first[0] == b"first"
                alone = not resp._pieces
                time.sleep(0.3)  # "second" arrives; nothing reads it
                conn = resp._conn
                assert conn is not None and time.perf_counter() - conn.last_rx >= 0.2
                checked_at = time.perf_counter()
                conn._check_read_timeout()
                error, pieces = resp._error, [data for data, _ in resp._pieces]
                resp.release()
        return alone and server.written[1] < checked_at, error, pieces

    _, error, pieces = await on_schedule(check_late, lambda run: run[0])
    assert error is None and pieces == [b"second"]


async def test_a_body_cut_short_is_a_reset_after_the_bytes_that_came() -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello")

    async with RawServer(handler) as server, wire_for(server) as wire:
        got = b""
        async with asyncio.timeout(GUARD_S):
            resp = await wire.post("/x", b"", {})
            with pytest.raises(WireReset) as info:
                async for data, _ in resp:
                    got += data
    assert got == b"hello"
    assert info.value.error_class == "connection_reset"


async def test_a_response_that_is_not_http_is_a_client_error() -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"NOT HTTP\r\n\r\n")
        await asyncio.sleep(10)  # keep the connection open: the error is the parse, not EOF

    async with RawServer(handler) as server, wire_for(server) as wire:
        with pytest.raises(WireError) as info:
            async with asyncio.timeout(GUARD_S):
                await wire.post("/x", b"", {})
    assert type(info.value) is WireError
    assert info.value.error_class == "client_error"
    assert "malformed" in str(info.value)


async def test_a_fresh_connection_closed_before_any_byte_is_a_reset_without_retry() -> None:
    async def handler(peer: Peer) -> None:
        return  # close at once

    async with RawServer(handler) as server, wire_for(server) as wire:
        with pytest.raises(WireReset) as info:
            async with asyncio.timeout(GUARD_S):
                await wire.post("/x", b"", {})
        assert server.accepts == 1  # only a reused connection earns a retry
    assert info.value.error_class == "connection_reset"


async def test_an_interim_100_continue_is_skipped() -> None:
    # RFC 9110 §15.2: a client must parse 1xx responses before the final one, even unasked
    # (aiohttp skips them): status 200 and body "hello". (Regression: at 4417c75 the wire
    # client returned status 100 with an empty body.)
    async def handler(peer: Peer) -> None:
        while await peer.request() is not None:
            await peer.send(b"HTTP/1.1 100 Continue\r\n\r\n")
            await asyncio.sleep(0.05)
            await peer.send(reply(b"hello"))

    async with RawServer(handler) as server, wire_for(server) as wire:
        async with asyncio.timeout(GUARD_S):
            resp = await wire.post("/x", b"", {})
            status = resp.status
            body = await body_of(resp)
        assert (status, body) == (200, b"hello")


async def test_bytes_after_a_complete_response_are_not_part_of_it() -> None:
    # One write: a complete 5-byte response, then a second, unasked-for response. The module's
    # rule for "a server talking out of turn": body "hello" and the connection dropped, so the
    # next request opens connection 2. (Regression: at 4417c75 the body was "hellobad" and the
    # connection went back to the pool.)
    out_of_turn = reply(b"hello") + reply(b"bad")
    async with RawServer(answer_each(lambda p, r: out_of_turn)) as server, wire_for(server) as wire:
        assert await post_body(wire) == b"hello"
        await post_body(wire)
        assert server.accepts == 2


# -- 8. request_bytes and URLs --------------------------------------------------------------------


async def test_request_bytes_exactly() -> None:
    wire = WireClient("http://127.0.0.1:8123", connect_s=1.0, read_s=1.0)
    got = wire.request_bytes(
        "/v1/chat", b'{"a":1}', {"Content-Type": "application/json", "X-Run": "7"}
    )
    # Request line, Host with the port, the headers in the order given, the body's length
    # ('{"a":1}' is 7 bytes), a blank line, the body.
    assert got == (
        b"POST /v1/chat HTTP/1.1\r\n"
        b"Host: 127.0.0.1:8123\r\n"
        b"Content-Type: application/json\r\n"
        b"X-Run: 7\r\n"
        b"Content-Length: 7\r\n"
        b"\r\n"
        b'{"a":1}'
    )
    plain = WireClient("http://example.com/some/path", connect_s=1.0, read_s=1.0)
    assert (plain.host, plain.port) == ("example.com", 80)
    assert plain.request_bytes("/p", b"", {}) == (
        b"POST /p HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\n\r\n"
    )


async def test_the_server_receives_request_bytes() -> None:
    async with (
        RawServer(answer_each(lambda p, r: reply(b"ok"))) as server,
        wire_for(server) as wire,
    ):
        headers = {"Content-Type": "application/json", "Authorization": "Bearer k"}
        async with asyncio.timeout(GUARD_S):
            await (await wire.post("/v1/chat/completions", b'{"x":2}', headers)).read(100)
        port = server.port
        assert server.requests == [
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
            b"Content-Type: application/json\r\nAuthorization: Bearer k\r\n"
            b'Content-Length: 7\r\n\r\n{"x":2}' % port
        ]


async def test_header_injection_is_refused() -> None:
    wire = WireClient("http://127.0.0.1:8123", connect_s=1.0, read_s=1.0)
    with pytest.raises(ValueError, match="headers"):
        wire.request_bytes("/x", b"", {"X-A": "1\r\nX-Evil: 2"})
    with pytest.raises(ValueError, match="headers"):
        wire.request_bytes("/x", b"", {"X-A": "1\nX-Evil: 2"})
    with pytest.raises(ValueError, match="headers"):
        wire.request_bytes("/x", b"", {"X-A: b": "1"})


@pytest.mark.parametrize("url", ["https://x", "ftp://x", "http://"])
async def test_only_plain_http_urls(url: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        WireClient(url, connect_s=1.0, read_s=1.0)


# -- 9. ChatClient's choice of stack --------------------------------------------------------------


def test_wire_stack_refuses_https() -> None:
    with pytest.raises(ValueError, match="http_stack"):
        ChatClient(Target(base_url="https://example.invalid"), http_stack="wire")


def test_auto_stack_is_aiohttp_for_https() -> None:
    client = ChatClient(Target(base_url="https://example.invalid"), http_stack="auto")
    assert isinstance(client.transport, AiohttpTransport)
    assert client.http_client.startswith("aiohttp")


async def test_auto_stack_is_wire_for_http() -> None:
    async with ChatClient(Target(base_url="http://127.0.0.1:8123"), http_stack="auto") as client:
        assert isinstance(client.transport, WireTransport)
        assert "infphys wire" in client.http_client
        kernel = "kernel receive timestamps" in client.http_client
        assert kernel == KERNEL_TIMESTAMPS


# -- 10. close -------------------------------------------------------------------------------------


async def test_close_closes_every_connection_and_later_posts_fail() -> None:
    # Two pooled connections, then one of them busy with a response that never ends: close()
    # must close both (the server sees EOF on each) and fail the busy response with a reset.
    async def handler(peer: Peer) -> None:
        while (req := await peer.request()) is not None:
            if path_of(req) == "/hang":
                await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello")
                await peer.reader.read()  # until the client closes
                return
            await peer.send(reply(b"ok"))

    async with RawServer(handler) as server:
        wire = WireClient(server.url, connect_s=1.0, read_s=10.0)
        async with asyncio.timeout(GUARD_S):
            r1 = await wire.post("/x", b"", {})
            r2 = await wire.post("/x", b"", {})
            assert [await r1.read(10), await r2.read(10)] == [b"ok", b"ok"]
            hanging = await wire.post("/hang", b"", {})
            data, _ = await anext(hanging)
            assert data == b"hello"
        assert (server.accepts, server.open_now) == (2, 2)
        await wire.close()
        with pytest.raises(WireReset):
            async with asyncio.timeout(GUARD_S):
                await anext(hanging)
        await server.wait_for(lambda: server.open_now == 0)
        with pytest.raises(WireError, match="closed") as info:
            await wire.post("/x", b"", {})
        assert info.value.error_class == "client_error"
        assert server.accepts == 2
    gc.collect()  # an unclosed socket would warn here (and filterwarnings=error would fail it)


async def test_a_post_waiting_for_a_slot_fails_when_the_client_closes() -> None:
    # max_connections=1, one response in progress, a second post waiting for the slot. close()
    # frees the slot; the waiting post raises WireError ("the client is closed"). (Regression:
    # at 4417c75 it opened a new connection on the closed client and got its answer.)
    handler = answer_in_two(
        b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nhello", b", ", pause_s=0.05
    )
    async with RawServer(handler) as server:
        async with wire_for(server, max_connections=1) as wire:
            async with asyncio.timeout(GUARD_S):
                await wire.post("/x", b"", {})
            waiting = asyncio.create_task(wire.post("/x", b"", {}))
            await asyncio.sleep(0.02)
        # wire.close() has run; the post was waiting for the slot it freed
        try:
            with pytest.raises(WireError, match="closed"):
                async with asyncio.timeout(GUARD_S):
                    await waiting
        finally:  # (if it did get a response, release it: that closes its connection)
            if not waiting.done():
                waiting.cancel()
            with contextlib.suppress(BaseException):
                (await waiting).release()
        assert server.accepts == 1
