"""Running labs 7–11 headless (``app.run()``) against the embedded simulator, for their tests.

:func:`run_lab` runs a lab with its settings overridden and keeps its time (printed, never
asserted); :func:`lab_fixture` makes a module-scoped fixture of one run; :func:`offline_labs`
keeps every lab off any server that answers on this machine.

Labs 8, 9 and 10 time real-time simulators, slowed ``TIME_SCALE`` times (the labs'
``time_scale``), with every duration of the test (timeouts, SLOs) scaled alike: see
``TIME_SCALE`` for why. Where the computer is too busy for the load generator to deliver the
load even so (:func:`short_of_load`), :func:`slowed_lab_fixture` runs the lab once more twice as
slow; if it still falls short, :func:`require_the_load_delivered` skips the tests of what the
server did with the reason, and the lab must have said so.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cputurn import wait_for_the_browser
from labrun import LABS, load_app

import infphys.sim
from infphys.sim import hosting
from infphys.sim._metrics import ServerStats

LAB_FILES = {
    7: "07_littles_law.py",
    8: "08_concurrency_sweep.py",
    9: "09_token_budget.py",
    10: "10_overload.py",
    11: "11_tuning.py",
}
TIMINGS: dict[str, float] = {}


def offline_labs() -> Any:
    """An autouse module-scoped fixture for a module of lab runs (assign it to a module name):
    NIM_BASE_URL at a loopback port nobody listens on, so every lab that resolves its target
    falls back to the embedded simulator; answer files in a temporary folder, out of the repo;
    and, at the module's end, the headless run times (``-s`` shows them)."""

    @pytest.fixture(scope="module", autouse=True)
    def offline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        saved = {k: os.environ.get(k) for k in ("NIM_BASE_URL", "INFPHYS_ANSWERS_DIR")}
        os.environ["NIM_BASE_URL"] = f"http://127.0.0.1:{port}"
        os.environ["INFPHYS_ANSWERS_DIR"] = str(tmp_path_factory.mktemp("answers"))
        yield
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if TIMINGS:
            lines = [f"  {name}: {seconds:.1f} s" for name, seconds in TIMINGS.items()]
            print("\nheadless lab runs (app.run, after import):\n" + "\n".join(lines))
            TIMINGS.clear()

    return offline


def run_lab(lab: int, label: str, settings: dict[str, Any]) -> dict[str, Any]:
    """Run a lab with its settings cell overridden; return its definitions. It first waits
    while this run's browser tests are running (``tests/cputurn.py``): its simulators keep time
    against the wall clock, and beside chromium they fall behind."""
    app = load_app(LABS / LAB_FILES[lab])
    waited_s = wait_for_the_browser()
    if waited_s >= 1:
        TIMINGS[f"lab {lab:02d} ({label}): waited for the browser tests"] = waited_s
    t0 = time.perf_counter()
    _, defs = app.run(defs=settings)
    elapsed = time.perf_counter() - t0
    TIMINGS[f"lab {lab:02d} ({label})"] = elapsed  # reported, never asserted
    return dict(defs)


def lab_fixture(lab: int, label: str, settings: dict[str, Any]) -> Any:
    """A module-scoped fixture named ``labNN``: the lab run once with ``settings``."""

    @pytest.fixture(scope="module", name=f"lab{lab:02d}")
    def ran() -> dict[str, Any]:
        return run_lab(lab, label, settings)

    return ran


# --- labs 8, 9 and 10: their simulators, slowed down -----------------------------------------

#: Wall seconds per simulated second of the simulators labs 8 and 10 start (their
#: ``time_scale``; lab 9's grid, which tolerates less lag, uses 3: ``GRID_TIME_SCALE``). A
#: request of 64 + 8 tokens takes 98 ms on the simulated A100 in real time. On a busy 2-core
#: machine (load 13, beside chromium) the client's event loop ran 40–100 ms late (p95) and the
#: simulator's steps up to 120 ms late: a closed loop of 4 clients then kept only 2–3 requests in
#: flight, so its throughput looked far below the plateau it really reaches, and 2 clients timed
#: out against 0.25 s. The labs' runs now wait until the browser modules are done
#: (``tests/cputurn.py``); slowed 2×, the request takes 196 ms, and beside one or two CPU-bound
#: loops no run of labs 8 and 10 stalled or fell short of its load. The labs' findings are ratios
#: of times (the knee, p95 growth, Little's Law, M/M/c, error rates against a timeout scaled
#: alike), so they are unchanged by the scale.
TIME_SCALE = 2.0

#: Settings that are durations (given here in simulated seconds): scaled with the clock.
DURATIONS = ("timeout_s", "ttft_slo_s", "tpot_slo_s")

#: Below the batch limit a closed loop of c clients should keep c requests in flight; under
#: this share of them, the client's own turnaround (not the server) set the pace.
DELIVERED_SHARE = 0.9

#: The small server both labs overload: an A100 running 4 requests at once, 64 + 8 tokens each.
SMALL_A100 = {
    "gpu": "a100-80gb-sxm",
    "model": "llama-3.1-8b",
    "max_num_seqs": 4,
    "prompt_tokens": 64,
    "max_tokens": 8,
    "seed": 0,
}


#: Lab 10's settings for the tests: a small A100 of 4 slots, whose request of 64 + 8 tokens
#: takes 98 ms; timeout and SLOs in simulated seconds, scaled to the wall clock by ``slowed``.
LAB10 = {
    **SMALL_A100,
    "client_levels": [2, 4, 16, 32],
    "requests_per_level": 32,
    "timeout_s": 0.25,
    "max_queue": 4,
    "open_fractions": [0.5, 2.0],
    "open_requests": 40,
    "ttft_slo_s": 0.1,
    "tpot_slo_s": 0.05,
    "burst_factor": 3.0,
    "burst_users": 60,
}


def slowed(settings: dict[str, Any], time_scale: float) -> dict[str, Any]:
    """``settings`` for a simulator slowed ``time_scale`` times: its clock and every duration."""
    durations = {k: v * time_scale for k, v in settings.items() if k in DURATIONS}
    return {**settings, **durations, "time_scale": time_scale}


@contextlib.contextmanager
def simulators_recorded() -> Iterator[list[ServerStats]]:
    """While the block runs, every simulator started in this process with ``serve`` (as the labs
    start theirs) keeps its :class:`ServerStats` here once it stops: its own account of how late
    it ran against the wall clock."""
    recorded: list[ServerStats] = []
    real = hosting.serve

    @contextlib.contextmanager
    def recording(*args: Any, **kwargs: Any) -> Iterator[Any]:
        with real(*args, **kwargs) as target:
            try:
                yield target
            finally:
                if target.simulator is not None and target.simulator.server is not None:
                    recorded.append(target.simulator.server.stats)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(hosting, "serve", recording)
        mp.setattr(infphys.sim, "serve", recording)
        yield recorded


def stalled(recorded: list[ServerStats]) -> str | None:
    """The simulators that stalled (None: none): a step more than ``rebase_lag_s`` (250 ms, most
    of a service time even slowed 3×) late, so the simulator shifted its whole timeline and
    every request in flight waited that long for nothing the simulated GPU did."""
    stalls = [st for st in recorded if st.rebases]
    return (
        "; ".join(
            f"a simulator stalled {st.rebases}× ({st.stall_s_total:.2f} s, worst step "
            f"{1e3 * st.max_lag_s:.0f} ms late)"
            for st in stalls
        )
        or None
    )


def short_of_load(summary: Any, slots: int) -> str | None:
    """Where a closed loop kept under ``DELIVERED_SHARE`` of its clients' requests in flight
    while the server had a slot for each (None: nowhere), from the lab's own summary."""
    below = summary[summary["concurrency"] <= slots]
    short = below[below["mean_in_flight"] < DELIVERED_SHARE * below["concurrency"]]
    return (
        "; ".join(
            f"{int(r.concurrency)} clients kept {r.mean_in_flight:.2f} in flight"
            for r in short.itertuples()
        )
        or None
    )


def slowed_lab_fixture(lab: int, label: str, settings: dict[str, Any], summary: str) -> Any:
    """A module-scoped fixture named ``labNN``: the lab run at ``TIME_SCALE``, and once more
    twice as slow if its closed loop (``summary``) fell short of the load it asked for or one
    of its simulators stalled. The definitions get ``too_busy``: why the slower run still fell
    short, else None."""

    def attempt(name: str, time_scale: float) -> tuple[dict[str, Any], str | None]:
        with simulators_recorded() as recorded:
            defs = run_lab(lab, name, slowed(settings, time_scale))
        short = short_of_load(defs[summary], settings["max_num_seqs"])
        return defs, "; ".join(w for w in (short, stalled(recorded)) if w) or None

    @pytest.fixture(scope="module", name=f"lab{lab:02d}")
    def ran() -> dict[str, Any]:
        defs, why = attempt(label, TIME_SCALE)
        if why is not None:
            defs, why = attempt(f"{label}, again ×{2 * TIME_SCALE:g} ({why})", 2 * TIME_SCALE)
        return {**defs, "too_busy": why}

    return ran


def require_the_load_delivered(defs: dict[str, Any]) -> None:
    """Skip a test of what the server did when the computer could not deliver the load even
    slowed down (its figures then describe the computer); the lab must have said so."""
    if defs["too_busy"] is not None:
        assert defs["measurement_notes"], "the lab did not tell the learner its client was late"
        pytest.skip(f"too busy to drive the load at ×{defs['time_scale']:g}: {defs['too_busy']}")
