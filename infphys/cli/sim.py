"""Simulator commands: ``sim`` (serve a simulated GPU over the OpenAI API) and ``simulate``.

``infphys sim --model llama-3.1-8b --gpu h200`` serves on 127.0.0.1:8000 until Ctrl-C; point any
OpenAI client or ``infphys sweep`` at it. ``--replicas 4 --router least-outstanding`` serves a
fleet of four engines behind one endpoint; ``--prefill-replicas 1 --decode-replicas 3`` splits
prefill from decode (disaggregated serving), the KV cache crossing the GPU's link.
``infphys simulate`` pushes a whole workload through the same engine in virtual time and writes
a run file that ``infphys report`` reads, plus the engine's time series as CSV next to it.

Example: ``infphys simulate -c 64 -n 640 --prompt-tokens 1000 --max-tokens 200`` takes well under
a second and prints throughput, TTFT, TPOT and the peak KV usage of Llama-3.1-8B on an H200.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from infphys.cli._app import check_option, command, console, fail, print_json, warn
from infphys.cli._measure_common import default_out
from infphys.cli._options import SimulatedPromptTokensOpt, TPOpt
from infphys.cli._signals import stop_on_signals
from infphys.cli._tables import quantity_table

__all__ = ["sim_cmd", "simulate_cmd"]


@dataclass(frozen=True)
class EngineOptions:
    """The simulated engine's options, shared by ``sim`` and ``simulate``."""

    model: Annotated[
        str, typer.Option("--model", "-m", help="Catalog model (`infphys models`).")
    ] = "llama-3.1-8b"
    gpu: Annotated[str, typer.Option("--gpu", "-g", help="Catalog GPU (`infphys gpus`).")] = "h200"
    weights_precision: Annotated[
        str, typer.Option("--weights-precision", help="Weights: bf16, fp8, int8, int4[-g128]…")
    ] = "bf16"
    kv_precision: Annotated[
        str | None, typer.Option("--kv-precision", help="KV cache precision (default: bf16).")
    ] = None
    tp: TPOpt = 1
    max_num_seqs: Annotated[
        int, typer.Option("--max-num-seqs", help="Most requests running at once (vLLM: 256).")
    ] = 256
    scheduler: Annotated[
        str,
        typer.Option(
            "--scheduler",
            help="vllm (chunked prefill, preemption) or trtllm (TensorRT-LLM in-flight batching: "
            "whole-length KV reservation, no preemption, no chunked context), as NIM runs.",
        ),
    ] = "vllm"
    max_num_batched_tokens: Annotated[
        int,
        typer.Option("--max-num-batched-tokens", help="Token budget of one step (vLLM: 8192)."),
    ] = 8192
    max_model_len: Annotated[
        int | None,
        typer.Option("--max-model-len", help="Longest prompt + output (default: the model's)."),
    ] = None
    gpu_memory_utilization: Annotated[
        float, typer.Option("--gpu-memory-utilization", help="Fraction of GPU memory used (0.9).")
    ] = 0.9

    def build(self, **extra: Any) -> Any:
        """The :class:`infphys.sim.config.EngineConfig` these options describe.

        Raises ``ValueError`` naming the option for a value no engine can have.
        """
        from infphys.sim.config import EngineConfig

        if self.scheduler not in ("vllm", "trtllm"):
            raise ValueError(f"--scheduler must be vllm or trtllm (got {self.scheduler!r})")
        check_option("--tp", self.tp, at_least=1)
        check_option("--max-num-seqs", self.max_num_seqs, at_least=1)
        check_option("--max-num-batched-tokens", self.max_num_batched_tokens, at_least=1)
        check_option("--max-model-len", self.max_model_len, at_least=2)
        check_option("--gpu-memory-utilization", self.gpu_memory_utilization, above=0, at_most=1)
        # Every option but the GPU and the model is a keyword of EngineConfig.build, by name.
        settings = {k: v for k, v in asdict(self).items() if k not in ("gpu", "model")}
        return EngineConfig.build(self.gpu, self.model, **settings, **extra)


@dataclass(frozen=True)
class ServingOptions:
    """How ``sim`` answers clients: keywords of :class:`infphys.sim.server.SimServer`, by name."""

    max_queue: Annotated[
        int | None,
        typer.Option("--max-queue", help="Refuse with 503 beyond this many waiting requests."),
    ] = None
    time_scale: Annotated[
        float,
        typer.Option("--time-scale", help="Wall seconds per simulated second (2: twice slower)."),
    ] = 1.0
    api_key: Annotated[
        str | None, typer.Option("--api-key", help="Require this bearer token on /v1 routes.")
    ] = field(default=None, repr=False)  # a secret: never in a repr
    served_model_name: Annotated[
        str | None,
        typer.Option("--served-model-name", help="Model name clients send (default: NIM's)."),
    ] = None

    def build(self, config: Any, **fleet: Any) -> Any:
        """The :class:`~infphys.sim.server.SimServer` serving ``config`` with these options
        (``fleet``: its replicas, prefill replicas and router)."""
        from infphys.sim.server import SimServer

        return SimServer(config, **asdict(self), **fleet)


class _RichWarnings(logging.Handler):
    """Show the simulator's warnings (falling behind the wall clock) on stderr, in yellow."""

    def emit(self, record: logging.LogRecord) -> None:
        warn(record.getMessage())


@command("sim")
def sim_cmd(
    *,
    engine: EngineOptions,
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    host: Annotated[
        str, typer.Option("--host", help="Address to bind (default: loopback only).")
    ] = "127.0.0.1",
    serving: ServingOptions,
    replicas: Annotated[
        int, typer.Option("--replicas", help="Engines behind the one endpoint (a fleet).")
    ] = 1,
    router: Annotated[
        str,
        typer.Option(
            "--router",
            help="How a request picks its replica: round-robin, least-outstanding, least-kv "
            "or session-affinity.",
        ),
    ] = "round-robin",
    prefill_replicas: Annotated[
        int | None,
        typer.Option("--prefill-replicas", help="Disaggregated serving: prefill engines."),
    ] = None,
    decode_replicas: Annotated[
        int | None,
        typer.Option("--decode-replicas", help="Disaggregated serving: decode engines."),
    ] = None,
) -> None:
    """Serve a simulated GPU and model over the OpenAI API (vLLM's shapes) until Ctrl-C.

    With ``--replicas N`` (or ``--prefill-replicas P --decode-replicas D``) N engines serve
    behind one endpoint, each with the same GPU and settings; ``/metrics`` labels each one's
    series with ``replica`` and adds the router's gauges. Ctrl-C, SIGTERM and SIGHUP stop the
    server cleanly (its port is free again; exit status 0).
    """
    from infphys.sim.fleet import ROUTERS
    from infphys.sim.hosting import run_server

    check_option("--port", port, at_least=0, at_most=65535)
    check_option("--time-scale", serving.time_scale, above=0)
    check_option("--max-queue", serving.max_queue, at_least=0)
    check_option("--replicas", replicas, at_least=1)
    check_option("--prefill-replicas", prefill_replicas, at_least=1)
    check_option("--decode-replicas", decode_replicas, at_least=1)
    if router not in ROUTERS:
        raise ValueError(f"--router must be one of {', '.join(ROUTERS)} (got {router!r})")
    if (prefill_replicas is None) != (decode_replicas is None):
        raise ValueError("--prefill-replicas and --decode-replicas: give both or neither")
    if prefill_replicas is not None and replicas != 1:
        raise ValueError(
            "--replicas with --prefill-replicas/--decode-replicas: give one or the other"
        )
    cfg = engine.build()
    server = serving.build(
        cfg,
        replicas=decode_replicas or replicas,
        prefill_replicas=prefill_replicas or 0,
        router=router,
    )
    if host not in ("127.0.0.1", "localhost", "::1"):
        warn(f"binding {host}: the simulator is reachable from other machines")
    sim_log = logging.getLogger("infphys.sim")
    handler = _RichWarnings(level=logging.WARNING)
    sim_log.addHandler(handler)

    def ready(bound: int) -> None:
        scale = f", time ×{serving.time_scale:g}" if serving.time_scale != 1 else ""
        console.print(
            f"[bold]infphys sim[/]: {cfg.model.name} on {cfg.tp}× {cfg.gpu.name} "
            f"({cfg.weights_precision} weights, {cfg.kv_precision} KV{scale}) at "
            f"http://{host}:{bound}/v1 as model [bold]{server.served_model_name}[/]",
            highlight=False,
            soft_wrap=True,
        )
        if len(server.replicas) > 1:
            console.print(
                f"fleet: {server.shape}; /metrics has each replica's series", highlight=False
            )
        console.print(
            f"KV cache {cfg.kv_capacity_tokens:,} tokens ({cfg.kv_capacity_blocks:,} blocks of "
            f"{cfg.block_tokens}); max_num_seqs {cfg.max_num_seqs}, max_num_batched_tokens "
            f"{cfg.max_num_batched_tokens}, max_model_len {cfg.max_model_len:,}. Ctrl-C stops.",
            highlight=False,
            soft_wrap=True,
        )

    with stop_on_signals():
        try:
            run_server(server, host, port, on_ready=ready)
        except OSError as exc:
            fail(f"--port {port}: cannot listen on {host}:{port} ({exc.strerror or exc})")
        except KeyboardInterrupt:  # a stop signal before the event loop took over
            pass
        finally:
            sim_log.removeHandler(handler)
    st = server.stats
    console.print(
        f"stopped: {st.requests_total} requests, {st.steps} steps, {st.late_steps} late, "
        f"{st.rebases} stalls, {st.rejected_503} refused with 503, {st.rejected_context} "
        f"refused with 400 for exceeding max_model_len {cfg.max_model_len:,}",
        highlight=False,
        soft_wrap=True,
    )


def _over_context(records: list[Any], cfg: Any) -> int:
    """Count the requests refused for asking more tokens than the context; say so plainly.

    When every request was refused there is nothing to report: fail (exit 2) with the numbers.
    """
    refused = [
        r
        for r in records
        if r.http_status == 400 and "maximum context length" in (r.error_message or "")
    ]
    if not refused:
        return 0
    asked = max(r.prompt_tokens + int(r.labels.get("max_tokens") or 0) for r in refused)
    what = (
        f"{len(refused):,} of {len(records):,} requests ask for more tokens than the context: "
        f"prompt + max_tokens up to {asked:,} > max_model_len {cfg.max_model_len:,} (the KV cache "
        f"holds {cfg.kv_capacity_tokens:,} tokens)"
    )
    if len(refused) == len(records):
        fail(
            f"{what}; none could run. Lower --prompt-tokens / --max-tokens, or raise "
            "--max-model-len (up to the KV cache, e.g. with --gpu-memory-utilization or --tp)."
        )
    warn(f"{what}; they failed with HTTP 400, as on vLLM")
    return len(refused)


@command("simulate")
def simulate_cmd(
    *,
    engine: EngineOptions,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", "-c", help="Closed loop with c clients.")
    ] = None,
    rate: Annotated[
        float | None, typer.Option("--rate", help="Open loop at this many requests/s.")
    ] = None,
    arrival: Annotated[
        str, typer.Option("--arrival", help="Open loop gaps: poisson or constant.")
    ] = "poisson",
    offline: Annotated[
        bool, typer.Option("--offline", help="Queue every request at t = 0 (max throughput).")
    ] = False,
    requests: Annotated[int, typer.Option("--requests", "-n", help="Measured requests.")] = 200,
    warmup: Annotated[int, typer.Option("--warmup", help="Warm-up requests (left out).")] = 0,
    prompt_tokens: SimulatedPromptTokensOpt = 128,
    max_tokens: Annotated[int, typer.Option("--max-tokens", help="max_tokens per request.")] = 64,
    prompt_tokens_max: Annotated[
        int | None,
        typer.Option("--prompt-tokens-max", help="Uniform prompt sizes up to this."),
    ] = None,
    max_tokens_max: Annotated[
        int | None, typer.Option("--max-tokens-max", help="Uniform max_tokens up to this.")
    ] = None,
    output_lengths: Annotated[
        str,
        typer.Option(
            "--output-lengths", help="max_tokens (exactly), geometric or uniform (seeded)."
        ),
    ] = "max_tokens",
    mean_output_tokens: Annotated[
        float, typer.Option("--mean-output-tokens", help="Mean of geometric output lengths.")
    ] = 256.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of sizes, arrivals, lengths.")] = 0,
    max_sim_s: Annotated[
        float | None, typer.Option("--max-sim-s", help="Stop at this simulated time.")
    ] = None,
    no_chunk_times: Annotated[
        bool, typer.Option("--no-chunk-times", help="Don't keep per-token times (less memory).")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Run file (default: runs/simulate-<time>.jsonl)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Run a workload through the simulated engine in virtual time; write a run file."""
    from infphys.sim.config import OutputLengths
    from infphys.sim.virtual import simulate
    from infphys.sim.workload import Workload

    modes = sum([concurrency is not None, rate is not None, offline])
    if modes > 1:
        raise ValueError("--concurrency, --rate and --offline: give at most one of them")
    check_option("--concurrency", concurrency, at_least=1)
    check_option("--rate", rate, above=0)
    check_option("--requests", requests, at_least=1)
    check_option("--warmup", warmup, at_least=0)
    check_option("--prompt-tokens", prompt_tokens, at_least=1)
    check_option("--max-tokens", max_tokens, at_least=1)
    check_option("--prompt-tokens-max", prompt_tokens_max, at_least=prompt_tokens)
    check_option("--max-tokens-max", max_tokens_max, at_least=max_tokens)
    check_option("--mean-output-tokens", mean_output_tokens, above=0)
    check_option("--max-sim-s", max_sim_s, above=0)
    lengths: Any = OutputLengths(
        output_lengths,  # type: ignore[arg-type]
        mean_tokens=mean_output_tokens,
        low_tokens=1,
        high_tokens=max(max_tokens, max_tokens_max or max_tokens),
    )
    cfg = engine.build(output_lengths=lengths, seed=seed)
    common: dict[str, Any] = dict(
        prompt_tokens=prompt_tokens,
        max_tokens=max_tokens,
        prompt_tokens_max=prompt_tokens_max,
        max_tokens_max=max_tokens_max,
        warmup=warmup,
        seed=seed,
    )
    if rate is not None:
        wl = Workload.open(rate, requests, arrival=arrival, **common)
    elif offline:
        wl = Workload.offline(requests, **common)
    else:
        wl = Workload.closed(concurrency or 1, requests, **common)
    res = simulate(cfg, wl, keep_chunk_times=not no_chunk_times, max_sim_s=max_sim_s)
    too_long = _over_context(res.records, cfg)
    path = res.write(out or default_out("simulate"))
    ts_path = path.with_name(path.stem + ".timeseries.csv")
    res.timeseries.to_csv(ts_path, index=False)
    s = res.summary()
    if as_json:
        print_json(
            {
                "run": str(path),
                "timeseries": str(ts_path),
                "wall_s": res.stats.wall_s,
                "steps": res.stats.steps,
                "summary": s,
                "requests_over_context": too_long,
                "engine": cfg.describe(),
            }
        )
        return

    def fv(key: str, spec: str, scale: float = 1.0) -> str:
        x = s.get(key, float("nan"))
        return "—" if not math.isfinite(x) else format(x * scale, spec)

    rows = [
        ("requests ok / failed", f"{fv('requests_ok', '.0f')} / {fv('requests_failed', '.0f')}"),
        ("simulated time, s", fv("duration_s", ",.2f")),
        ("output tokens/s", fv("output_tokens_per_s", ",.0f")),
        ("requests/s", fv("requests_per_s", ",.2f")),
        (
            "TTFT mean / p95, ms",
            f"{fv('ttft_mean_s', ',.1f', 1e3)} / {fv('ttft_p95_s', ',.1f', 1e3)}",
        ),
        (
            "TPOT mean / p95, ms",
            f"{fv('tpot_mean_s', ',.1f', 1e3)} / {fv('tpot_p95_s', ',.1f', 1e3)}",
        ),
        ("e2e mean / p95, s", f"{fv('e2e_mean_s', ',.3f')} / {fv('e2e_p95_s', ',.3f')}"),
        ("mean in flight", fv("mean_in_flight", ",.1f")),
        ("peak running / waiting", f"{fv('peak_running', '.0f')} / {fv('peak_waiting', '.0f')}"),
        ("peak KV usage", f"{fv('peak_kv_usage', '.1f', 100)} %"),
        ("preemptions", fv("preemptions", ".0f")),
        ("wall time of the simulation, s", f"{res.stats.wall_s:.3f}"),
    ]
    title = f"simulated {cfg.model.name} on {cfg.tp}× {cfg.gpu.name}: {wl.mode} loop"
    console.print(quantity_table(title, rows))
    console.print(
        f"saved run: {path} (time series: {ts_path}); `infphys report {path}` charts it",
        highlight=False,
        soft_wrap=True,
    )
