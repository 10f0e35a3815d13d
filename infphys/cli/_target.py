"""Which server the measuring commands talk to: one function, :func:`resolve_cli_target`.

Every measuring command (``preflight``, ``baseline``, ``sweep``, ``tokens``, ``overload``) gets
its target here and nowhere else, so a change of policy — such as falling back to the embedded
simulator when nothing answers at ``NIM_BASE_URL`` — is made in this one place.

It is a context manager because a fallback target may be a server that has to be started before
the command and stopped after it; for a configured server there is nothing to start or stop.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from infphys.measure.target import Target

__all__ = ["resolve_cli_target"]


@contextmanager
def resolve_cli_target(
    *,
    base_url: str | None = None,
    chat_path: str | None = None,
    model: str | None = None,
    api_key: str | None = None,
) -> Iterator[Target]:
    """Yield the target for a command: the environment (``NIM_BASE_URL``, ``NIM_CHAT_PATH``,
    ``NIM_GEN_MODEL``, ``NIM_API_KEY``/``OPENAI_API_KEY``) overridden by the options given.

    Options left as None keep the environment's value (or the default). When nothing answers
    there, the embedded simulator (:func:`infphys.resolve.resolve_target`) is started for the
    command in a child process (so that it and the measuring client each have a core), one
    line on stderr says so, and it stops when the command ends.

    Raises:
        ValueError: for a malformed setting (the command prints it and exits 2).
    """
    from infphys.cli._app import err_console
    from infphys.resolve import resolve_target

    with resolve_target(
        base_url=base_url, chat_path=chat_path, model=model, api_key=api_key, process=True
    ) as resolved:
        if resolved.simulated:
            err_console.print(f"[yellow]{resolved.message}[/]", highlight=False, soft_wrap=True)
        yield resolved.target
