"""The OpenAI wire format of the simulated server: request checks, response bodies, SSE chunks.

Requests are checked as vLLM checks them (400 for bad JSON, a missing field, ``max_tokens``
out of range or ``n`` > 1; 404 for another model name), and errors have vLLM's shape,
``{"error": {"message", "type", "param", "code"}}``. A streamed answer starts with a chunk
carrying ``{"role": "assistant", "content": ""}`` (chat only), then one content chunk per
token; the last content chunk carries ``finish_reason``; with ``stream_options.include_usage``
a final chunk has empty ``choices`` and the ``usage``; then ``data: [DONE]``.

Worked example: a finished chat stream of 2 tokens that asked for usage is five SSE events:
the role chunk, ``" the"``, ``" quick"`` with ``"finish_reason":"length"``, the usage chunk
(``"completion_tokens":2``), and ``[DONE]``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from infphys.sim._tokens import (
    OUTPUT_JSON,
    OUTPUT_TEXT,
    chat_prompt_parts,
    count_text_tokens,
)
from infphys.sim.engine import SimRequest

__all__ = [
    "HTTPError",
    "Stream",
    "bad",
    "chat_prompt_parts_of",
    "chat_prompt_tokens",
    "check_body",
    "completion_body",
    "completions_prompt_parts_of",
    "completions_prompt_tokens",
    "error_response",
    "max_tokens",
    "sse_chunks",
]


# --- per-request state --------------------------------------------------------------------
@dataclass(slots=True, eq=False)
class Stream:
    """One request as the engine loop and its HTTP handler share it.

    For a streamed response the engine loop formats and writes each step's chunks itself
    (``resp`` set, ``sent`` tokens written so far), so a token costs one socket write and no
    task switch; the handler only waits for the end. When a write would block (the client reads
    slowly), ``blocked`` hands the rest to the handler. In disaggregated serving
    ``decode_target`` (> 1) is the output length it decodes after its KV cache has moved
    (``transfer``: the scheduled hand-off) to a decode replica; ``replica`` is where it is now.
    """

    req: SimRequest | None
    event: asyncio.Event
    arrival_wall_s: float
    produced: int = 0
    done: bool = False
    aborted: bool = False
    finish_reason: str | None = None
    first_token_wall_s: float | None = None
    resp: web.StreamResponse | None = None
    sent: int = 0
    blocked: bool = False
    broken: bool = False
    closed: bool = False
    chat: bool = True
    head: str = ""
    include_usage: bool = False
    prompt_tokens: int = 0
    pending: Any = None
    last_token_wall_s: float | None = None
    prefill_start_wall_s: float | None = None
    decode_target: int = 0
    replica: Any = None
    transfer: Any = None


class HTTPError(Exception):
    def __init__(self, status: int, message: str, err_type: str, param: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.err_type = err_type
        self.param = param


def error_response(
    status: int, message: str, err_type: str, param: str | None = None
) -> web.Response:
    body = {"error": {"message": message, "type": err_type, "param": param, "code": status}}
    return web.json_response(body, status=status)


def bad(message: str, param: str | None = None) -> HTTPError:
    return HTTPError(400, message, "BadRequestError", param)


def check_body(body: Any, served_model_name: str) -> dict[str, Any]:
    """``body`` if it is a request this server answers; else raise :class:`HTTPError`."""
    if not isinstance(body, dict):
        raise bad("The request body must be a JSON object.")
    model = body.get("model")
    if model is not None and model != served_model_name:
        raise HTTPError(404, f"The model `{model}` does not exist.", "NotFoundError", "model")
    n = body.get("n", 1)
    if n not in (None, 1):
        raise bad("n > 1 is not supported by the infphys simulator.", "n")
    if body.get("stream_options") is not None and not body.get("stream"):
        raise bad("Stream options can only be defined when `stream=True`.", "stream_options")
    return body


def max_tokens(body: Mapping[str, Any]) -> int | None:
    """The request's ``max_completion_tokens`` (or ``max_tokens``); None when absent."""
    mt = body.get("max_completion_tokens")
    if mt is None:
        mt = body.get("max_tokens")
    if mt is None:
        return None
    if isinstance(mt, bool) or not isinstance(mt, int):
        raise bad(f"max_tokens must be an integer (got {mt!r}).", "max_tokens")
    if mt < 1:
        raise bad(f"max_tokens must be at least 1, got {mt}.", "max_tokens")
    return mt


def chat_prompt_parts_of(body: Mapping[str, Any]) -> tuple[int, list[str]]:
    """A chat request's framing tokens and the texts to count (:class:`HTTPError` if malformed).

    The prompt's tokens are the framing plus the pieces of every text; a server counts large
    texts itself, in slices (:func:`infphys.sim._tokens.text_token_slices`).
    """
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad("Field required: messages (a non-empty list).", "messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m:
            raise bad(f"messages[{i}] must be an object with a role.", "messages")
    try:
        return chat_prompt_parts(messages)
    except ValueError as exc:
        raise bad(str(exc), "messages") from None


def chat_prompt_tokens(body: Mapping[str, Any]) -> int:
    """Prompt tokens of a chat completions request (raises :class:`HTTPError` when malformed)."""
    framing, texts = chat_prompt_parts_of(body)
    return framing + sum(count_text_tokens(t) for t in texts)


def completions_prompt_parts_of(body: Mapping[str, Any]) -> tuple[int, list[str]]:
    """A completions request's fixed tokens (BOS, or the ids given) and the texts to count."""
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str | list):
        prompt = prompt[0]
    if isinstance(prompt, list):
        if not prompt or not all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
            raise bad("prompt must be a string or a list of token ids (one prompt).", "prompt")
        return len(prompt), []
    if not isinstance(prompt, str):
        raise bad("Field required: prompt.", "prompt")
    return 1, [prompt]


def completions_prompt_tokens(body: Mapping[str, Any]) -> int:
    """Prompt tokens of a completions request (raises :class:`HTTPError` when malformed)."""
    fixed, texts = completions_prompt_parts_of(body)
    return fixed + sum(count_text_tokens(t) for t in texts)


def sse_chunks(s: Stream) -> bytes:
    """SSE chunks for tokens ``s.sent`` … ``s.produced`` (and the end of the stream)."""
    words = OUTPUT_JSON
    nw = len(words)
    head = s.head
    if s.chat:
        mid, tail = '"delta":{"content":', '},"logprobs":null,"finish_reason":null}]}\n\n'
        last = '},"logprobs":null,"finish_reason":%s,"stop_reason":null}]}\n\n'
    else:
        mid = '"text":'
        tail = ',"logprobs":null,"finish_reason":null,"stop_reason":null}]}\n\n'
        last = ',"logprobs":null,"finish_reason":%s,"stop_reason":null}]}\n\n'
    parts: list[str] = []
    n = s.produced
    if s.sent == 0 and s.chat and n > 0:
        parts.append(
            head + '"delta":{"role":"assistant","content":""},"logprobs":null,'
            '"finish_reason":null}]}\n\n'
        )
    for i in range(s.sent, n):
        if s.done and i == n - 1:
            parts.append(head + mid + words[i % nw] + last % json.dumps(s.finish_reason))
        else:
            parts.append(head + mid + words[i % nw] + tail)
    s.sent = n
    if s.done:
        if s.include_usage:
            usage = json.dumps(
                {
                    "prompt_tokens": s.prompt_tokens,
                    "total_tokens": s.prompt_tokens + n,
                    "completion_tokens": n,
                },
                separators=(",", ":"),
            )
            prefix = head[: head.index('"choices"')]
            parts.append(prefix + f'"choices":[],"usage":{usage}}}\n\n')
        parts.append("data: [DONE]\n\n")
        s.closed = True
    return "".join(parts).encode()


def completion_body(
    s: Stream, rid: str, created: int, model: str, prompt_tokens: int, *, chat: bool
) -> dict[str, Any]:
    """The JSON body of a finished, non-streamed answer of ``s.produced`` tokens."""
    n = s.produced
    text = "".join(OUTPUT_TEXT[i % len(OUTPUT_TEXT)] for i in range(n))
    usage = {
        "prompt_tokens": prompt_tokens,
        "total_tokens": prompt_tokens + n,
        "completion_tokens": n,
        "prompt_tokens_details": None,
    }
    choice: dict[str, Any]
    if chat:
        choice = {
            "index": 0,
            "message": {
                "role": "assistant",
                "reasoning_content": None,
                "content": text,
                "tool_calls": [],
            },
            "logprobs": None,
            "finish_reason": s.finish_reason,
            "stop_reason": None,
        }
        obj = "chat.completion"
    else:
        choice = {
            "index": 0,
            "text": text,
            "logprobs": None,
            "finish_reason": s.finish_reason,
            "stop_reason": None,
            "prompt_logprobs": None,
        }
        obj = "text_completion"
    return {
        "id": rid,
        "object": obj,
        "created": created,
        "model": model,
        "choices": [choice],
        "usage": usage,
        "prompt_logprobs": None,
    }
