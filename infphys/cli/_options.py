"""Groups of command-line options written once and shared by several commands.

A group is a frozen dataclass whose fields are typer options (``Annotated[int, typer.Option(...)]``
with a default). A command decorated with :func:`option_groups` names the group once, as a
parameter annotated with the dataclass; the decorator shows typer the group's fields as ordinary
options in that place and hands the command one instance built from what was given. The
commands' decorator :func:`infphys.cli._app.command` applies it to every command. Single options
that mean the same in several commands (``--json``, ``--tp``) are declared here once too.

Worked example: with ``RunOptions`` holding ``seed: SeedOpt = 0`` and ``workers: WorkersOpt = 1``,

    @app.command("baseline")
    @option_groups
    def baseline_cmd(requests: RequestsOpt = 20, run: RunOptions = RunOptions()) -> None: ...

takes ``--requests``, ``--seed`` and ``--workers``; ``infphys baseline --seed 7`` calls it with
``requests=20`` and ``run=RunOptions(seed=7, workers=1)``.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any, TypeVar, get_type_hints

import typer

__all__ = [
    "CachedTokensOpt",
    "JSONOpt",
    "SimulatedPromptTokensOpt",
    "TPOpt",
    "option_groups",
]

R = TypeVar("R")

# -- single options that mean the same in several commands -------------------------------------

JSONOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
TPOpt = Annotated[int, typer.Option("--tp", help="Tensor-parallel degree (GPUs per replica).")]
CachedTokensOpt = Annotated[int, typer.Option("--context", help="Cached tokens per sequence.")]
#: The prompt of each request of a simulated workload (``simulate``, ``plan-fleet``).
SimulatedPromptTokensOpt = Annotated[int, typer.Option("--prompt-tokens", help="Prompt tokens.")]


def _group_parameters(cls: type, given: object) -> list[inspect.Parameter]:
    """The fields of ``cls`` as keyword parameters; an instance ``given`` as the command's
    default supplies the defaults, else the fields' own."""
    hints = get_type_hints(cls, include_extras=True)
    params = []
    for field in dataclasses.fields(cls):
        default = getattr(given, field.name) if isinstance(given, cls) else field.default
        if default is dataclasses.MISSING:
            raise TypeError(f"option group {cls.__name__}.{field.name} needs a default")
        params.append(
            inspect.Parameter(
                field.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=default,
                annotation=hints[field.name],
            )
        )
    return params


def _is_group(annotation: Any) -> bool:
    return isinstance(annotation, type) and dataclasses.is_dataclass(annotation)


def option_groups(func: Callable[..., R]) -> Callable[..., R]:
    """Expand each parameter of ``func`` annotated with a dataclass into that class's fields.

    The fields become keyword options in the parameter's place (typer reads them from the
    wrapper's signature); the call rebuilds the dataclass from them. A parameter whose default
    is an instance of its group (``request: RequestOptions = RequestOptions(requests=40)``)
    gives that command its own defaults; the help shows them. Two groups, or a group
    and the command, may not share an option name (``TypeError`` at import). A function with
    no group parameter is returned as it is.
    """
    signature = inspect.signature(func, eval_str=True)
    if not any(_is_group(p.annotation) for p in signature.parameters.values()):
        return func
    params: list[inspect.Parameter] = []
    groups: dict[str, tuple[type, list[str]]] = {}
    for param in signature.parameters.values():
        cls = param.annotation
        if _is_group(cls):
            fields = _group_parameters(cls, param.default)
            groups[param.name] = (cls, [f.name for f in fields])
            params.extend(fields)
        else:
            params.append(param.replace(kind=inspect.Parameter.KEYWORD_ONLY))
    names = [p.name for p in params]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise TypeError(f"{func.__name__}: option names given twice: {', '.join(clashes)}")

    @functools.wraps(func)
    def wrapper(**kwargs: Any) -> R:
        for name, (cls, fields) in groups.items():
            kwargs[name] = cls(**{f: kwargs.pop(f) for f in fields})
        return func(**kwargs)

    wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    if signature.return_annotation is not inspect.Signature.empty:
        wrapper.__annotations__["return"] = signature.return_annotation
    return wrapper
