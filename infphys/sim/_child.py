"""Entry point of a simulated server in a child process (``serve(process=True)``).

Reads one JSON line on standard input (``{"config": EngineConfig.to_dict(), "server": {...},
"host", "port"}``; the API key travels there, not on the command line that ``ps`` shows),
serves until SIGINT, and prints ``port <n>`` on stdout once listening.
"""

from __future__ import annotations

import json
import signal
import sys

from infphys.sim.config import EngineConfig
from infphys.sim.hosting import run_server
from infphys.sim.server import SimServer


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args:
        raise SystemExit("usage: python -m infphys.sim._child < spec.json (one JSON line)")
    # The parent stops this server with SIGINT (``_closing.end_process``). Started from a
    # background job of a shell script (or ``nohup … &``) a process inherits SIGINT ignored, and
    # Python then leaves it ignored: the server would run on until the parent's SIGKILL.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    spec = json.loads(sys.stdin.readline())
    server = SimServer(EngineConfig.from_dict(spec["config"]), **spec["server"])
    run_server(
        server,
        spec["host"],
        int(spec["port"]),
        on_ready=lambda port: print(f"port {port}", flush=True),
    )


if __name__ == "__main__":
    main()
