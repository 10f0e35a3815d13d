"""The simulated engine: vLLM V1's scheduler over simulated time, each step priced by the roofline.

Pure: no I/O, no wall clock, no global state. Time is simulated seconds; the engine only moves it
forward by the steps it takes. Two drivers run it (:mod:`infphys.sim.virtual`,
:mod:`infphys.sim.server`).

One step, exactly as vLLM V1's scheduler does it (``vllm/v1/core/sched/scheduler.py``):

1. Token budget ``max_num_batched_tokens``. Running requests first, in the order they were
   admitted: each takes what it still needs (1 token when decoding; the rest of its prompt,
   capped by the budget, when prefilling: chunked prefill), until the budget is spent.
2. Each scheduled request gets KV blocks of ``block_tokens`` for the tokens it computes. When
   none are free, the most recently admitted running request is preempted: its blocks are freed,
   its progress reset to zero, and it goes to the front of the waiting queue, to be recomputed
   (prompt plus the tokens it already generated) when admitted again. A request that has to
   preempt itself is not scheduled this step.
3. Only if nothing was preempted in this step, waiting requests are admitted in FCFS order while
   fewer than ``max_num_seqs`` run, budget is left and blocks for their first chunk are free;
   the first that does not fit stops admission.
4. The step's time is priced by :meth:`infphys.physics.RooflineModel.step` (weights read once,
   every scheduled sequence's cached KV read, new tokens' FLOPs and attention pairs) plus
   ``per_sequence_overhead_s`` per scheduled sequence. Every request whose prompt is fully
   computed emits one token at the end of the step; a request finishes when it has emitted its
   output length (exactly ``max_tokens`` by default), and its blocks are freed.

Not modelled: prefix caching (prompts are random, and a recomputed request recomputes everything),
speculative decoding, CPU/GPU overlap of scheduling, the async output processor.

Speed: most steps change nothing but the context lengths. When every running request is decoding
and no finish, new arrival that could be admitted, KV shortage or sliding-window boundary comes
within the next k steps, :meth:`Engine.fast_forward` takes those k steps in one computation.
Within such a stretch, step i reads S₀ + n·i cached tokens (n sequences, each one longer per
step), so both the memory term and the compute term of the roofline are linear in i, and the step
time is max(a + b·i, c + d·i) + const. Its sum over i < k has a closed form: split at the index
where the two lines cross and add two arithmetic series. That is exact, not an approximation
(the per-step times are also computed when per-token times are kept). New KV blocks are counted in
aggregate: a decoding request needs a new block in the step where its cached length is a multiple
of ``block_tokens``, so requests are bucketed by cached length modulo ``block_tokens`` and the
blocks used by k steps are k // 16 full cycles plus a partial one.
The request and outcome records, the state with its aggregates and :func:`sum_max_linear` are
in :mod:`infphys.sim._engine_parts`; :class:`Engine` adds scheduling, stepping and fast-forward.

Worked example (one request alone, Llama-3.1-8B BF16 on an H200 with the default calibration):
a 1,000-token prompt is prefilled in one step: 2 × 7.5 B × 1,000 FLOPs plus attention, 15.27
TFLOP at 50 % of 989 TFLOP/s = 30.9 ms, plus 1 ms step overhead and 10 µs for the sequence:
TTFT 31.9 ms. Each decode step then reads 16.06 GB of weights plus the cached KV (16.19 GB) at
70 % of 4.8 TB/s: 4.82 ms, plus 1.01 ms: ITL 5.83 ms.
"""

from __future__ import annotations

import heapq
import math

from infphys.physics import StepTime
from infphys.sim._engine_parts import (
    EngineState,
    RequestRejected,
    SimRequest,
    StepOutcome,
    cdiv,
    context_length_message,
    sum_max_linear,
)

__all__ = [
    "Engine",
    "RequestRejected",
    "SimRequest",
    "StepOutcome",
    "context_length_message",
    "sum_max_linear",
]

_INF = math.inf


def _add_chunks(
    sched: list[tuple[SimRequest, int, int]], window: int, totals: tuple[int, int, int, int, int]
) -> tuple[int, int, int, int, int]:
    """A step's totals with its scheduled chunks added, each ``(request, n new, c cached)``.

    ``totals`` and the result are (new tokens, KV tokens read, attention pairs, KV tokens read
    on windowed layers, attention pairs on windowed layers). A chunk of n new tokens after c
    cached ones reads c cached tokens and forms n·c + n(n+1)/2 causal pairs; on a layer with a
    window w it reads min(c, w) and at most n·min(c + n, w) pairs. Example: a 100-token chunk
    after 1,000 cached adds 100 tokens, 1,000 reads and 100,000 + 5,050 = 105,050 pairs.
    """
    new_tokens, kv_read, pairs, wread, wpairs = totals
    for _, n, c in sched:
        new_tokens += n
        kv_read += c
        pairs += n * c + n * (n + 1) // 2
        if window:
            wread += min(c, window)
            wpairs += n * min(c + n, window)
    return new_tokens, kv_read, pairs, wread, wpairs


class Engine(EngineState):
    """vLLM V1's continuous-batching scheduler over simulated time (see the module docstring).

    Args:
        config: the engine to simulate.
        exact: price and schedule every step one by one with the explicit reference loop (no
            aggregate bookkeeping, no fast-forward); slow, for tests that check the fast path.
        track_steps: keep every step's end time and each request's emitting steps, so that
            :meth:`token_times` can give every token's time (memory grows with the run).
    """

    def _admission_chunk(self, r: SimRequest, budget: int, free: int) -> int:
        """Tokens the waiting request ``r`` would compute if admitted now (0: it does not fit).

        vLLM: the rest of its prompt capped by the budget (chunked prefill), if the blocks for
        that chunk are free. TensorRT-LLM: without chunked context the whole prompt must fit in
        the budget, and the blocks for its whole length (prompt + ``max_tokens``) must be free
        of every running request's reservation (``GUARANTEED_NO_EVICT``).
        """
        remaining = r.prompt_tokens + r.output - r.computed
        if not self._chunked and remaining > budget:
            return 0
        n = min(remaining, budget)
        if self._full_reserve:
            full = cdiv(r.prompt_tokens + r.max_tokens, self._B)
            return n if full <= self.total_blocks - self._reserved_full else 0
        # r.computed is 0 except for a request whose prompt arrived cached (disaggregated).
        return n if cdiv(r.computed + n, self._B) <= free else 0

    def _admit(
        self, free: int, budget: int, sched: list[tuple[SimRequest, int, int]]
    ) -> tuple[int, int]:
        """Admit waiting requests FCFS while seats, budget and blocks last."""
        waiting, running, B = self.waiting, self.running, self._B
        while waiting and budget > 0 and len(running) < self._max_seqs:
            r = waiting[0]
            n = self._admission_chunk(r, budget, free)
            if n <= 0:
                break
            waiting.popleft()
            r.state = "running"
            if self._full_reserve:
                r.reserved_blocks = cdiv(r.prompt_tokens + r.max_tokens, B)
                self._reserved_full += r.reserved_blocks
            running.append(r)
            c = r.computed
            free -= cdiv(c + n, B)
            budget -= n
            sched.append((r, n, c))
        return free, budget

    # --- one step ------------------------------------------------------------------------
    def step(self, *, want_emitted: bool = False) -> StepOutcome:
        """Schedule, price and run one step; the clock moves to the step's end.

        Raises:
            RuntimeError: if the engine is idle.
        """
        if not self.running and not self.waiting:
            raise RuntimeError("the engine is idle: add a request before stepping")
        if self.exact:
            return self._step_exact(want_emitted)
        t = self.steps
        B = self._B
        if self._window:
            self._cross_window(t)
        n_dec = self._n_dec
        dec_blocks = self._residue[(-t) % B] if n_dec else 0
        if dec_blocks > self.free_blocks:
            return self._step_exact(want_emitted)

        running = self.running
        emitted: list[SimRequest] | None = running[:n_dec] if want_emitted else None
        free = self.free_blocks - dec_blocks
        budget = self._budget - n_dec
        sched: list[tuple[SimRequest, int, int]] = []
        preempted: list[SimRequest] = []
        if len(running) > n_dec:  # the one partial prefill, always last
            pre = running[-1]
            c = pre.computed
            n = min(pre.prompt_tokens + pre.output - c, budget)
            if n > 0:
                need = cdiv(c + n, B) - cdiv(c, B)
                if need > free:
                    running.pop()
                    free += cdiv(c, B)
                    self._preempt(pre, t)
                    preempted.append(pre)
                else:
                    free -= need
                    budget -= n
                    sched.append((pre, n, c))
        if not preempted:
            free, budget = self._admit(free, budget, sched)
        self.free_blocks = free

        s_dec = self._sum_base + n_dec * t
        w = self._window
        wread = wpairs = 0
        if w:
            below = self._sum_below_base + self._n_below * t
            above = n_dec - self._n_below
            wread = below + above * w
            wpairs = below + self._n_below + above * w
        new_tokens, kv_read, pairs, wread, wpairs = _add_chunks(
            sched, w, (n_dec, s_dec, s_dec + n_dec, wread, wpairs)
        )
        return self._finish_step(
            t, n_dec, sched, preempted, emitted, new_tokens, kv_read, pairs, wread, wpairs
        )

    def _finish_step(
        self,
        t: int,
        n_dec: int,
        sched: list[tuple[SimRequest, int, int]],
        preempted: list[SimRequest],
        emitted: list[SimRequest] | None,
        new_tokens: int,
        kv_read: int,
        pairs: int,
        wread: int,
        wpairs: int,
    ) -> StepOutcome:
        num_scheduled = n_dec + len(sched)
        if new_tokens > 0:
            st = self._roof.step(
                new_tokens=new_tokens,
                kv_tokens_read=kv_read,
                attention_pairs=pairs,
                window_pairs=wpairs,
                window_kv_tokens_read=wread,
                sequences=num_scheduled,
            )
            dt = st.total_s
        else:  # everything preempted itself: an empty step costs the fixed overhead
            o = self._roof.params.step_overhead_s
            st = StepTime(o, 0.0, 0.0, 0.0, o, 0.0, 0.0, 0)
            dt = o
        start = self.now_s
        now = start + dt
        self.now_s = now
        self.steps = t1 = t + 1
        if self.track_steps:
            self.step_end_times.append(now)

        finished: list[SimRequest] = []
        heap = self._fin_heap
        while heap and heap[0][0] <= t:
            _, _, gen, r = heapq.heappop(heap)
            if r.gen != gen or not r.decoding:
                continue
            self._leave_decode(r, t1)
            self._finish_explicit(r, t1)
            finished.append(r)
        self.generation_tokens_total += n_dec

        first: list[SimRequest] = []
        for r, n, c in sched:
            r.computed = c + n
            if r.computed != r.prompt_tokens + r.output:
                continue  # a prompt chunk: no token yet
            r.output += 1
            self.generation_tokens_total += 1
            if emitted is not None:
                emitted.append(r)
            if r.seg_start < 0:
                r.seg_start = t
            if r.first_token_s is None:
                r.first_token_s = now
                self.prompt_tokens_total += r.prompt_tokens
                first.append(r)
            if r.output >= r.output_target:
                self._finish_explicit(r, t1)
                finished.append(r)
            else:
                self._make_decoder(r, t1)
        return StepOutcome(
            start_s=start,
            end_s=now,
            step=t,
            num_scheduled=num_scheduled,
            new_tokens=new_tokens,
            time=st,
            first_tokens=first,
            finished=finished,
            preempted=preempted,
            emitted=emitted,
        )

    def _step_exact(self, want_emitted: bool) -> StepOutcome:
        """The reference loop over explicit per-request state, line by line as in vLLM."""
        self.exact_steps += 1
        t = self.steps
        B = self._B
        running = self.running
        for r in running:
            if r.decoding:
                r.computed = r.comp_base + t
                r.output = r.out_base + t
                r.decoding = False
                r.window_below = False
                r.gen += 1
        self._reset_aggregates()

        budget = self._budget
        free = self.free_blocks
        sched: list[tuple[SimRequest, int, int]] = []
        preempted: list[SimRequest] = []
        i = 0
        while i < len(running) and budget > 0:
            r = running[i]
            c = r.computed
            n = min(r.prompt_tokens + r.output - c, budget)
            held = cdiv(c, B)
            can_schedule = True
            while True:
                need = cdiv(c + n, B) - held
                if need <= free:
                    free -= need
                    break
                victim = running.pop()
                free += cdiv(victim.computed, B)
                self._preempt(victim, t)
                preempted.append(victim)
                if victim is r:
                    can_schedule = False
                    break
            if not can_schedule:
                break
            sched.append((r, n, c))
            budget -= n
            i += 1
        if not preempted:
            free, budget = self._admit(free, budget, sched)
        self.free_blocks = free

        new_tokens, kv_read, pairs, wread, wpairs = _add_chunks(sched, self._window, (0,) * 5)
        # Decoders were made explicit above, so every scheduled request is in ``sched``.
        outcome = self._finish_step(
            t,
            0,
            sched,
            preempted,
            [] if want_emitted else None,
            new_tokens,
            kv_read,
            pairs,
            wread,
            wpairs,
        )
        # _finish_step made decoders of the requests that emitted. A running request that is
        # caught up but was not scheduled (not expected: decoders always come before the one
        # partial prefill) still becomes a decoder so that the aggregates stay complete.
        for r in self.running:
            if not r.decoding and r.seg_start >= 0:
                self._make_decoder(r, self.steps)
        return outcome

    # --- many steps at once --------------------------------------------------------------
    def _clean_heap_top(self, heap: list[tuple[int, int, int, SimRequest]]) -> None:
        while heap:
            _, _, gen, r = heap[0]
            if r.gen == gen and r.decoding:
                return
            heapq.heappop(heap)

    def fast_forward(
        self,
        *,
        next_arrival_s: float = _INF,
        until_s: float = _INF,
        max_steps: int | None = None,
    ) -> int:
        """Take as many steps as nothing changes in, in one computation; return how many.

        A stretch needs every running request to be decoding and no admission to be possible
        (no waiting request, or the first one blocked by seats or KV blocks). It ends before the
        step in which a request finishes, a decoder needs a KV block that is not free, a
        decoder's context reaches the sliding window, or a step would start at or after
        ``next_arrival_s`` (ignored while admission is blocked, since an arrival then changes
        nothing) or ``until_s``. Returns 0 (and changes nothing) when no stretch is possible;
        then call :meth:`step`.
        """
        if self.exact:
            return 0
        running = self.running
        n = self._n_dec
        if n == 0 or n != len(running):
            return 0
        t = self.steps
        B = self._B
        if self._window:
            self._cross_window(t)
        res = self._residue
        full = n >= self._max_seqs
        if self.waiting and not full:
            budget_left = self._budget - n
            free_left = self.free_blocks - res[(-t) % B]
            if budget_left > 0 and self._admission_chunk(self.waiting[0], budget_left, free_left):
                return 0  # the head would be admitted at the next step
            arrivals_matter = False
        else:
            arrivals_matter = not full

        self._clean_heap_top(self._fin_heap)
        k = self._fin_heap[0][0] - t
        if max_steps is not None:
            k = min(k, max_steps)
        if self._window:
            self._clean_heap_top(self._win_heap)
            if self._win_heap:
                k = min(k, self._win_heap[0][0] - t)
        if k <= 0:
            return 0
        # KV blocks: a full cycle of B steps allocates one block per decoder.
        free = self.free_blocks
        cycles = min(free // n, k // B + 1)
        kb = cycles * B
        used = cycles * n
        for i in range(B):
            x = res[(-(t + i)) % B]
            if used + x > free:
                break
            used += x
            kb += 1
        k = min(k, kb)
        if k <= 0:
            return 0

        # Step i of the stretch reads S0 + n·i cached tokens: both roofline terms are linear.
        s0 = self._sum_base + n * t
        w = self._window
        if w:
            nb = self._n_below
            below0 = self._sum_below_base + nb * t
            above = n - nb
            wr0, wp0 = below0 + above * w, below0 + nb + above * w
        else:
            nb = 0
            wr0 = wp0 = 0
        roof = self._roof
        st0 = roof.step(
            new_tokens=n,
            kv_tokens_read=s0,
            attention_pairs=s0 + n,
            window_pairs=wp0,
            window_kv_tokens_read=wr0,
            sequences=n,
        )
        st1 = roof.step(
            new_tokens=n,
            kv_tokens_read=s0 + n,
            attention_pairs=s0 + 2 * n,
            window_pairs=wp0 + nb,
            window_kv_tokens_read=wr0 + nb,
            sequences=n,
        )
        # Only the attention term changes within a stretch (the batch and its weights do not):
        # it is max(a + b·i, c + d·i); everything else is a constant per step.
        a, b = st0.attention_memory_s, st1.attention_memory_s - st0.attention_memory_s
        c, d = st0.attention_compute_s, st1.attention_compute_s - st0.attention_compute_s
        const = st0.total_s - st0.attention_s

        limit = min(until_s, next_arrival_s if arrivals_matter else _INF)
        now = self.now_s
        if limit < _INF:
            if now >= limit:
                return 0
            span = limit - now
            if const * k + sum_max_linear(a, b, c, d, k) >= span:
                lo, hi = 1, k  # smallest j with S(j) >= span; steps 0 … j-1 start before it
                while lo < hi:
                    mid = (lo + hi) // 2
                    if const * mid + sum_max_linear(a, b, c, d, mid) >= span:
                        hi = mid
                    else:
                        lo = mid + 1
                k = lo

        if k < kb:  # recount the blocks for the shortened stretch
            q = k // B
            used = q * n + sum(res[(-(t + i)) % B] for i in range(k - q * B))
        if self.track_steps:
            ends = self.step_end_times
            tt = now
            for i in range(k):
                tt += max(a + b * i, c + d * i) + const
                ends.append(tt)
            self.now_s = tt
        else:
            self.now_s = now + const * k + sum_max_linear(a, b, c, d, k)
        self.steps = t + k
        self.free_blocks = free - used
        self.generation_tokens_total += n * k
        self.stretches += 1
        self.stretch_steps += k
        return k
