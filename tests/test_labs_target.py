"""Labs measure ``NIM_BASE_URL`` when something answers there, and say what they measured.

Lab 8 is run headless (``app.run(defs=…)``, small settings) against servers started here on
loopback: an infphys simulator (which publishes its engine on ``/v1/models``), the stub (a
"real" server that publishes nothing), and, with nothing at ``NIM_BASE_URL``, its own fallback
simulator, whose lag warnings must reach the lab once, in words, and not the log.
"""

from __future__ import annotations

import importlib.util
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infphys.exercises.ui import run_notes
from infphys.measure.stub import StubConfig, StubServer
from infphys.resolve import SIM_FALLBACK_ENV
from infphys.sim._replica import Replica
from infphys.sim.hosting import serve
from infphys.sim.server import SimServer

LAB08_FILE = Path(__file__).resolve().parents[1] / "labs" / "08_concurrency_sweep.py"

# Small settings. Closed loop: levels 1, 2, 4 with max(2 × c, 8) requests each = 8 + 8 + 8;
# open loop: one rate of 20 requests. 44 chat requests in all, no warm-up.
SMALL = {
    "gpu": "a100-80gb-sxm",
    "model": "llama-3.1-8b",
    "max_num_seqs": 4,
    "concurrency_levels": [1, 2, 4],
    "rounds_per_level": 2,
    "rate_fractions": [0.5],
    "open_requests": 20,
    "prompt_tokens": 16,
    "max_tokens": 4,
    "seed": 0,
}
REQUESTS = 8 + 8 + 8 + 20


def _run_lab08(settings: dict[str, Any]) -> dict[str, Any]:
    spec = importlib.util.spec_from_file_location("infphys_lab_08_target", LAB08_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    _, defs = module.app.run(defs=settings)
    return dict(defs)


@pytest.fixture(autouse=True)
def _answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFPHYS_ANSWERS_DIR", str(tmp_path))
    monkeypatch.delenv("NIM_CHAT_PATH", raising=False)
    monkeypatch.delenv("NIM_API_KEY", raising=False)
    monkeypatch.delenv(SIM_FALLBACK_ENV, raising=False)


@pytest.fixture
def nothing_there(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("NIM_BASE_URL", f"http://127.0.0.1:{port}")
    yield


@pytest.mark.slow
def test_lab08_measures_the_simulator_at_nim_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    # A server started separately: an H100 with a batch limit of 2 (the lab's fallback would
    # be an A100 with 4), under a model name of its own.
    with serve(
        "h100-sxm", "llama-3.1-8b", served_model_name="test/lab8-target", max_num_seqs=2
    ) as sim:
        monkeypatch.setenv("NIM_BASE_URL", sim.base_url)
        monkeypatch.setenv("NIM_GEN_MODEL", sim.model)
        defs = _run_lab08(SMALL)
        assert sim.simulator.server is not None
        served = sim.simulator.server.stats.requests_total
    assert served == REQUESTS  # every request of both sweeps went to this server
    assert not defs["fallback"]
    assert sim.base_url in defs["server_note"] and "H100" in defs["server_note"]
    # M/M/c uses the batch limit the target publishes on /v1/models, not the fallback's.
    assert defs["queue_servers"] == 2
    assert "batch limit" in defs["queue_servers_source"]


@pytest.mark.slow
def test_lab08_against_a_server_that_publishes_nothing_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The stub answers every request at once: no batching, so no knee within 1, 2, 4.
    with StubServer(StubConfig(model="test/real", tokens=4)) as stub:
        monkeypatch.setenv("NIM_BASE_URL", stub.base_url)
        monkeypatch.setenv("NIM_GEN_MODEL", "test/real")
        defs = _run_lab08(SMALL)
        served = stub.requests_total
    assert served == REQUESTS
    assert defs["published"] is None and not defs["fallback"]
    assert stub.base_url in defs["server_note"] and "test/real" in defs["server_note"]
    assert "does not publish" in defs["queue_servers_source"]


@pytest.mark.slow
def test_lab08_fallback_shows_lag_once_and_logs_nothing(
    nothing_there: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Make every step of the fallback simulator 60 ms late (a laptop far too busy): the server
    # would log "falling behind the wall clock" every 5 s and "did not keep up" at the end.
    account = Replica.account

    def late(self: Replica, lag: float, now: float, step_wall_s: float) -> None:
        account(self, lag + 0.060, now, step_wall_s)

    monkeypatch.setattr(Replica, "account", late)
    caplog.set_level(logging.WARNING, logger="infphys")
    defs = _run_lab08(SMALL)
    assert defs["fallback"] and "nothing answers" in defs["server_note"]
    assert "max_num_seqs = 4" in defs["server_note"]
    assert [r.getMessage() for r in caplog.records if r.name.startswith("infphys")] == []
    notes = defs["measurement_notes"]
    # One lag sentence for both runs (the first run's): at least the 60 ms added.
    lag_notes = [n for n in notes if "ran the simulator" in n]
    assert len(lag_notes) == 1
    worst_ms = float(lag_notes[0].split("up to ")[1].split(" ms")[0])
    assert worst_ms >= 60
    assert defs["queue_servers"] == 4


def test_server_counts_lag_and_logs_only_when_asked(caplog: pytest.LogCaptureFixture) -> None:
    from infphys.sim.config import EngineConfig

    cfg = EngineConfig.build("a100-80gb-sxm", "llama-3.1-8b")
    caplog.set_level(logging.WARNING, logger="infphys.sim")
    quiet, loud = SimServer(cfg, log_lag=False), SimServer(cfg)
    for server in (quiet, loud):
        # 60 steps of 10 ms, every one 38.4 ms late (tolerance: max(2 ms, 1 ms) = 2 ms).
        for k in range(60):
            server.replicas[0].account(0.0384, float(k), 0.010)
    # Worked by hand: 60 of 60 steps late, the worst 38.4 ms -> "up to 38 ms late (100%)".
    assert quiet.stats.max_lag_s == pytest.approx(0.0384)
    assert quiet.stats.lag_note() == (
        "Your computer ran the simulator up to 38 ms late (100% of its steps); the figures "
        "include that lag."
    )
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) >= 1 and all("falling behind" in m for m in messages)
    assert SimServer(cfg).stats.lag_note() is None  # no steps: nothing to say


def test_run_notes_by_hand() -> None:
    lag = "Your computer ran the simulator up to 38 ms late (100% of its steps); ..."
    level_note = "level {} (c=8): the client may be the bottleneck — ..."
    assert run_notes([None, None], []) == []
    assert run_notes([lag, lag], []) == [lag]
    notes = run_notes([None], [level_note.format(0), level_note.format(2), level_note.format(2)])
    assert notes == [
        "At 2 of the load levels your computer could not send and read the requests on time; "
        "the figures there describe your computer as much as the server."
    ]


@pytest.mark.slow
def test_lab08_treats_the_launchers_fallback_simulator_as_a_fallback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `infphys labs` found nothing, started the default simulator and said so (SIM_FALLBACK_ENV):
    # Lab 8 then runs its own small fallback, whose knee lies inside the sweep.
    with serve("h200-sxm", "llama-3.1-8b", served_model_name="test/launcher") as sim:
        monkeypatch.setenv("NIM_BASE_URL", sim.base_url)
        monkeypatch.setenv("NIM_GEN_MODEL", sim.model)
        monkeypatch.setenv(SIM_FALLBACK_ENV, "1")
        defs = _run_lab08(SMALL)
        assert sim.simulator.server is not None
        served = sim.simulator.server.stats.requests_total
    assert served == 0
    assert defs["fallback"] and "`infphys labs` started" in defs["server_note"]
    assert defs["queue_servers"] == 4
