"""The simulator's faces: ``infphys simulate``, ``infphys sim``, and the target resolver."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from simproc import infphys_sim
from typer.testing import CliRunner

from infphys.cli import app
from infphys.records import read_run
from infphys.resolve import probe, resolve_target
from infphys.sim import serve

runner = CliRunner()
DEAD = "http://127.0.0.1:9"  # discard port: nothing listens


def test_simulate_writes_a_run_that_report_reads(tmp_path: Path) -> None:
    out = tmp_path / "sim.jsonl"
    r = runner.invoke(
        app,
        [
            "simulate",
            "-c",
            "8",
            "-n",
            "40",
            "--prompt-tokens",
            "300",
            "--max-tokens",
            "20",
            "--gpu",
            "h100",
            "--weights-precision",
            "fp8",
            "-o",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "output tokens/s" in r.output and "H100 SXM" in r.output
    run = read_run(out)
    assert run.header.source == "simulated" and len(run.records) == 40
    assert (tmp_path / "sim.timeseries.csv").is_file()
    rep = runner.invoke(app, ["report", str(out), "--no-html"])
    assert rep.exit_code == 0, rep.output
    js = runner.invoke(
        app,
        [
            "simulate",
            "--rate",
            "5",
            "-n",
            "20",
            "--json",
            "-o",
            str(tmp_path / "open.jsonl"),
            "--output-lengths",
            "geometric",
            "--mean-output-tokens",
            "10",
        ],
    )
    assert js.exit_code == 0, js.output
    assert json.loads(js.output)["summary"]["requests_ok"] == 20


def test_sim_command_serves_until_interrupted() -> None:
    with infphys_sim("--time-scale", "2", "--max-model-len", "8192") as sim:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(sim.url + "/v1/models", timeout=10) as resp:
            card = json.load(resp)["data"][0]
        assert card["infphys"]["time_scale"] == 2.0 and card["max_model_len"] == 8192
    assert sim.proc.returncode in (0, 130), sim.out  # 130: stopped by SIGINT, as shells report it
    assert "stopped:" in sim.out


def test_resolver_falls_back_to_the_simulator_in_one_line() -> None:
    assert probe(DEAD, timeout_s=1.0) == "connection refused"
    with resolve_target(env={"NIM_BASE_URL": DEAD}) as rt:
        assert rt.simulated and rt.sim is not None
        assert "\n" not in rt.message
        assert rt.message.startswith(f"nothing answers at {DEAD} (connection refused)")
        assert "embedded simulator" in rt.message
        assert rt.target.model == "meta/llama-3.1-8b-instruct"
        assert probe(rt.target.base_url) is None
        sim_url = rt.target.base_url
    assert probe(sim_url, timeout_s=1.0) == "connection refused"  # closed with the block


def test_resolver_uses_a_server_that_answers() -> None:
    with serve(max_model_len=8192) as t:
        rt = resolve_target(base_url=t.base_url, env={})
        # An infphys simulator found through the URL (as under `infphys labs`) says what it is:
        # it publishes its engine configuration on /v1/models.
        assert rt.simulated and rt.sim is None and rt.target.base_url == t.base_url
        assert rt.sim_config == t.simulator.config
        assert rt.message.startswith("using the embedded simulator already running at")
        rt.close()
    from infphys.measure.stub import StubConfig, StubServer

    with StubServer(StubConfig()) as stub:
        real = resolve_target(base_url=stub.base_url, env={})
        assert not real.simulated and real.sim_config is None
        assert real.message.startswith(f"using {stub.base_url}")
        real.close()
        kept = resolve_target(env={"NIM_BASE_URL": DEAD}, fallback=False)
        assert not kept.simulated and "nothing answers" in kept.message


def test_measuring_commands_fall_back_to_the_simulator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NIM_BASE_URL", DEAD)
    monkeypatch.setenv("COLUMNS", "200")
    r = runner.invoke(app, ["preflight"])
    assert r.exit_code == 0, r.output
    assert "using the embedded simulator" in r.output


def test_simulate_hands_every_engine_option_to_the_engine(tmp_path: Path) -> None:
    # Each option set away from its default must show up in the engine the run describes.
    args = ["--gpu", "h100", "--tp", "2", "--weights-precision", "fp8", "--kv-precision", "fp8"]
    args += ["--max-num-seqs", "32", "--max-num-batched-tokens", "2048", "--scheduler", "trtllm"]
    args += ["--max-model-len", "4096", "--gpu-memory-utilization", "0.8"]
    r = runner.invoke(
        app,
        ["simulate", "-n", "4", "--out", str(tmp_path / "s.jsonl"), "--json", *args],
    )
    assert r.exit_code == 0, r.output
    engine = json.loads(r.output)["engine"]
    assert (engine["gpu"], engine["model"], engine["tp"]) == ("h100-sxm", "llama-3.1-8b", 2)
    assert (engine["weights_precision"], engine["kv_precision"]) == ("fp8", "fp8")
    assert (engine["max_num_seqs"], engine["max_num_batched_tokens"]) == (32, 2048)
    assert engine["scheduler"] == "trtllm" and engine["max_model_len"] == 4096
    assert engine["gpu_memory_utilization"] == 0.8
