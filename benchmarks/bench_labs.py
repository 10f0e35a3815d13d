"""Benchmark: seconds from opening a lab in the browser to its first output, for every lab.

Run: ``python benchmarks/bench_labs.py`` (about 3 minutes on a 2-core machine); ``--labs 1,3,8``
for some labs, ``--run`` for ``marimo run`` instead of the editor, ``--chart`` to also wait for
each lab's first drawn plotly chart.

For each lab, ``infphys labs --headless`` is started afresh on the same loopback port (so no
lab's kernel still computes while the next is timed, and the browser's cache of marimo's
frontend carries over, as for a learner going through the course), the lab is opened in Debian's
chromium through Playwright, and the script records the seconds from the start of the navigation
to: the page's ``load`` event, the first rendered cell output, and (``--chart``) the first drawn
plotly chart. The target is the embedded simulator (``NIM_BASE_URL`` points where nothing
answers) unless ``--use-env``. Requests leaving 127.0.0.1 fail and are counted.

Target: first output within 10 s of opening the page. Each lab has ``--lab-timeout-s`` (60 s)
and the whole run ``--budget-s`` (600 s); everything started is stopped on exit, Ctrl-C or
SIGTERM. Example output::

    lab                         load s   first output s   target s   chart s   offsite
    01_preflight.py                1.9              4.8         10       6.0         0
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from labs_browser import (
    LABS_DIR,
    LabsServer,
    LabTiming,
    browser_context,
    free_port,
    start_lab,
    wait_lab,
)

TARGET_S = 10.0


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--labs", default="", help="comma-separated lab numbers (default: all)")
    ap.add_argument("--run", action="store_true", help="marimo run instead of marimo edit")
    ap.add_argument("--chart", action="store_true", help="also wait for the first chart")
    ap.add_argument("--use-env", action="store_true", help="measure NIM_BASE_URL if it answers")
    ap.add_argument("--lab-timeout-s", type=float, default=60.0)
    ap.add_argument("--budget-s", type=float, default=600.0)
    args = ap.parse_args()

    wanted = {int(n) for n in args.labs.split(",") if n.strip()}
    labs = [
        p.name
        for p in sorted(LABS_DIR.glob("[0-9][0-9]_*.py"))
        if not wanted or int(p.name[:2]) in wanted
    ]
    env = (
        {}
        if not args.use_env
        else {"NIM_BASE_URL": __import__("os").environ.get("NIM_BASE_URL", "http://localhost:8000")}
    )
    port = free_port()
    deadline = time.monotonic() + args.budget_s
    rows: list[tuple[LabTiming, int]] = []
    mode = "run" if args.run else "edit"
    print(
        f"marimo {mode}, {len(labs)} labs, target: first output within {TARGET_S:g} s", flush=True
    )
    with browser_context() as (context, offsite):
        for lab in labs:
            if time.monotonic() > deadline:
                print(f"budget of {args.budget_s:g} s spent; stopping before {lab}")
                break
            before = len(offsite)
            with LabsServer(run=args.run, port=port, env=env) as server:
                page = start_lab(context, server, lab, timeout_s=args.lab_timeout_s)
                timing = wait_lab(
                    page, server, lab, timeout_s=args.lab_timeout_s, want_chart=args.chart
                )
                page.close()
            rows.append((timing, len(offsite) - before))
            print(f"  {lab}: first output {_fmt(timing.first_output_s)} s", flush=True)

    print()
    print(
        f"{'lab':<28}{'load s':>8}{'first output s':>17}{'target s':>10}{'chart s':>10}"
        f"{'offsite':>9}"
    )
    slow = 0
    for timing, n_off in rows:
        ok = timing.first_output_s is not None and timing.first_output_s <= TARGET_S
        slow += not ok
        print(
            f"{timing.lab:<28}{_fmt(timing.loaded_s):>8}{_fmt(timing.first_output_s):>17}"
            f"{TARGET_S:>10g}{_fmt(timing.first_chart_s):>10}{n_off:>9}"
            + ("" if ok else "   over target")
        )
    if offsite:
        print("\nrequests that left 127.0.0.1 (each failed):")
        for url in sorted(set(offsite)):
            print("  ", url)
    print(f"\n{len(rows) - slow}/{len(rows)} labs showed their first output within {TARGET_S:g} s")
    return 0 if slow == 0 and not offsite else 1


if __name__ == "__main__":
    raise SystemExit(main())
