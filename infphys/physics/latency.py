"""How a streamed request's latency is made of its first token and the tokens after it.

A streamed answer of n tokens arrives as the first token after the time to first token (TTFT:
queueing and prefill), then n − 1 further tokens one time-per-output-token (TPOT, one decode
step when the batch is steady) apart. Its end-to-end latency is therefore

    e2e = TTFT + (n − 1) × TPOT

assuming every token after the first costs the same TPOT (no preemption or stall mid-answer).

Worked example: Llama 3.1 8B on one H100 answering 128 tokens with a 50 ms TTFT and a 10 ms TPOT
takes 50 + 127 × 10 = 1,320 ms end to end; 2,048 tokens take 50 + 2,047 × 10 = 20.5 s, so a long
answer's latency is decode, not prefill.
"""

from __future__ import annotations

from infphys._check import non_negative

__all__ = ["request_latency_s"]


def request_latency_s(ttft_s: float, tpot_s: float, output_tokens: float) -> float:
    """End-to-end latency of a streamed answer: TTFT + (output_tokens − 1) × TPOT, seconds.

    ``output_tokens`` may be a mean (a float); an answer of one token (or fewer) is its TTFT.
    Units are the caller's: pass milliseconds for both times and the result is milliseconds.

    >>> round(request_latency_s(0.050, 0.010, 128), 3)
    1.32
    >>> request_latency_s(0.2, 0.01, 1)
    0.2
    """
    ttft = non_negative("ttft_s", ttft_s)
    tpot = non_negative("tpot_s", tpot_s)
    n = non_negative("output_tokens", output_tokens)
    return ttft + max(n - 1.0, 0.0) * tpot
