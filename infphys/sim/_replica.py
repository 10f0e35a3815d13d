"""One real-time engine of a simulated server: its step loop against the wall clock.

A :class:`Replica` owns an :class:`~infphys.sim.engine.Engine`, runs it on the server's event
loop (compute a step, sleep until the step's simulated end × ``time_scale``, hand every token to
its stream), measures how late each step's tokens go out (:class:`ServerStats`) and observes the
request histograms of its ``replica`` label. A single-engine server has one replica; a fleet
(``SimServer(replicas=4)``) has several behind the server's router, each with its own clock.

Worked example: a step due at wall time 10.000 s whose tokens go out at 10.003 s has a lag of
3 ms; with the default tolerance (2 ms, or 10 % of a 20 ms step = 2 ms) it counts as late, and
``stats.late_steps`` grows by one.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING

from infphys._closing import cancel_and_wait
from infphys.sim._metrics import ServerStats
from infphys.sim._openai import Stream, sse_chunks
from infphys.sim.config import EngineConfig
from infphys.sim.engine import Engine, StepOutcome

if TYPE_CHECKING:
    from infphys.sim.server import SimServer

__all__ = ["LAG_TOLERANCE_FRACTION", "Replica"]

log = logging.getLogger("infphys.sim")

#: A step later than the tolerance or this fraction of its wall duration is late.
LAG_TOLERANCE_FRACTION = 0.1
_WARN_EVERY_S = 5.0


class Replica:
    """An engine on the server's event loop (see the module docstring).

    Args:
        server: the server whose streams, settings and metrics it serves.
        index: its ``replica`` label (0 for a single engine).
        config: its engine.
        role: ``serve`` (a whole request), ``prefill`` or ``decode`` (disaggregated serving).
    """

    def __init__(self, server: SimServer, index: int, config: EngineConfig, role: str) -> None:
        self.server = server
        self.index = index
        self.config = config
        self.role = role
        self.engine = Engine(config)
        self.stats = ServerStats()
        self.metrics = server.request_metrics.replica(index)
        self.routed = 0
        self._unscheduled: deque[Stream] = deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._wall0 = 0.0
        self._last_warn = -_WARN_EVERY_S
        self._window_steps = 0
        self._window_late = 0

    def sim_now(self) -> float:
        """This replica's simulated clock (its timeline shifts when it stalls)."""
        return (asyncio.get_running_loop().time() - self._wall0) / self.server.time_scale

    def start(self, wall0: float) -> None:
        self._wall0 = wall0
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._engine_loop(), name=f"infphys-sim-{self.index}")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    def queued(self, stream: Stream) -> None:
        """``stream``'s request joined this engine's queue (its queue time starts)."""
        self._unscheduled.append(stream)

    def wake(self) -> None:
        assert self._wake is not None
        self._wake.set()

    async def _engine_loop(self) -> None:
        loop = asyncio.get_running_loop()
        eng = self.engine
        assert self._wake is not None
        wake = self._wake
        scale = self.server.time_scale
        iteration = self.metrics.iteration_tokens
        while True:
            if eng.idle:
                wake.clear()
                await wake.wait()
                continue
            t_busy = loop.time()
            out = eng.step(want_emitted=True)
            due = self._wall0 + out.end_s * scale
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                await asyncio.sleep(0)
            lag = max(0.0, loop.time() - due)
            self.deliver(out, loop.time())
            self.account(lag, loop.time(), out.duration_s * scale)
            iteration.observe(out.new_tokens)
            self.stats.busy_s += loop.time() - t_busy

    def account(self, lag: float, now: float, step_wall_s: float) -> None:
        """Count one step delivered ``lag`` seconds late; shift the timeline past a stall."""
        st = self.stats
        srv = self.server
        st.steps += 1
        st.last_lag_s = lag
        st.lag_sum_s += lag
        st.recent_lag_s = 0.9 * st.recent_lag_s + 0.1 * lag
        if lag > st.max_lag_s:
            st.max_lag_s = lag
        late = lag > max(srv.lag_tolerance_s, LAG_TOLERANCE_FRACTION * step_wall_s)
        if late:
            st.late_steps += 1
        self._window_steps += 1
        self._window_late += late
        if lag > srv.rebase_lag_s:
            self._wall0 += lag
            st.stall_s_total += lag
            st.rebases += 1
        if now - self._last_warn >= _WARN_EVERY_S and self._window_steps >= 20:
            frac = self._window_late / self._window_steps
            if srv.log_lag and (frac > 0.1 or lag > srv.rebase_lag_s):
                where = f" (replica {self.index})" if len(srv.replicas) > 1 else ""
                log.warning(
                    "infphys sim server at %s:%d%s is falling behind the wall clock: %.0f%% of "
                    "the last %d steps went out late (over %.1f ms or 10%% of the step; now "
                    "%.1f ms, max %.1f ms, %d stalls); measured latencies include this lag — "
                    "lower the concurrency or raise time_scale",
                    srv.host,
                    srv.port,
                    where,
                    100 * frac,
                    self._window_steps,
                    1e3 * srv.lag_tolerance_s,
                    1e3 * lag,
                    1e3 * st.max_lag_s,
                    st.rebases,
                )
                self._last_warn = now
            self._window_steps = 0
            self._window_late = 0

    def deliver(self, out: StepOutcome, now: float) -> None:
        """Hand a step's tokens to their streams and observe the finished requests."""
        eng = self.engine
        m = self.metrics
        step_start = now - out.duration_s * self.server.time_scale
        # Requests leave the queue in arrival order (first come, first served): the ones at
        # the head that are no longer waiting were first scheduled in this step.
        pending = self._unscheduled
        while pending and (pending[0].req is None or pending[0].req.state != "waiting"):
            s = pending.popleft()
            if s.prefill_start_wall_s is None:
                s.prefill_start_wall_s = step_start
        for r in out.first_tokens:
            s = r.payload
            if s.first_token_wall_s is not None:  # prefilled on another replica
                continue
            s.first_token_wall_s = now
            for h in m.ttft:
                h.observe(now - s.arrival_wall_s)
            sched = s.prefill_start_wall_s
            if sched is None:  # scheduled out of arrival order: this step is the best guess
                sched = s.prefill_start_wall_s = step_start
            m.queue.observe(max(0.0, sched - s.arrival_wall_s))
            m.prefill.observe(now - sched)
        for r in out.finished:
            s = r.payload
            if s.decode_target > 1 and self.role == "prefill":
                self.server.hand_off(s, r, self)
                continue
            s.done = True
            s.finish_reason = r.finish_reason
            e2e = now - s.arrival_wall_s
            for h in m.e2e:
                h.observe(e2e)
            m.success(r.finish_reason or "stop").inc()
            m.prompt_tokens.observe(r.prompt_tokens)
            m.generation_tokens.observe(r.output)
            if s.first_token_wall_s is not None:
                m.decode.observe(now - s.first_token_wall_s)
                m.inference.observe(now - (s.prefill_start_wall_s or s.first_token_wall_s))
                if r.output > 1:
                    tpot = (now - s.first_token_wall_s) / (r.output - 1)
                    for h in m.tpot:
                        h.observe(tpot)
        itl = m.itl
        assert out.emitted is not None
        for r in out.emitted:
            s = r.payload
            last = s.last_token_wall_s
            if last is not None:
                itl.observe(now - last)
            s.last_token_wall_s = now
            s.produced = eng.output_tokens(r)
            if s.resp is not None and not (s.blocked or s.broken or s.closed):
                self._flush(s)
            elif s.done or s.resp is not None:
                s.event.set()
        for r in out.finished:
            s = r.payload
            if s.done and (s.resp is None or s.blocked or s.closed):
                s.event.set()

    def _flush(self, s: Stream) -> None:
        """Write ``s``'s new chunks now, from the engine loop, without a task switch.

        ``StreamResponse.write`` only suspends when the transport is paused (the client is not
        reading); then the suspended write is handed to the handler (``blocked``).
        """
        assert s.resp is not None
        data = sse_chunks(s)
        if not data:
            return
        coro = s.resp.write(data)
        try:
            fut = coro.send(None)
        except StopIteration:
            if s.closed:
                s.event.set()
            return
        except ConnectionResetError:
            s.broken = True
            s.event.set()
            return
        s.blocked = True
        s.pending = (coro, fut)
        s.event.set()
