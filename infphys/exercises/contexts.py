"""What each lab stores as an exercise's context, so a grader can tell a lab's from a hand-made one.

A lab checks an answer against a *context*: a dictionary of the learner's settings and
measurements, built in one cell of the notebook and stored with the answer (see
:class:`~infphys.exercises.AnswerBook`). Grading re-checks every answer against its stored
context, so editing the context is the way to make a wrong answer pass. This module describes,
per exercise, what the lab writes there:

- the exact **keys** (a context with a key missing or added did not come from the lab);
- the **decimals** the lab rounds each measured value to (``round(ttft_s, 4)``: a value with more
  decimals was typed by hand);
- the values that follow from the others (**derived**: ``model_name`` is the catalog name of
  ``model``; Lab 11's ``cap_concurrency`` is the SLO cap of its own sweep), recomputed here from
  the stored inputs;
- **checks** of what cannot be physical (a negative time, a first token after the last one);
- which keys are wall-clock **measurements**, which differ on every run (two learners with the
  same measured context copied one another).

:func:`context_problems` lists every way a stored context differs from what the lab gives.
``tests/test_grading.py`` reads the labs' source to check these specs against the labs.

>>> ctx = {"model": "llama-3.1-8b", "model_name": "Llama-3.1-8B", "kv_precision": "bf16",
...        "gpu": "h200", "gpu_name": "H200 SXM", "context_tokens": 8192,
...        "weights_precision": "bf16"}
>>> context_problems("lab03.q1", ctx)
[]
>>> context_problems("lab03.q1", {**ctx, "model": "llama-3.1-70b"})
["model_name is 'Llama-3.1-8B' but the lab gives 'Llama-3.1-70B' for these inputs"]
>>> context_problems("lab01.q1", {"ttft_s": 0.12345, "e2e_s": 0.9, "completion_tokens": 64})
['ttft_s = 0.12345 has more decimals than the lab stores (4)']
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SPECS", "ContextSpec", "context_problems", "measured_keys"]

Context = Mapping[str, Any]


@dataclass(frozen=True)
class ContextSpec:
    """What one lab cell stores as an exercise's context (see the module docstring)."""

    keys: frozenset[str]
    decimals: Mapping[str, int] = field(default_factory=dict)
    measured: frozenset[str] = frozenset()
    derived: Callable[[Context], dict[str, Any]] | None = None
    checks: Callable[[Context], list[str]] | None = None


def _names(ctx: Context) -> dict[str, Any]:
    from infphys.catalog import get_gpu
    from infphys.exercises.lab03 import model_from_context

    out: dict[str, Any] = {}
    if "model_name" in ctx:
        out["model_name"] = model_from_context(ctx["model"]).name
    if "gpu_name" in ctx:
        out["gpu_name"] = get_gpu(ctx["gpu"]).name
    return out


def _lab09(ctx: Context) -> dict[str, Any]:
    return {"prompt_tokens": ctx["prompt_tokens_large"], "max_tokens": ctx["max_tokens_large"]}


def _lab11(ctx: Context) -> dict[str, Any]:
    from infphys.planning import slo_cap

    cap = slo_cap(list(ctx["concurrency"]), list(ctx["e2e_p95_s"]), ctx["slo_p95_s"])
    return {"cap_concurrency": 1 if cap is None else int(cap)}


def _one_gpu(ctx: Context) -> dict[str, Any]:
    return {"num_gpus": 1}


def _before(first: str, last: str) -> Callable[[Context], list[str]]:
    def check(ctx: Context) -> list[str]:
        if ctx[first] > ctx[last]:
            return [f"{first} = {ctx[first]} exceeds {last} = {ctx[last]}"]
        return []

    return check


def _keys(*names: str) -> frozenset[str]:
    return frozenset(names)


_LAB01 = ContextSpec(
    _keys("ttft_s", "e2e_s", "completion_tokens"),
    decimals={"ttft_s": 4, "e2e_s": 4},
    measured=_keys("ttft_s", "e2e_s"),
    checks=_before("ttft_s", "e2e_s"),
)
_LAB02 = ContextSpec(
    _keys("gpu", "gpu_name", "model", "model_name", "copy_bytes", "copy_s"),
    measured=_keys("copy_s"),
    derived=_names,
)
_LAB03 = ContextSpec(
    _keys(
        "model",
        "model_name",
        "gpu",
        "gpu_name",
        "context_tokens",
        "kv_precision",
        "weights_precision",
    ),
    derived=_names,
)
_LAB04 = ContextSpec(
    _keys(
        "model", "model_name", "gpu", "gpu_name", "context_tokens", "itl_ratio", "capacity_ratio"
    ),
    decimals={"itl_ratio": 2, "capacity_ratio": 2},
    derived=_names,
)
_LAB05 = ContextSpec(
    _keys("sequential_tokens_per_s", "concurrent_tokens_per_s", "latency_sum_s", "wall_s"),
    decimals={
        "sequential_tokens_per_s": 1,
        "concurrent_tokens_per_s": 1,
        "latency_sum_s": 3,
        "wall_s": 3,
    },
    measured=_keys("sequential_tokens_per_s", "concurrent_tokens_per_s", "latency_sum_s", "wall_s"),
)
_LAB06_CALCULATOR = ContextSpec(_keys("gpu_hourly_usd", "num_gpus", "concurrent_users"))
_LAB06_CAPACITY = ContextSpec(
    _keys("gpu_hourly_usd", "num_gpus", "concurrent_users", "output_tokens_per_s"),
    decimals={"output_tokens_per_s": 1},
    derived=_one_gpu,
)
_LAB06_TCO = ContextSpec(
    _keys(
        "gpu_hourly_usd",
        "average_input_tokens_per_s",
        "average_output_tokens_per_s",
        "peak_to_average",
        "input_tokens_per_s",
        "output_tokens_per_s",
    ),
    decimals={"input_tokens_per_s": 1, "output_tokens_per_s": 1},
)
_LAB07 = ContextSpec(
    _keys("e2e_mean_ms", "ttft_mean_ms", "tpot_mean_ms", "output_tokens", "target_req_per_s"),
    decimals={"e2e_mean_ms": 3, "ttft_mean_ms": 3, "tpot_mean_ms": 4},
    measured=_keys("e2e_mean_ms", "ttft_mean_ms", "tpot_mean_ms"),
    checks=_before("ttft_mean_ms", "e2e_mean_ms"),
)
_LAB08 = ContextSpec(
    _keys("concurrency", "throughput_req_per_s", "capacity_req_per_s", "rate_per_s"),
    decimals={"throughput_req_per_s": 3, "capacity_req_per_s": 3, "rate_per_s": 3},
    measured=_keys("throughput_req_per_s", "capacity_req_per_s"),
)
_LAB09_MS = ("ttft_small_ms", "ttft_large_ms", "e2e_small_ms", "e2e_large_ms", "ttft_ms")
_LAB09 = ContextSpec(
    _keys(
        "prompt_tokens_small",
        "ttft_small_ms",
        "prompt_tokens_large",
        "ttft_large_ms",
        "max_tokens_small",
        "e2e_small_ms",
        "max_tokens_large",
        "e2e_large_ms",
        "prompt_tokens",
        "max_tokens",
        "ttft_ms",
        "tpot_ms",
    ),
    decimals={**dict.fromkeys(_LAB09_MS, 3), "tpot_ms": 4},
    measured=frozenset((*_LAB09_MS, "tpot_ms")),
    derived=_lab09,
)
_LAB10 = ContextSpec(
    _keys(
        "max_num_seqs",
        "service_ms",
        "timeout_s",
        "met",
        "judged",
        "window_s",
        "attempts",
        "user_requests",
    ),
    decimals={"service_ms": 2, "window_s": 3},
    measured=_keys("service_ms", "window_s"),
    checks=lambda c: _before("met", "judged")(c) + _before("user_requests", "attempts")(c),
)
_LAB11 = ContextSpec(
    _keys(
        "concurrency",
        "e2e_p95_s",
        "slo_p95_s",
        "users",
        "cap_concurrency",
        "tp",
        "kv_capacity_tokens",
        "block_tokens",
        "prompt_tokens",
        "max_tokens",
        "max_num_seqs",
    ),
    decimals={"e2e_p95_s": 4},
    derived=_lab11,
)
_LAB12 = ContextSpec(
    _keys(
        "model",
        "model_name",
        "isl",
        "osl",
        "gpu",
        "gpu_name",
        "concurrency",
        "users",
        "ttft_budget_ms",
        "itl_budget_ms",
        "a100_usd",
        "h100_usd",
        "held_gpu",
        "held_tp",
        "held_precision",
        "held_concurrency",
        "sim_ttft_ms",
        "queue_ttft_ms",
    ),
    decimals={"sim_ttft_ms": 1, "queue_ttft_ms": 1},
    derived=_names,
)
_LAB13 = ContextSpec(
    _keys(
        "model",
        "model_name",
        "gpu",
        "gpu_name",
        "concurrency",
        "replicas",
        "requests_per_s",
        "e2e_mean_s",
        "rr_ttft_p95_ms",
        "lo_ttft_p95_ms",
        "kv_ttft_p95_ms",
        "sa_ttft_p95_ms",
        "rate_per_s",
        "prefill_ms",
    ),
    decimals={
        "requests_per_s": 3,
        "e2e_mean_s": 4,
        "rr_ttft_p95_ms": 1,
        "lo_ttft_p95_ms": 1,
        "kv_ttft_p95_ms": 1,
        "sa_ttft_p95_ms": 1,
        "prefill_ms": 2,
    },
    derived=_names,
)

#: The context spec of every exercise, by id.
SPECS: dict[str, ContextSpec] = {
    **{f"lab01.q{i}": _LAB01 for i in (1, 2, 3)},
    **{f"lab02.q{i}": _LAB02 for i in (1, 2, 3)},
    **{f"lab03.q{i}": _LAB03 for i in (1, 2, 3, 4)},
    **{f"lab04.q{i}": _LAB04 for i in (1, 2, 3, 4)},
    **{f"lab05.q{i}": _LAB05 for i in (1, 2, 3)},
    "lab06.q1": _LAB06_CALCULATOR,
    "lab06.q2": _LAB06_CAPACITY,
    "lab06.q3": _LAB06_CAPACITY,
    "lab06.q4": _LAB06_TCO,
    **{f"lab07.q{i}": _LAB07 for i in (1, 2, 3, 4)},
    **{f"lab08.q{i}": _LAB08 for i in (1, 2, 3, 4)},
    **{f"lab09.q{i}": _LAB09 for i in (1, 2, 3, 4)},
    **{f"lab10.q{i}": _LAB10 for i in (1, 2, 3, 4)},
    **{f"lab11.q{i}": _LAB11 for i in (1, 2, 3, 4)},
    **{f"lab12.q{i}": _LAB12 for i in (1, 2, 3, 4)},
    **{f"lab13.q{i}": _LAB13 for i in (1, 2, 3, 4)},
}


def measured_keys(exercise_id: str) -> frozenset[str]:
    """The wall-clock measurements in an exercise's context (empty when it has none)."""
    spec = SPECS.get(exercise_id)
    return spec.measured if spec else frozenset()


def _numbers(value: Any) -> list[float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [float(value)]
    if isinstance(value, list):
        return [x for v in value for x in _numbers(v)]
    return []


def context_problems(exercise_id: str, context: Context) -> list[str]:
    """Every way ``context`` differs from what the exercise's lab stores; empty when it matches.

    An exercise with no spec (not from a lab) has no problems. See the module docstring.
    """
    spec = SPECS.get(exercise_id)
    if spec is None:
        return []
    have = set(context)
    if have != spec.keys:
        parts = []
        if missing := sorted(spec.keys - have):
            parts.append(f"missing {', '.join(missing)}")
        if extra := sorted(have - spec.keys):
            parts.append(f"not from the lab: {', '.join(extra)}")
        return [f"context keys differ from the lab's ({'; '.join(parts)})"]
    problems: list[str] = []
    for key, value in context.items():
        numbers = _numbers(value)
        if any(not math.isfinite(x) for x in numbers):
            problems.append(f"{key} = {value!r} is not a finite number")
        elif any(x < 0 for x in numbers):
            problems.append(f"{key} = {value!r} is negative")
        elif key in spec.measured and any(x == 0 for x in numbers):
            problems.append(f"{key} = {value!r}: a measured time or rate cannot be zero")
    for key, places in spec.decimals.items():
        values = _numbers(context[key])
        if any(round(x, places) != x for x in values):
            problems.append(
                f"{key} = {context[key]!r} has more decimals than the lab stores ({places})"
            )
    if problems:
        return problems
    try:
        if spec.checks is not None:
            problems += spec.checks(context)
        if spec.derived is not None:
            for key, want in spec.derived(context).items():
                if context[key] != want:
                    problems.append(
                        f"{key} is {context[key]!r} but the lab gives {want!r} for these inputs"
                    )
    except (TypeError, ValueError, KeyError) as exc:
        problems.append(f"context cannot come from the lab ({exc})")
    return problems
