"""Token counts without a tokenizer, and the words the simulated model answers with.

Prompt tokens are the pieces a BPE pre-tokenizer splits text into (runs of letters or digits,
runs of punctuation: one token per common English word, as the measuring client's synthetic
prompts assume), plus Llama 3's chat-template framing for chat requests (begin-of-text, a
4-token header and an end-of-turn per message, and the assistant header: 5 + 5 per message).
A ``prompt`` given as a list of token ids counts exactly.

Worked example: one user message ``"the cat sat"`` is 3 pieces + 5 framing for the message + 5
for begin-of-text and the assistant header = 13 prompt tokens; the same text sent to
``/v1/completions`` is 3 + 1 (begin-of-text) = 4.

>>> count_chat_prompt_tokens([{"role": "user", "content": "the cat sat"}])
13
>>> count_completion_prompt_tokens("the cat sat")
4
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

__all__ = [
    "OUTPUT_JSON",
    "OUTPUT_TEXT",
    "OUTPUT_WORDS",
    "SLICE_CHARS",
    "chat_prompt_parts",
    "count_chat_prompt_tokens",
    "count_completion_prompt_tokens",
    "count_text_tokens",
    "count_tokens_yielding",
    "text_token_slices",
]

#: Characters of text counted in one go by :func:`text_token_slices` (about 0.7 ms of one
#: laptop core at ~12 MB/s; a server yields to its event loop between slices).
SLICE_CHARS = 8192

_PIECE = re.compile(r"[^\W_]+|[^\w\s]+|_+")
#: Words the simulated model "says", one token each; cycled.
OUTPUT_WORDS: tuple[str, ...] = (
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "while",
    "seven",
    "bright",
    "stars",
    "keep",
    "watch",
    "above",
    "calm",
    "water",
    "and",
    "small",
    "boats",
    "drift",
    "toward",
    "home",
    "as",
    "night",
    "falls",
    "slowly",
    "on",
    "every",
    "quiet",
    "hill",
)
#: The same with the leading space each token carries in the response text.
OUTPUT_TEXT: tuple[str, ...] = tuple(" " + w for w in OUTPUT_WORDS)
#: The same as JSON string literals, ready to paste into a streamed chunk.
OUTPUT_JSON: tuple[str, ...] = tuple(json.dumps(t) for t in OUTPUT_TEXT)


def count_text_tokens(text: str) -> int:
    """Tokens of ``text`` by BPE pre-tokenizer pieces (words, numbers, punctuation runs).

    >>> count_text_tokens("the cat sat on the mat")
    6
    >>> count_text_tokens("Hello, world!")
    4
    """
    return len(_PIECE.findall(text))


def text_token_slices(text: str, slice_chars: int = SLICE_CHARS) -> Iterator[int]:
    """Token counts of consecutive slices of ``text``; they sum to :func:`count_text_tokens`.

    A piece is a maximal run of one character class (letters/digits, punctuation, ``_``), so a
    cut between two characters that the pattern would join splits one piece into two: that
    slice's count is lowered by one. A caller can yield to its event loop between slices, so a
    10 MB prompt (about 1 s of counting on one core) never blocks other work for more than one
    slice.

    >>> text = "the cat sat on the mat " * 10_000
    >>> sum(text_token_slices(text, 1000)) == count_text_tokens(text) == 60_000
    True
    """
    if slice_chars < 2:
        raise ValueError(f"slice_chars must be at least 2 (got {slice_chars!r})")
    start = 0
    end_all = len(text)
    while start < end_all:
        end = min(start + slice_chars, end_all)
        n = len(_PIECE.findall(text, start, end))
        if end < end_all and _PIECE.fullmatch(text[end - 1 : end + 1]) is not None:
            n -= 1
        yield n
        start = end


async def count_tokens_yielding(fixed: int, texts: list[str]) -> int:
    """``fixed`` plus the pieces of ``texts``, yielding to the event loop between 8 KB slices.

    Counting 10 MB of text takes about a second of one core; done in one go on a server's
    event loop it would hold every other stream's tokens back that long.

    >>> asyncio.run(count_tokens_yielding(1, ["the cat sat"] * 3))
    10
    """
    n = fixed
    since_yield = 0
    for text in texts:
        if len(text) <= SLICE_CHARS:
            n += count_text_tokens(text)
            since_yield += len(text)
            if since_yield > SLICE_CHARS:
                since_yield = 0
                await asyncio.sleep(0)
            continue
        for k in text_token_slices(text):
            n += k
            await asyncio.sleep(0)
    return n


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for p in content:
            if isinstance(p, dict) and isinstance(p.get("text"), str):
                parts.append(p["text"])
            elif isinstance(p, str):
                parts.append(p)
        return " ".join(parts)
    raise ValueError("content must be a string or a list of text parts")


def chat_prompt_parts(messages: Iterable[Mapping[str, Any]]) -> tuple[int, list[str]]:
    """The template framing tokens of a chat request and the texts whose pieces to add.

    >>> chat_prompt_parts([{"role": "user", "content": "the cat sat"}])
    (10, ['the cat sat'])
    """
    n = 5
    texts: list[str] = []
    for m in messages:
        n += 5
        texts.append(_content_text(m.get("content")))
    return n, texts


def count_chat_prompt_tokens(messages: Iterable[Mapping[str, Any]]) -> int:
    """Prompt tokens of a chat request: content pieces plus Llama 3's template framing.

    Framing: ``<|begin_of_text|>`` (1), per message a header ``<|start_header_id|>role
    <|end_header_id|>\\n\\n`` (4) and ``<|eot_id|>`` (1), and the assistant header (4).

    >>> count_chat_prompt_tokens([{"role": "user", "content": "the cat sat"}])
    13
    """
    framing, texts = chat_prompt_parts(messages)
    return framing + sum(count_text_tokens(t) for t in texts)


def count_completion_prompt_tokens(prompt: str | list[int]) -> int:
    """Prompt tokens of a completions request: ids counted exactly, text by pieces plus BOS.

    >>> count_completion_prompt_tokens([1, 2, 3])
    3
    >>> count_completion_prompt_tokens("the cat sat")
    4
    """
    if isinstance(prompt, list):
        return len(prompt)
    return 1 + count_text_tokens(prompt)
