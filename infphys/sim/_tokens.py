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

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "OUTPUT_JSON",
    "OUTPUT_TEXT",
    "OUTPUT_WORDS",
    "count_chat_prompt_tokens",
    "count_completion_prompt_tokens",
    "count_text_tokens",
]

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


def count_chat_prompt_tokens(messages: Iterable[Mapping[str, Any]]) -> int:
    """Prompt tokens of a chat request: content pieces plus Llama 3's template framing.

    Framing: ``<|begin_of_text|>`` (1), per message a header ``<|start_header_id|>role
    <|end_header_id|>\\n\\n`` (4) and ``<|eot_id|>`` (1), and the assistant header (4).

    >>> count_chat_prompt_tokens([{"role": "user", "content": "the cat sat"}])
    13
    """
    n = 5
    for m in messages:
        n += 5 + count_text_tokens(_content_text(m.get("content")))
    return n


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
