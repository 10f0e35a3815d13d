"""The simulated engine's parts: requests, step outcomes, bookkeeping and closed-form sums.

:class:`SimRequest` is one request inside the engine; :class:`StepOutcome` is what one step did;
:class:`EngineState` keeps the queues, KV blocks and the aggregates over decoding requests that
:class:`~infphys.sim.engine.Engine` schedules from. :func:`sum_max_linear` is the closed form
that prices a fast-forwarded stretch: step i of a decode-only stretch takes
max(a + b·i, c + d·i) (memory-bound or compute-bound), and the sum over i < k splits where the
two lines cross into two arithmetic series.

Worked example: a stretch of 4 steps whose memory term is 1 ms flat and whose compute term
grows 0 ms, 1 ms, 2 ms, 3 ms costs 1 + 1 + 2 + 3 = 7 ms.

>>> sum_max_linear(1.0, 0.0, 0.0, 1.0, 4)
7.0
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, Literal

from infphys.physics import StepTime
from infphys.sim.config import EngineConfig, check_engine_config

__all__ = [
    "EngineState",
    "RequestRejected",
    "RequestState",
    "SimRequest",
    "StepOutcome",
    "context_length_message",
    "sum_max_linear",
]

RequestState = Literal["waiting", "running", "finished", "aborted"]


class RequestRejected(ValueError):
    """A request the engine refuses, with the HTTP status and message vLLM sends (400)."""

    def __init__(self, message: str, *, param: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.status = status


def context_length_message(max_model_len: int, prompt_tokens: int, max_tokens: int) -> str:
    """vLLM's 400 message for prompt + max_tokens beyond the context length.

    >>> context_length_message(8192, 8000, 500)[:59]
    "This model's maximum context length is 8192 tokens. However"
    """
    return (
        f"This model's maximum context length is {max_model_len} tokens. However, you "
        f"requested {prompt_tokens + max_tokens} tokens ({prompt_tokens} in the messages, "
        f"{max_tokens} in the completion). Please reduce the length of the messages or "
        "completion."
    )


@dataclass(slots=True, eq=False)
class SimRequest:
    """One request inside the engine.

    Progress fields are explicit except while the request decodes: then the engine keeps
    ``computed = comp_base + steps`` and ``output = out_base + steps`` implicitly (one more of
    each per step), and :meth:`Engine.output_tokens` / :meth:`Engine.computed_tokens` read them.

    Attributes:
        request_id: the caller's identifier.
        prompt_tokens, max_tokens: as requested.
        output_target: tokens it will generate (``max_tokens`` unless the output-length
            distribution stops it earlier).
        arrival_s: simulated time it arrived.
        payload: anything the driver wants to keep with it.
        first_token_s, finish_s: simulated times of its first token and of its end.
        finish_reason: ``length``, ``stop`` or ``abort``.
        num_preemptions: how often it was preempted and recomputed.
        segments: pairs (first step, step after the last) of the steps in which it emitted a
            token, flattened; kept only when the engine tracks steps.
    """

    request_id: Hashable
    prompt_tokens: int
    max_tokens: int
    output_target: int
    arrival_s: float
    payload: Any = None
    computed: int = 0
    output: int = 0
    decoding: bool = False
    comp_base: int = 0
    out_base: int = 0
    gen: int = 0
    state: RequestState = "waiting"
    first_token_s: float | None = None
    finish_s: float | None = None
    finish_reason: str | None = None
    num_preemptions: int = 0
    seg_start: int = -1
    segments: list[int] = field(default_factory=list)
    window_below: bool = False
    reserved_blocks: int = 0


@dataclass(slots=True)
class StepOutcome:
    """What one step did.

    Attributes:
        start_s, end_s: simulated start and end of the step.
        step: the step's index (0 for the engine's first step).
        num_scheduled: sequences that computed tokens in the step.
        new_tokens: tokens computed (prompt chunks plus decode tokens).
        time: the roofline's pricing of the step (before the per-sequence overhead).
        first_tokens: requests whose first token came at the end of the step.
        finished: requests that ended with the step.
        preempted: requests preempted at the start of the step.
        emitted: every request that got a token (only when asked for: it costs O(running)).
    """

    start_s: float
    end_s: float
    step: int
    num_scheduled: int
    new_tokens: int
    time: StepTime
    first_tokens: list[SimRequest]
    finished: list[SimRequest]
    preempted: list[SimRequest]
    emitted: list[SimRequest] | None = None

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _series(p: float, q: float, i0: int, i1: int) -> float:
    """Σ_{i=i0}^{i1-1} (p + q·i)."""
    n = i1 - i0
    if n <= 0:
        return 0.0
    return n * p + q * (i0 + i1 - 1) * n / 2.0


def sum_max_linear(a: float, b: float, c: float, d: float, k: int) -> float:
    """Σ_{i=0}^{k-1} max(a + b·i, c + d·i), exactly, in O(1).

    >>> sum_max_linear(1.0, 0.0, 0.0, 1.0, 4)   # max(1, i) for i = 0..3: 1 + 1 + 2 + 3
    7.0
    """
    if k <= 0:
        return 0.0
    diff0, slope = a - c, b - d
    if slope == 0:
        return _series(a, b, 0, k) if diff0 >= 0 else _series(c, d, 0, k)
    root = -diff0 / slope
    if slope > 0:  # first line below the second until the root, above after
        split = min(max(math.ceil(root), 0), k)
        return _series(c, d, 0, split) + _series(a, b, split, k)
    split = min(max(math.floor(root) + 1, 0), k)
    return _series(a, b, 0, split) + _series(c, d, split, k)


class EngineState:
    """The engine's state, its queries, and requests in and out; :class:`Engine` adds the steps.

    Holds the waiting queue and running list, the KV block count, the clock and step counter,
    and the aggregates over decoding requests that make a fast-forwarded stretch O(1): how
    many decode, the sum of their base lengths, how many sit at each cached length modulo
    ``block_tokens``, and heaps of the steps at which they finish or reach the sliding window.
    """

    def __init__(
        self, config: EngineConfig, *, exact: bool = False, track_steps: bool = False
    ) -> None:
        self.config = check_engine_config("config", config)
        self.exact = bool(exact)
        self.track_steps = bool(track_steps)
        self._roof = config.roofline
        self._B = config.block_tokens
        self._max_seqs = config.max_num_seqs
        self._budget = config.max_num_batched_tokens
        self._chunked = config.chunked_prefill
        self._full_reserve = config.scheduler == "trtllm"
        self._reserved_full = 0  # trtllm: blocks reserved for the whole length of running requests
        self._rng = random.Random(config.seed)
        m = config.model
        self._window = m.sliding_window if (m.sliding_window_layers and m.sliding_window) else 0

        self.total_blocks: int = config.kv_capacity_blocks
        self.free_blocks: int = self.total_blocks
        self.now_s: float = 0.0
        self.steps: int = 0
        self.step_end_times: list[float] = []
        self.waiting: deque[SimRequest] = deque()
        self.running: list[SimRequest] = []

        # Aggregates over decoding requests (all running requests but a possible last prefiller).
        self._n_dec = 0
        self._sum_base = 0
        self._residue = [0] * self._B
        self._fin_heap: list[tuple[int, int, int, SimRequest]] = []
        self._n_below = 0
        self._sum_below_base = 0
        self._win_heap: list[tuple[int, int, int, SimRequest]] = []
        self._seq = itertools.count()

        self.preemptions_total = 0
        self.prompt_tokens_total = 0
        self.generation_tokens_total = 0
        self.finished_total = 0
        self.stretches = 0
        self.stretch_steps = 0
        self.exact_steps = 0
        self._auto_id = itertools.count()

    # --- queries -------------------------------------------------------------------------
    @property
    def idle(self) -> bool:
        """Nothing running and nothing waiting."""
        return not self.running and not self.waiting

    @property
    def num_running(self) -> int:
        return len(self.running)

    @property
    def num_waiting(self) -> int:
        return len(self.waiting)

    @property
    def kv_blocks_used(self) -> int:
        return self.total_blocks - self.free_blocks

    @property
    def kv_usage(self) -> float:
        """Fraction of KV blocks in use (vLLM's ``kv_cache_usage_perc``, 0 … 1)."""
        return self.kv_blocks_used / self.total_blocks if self.total_blocks else 0.0

    def output_tokens(self, req: SimRequest) -> int:
        """Tokens ``req`` has generated so far."""
        return req.out_base + self.steps if req.decoding else req.output

    def computed_tokens(self, req: SimRequest) -> int:
        """Tokens of ``req`` whose KV is in the cache."""
        return req.comp_base + self.steps if req.decoding else req.computed

    def token_times(self, req: SimRequest) -> list[float]:
        """Simulated time of each token ``req`` emitted (needs ``track_steps``)."""
        if not self.track_steps:
            raise RuntimeError("token_times needs an Engine built with track_steps=True")
        ends = self.step_end_times
        out: list[float] = []
        seg = req.segments
        for i in range(0, len(seg), 2):
            out.extend(ends[seg[i] : seg[i + 1]])
        if req.seg_start >= 0:
            out.extend(ends[req.seg_start : self.steps])
        return out

    # --- requests ------------------------------------------------------------------------
    def add_request(
        self,
        prompt_tokens: int,
        max_tokens: int | None = None,
        *,
        arrival_s: float | None = None,
        request_id: Hashable | None = None,
        payload: Any = None,
        ignore_eos: bool = False,
        output_target: int | None = None,
        prefilled_at_s: float | None = None,
    ) -> SimRequest:
        """Queue a request (it is considered at the next step).

        ``max_tokens`` None means vLLM's default: whatever the context length leaves.
        ``output_target`` fixes how many tokens it generates (1 … ``max_tokens``) instead of
        drawing from the output-length distribution.

        ``prefilled_at_s`` queues a request whose prompt was prefilled elsewhere (disaggregated
        serving): its KV cache arrives with it and its first token was emitted at that time.
        It is admitted like any request, but with the blocks for its whole prompt taken at
        once and no prefill compute: its first step here is a decode step (1 token, reading the
        prompt's KV) that emits its second token. If preempted, it recomputes here as any
        request does. Example: a 4,000-token prompt with 16-token blocks takes
        ⌈4,001 / 16⌉ = 251 blocks at admission and costs one decode token in that step.

        Raises:
            RequestRejected: with vLLM's 400 message when the prompt is empty, ``max_tokens``
                is below 1, or prompt + ``max_tokens`` exceeds ``max_model_len``.
        """
        mml = self.config.max_model_len
        if isinstance(prompt_tokens, bool) or not isinstance(prompt_tokens, int):
            raise RequestRejected(
                f"prompt_tokens must be a whole number (got {prompt_tokens!r})",
                param="prompt",
            )
        if prompt_tokens < 1:
            raise RequestRejected("The decoder prompt cannot be empty", param="prompt")
        if max_tokens is None:
            if prompt_tokens >= mml:
                raise RequestRejected(
                    f"This model's maximum context length is {mml} tokens. However, you "
                    f"requested {prompt_tokens} tokens in the messages, Please reduce the "
                    "length of the messages.",
                    param="messages",
                )
            max_tokens = mml - prompt_tokens
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
            raise RequestRejected(
                f"max_tokens must be an integer (got {max_tokens!r})", param="max_tokens"
            )
        if max_tokens < 1:
            raise RequestRejected(
                f"max_tokens must be at least 1, got {max_tokens}.", param="max_tokens"
            )
        if prompt_tokens + max_tokens > mml:
            raise RequestRejected(
                context_length_message(mml, prompt_tokens, max_tokens), param="max_tokens"
            )
        if output_target is not None:
            if isinstance(output_target, bool) or not isinstance(output_target, int):
                raise ValueError(f"output_target must be a whole number (got {output_target!r})")
            if not 1 <= output_target <= max_tokens:
                raise ValueError(
                    f"output_target must be in [1, max_tokens={max_tokens}] (got {output_target})"
                )
            target = output_target
        else:
            target = (
                max_tokens if ignore_eos else self.config.output_lengths.draw(max_tokens, self._rng)
            )
        if prefilled_at_s is not None and target < 2:
            raise ValueError("a prefilled request must have at least 2 output tokens to decode")
        req = SimRequest(
            request_id=next(self._auto_id) if request_id is None else request_id,
            prompt_tokens=prompt_tokens,
            max_tokens=max_tokens,
            output_target=max(1, target),
            arrival_s=self.now_s if arrival_s is None else float(arrival_s),
            payload=payload,
        )
        if prefilled_at_s is not None:
            req.computed = prompt_tokens
            req.output = 1
            req.first_token_s = float(prefilled_at_s)
        self.waiting.append(req)
        return req

    def abort(self, req: SimRequest) -> None:
        """Drop a waiting or running request (a client went away); frees its blocks."""
        if req.state == "waiting":
            self.waiting.remove(req)
        elif req.state == "running":
            if req.decoding:
                self._leave_decode(req, self.steps)
            self.free_blocks += cdiv(req.computed, self._B)
            self._reserved_full -= req.reserved_blocks
            req.reserved_blocks = 0
            self.running.remove(req)
            self._close_segment(req, self.steps)
        else:
            return
        req.state = "aborted"
        req.finish_reason = "abort"
        req.finish_s = self.now_s

    def set_now(self, t_s: float) -> None:
        """Move the clock forward to ``t_s`` while idle time passes (never backwards)."""
        if t_s > self.now_s:
            self.now_s = float(t_s)

    # --- decoder bookkeeping -------------------------------------------------------------
    def _make_decoder(self, r: SimRequest, t1: int) -> None:
        """``r`` caught up with its tokens at counter ``t1``: decode from now on, one per step."""
        r.decoding = True
        r.comp_base = r.computed - t1
        r.out_base = r.output - t1
        self._n_dec += 1
        self._sum_base += r.comp_base
        self._residue[r.comp_base % self._B] += 1
        seq = next(self._seq)
        heapq.heappush(self._fin_heap, (r.output_target - r.out_base - 1, seq, r.gen, r))
        w = self._window
        if w and r.computed < w:
            r.window_below = True
            self._n_below += 1
            self._sum_below_base += r.comp_base
            heapq.heappush(self._win_heap, (w - r.comp_base, seq, r.gen, r))

    def _leave_decode(self, r: SimRequest, t: int) -> None:
        """Make ``r``'s progress explicit at counter ``t`` and drop it from the aggregates."""
        r.computed = r.comp_base + t
        r.output = r.out_base + t
        r.decoding = False
        r.gen += 1
        self._n_dec -= 1
        self._sum_base -= r.comp_base
        self._residue[r.comp_base % self._B] -= 1
        if r.window_below:
            r.window_below = False
            self._n_below -= 1
            self._sum_below_base -= r.comp_base

    def _cross_window(self, t: int) -> None:
        """Decoders whose cached length reached the sliding window stop growing its reads."""
        heap = self._win_heap
        while heap and heap[0][0] <= t:
            _, _, gen, r = heapq.heappop(heap)
            if r.gen == gen and r.decoding and r.window_below:
                r.window_below = False
                self._n_below -= 1
                self._sum_below_base -= r.comp_base

    def _reset_aggregates(self) -> None:
        self._n_dec = 0
        self._sum_base = 0
        self._residue = [0] * self._B
        self._fin_heap = []
        self._n_below = 0
        self._sum_below_base = 0
        self._win_heap = []

    def _close_segment(self, r: SimRequest, end_step: int) -> None:
        if r.seg_start >= 0:
            if self.track_steps:
                r.segments.append(r.seg_start)
                r.segments.append(end_step)
            r.seg_start = -1

    def _preempt(self, r: SimRequest, t: int) -> None:
        """Recompute ``r`` later: progress reset, front of the waiting queue (blocks freed by
        the caller)."""
        self._close_segment(r, t)
        r.state = "waiting"
        r.computed = 0
        r.num_preemptions += 1
        self.preemptions_total += 1
        self.waiting.appendleft(r)

    def _finish_explicit(self, r: SimRequest, t1: int) -> None:
        """``r`` (explicit progress) emitted its last token in the step that ended at ``t1``."""
        self.free_blocks += cdiv(r.computed, self._B)
        self._reserved_full -= r.reserved_blocks
        r.reserved_blocks = 0
        self.running.remove(r)
        self._close_segment(r, t1)
        r.state = "finished"
        r.finish_s = self.now_s
        r.finish_reason = "length" if r.output >= r.max_tokens else "stop"
        self.finished_total += 1
