"""The transport boundary: an in-memory transport drives ChatClient end to end; stack choice."""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest

from infphys.measure import ChatClient, MockResponse, MockTransport, Target, make_transport
from infphys.measure._wire import WireReset
from infphys.measure.client import Timeouts
from infphys.measure.transport import AiohttpTransport, WireTransport

TARGET = Target(base_url="http://127.0.0.1:9", model="m")


def _event(obj: object) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def _delta(text: str) -> bytes:
    return _event({"choices": [{"delta": {"content": text}, "finish_reason": None}]})


def _stream(_path: str, _body: bytes, _headers: Mapping[str, str]) -> MockResponse:
    # Two content chunks at +10 and +20 ms, then usage and [DONE] in one read at +30 ms.
    return MockResponse(
        pieces=[
            (_delta("Hello"), 0.010),
            (_delta(" world"), 0.020),
            (
                _event({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2}})
                + b"data: [DONE]\n\n",
                0.030,
            ),
        ]
    )


async def test_mock_transport_drives_a_streamed_request_end_to_end() -> None:
    mock = MockTransport(_stream)
    async with ChatClient(TARGET, transport=mock) as client:
        rec = await client.chat("hi there", max_tokens=2)
    assert mock.opened and mock.closed
    assert rec.status == "ok" and rec.http_status == 200
    # Arrival offsets are the script's: TTFT = 10 ms, e2e = 30 ms, one gap of 10 ms.
    assert rec.ttft_s == pytest.approx(0.010, abs=1e-9)
    assert rec.e2e_s == pytest.approx(0.030, abs=1e-9)
    gaps = [b - a for a, b in zip(rec.chunk_times_s, rec.chunk_times_s[1:], strict=False)]
    assert gaps == [pytest.approx(0.010, abs=1e-9)]
    assert (rec.prompt_tokens, rec.completion_tokens, rec.token_count_source) == (5, 2, "usage")
    # What went out: one POST to the chat path with the client's body.
    ((path, body),) = mock.requests
    assert path == "/v1/chat/completions"
    sent = json.loads(body)
    assert sent["max_tokens"] == 2 and sent["stream"] is True and sent["model"] == "m"
    assert client.http_client == "in-memory mock transport"


async def test_mock_transport_http_error_and_mid_stream_reset_are_classified() -> None:
    def busy(*_: object) -> MockResponse:
        return MockResponse(
            status=429,
            headers={"Content-Type": "application/json", "Retry-After": "2"},
            pieces=[(b'{"error": {"message": "slow down"}}', 0.001)],
        )

    async with ChatClient(TARGET, transport=MockTransport(busy)) as client:
        rec = await client.chat("x")
    assert (rec.status, rec.error_class, rec.http_status) == ("failed", "http_429", 429)
    assert "slow down" in (rec.error_message or "") and "Retry-After: 2" in (
        rec.error_message or ""
    )

    def reset(*_: object) -> MockResponse:
        return MockResponse(pieces=[(_delta("a"), 0.005)], error=WireReset("peer went away"))

    async with ChatClient(TARGET, transport=MockTransport(reset)) as client:
        rec = await client.chat("x")
    assert (rec.status, rec.error_class) == ("failed", "connection_reset")
    assert rec.first_token_s is not None  # the chunk before the reset was timed

    def no_done(*_: object) -> MockResponse:
        return MockResponse(pieces=[(_delta("a"), 0.005)])

    async with ChatClient(TARGET, transport=MockTransport(no_done)) as client:
        rec = await client.chat("x")
    assert rec.error_class == "no_done"


async def test_mock_transport_non_streamed_body_arrives_at_its_last_piece() -> None:
    body = json.dumps(
        {
            "choices": [{"message": {"content": "four words of text"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4},
        }
    ).encode()

    def json_body(*_: object) -> MockResponse:
        # The body in two reads, the last at +40 ms: TTFT = e2e = 40 ms.
        return MockResponse(
            headers={"content-type": "application/json"},
            pieces=[(body[:10], 0.020), (body[10:], 0.040)],
        )

    async with ChatClient(TARGET, stream=False, transport=MockTransport(json_body)) as client:
        rec = await client.chat("x")
    assert rec.status == "ok" and rec.finish_reason == "stop"
    assert rec.ttft_s == pytest.approx(0.040, abs=1e-9) and rec.e2e_s == rec.ttft_s
    assert rec.completion_tokens == 4


def test_make_transport_chooses_the_stack_for_the_target() -> None:
    t = Timeouts()
    assert isinstance(make_transport("http://127.0.0.1:8000/v1/chat", "auto", t), WireTransport)
    assert isinstance(make_transport("https://example.invalid/v1", "auto", t), AiohttpTransport)
    assert isinstance(make_transport("http://127.0.0.1:8000", "aiohttp", t), AiohttpTransport)
    with pytest.raises(ValueError, match="http_stack"):
        make_transport("https://example.invalid", "wire", t)
    with pytest.raises(ValueError, match="http_stack"):
        make_transport("http://127.0.0.1", "curl", t)  # type: ignore[arg-type]
