"""Running a simulated server: in a background thread, a child process, or the foreground.

:func:`serve` starts a :class:`~infphys.sim.server.SimServer` on a free loopback port for the
length of a ``with`` block and yields the :class:`~infphys.endpoint.Target` a measuring client
takes, with a :class:`SimHandle` attached (``t.simulator``: engine, ``time_scale``, the server).
:func:`run_server` serves in the foreground until Ctrl-C (``infphys sim``).

Worked example (a lab cell)::

    with serve(gpu="h200", model="llama-3.1-8b", time_scale=2) as t:
        t.base_url                  # 'http://127.0.0.1:<port>'
        t.model                     # 'meta/llama-3.1-8b-instruct'
        t.simulator.server.stats    # how well it kept up with the wall clock

In a thread the server shares the interpreter lock with the caller; with ``process=True`` it
runs in ``python -m infphys.sim._child`` and keeps up with about 4× the concurrency.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from infphys._check import non_negative
from infphys._closing import end_process
from infphys.catalog import GPUSpec, ModelSpec
from infphys.endpoint import Target
from infphys.sim.config import EngineConfig
from infphys.sim.server import SimServer

__all__ = ["SWITCH_INTERVAL_S", "SimHandle", "run_server", "serve"]

log = logging.getLogger("infphys.sim")

#: GIL switch interval while an embedded server runs in a background thread (seconds).
SWITCH_INTERVAL_S = 0.0005


@dataclass(frozen=True)
class SimHandle:
    """The simulator behind a :class:`~infphys.endpoint.Target` that :func:`serve` yields.

    Example: ``serve(gpu="h200", model="llama-3.1-8b", replicas=2)`` yields a target whose
    ``simulator.describe()`` is ``Llama-3.1-8B on 1× H200 SXM (2 replicas (round-robin))`` and
    whose ``simulator.server.stats`` say whether both engines kept up with the wall clock.

    Attributes:
        config: the simulated engine (every replica's, in a fleet).
        time_scale: wall seconds per simulated second (divide measured times by it).
        server: the running server when it runs in this process (its ``stats`` say whether it
            kept up); None for a child process.
        shape: the fleet's shape in words ("" for one engine).
    """

    config: EngineConfig
    time_scale: float = 1.0
    server: SimServer | None = field(default=None, repr=False, compare=False)
    shape: str = ""

    def lag_note(self) -> str | None:
        """One sentence when this (in-process) server fell behind the wall clock, else None."""
        return self.server.stats.lag_note() if self.server is not None else None

    def describe(self) -> str:
        """``Llama-3.1-8B on 1× H200 SXM`` (and the fleet's shape)."""
        what = self.config.label
        return f"{what} ({self.shape})" if self.shape else what


def _target(host: str, port: int, server: SimServer, in_process: bool) -> Target:
    handle = SimHandle(
        config=server.config,
        time_scale=server.time_scale,
        server=server if in_process else None,
        shape=server.shape,
    )
    return Target(
        base_url=f"http://{host}:{port}",
        model=server.served_model_name,
        api_key=server.api_key,
        simulator=handle,
    )


class _ServerThread:
    """A SimServer on its own event loop in a background thread."""

    def __init__(self, server: SimServer, host: str, port: int) -> None:
        self.server = server
        self.host = host
        self.port = port
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="infphys-sim-server", daemon=True)

    def start(self, timeout_s: float = 30.0) -> None:
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise RuntimeError("the simulated server did not start in time")
        if self._error is not None:
            self._thread.join(timeout_s)
            raise self._error

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            self.port = await self.server.start(self.host, self.port)
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            await self.server.stop()
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self.server.stop()

    def stop(self, timeout_s: float = 30.0) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout_s)


def _check_host(host: str) -> str:
    if not isinstance(host, str) or not host:
        raise ValueError(f"host must be an address such as '127.0.0.1' (got {host!r})")
    return host


@contextlib.contextmanager
def serve(
    gpu: GPUSpec | str = "h200",
    model: ModelSpec | str = "llama-3.1-8b",
    *,
    config: EngineConfig | None = None,
    served_model_name: str | None = None,
    time_scale: float = 1.0,
    api_key: str | None = None,
    max_queue: int | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    process: bool = False,
    log_lag: bool = True,
    replicas: int = 1,
    prefill_replicas: int = 0,
    router: str = "round-robin",
    **settings: Any,
) -> Iterator[Target]:
    """Run a simulated server on a free loopback port, in a background thread or a process.

    ``with infphys.sim.serve(gpu="h200", model="llama-3.1-8b") as t:`` gives a
    :class:`~infphys.endpoint.Target` (``t.base_url``, ``t.model``, ``t.chat_path``, and
    ``t.simulator``: a :class:`SimHandle`); the server stops when the block ends, and a warning
    is logged if it could not keep up with the wall clock.

    Args:
        gpu, model: catalog names (ignored when ``config`` is given).
        config: a full engine configuration.
        served_model_name, time_scale, api_key, max_queue: see :class:`SimServer`.
        host, port: where to listen (default: loopback, a free port).
        process: run the server in a child process instead of a thread. The server and a
            measuring client in this process then use two cores and two interpreter locks, so
            it keeps up with about 4× the concurrency (``benchmarks/bench_sim.py``); its lag
            figures are then read from ``/metrics`` (``t.simulator.server`` is None). Starting
            takes a second or two.
        log_lag: log lag warnings (False, as labs do: the server only counts them, and
            ``t.lag_note()`` gives one sentence to show).
        replicas, prefill_replicas, router: a fleet behind one endpoint (see
            :class:`~infphys.sim.server.SimServer`).
        settings: other :class:`EngineConfig` fields (``weights_precision``, ``tp``,
            ``max_num_seqs``, …).
    """
    cfg = config if config is not None else EngineConfig.build(gpu, model, **settings)
    if config is not None and settings:
        cfg = config.with_(**settings)
    non_negative("port", port)
    server = SimServer(
        cfg,
        served_model_name=served_model_name,
        time_scale=time_scale,
        api_key=api_key,
        max_queue=max_queue,
        log_lag=log_lag,
        replicas=replicas,
        prefill_replicas=prefill_replicas,
        router=router,
    )
    host = _check_host(host)
    if process:
        with _serve_process(server, host, int(port)) as target:
            yield target
        return
    thread = _ServerThread(server, host, int(port))
    # The server shares the GIL with the caller's threads (a measuring client, a notebook).
    # Python hands the GIL over every 5 ms by default, so a step due now could wait 5 ms behind
    # a busy client thread; a 0.5 ms interval keeps deliveries on time.
    switch_s = sys.getswitchinterval()
    sys.setswitchinterval(min(switch_s, SWITCH_INTERVAL_S))
    try:
        thread.start()
    except BaseException:
        sys.setswitchinterval(switch_s)
        raise
    target = _target(host, thread.port, server, in_process=True)
    try:
        yield target
    finally:
        thread.stop()
        sys.setswitchinterval(switch_s)
        st = server.stats
        if log_lag and not st.kept_up:
            log.warning(
                "the simulated server did not keep up with the wall clock: %d of %d steps late "
                "(max %.1f ms), %d stalls totalling %.2f s; latencies measured against it "
                "include this lag",
                st.late_steps,
                st.steps,
                1e3 * st.max_lag_s,
                st.rebases,
                st.stall_s_total,
            )


@contextlib.contextmanager
def _serve_process(server: SimServer, host: str, port: int) -> Iterator[Target]:
    """``server``'s settings served by ``python -m infphys.sim._child`` until the block ends.

    The settings (API key included) go to the child on its standard input, never on its
    command line, which any user of the machine can read (``ps``).
    """
    import infphys

    spec = {
        "config": server.config.to_dict(),
        "server": {
            "served_model_name": server.served_model_name,
            "time_scale": server.time_scale,
            "api_key": server.api_key,
            "max_queue": server.max_queue,
            "lag_tolerance_s": server.lag_tolerance_s,
            "rebase_lag_s": server.rebase_lag_s,
            "log_lag": server.log_lag,
            "replicas": len(server.replicas) - server.prefill_replicas,
            "prefill_replicas": server.prefill_replicas,
            "router": server.router,
            "seed": server.seed,
        },
        "host": host,
        "port": port,
    }
    root = os.path.dirname(os.path.dirname(os.path.abspath(infphys.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    proc = subprocess.Popen(
        [sys.executable, "-m", "infphys.sim._child"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(spec) + "\n")
        proc.stdin.close()
        line = proc.stdout.readline()
        if not line.startswith("port "):
            proc.wait(timeout=30)
            raise RuntimeError(
                f"the simulated server process did not start (exit code {proc.returncode})"
            )
        bound = int(line.split()[1])
        yield _target(host, bound, server, in_process=False)
    finally:
        end_process(proc, 15.0)
        if proc.stdout is not None:
            proc.stdout.close()


def run_server(
    server: SimServer,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    on_ready: Any = None,
) -> None:
    """Serve in the foreground until interrupted (Ctrl-C); ``on_ready(port)`` once listening."""
    _check_host(host)

    async def main() -> None:
        bound = await server.start(host, port)
        try:
            if on_ready is not None:
                on_ready(bound)
            await asyncio.Event().wait()
        finally:
            await server.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
