"""The measuring commands end to end, against a stub server in a background thread."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from infphys.cli import app
from infphys.cli._target import resolve_cli_target
from infphys.cli.measure import parse_list
from infphys.measure.stub import StubConfig, StubServer
from infphys.records import read_run

runner = CliRunner()


@pytest.fixture(scope="module")
def server() -> object:
    with StubServer(StubConfig(delay_s=0.01, tokens=6, api_key="sk-CLI-SECRET")) as s:
        yield s


def _args(server: StubServer) -> list[str]:
    return ["--base-url", server.base_url, "--model", server.config.model]


def test_sweep_then_report_writes_charts(server: StubServer, tmp_path: Path) -> None:
    run = tmp_path / "sweep.jsonl"
    res = runner.invoke(
        app,
        [
            "sweep",
            "--concurrency",
            "1,2,4",
            "-n",
            "8",
            "--warmup",
            "1",
            "--max-tokens",
            "6",
            "--metrics-interval",
            "0.05",
            "--out",
            str(run),
            "--api-key",
            "sk-CLI-SECRET",
            *_args(server),
        ],
    )
    assert res.exit_code == 0, res.output
    assert f"saved run: {run}" in res.output.replace("\n", "")
    r = read_run(run)
    assert len(r.records) == 3 * 9 and all(x.ok for x in r.records)
    assert r.header.load["kind"] == "sweep"
    assert run.with_name("sweep.metrics.jsonl").is_file()

    rep = runner.invoke(app, ["report", str(run)])
    assert rep.exit_code == 0, rep.output
    html_path = run.with_suffix(".html")
    assert "saved charts" in rep.output and html_path.is_file()
    # Which client timed the run, from the header: the wire client on an http:// target.
    assert "timed by: infphys wire" in rep.output
    page = html_path.read_text()
    for title in ("end-to-end latency vs load", "throughput vs load", "errors vs load"):
        assert title in page
    assert "server metrics during the run" in page
    assert "<script src=" not in page  # plotly.js is inline, nothing from a CDN
    assert page.count("Plotly.newPlot") >= 6
    for text in (res.output, rep.output, run.read_text(), page):
        assert "sk-CLI-SECRET" not in text


def test_baseline_tokens_and_overload(server: StubServer, tmp_path: Path) -> None:
    key = ["--api-key", "sk-CLI-SECRET"]
    b = runner.invoke(
        app,
        ["baseline", "-n", "4", "--out", str(tmp_path / "b.jsonl"), *key, *_args(server)],
    )
    assert b.exit_code == 0, b.output
    t = runner.invoke(
        app,
        [
            "tokens",
            "--prompt-tokens",
            "8,16",
            "--max-tokens",
            "2,4",
            "-n",
            "1",
            "--metrics-interval",
            "0",
            "--out",
            str(tmp_path / "t.jsonl"),
            *key,
            *_args(server),
        ],
    )
    assert t.exit_code == 0, t.output
    assert len(read_run(tmp_path / "t.jsonl").records) == 4
    rep = runner.invoke(app, ["report", str(tmp_path / "t.jsonl")])
    assert "by prompt size and max_tokens" in (tmp_path / "t.html").read_text()
    assert rep.exit_code == 0
    o = runner.invoke(
        app,
        [
            "overload",
            "--concurrency",
            "2,4",
            "-n",
            "3",
            "--timeout",
            "0.002",
            "--skip-preflight",
            "--out",
            str(tmp_path / "o.jsonl"),
            *key,
            *_args(server),
        ],
    )
    assert o.exit_code == 0, o.output
    errors = {x.error_class for x in read_run(tmp_path / "o.jsonl").records}
    assert errors <= {"total_timeout", "read_timeout", "connect_timeout", None}
    assert errors - {None}
    assert "errors" in o.output


def test_open_loop_sweep(server: StubServer, tmp_path: Path) -> None:
    res = runner.invoke(
        app,
        [
            "sweep",
            "--rate",
            "50,100",
            "-n",
            "4",
            "--warmup",
            "0",
            "--arrival",
            "constant",
            "--out",
            str(tmp_path / "r.jsonl"),
            "--api-key",
            "sk-CLI-SECRET",
            *_args(server),
        ],
    )
    assert res.exit_code == 0, res.output
    assert {x.labels["rate_per_s"] for x in read_run(tmp_path / "r.jsonl").records} == {50, 100}


def test_preflight_command(server: StubServer, tmp_path: Path) -> None:
    ok = runner.invoke(app, ["preflight", "--api-key", "sk-CLI-SECRET", *_args(server)])
    assert ok.exit_code == 0 and "ok:" in ok.output
    bad = runner.invoke(app, ["preflight", *_args(server), "--api-key", "nope"])
    assert bad.exit_code == 1
    assert "NIM_API_KEY" in bad.output


def test_report_of_a_non_run_file(tmp_path: Path) -> None:
    p = tmp_path / "x.jsonl"
    p.write_text('{"hello": 1}\n')
    res = runner.invoke(app, ["report", str(p)])
    assert res.exit_code == 2 and "not an infphys run file" in res.output


def test_a_failed_preflight_exits_1_with_advice(tmp_path: Path) -> None:
    with StubServer(StubConfig(ready=False)) as loading:
        res = runner.invoke(
            app, ["baseline", *_args(loading), "-n", "1", "--out", str(tmp_path / "x.jsonl")]
        )
    assert res.exit_code == 1
    assert "not ready" in re.sub(r"\s+", " ", res.output)
    assert not (tmp_path / "x.jsonl").exists()


def test_parse_list_and_resolve_target(server: StubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_list("--rate", " 1, 2.5 ,4", float) == [1.0, 2.5, 4.0]
    with pytest.raises(ValueError, match="--x"):
        parse_list("--x", ",", int)
    monkeypatch.setenv("NIM_GEN_MODEL", "env-model")
    monkeypatch.setenv("NIM_API_KEY", "sk-from-env")
    with resolve_cli_target(base_url=server.base_url) as t:
        assert (t.base_url, t.model, t.api_key) == (server.base_url, "env-model", "sk-from-env")
