"""The SSE parser against the WHATWG spec's rules, and httpx-sse's decoder as an oracle."""

from __future__ import annotations

import random

import pytest
from httpx_sse._decoders import SSEDecoder, SSELineDecoder

from infphys.measure._sse import SSEError, SSEEvent, SSEParser


def parse(*chunks: bytes) -> list[SSEEvent]:
    p = SSEParser()
    out: list[SSEEvent] = []
    for c in chunks:
        out.extend(p.feed(c))
    return out


def test_openai_stream() -> None:
    body = b'data: {"a":1}\n\ndata: {"b":2}\n\ndata: [DONE]\n\n'
    assert [e.data for e in parse(body)] == ['{"a":1}', '{"b":2}', "[DONE]"]


def test_spec_example_multiline_data_and_comments() -> None:
    # HTML spec §9.2.6 examples: comment lines ignored; data lines joined with LF.
    body = (
        b": test stream\n\ndata: first event\nid: 1\n\n"
        b"data:second event\nid\n\ndata:  third event\n\n"
    )
    ev = parse(body)
    assert [e.data for e in ev] == ["first event", "second event", " third event"]
    assert [e.id for e in ev] == ["1", "", ""]
    assert parse(b"data: YHOO\ndata: +2\ndata: 10\n\n")[0].data == "YHOO\n+2\n10"


def test_line_endings_cr_lf_crlf_even_split_across_reads() -> None:
    assert [e.data for e in parse(b"data: a\r\rdata: b\r\n\r\ndata: c\n\n")] == ["a", "b", "c"]
    # A CRLF split between two reads is one line ending, not two.
    assert [e.data for e in parse(b"data: a\r", b"\n\r", b"\ndata: b\n\n")] == ["a", "b"]


def test_event_type_retry_and_bom() -> None:
    ev = parse(b"\xef\xbb\xbfevent: error\nretry: 1500\ndata: x\n\n")
    assert ev == [SSEEvent(data="x", event="error", id="", retry_ms=1500)]
    # retry that is not all digits is ignored; id with NUL is ignored
    ev = parse(b"retry: 1.5\nid: a\x00b\ndata: y\n\n")
    assert ev[0].retry_ms is None and ev[0].id == ""


def test_event_without_data_is_not_dispatched_and_unterminated_is_discarded() -> None:
    p = SSEParser()
    assert p.feed(b"event: ping\n\n") == []
    assert p.feed(b"data: half") == []
    assert p.close() is True  # pending event discarded at end of stream


def test_unknown_fields_are_counted_not_dispatched() -> None:
    p = SSEParser()
    assert p.feed(b"this is not a field\ndata: x\n\n")[0].data == "x"
    assert p.unknown_fields == ["this is not a field"]


def test_invalid_utf8_raises() -> None:
    with pytest.raises(SSEError):
        parse(b"data: \xff\xfe\n\n")


@pytest.mark.parametrize("seed", range(20))
def test_matches_httpx_sse_on_random_streams_and_random_splits(seed: int) -> None:
    """Random event streams (every event has a data line: httpx-sse departs from the spec for
    events without data), cut at random places, parse as httpx-sse's decoder parses them."""
    rng = random.Random(seed)
    pieces = []
    for _ in range(rng.randint(1, 15)):
        fields = [rng.choice(["event: upd", "id: 7", ": c", "retry: 9"]) for _ in range(2)]
        data = rng.choice(["data: ", "data:"]) + rng.choice(
            ['{"x":1}', "ä ü", "", "[DONE]", " two  spaces"]
        )
        fields.insert(rng.randint(0, 2), data)
        pieces.extend(f + rng.choice(["\n", "\r\n", "\r"]) for f in fields)
        pieces.append(rng.choice(["\n", "\r\n", "\r"]))
    body = "".join(pieces).encode()
    cuts = sorted(rng.sample(range(1, len(body)), k=min(5, len(body) - 1)))
    chunks = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    ours = [(e.data, e.event, e.id, e.retry_ms) for e in parse(*chunks)]
    lines = SSELineDecoder()
    dec = SSEDecoder()
    oracle = []
    for line in [*lines.decode(body.decode("utf-8")), *lines.flush()]:
        ev = dec.decode(line)
        if ev is not None:
            oracle.append((ev.data, ev.event or "message", ev.id, ev.retry))
    assert ours == oracle


def test_a_character_split_across_reads_is_decoded_whole() -> None:
    body = 'data: {"content":"naïve ✓"}\n\n'.encode()
    cut = body.index("✓".encode()) + 1  # inside the 3-byte character
    assert [e.data for e in parse(body[:cut], body[cut:])] == ['{"content":"naïve ✓"}']
