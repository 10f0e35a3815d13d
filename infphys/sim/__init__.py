"""The simulated serving engine: vLLM V1's scheduler, each step priced by the roofline.

One engine (:mod:`infphys.sim.engine`), two drivers:

- virtual time (:func:`simulate`): a whole workload (:class:`Workload`: closed loop, open loop,
  offline, replayed trace) in milliseconds of wall time, returning the same request records and
  run header as a real measurement, plus the engine's time series; a fleet of engines behind a
  router (:func:`simulate_fleet`), or prefill and decode pools (:func:`simulate_disaggregated`);
  a closed-loop concurrency sweep, one request-count rule for every caller (:func:`sweep`);
- real time (:func:`serve`, :class:`SimServer`): an OpenAI-compatible HTTP server on loopback
  whose answers take the time the simulated GPU would take, one engine or a fleet behind the
  same router (``serve(replicas=4, router="least-outstanding")``).

Example (a lab cell)::

    import infphys.sim
    with infphys.sim.serve(gpu="h200", model="llama-3.1-8b") as target:
        ...  # target is an infphys.measure.Target: pass it to the load generator as is

    cfg = infphys.sim.EngineConfig.build("h100", "llama-3.1-8b", weights_precision="fp8")
    res = infphys.sim.simulate(cfg, infphys.sim.Workload.closed(64, 640, prompt_tokens=1000,
                                                                  max_tokens=200))
    res.summary()["output_tokens_per_s"]

The engine's defaults are calibrated on TensorRT-LLM's published max-throughput table
(:mod:`infphys.sim.calibration`).
"""

from __future__ import annotations

from infphys.sim._tokens import (
    count_chat_prompt_tokens,
    count_completion_prompt_tokens,
    count_text_tokens,
)
from infphys.sim.calibration import (
    CALIBRATION_ROWS,
    CalibrationResult,
    CalibrationRow,
    calibrate,
    simulate_row,
    trtllm_bench_limits,
)
from infphys.sim.config import (
    EngineConfig,
    OutputLengths,
    default_served_model_name,
)
from infphys.sim.engine import (
    Engine,
    RequestRejected,
    SimRequest,
    StepOutcome,
    context_length_message,
)
from infphys.sim.fleet import (
    KV_LINK_LATENCY_S,
    ROUTERS,
    FleetResult,
    kv_transfer_s,
    simulate_disaggregated,
    simulate_fleet,
)
from infphys.sim.hosting import SimHandle, run_server, serve
from infphys.sim.server import SimServer
from infphys.sim.sweeps import DEFAULT_SWEEP_CONCURRENCY, SimSweep, sweep, sweep_requests
from infphys.sim.virtual import (
    CLIENT_STAGGER_S,
    TIMESERIES_COLUMNS,
    SimResult,
    SimStats,
    simulate,
    time_average,
)
from infphys.sim.workload import Workload

__all__ = [
    "CALIBRATION_ROWS",
    "CLIENT_STAGGER_S",
    "DEFAULT_SWEEP_CONCURRENCY",
    "KV_LINK_LATENCY_S",
    "ROUTERS",
    "TIMESERIES_COLUMNS",
    "CalibrationResult",
    "CalibrationRow",
    "Engine",
    "EngineConfig",
    "FleetResult",
    "OutputLengths",
    "RequestRejected",
    "SimHandle",
    "SimRequest",
    "SimResult",
    "SimServer",
    "SimStats",
    "SimSweep",
    "StepOutcome",
    "Workload",
    "calibrate",
    "context_length_message",
    "count_chat_prompt_tokens",
    "count_completion_prompt_tokens",
    "count_text_tokens",
    "default_served_model_name",
    "kv_transfer_s",
    "run_server",
    "serve",
    "simulate",
    "simulate_disaggregated",
    "simulate_fleet",
    "simulate_row",
    "sweep",
    "sweep_requests",
    "time_average",
    "trtllm_bench_limits",
]
