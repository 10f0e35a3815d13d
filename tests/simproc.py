"""``infphys sim`` as a learner starts it: a real subprocess on a free port, stopped with Ctrl-C.

Example::

    with infphys_sim("--time-scale", "2") as sim:
        sim.url                     # 'http://127.0.0.1:41234' (from the line it prints first)
    sim.proc.returncode, sim.out    # 0 (or 130), everything it printed, 'stopped: ...' included
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass
class SimProcess:
    """The running command, the base URL it serves at, and (once stopped) all it printed."""

    proc: subprocess.Popen[str]
    url: str = ""
    out: str = ""


@contextlib.contextmanager
def infphys_sim(*args: str) -> Iterator[SimProcess]:
    """Run ``infphys sim --port 0 ARGS`` (200 columns wide) for the block; SIGINT it after."""
    exe = Path(sys.executable).parent / "infphys"
    proc = subprocess.Popen(
        [str(exe), "sim", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    sim = SimProcess(proc)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "infphys sim" in line, line
        sim.url = line.split(" at ")[1].split("/v1")[0]
        yield sim
    finally:
        proc.send_signal(signal.SIGINT)
        sim.out, _ = proc.communicate(timeout=20)
