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
