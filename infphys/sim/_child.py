"""Entry point of a simulated server in a child process (``serve(process=True)``).

Reads one JSON argument (``{"config": EngineConfig.to_dict(), "server": {...}, "host", "port"}``),
serves until SIGINT, and prints ``port <n>`` on stdout once listening.
"""

from __future__ import annotations

import json
import sys

from infphys.sim.config import EngineConfig
from infphys.sim.hosting import run_server
from infphys.sim.server import SimServer


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m infphys.sim._child '<json spec>'")
    spec = json.loads(args[0])
    server = SimServer(EngineConfig.from_dict(spec["config"]), **spec["server"])
    run_server(
        server,
        spec["host"],
        int(spec["port"]),
        on_ready=lambda port: print(f"port {port}", flush=True),
    )


if __name__ == "__main__":
    main()
