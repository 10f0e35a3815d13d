"""Calculator commands: ``kv``, ``weights``, ``roofline``, ``cost``, ``models``, ``gpus``.

Each prints a rich table, or with ``--json`` the same numbers as JSON. Bad input prints one line
and exits 2.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Annotated, Any

import typer

from infphys.catalog import GPUS, IDEAL_STEP_PARAMS, MODELS, get_gpu, get_model, get_precision
from infphys.cli._app import check_option, command, console, parse_list, print_json
from infphys.cli._options import CachedTokensOpt, JSONOpt, TPOpt
from infphys.cli._tables import column_table, quantity_table
from infphys.physics import (
    cost_per_concurrent_user,
    cost_per_million_tokens,
    decode_step_time,
    kv_budget_bytes,
    kv_bytes_per_sequence,
    kv_bytes_per_token,
    kv_bytes_per_token_naive,
    kv_cliff,
    max_concurrent_sequences,
    prefill_time,
    ridge_point,
    weight_bytes,
)

ModelOpt = Annotated[
    str, typer.Option("--model", "-m", help="Catalog model (see `infphys models`).")
]
GPUOpt = Annotated[str, typer.Option("--gpu", "-g", help="Catalog GPU (see `infphys gpus`).")]
WPrecOpt = Annotated[str, typer.Option("--weights-precision", help="bf16, fp8, int8, int4[-g128]…")]
KVPrecOpt = Annotated[str, typer.Option("--kv-precision", help="KV-cache precision.")]

GB = 1e9
GIB = 2**30


@command()
def kv(
    model: ModelOpt = "llama-3.1-8b",
    gpu: GPUOpt = "h100",
    context: Annotated[
        int, typer.Option("--context", help="Tokens per user (prompt + output).")
    ] = 8192,
    users: Annotated[int, typer.Option("--users", help="Concurrent users to plan for.")] = 64,
    weights_precision: WPrecOpt = "bf16",
    kv_precision: KVPrecOpt = "bf16",
    tp: TPOpt = 1,
    gpu_memory_utilization: Annotated[
        float, typer.Option(help="Fraction of memory the engine may use.")
    ] = 0.9,
    as_json: JSONOpt = False,
) -> None:
    """KV cache per token and per user, how many users fit, and where memory runs out."""
    check_option("--context", context, at_least=1)
    check_option("--users", users, at_least=1)
    check_option("--tp", tp, at_least=1)
    check_option("--gpu-memory-utilization", gpu_memory_utilization, above=0, at_most=1)
    m, g = get_model(model), get_gpu(gpu)
    per_token = kv_bytes_per_token(m, kv_precision)
    per_user = kv_bytes_per_sequence(m, context, kv_precision)
    fits = max_concurrent_sequences(
        g,
        m,
        context,
        weights_precision=weights_precision,
        kv_precision=kv_precision,
        tp=tp,
        gpu_memory_utilization=gpu_memory_utilization,
    )
    budget = kv_budget_bytes(
        g,
        m,
        weights_precision=weights_precision,
        tp=tp,
        gpu_memory_utilization=gpu_memory_utilization,
    )
    cliff = kv_cliff(
        m,
        context,
        max(users, fits + 1, 1),
        vram_lines_bytes={g.name: g.memory_bytes * tp},
        weights_precision=weights_precision,
        kv_precision=kv_precision,
    )
    crash = cliff.crash_users[g.name]
    data: dict[str, Any] = {
        "model": m.key,
        "gpu": g.key,
        "tp": tp,
        "context_tokens": context,
        "weights_precision": get_precision(weights_precision).name,
        "kv_precision": get_precision(kv_precision).name,
        "attention": m.attention_kind,
        "kv_bytes_per_token": per_token,
        "kv_bytes_per_token_naive": kv_bytes_per_token_naive(m, kv_precision),
        "kv_bytes_per_user": per_user,
        "weights_bytes": weight_bytes(m, weights_precision),
        "kv_budget_bytes": budget,
        "max_users": fits,
        "users": users,
        "kv_bytes_for_users": per_user * users,
        "users_fit": users <= fits,
        "crash_users_at_full_memory": crash,
    }
    if as_json:
        print_json(data)
        return
    console.print(
        quantity_table(
            f"KV cache: {m.name} on {tp}× {g.name}, {context:,} tokens per user",
            [
                ("attention", m.attention_kind),
                ("KV per token", f"{per_token:,.0f} B ({data['kv_precision']})"),
                ("KV per token, naive 2·L·hidden", f"{data['kv_bytes_per_token_naive']:,.0f} B"),
                ("KV per user", f"{per_user / GIB:,.3f} GiB"),
                ("weights", f"{data['weights_bytes'] / GB:,.2f} GB ({data['weights_precision']})"),
                ("KV budget (util × memory − weights − reserve)", f"{budget / GB:,.1f} GB"),
                ("users that fit", f"{fits:,}"),
                (
                    f"{users} users need",
                    f"{per_user * users / GB:,.1f} GB of KV"
                    + ("" if users <= fits else "  [red]does not fit[/]"),
                ),
                ("first user count over full memory", "never" if crash is None else f"{crash:,}"),
            ],
        )
    )


@command()
def weights(
    model: ModelOpt = "llama-3.1-8b",
    as_json: JSONOpt = False,
) -> None:
    """Weight memory of a model at every precision (total and, for MoE, active)."""
    m = get_model(model)
    rows: list[dict[str, Any]] = []
    for name in ("fp32", "bf16", "fp8", "int8", "int4", "int4-g128"):
        rows.append(
            {
                "precision": name,
                "weights_bytes": weight_bytes(m, name),
                "active_weights_bytes": weight_bytes(m, name, active=True),
            }
        )
    data = {
        "model": m.key,
        "params_total": m.params_total,
        "params_active": m.params_active,
        "published_params": m.published_params,
        "rows": rows,
    }
    if as_json:
        print_json(data)
        return
    t = column_table(
        f"Weights: {m.name}, {m.params_total / 1e9:.2f} B parameters"
        + (f" ({m.params_active / 1e9:.2f} B active)" if m.is_moe else ""),
        ("precision", "weights (GB)", "active (GB)") if m.is_moe else ("precision", "weights (GB)"),
        text=("precision",),
    )
    for r in rows:
        cells = [r["precision"], f"{r['weights_bytes'] / GB:,.2f}"]
        if m.is_moe:
            cells.append(f"{r['active_weights_bytes'] / GB:,.2f}")
        t.add_row(*cells)
    console.print(t)


@command()
def roofline(
    model: ModelOpt = "llama-3.1-8b",
    gpu: GPUOpt = "h100",
    context: CachedTokensOpt = 1024,
    batch: Annotated[
        str, typer.Option("--batch", help="Comma-separated batch sizes.")
    ] = "1,8,32,64,128,256,512",
    weights_precision: WPrecOpt = "bf16",
    kv_precision: KVPrecOpt = "bf16",
    tp: TPOpt = 1,
    bandwidth_efficiency: Annotated[
        float, typer.Option(help="Fraction of datasheet bandwidth.")
    ] = 0.8,
    flops_efficiency: Annotated[float, typer.Option(help="Fraction of dense peak FLOP/s.")] = 0.7,
    as_json: JSONOpt = False,
) -> None:
    """Decode step time, tokens/s and the bound at each batch size; prefill for the context."""
    batches = parse_list("--batch", batch, int)
    check_option("--context", context, at_least=0)
    check_option("--tp", tp, at_least=1)
    check_option("--bandwidth-efficiency", bandwidth_efficiency, above=0, at_most=1)
    check_option("--flops-efficiency", flops_efficiency, above=0, at_most=1)
    knobs: dict[str, Any] = dict(
        weights_precision=weights_precision,
        kv_precision=kv_precision,
        tp=tp,
        params=IDEAL_STEP_PARAMS.with_(
            bandwidth_efficiency=bandwidth_efficiency, flops_efficiency=flops_efficiency
        ),
    )
    g, m = get_gpu(gpu), get_model(model)
    rows: list[dict[str, Any]] = []
    for b in batches:
        s = decode_step_time(g, m, b, context, **knobs)
        rows.append(
            {
                "batch": b,
                "step_s": s.total_s,
                "memory_s": s.memory_s,
                "compute_s": s.compute_s,
                "comm_s": s.comm_s,
                "bound": s.bound,
                "intensity_flop_per_byte": s.intensity,
                "tokens_per_s_per_user": 1 / s.total_s,
                "tokens_per_s_total": b / s.total_s,
            }
        )
    pre = prefill_time(g, m, max(context, 1), **knobs)
    fp8 = get_precision(weights_precision).has_fp8_math
    data = {
        "model": m.key,
        "gpu": g.key,
        "context_tokens": context,
        "tp": tp,
        "ridge_point_flop_per_byte": ridge_point(
            g, fp8=fp8, bandwidth_efficiency=bandwidth_efficiency, flops_efficiency=flops_efficiency
        ),
        "prefill_s": pre.total_s,
        "prefill_bound": pre.bound,
        "rows": rows,
    }
    if as_json:
        print_json(data)
        return
    t = column_table(
        f"Roofline: {m.name} on {tp}× {g.name}, {context:,} cached tokens; "
        f"ridge {data['ridge_point_flop_per_byte']:.0f} FLOP/B",
        ("batch", "step (ms)", "bound", "FLOP/B", "tok/s per user", "tok/s total"),
    )
    for r in rows:
        t.add_row(
            str(r["batch"]),
            f"{r['step_s'] * 1e3:.2f}",
            r["bound"],
            f"{r['intensity_flop_per_byte']:.0f}",
            f"{r['tokens_per_s_per_user']:,.0f}",
            f"{r['tokens_per_s_total']:,.0f}",
        )
    console.print(t)
    console.print(
        f"prefill of {max(context, 1):,} tokens: {pre.total_s * 1e3:.1f} ms ({pre.bound}-bound)"
    )


@command()
def cost(
    gpu_hourly_usd: Annotated[
        float, typer.Option("--gpu-hourly-usd", help="Price of one GPU-hour.")
    ] = 2.5,
    num_gpus: Annotated[int, typer.Option("--num-gpus", help="GPUs in the deployment.")] = 1,
    users: Annotated[
        float, typer.Option("--users", help="Concurrent users served at the SLO.")
    ] = 64,
    tokens_per_s: Annotated[
        float | None, typer.Option("--tokens-per-s", help="Sustained output tokens/s.")
    ] = None,
    as_json: JSONOpt = False,
) -> None:
    """Cost per concurrent user, and per million output tokens given a throughput."""
    check_option("--gpu-hourly-usd", gpu_hourly_usd, above=0)
    check_option("--num-gpus", num_gpus, at_least=1)
    check_option("--users", users, above=0)
    check_option("--tokens-per-s", tokens_per_s, above=0)
    uc = cost_per_concurrent_user(gpu_hourly_usd, users, num_gpus=num_gpus)
    data: dict[str, Any] = {
        "gpu_hourly_usd": gpu_hourly_usd,
        "num_gpus": num_gpus,
        "users": users,
        "per_user_hour_usd": uc.per_hour_usd,
        "per_user_month_usd": uc.per_month_usd,
        "fleet_per_hour_usd": uc.fleet_per_hour_usd,
        "per_million_tokens_usd": None
        if tokens_per_s is None
        else cost_per_million_tokens(gpu_hourly_usd, tokens_per_s, num_gpus=num_gpus),
    }
    if as_json:
        print_json(data)
        return
    rows_t: list[tuple[str, str]] = [
        ("fleet", f"${uc.fleet_per_hour_usd:,.2f} / hour"),
        ("per concurrent user", f"${uc.per_hour_usd:,.4f} / hour"),
        ("per concurrent user", f"${uc.per_month_usd:,.2f} / month (730 h)"),
    ]
    if data["per_million_tokens_usd"] is not None:
        rows_t.append(("per million output tokens", f"${data['per_million_tokens_usd']:,.3f}"))
    title = f"Cost: {num_gpus} GPU(s) at ${gpu_hourly_usd}/h, {users:g} users"
    console.print(quantity_table(title, rows_t))


class _Notes:
    """Sources printed below a table as numbered notes, so the table fits 80 columns.

    >>> n = _Notes()
    >>> n.ref("NVIDIA H200 datasheet"), n.ref("vLLM docs"), n.ref("NVIDIA H200 datasheet")
    ('[1]', '[2]', '[1]')
    """

    def __init__(self) -> None:
        self.texts: list[str] = []

    def ref(self, text: str) -> str:
        if text not in self.texts:
            self.texts.append(text)
        return f"[{self.texts.index(text) + 1}]"

    def print(self) -> None:
        for i, text in enumerate(self.texts, start=1):
            console.print(f"[{i}] {text}", highlight=False, markup=False)


def _print_catalog(
    rows: list[dict[str, Any]],
    as_json: bool,
    title: str,
    columns: dict[str, Callable[[dict[str, Any]], str]],
    *,
    text: tuple[str, ...],
    source: Callable[[dict[str, Any]], str],
    legend: str | None = None,
) -> None:
    """Print a catalog listing: with ``as_json`` the rows as JSON; else a table of the ``key``
    column, then ``columns`` (header → cell of a row; the ``text`` ones left-aligned, numbers
    right), then ``src``: a numbered note per source, printed below the table after the
    ``legend`` line. No cell wraps, so each entry stays on one line in 80 columns."""
    if as_json:
        print_json(rows)
        return
    notes = _Notes()
    t = column_table(title, ("key", *columns, "src"), text=("key", *text, "src"), no_wrap=True)
    for r in rows:
        t.add_row(r["key"], *(cell(r) for cell in columns.values()), notes.ref(source(r)))
    console.print(t)
    if legend is not None:
        console.print(legend, highlight=False)
    notes.print()


def _record(spec: Any) -> dict[str, Any]:
    """Every field of a catalog dataclass (new fields included), for ``--json``."""
    if dataclasses.is_dataclass(spec) and not isinstance(spec, type):
        return dataclasses.asdict(spec)
    return dict(vars(spec))


@command()
def models(as_json: JSONOpt = False) -> None:
    """The model catalog with shapes, computed parameter counts and sources (notes below)."""
    rows: list[dict[str, Any]] = [
        {
            **_record(m),
            "attention": m.attention_kind,
            "params_total": m.params_total,
            "params_active": m.params_active,
            "kv_bytes_per_token_bf16": kv_bytes_per_token(m),
        }
        for m in MODELS.values()
    ]
    columns: dict[str, Callable[[dict[str, Any]], str]] = {
        "attn": lambda r: str(r["attention"]),
        "layers": lambda r: str(r["layers"]),
        "params": lambda r: f"{r['params_total'] / 1e9:.2f}",
        "active": lambda r: f"{r['params_active'] / 1e9:.2f}",
        "KV B/tok": lambda r: f"{r['kv_bytes_per_token_bf16']:,.0f}",
    }
    _print_catalog(
        rows,
        as_json,
        "Models (params in billions; KV bytes per token in BF16)",
        columns,
        text=("attn",),
        source=lambda r: str(r["source"]),
    )


_GPU_FIELDS = {
    "memory_bytes": "memory",
    "bandwidth_bytes_per_s": "bandwidth",
    "bf16_flops_per_s": "BF16",
    "fp8_flops_per_s": "FP8",
}


def _gpu_sources(sources: Any) -> str:
    """One GPU's sources as one note: fields that share a source named together."""
    if not isinstance(sources, dict):
        return str(sources)
    by_text: dict[str, list[str]] = {}
    for field_name, text in sources.items():
        by_text.setdefault(str(text), []).append(_GPU_FIELDS.get(field_name) or str(field_name))
    if len(by_text) == 1:
        return next(iter(by_text))
    return "; ".join(f"{', '.join(names)}: {text}" for text, names in by_text.items())


def _tflops_or_dash(flops_per_s: float | None) -> str:
    """Dense TFLOP/s as a whole number, "—" for a GPU without that math (FP8 on an A100)."""
    return "—" if flops_per_s is None else f"{flops_per_s / 1e12:,.0f}"


@command()
def gpus(as_json: JSONOpt = False) -> None:
    """The GPU catalog: memory, bandwidth, dense BF16/FP8 FLOP/s, ridge point; sources below."""
    rows: list[dict[str, Any]] = [
        {**_record(g), "ridge_point_bf16": ridge_point(g)} for g in GPUS.values()
    ]
    columns: dict[str, Callable[[dict[str, Any]], str]] = {
        "GB": lambda r: f"{r['memory_bytes'] / 1e9:.0f}",
        "GB/s": lambda r: f"{r['bandwidth_bytes_per_s'] / 1e9:,.0f}",
        "BF16 TF/s": lambda r: f"{r['bf16_flops_per_s'] / 1e12:,.0f}",
        "FP8 TF/s": lambda r: _tflops_or_dash(r["fp8_flops_per_s"]),
        "ridge F/B": lambda r: f"{r['ridge_point_bf16']:.0f}",
    }
    _print_catalog(
        rows,
        as_json,
        "GPUs (dense, datasheet)",
        columns,
        text=(),
        source=lambda r: _gpu_sources(r["sources"]),
        legend="GB: memory; GB/s: memory bandwidth; TF/s: dense tensor TFLOP/s; ridge: BF16 FLOP "
        "per byte where compute catches up with bandwidth.",
    )
