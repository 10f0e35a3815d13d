"""What a simulated server reports about itself: Prometheus metrics and keeping-up figures.

:class:`EngineCollector` reads the engine's gauges and counters at scrape time, in both
vocabularies: vLLM's (``vllm:num_requests_running``, ``vllm:kv_cache_usage_perc``,
``vllm:num_preemptions_total``, token counters) and NIM 1.x's (``num_requests_running``,
``gpu_cache_usage_perc``, …), plus the driver's own ``infphys_sim_*`` health figures.
:class:`LatencyHistograms` holds the TTFT, end-to-end and time-per-output-token histograms
(each under both names, with vLLM's buckets). :class:`ServerStats` says how well the real-time
driver keeps up with the wall clock.

Worked example: a step due at wall time 10.000 s whose tokens go out at 10.003 s has a lag of
3 ms; with the default tolerance (2 ms, or 10 % of a 20 ms step = 2 ms) it counts as late, so
``ServerStats.late_steps`` grows by one and ``infphys_sim_late_steps_total`` with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from infphys.sim.server import SimServer

__all__ = ["EngineCollector", "LatencyHistograms", "ServerStats"]

_TTFT_BUCKETS = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
    160.0,
    640.0,
    2560.0,
)
_E2E_BUCKETS = (
    0.3,
    0.5,
    0.8,
    1.0,
    1.5,
    2.0,
    2.5,
    5.0,
    10.0,
    15.0,
    20.0,
    30.0,
    40.0,
    50.0,
    60.0,
    120.0,
    240.0,
    480.0,
    960.0,
    1920.0,
    7680.0,
)
_TPOT_BUCKETS = (
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.4,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
)


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


class EngineCollector(Collector):
    """Engine gauges and counters, read at scrape time (no per-step cost)."""

    def __init__(self, server: SimServer) -> None:
        self.server = server

    def collect(self) -> Iterator[Metric]:
        s = self.server
        e = s.engine
        name = s.served_model_name
        lab = ["model_name"]

        def gauge(metric: str, doc: str, value: float) -> GaugeMetricFamily:
            g = GaugeMetricFamily(metric, doc, labels=lab)
            g.add_metric([name], value)
            return g

        def counter(metric: str, doc: str, value: float) -> CounterMetricFamily:
            c = CounterMetricFamily(metric, doc, labels=lab)
            c.add_metric([name], value)
            return c

        running, waiting, usage = float(e.num_running), float(e.num_waiting), e.kv_usage
        yield gauge(
            "vllm:num_requests_running", "Number of requests in model execution batches.", running
        )
        yield gauge(
            "vllm:num_requests_waiting", "Number of requests waiting to be processed.", waiting
        )
        yield gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", usage)
        yield gauge(
            "vllm:gpu_cache_usage_perc",
            "GPU KV-cache usage (name before vLLM 0.10). 1 means 100 percent usage.",
            usage,
        )
        yield counter(
            "vllm:num_preemptions",
            "Cumulative number of preemption from the engine.",
            float(e.preemptions_total),
        )
        yield counter(
            "vllm:prompt_tokens",
            "Number of prefill tokens processed.",
            float(e.prompt_tokens_total),
        )
        yield counter(
            "vllm:generation_tokens",
            "Number of generation tokens processed.",
            float(e.generation_tokens_total),
        )
        yield gauge("num_requests_running", "Number of requests currently running on GPU.", running)
        yield gauge("num_requests_waiting", "Number of requests waiting to be processed.", waiting)
        yield gauge("num_requests_swapped", "Number of requests swapped to CPU.", 0.0)
        yield gauge(
            "num_request_max",
            "Max number of concurrently running requests.",
            float(s.config.max_num_seqs),
        )
        yield gauge("gpu_cache_usage_perc", "GPU KV-cache usage. 1 means 100 percent usage.", usage)
        yield counter(
            "num_preemptions",
            "Cumulative number of preemption from the engine.",
            float(e.preemptions_total),
        )
        yield counter(
            "prompt_tokens", "Number of prefill tokens processed.", float(e.prompt_tokens_total)
        )
        yield counter(
            "generation_tokens",
            "Number of generation tokens processed.",
            float(e.generation_tokens_total),
        )
        st = s.stats
        yield gauge(
            "infphys_sim_step_lag_seconds",
            "How late the last step's tokens went out (wall seconds).",
            st.last_lag_s,
        )
        yield gauge(
            "infphys_sim_step_lag_max_seconds",
            "Largest step lateness (wall seconds).",
            st.max_lag_s,
        )
        yield counter("infphys_sim_steps", "Engine steps run.", float(st.steps))
        yield counter(
            "infphys_sim_late_steps",
            "Steps delivered later than the tolerance.",
            float(st.late_steps),
        )
        yield counter(
            "infphys_sim_stall_seconds",
            "Delay written off by shifting the timeline (the server fell behind).",
            st.stall_s_total,
        )
        yield counter(
            "infphys_sim_rejected_requests",
            "Requests refused with 503 because the queue was full.",
            float(st.rejected_503),
        )
        yield gauge("infphys_sim_time_scale", "Wall seconds per simulated second.", s.time_scale)


class LatencyHistograms:
    """TTFT, end-to-end and per-output-token latency histograms of one served model.

    Each is registered twice in ``registry``, under vLLM's name and NIM 1.x's, and every
    observation goes to both.
    """

    def __init__(self, registry: CollectorRegistry, served_model_name: str) -> None:
        lab = ["model_name"]
        reg = registry
        h_ttft = [
            Histogram(
                "vllm:time_to_first_token_seconds",
                "Histogram of time to first token in seconds.",
                lab,
                buckets=_TTFT_BUCKETS,
                registry=reg,
            ),
            Histogram(
                "time_to_first_token_seconds",
                "Histogram of time to first token in seconds (NIM 1.x).",
                lab,
                buckets=_TTFT_BUCKETS,
                registry=reg,
            ),
        ]
        h_e2e = [
            Histogram(
                "vllm:e2e_request_latency_seconds",
                "Histogram of end to end request latency in seconds.",
                lab,
                buckets=_E2E_BUCKETS,
                registry=reg,
            ),
            Histogram(
                "e2e_request_latency_seconds",
                "Histogram of end to end request latency in seconds (NIM 1.x).",
                lab,
                buckets=_E2E_BUCKETS,
                registry=reg,
            ),
        ]
        h_tpot = [
            Histogram(
                "vllm:request_time_per_output_token_seconds",
                "Histogram of time_per_output_token_seconds per request.",
                lab,
                buckets=_TPOT_BUCKETS,
                registry=reg,
            ),
            Histogram(
                "time_per_output_token_seconds",
                "Histogram of time per output token in seconds (NIM 1.x).",
                lab,
                buckets=_TPOT_BUCKETS,
                registry=reg,
            ),
        ]
        self.ttft = [h.labels(model_name=served_model_name) for h in h_ttft]
        self.e2e = [h.labels(model_name=served_model_name) for h in h_e2e]
        self.tpot = [h.labels(model_name=served_model_name) for h in h_tpot]
