"""How a measured request can fail: its time limits, the error classes, the server's message.

:class:`Timeouts` bounds the connect, every silence, and the whole request.
:func:`classify_status` and :func:`classify_exception` map a non-200 status or an exception to
the record's error class (:data:`infphys.records.ERROR_CLASSES`); :func:`server_message` pulls the
human message out of an error body (OpenAI's ``error.message``, vLLM's ``message``, FastAPI's
``detail``); :class:`Failure` is a classified failure found while reading a 200 response.

Worked example: a 503 is ``http_5xx`` and a 429 ``http_429``; the body
``{"error": {"message": "The server is overloaded"}}`` gives the message
``The server is overloaded``.

>>> classify_status(503), classify_status(429)
('http_5xx', 'http_429')
>>> server_message(b'{"error": {"message": "The server is overloaded"}}')
'The server is overloaded'
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import aiohttp

from infphys._check import positive
from infphys.measure._sse import SSEError
from infphys.measure._wire import WireError

__all__ = [
    "ERROR_BODY_LIMIT_BYTES",
    "MESSAGE_LIMIT_CHARS",
    "Failure",
    "Timeouts",
    "classify_exception",
    "classify_status",
    "message_of",
    "server_message",
]

ERROR_BODY_LIMIT_BYTES = 64 * 1024
MESSAGE_LIMIT_CHARS = 500


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Time limits of one request, seconds.

    Attributes:
        connect_s: TCP (and TLS) connect.
        read_s: longest silence: until the first response byte, and between reads.
        total_s: the whole request, from send to the end of the stream.
    """

    connect_s: float = 10.0
    read_s: float = 60.0
    total_s: float = 600.0

    def __post_init__(self) -> None:
        positive("connect_s", self.connect_s)
        positive("read_s", self.read_s)
        positive("total_s", self.total_s)

    def as_dict(self) -> dict[str, float]:
        return {"connect_s": self.connect_s, "read_s": self.read_s, "total_s": self.total_s}


def classify_status(status: int) -> str:
    """The error class of a non-200 HTTP status: ``http_429``, ``http_5xx`` or ``http_4xx``."""
    if status == 429:
        return "http_429"
    if status >= 500:
        return "http_5xx"
    return "http_4xx"


def classify_exception(exc: BaseException) -> str:
    """The error class of an exception raised while sending a request or reading its answer.

    Connect failures (``dns``, ``connect_refused``, ``connect_timeout``) come first because
    aiohttp's connector errors are also ``OSError``; a socket read that timed out is a
    ``read_timeout``; a connection dropped mid-answer is ``connection_reset``.
    """
    if isinstance(exc, WireError):
        return exc.error_class
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "dns"
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return "connect_timeout"
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, TimeoutError):
            return "connect_timeout"
        return "connect_refused"
    if isinstance(exc, aiohttp.SocketTimeoutError | aiohttp.ServerTimeoutError):
        return "read_timeout"
    if isinstance(exc, SSEError):
        return "malformed_sse"
    if isinstance(
        exc,
        aiohttp.ClientPayloadError
        | aiohttp.ServerDisconnectedError
        | aiohttp.ClientOSError
        | ConnectionError,
    ):
        return "connection_reset"
    if isinstance(exc, TimeoutError):
        return "read_timeout"
    return "client_error"


def server_message(body: bytes) -> str:
    """The human message of an error body: OpenAI's ``error.message``, vLLM's ``message``, …"""
    text = body[:ERROR_BODY_LIMIT_BYTES].decode("utf-8", errors="replace").strip()
    try:
        obj = json.loads(text)
    except ValueError:
        return text[:MESSAGE_LIMIT_CHARS] or "(empty body)"
    return message_of(obj) or text[:MESSAGE_LIMIT_CHARS]


def message_of(obj: object) -> str | None:
    if isinstance(obj, str):
        return obj[:MESSAGE_LIMIT_CHARS]
    if isinstance(obj, dict):
        for key in ("error", "message", "detail"):
            if obj.get(key):
                inner = message_of(obj[key])
                if inner:
                    return inner
        return json.dumps(obj)[:MESSAGE_LIMIT_CHARS]
    if isinstance(obj, list) and obj:
        return message_of(obj[0])
    return None


class Failure(Exception):
    """A classified failure found while reading a response."""

    def __init__(self, error_class: str, message: str) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.message = message
