"""The simulated server in tests: the engine the server tests serve, the streaming request they
send it, and ``infphys sim`` as a learner starts it (a real subprocess on a free port, stopped
with Ctrl-C).

Example::

    with infphys_sim("--time-scale", "2") as sim:
        sim.url                     # 'http://127.0.0.1:41234' (from the line it prints first)
    sim.proc.returncode, sim.out    # 0 (or 130), everything it printed, 'stopped: ...' included
    with serve(config=small()) as t:
        await session.post(t.chat_url, json=stream_body(60))  # 60 tokens whatever it says
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
from typing import Any

from infphys.sim import EngineConfig

#: The name the simulated server answers to (NIM's for Llama-3.1-8B).
MODEL = "meta/llama-3.1-8b-instruct"


def small() -> EngineConfig:
    """Llama-3.1-8B on an H200 with a 4,096-token context: the server tests' engine."""
    return EngineConfig.build("h200", "llama-3.1-8b", max_model_len=4096)


def stream_body(max_tokens: int) -> dict[str, Any]:
    """A streamed chat request for "hi" that runs to ``max_tokens`` (``ignore_eos``)."""
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": max_tokens,
        "ignore_eos": True,
        "stream": True,
    }


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
