"""Run marimo labs and save each as a static page, all in one process: the site's lab snapshots.

``python docs/hooks/labs_export.py --jobs 4 --timeout 300 LAB.py ...`` does for each lab what
``marimo export html --no-include-code LAB.py -o LAB.html`` does (the page lands beside the lab),
at most ``--jobs`` labs at once, each within ``--timeout`` seconds, and writes one JSON line to
its standard output as each lab ends::

    {"lab": "03_kv_cache.py", "html": "03_kv_cache.html", "seconds": 4.2,
     "output": "what the cells printed and the errors they raised", "failed": false, "error": null}

``failed`` is marimo's "some cells raised"; ``error`` says why there is no page (a timeout, an
exception of marimo's). It exits 0 once every lab has its line. ``labs_runner.py`` drives it.

Why one process: each ``marimo export html`` imports marimo's command line, and the kernel it
starts for the lab (a freshly spawned interpreter) imports marimo, infphys, pandas and plotly
again: about 1.5 CPU-s a lab before its first cell runs. Here every kernel is forked from one
multiprocessing forkserver that imported those modules once (:data:`PRELOAD`). The 13 labs on
two cores: 22 CPU-s this way, 39 CPU-s with a ``marimo export`` each; the pages are the same
(but for the random ids marimo gives widgets on every run).

Assumptions: the marimo the project pins (0.25.2), which starts an edit-mode kernel with
``multiprocessing.get_context("spawn")`` looked up in ``marimo._session.managers.kernel``; this
program gives that module the forkserver context instead (were the name gone, kernels would be
spawned as ``marimo export`` spawns them: slower, the same pages). A lab that times out or whose
export raises has its kernel killed there and then (marimo leaves it running when an export is
cancelled or fails; with spawned kernels it runs on until this program ends). The kernels share
this process's working folder and environment: the runner gives each build a folder of its own.
SIGTERM, SIGINT or SIGHUP stop every kernel and end the program (exit 128 + the signal).
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import io
import json
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

#: Imported once by the forkserver that forks marimo's kernels: what every lab imports.
PRELOAD = (
    "marimo._runtime.runtime",
    "pandas",
    "plotly.graph_objects",
    "infphys",
    "infphys.exercises.labsetup",
    "infphys.exercises.ui",
    "infphys.measure",
    "infphys.plots",
    "infphys.sim",
)

Report = Callable[[dict[str, Any]], None]

#: The kernel processes started for the lab whose export this asyncio task runs.
_KERNELS: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar(
    "labs_export_kernels", default=None
)


class _NotingContext:
    """A multiprocessing context whose ``Process`` also notes each process it makes in the
    running task's :data:`_KERNELS`, so that a lab that times out can have its kernel stopped
    (marimo does not close the session of an export that is cancelled)."""

    def __init__(self, context: Any) -> None:
        self._context = context

    def Process(self, *args: Any, **kwargs: Any) -> Any:  # multiprocessing's name for it
        process = self._context.Process(*args, **kwargs)
        kernels = _KERNELS.get()
        if kernels is not None:
            kernels.append(process)
        return process


def use_forkserver(preload: Sequence[str]) -> bool:
    """Make marimo fork its kernels from a forkserver that imported ``preload``; False (and
    nothing changed) when this marimo does not look its context up where this expects."""
    import marimo._session.managers.kernel as kernel_manager

    if not callable(getattr(kernel_manager, "get_context", None)):
        return False
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(preload))
    noting = _NotingContext(context)
    kernel_manager.get_context = lambda method=None: noting  # type: ignore[attr-defined,assignment]
    return True


async def _stop(kernels: Sequence[Any]) -> None:
    """Kill those of ``kernels`` still alive and wait (off the event loop, 10 s at most each)
    until each has ended; one never started (no pid) is passed over."""
    started = [kernel for kernel in kernels if kernel.pid is not None]
    for kernel in started:
        if kernel.is_alive():  # one that marimo ended before it raised is left alone
            kernel.kill()
    for kernel in started:
        await asyncio.to_thread(kernel.join, 10)


def _stop_kernels(signum: int, frame: FrameType | None) -> None:
    """Kill every kernel this process started, then end it at once."""
    for child in multiprocessing.active_children():
        child.kill()
    os._exit(128 + signum)


async def export_lab(lab: Path, timeout_s: float) -> dict[str, Any]:
    """Run ``lab`` to completion and write its page beside it; its report line."""
    from marimo._cli.parse_args import parse_args
    from marimo._export.file import export_html
    from marimo._export.requests import HTMLFileExportRequest, NotebookExecutionOptions
    from marimo._schemas.export_options import HTMLExportOptions
    from marimo._utils.marimo_path import MarimoPath

    page = lab.with_suffix(".html")
    output = io.StringIO()
    row: dict[str, Any] = {"lab": lab.name, "html": page.name, "failed": False, "error": None}
    request = HTMLFileExportRequest(
        path=MarimoPath(str(lab)),
        options=HTMLExportOptions(files=(), include_code=False),
        execution=NotebookExecutionOptions(
            cli_args=parse_args(()), argv=[], persist_session=False, stderr=output
        ),
    )
    kernels: list[Any] = []
    _KERNELS.set(kernels)  # this task's: each lab is exported in a task of its own
    t0 = time.perf_counter()
    try:
        result = await asyncio.wait_for(export_html(request), timeout_s)
    except TimeoutError:
        row["error"] = f"took more than {timeout_s:.0f} s"
    except Exception as exc:  # reported: the runner fails the build with it
        row["error"] = f"{type(exc).__name__}: {exc}"
    else:
        page.write_bytes(result.bytez)
        row["failed"] = bool(result.did_error)
    if row["error"] is not None:  # marimo closed no session: its kernel is still running
        await _stop(kernels)  # not left beside the labs still to come
    row["seconds"] = round(time.perf_counter() - t0, 2)
    row["output"] = output.getvalue()
    return row


async def export_all(labs: Sequence[Path], jobs: int, timeout_s: float, report: Report) -> None:
    """Export ``labs``, ``jobs`` at a time, in the order given; ``report`` each as it ends."""
    slots = asyncio.Semaphore(jobs)

    async def one(lab: Path) -> None:
        async with slots:
            report(await export_lab(lab, timeout_s))

    await asyncio.gather(*(one(lab) for lab in labs))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("labs", nargs="+", type=Path, help="marimo notebooks (.py)")
    # No defaults: labs_runner.py decides both (JOB_TIMEOUT_S, and the CPUs + 2).
    parser.add_argument("--jobs", type=int, required=True, help="labs run at once")
    parser.add_argument("--timeout", type=float, required=True, help="seconds one lab may take")
    parser.add_argument(
        "--preload", default=",".join(PRELOAD), help="modules the kernels' forkserver imports"
    )
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    if not args.timeout > 0:
        parser.error(f"--timeout must be above 0 seconds, got {args.timeout}")
    missing = [str(lab) for lab in args.labs if not lab.is_file()]
    if missing:
        parser.error(f"no such lab: {', '.join(missing)}")
    # The reports get a descriptor of their own; what the kernels and the forkserver print
    # goes to standard error, so no child holds the report pipe open after this process ends.
    reports = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _stop_kernels)
    if not use_forkserver([name for name in args.preload.split(",") if name]):
        print("labs_export: this marimo spawns each kernel (slower)", file=sys.stderr)

    def report(row: dict[str, Any]) -> None:
        reports.write(json.dumps(row) + "\n")

    labs = [lab.resolve() for lab in args.labs]
    try:
        asyncio.run(export_all(labs, args.jobs, args.timeout, report))
    finally:
        for child in multiprocessing.active_children():  # any kernel still running
            child.kill()
        reports.close()
    return 0


if __name__ == "__main__":  # the forkserver's children import this file as __mp_main__
    sys.exit(main())
