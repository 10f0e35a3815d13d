"""Lab 1 (preflight) exercises: read the first request the labs sent to their target.

Context the lab passes (the learner's own preflight request):

- ``ttft_s``, ``e2e_s``: time to first token and end-to-end time of the request, seconds.
- ``completion_tokens``: tokens the server generated (from ``usage``).

Worked example: a preflight request with TTFT 40 ms, e2e 1.040 s and 101 completion tokens has
TPOT (1.040 − 0.040) / 100 = 10 ms, i.e. 100 tokens/s for that one stream.
"""

from __future__ import annotations

from infphys.exercises.core import Exercise, Tolerance, concept_exercise

__all__ = ["Q1_TPOT", "Q2_STREAM_RATE", "Q3_SWITCH"]


def _tpot_ms(ttft_s: float, e2e_s: float, completion_tokens: int) -> float:
    if completion_tokens < 2:
        raise ValueError("TPOT needs at least 2 completion tokens")
    return (e2e_s - ttft_s) / (completion_tokens - 1) * 1e3


def _stream_tokens_per_s(ttft_s: float, e2e_s: float, completion_tokens: int) -> float:
    return 1e3 / _tpot_ms(ttft_s, e2e_s, completion_tokens)


Q1_TPOT = Exercise(
    id="lab01.q1",
    title="Time per output token",
    prompt=(
        "Your preflight request took **{e2e_s} s** end to end, its first token came after "
        "**{ttft_s} s**, and the server generated **{completion_tokens}** tokens. "
        "What was its time per output token (TPOT), in ms?"
    ),
    solution=_tpot_ms,
    tolerance=Tolerance(relative=0.03),
    unit="ms",
    hint="TPOT = (e2e − TTFT) / (completion tokens − 1): the first token is paid for by TTFT.",
    explanation=(
        "The decode phase starts when the first token arrives, so its time is e2e − TTFT and it "
        "produced completion_tokens − 1 further tokens. With TTFT 40 ms, e2e 1.040 s and 101 "
        "tokens: (1.040 − 0.040) / 100 = 10 ms."
    ),
)

Q2_STREAM_RATE = Exercise(
    id="lab01.q2",
    title="Tokens per second for one stream",
    prompt=(
        "At that TPOT, how many tokens per second does **one** user see while the answer streams?"
    ),
    solution=_stream_tokens_per_s,
    tolerance=Tolerance(relative=0.03),
    unit="tokens/s",
    hint="One token every TPOT seconds: the rate is 1 / TPOT (mind ms versus s).",
    explanation=(
        "1 / TPOT. A 10 ms TPOT is 100 tokens/s per stream, about 75 words a second: faster "
        "than anyone reads. Per-stream speed is a latency figure; the server's throughput is "
        "the sum over every concurrent stream (lab 5)."
    ),
)

_SWITCH_CHOICES = (
    "NIM_BASE_URL",
    "NIM_GEN_MODEL",
    "NIM_CHAT_PATH",
    "CUDA_VISIBLE_DEVICES",
)


Q3_SWITCH = concept_exercise(
    id="lab01.q3",
    title="Pointing the labs at your own server",
    prompt=(
        "You start vLLM on `http://gpu-box:8000`. Which environment variable do you set "
        "before `infphys labs` so that every lab measures it instead of the simulator?"
    ),
    choices=_SWITCH_CHOICES,
    hint="The labs resolve the target from the server's address; the model name comes second.",
    explanation=(
        "NIM_BASE_URL (scheme, host and port). If it answers, the labs use it; if not, they "
        "start the embedded simulator and say so. NIM_GEN_MODEL must then name a model the "
        "server serves, and NIM_CHAT_PATH only changes for servers with a non-standard path."
    ),
)
