"""Benchmark: the speed budgets the test suite does not assert (a busy machine would fail them).

Each line prints the figure beside its target; nothing fails. Targets:

1. A run bounded by ``duration_s=0.2, drain_s=0.2`` against a server that answers after 3 s
   returns within 1.5 s (``run_closed_loop``); an open loop of 0.2 s + 1 s drain within 2 s.
2. ``infphys preflight`` with nothing at ``NIM_BASE_URL`` falls back to the embedded simulator
   and finishes within 60 s.
3. Each lab runs top to bottom headless (``app.run()``, its default settings, against the
   embedded simulator) within 60 s on a 2-core machine (the course's budget). ``--labs 3 7``
   picks labs; ``--no-labs`` skips them (about 5 minutes for all eleven).
4. With ``--site``: ``mkdocs build --strict`` within 120 s (its lab snapshots come from the
   cache in ``~/.cache/infphys/site`` when one is there; ``INFPHYS_SITE_CACHE`` moves it).

Run: ``python benchmarks/bench_budgets.py`` from the repository root.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from infphys.measure import StubConfig, StubServer, open_loop, run_closed_loop  # noqa: E402


def line(what: str, seconds: float, target_s: float) -> None:
    verdict = "ok" if seconds <= target_s else "OVER"
    print(f"{what:<58} {seconds:7.2f} s   target ≤ {target_s:g} s   {verdict}", flush=True)


def dead_url() -> str:
    """A loopback URL nothing listens on (the labs and the CLI fall back to the simulator)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


async def load_bounds() -> None:
    async with StubServer(StubConfig(delay_s=3.0)) as server:
        t0 = time.perf_counter()
        await run_closed_loop(
            server.target(), concurrency=2, requests=50, duration_s=0.2, drain_s=0.2
        )
        line(
            "run_closed_loop, duration 0.2 s + drain 0.2 s, 3 s server",
            time.perf_counter() - t0,
            1.5,
        )
    async with StubServer(StubConfig(tokens=1)) as server:
        t0 = time.perf_counter()
        await open_loop(
            server.target(), rate_per_s=100, requests=10_000, duration_s=0.2, drain_s=1.0
        )
        line("open_loop, 100 req/s, duration 0.2 s + drain 1 s", time.perf_counter() - t0, 2.0)


def preflight_fallback() -> None:
    env = {**os.environ, "NIM_BASE_URL": dead_url()}
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "infphys", "preflight"], env=env, capture_output=True, text=True
    )
    took = time.perf_counter() - t0
    fell_back = "using the embedded simulator" in done.stdout + done.stderr
    note = "" if done.returncode == 0 and fell_back else f" (exit {done.returncode}, no fallback?)"
    line("infphys preflight, falling back to the simulator" + note, took, 60.0)


def lab_runs(numbers: list[int]) -> None:
    os.environ["NIM_BASE_URL"] = dead_url()
    answers = tempfile.mkdtemp(prefix="infphys-bench-answers-")
    os.environ["INFPHYS_ANSWERS_DIR"] = answers
    for path in sorted((ROOT / "labs").glob("[0-9][0-9]_*.py")):
        if numbers and int(path.name[:2]) not in numbers:
            continue
        spec = importlib.util.spec_from_file_location(f"bench_lab_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        t0 = time.perf_counter()
        _, defs = module.app.run()
        took = time.perf_counter() - t0
        resolved = defs.get("resolved")
        if resolved is not None and hasattr(resolved, "close"):
            resolved.close()
        line(f"lab {path.stem}, headless, default settings", took, 60.0)


def site_build() -> None:
    with tempfile.TemporaryDirectory(prefix="infphys-bench-site-") as tmp:
        env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
        t0 = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", tmp],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        took = time.perf_counter() - t0
        note = "" if done.returncode == 0 else f" (FAILED, exit {done.returncode})"
        line("mkdocs build --strict" + note, took, 120.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--labs", type=int, nargs="*", default=[], help="lab numbers (default: all)")
    ap.add_argument("--no-labs", action="store_true", help="skip the lab runs")
    ap.add_argument("--site", action="store_true", help="also time the site build")
    args = ap.parse_args()
    print(f"on {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (1 min)")
    asyncio.run(load_bounds())
    preflight_fallback()
    if not args.no_labs:
        lab_runs(args.labs)
    if args.site:
        site_build()


if __name__ == "__main__":
    main()
