"""Input no GPU could have is refused, naming the option; oversized requests are said plainly;
tables fit an 80-column terminal while ``--json`` keeps every field.
"""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import pandas as pd
import pytest
from clirun import run_cli
from rich.console import Console
from typer.testing import CliRunner

from infphys.catalog import GPUS, MODELS
from infphys.cli import app
from infphys.cli.measure import summary_table

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["kv", "--model", "nope"], "model: unknown model 'nope'"),
        (["kv", "--gpu", "v100"], "gpu: unknown GPU 'v100'"),
        (["kv", "--kv-precision", "fp6"], "precision: unknown name 'fp6'"),
        (["kv", "--users", "-1"], "--users must be at least 1 (got -1)"),
        (["kv", "--users", "0"], "--users must be at least 1 (got 0)"),
        (["kv", "--context", "0"], "--context must be at least 1 (got 0)"),
        (["kv", "--context", "-5"], "--context must be at least 1 (got -5)"),
        (["kv", "--tp", "0"], "--tp must be at least 1 (got 0)"),
        (["kv", "--gpu-memory-utilization", "1.5"], "--gpu-memory-utilization must be at most 1"),
        (["roofline", "--batch", "a,b"], "--batch: 'a' is not a valid int"),
        (["roofline", "--batch", "8,-2"], "--batch: every value must be > 0 (got '-2')"),
        (["roofline", "--batch", " , "], "--batch must be a comma-separated list"),
        (["roofline", "--context", "-1"], "--context must be at least 0 (got -1)"),
        (["roofline", "--tp", "-2"], "--tp must be at least 1 (got -2)"),
        (["roofline", "--flops-efficiency", "0"], "--flops-efficiency must be more than 0"),
        (["cost", "--gpu-hourly-usd", "-2.5"], "--gpu-hourly-usd must be more than 0 (got -2.5)"),
        (["cost", "--gpu-hourly-usd", "nan"], "--gpu-hourly-usd must be a finite number"),
        (["cost", "--num-gpus", "0"], "--num-gpus must be at least 1 (got 0)"),
        (["cost", "--users", "0"], "--users must be more than 0 (got 0)"),
        (["cost", "--users", "-3"], "--users must be more than 0 (got -3)"),
        (["cost", "--tokens-per-s", "inf"], "--tokens-per-s must be a finite number"),
        (["simulate", "-c", "0"], "--concurrency must be at least 1 (got 0)"),
        (["simulate", "--rate", "-1"], "--rate must be more than 0"),
        (["simulate", "--max-tokens", "0"], "--max-tokens must be at least 1 (got 0)"),
        (["simulate", "--prompt-tokens", "-4"], "--prompt-tokens must be at least 1 (got -4)"),
        (["simulate", "--tp", "0"], "--tp must be at least 1 (got 0)"),
        (["simulate", "--max-num-seqs", "0"], "--max-num-seqs must be at least 1 (got 0)"),
        (
            ["simulate", "--prompt-tokens", "500", "--prompt-tokens-max", "100"],
            "--prompt-tokens-max must be at least 500 (got 100)",
        ),
        (["sim", "--time-scale", "0"], "--time-scale must be more than 0 (got 0)"),
        (["sim", "--port", "70000"], "--port must be at most 65535 (got 70000)"),
        (["sim", "--max-queue", "-1"], "--max-queue must be at least 0 (got -1)"),
        (["sim", "--gpu", "l4", "--model", "llama-3.1-70b"], "does not fit on 1 × L4"),
        (["simulate", "-c", "2", "--rate", "3"], "give at most one of them"),
        (["sweep", "--concurrency", "1,x"], "--concurrency: 'x' is not a valid int"),
        (["sweep", "--concurrency", "1", "--rate", "2"], "give one of them"),
        (["sweep", "--rate", "0"], "--rate: every value must be > 0"),
        (["copy-bw", "--sizes-mib", "1,big"], "--sizes-mib: 'big' is not a valid float"),
        (["roofline-exp", "--batches", "0,4"], "--batches: every value must be > 0 (got '0')"),
        (["sweep", "--arrival", "bursty"], "--arrival"),
        (["baseline", "--timeout", "0"], "--timeout"),
        (["baseline", "--base-url", "localhost:8000"], "base_url"),
        (["baseline", "--metrics-interval", "-1"], "--metrics-interval"),
        (["report", "/no/such/run.jsonl"], "no such file"),
        (["plan-fleet", "--users", "0"], "--users must be at least 1 (got 0)"),
        (["plan-fleet", "--users", "10", "--rate", "2"], "give exactly one of --users and --rate"),
        (
            ["plan-fleet", "--users", "10", "--p95-itl-ms", "0"],
            "--p95-itl-ms must be more than 0 (got 0)",
        ),
        (
            ["plan-fleet", "--users", "10", "--price", "h100-sxm"],
            "--price must be GPU=USD_PER_HOUR",
        ),
        (
            ["plan-fleet", "--users", "10", "--chunk-tokens", "2048,x"],
            "--chunk-tokens: 'x' is not a valid int",
        ),
    ],
)
def test_unphysical_input_is_refused_naming_the_option(args: list[str], message: str) -> None:
    # One line on a 160-column terminal, on stderr, and no traceback.
    r = run_cli(*args)
    assert r.returncode == 2, r.stdout + r.stderr
    assert message in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_simulate_refuses_a_workload_no_request_of_which_fits(tmp_path: Path) -> None:
    # 200,000 prompt + 64 output tokens = 200,064 > Llama-3.1-8B's 131,072-token context.
    out = tmp_path / "run.jsonl"
    args = ["simulate", "--prompt-tokens", "200000", "-n", "5", "-o", str(out)]
    result = CliRunner().invoke(app, args)
    text = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert "5 of 5 requests ask for more tokens than the context" in text
    assert "200,064 > max_model_len 131,072" in text
    assert "nan" not in text.lower() and not out.exists()


def test_simulate_counts_the_requests_that_do_not_fit(tmp_path: Path) -> None:
    # max_model_len 1,000: prompts of 100..1,900 tokens + 100 output tokens. The request sizes
    # are seeded; the table of the run must agree with the warning's count.
    out = tmp_path / "run.jsonl"
    args = [
        "simulate", "--max-model-len", "1000", "--prompt-tokens", "100",
        "--prompt-tokens-max", "1900", "--max-tokens", "100", "-n", "40", "-o", str(out),
        "--json",
    ]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    records = [json.loads(line) for line in out.read_text().splitlines()[1:]]
    too_long = [r for r in records if r.get("prompt_tokens", 0) + 100 > 1000]
    assert data["requests_over_context"] == len(too_long) > 0
    assert data["summary"]["requests_failed"] == len(too_long)
    assert f"{len(too_long)} of 40 requests ask for more tokens" in " ".join(result.stderr.split())


def _fits_80(text: str) -> None:
    lines = text.splitlines()
    assert lines and max(len(line) for line in lines) <= 80
    assert "…" not in text  # nothing cut short


def test_models_and_gpus_fit_80_columns_with_sources_as_notes() -> None:
    models = run_cli("models", columns=80)
    assert models.returncode == 0, models.stderr
    _fits_80(models.stdout)
    for key in MODELS:  # every key whole, so it can be typed back
        assert f"│ {key} " in models.stdout
    assert "[1] the model's config.json" in models.stdout
    gpus = run_cli("gpus", columns=80)
    assert gpus.returncode == 0, gpus.stderr
    _fits_80(gpus.stdout)
    for key in GPUS:
        assert f"│ {key} " in gpus.stdout
    assert "NVIDIA H200 datasheet" in gpus.stdout


def test_json_keeps_every_catalog_field() -> None:
    models = json.loads(run_cli("models", "--json", columns=80).stdout)
    gpus = json.loads(run_cli("gpus", "--json", columns=80).stdout)
    for rows, catalog in ((models, MODELS), (gpus, GPUS)):
        spec = next(iter(catalog.values()))
        fields = {f.name for f in dataclasses.fields(spec)}  # type: ignore[arg-type]
        assert all(fields <= set(r) for r in rows)
    h200 = next(g for g in gpus if g["key"] == "h200-sxm")
    # Ridge point: 989 TFLOP/s / 4.8 TB/s = 206 FLOP per byte (the datasheet figures).
    assert h200["ridge_point_bf16"] == pytest.approx(989e12 / 4.8e12, rel=0.01)
    assert models[0]["kv_bytes_per_token_bf16"] == 131072  # 2 × 32 × 8 × 128 × 2


def test_sweep_table_fits_80_columns() -> None:
    from infphys.sim.config import EngineConfig
    from infphys.sim.virtual import simulate
    from infphys.sim.workload import Workload

    cfg = EngineConfig.build("h200", "llama-3.1-8b")
    frames = []
    for level, c in enumerate((1, 16, 256, 1024)):
        f = simulate(cfg, Workload.closed(c, 2 * c, prompt_tokens=128, max_tokens=16)).to_frame()
        frames.append(f.assign(level=level))
    frame = pd.concat(frames, ignore_index=True)
    buf = io.StringIO()
    Console(file=buf, width=80, no_color=True).print(summary_table(frame, title="sweep"))
    text = buf.getvalue()
    _fits_80(text)
    assert "2048/0/0" in text  # 2 × 1,024 requests at the last level, all complete
