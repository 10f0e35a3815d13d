"""Pure physics of inference serving: memory, the roofline, queueing and cost.

Plain functions over catalog dataclasses; no I/O, no clock, no globals. Bad input raises
``ValueError`` naming the argument and its allowed range.
"""

from __future__ import annotations

from infphys.physics.cost import (
    HOURS_PER_MONTH,
    UserCost,
    cost_per_concurrent_user,
    cost_per_million_tokens,
)
from infphys.physics.memory import (
    DEFAULT_ACTIVATION_RESERVE_BYTES,
    DEFAULT_GPU_MEMORY_UTILIZATION,
    KVCliff,
    kv_budget_bytes,
    kv_bytes_for_batch,
    kv_bytes_per_sequence,
    kv_bytes_per_token,
    kv_bytes_per_token_naive,
    kv_cliff,
    max_concurrent_sequences,
    weight_bytes,
)
from infphys.physics.queueing import (
    QueueMetrics,
    erlang_c,
    find_knee,
    find_latency_cliff,
    kingman_wait_s,
    littles_law_in_flight,
    littles_law_latency_s,
    littles_law_throughput_per_s,
    mm1,
    mmc,
)
from infphys.physics.roofline import (
    DEFAULT_ALLREDUCE_LATENCY_S,
    DEFAULT_BANDWIDTH_EFFICIENCY,
    DEFAULT_FLOPS_EFFICIENCY,
    DEFAULT_INTERCONNECT_BYTES_PER_S,
    RooflineModel,
    StepTime,
    arithmetic_intensity,
    decode_step_s,
    decode_step_time,
    expected_experts_touched,
    prefill_time,
    ridge_point,
    step_time,
    tokens_per_s_ceiling,
)

__all__ = [
    "DEFAULT_ACTIVATION_RESERVE_BYTES",
    "DEFAULT_ALLREDUCE_LATENCY_S",
    "DEFAULT_BANDWIDTH_EFFICIENCY",
    "DEFAULT_FLOPS_EFFICIENCY",
    "DEFAULT_GPU_MEMORY_UTILIZATION",
    "DEFAULT_INTERCONNECT_BYTES_PER_S",
    "HOURS_PER_MONTH",
    "KVCliff",
    "QueueMetrics",
    "RooflineModel",
    "StepTime",
    "UserCost",
    "arithmetic_intensity",
    "cost_per_concurrent_user",
    "cost_per_million_tokens",
    "decode_step_s",
    "decode_step_time",
    "erlang_c",
    "expected_experts_touched",
    "find_knee",
    "find_latency_cliff",
    "kingman_wait_s",
    "kv_budget_bytes",
    "kv_bytes_for_batch",
    "kv_bytes_per_sequence",
    "kv_bytes_per_token",
    "kv_bytes_per_token_naive",
    "kv_cliff",
    "littles_law_in_flight",
    "littles_law_latency_s",
    "littles_law_throughput_per_s",
    "max_concurrent_sequences",
    "mm1",
    "mmc",
    "prefill_time",
    "ridge_point",
    "step_time",
    "tokens_per_s_ceiling",
    "weight_bytes",
]
