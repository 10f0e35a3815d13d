"""A fleet of simulated engines in virtual time: routers, and disaggregated prefill/decode.

:func:`simulate_fleet` pushes one :class:`~infphys.sim.workload.Workload` through several
replicas (each its own :class:`~infphys.sim.config.EngineConfig`: GPU, precision, TP may
differ), a router choosing the replica of each request as it arrives. :func:`simulate_disaggregated`
splits serving in two pools: a request is prefilled on a prefill replica (its first token comes
from there), its KV cache crosses to a decode replica (:func:`kv_transfer_s`), and it decodes
there. Both return what :func:`~infphys.sim.simulate` returns, the same
:class:`~infphys.records.RequestRecord` per request and run header, with the replica in
``labels["replica"]``, so every statistic and plot works unchanged.

How time advances: each engine keeps its own clock (the end of its last step). The driver
always moves the engine whose clock is earliest, and delivers an arrival (a request, or a
decode hand-off) once no busy engine's clock is earlier than it; so no engine has started a
step after an arrival it has not seen, and each arrival joins its engine's next step, as in
:func:`~infphys.sim.simulate`. A fast-forwarded stretch stops before the next known arrival and,
where new arrivals are made during the run (closed loop: a client sends when its request ends;
disaggregated: a hand-off when a prefill ends), before any other busy engine's clock, the
earliest such an arrival could come. With one replica the driver takes exactly the steps
:func:`~infphys.sim.simulate` takes.

Routers (``router=``), each deciding when the request reaches the fleet:

- ``round-robin``: replica i mod n for the i-th request routed;
- ``least-outstanding``: fewest requests in the replica (running + waiting);
- ``least-kv``: lowest KV-cache usage (fraction of blocks in use), then fewest outstanding;
- ``session-affinity``: a hash of the request's session (``session_of(index)``, by default the
  request index itself) and the seed, modulo n: a session always lands on the same replica.

Ties go to a replica drawn by a ``random.Random`` seeded from ``seed``. A router reads the state
an engine had at the end of its last step (a real router reads metrics just as late).

Assumptions: the fleet has one frontend (the router) with the first replica's frontend latency
and service time; requests in a KV transfer count as neither running nor waiting in the time
series; the time series sums all replicas (KV usage: blocks in use over the fleet's blocks).

Worked example: two H200s serving Llama-3.1-8B BF16 on an offline load of 256 requests of
1,000 prompt tokens and 200 output tokens each run 128 requests apiece, and the fleet's output
throughput is twice one replica's (test ``test_saturated_fleet_throughput_is_the_sum``).
"""

from __future__ import annotations

import hashlib
import heapq
import math
import random
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from infphys.physics.memory import kv_bytes_per_token
from infphys.records import RequestRecord, utc_timestamp
from infphys.sim.config import EngineConfig
from infphys.sim.engine import Engine, RequestRejected, SimRequest
from infphys.sim.virtual import (
    SimResult,
    SimStats,
    _Arrivals,
    _check_run,
    _engine_record,
    _rejected_record,
    _run_header,
    _timeseries_frame,
)
from infphys.sim.workload import Workload

__all__ = [
    "KV_LINK_LATENCY_S",
    "ROUTERS",
    "FleetResult",
    "Router",
    "check_router",
    "kv_transfer_s",
    "simulate_disaggregated",
    "simulate_fleet",
]

#: The routers :func:`simulate_fleet` knows.
ROUTERS: tuple[str, ...] = ("round-robin", "least-outstanding", "least-kv", "session-affinity")


def check_router(name: str, value: object) -> str:
    """``value`` itself when it names one of :data:`ROUTERS`, else ``ValueError`` naming ``name``.

    ``check_router("router", "random")`` raises ``router must be one of ('round-robin', …)
    (got 'random')``.

    >>> check_router("router", "least-kv")
    'least-kv'
    """
    if value not in ROUTERS:
        raise ValueError(f"{name} must be one of {ROUTERS} (got {value!r})")
    return str(value)


#: Fixed cost of one KV transfer between GPUs (setting up the copy), seconds: the order of an
#: RDMA or NVLink put's latency; the bytes then move at the link's bandwidth.
KV_LINK_LATENCY_S = 10e-6


def kv_transfer_s(
    config: EngineConfig, prompt_tokens: int, *, latency_s: float = KV_LINK_LATENCY_S
) -> float:
    """Seconds to move a prefilled prompt's KV cache off the GPU of ``config``.

    bytes = ``prompt_tokens`` × :func:`~infphys.physics.memory.kv_bytes_per_token` (the model
    and KV precision of ``config``); time = ``latency_s`` + bytes / the GPU's
    ``interconnect_bytes_per_s`` (one direction). Assumptions: the whole cache crosses one
    GPU's link (the prefill GPU's; with TP the shards could move in parallel, so this is an
    upper bound), nothing else shares the link, and sliding-window layers are left out.

    Worked example: Llama-3.1-8B BF16 caches 131,072 B per token; a 4,000-token prompt is
    524 MB, over an H200's NVLink 4 at 450 GB/s 1.165 ms, plus 10 µs: 1.175 ms.

    >>> round(kv_transfer_s(EngineConfig.build("h200", "llama-3.1-8b"), 4000) * 1e3, 3)
    1.175
    """
    if not isinstance(prompt_tokens, int) or prompt_tokens < 0:
        raise ValueError(f"prompt_tokens must be a whole number >= 0 (got {prompt_tokens!r})")
    if not (latency_s >= 0):
        raise ValueError(f"latency_s must be >= 0 (got {latency_s!r})")
    bw = config.gpu.interconnect_bytes_per_s
    if bw <= 0:
        raise ValueError(f"gpu {config.gpu.key!r} has no interconnect figure")
    return latency_s + prompt_tokens * kv_bytes_per_token(config.model, config.kv_precision) / bw


class Router:
    """Picks a replica among ``engines`` for request ``idx`` (see the module docstring).

    The virtual-time fleet and the real-time server (``infphys sim --replicas``) both route
    with it. Example: ``Router("round-robin", 0, None).pick([e0, e1], 0)`` is 0, then 1, 0, …
    """

    def __init__(self, name: str, seed: int, session_of: Callable[[int], Hashable] | None) -> None:
        self.name = check_router("router", name)
        self._seed = seed
        self._rng = random.Random(f"{seed}:router")
        self._next = 0
        self._session_of = session_of

    def _least(self, keys: list[tuple[float, ...]]) -> int:
        best = min(keys)
        ties = [i for i, k in enumerate(keys) if k == best]
        return ties[0] if len(ties) == 1 else self._rng.choice(ties)

    def pick(self, engines: Sequence[Engine], idx: int) -> int:
        n = len(engines)
        if n == 1:
            return 0
        if self.name == "round-robin":
            self._next += 1
            return (self._next - 1) % n
        if self.name == "least-outstanding":
            return self._least([(len(e.running) + len(e.waiting),) for e in engines])
        if self.name == "least-kv":
            return self._least([(e.kv_usage, len(e.running) + len(e.waiting)) for e in engines])
        session = idx if self._session_of is None else self._session_of(idx)
        digest = hashlib.blake2b(f"{self._seed}:{session!r}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") % n


@dataclass(slots=True)
class FleetResult(SimResult):
    """A :class:`~infphys.sim.SimResult` for a fleet: ``config`` is the first replica's.

    Attributes:
        replicas: every replica's configuration, in index order (``labels["replica"]``).
        roles: each replica's role: ``serve`` (a fleet), ``prefill`` or ``decode``.
    """

    replicas: tuple[EngineConfig, ...] = ()
    roles: tuple[str, ...] = ()


def simulate_fleet(
    replicas: Sequence[EngineConfig],
    workload: Workload,
    *,
    router: str = "round-robin",
    seed: int = 0,
    session_of: Callable[[int], Hashable] | None = None,
    keep_chunk_times: bool = True,
    timeseries: bool = True,
    max_sim_s: float | None = None,
) -> FleetResult:
    """Run ``workload`` through a fleet of replicas behind a router, in simulated time.

    Args:
        replicas: one configuration per replica (mixed GPUs, precisions and TP allowed).
        workload: the load (closed, open, offline or trace), as for :func:`simulate`.
        router: one of :data:`ROUTERS`.
        seed: seeds the router's tie-breaks and the session hash.
        session_of: ``session-affinity``: the session of request index i (default: i).
        keep_chunk_times, timeseries, max_sim_s: as for :func:`simulate`.

    Returns:
        A :class:`FleetResult`; each record has ``labels["replica"]``, its replica's index.

    Worked example: ``simulate_fleet([cfg, cfg], Workload.offline(256, prompt_tokens=1000,
    max_tokens=200, ignore_eos=True))`` on H200s puts 128 requests on each and doubles the
    output throughput of one; with one replica it gives exactly what ``simulate`` gives.
    """
    return _drive(
        list(replicas),
        0,
        workload,
        router=router,
        seed=seed,
        session_of=session_of,
        keep_chunk_times=keep_chunk_times,
        timeseries=timeseries,
        max_sim_s=max_sim_s,
        kv_link_latency_s=KV_LINK_LATENCY_S,
    )


def simulate_disaggregated(
    prefill: Sequence[EngineConfig],
    decode: Sequence[EngineConfig],
    workload: Workload,
    *,
    router: str = "least-outstanding",
    seed: int = 0,
    session_of: Callable[[int], Hashable] | None = None,
    kv_link_latency_s: float = KV_LINK_LATENCY_S,
    keep_chunk_times: bool = True,
    timeseries: bool = True,
    max_sim_s: float | None = None,
) -> FleetResult:
    """Disaggregated serving: prefill on one pool, decode on another, in simulated time.

    A request is routed to a prefill replica and queued there asking for one token; the end
    of its prefill is its first token. Its KV cache then moves to a decode replica (chosen by
    the same router among the decode pool when the cache arrives), taking
    :func:`kv_transfer_s` of the prefill replica's configuration; it joins that engine with its
    prompt already cached (:meth:`~infphys.sim.Engine.add_request` with ``prefilled_at_s``) and
    decodes the rest. Its output length is drawn once, at arrival, from the prefill replica's
    output-length distribution (a seeded stream); a request of one token never moves. Replicas
    are indexed prefill first: ``labels["replica"]`` is the decode replica's index (the
    prefill one's for a one-token answer), with ``prefill_replica``, ``decode_replica`` (within
    its pool) and ``kv_transfer_s`` as well.

    Why it helps: on a colocated replica a long prompt's prefill shares steps with the
    decoders, so their inter-token gaps grow by the prefill's compute (tens of ms for a 4,000-
    token chunk on an H200); a decode replica's steps hold decode tokens only.

    Worked example: a 4,000-token prompt of Llama-3.1-8B BF16 on H200s: prefill 120 ms,
    transfer 1.175 ms (524 MB at 450 GB/s), then decode steps of 6.9 ms with no prefill in
    them.
    """
    if not prefill or not decode:
        raise ValueError("simulate_disaggregated needs at least one prefill and one decode replica")
    return _drive(
        [*prefill, *decode],
        len(prefill),
        workload,
        router=router,
        seed=seed,
        session_of=session_of,
        keep_chunk_times=keep_chunk_times,
        timeseries=timeseries,
        max_sim_s=max_sim_s,
        kv_link_latency_s=kv_link_latency_s,
    )


def _drive(
    configs: list[EngineConfig],
    n_prefill: int,
    workload: Workload,
    *,
    router: str,
    seed: int,
    session_of: Callable[[int], Hashable] | None,
    keep_chunk_times: bool,
    timeseries: bool,
    max_sim_s: float | None,
    kv_link_latency_s: float,
) -> FleetResult:
    """The event loop behind both drivers; ``n_prefill`` 0 is a colocated fleet."""
    if not configs or not all(isinstance(c, EngineConfig) for c in configs):
        raise ValueError("replicas must be a non-empty sequence of EngineConfig")
    _check_run(workload, max_sim_s)
    if not (kv_link_latency_s >= 0):
        raise ValueError(f"kv_link_latency_s must be >= 0 (got {kv_link_latency_s!r})")
    wall0 = time.perf_counter()
    started_at = utc_timestamp()
    # Replica i draws output lengths from its own stream (seed + i): identical replicas with
    # one stream would draw the same lengths in the same order, and round-robin would look
    # perfectly balanced. Replica 0 keeps its seed, so one replica reproduces simulate().
    engines = [
        Engine(c.with_(seed=c.seed + i) if i else c, track_steps=keep_chunk_times)
        for i, c in enumerate(configs)
    ]
    disagg = n_prefill > 0
    front = engines[:n_prefill] if disagg else engines
    back = engines[n_prefill:]
    route_front = Router(router, seed, session_of)
    route_back = Router(router, seed + 1, session_of)
    draw_rng = random.Random(f"{seed}:outputs")
    sizes = workload.sizes()
    warmup = workload.warmup
    base_labels = workload.record_labels()
    ignore_eos = workload.ignore_eos
    closed = workload.mode == "closed"
    dynamic = closed or disagg  # arrivals are made during the run
    arrivals = _Arrivals(workload, configs[0].frontend_latency_s, configs[0].frontend_service_s)
    pending, sent_at = arrivals.pending, arrivals.sent_at
    # disaggregated: (KV ready at the decode pool, index, client, prefill replica, 1st token, s)
    handoffs: list[tuple[float, int, int, int, float, float]] = []
    client_of: dict[int, int] = {}
    target_of: dict[int, int] = {}
    hand_of: dict[int, tuple[int, float, int]] = {}  # index: prefill replica, transfer s, preempt.
    records: list[RequestRecord] = []
    rows: list[tuple[float, int, int, int, int, str]] = []
    row_replica: list[int] = []
    roles = (
        ("prefill",) * n_prefill + ("decode",) * len(back) if disagg else ("serve",) * len(engines)
    )

    def log(t: float, replica: int, event: str) -> None:
        if timeseries:
            rows.append(
                (
                    t,
                    sum(len(e.running) for e in engines),
                    sum(len(e.waiting) for e in engines),
                    sum(e.kv_blocks_used for e in engines),
                    sum(e.preemptions_total for e in engines),
                    event,
                )
            )
            row_replica.append(replica)

    def labels_for(idx: int, replica: int, r: SimRequest | None) -> dict[str, Any]:
        labels = dict(base_labels)
        if r is not None:
            labels["num_preemptions"] = r.num_preemptions
        labels["replica"] = replica
        if idx in hand_of:
            p_rep, xfer, pre = hand_of[idx]
            labels["prefill_replica"] = p_rep
            labels["decode_replica"] = replica - n_prefill
            labels["kv_transfer_s"] = xfer
            if r is not None:
                labels["num_preemptions"] = r.num_preemptions + pre
        return labels

    def record_ok(idx: int, replica: int, r: SimRequest, times: list[float]) -> None:
        sent_s = sent_at.pop(idx, r.arrival_s)
        labels = labels_for(idx, replica, r)
        records.append(_engine_record(idx, r, sent_s, times, idx < warmup, labels))

    def done(idx: int, t_end: float) -> None:
        hand_of.pop(idx, None)
        target_of.pop(idx, None)
        if closed:
            arrivals.next_request(t_end, client_of.pop(idx))

    def admit(j: int, t: float, idx: int, **kw: Any) -> bool:
        e = engines[j]
        e.set_now(t)  # an idle engine's clock catches up; a busy one's never goes back
        p, mt = sizes[idx]
        try:
            e.add_request(p, mt, arrival_s=t, request_id=idx, ignore_eos=ignore_eos, **kw)
        except RequestRejected as exc:
            records.append(
                _rejected_record(
                    idx, sent_at.pop(idx, t), t, p, exc, idx < warmup, labels_for(idx, j, None)
                )
            )
            done(idx, t)
            return False
        return True

    def arrive(t: float, idx: int, client: int) -> None:
        if closed:
            client_of[idx] = client
        j = route_front.pick(front, idx)
        if not disagg:
            admit(j, t, idx)
        else:
            mt = sizes[idx][1]
            target = mt if ignore_eos else configs[j].output_lengths.draw(mt, draw_rng)
            target_of[idx] = max(1, target)
            admit(j, t, idx, output_target=1)
        log(t, j, "arrival")

    def hand_off(t: float, idx: int, client: int, p_rep: int, t_first: float, xfer: float) -> None:
        j = n_prefill + route_back.pick(back, idx)
        admit(j, t, idx, output_target=target_of[idx], prefilled_at_s=t_first)
        log(t, j, "handoff")

    def finished(k: int, r: SimRequest) -> None:
        idx = int(r.request_id)  # type: ignore[call-overload]
        e = engines[k]
        times = e.token_times(r) if keep_chunk_times else []
        if not disagg:
            record_ok(idx, k, r, times)
            done(idx, e.now_s)
        elif k >= n_prefill:  # decoded: the first token came from the prefill replica
            first = r.first_token_s
            record_ok(idx, k, r, ([first] if first is not None else []) + times)
            done(idx, e.now_s)
        elif target_of[idx] <= 1:  # a one-token answer ends with its prefill
            r.finish_reason = "length" if r.max_tokens <= 1 else "stop"
            record_ok(idx, k, r, times)
            done(idx, e.now_s)
        else:
            xfer = kv_transfer_s(configs[k], r.prompt_tokens, latency_s=kv_link_latency_s)
            hand_of[idx] = (k, xfer, r.num_preemptions)
            t_first = r.first_token_s if r.first_token_s is not None else e.now_s
            heapq.heappush(
                handoffs, (e.now_s + xfer, idx, client_of.get(idx, -1), k, t_first, xfer)
            )

    inf = math.inf
    horizon = inf if max_sim_s is None else float(max_sim_s)
    truncated = False
    while True:
        k, tk = -1, inf
        for i, e in enumerate(engines):
            if (e.running or e.waiting) and e.now_s < tk:
                k, tk = i, e.now_s
        ta = pending[0][0] if pending else inf
        th = handoffs[0][0] if handoffs else inf
        t_in = min(ta, th)
        if t_in <= tk and t_in < inf:
            if k < 0 and t_in >= horizon:
                truncated = True
                break
            if ta <= th:
                arrive(*heapq.heappop(pending))
            else:
                hand_off(*heapq.heappop(handoffs))
            continue
        if k < 0:
            break
        if tk >= horizon:
            truncated = True
            break
        e = engines[k]
        log(tk, k, "step")
        bound = t_in
        if dynamic:
            for i, other in enumerate(engines):
                if i != k and (other.running or other.waiting):
                    bound = min(bound, other.now_s)
        if e.fast_forward(next_arrival_s=bound, until_s=horizon):
            continue
        for r in e.step().finished:
            finished(k, r)

    end_s = max(e.now_s for e in engines)
    if truncated:
        for k, e in enumerate(engines):
            for r in [*e.running, *e.waiting]:
                idx = int(r.request_id)  # type: ignore[call-overload]
                first = r.first_token_s
                times = e.token_times(r) if keep_chunk_times else []
                if k >= n_prefill and disagg and first is not None:
                    times = [first, *times]
                sent_s = sent_at.get(idx, r.arrival_s)
                out = e.output_tokens(r)
                labels = labels_for(idx, k, None)
                records.append(_engine_record(idx, r, sent_s, times, idx < warmup, labels, out))
        for _, idx, _, p_rep, t_first, _ in handoffs:  # caught in a KV transfer
            p = sizes[idx][0]
            records.append(
                RequestRecord(
                    request_id=idx,
                    sent_s=sent_at.get(idx, t_first),
                    first_token_s=t_first,
                    chunk_times_s=[t_first] if keep_chunk_times else [],
                    prompt_tokens=p,
                    completion_tokens=1,
                    token_count_source="simulated",
                    status="incomplete",
                    warmup=idx < warmup,
                    labels=labels_for(idx, p_rep, None),
                )
            )
    log(end_s, -1, "end")
    frame = _timeseries_frame(rows, sum(e.total_blocks for e in engines))
    frame["replica"] = row_replica
    first_sent = min((r.sent_s for r in records), default=0.0)
    stats = SimStats(
        wall_s=time.perf_counter() - wall0,
        sim_duration_s=end_s - first_sent,
        steps=sum(e.steps for e in engines),
        stretches=sum(e.stretches for e in engines),
        stretch_steps=sum(e.stretch_steps for e in engines),
        exact_steps=sum(e.exact_steps for e in engines),
        preemptions=sum(e.preemptions_total for e in engines),
        truncated=truncated,
    )
    header = _run_header(
        configs[0],
        workload,
        started_at,
        stats,
        load={
            "kind": "simulate_disaggregated" if disagg else "simulate_fleet",
            "max_sim_s": max_sim_s,
            "keep_chunk_times": keep_chunk_times,
        },
        extra={
            "exact": False,
            "fleet": {
                "router": router,
                "seed": seed,
                "roles": list(roles),
                "replicas": [c.describe() for c in configs],
                **({"kv_link_latency_s": kv_link_latency_s} if disagg else {}),
            },
        },
    )
    return FleetResult(
        header=header,
        records=records,
        timeseries=frame,
        stats=stats,
        config=configs[0],
        workload=workload,
        replicas=tuple(configs),
        roles=roles,
    )
