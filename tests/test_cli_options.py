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
