"""GPU commands: ``engine-check``, ``gpu-watch``, ``copy-bw``, ``roofline-exp``.

Each prints a rich table, or with ``--json`` the same figures as JSON. None of them fails for a
missing GPU: ``engine-check`` and ``gpu-watch`` explain why no GPU is visible and exit 0;
``copy-bw`` and ``roofline-exp`` run on host memory / a scaled-down shape and say so. Bad input
prints one line and exits 2.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import typer

from infphys import fmt
from infphys.cli._app import command, console, parse_list, print_json
from infphys.cli._options import CachedTokensOpt, JSONOpt
from infphys.cli._tables import column_table

__all__ = [
    "copy_bw_cmd",
    "engine_check_cmd",
    "gpu_watch_cmd",
    "roofline_exp_cmd",
]

GiB = 2**30
MiB = 2**20


def _opt(value: float | None, render: Any) -> str:
    return "—" if value is None else str(render(value))


def _flops(flops_per_s: float) -> str:
    """TFLOP/s on a GPU, GFLOP/s below one TFLOP/s (a CPU)."""
    if flops_per_s >= 1e12:
        return fmt.tflops(flops_per_s)
    return f"{fmt.num(flops_per_s / 1e9)} GFLOP/s"


def _notes(lines: list[str] | tuple[str, ...]) -> None:
    for line in lines:
        console.print(f"[dim]note:[/] {line}", highlight=False, soft_wrap=True)


@command("engine-check")
def engine_check_cmd(as_json: JSONOpt = False) -> None:
    """Which NVIDIA GPUs this machine has (NVML), and what the catalog says of each."""
    from infphys.measure.gpu import engine_check

    report = engine_check()
    if as_json:
        print_json(report.to_dict())
        return
    style = "green" if report.ok else "yellow"
    console.print(f"[bold {style}]{report.verdict}[/]", highlight=False, soft_wrap=True)
    if report.driver_version or report.cuda_driver_version:
        console.print(
            f"driver {report.driver_version or '?'}, CUDA {report.cuda_driver_version or '?'}",
            highlight=False,
        )
    if report.torch:
        console.print(report.torch, highlight=False)
    if not report.ok:
        console.print(
            "The kit carries on without one: the labs use the embedded simulated server, "
            "`infphys copy-bw` measures host memory and `infphys roofline-exp` runs a "
            "scaled-down stack on the CPU.",
            highlight=False,
            soft_wrap=True,
        )
        return
    t = column_table(
        "GPUs (NVML; memory in GiB = 2^30 bytes)",
        (
            "GPU",
            "name",
            "memory total",
            "used",
            "free",
            "compute cap.",
            "power limit",
            "catalog",
            "datasheet bandwidth",
            "BF16 dense",
        ),
        text=("GPU", "name", "catalog"),
    )
    for g in report.gpus:
        c = g.catalog
        t.add_row(
            str(g.index),
            g.name,
            _opt(g.memory_total_bytes, fmt.gib),
            _opt(g.memory_used_bytes, fmt.gib),
            _opt(g.memory_free_bytes, fmt.gib),
            "—" if g.compute_capability is None else "{}.{}".format(*g.compute_capability),
            _opt(g.power_limit_w, lambda w: f"{w:,.0f} W"),
            "not in catalog" if c is None else c.name,
            "—" if c is None else fmt.tb_s(c.bandwidth_bytes_per_s),
            "—" if c is None else fmt.tflops(c.bf16_flops_per_s),
        )
    console.print(t)


@command("gpu-watch")
def gpu_watch_cmd(
    seconds: Annotated[float, typer.Option("--seconds", "-s", help="How long to watch.")] = 10.0,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between samples.")] = 0.5,
    as_json: JSONOpt = False,
) -> None:
    """Sample memory, utilisation, power and temperature of every GPU for a while."""
    from infphys.measure.gpu import frame_to_dict, watch_gpu

    frame = watch_gpu(seconds, interval)
    if as_json:
        print_json(frame_to_dict(frame))
        return
    reason = frame.attrs.get("reason")
    if frame.empty:
        console.print(f"[bold yellow]{reason}[/]", highlight=False, soft_wrap=True)
        return
    names = frame.attrs.get("gpu_names", {})
    t = column_table(
        f"GPU watch: {frame.attrs.get('samples', 0)} samples every {interval:g} s",
        (
            "GPU",
            "memory used max",
            "GPU util mean / max",
            "mem util mean / max",
            "power mean / max",
            "temperature max",
        ),
        text=("GPU",),
    )
    for gpu, g in frame.groupby("gpu", sort=True):
        t.add_row(
            f"{gpu}: {names.get(str(gpu), '')}",
            fmt.gib(g["memory_used_bytes"].max()),
            f"{g['gpu_util_pct'].mean():.0f} / {g['gpu_util_pct'].max():.0f} %",
            f"{g['memory_util_pct'].mean():.0f} / {g['memory_util_pct'].max():.0f} %",
            f"{g['power_w'].mean():.0f} / {g['power_w'].max():.0f} W",
            f"{g['temperature_c'].max():.0f} °C",
        )
    console.print(t)
    if reason:
        _notes([str(reason)])


@command("copy-bw")
def copy_bw_cmd(
    sizes_mib: Annotated[
        str | None,
        typer.Option("--sizes-mib", help="Comma-separated copy sizes in MiB (default by device)."),
    ] = None,
    repeats: Annotated[int, typer.Option("--repeats", help="Timings per size (median).")] = 15,
    backend: Annotated[
        str, typer.Option("--backend", help="auto, torch-cuda, torch-cpu or numpy.")
    ] = "auto",
    as_json: JSONOpt = False,
) -> None:
    """Copy bandwidth of device memory (host memory without CUDA), counted both ways."""
    from infphys.measure.gpu import copy_bandwidth

    sizes = None
    if sizes_mib is not None:
        sizes = [round(x * MiB) for x in parse_list("--sizes-mib", sizes_mib, float)]
    result = copy_bandwidth(sizes, repeats=repeats, backend=backend)  # type: ignore[arg-type]
    if as_json:
        print_json(result.to_dict())
        return
    t = column_table(
        f"Copy bandwidth: {result.label}",
        ("size", "median per copy", "read + written", "copied once (halved)", "of datasheet"),
    )
    for r in result.frame.to_dict(orient="records"):
        frac = float(r["fraction_of_datasheet"])
        t.add_row(
            fmt.bytes_(r["size_bytes"]),
            fmt.ms(r["median_s"]),
            fmt.gb_s(r["bandwidth_read_plus_written_bytes_per_s"]),
            fmt.gb_s(r["bandwidth_copied_once_bytes_per_s"]),
            "—" if math.isnan(frac) else fmt.pct(frac),
        )
    console.print(t)
    if result.catalog is not None:
        console.print(
            f"datasheet: {fmt.gb_s(result.catalog.bandwidth_bytes_per_s)} "
            f"({result.catalog.sources.get('bandwidth_bytes_per_s', '')})",
            highlight=False,
            soft_wrap=True,
        )
    _notes(result.notes)


@command("roofline-exp")
def roofline_exp_cmd(
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Catalog model (default: Llama-3.1-8B on a GPU)."),
    ] = None,
    context: CachedTokensOpt = 128,
    batches: Annotated[
        str | None,
        typer.Option("--batches", help="Comma-separated batch sizes (default 1…512 on a GPU)."),
    ] = None,
    precisions: Annotated[
        str | None,
        typer.Option(
            "--precisions", help="Comma-separated: bf16, fp16, fp32, fp8 (default by device)."
        ),
    ] = None,
    layers: Annotated[
        int | None, typer.Option("--layers", help="Layers to build (default all).")
    ] = None,
    gpu: Annotated[
        str | None, typer.Option("--gpu", "-g", help="Price against this catalog GPU.")
    ] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cuda or cpu.")] = "auto",
    repeats: Annotated[int, typer.Option("--repeats", help="Timed steps per batch.")] = 10,
    time_budget: Annotated[
        float, typer.Option("--time-budget", help="Seconds before remaining batches are skipped.")
    ] = 120.0,
    as_json: JSONOpt = False,
) -> None:
    """Time decode steps of a model-shaped stack and compare them with the roofline."""
    from infphys.measure.gpu import frame_to_dict, roofline_experiment

    frame = roofline_experiment(
        model,
        batch_sizes=None if batches is None else parse_list("--batches", batches, int),
        context_tokens=context,
        precisions=None if precisions is None else parse_list("--precisions", precisions, str),
        layers=layers,
        gpu=gpu,
        device=device,
        repeats=repeats,
        time_budget_s=time_budget,
    )
    if as_json:
        print_json(frame_to_dict(frame))
        return
    a = frame.attrs
    ridges = ", ".join(
        f"{p} {v:,.0f} FLOP/byte" for p, v in a.get("ridge_point_flop_per_byte", {}).items()
    )
    t = column_table(
        f"Decode roofline experiment: {a['model']}, {a['context_tokens']} cached tokens, "
        f"on {a['device_name']} ({a['memory']} memory); priced against {a['gpu_name']} "
        f"({a['gpu_source']}); ridge {ridges}",
        (
            "precision",
            "batch",
            "measured",
            "roofline (eff. 1)",
            "error",
            "roofline (defaults)",
            "error",
            "achieved bandwidth",
            "achieved FLOP/s",
            "bound",
        ),
        text=("precision",),
    )
    for r in frame.to_dict(orient="records"):
        t.add_row(
            str(r["precision"]),
            str(r["batch"]),
            fmt.ms(r["step_s"]),
            fmt.ms(r["predicted_peak_step_s"]),
            f"{r['error_vs_peak'] * 100:+.0f}%",
            fmt.ms(r["predicted_default_step_s"]),
            f"{r['error_vs_default'] * 100:+.0f}%",
            fmt.gb_s(r["achieved_bandwidth_bytes_per_s"]),
            _flops(r["achieved_flops_per_s"]),
            str(r["predicted_bound"]),
        )
    console.print(t)
    _notes([f"{p} skipped: {why}" for p, why in a.get("skipped", {}).items()])
    _notes(a.get("notes", []))
