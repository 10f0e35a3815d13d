"""Latency budgets from human perception: how fast people read, how long they wait.

Published figures, each with its source, and the two latency objectives they imply for a chat
that streams its answer:

- **Reading speed.** Brysbaert's (2019) meta-analysis of reading-rate studies puts adults' silent
  reading of English non-fiction at 238 words per minute (260 for fiction).
- **Tokens per word.** OpenAI's rule of thumb for English text: one token is about ¾ of a word
  (100 tokens ≈ 75 words), so 4/3 tokens per word. Other tokenizers and languages differ; the
  figure is an argument wherever it is used.
- **Response-time limits.** Nielsen (1993), after Miller (1968) and Card, Robertson and Mackinlay
  (1991): 0.1 s feels instantaneous, 1 s keeps the user's flow of thought uninterrupted, 10 s
  is the limit for keeping attention on the dialogue.

Derived (:func:`reading_pace_itl_s`): a stream that emits one token every
60 / (words per minute × tokens per word) seconds keeps exactly pace with a silent reader; a
shorter inter-token latency buys speed no reader uses, a longer one makes the reader wait. The
default objectives (:data:`DEFAULT_SLO`) are that reading-pace ITL and Nielsen's 1 s for the
first token: the user's flow of thought is not broken before the answer starts.

Worked example: 238 words/min × 4/3 tokens/word = 317.3 tokens/min = 5.29 tokens/s, so one
token every 60 / 317.3 = 0.189 s (189 ms). A 20 ms ITL streams 9.5 times faster than anyone
reads silently.
"""

from __future__ import annotations

from dataclasses import dataclass

from infphys._check import positive

__all__ = [
    "DEFAULT_SLO",
    "FLOW_OF_THOUGHT_S",
    "INSTANT_S",
    "PERCEPTION_SOURCES",
    "READING_WORDS_PER_MIN",
    "TOKENS_PER_WORD",
    "UNDIVIDED_ATTENTION_S",
    "LatencySLO",
    "reading_pace_itl_s",
]

#: Adults' silent reading rate of English non-fiction, words per minute (Brysbaert 2019).
READING_WORDS_PER_MIN = 238.0
#: Tokens per English word: one token ≈ ¾ of a word (OpenAI's tokenizer rule of thumb).
TOKENS_PER_WORD = 4.0 / 3.0
#: Response time that feels instantaneous, seconds (Nielsen 1993; Card et al. 1991).
INSTANT_S = 0.1
#: Response time that keeps the user's flow of thought uninterrupted, seconds (Nielsen 1993).
FLOW_OF_THOUGHT_S = 1.0
#: Response time beyond which users turn to other tasks, seconds (Nielsen 1993).
UNDIVIDED_ATTENTION_S = 10.0

#: Where each figure comes from, by constant name.
PERCEPTION_SOURCES: dict[str, str] = {
    "READING_WORDS_PER_MIN": (
        "Brysbaert, M. (2019). How many words do we read per minute? A review and meta-analysis "
        "of reading rate. Journal of Memory and Language 109, 104047 "
        "(doi:10.1016/j.jml.2019.104047): silent reading, English non-fiction, 238 words/min"
    ),
    "TOKENS_PER_WORD": (
        "OpenAI Help Center, 'What are tokens and how to count them?': one token is about 4 "
        "characters or 3/4 of a word of English text (100 tokens ≈ 75 words)"
    ),
    "INSTANT_S": (
        "Nielsen, J. (1993). Usability Engineering (Academic Press), summarised in the NN/g "
        "article 'Response Times: The 3 Important Limits'; after Miller (1968) and Card, "
        "Robertson & Mackinlay (1991), 'The information visualizer', CHI '91: 0.1 s "
        "instantaneous, 1 s flow of thought, 10 s attention"
    ),
}
PERCEPTION_SOURCES["FLOW_OF_THOUGHT_S"] = PERCEPTION_SOURCES["INSTANT_S"]
PERCEPTION_SOURCES["UNDIVIDED_ATTENTION_S"] = PERCEPTION_SOURCES["INSTANT_S"]


def reading_pace_itl_s(
    words_per_minute: float = READING_WORDS_PER_MIN, tokens_per_word: float = TOKENS_PER_WORD
) -> float:
    """Seconds per token at which a stream keeps exactly pace with a reader.

    60 / (words per minute × tokens per word). Assumes the reader reads at a constant rate and
    the text tokenizes at ``tokens_per_word``; a shorter ITL outruns the reader.

    >>> round(reading_pace_itl_s(), 4)  # 60 / (238 × 4/3) = 60 / 317.33
    0.1891
    >>> round(reading_pace_itl_s(183), 3)  # reading aloud (Brysbaert 2019): 60 / 244
    0.246
    """
    wpm = positive("words_per_minute", words_per_minute)
    tpw = positive("tokens_per_word", tokens_per_word)
    return 60.0 / (wpm * tpw)


@dataclass(frozen=True, slots=True)
class LatencySLO:
    """A chat's latency objective: time to first token and inter-token latency, seconds.

    ``ttft_s`` and ``itl_s`` apply to a high percentile: the p95 in the labs, ``infphys plan``
    and the fleet planner. Example: ``LatencySLO(1.0, 0.05)`` asks for a p95 TTFT within 1 s
    and a p95 ITL within 50 ms (20 tokens/s or more to every user).

    Raises:
        ValueError: either objective is not a finite number > 0 (naming it).
    """

    ttft_s: float
    itl_s: float

    def __post_init__(self) -> None:
        positive("ttft_s", self.ttft_s)
        positive("itl_s", self.itl_s)

    @property
    def ttft_ms(self) -> float:
        """``ttft_s`` in milliseconds."""
        return self.ttft_s * 1e3

    @property
    def itl_ms(self) -> float:
        """``itl_s`` in milliseconds."""
        return self.itl_s * 1e3


#: The default chat SLO: first token within the 1 s flow-of-thought limit, then tokens at
#: least as fast as a silent reader reads (189 ms each).
DEFAULT_SLO = LatencySLO(ttft_s=FLOW_OF_THOUGHT_S, itl_s=reading_pace_itl_s())
