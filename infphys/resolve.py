"""Which server labs and CLI measure: a configured endpoint that answers, else the simulator.

Policy: the endpoint comes from an explicit ``base_url`` or ``NIM_BASE_URL``
(default ``http://localhost:8000``). If something answers ``GET /v1/models`` there within
``probe_timeout_s`` (any HTTP status counts: a 401 or 404 is still a server), that server is the
target. Otherwise the embedded simulator (:func:`infphys.sim.serve`) starts on a free loopback
port, and :attr:`ResolvedTarget.message` says so in one line, which the caller prints.

This module is presentation-level: it may use both :mod:`infphys.measure` (the target type) and
:mod:`infphys.sim` (the fallback), which never import each other.

Worked example (no server on port 8000)::

    >>> with resolve_target(env={}, probe_timeout_s=0.5) as rt:   # doctest: +SKIP
    ...     print(rt.message)
    nothing answers at http://localhost:8000 (connection refused); using the embedded
    simulator instead: simulated Llama-3.1-8B on 1× H200 SXM at http://127.0.0.1:41231 …

The returned :class:`ResolvedTarget` keeps the simulator alive until it is closed (``with``
block, or :meth:`ResolvedTarget.close`).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from infphys._check import positive
from infphys._closing import Closing
from infphys.catalog import DEFAULT_GPU, DEFAULT_MODEL
from infphys.measure.target import Target
from infphys.sim.config import EngineConfig
from infphys.sim.hosting import SimHandle, serve

__all__ = [
    "DEFAULT_GPU",
    "DEFAULT_MODEL",
    "SIM_FALLBACK_ENV",
    "ResolvedTarget",
    "probe",
    "resolve_target",
    "simulator_config",
]

#: Set to "1" by a launcher (``infphys labs``) that pointed ``NIM_BASE_URL`` at a simulator it
#: started because nothing answered: that simulator is a fallback, not a configured server, and a
#: lab with a fallback of its own (Lab 8's small A100) may use its own instead.
SIM_FALLBACK_ENV = "INFPHYS_SIM_FALLBACK"


@dataclass
class ResolvedTarget(Closing):
    """The target to measure, whether it is simulated, and a one-line account of the choice.

    Attributes:
        target: what :mod:`infphys.measure` takes.
        simulated: True when the embedded simulator was started.
        message: one line for the user (printed by the caller).
        sim: the simulator started by this call (the same :class:`Target` as ``target``, with
            ``sim.simulator``: engine, ``time_scale``, server stats), else None.
        answered: False only when ``fallback=False`` and nothing answered at the endpoint.
        launcher_fallback: the endpoint is a simulator a launcher started as its fallback
            (:data:`SIM_FALLBACK_ENV` is "1" and an infphys simulator answered).
        sim_config: the simulated engine's configuration whenever the target is an infphys
            simulator: one started here, or one already running (``infphys labs``, ``infphys
            sim``) found through ``NIM_BASE_URL``, which publishes it on ``/v1/models``.
    """

    target: Target
    simulated: bool
    message: str
    sim: Target | None = None
    sim_config: EngineConfig | None = None
    answered: bool = True
    launcher_fallback: bool = False
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack, repr=False)

    def lag_note(self) -> str | None:
        """One sentence when the simulator started here fell behind the wall clock, else None.

        A real server's or an already running simulator's lag is not known here: None.
        """
        return self.sim.lag_note() if self.sim is not None else None

    def close(self) -> None:
        """Stop the simulator, if one was started (idempotent)."""
        self._stack.close()


def _get_models(base_url: str, timeout_s: float, api_key: str | None) -> Any:
    """The open response to ``GET {base_url}/v1/models``, proxies bypassed (the question is
    about this URL, not a proxy's answer); ``urllib``'s errors propagate."""
    req = urllib.request.Request(base_url.rstrip("/") + "/v1/models", method="GET")
    if api_key:
        req.add_header("Authorization", f"Bearer {api_key}")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return opener.open(req, timeout=timeout_s)


def probe(base_url: str, *, timeout_s: float = 2.0, api_key: str | None = None) -> str | None:
    """``None`` if an HTTP server answers ``GET {base_url}/v1/models``, else why not (a phrase).

    Proxies are bypassed (the probe is about this URL, not a proxy's answer).
    """
    t = positive("timeout_s", timeout_s)
    try:
        with _get_models(base_url, t, api_key) as resp:
            resp.read(1)
        return None
    except urllib.error.HTTPError:
        return None  # a status code is an answer
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, ConnectionRefusedError):
            return "connection refused"
        if isinstance(reason, socket.timeout | TimeoutError):
            return f"no answer within {t:g} s"
        if isinstance(reason, socket.gaierror):
            return "unknown host"
        return str(reason)
    except TimeoutError:
        return f"no answer within {t:g} s"
    except (ConnectionError, OSError) as exc:
        return str(exc) or type(exc).__name__


def simulator_config(
    base_url: str, *, timeout_s: float = 2.0, api_key: str | None = None
) -> EngineConfig | None:
    """The engine configuration an infphys simulator at ``base_url`` publishes, else None.

    A real server (NIM, vLLM) has no ``infphys`` block in its ``/v1/models`` card: None.
    """
    t = positive("timeout_s", timeout_s)
    try:
        with _get_models(base_url, t, api_key) as resp:
            body = json.loads(resp.read(1 << 20))
        block = body["data"][0]["infphys"]
        if not block.get("simulated"):
            return None
        return EngineConfig.from_dict(block["config"])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None


def resolve_target(
    base_url: str | None = None,
    *,
    chat_path: str | None = None,
    model: str | None = None,
    api_key: str | None = None,
    env: Mapping[str, str] | None = None,
    probe_timeout_s: float = 2.0,
    fallback: bool = True,
    sim_gpu: str = DEFAULT_GPU,
    sim_model: str = DEFAULT_MODEL,
    time_scale: float = 1.0,
    process: bool = False,
    log_lag: bool = True,
    **sim_settings: Any,
) -> ResolvedTarget:
    """A configured endpoint if it answers, otherwise the embedded simulator (see module doc).

    Args:
        base_url, chat_path, model, api_key: override the environment (``NIM_BASE_URL``,
            ``NIM_CHAT_PATH``, ``NIM_GEN_MODEL``, ``NIM_API_KEY``/``OPENAI_API_KEY``).
        env: the environment to read (default ``os.environ``).
        probe_timeout_s: how long to wait for ``GET /v1/models``.
        fallback: start the simulator when nothing answers (False: return the configured
            target anyway, with a message saying it did not answer).
        sim_gpu, sim_model, time_scale, sim_settings: the simulator to start
            (:func:`infphys.sim.serve`); it serves under the configured model name, so requests
            built for the real endpoint work unchanged.
        process: run the simulator in a child process (its own core: keeps up with higher
            concurrency; what the CLI does) rather than a thread of this one.
        log_lag: let the simulator log its lag warnings (labs pass False and show
            :meth:`ResolvedTarget.lag_note` once instead).

    Raises:
        ValueError: for malformed settings (naming the setting).
    """
    source = os.environ if env is None else env
    configured = Target.from_env(
        env=source, base_url=base_url, chat_path=chat_path, model=model, api_key=api_key
    )
    problem = probe(configured.base_url, timeout_s=probe_timeout_s, api_key=configured.api_key)
    if problem is None:
        running = simulator_config(
            configured.base_url, timeout_s=probe_timeout_s, api_key=configured.api_key
        )
        if running is not None:
            return ResolvedTarget(
                target=configured,
                simulated=True,
                message=(
                    f"using the embedded simulator already running at {configured.base_url}: "
                    f"simulated {running.model.name} on {running.tp}× {running.gpu.name}"
                ),
                sim_config=running,
                launcher_fallback=source.get(SIM_FALLBACK_ENV) == "1",
            )
        return ResolvedTarget(
            target=configured,
            simulated=False,
            message=f"using {configured.base_url} ({configured.model}): it answered GET /v1/models",
        )
    if not fallback:
        return ResolvedTarget(
            target=configured,
            simulated=False,
            message=f"nothing answers at {configured.base_url} ({problem})",
            answered=False,
        )
    stack = contextlib.ExitStack()
    try:
        sim = stack.enter_context(
            serve(
                sim_gpu,
                sim_model,
                served_model_name=configured.model,
                time_scale=time_scale,
                process=process,
                log_lag=log_lag,
                **sim_settings,
            )
        )
    except BaseException:
        stack.close()
        raise
    message = (
        f"nothing answers at {configured.base_url} ({problem}); using the embedded simulator "
        f"instead: {sim.describe()}"
    )
    handle = sim.simulator
    assert isinstance(handle, SimHandle)
    return ResolvedTarget(
        target=sim,
        simulated=True,
        message=message,
        sim=sim,
        sim_config=handle.config,
        _stack=stack,
    )
