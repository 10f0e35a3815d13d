"""The calculator commands: the console script once in a subprocess, as a user runs it; the
rest on the same typer app in-process (``CliRunner``), which spares a Python start per call.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from clirun import run_cli

BIN = Path(sys.executable).parent / "infphys"


def test_console_script_kv_json_reports_131072_bytes_per_token() -> None:
    """The entry point itself, in a subprocess, as a user runs it."""
    cmd = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "infphys"]
    env = {**os.environ, "COLUMNS": "160", "NO_COLOR": "1"}
    args = ["kv", "--model", "llama-3.1-8b", "--gpu", "h100", "--json"]
    r = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["kv_bytes_per_token"] == 131072
    assert data["kv_bytes_per_token_naive"] == 4 * 131072


def test_kv_json_reports_131072_bytes_per_token() -> None:
    r = run_cli("kv", "--model", "llama-3.1-8b", "--gpu", "h100", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["kv_bytes_per_token"] == 131072
    assert data["kv_bytes_per_token_naive"] == 4 * 131072


def test_kv_table_and_users_that_fit() -> None:
    r = run_cli(
        "kv", "--model", "llama-3.1-8b", "--gpu", "h200", "--context", "8192", "--users", "200"
    )
    assert r.returncode == 0, r.stderr
    assert "131,072 B" in r.stdout
    assert "101" in r.stdout  # users that fit (hand calculation in test_physics_memory)
    assert "does not fit" in r.stdout


def test_kv_fp8_json() -> None:
    r = run_cli(
        "kv", "--kv-precision", "fp8", "--weights-precision", "fp8", "--gpu", "h200", "--json"
    )
    data = json.loads(r.stdout)
    assert data["kv_bytes_per_token"] == 65536
    assert data["weights_bytes"] == pytest.approx(8_030_261_248)


def test_roofline_json_floor() -> None:
    r = run_cli(
        "roofline",
        "--gpu",
        "h100",
        "--context",
        "0",
        "--batch",
        "1",
        "--bandwidth-efficiency",
        "1",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout)["rows"][0]
    # The ideal roofline: (16.06 − 1.05 embedding table) GB / 3.35 TB/s = 4.48 ms.
    assert row["step_s"] * 1e3 == pytest.approx(4.48, abs=0.01)
    assert row["bound"] == "memory"


def test_weights_and_cost_json() -> None:
    w = json.loads(run_cli("weights", "--model", "mixtral-8x7b", "--json").stdout)
    assert w["params_total"] == pytest.approx(46.7e9, rel=0.01)
    c = json.loads(
        run_cli(
            "cost",
            "--gpu-hourly-usd",
            "2.5",
            "--num-gpus",
            "8",
            "--users",
            "400",
            "--tokens-per-s",
            "20000",
            "--json",
        ).stdout
    )
    assert c["per_user_hour_usd"] == pytest.approx(0.05)
    assert c["per_million_tokens_usd"] == pytest.approx(20 * 50 / 3600)


def test_catalog_listings() -> None:
    models = json.loads(run_cli("models", "--json").stdout)
    assert {m["key"] for m in models} >= {"llama-3.1-8b", "deepseek-v3", "gpt-oss-120b"}
    gpus = json.loads(run_cli("gpus", "--json").stdout)
    assert all(g["sources"]["bandwidth_bytes_per_s"] for g in gpus)
    assert "H200" in run_cli("gpus").stdout
