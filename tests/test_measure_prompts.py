"""Synthetic prompts: size counted in words (≈ tokens), seeded, unique per request."""

from __future__ import annotations

import pytest

from infphys.measure.prompts import (
    WORDS,
    PromptList,
    SyntheticPrompts,
    estimate_tokens,
    synthetic_prompt,
)


@pytest.mark.parametrize("n", [1, 7, 128, 2048])
def test_synthetic_prompt_has_exactly_n_words(n: int) -> None:
    p = synthetic_prompt(n, seed=3)
    assert len(p.split(" ")) == n
    assert all(w in WORDS for w in p.split(" "))


def test_word_list_is_short_lowercase_unique_words() -> None:
    assert len(WORDS) == len(set(WORDS)) >= 200
    assert all(w.isalpha() and w.islower() and len(w) <= 9 for w in WORDS)


def test_seeded_and_unique_per_request() -> None:
    a, b = SyntheticPrompts(64, seed=1), SyntheticPrompts(64, seed=1)
    assert a(5) == b(5)
    assert a(5) != a(6)
    assert SyntheticPrompts(64, seed=2)(5) != a(5)
    same = SyntheticPrompts(64, seed=1, unique=False)
    assert same(0) == same(99)
    assert a.describe()["n_tokens"] == 64


def test_prompt_list_cycles() -> None:
    src = PromptList(["a b", "c"])
    assert [src(i) for i in range(4)] == ["a b", "c", "a b", "c"]
    assert src.describe()["count"] == 2
    with pytest.raises(ValueError, match="prompts"):
        PromptList([])
    with pytest.raises(ValueError, match=r"prompts\[1\]"):
        PromptList(["ok", " "])


def test_chars_over_four_estimate() -> None:
    # 400 characters / 4 = 100 tokens; an empty text still counts 1.
    assert estimate_tokens("x" * 400) == 100
    assert estimate_tokens("") == 1


@pytest.mark.parametrize("bad", [0, -1, 2.5, "8"])
def test_bad_sizes(bad: object) -> None:
    with pytest.raises(ValueError, match="n_tokens"):
        synthetic_prompt(bad)  # type: ignore[arg-type]
