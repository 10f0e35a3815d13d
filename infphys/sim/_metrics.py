"""What a simulated server reports about itself: Prometheus metrics and keeping-up figures.

:class:`EngineCollector` reads the engine's gauges and counters at scrape time, in both
vocabularies: vLLM's (``vllm:num_requests_running``, ``vllm:kv_cache_usage_perc``,
``vllm:num_preemptions_total``, token counters) and NIM 1.x's (``num_requests_running``,
``gpu_cache_usage_perc``, …), plus the driver's own ``infphys_sim_*`` health figures.
:class:`RequestMetrics` holds the per-request histograms with vLLM's names and buckets: TTFT,
end-to-end and time per output token (each under NIM 1.x's name as well), inter-token latency,
queue, prefill, decode and inference time, prompt and generation tokens per request, tokens
per engine step, and ``vllm:request_success_total{finished_reason}``. A fleet labels every
series with ``replica``. :class:`ServerStats` says how well the real-time driver keeps up with
the wall clock.

Worked example: a step due at wall time 10.000 s whose tokens go out at 10.003 s has a lag of
3 ms; with the default tolerance (2 ms, or 10 % of a 20 ms step = 2 ms) it counts as late, so
``ServerStats.late_steps`` grows by one and ``infphys_sim_late_steps_total`` with it.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from infphys.sim.server import SimServer

__all__ = [
    "EngineCollector",
    "ReplicaMetrics",
    "RequestMetrics",
    "ServerStats",
    "token_buckets",
]

_TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
_E2E_BUCKETS = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
    240.0, 480.0, 960.0, 1920.0, 7680.0,
)  # fmt: skip
#: vLLM's buckets of ``vllm:iteration_tokens_total`` (tokens computed in one engine step).
_ITERATION_BUCKETS = (1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)
_TPOT_BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0,
)  # fmt: skip


@dataclass(slots=True)
class ServerStats:
    """How well the real-time driver keeps up (wall seconds).

    Attributes:
        steps: steps run.
        late_steps: steps delivered late: more than ``lag_tolerance_s`` (2 ms) or 10 % of the
            step's wall duration after their due time, whichever is larger.
        last_lag_s, max_lag_s, mean_lag_s: lateness of step deliveries.
        stall_s_total, rebases: delay written off by shifting the timeline, and how often.
        requests_total, rejected_503, rejected_4xx, aborted: request counts.
        rejected_context: of ``rejected_4xx``, requests refused because prompt + ``max_tokens``
            exceeds ``max_model_len`` (the engine's context; it is never more than its KV cache).
        busy_s: wall time the engine loop spent with requests in the engine.
        recent_lag_s: moving average of the lag (what the response header reports).
        peak_waiting: most requests ever waiting at once (bounded by ``max_queue``).
    """

    steps: int = 0
    late_steps: int = 0
    last_lag_s: float = 0.0
    max_lag_s: float = 0.0
    lag_sum_s: float = 0.0
    stall_s_total: float = 0.0
    rebases: int = 0
    requests_total: int = 0
    rejected_503: int = 0
    rejected_4xx: int = 0
    rejected_context: int = 0
    aborted: int = 0
    busy_s: float = 0.0
    recent_lag_s: float = 0.0
    peak_waiting: int = 0

    @property
    def mean_lag_s(self) -> float:
        return self.lag_sum_s / self.steps if self.steps else 0.0

    @property
    def late_fraction(self) -> float:
        return self.late_steps / self.steps if self.steps else 0.0

    @property
    def kept_up(self) -> bool:
        """No stall, and at most 5 % of steps late (judged once 50 steps have run)."""
        return self.rebases == 0 and (self.steps < 50 or self.late_fraction <= 0.05)

    def lag_note(self) -> str | None:
        """One plain sentence for a learner when the server fell behind the wall clock, else None.

        Example: 12 of 100 steps late, the worst 38.4 ms: "Your computer ran the simulator up
        to 38 ms late (12% of its steps); the figures include that lag."
        """
        if self.kept_up:
            return None
        return (
            f"Your computer ran the simulator up to {1e3 * self.max_lag_s:.0f} ms late "
            f"({100 * self.late_fraction:.0f}% of its steps); the figures include that lag."
        )

    @classmethod
    def merged(cls, parts: list[ServerStats]) -> ServerStats:
        """One view of several replicas: counts and times add up, lags and peaks take the max."""
        out = cls()
        largest = {"last_lag_s", "max_lag_s", "recent_lag_s", "peak_waiting"}
        for f in fields(cls):
            values = [getattr(p, f.name) for p in parts]
            setattr(out, f.name, max(values, default=0) if f.name in largest else sum(values))
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "late_steps": self.late_steps,
            "late_fraction": self.late_fraction,
            "mean_lag_s": self.mean_lag_s,
            "max_lag_s": self.max_lag_s,
            "stall_s_total": self.stall_s_total,
            "rebases": self.rebases,
            "requests_total": self.requests_total,
            "rejected_503": self.rejected_503,
            "rejected_4xx": self.rejected_4xx,
            "rejected_context": self.rejected_context,
            "aborted": self.aborted,
            "peak_waiting": self.peak_waiting,
            "kept_up": self.kept_up,
        }


def token_buckets(max_model_len: int) -> tuple[int, ...]:
    """vLLM's 1-2-5 buckets of per-request token counts, up to ``max_model_len``.

    >>> token_buckets(300)
    (1, 2, 5, 10, 20, 50, 100, 200)
    """
    out: list[int] = []
    mantissa, exponent = (1, 2, 5), 0
    while True:
        for m in mantissa:
            v = m * 10**exponent
            if v > max_model_len:
                return tuple(out)
            out.append(v)
        exponent += 1


class _FastHistogram:
    """Bucket counts without locks, for the per-token inter-token latency (~0.3 µs a token)."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value


class ReplicaMetrics:
    """The request histograms of one replica (children of :class:`RequestMetrics`' series)."""

    def __init__(self, parent: RequestMetrics, labels: tuple[str, ...]) -> None:
        self._parent = parent
        self._labels = labels
        self.ttft = [h.labels(*labels) for h in parent.ttft]
        self.e2e = [h.labels(*labels) for h in parent.e2e]
        self.tpot = [h.labels(*labels) for h in parent.tpot]
        self.queue = parent.queue.labels(*labels)
        self.prefill = parent.prefill.labels(*labels)
        self.decode = parent.decode.labels(*labels)
        self.inference = parent.inference.labels(*labels)
        self.prompt_tokens = parent.prompt_tokens.labels(*labels)
        self.generation_tokens = parent.generation_tokens.labels(*labels)
        self.iteration_tokens = parent.iteration_tokens.labels(*labels)
        self.itl = _FastHistogram(_TPOT_BUCKETS)
        parent.itl[labels] = self.itl

    def success(self, finished_reason: str) -> Any:
        """The ``vllm:request_success_total`` child of ``finished_reason`` (stop, length, abort)."""
        return self._parent.success.labels(*self._labels, finished_reason)


class RequestMetrics(Collector):
    """Per-request histograms of one server, with vLLM's names and buckets.

    Args:
        registry: where to register them (the server's own).
        served_model_name: the ``model_name`` label.
        max_model_len: top of the prompt/generation token buckets (1-2-5 steps, as vLLM).
        fleet: add a ``replica`` label (a server with several engines).
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        served_model_name: str,
        *,
        max_model_len: int,
        fleet: bool = False,
    ) -> None:
        self.name = served_model_name
        self.fleet = fleet
        lab = ["model_name", "replica"] if fleet else ["model_name"]
        self.labelnames = tuple(lab)
        reg = registry

        def hist(name: str, doc: str, buckets: tuple[float, ...]) -> Histogram:
            return Histogram(name, doc, lab, buckets=buckets, registry=reg)

        self.ttft = [
            hist(
                "vllm:time_to_first_token_seconds",
                "Histogram of time to first token in seconds.",
                _TTFT_BUCKETS,
            ),
            hist(
                "time_to_first_token_seconds",
                "Histogram of time to first token in seconds (NIM 1.x).",
                _TTFT_BUCKETS,
            ),
        ]
        self.e2e = [
            hist(
                "vllm:e2e_request_latency_seconds",
                "Histogram of end to end request latency in seconds.",
                _E2E_BUCKETS,
            ),
            hist(
                "e2e_request_latency_seconds",
                "Histogram of end to end request latency in seconds (NIM 1.x).",
                _E2E_BUCKETS,
            ),
        ]
        self.tpot = [
            hist(
                "vllm:request_time_per_output_token_seconds",
                "Histogram of time_per_output_token_seconds per request.",
                _TPOT_BUCKETS,
            ),
            hist(
                "time_per_output_token_seconds",
                "Histogram of time per output token in seconds (NIM 1.x).",
                _TPOT_BUCKETS,
            ),
        ]
        self.queue = hist(
            "vllm:request_queue_time_seconds",
            "Histogram of time spent in WAITING phase for request.",
            _E2E_BUCKETS,
        )
        self.prefill = hist(
            "vllm:request_prefill_time_seconds",
            "Histogram of time spent in PREFILL phase for request.",
            _E2E_BUCKETS,
        )
        self.decode = hist(
            "vllm:request_decode_time_seconds",
            "Histogram of time spent in DECODE phase for request.",
            _E2E_BUCKETS,
        )
        self.inference = hist(
            "vllm:request_inference_time_seconds",
            "Histogram of time spent in RUNNING phase for request.",
            _E2E_BUCKETS,
        )
        tokens = tuple(float(b) for b in token_buckets(max_model_len))
        self.prompt_tokens = hist(
            "vllm:request_prompt_tokens", "Number of prefill tokens processed.", tokens
        )
        self.generation_tokens = hist(
            "vllm:request_generation_tokens", "Number of generation tokens processed.", tokens
        )
        self.iteration_tokens = hist(
            "vllm:iteration_tokens_total",
            "Histogram of number of tokens per engine_step.",
            tuple(float(b) for b in _ITERATION_BUCKETS),
        )
        self.success = Counter(
            "vllm:request_success",
            "Count of successfully processed requests.",
            [*lab, "finished_reason"],
            registry=reg,
        )
        self.itl: dict[tuple[str, ...], _FastHistogram] = {}
        reg.register(self)

    def replica(self, index: int) -> ReplicaMetrics:
        """The histograms of replica ``index``."""
        labels = (self.name, str(index)) if self.fleet else (self.name,)
        return ReplicaMetrics(self, labels)

    def collect(self) -> Iterator[Metric]:
        fam = HistogramMetricFamily(
            "vllm:inter_token_latency_seconds",
            "Histogram of inter-token latency in seconds.",
            labels=list(self.labelnames),
        )
        for labels, h in self.itl.items():
            running, buckets = 0, []
            for bound, n in zip((*h.bounds, float("inf")), h.counts, strict=True):
                running += n
                buckets.append((repr(float(bound)) if bound != float("inf") else "+Inf", running))
            fam.add_metric(list(labels), buckets, h.total)
        yield fam


class EngineCollector(Collector):
    """Engine gauges and counters of every replica, read at scrape time (no per-step cost).

    A fleet labels each series with ``replica`` and adds the router's view:
    ``infphys_router_outstanding_requests`` (requests in each replica, as the router sees them),
    ``infphys_router_routed_requests_total`` and ``infphys_router_kv_transfers_in_flight``.
    """

    def __init__(self, server: SimServer) -> None:
        self.server = server

    def collect(self) -> Iterator[Metric]:
        s = self.server
        name = s.served_model_name
        fleet = len(s.replicas) > 1
        lab = ["model_name", "replica"] if fleet else ["model_name"]
        families: dict[str, Metric] = {}

        def add(kind: str, metric: str, doc: str, labels: list[str], value: float) -> None:
            fam = families.get(metric)
            if fam is None:
                cls = GaugeMetricFamily if kind == "gauge" else CounterMetricFamily
                fam = families[metric] = cls(metric, doc, labels=lab)
            fam.add_metric(labels, value)  # type: ignore[attr-defined]

        for rep in s.replicas:
            labels = [name, str(rep.index)] if fleet else [name]

            def gauge(metric: str, doc: str, value: float, labels: list[str] = labels) -> None:
                add("gauge", metric, doc, labels, value)

            def counter(metric: str, doc: str, value: float, labels: list[str] = labels) -> None:
                add("counter", metric, doc, labels, value)

            _engine_series(rep, gauge, counter)
        yield from families.values()
        if fleet:
            out = GaugeMetricFamily(
                "infphys_router_outstanding_requests",
                f"Requests in each replica (running + waiting), as the {s.router} router sees it.",
                labels=["model_name", "replica", "role"],
            )
            routed = CounterMetricFamily(
                "infphys_router_routed_requests",
                "Requests the router sent to each replica.",
                labels=["model_name", "replica", "role"],
            )
            for rep in s.replicas:
                e = rep.engine
                labels = [name, str(rep.index), rep.role]
                out.add_metric(labels, float(len(e.running) + len(e.waiting)))
                routed.add_metric(labels, float(rep.routed))
            yield out
            yield routed
            g = GaugeMetricFamily(
                "infphys_router_kv_transfers_in_flight",
                "Prefilled requests whose KV cache is moving to a decode replica.",
                labels=["model_name"],
            )
            g.add_metric([name], float(s.kv_transfers_in_flight))
            yield g


def _engine_series(rep: Any, gauge: Any, counter: Any) -> None:
    """One replica's engine gauges and counters, in vLLM's and NIM 1.x's names."""
    e = rep.engine
    s = rep.server
    running, waiting, usage = float(e.num_running), float(e.num_waiting), e.kv_usage
    gauge("vllm:num_requests_running", "Number of requests in model execution batches.", running)
    gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.", waiting)
    gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", usage)
    gauge(
        "vllm:gpu_cache_usage_perc",
        "GPU KV-cache usage (name before vLLM 0.10). 1 means 100 percent usage.",
        usage,
    )
    counter(
        "vllm:num_preemptions",
        "Cumulative number of preemption from the engine.",
        float(e.preemptions_total),
    )
    counter(
        "vllm:prompt_tokens", "Number of prefill tokens processed.", float(e.prompt_tokens_total)
    )
    counter(
        "vllm:generation_tokens",
        "Number of generation tokens processed.",
        float(e.generation_tokens_total),
    )
    gauge("num_requests_running", "Number of requests currently running on GPU.", running)
    gauge("num_requests_waiting", "Number of requests waiting to be processed.", waiting)
    gauge("num_requests_swapped", "Number of requests swapped to CPU.", 0.0)
    gauge(
        "num_request_max",
        "Max number of concurrently running requests.",
        float(rep.config.max_num_seqs),
    )
    gauge("gpu_cache_usage_perc", "GPU KV-cache usage. 1 means 100 percent usage.", usage)
    counter(
        "num_preemptions",
        "Cumulative number of preemption from the engine.",
        float(e.preemptions_total),
    )
    counter("prompt_tokens", "Number of prefill tokens processed.", float(e.prompt_tokens_total))
    counter(
        "generation_tokens",
        "Number of generation tokens processed.",
        float(e.generation_tokens_total),
    )
    st = rep.stats
    gauge(
        "infphys_sim_step_lag_seconds",
        "How late the last step's tokens went out (wall seconds).",
        st.last_lag_s,
    )
    gauge("infphys_sim_step_lag_max_seconds", "Largest step lateness (wall seconds).", st.max_lag_s)
    counter("infphys_sim_steps", "Engine steps run.", float(st.steps))
    counter(
        "infphys_sim_late_steps", "Steps delivered later than the tolerance.", float(st.late_steps)
    )
    counter(
        "infphys_sim_stall_seconds",
        "Delay written off by shifting the timeline (the server fell behind).",
        st.stall_s_total,
    )
    counter(
        "infphys_sim_rejected_requests",
        "Requests refused with 503 because the queue was full.",
        float(st.rejected_503),
    )
    gauge("infphys_sim_time_scale", "Wall seconds per simulated second.", s.time_scale)
