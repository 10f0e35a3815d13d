"""GPU check: every GPU probe of infphys in one run, one JSON file and a short printed table.

Runs, in order, each part guarded so that a failing part is recorded and the rest goes on:

1. the engine check (NVML: GPUs, driver, CUDA version, catalog match);
2. the watcher, in the background for the whole run (memory, utilisation, power, temperature);
3. copy bandwidth (device-to-device on CUDA; host memory otherwise), as a fraction of the
   catalog's datasheet bandwidth;
4. the roofline experiment (Llama-3.1-8B shapes, BF16 and FP8 where supported, batch 1…512, 128
   cached tokens on a GPU; a scaled-down stack on a CPU), measured against the roofline's
   prediction at efficiency 1 and at the kit's defaults.

On an H200 with torch CUDA the whole run took 7 s (15 s with ``--contexts 128,2048``); it stays
under 5 minutes by construction (each part has a time budget within ``--budget-s``). On a
machine without CUDA it runs the CPU paths in seconds and says so.

    python benchmarks/gpu_check.py --out gpu_check.json
    python benchmarks/gpu_check.py --layers 8 --contexts 128,2048   # fewer layers, two contexts

Needs numpy, pandas and torch (CUDA build on a GPU machine); nvidia-ml-py for the NVML parts
(without it they report why and the rest runs).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import platform
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

try:
    import infphys
except ImportError:  # run from a checkout where infphys is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import infphys

from infphys.measure.gpu import (
    GPUWatcher,
    copy_bandwidth,
    engine_check,
    frame_to_dict,
    jsonable,
    roofline_experiment,
)

DEFAULT_BUDGET_S = 270.0
COPY_BUDGET_S = 40.0
#: ``--quick``: a smoke run of every part (what the test suite runs on a CPU).
QUICK_SIZES_BYTES = (2**20, 8 * 2**20)
QUICK_BATCH_SIZES = (1, 8)
#: Seconds kept back at the end for freeing memory, the watcher and writing the JSON.
MARGIN_S = 20.0


def _guarded(
    name: str, fn: Callable[[], Any], results: dict[str, Any], errors: dict[str, str]
) -> Any:
    t0 = time.perf_counter()
    try:
        value = fn()
    except Exception:
        errors[name] = traceback.format_exc()
        print(f"[{name}] FAILED after {time.perf_counter() - t0:.1f} s (recorded; going on)")
        print(errors[name].rstrip().splitlines()[-1])
        return None
    results.setdefault("seconds", {})[name] = round(time.perf_counter() - t0, 2)
    return value


def _cuda() -> tuple[bool, str]:
    try:
        import torch
    except ImportError:
        return False, "torch not installed"
    if torch.cuda.is_available():
        return True, f"torch {torch.__version__}, CUDA {torch.version.cuda}"
    return False, f"torch {torch.__version__}: CUDA not available"


def _table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]
    print(f"\n{title}")
    print("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    for r in rows:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)))


def _pct(x: float | None) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x * 100:.0f}%"


def _watch_summary(frame: Any) -> list[dict[str, Any]]:
    out = []
    for gpu, g in frame.groupby("gpu", sort=True):
        out.append(
            {
                "gpu": int(gpu),
                "samples": len(g),
                "memory_used_max_bytes": float(g["memory_used_bytes"].max()),
                "gpu_util_mean_pct": float(g["gpu_util_pct"].mean()),
                "power_max_w": float(g["power_w"].max()),
                "temperature_max_c": float(g["temperature_c"].max()),
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="gpu_check.json", help="JSON file to write.")
    ap.add_argument("--budget-s", type=float, default=DEFAULT_BUDGET_S, help="Whole-run budget.")
    ap.add_argument("--layers", type=int, default=None, help="Layers to build (default all).")
    ap.add_argument("--contexts", default="128", help="Comma-separated cached tokens per sequence.")
    ap.add_argument("--model", default=None, help="Catalog model (default by device).")
    ap.add_argument("--interval-s", type=float, default=0.25, help="Watcher sampling interval.")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="Smoke run: two copy sizes, batches 1 and 8, 3 repeats.",
    )
    args = ap.parse_args(argv)

    t_start = time.perf_counter()
    deadline = t_start + args.budget_s
    on_cuda, torch_line = _cuda()
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "python": platform.python_version(),
        "infphys": infphys.__version__,
        "torch": torch_line,
        "cuda": on_cuda,
        "budget_s": args.budget_s,
    }
    errors: dict[str, str] = {}
    if not on_cuda:
        print(
            f"No CUDA GPU here ({torch_line}): running the CPU paths (host memory copy, "
            "scaled-down roofline stack); figures are for this CPU, not a GPU."
        )

    report = _guarded("engine", lambda: engine_check(), results, errors)
    if report is not None:
        results["engine"] = report.to_dict()
        print(report.verdict)

    watcher = GPUWatcher(interval_s=args.interval_s)
    _guarded("watch_start", watcher.start, results, errors)
    try:
        copy = _guarded(
            "copy",
            lambda: copy_bandwidth(
                QUICK_SIZES_BYTES if args.quick else None,
                repeats=3 if args.quick else 15,
                time_budget_s=max(1.0, min(COPY_BUDGET_S, deadline - time.perf_counter())),
            ),
            results,
            errors,
        )
        if copy is not None:
            results["copy"] = copy.to_dict()

        contexts = [int(c) for c in args.contexts.split(",") if c.strip()]
        results["roofline"] = []
        for k, ctx in enumerate(contexts):
            left = deadline - time.perf_counter() - MARGIN_S
            share = left / (len(contexts) - k)
            if share < 5:
                errors[f"roofline_{ctx}"] = f"skipped: only {left:.0f} s of the budget left"
                continue
            run = functools.partial(
                roofline_experiment,
                args.model,
                context_tokens=ctx,
                layers=args.layers if args.layers or not args.quick else (2 if on_cuda else None),
                batch_sizes=QUICK_BATCH_SIZES if args.quick else None,
                repeats=3 if args.quick else 10,
                time_budget_s=share,
            )
            frame = _guarded(f"roofline_{ctx}", run, results, errors)
            if frame is not None:
                results["roofline"].append(frame_to_dict(frame))
    finally:
        watch = _guarded("watch_stop", watcher.stop, results, errors)
        if watch is not None:
            results["watch"] = {"summary": _watch_summary(watch), **frame_to_dict(watch)}

    results["errors"] = errors
    results["total_s"] = round(time.perf_counter() - t_start, 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(jsonable(results), indent=1) + "\n", encoding="utf-8")

    # --- the short printed table -------------------------------------------------------------
    if "copy" in results:
        c = results["copy"]
        _table(
            f"Copy bandwidth: {c['label']}",
            ["size MiB", "GB/s read+written", "GB/s copied once", "of datasheet"],
            [
                [
                    f"{r['size_bytes'] / 2**20:,.0f}",
                    f"{r['bandwidth_read_plus_written_bytes_per_s'] / 1e9:,.1f}",
                    f"{r['bandwidth_copied_once_bytes_per_s'] / 1e9:,.1f}",
                    _pct(r["fraction_of_datasheet"]),
                ]
                for r in c["rows"]
            ],
        )
    for run in results.get("roofline", []):
        a = run["attrs"]
        _table(
            f"Roofline experiment: {a['model']}, {a['context_tokens']} cached tokens, priced "
            f"against {a['gpu_name']} ({a['gpu_source']}); error = measured / predicted - 1",
            [
                "prec",
                "batch",
                "measured ms",
                "eff.1 ms",
                "error",
                "default ms",
                "error",
                "bound",
                "graph",
            ],
            [
                [
                    r["precision"],
                    str(r["batch"]),
                    f"{r['step_s'] * 1e3:.3f}",
                    f"{r['predicted_peak_step_s'] * 1e3:.3f}",
                    f"{r['error_vs_peak'] * 100:+.0f}%",
                    f"{r['predicted_default_step_s'] * 1e3:.3f}",
                    f"{r['error_vs_default'] * 100:+.0f}%",
                    r["predicted_bound"],
                    "yes" if r["cuda_graph"] else "no",
                ]
                for r in run["rows"]
            ],
        )
        for p, why in a.get("skipped", {}).items():
            print(f"  {p} skipped: {why}")
        for note in a.get("notes", []):
            print(f"  note: {note}")
    for s in results.get("watch", {}).get("summary", []):
        print(
            f"\nGPU {s['gpu']} during the run: {s['samples']} samples, memory used max "
            f"{s['memory_used_max_bytes'] / 2**30:.1f} GiB, GPU util mean "
            f"{s['gpu_util_mean_pct']:.0f}%, power max {s['power_max_w']:.0f} W, "
            f"temperature max {s['temperature_max_c']:.0f} °C"
        )
    reason = results.get("watch", {}).get("attrs", {}).get("reason")
    if reason:
        print(f"\nwatcher: {reason}")
    print(
        f"\n{len(errors)} part(s) failed: {', '.join(errors) or 'none'}; "
        f"total {results['total_s']} s; wrote {out}"
    )
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
