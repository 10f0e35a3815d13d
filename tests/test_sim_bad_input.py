"""Every driver of the simulated engine refuses a wrong argument with a ValueError that names it
(the checks live once: sim.config.check_engine_config, sim.fleet.check_router and the run
checks shared by simulate and the fleet drivers)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from infphys.sim import Engine, EngineConfig, Workload, simulate, simulate_fleet
from infphys.sim.fleet import Router, simulate_disaggregated
from infphys.sim.server import SimServer
from infphys.sim.sweeps import sweep

CFG = EngineConfig.build("h200", "llama-3.1-8b")
WL = Workload.closed(1, 2, prompt_tokens=16, max_tokens=4)
BAD: list[tuple[str, Callable[[], Any], str]] = [
    ("simulate config", lambda: simulate("h200", WL), r"^config must be an EngineConfig"),  # type: ignore[arg-type]
    ("simulate workload", lambda: simulate(CFG, "closed"), r"^workload must be a Workload"),  # type: ignore[arg-type]
    ("simulate max_sim_s", lambda: simulate(CFG, WL, max_sim_s=0), r"^max_sim_s must be > 0"),
    ("fleet workload", lambda: simulate_fleet([CFG], None), r"^workload must be a Workload"),  # type: ignore[arg-type]
    ("fleet max_sim_s", lambda: simulate_fleet([CFG], WL, max_sim_s=-1.0), r"^max_sim_s must"),
    ("fleet router", lambda: simulate_fleet([CFG], WL, router="random"), r"^router must be one"),
    (
        "disaggregated router",
        lambda: simulate_disaggregated([CFG], [CFG], WL, router="x"),
        r"^router must be one of \('round-robin'",
    ),
    ("sweep config", lambda: sweep(None, [1]), r"^config must be an EngineConfig"),  # type: ignore[arg-type]
    ("engine config", lambda: Engine("h200"), r"^config must be an EngineConfig \(got 'h200'\)"),  # type: ignore[arg-type]
    ("router name", lambda: Router("random", 0, None), r"^router must be one of"),
    ("server config", lambda: SimServer("h200"), r"^config must be an EngineConfig"),  # type: ignore[arg-type]
    ("server router", lambda: SimServer(CFG, router="random"), r"^router must be one of"),
]


@pytest.mark.parametrize(("case", "call", "message"), BAD, ids=[b[0] for b in BAD])
def test_a_wrong_argument_is_named(case: str, call: Callable[[], Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
