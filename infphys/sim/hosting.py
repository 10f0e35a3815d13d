"""Running a simulated server: in a background thread, a child process, or the foreground.

:func:`serve` starts a :class:`~infphys.sim.server.SimServer` on a free loopback port for the
length of a ``with`` block and yields a :class:`SimTarget`, which a measuring client accepts
wherever it expects a :class:`infphys.measure.Target`. :func:`run_server` serves in the
foreground until Ctrl-C (``infphys sim serve``).

Worked example (a lab cell)::

    with serve(gpu="h200", model="llama-3.1-8b", time_scale=2) as t:
        t.base_url         # 'http://127.0.0.1:<port>'
        t.model            # 'meta/llama-3.1-8b-instruct'
        t.server.stats     # how well it kept up with the wall clock

In a thread the server shares the interpreter lock with the caller; with ``process=True`` it
runs in ``python -m infphys.sim._child`` and keeps up with about 4× the concurrency.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from infphys._check import non_negative
from infphys.catalog import GPUSpec, ModelSpec
from infphys.sim.config import EngineConfig
from infphys.sim.server import SimServer

__all__ = ["SWITCH_INTERVAL_S", "SimTarget", "run_server", "serve"]

log = logging.getLogger("infphys.sim")

#: GIL switch interval while an embedded server runs in a background thread (seconds).
SWITCH_INTERVAL_S = 0.0005


@dataclass(frozen=True)
class SimTarget:
    """Where an embedded simulated server listens: what a measuring client needs.

    It has the attributes and methods of :class:`infphys.measure.Target` that the measuring
    client uses (``base_url``, ``chat_path``, ``model``, ``api_key``, ``chat_url``, ``url``,
    ``headers``, ``public_dict``, ``redact``), so it can be passed where a target is expected.

    Attributes:
        base_url: ``http://127.0.0.1:<port>``.
        model: the served model name to send.
        chat_path, completions_path: API paths.
        api_key: the key the server requires (None: none).
        time_scale: wall seconds per simulated second (divide measured times by it).
        config: the simulated engine.
        server: the running server (its ``stats`` say whether it kept up).
    """

    base_url: str
    model: str
    chat_path: str = "/v1/chat/completions"
    completions_path: str = "/v1/completions"
    api_key: str | None = None
    time_scale: float = 1.0
    config: EngineConfig | None = field(default=None, repr=False)
    server: SimServer | None = field(default=None, repr=False, compare=False)

    def lag_note(self) -> str | None:
        """One sentence when this (in-process) server fell behind the wall clock, else None."""
        return self.server.stats.lag_note() if self.server is not None else None

    @property
    def chat_url(self) -> str:
        return self.base_url + self.chat_path

    def url(self, path: str) -> str:
        return self.base_url + path

    def headers(self) -> dict[str, str]:
        h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if self.api_key:
            h["Authorization"] = f"Bearer {self.api_key}"
        return h

    def public_dict(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "chat_path": self.chat_path,
            "model": self.model,
            "api_key_set": self.api_key is not None,
            "simulated": True,
            "time_scale": self.time_scale,
        }

    def redact(self, text: str) -> str:
        """``text`` with the API key (if any) replaced by ``***``."""
        if self.api_key and self.api_key in text:
            return text.replace(self.api_key, "***")
        return text

    def describe(self) -> str:
        """One line: which simulated GPU and model answer where."""
        cfg = self.config
        what = f"{cfg.model.name} on {cfg.tp}× {cfg.gpu.name}" if cfg is not None else self.model
        scale = f", time ×{self.time_scale:g}" if self.time_scale != 1 else ""
        return f"simulated {what} at {self.base_url} (model {self.model}{scale})"


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
    **settings: Any,
) -> Iterator[SimTarget]:
    """Run a simulated server on a free loopback port, in a background thread or a process.

    ``with infphys.sim.serve(gpu="h200", model="llama-3.1-8b") as t:`` gives a
    :class:`SimTarget` (``t.base_url``, ``t.model``, ``t.chat_path``); the server stops when the
    block ends, and a warning is logged if it could not keep up with the wall clock.

    Args:
        gpu, model: catalog names (ignored when ``config`` is given).
        config: a full engine configuration.
        served_model_name, time_scale, api_key, max_queue: see :class:`SimServer`.
        host, port: where to listen (default: loopback, a free port).
        process: run the server in a child process instead of a thread. The server and a
            measuring client in this process then use two cores and two interpreter locks, so
            it keeps up with about 4× the concurrency (``benchmarks/bench_sim.py``); its lag
            figures are then read from ``/metrics`` (``t.server`` is None). Starting takes a
            second or two.
        log_lag: log lag warnings (False, as labs do: the server only counts them, and
            :meth:`SimTarget.lag_note` gives one sentence to show).
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
    target = SimTarget(
        base_url=f"http://{host}:{thread.port}",
        model=server.served_model_name,
        api_key=api_key,
        time_scale=server.time_scale,
        config=cfg,
        server=server,
    )
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
def _serve_process(server: SimServer, host: str, port: int) -> Iterator[SimTarget]:
    """``server``'s settings served by ``python -m infphys.sim._child`` until the block ends."""
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
        },
        "host": host,
        "port": port,
    }
    root = os.path.dirname(os.path.dirname(os.path.abspath(infphys.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    proc = subprocess.Popen(
        [sys.executable, "-m", "infphys.sim._child", json.dumps(spec)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("port "):
            proc.wait(timeout=30)
            raise RuntimeError(
                f"the simulated server process did not start (exit code {proc.returncode})"
            )
        bound = int(line.split()[1])
        yield SimTarget(
            base_url=f"http://{host}:{bound}",
            model=server.served_model_name,
            api_key=server.api_key,
            time_scale=server.time_scale,
            config=server.config,
            server=None,
        )
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
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
