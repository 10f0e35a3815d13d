"""Every fault, against a real loopback server, is classified — and nothing hangs or raises.

The servers are :class:`infphys.measure.stub.StubServer` on 127.0.0.1 (real sockets, real
aiohttp); the client is the one the load generator uses, on both of its HTTP stacks (every test
runs once with infphys's wire client and once with aiohttp). Timeouts are short so each case
ends in well under a second.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from loopback import free_port

from infphys.measure.client import (
    ChatClient,
    HttpStack,
    Timeouts,
    classify_exception,
    classify_status,
)
from infphys.measure.stub import FAULTS, StubConfig, StubServer
from infphys.measure.target import Target
from infphys.records import ERROR_CLASSES, RequestRecord

FAST = Timeouts(connect_s=1.0, read_s=0.4, total_s=0.8)
STACK: list[HttpStack] = ["wire"]


@pytest.fixture(autouse=True, params=["wire", "aiohttp"])
def stack(request: pytest.FixtureRequest) -> HttpStack:
    """Run every test once per HTTP stack; ``_client`` reads the choice."""
    STACK[0] = request.param
    return STACK[0]


def _client(target: Target, **kw: Any) -> ChatClient:
    return ChatClient(target, http_stack=STACK[0], **kw)


EXPECTED = {
    "http_500": ("http_5xx", 500),
    "http_429": ("http_429", 429),
    "http_503": ("http_5xx", 503),
    "stall": ("read_timeout", None),
    "close_mid_stream": ("connection_reset", 200),
    "malformed_sse": ("malformed_sse", 200),
    "non_json": ("malformed_json", 200),
    "error_event": ("stream_error_event", 200),
    "trickle": ("total_timeout", 200),
    "no_done": ("no_done", 200),
}


def test_every_fault_has_an_expectation() -> None:
    assert set(EXPECTED) == set(FAULTS)
    assert {cls for cls, _ in EXPECTED.values()} <= set(ERROR_CLASSES)


async def _one(config: StubConfig, timeouts: Timeouts = FAST, **client_kw: Any) -> RequestRecord:
    async with (
        StubServer(config) as server,
        _client(server.target(), timeouts=timeouts, **client_kw) as client,
    ):
        return await client.chat("hello there", max_tokens=8, request_id=3)


async def test_a_healthy_stream_is_ok_with_usage() -> None:
    async with (
        StubServer(StubConfig(delay_s=0.02, tokens=8, token_gap_s=0.002)) as server,
        _client(server.target(), timeouts=FAST) as client,
    ):
        rec = await client.chat("one two three", max_tokens=8)
    assert rec.status == "ok" and rec.error_class is None and rec.http_status == 200
    assert rec.token_count_source == "usage"
    assert (rec.prompt_tokens, rec.completion_tokens, rec.finish_reason) == (3, 8, "length")
    assert len(rec.chunk_times_s) == 8
    assert rec.chunk_times_s == sorted(rec.chunk_times_s)
    assert rec.first_token_s == rec.chunk_times_s[0]
    assert rec.sent_s < rec.first_token_s <= rec.end_s
    # 20 ms before the first token, then 7 gaps of 2 ms: e2e ≈ 34 ms, TTFT ≈ 20 ms. A busy
    # machine only adds time, so the bounds are from below: TTFT at least the 20 ms, and at
    # least 7 × 2 = 14 ms (less 2 ms for timer rounding) between the first token and the end.
    assert rec.ttft_s >= 0.019
    assert rec.e2e_s - rec.ttft_s >= 0.012
    assert rec.tpot_s is not None and rec.tpot_s > 0.001


async def test_non_streaming_request() -> None:
    rec = await _one(StubConfig(tokens=5), stream=False)
    assert rec.status == "ok"
    assert rec.completion_tokens == 5
    assert rec.ttft_s == rec.e2e_s


async def test_without_usage_the_counts_are_flagged_estimates() -> None:
    rec = await _one(StubConfig(tokens=6), include_usage=False)
    assert rec.status == "ok"
    assert rec.token_count_source == "chunks"
    assert rec.completion_tokens == 6
    assert rec.prompt_tokens == 3  # "hello there": 11 characters / 4 = 2.75, rounded to 3


@pytest.mark.parametrize("fault", FAULTS)
async def test_fault_is_classified(fault: str) -> None:
    config = StubConfig(fault=fault, stall_s=3.0, trickle_gap_s=0.05, delay_s=0.005)
    async with (
        asyncio.timeout(10),  # only against a hang
        StubServer(config) as server,
        _client(server.target(), timeouts=FAST) as client,
    ):
        called_s = client.now_s()
        rec = await client.chat("hello there", max_tokens=8, request_id=3)
    cls, status = EXPECTED[fault]
    assert rec.status == "failed", rec
    assert rec.error_class == cls, rec
    assert rec.http_status == status
    assert rec.error_message
    assert rec.end_s is not None and rec.e2e_s is not None
    # The class says which timer ended a stall or a trickle (not the 3 s stall's end, not the
    # guard); a timer never fires before its limit, however busy the machine. The read timer
    # starts after the send that e2e_s counts from; total_s bounds the whole request, connecting
    # included, so its clock starts when chat() is called (seen 11 ms before the send on a busy
    # machine: e2e_s 0.789 s against total_s 0.8 s).
    if cls == "read_timeout":
        assert rec.e2e_s >= FAST.read_s - 0.01
    if cls == "total_timeout":
        assert rec.end_s - called_s >= FAST.total_s - 0.001


async def test_http_errors_carry_the_servers_message_and_retry_after() -> None:
    rec = await _one(StubConfig(fault="http_429", retry_after_s=7))
    assert "rate limit" in rec.error_message
    assert "Retry-After: 7" in rec.error_message


async def test_wrong_model_is_a_4xx_with_the_message() -> None:
    async with (
        StubServer(StubConfig()) as server,
        _client(server.target(model="no/such-model"), timeouts=FAST) as c,
    ):
        rec = await c.chat("x")
    assert (rec.error_class, rec.http_status) == ("http_4xx", 404)
    assert "does not exist" in (rec.error_message or "")


async def test_wrong_key_is_a_4xx_and_the_key_is_not_in_the_message() -> None:
    async with (
        StubServer(StubConfig(api_key="right-key")) as server,
        _client(server.target(api_key="wrong-key-XYZ"), timeouts=FAST) as c,
    ):
        rec = await c.chat("x")
    assert (rec.error_class, rec.http_status) == ("http_4xx", 401)
    assert "XYZ" not in (rec.error_message or "")


async def test_connection_refused() -> None:
    target = Target(base_url=f"http://127.0.0.1:{free_port()}")
    async with _client(target, timeouts=FAST) as c:
        rec = await c.chat("x")
    assert rec.error_class == "connect_refused" and rec.http_status is None


async def test_dns_failure() -> None:
    # ".invalid" is reserved (RFC 2606): it never resolves.
    async with asyncio.timeout(10):
        async with _client(Target(base_url="http://host.invalid:8000"), timeouts=FAST) as c:
            rec = await c.chat("x")
    assert rec.error_class in ("dns", "connect_timeout")


def test_classify_exception_table() -> None:
    key = aiohttp.client_reqrep.ConnectionKey("h", 1, False, True, None, None, None)
    refused = aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "refused"))
    assert classify_exception(refused) == "connect_refused"
    assert classify_exception(aiohttp.ConnectionTimeoutError()) == "connect_timeout"
    assert classify_exception(aiohttp.SocketTimeoutError()) == "read_timeout"
    assert classify_exception(aiohttp.ServerDisconnectedError()) == "connection_reset"
    assert classify_exception(aiohttp.ClientPayloadError("x")) == "connection_reset"
    assert classify_exception(ConnectionResetError()) == "connection_reset"
    assert classify_exception(RuntimeError("?")) == "client_error"
    assert [classify_status(s) for s in (429, 500, 503, 400, 404)] == [
        "http_429",
        "http_5xx",
        "http_5xx",
        "http_4xx",
        "http_4xx",
    ]


async def test_cancelled_request_is_marked_incomplete() -> None:
    async with (
        StubServer(StubConfig(delay_s=5.0)) as server,
        _client(server.target(), timeouts=Timeouts(read_s=10, total_s=10)) as c,
    ):
        rec = RequestRecord(request_id=0, sent_s=0.0)
        task = asyncio.ensure_future(c.send(rec, "x", 4))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert rec.status == "incomplete" and rec.error_class is None
    assert rec.end_s is not None


def test_stub_in_a_background_thread_serves_sync_code() -> None:
    from infphys.measure._sync import run_sync

    with StubServer(StubConfig(tokens=3)) as server:

        async def go() -> RequestRecord:
            async with _client(server.target(), timeouts=FAST) as c:
                return await c.chat("hi")

        rec = run_sync(go())
    assert rec.status == "ok" and rec.completion_tokens == 3


def test_stub_config_validation() -> None:
    with pytest.raises(ValueError, match="fault"):
        StubConfig(fault="explode")
    with pytest.raises(ValueError, match="delay_s"):
        StubConfig(delay_s=-1)
    assert "secret" not in repr(StubConfig(api_key="secret"))
