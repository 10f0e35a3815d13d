"""``infphys.cli._options.option_groups``: a dataclass of options written once, used by many
commands."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from infphys.cli._options import option_groups


@dataclass(frozen=True)
class _Run:
    seed: Annotated[int, typer.Option("--seed", help="Seed.")] = 0
    out: Annotated[str | None, typer.Option("--out")] = None


def test_a_group_becomes_options_and_comes_back_as_one_instance() -> None:
    seen: list[tuple[int, _Run]] = []
    app = typer.Typer()

    @app.command()
    @option_groups
    def cmd(*, n: Annotated[int, typer.Option("--n")] = 1, run: _Run) -> None:
        seen.append((n, run))

    runner = CliRunner()
    assert runner.invoke(app, ["--n", "3", "--seed", "7"]).exit_code == 0
    assert runner.invoke(app, []).exit_code == 0
    assert seen == [(3, _Run(seed=7)), (1, _Run())]
    assert "--seed" in runner.invoke(app, ["--help"]).output
    bad = runner.invoke(app, ["--seed", "x"])
    assert bad.exit_code == 2 and "--seed" in bad.output


def test_a_group_instance_as_default_gives_the_command_its_own_defaults() -> None:
    seen: list[_Run] = []
    app = typer.Typer()
    own = _Run(seed=42)

    @app.command()
    @option_groups
    def cmd(*, run: _Run = own) -> None:
        seen.append(run)

    runner = CliRunner()
    assert runner.invoke(app, []).exit_code == 0
    assert runner.invoke(app, ["--out", "x"]).exit_code == 0
    # The instance's seed (42, not the field's 0) is the default, kept beside a given --out.
    assert seen == [_Run(seed=42), _Run(seed=42, out="x")]
    assert "[default: 42]" in runner.invoke(app, ["--help"], env={"COLUMNS": "200"}).output


def test_baseline_and_sweep_keep_their_own_request_defaults() -> None:
    from infphys.cli import app

    runner = CliRunner()
    env = {"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}

    def default_of(command: str, option: str) -> str:
        out = runner.invoke(app, [command, "--help"], env=env).output
        line = next(x for x in out.splitlines() if f"{option} " in x)
        return line.split("[default: ")[1].split("]")[0]

    # baseline: 20 requests, 600 s per level; sweep: 40 requests, 300 s per level (as before the
    # two shared RequestOptions); both 2 warm-up requests and a 120 s timeout.
    assert [default_of("baseline", o) for o in ("--requests", "--max-duration")] == ["20", "600.0"]
    assert [default_of("sweep", o) for o in ("--requests", "--max-duration")] == ["40", "300.0"]
    assert default_of("baseline", "--timeout") == default_of("sweep", "--timeout") == "120.0"
    assert default_of("baseline", "--warmup") == default_of("sweep", "--warmup") == "2"


def test_an_option_name_given_twice_is_refused_at_import() -> None:
    with pytest.raises(TypeError, match="seed"):

        @option_groups
        def cmd(*, seed: int = 0, run: _Run) -> None: ...


def test_a_function_without_groups_is_returned_as_it_is() -> None:
    def cmd(n: int = 1) -> None: ...

    assert option_groups(cmd) is cmd


def test_command_expands_groups_and_turns_a_value_error_into_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from infphys.cli import _app

    fresh = typer.Typer()
    monkeypatch.setattr(_app, "app", fresh)

    @_app.command("even")
    def even(*, run: _Run) -> None:
        if run.seed % 2:
            raise ValueError(f"--seed must be even (got {run.seed})")

    @_app.command()
    def other() -> None: ...

    runner = CliRunner()
    assert runner.invoke(fresh, ["even", "--seed", "4"]).exit_code == 0
    bad = runner.invoke(fresh, ["even", "--seed", "3"])
    assert bad.exit_code == 2, bad.output
    assert "--seed must be even (got 3)" in bad.output and "Traceback" not in bad.output
    assert "--seed" in runner.invoke(fresh, ["even", "--help"]).output


def test_every_infphys_command_reports_bad_input_in_one_line() -> None:
    from infphys.cli import app

    # Every command goes through _app.command, so each callback is clean_errors' wrapper.
    for info in app.registered_commands:
        assert info.callback is not None
        assert info.callback.__code__.co_qualname == "clean_errors.<locals>.wrapper", info.name


def test_warn_prints_one_line_on_stderr_and_carries_on(capsys: pytest.CaptureFixture[str]) -> None:
    from infphys.cli._app import warn

    long = "binding 0.0.0.0: the simulator is reachable from other machines " * 3
    warn(long)
    out, err = capsys.readouterr()
    assert out == "" and err == f"warning: {long}\n"
