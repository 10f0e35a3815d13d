"""A streaming chat server whose delay is known to the microsecond: the benchmark's yardstick.

``benchmarks/bench_client.py`` asks whether a client reports a server's latency correctly. That
needs a server that really answers after the stated delay at 1,000+ requests/s on one core, and
says what it actually did. The aiohttp stub (``infphys.measure.stub``) costs ~300 µs of CPU a
request and its timers fire up to a millisecond late (epoll rounds its timeout up to whole
milliseconds), so at concurrency 64 it answered a "50 ms" request in 52–55 ms: too loose for a
2 ms accuracy target. This one is a bare ``asyncio.Protocol``:

- each request is timed from the moment the kernel received its last byte (``SO_TIMESTAMPNS``
  on Linux, else when Python read it);
- the answer (the whole SSE body, prebuilt, with a ``Content-Length``) is written at exactly
  that moment + delay: a timer wakes the loop 1.5 ms early and the loop then polls until the
  moment (other connections are served meanwhile);
- it keeps what it did — the delay each request actually got, receipt to write — and prints the
  percentiles when a line arrives on stdin.

Usage: ``python benchmarks/precise_server.py --delay-ms 50 --tokens 8`` prints
``listening on http://127.0.0.1:PORT``; each line written to its stdin is answered by one line
``delivered n=… min_ms=… p50_ms=… p95_ms=… max_ms=…`` (and the record is cleared).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import statistics
import struct
import sys
import time

SO_TIMESTAMPNS = 35  # Linux generic ABI; the socket module does not export it
TIMESPEC = struct.Struct("@ll")
ANC_BYTES = socket.CMSG_SPACE(TIMESPEC.size)
EARLY_S = 0.0015
MODEL = "meta/llama-3.1-8b-instruct"


def sse_body(tokens: int) -> bytes:
    """An OpenAI-style stream: role chunk, ``tokens`` content chunks, finish, usage, [DONE]."""

    def chunk(delta: dict[str, str], finish: str | None = None) -> bytes:
        obj = {
            "id": "chatcmpl-precise",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"

    parts = [chunk({"role": "assistant", "content": ""})]
    parts += [chunk({"content": f" t{k}"}) for k in range(tokens)]
    parts.append(chunk({}, "length"))
    usage = {
        "id": "chatcmpl-precise",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": MODEL,
        "choices": [],
        "usage": {"prompt_tokens": 16, "completion_tokens": tokens, "total_tokens": tokens + 16},
    }
    parts.append(b"data: " + json.dumps(usage, separators=(",", ":")).encode() + b"\n\n")
    parts.append(b"data: [DONE]\n\n")
    return b"".join(parts)


class Server:
    def __init__(self, delay_s: float, tokens: int) -> None:
        body = sse_body(tokens)
        self.answer = (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body) + body
        )
        self.delay_s = delay_s
        self.delivered_s: list[float] = []
        self.loop = asyncio.get_running_loop()

    def due(self, peer: Peer, received_s: float, due_s: float) -> None:
        """Write the answer at ``due_s`` (perf_counter seconds), polling the last stretch."""
        if time.perf_counter() < due_s:
            self.loop.call_soon(self.due, peer, received_s, due_s)
            return
        if not peer.closed:
            peer.write(self.answer)
            self.delivered_s.append(time.perf_counter() - received_s)


class Peer:
    """One client connection: read with ``recvmsg`` (for the kernel's receive time), parse
    HTTP/1.1 requests with a ``Content-Length`` body, schedule each answer."""

    def __init__(self, server: Server, sock: socket.socket) -> None:
        self.server = server
        self.loop = server.loop
        self.sock = sock
        self.buf = bytearray()
        self.closed = False
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.loop.add_reader(sock.fileno(), self.readable)

    def readable(self) -> None:
        off_ns = time.time_ns() - time.perf_counter_ns()
        try:
            data, anc, _, _ = self.sock.recvmsg(256 * 1024, ANC_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data, anc = b"", []
        now = time.perf_counter()
        if not data:
            self.close()
            return
        self.feed(data, kernel_time_s(anc, off_ns, now))

    def feed(self, data: bytes, received_s: float) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).lower()
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip() == b"content-length":
                    length = int(value)
            if len(self.buf) < end + 4 + length:
                return
            del self.buf[: end + 4 + length]
            if not head.startswith(b"post "):
                self.write(
                    b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
                    b'Content-Length: 27\r\n\r\n{"error":"only POST here"}\n'
                )
                continue
            srv = self.server
            due_s = received_s + srv.delay_s
            wait_s = due_s - time.perf_counter() - EARLY_S
            if wait_s > 0:
                self.loop.call_later(wait_s, srv.due, self, received_s, due_s)
            else:
                srv.due(self, received_s, due_s)

    def write(self, data: bytes) -> None:
        try:
            n = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError:
            self.close()
            return
        if n < len(data):
            self.loop.create_task(self.loop.sock_sendall(self.sock, data[n:]))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()


def kernel_time_s(anc: list[tuple[int, int, bytes]], off_ns: int, now_s: float) -> float:
    for level, kind, raw in anc:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            sec, nsec = TIMESPEC.unpack_from(raw)
            t: float = (sec * 1_000_000_000 + nsec - off_ns) / 1e9
            if now_s - 1.0 < t <= now_s:
                return t
    return now_s


async def serve(delay_s: float, tokens: int) -> None:
    loop = asyncio.get_running_loop()
    server = Server(delay_s, tokens)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    listener.setblocking(False)
    port = listener.getsockname()[1]

    async def accept() -> None:
        while True:
            sock, _ = await loop.sock_accept(listener)
            Peer(server, sock)

    acceptor = loop.create_task(accept())
    print(f"listening on http://127.0.0.1:{port}", flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.readline():
        d = sorted(x * 1e3 for x in server.delivered_s)
        server.delivered_s.clear()
        if d:
            print(
                f"delivered n={len(d)} min_ms={d[0]:.3f} p50_ms={statistics.median(d):.3f} "
                f"p95_ms={d[int(0.95 * (len(d) - 1))]:.3f} max_ms={d[-1]:.3f}",
                flush=True,
            )
        else:
            print("delivered n=0", flush=True)
    acceptor.cancel()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--delay-ms", type=float, default=0.0)
    ap.add_argument("--tokens", type=int, default=8)
    args = ap.parse_args()
    asyncio.run(serve(args.delay_ms / 1e3, args.tokens))


if __name__ == "__main__":
    main()
