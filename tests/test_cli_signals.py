"""``infphys sim`` and ``infphys labs`` leave nothing behind on SIGINT, SIGTERM or SIGHUP.

Each command runs as a real subprocess (its own session, so the test can clean up after it
whatever happens) on a free 127.0.0.1 port; the six (two commands, three signals) are started
together when the module starts, so that their start-ups overlap. Once its port answers, a
test records every descendant process from /proc, sends one stop signal to the command's own
pid only (the hard case: a child in another process group does not get it from the terminal),
and checks that the command exits 0 (a clean stop), that none of the recorded descendants is
still alive, and that the port can be bound again. ``infphys labs`` runs ``--headless`` with a
fresh working folder, against the embedded simulator (nothing listens on the discard port).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from loopback import free_port
from procs import alive, descendants

REPO_LABS = Path(__file__).resolve().parents[1] / "labs"

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 120.0
EXIT_TIMEOUT_S = 30.0

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc"),
]


def _port_answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@contextlib.contextmanager
def _started(cmd: list[str], cwd: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path, set[int]]]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env["NIM_BASE_URL"] = "http://127.0.0.1:9"  # nothing answers: the labs start the simulator
    env.pop("INFPHYS_ANSWERS_DIR", None)
    log = cwd / "output.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    seen: set[int] = set()
    try:
        yield proc, log, seen
    finally:  # whatever happened, nothing this test started survives it
        seen |= descendants(proc.pid) if proc.poll() is None else set()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in seen:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)


def _wait_listening(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _port_answers(port):
        if proc.poll() is not None:
            pytest.fail(f"exited early ({proc.returncode}):\n{log.read_text(errors='replace')}")
        if time.monotonic() > deadline:
            pytest.fail(f"port {port} never answered:\n{log.read_text(errors='replace')}")
        time.sleep(0.2)


SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
COMMANDS = ["sim", "labs"]


@dataclass
class Started:
    """One command running for one test: its process, port, folder, log and the descendants
    recorded so far (every one is killed when the module's tests are done)."""

    proc: subprocess.Popen[bytes]
    port: int
    folder: Path
    log: Path
    seen: set[int]


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[tuple[str, int], Started]]:
    """Every command of every test, all started at once: each spends seconds importing
    (marimo, for ``infphys labs``) before its port answers, and those seconds overlap. Each
    test then waits for its own command's port and signals it."""
    runs: dict[tuple[str, int], Started] = {}
    with contextlib.ExitStack() as stack:
        for command in COMMANDS:
            for sig in SIGNALS:
                folder = tmp_path_factory.mktemp(f"{command}-{signal.Signals(sig).name}")
                port = free_port()
                cmd = [sys.executable, "-m", "infphys", command, "--port", str(port)]
                if command == "labs":
                    cmd += ["--headless", "--dir", str(folder / "my-labs")]
                proc, log, seen = stack.enter_context(_started(cmd, folder))
                runs[command, sig] = Started(proc, port, folder, log, seen)
        yield runs


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: signal.Signals(s).name)
@pytest.mark.parametrize("command", COMMANDS)
def test_stop_signal_ends_the_command_and_all_it_started(
    command: str, sig: int, started: dict[tuple[str, int], Started]
) -> None:
    run = started[command, sig]
    proc, port, log, seen = run.proc, run.port, run.log, run.seen
    _wait_listening(proc, port, log)
    children = descendants(proc.pid)
    seen |= children
    if command == "labs":
        assert children, "infphys labs should run marimo as a child process"
    sim_ports = [int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", log.read_text())]
    os.kill(proc.pid, sig)
    try:
        code = proc.wait(timeout=EXIT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {EXIT_TIMEOUT_S} s after {signal.Signals(sig).name}")
    output = log.read_text(errors="replace")
    assert code == 0, output  # a clean stop, as asked
    deadline = time.monotonic() + 10
    while any(alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = [p for p in children if alive(p)]
    assert not survivors, f"children survived {signal.Signals(sig).name}: {survivors}"
    for p in {port, *sim_ports} - {9}:
        assert _port_free(p), f"port {p} still taken after {signal.Signals(sig).name}"
    if command == "labs":
        shipped = len(list(REPO_LABS.glob("[0-9][0-9]_*.py")))
        assert len(list((run.folder / "my-labs").glob("[0-9][0-9]_*.py"))) == shipped
