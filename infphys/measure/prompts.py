"""Prompts of a requested size, without downloading a tokenizer; or the user's own prompts.

How the size is counted: a synthetic prompt of ``n`` tokens is ``n`` words drawn from
:data:`WORDS`, joined by single spaces. Every word there is a common, short, lower-case English
word; in the byte-pair encodings of current chat models (Llama 3's 128k vocabulary, which
contains OpenAI's cl100k merges, Mistral's, Qwen's) a common word preceded by a space is one
token, so ``n`` words are ``n`` tokens (the first word, without its space, may rarely split in
two). Not counted: the chat template the server wraps around the message. Llama 3.1's template
adds about 25 tokens (headers, and a default system block with the knowledge cut-off date), so a
512-word prompt is reported by the server as roughly 512 + 25 prompt tokens; the server's
``usage.prompt_tokens`` is the truth, and the client records it.

Each request gets different words by default (``unique=True``): identical prompts would let a
server with prefix caching skip the prefill and make TTFT look better than a real workload sees.

Worked example::

    >>> p = synthetic_prompt(6, seed=1)
    >>> len(p.split())
    6
    >>> SyntheticPrompts(128, seed=1)(0) == SyntheticPrompts(128, seed=1)(0)
    True
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from infphys._check import non_negative_int, positive_int

__all__ = [
    "WORDS",
    "PromptList",
    "PromptSource",
    "SyntheticPrompts",
    "estimate_tokens",
    "synthetic_prompt",
]

#: Common English words, each one token (with its leading space) in Llama-3-class BPE vocabularies.
WORDS: tuple[str, ...] = tuple(
    dict.fromkeys(
        """
    the of and to in is was for on that with as by at from his her they this have had not are
    but one all were when we there can an which their said if will each about how up out them
    then she many some so these would other into has more two like him see time could no make
    than first been its who now people my made over did down only way find use may water long
    little very after words called just where most know get through back much before go good
    new write our used me man too any day same right look think also around another came come
    work three word must because does part even place well such here take why things help put
    years different away again off went old number great tell men say small every found still
    between name should home big give air line set own under read last never us left end along
    while might next sound below saw something thought both few those always looked show large
    often together asked house world going want school important until form food keep children
    feet land side without boy once animals life enough took sometimes four head above kind began
    almost live page got earth need far hand high year mother light parts country father let
    night following picture being study second eyes soon times story boys since white days ever
    paper hard near sentence better best across during today others however sure means knew
    its try told young miles sun ways thing whole hear example heard several change answer room
    sea against top turned learn point city play toward five using himself usually money
    """.split()  # noqa: SIM905 - a word list reads better as text
    )
)


def synthetic_prompt(n_tokens: int, *, seed: int = 0) -> str:
    """``n_tokens`` words drawn from :data:`WORDS` with ``random.Random(seed)``.

    Raises:
        ValueError: if ``n_tokens`` is not a whole number ≥ 1.
    """
    n = positive_int("n_tokens", n_tokens)
    rng = random.Random(seed)
    return " ".join(rng.choices(WORDS, k=n))


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate of the tokens in ``text``: characters / 4, at least 1.

    The usual rule of thumb for English under BPE. It is the fallback recorded as
    ``token_count_source="chars/4"`` when a server sends no ``usage``; for the synthetic prompts
    here (about 5 characters a word with its space) it overestimates by about a quarter.
    """
    return max(1, round(len(text) / 4))


class PromptSource(Protocol):
    """Gives the prompt of request ``i`` and describes itself for the run header."""

    def __call__(self, i: int) -> str: ...

    def describe(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class SyntheticPrompts:
    """Synthetic prompts of ``n_tokens`` tokens (see the module docstring for the counting).

    Attributes:
        n_tokens: words (≈ tokens) per prompt.
        seed: base seed; request ``i`` uses ``random.Random(seed * 1_000_003 + i)`` when
            ``unique``, else every request gets the prompt of ``seed``.
        unique: a different prompt for each request (defeats prefix caching).
    """

    n_tokens: int
    seed: int = 0
    unique: bool = True

    def __post_init__(self) -> None:
        positive_int("n_tokens", self.n_tokens)
        non_negative_int("seed", self.seed)

    def __call__(self, i: int) -> str:
        s = self.seed * 1_000_003 + i if self.unique else self.seed
        return synthetic_prompt(self.n_tokens, seed=s)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "synthetic",
            "n_tokens": self.n_tokens,
            "seed": self.seed,
            "unique": self.unique,
            "counting": "words from infphys.measure.prompts.WORDS, ~1 token each",
        }


@dataclass(frozen=True, slots=True)
class PromptList:
    """The user's own prompts, used in turn (request ``i`` gets ``prompts[i % len(prompts)]``)."""

    prompts: tuple[str, ...]

    def __init__(self, prompts: Sequence[str]) -> None:
        items = tuple(prompts)
        if not items:
            raise ValueError("prompts must hold at least one prompt")
        for k, p in enumerate(items):
            if not isinstance(p, str) or not p.strip():
                raise ValueError(f"prompts[{k}] must be a non-empty string")
        object.__setattr__(self, "prompts", items)

    def __call__(self, i: int) -> str:
        return self.prompts[i % len(self.prompts)]

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "list",
            "count": len(self.prompts),
            "mean_chars": sum(map(len, self.prompts)) / len(self.prompts),
        }
