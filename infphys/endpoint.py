"""Which server to measure: base URL, chat path, model and (optional) API key.

One endpoint type for the whole package: the load generator (:mod:`infphys.measure`) measures a
:class:`Target`, and the simulator (:func:`infphys.sim.serve`) yields one, with a
:class:`Simulator` handle attached (``target.simulator``: its engine, ``time_scale`` and how well
it kept up). This module imports nothing from the package, so both may use it.

The settings follow the classic NIM notebooks, read from the environment with these defaults:

=================  ================================  =========================================
variable           default                           meaning
=================  ================================  =========================================
``NIM_BASE_URL``   ``http://localhost:8000``         scheme, host and port of the server
``NIM_CHAT_PATH``  ``/v1/chat/completions``          path of the OpenAI-compatible chat API
``NIM_GEN_MODEL``  ``meta/llama-3.1-8b-instruct``    model name sent in every request
``NIM_API_KEY``    (none; else ``OPENAI_API_KEY``)   sent as ``Authorization: Bearer <key>``
=================  ================================  =========================================

The API key is a secret: it is never part of :meth:`Target.public_dict` (what run files and logs
record), and ``repr(target)`` and ``str(target)`` show only whether a key is set.

Worked example::

    >>> t = Target.from_env(env={"NIM_BASE_URL": "http://gpu-box:8000/", "NIM_API_KEY": "s3cret"})
    >>> t.chat_url
    'http://gpu-box:8000/v1/chat/completions'
    >>> t.public_dict()["api_key_set"], "s3cret" in repr(t)
    (True, False)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_CHAT_PATH",
    "DEFAULT_MODEL",
    "Simulator",
    "Target",
]

DEFAULT_BASE_URL = "http://localhost:8000"
DEFAULT_CHAT_PATH = "/v1/chat/completions"
DEFAULT_MODEL = "meta/llama-3.1-8b-instruct"

_ENV = {
    "base_url": "NIM_BASE_URL",
    "chat_path": "NIM_CHAT_PATH",
    "model": "NIM_GEN_MODEL",
}


@runtime_checkable
class Simulator(Protocol):
    """What a simulated endpoint tells about itself (:class:`infphys.sim.hosting.SimHandle`).

    ``time_scale``: wall seconds per simulated second (divide measured times by it).
    """

    @property
    def time_scale(self) -> float: ...

    def lag_note(self) -> str | None:
        """One sentence when the simulator fell behind the wall clock, else None."""
        ...

    def describe(self) -> str:
        """What is simulated, in a few words (``Llama-3.1-8B on 1× H200 SXM``)."""
        ...


def _check_base_url(value: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"base_url must be a string like 'http://host:8000' (got {value!r})")
    url = value.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"base_url must start with http:// or https:// and name a host (got {value!r})"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"base_url must not carry a query or fragment (got {value!r})")
    return url


def _check_path(value: str) -> str:
    if not isinstance(value, str) or not value.strip().startswith("/"):
        raise ValueError(f"chat_path must start with '/' (got {value!r})")
    return value.strip()


@dataclass(frozen=True, slots=True)
class Target:
    """An OpenAI-compatible chat endpoint.

    Attributes:
        base_url: scheme, host and port, e.g. ``http://localhost:8000`` (a trailing ``/`` is
            dropped). Server-wide paths (``/v1/models``, ``/v1/health/ready``, metrics) are
            resolved against it.
        chat_path: path of the chat completions API, e.g. ``/v1/chat/completions``.
        model: the ``model`` field of every request.
        api_key: optional bearer token; never serialised, never shown by ``repr``.
        simulator: set when the endpoint is the embedded simulator (:func:`infphys.sim.serve`):
            its engine, ``time_scale`` and lag figures. Not compared, not shown by ``repr``.
    """

    base_url: str = DEFAULT_BASE_URL
    chat_path: str = DEFAULT_CHAT_PATH
    model: str = DEFAULT_MODEL
    api_key: str | None = None
    simulator: Simulator | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", _check_base_url(self.base_url))
        object.__setattr__(self, "chat_path", _check_path(self.chat_path))
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError(f"model must be a non-empty string (got {self.model!r})")
        object.__setattr__(self, "model", self.model.strip())
        if self.api_key is not None:
            if not isinstance(self.api_key, str):
                raise ValueError("api_key must be a string or None")
            key = self.api_key.strip()
            object.__setattr__(self, "api_key", key or None)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Target:
        """Build a target from the environment, then apply ``overrides``.

        Args:
            env: the mapping to read (default ``os.environ``); tests pass a dict.
            overrides: ``base_url``, ``chat_path``, ``model`` or ``api_key``. A value of None
                means "not given" (so a CLI can pass its options through unchanged).

        Raises:
            ValueError: for an unknown override name or a malformed value.
        """
        source = os.environ if env is None else env
        allowed = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - allowed)
        if unknown:
            raise ValueError(
                f"overrides: unknown setting {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})"
            )
        values: dict[str, Any] = {}
        for name, var in _ENV.items():
            raw = source.get(var, "").strip()
            if raw:
                values[name] = raw
        key = source.get("NIM_API_KEY", "").strip() or source.get("OPENAI_API_KEY", "").strip()
        if key:
            values["api_key"] = key
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_(self, **changes: Any) -> Target:
        """A copy with some settings changed (None values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def url(self, path: str) -> str:
        """``path`` (starting with ``/``) resolved against :attr:`base_url`."""
        return self.base_url + _check_path(path)

    @property
    def chat_url(self) -> str:
        return self.base_url + self.chat_path

    def headers(self) -> dict[str, str]:
        """HTTP headers for every request: JSON, and the bearer token when a key is set."""
        h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if self.api_key:
            h["Authorization"] = f"Bearer {self.api_key}"
        return h

    def public_dict(self) -> dict[str, Any]:
        """What may be saved or printed: everything but the key (only whether one is set).

        A simulated endpoint adds ``simulated`` (True) and its ``time_scale``.
        """
        out: dict[str, Any] = {
            "base_url": self.base_url,
            "chat_path": self.chat_path,
            "model": self.model,
            "api_key_set": self.api_key is not None,
        }
        if self.simulator is not None:
            out["simulated"] = True
            out["time_scale"] = self.simulator.time_scale
        return out

    @property
    def time_scale(self) -> float:
        """Wall seconds per simulated second: the simulator's, 1 for a real server."""
        return self.simulator.time_scale if self.simulator is not None else 1.0

    def lag_note(self) -> str | None:
        """One sentence when a simulator started in this process fell behind, else None."""
        return self.simulator.lag_note() if self.simulator is not None else None

    def describe(self) -> str:
        """One line: which (simulated) server answers where, under which model name."""
        if self.simulator is None:
            return f"{self.base_url} (model {self.model})"
        scale = f", time ×{self.time_scale:g}" if self.time_scale != 1 else ""
        return (
            f"simulated {self.simulator.describe()} at {self.base_url} (model {self.model}{scale})"
        )

    def redact(self, text: str) -> str:
        """``text`` with the API key (if any) replaced by ``***`` — for error messages."""
        if self.api_key and self.api_key in text:
            return text.replace(self.api_key, "***")
        return text

    def __repr__(self) -> str:
        key = "<set>" if self.api_key else None
        sim = ", simulated=True" if self.simulator is not None else ""
        return (
            f"Target(base_url={self.base_url!r}, chat_path={self.chat_path!r}, "
            f"model={self.model!r}, api_key={key}{sim})"
        )

    __str__ = __repr__
