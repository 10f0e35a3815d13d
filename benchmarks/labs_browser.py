"""Open the labs in a real browser as a learner does: shared by the benchmark and the browser test.

:class:`LabsServer` starts ``infphys labs --headless`` on a free loopback port, in its own process
group, and stops that whole group (marimo, its kernels, the simulator) on exit, on an exception
and on SIGTERM/SIGHUP. :func:`start_lab` opens one lab in a Playwright page and :func:`wait_lab`
reports how long after the navigation started the first cell output and the first plotly chart
appeared.
:func:`guard_loopback` makes a browser context record every request that would leave 127.0.0.1
(chromium's flags, :data:`CHROMIUM_ARGS`, make each one fail at once).

Used by ``benchmarks/bench_labs.py`` (times every lab) and ``tests/test_labs_browser.py`` (the
main job, end to end). Debian's ``chromium`` is driven through Playwright; never run
``playwright install``. Example::

    with LabsServer() as server, browser_context() as (context, offsite):
        timing = wait_lab(start_lab(context, server, "03_kv_cache.py"), server, "03_kv_cache.py")
        print(timing.first_output_s, offsite)   # e.g. 6.1 []
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

from infphys._closing import Closing

ROOT = Path(__file__).resolve().parents[1]
LABS_DIR = ROOT / "labs"
#: Headless flags for Debian's chromium run as root on a shared machine, with a fresh profile.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Every request that is not for loopback (which chromium never sends through a proxy) goes
    # to a proxy on the discard port, where nothing answers, and fails at once: the browser
    # cannot reach anything but this machine, whatever :func:`guard_loopback` records.
    "--proxy-server=http://127.0.0.1:9",
]
#: Nothing listens on the discard port, so ``infphys labs`` falls back to its simulator.
NO_SERVER_URL = "http://127.0.0.1:9"
_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}

#: Runs in every page before marimo's own scripts: notes when the first cell output and the
#: first drawn plotly chart appear (ms since the navigation started), looking through the
#: shadow roots marimo's widgets use.
PROBE_JS = r"""
(() => {
  const seen = { firstOutput: null, firstChart: null };
  window.__infphysProbe = seen;
  const deep = (root, sel, out) => {
    root.querySelectorAll(sel).forEach((e) => out.push(e));
    root.querySelectorAll("*").forEach((e) => { if (e.shadowRoot) deep(e.shadowRoot, sel, out); });
    return out;
  };
  const filled = (e) =>
    (e.innerText || "").trim().length > 0 || e.querySelector("marimo-ui-element, svg, img, table");
  const tick = () => {
    try {
      const outputs = [...document.querySelectorAll(".output-area")];
      if (seen.firstOutput === null && outputs.some(filled)) {
        seen.firstOutput = performance.now();
      }
      if (seen.firstChart === null && deep(document, ".main-svg", []).length > 0) {
        seen.firstChart = performance.now();
      }
    } catch (err) {
      seen.error = String(err);
    }
    if (seen.firstOutput !== null && seen.firstChart !== null) clearInterval(timer);
  };
  const timer = setInterval(tick, 50);
})();
"""


#: When the page's load event ended, ms since its navigation started.
LOADED_MS_JS = "performance.getEntriesByType('navigation')[0].loadEventEnd"


def chromium_path() -> str | None:
    """Debian's chromium, if installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_status(url: str, timeout_s: float = 2.0) -> int | None:
    """The HTTP status ``url`` answers with (proxies bypassed), or None if nothing answers."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout_s) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return None


@dataclass
class LabsServer(Closing):
    """``infphys labs --headless`` on 127.0.0.1, stopped with everything it started on exit.

    Args:
        run: open the labs as apps (``--run``) instead of the editor.
        port: the port (default: a free one).
        env: extra environment; ``NIM_BASE_URL`` defaults to a port where nothing answers, so the
            embedded simulator is what gets measured.
        labs_dir: the notebooks (default: a copy of ``labs/``, removed on stop, because marimo's
            editor rewrites the files it opens).
        start_timeout_s: how long marimo may take to answer.
    """

    run: bool = False
    port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    start_timeout_s: float = 90.0
    labs_dir: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    _copy: tempfile.TemporaryDirectory[str] | None = None
    log_path: Path = field(
        default_factory=lambda: Path(tempfile.mkstemp(prefix="infphys-labs-", suffix=".log")[1])
    )
    _old_handlers: dict[int, Any] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, lab_file: str) -> str:
        """The page of one lab (``03_kv_cache.py``)."""
        return f"{self.base_url}/?file={lab_file}"

    def log(self) -> str:
        """What ``infphys labs`` has printed so far ("" once closed: the log is removed)."""
        return self.log_path.read_text(errors="replace") if self.log_path.is_file() else ""

    def start(self) -> LabsServer:
        env = {**os.environ, "NIM_BASE_URL": NO_SERVER_URL, **self.env}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        cmd = [sys.executable, "-m", "infphys", "labs", "--headless", "--port", str(self.port)]
        if self.labs_dir is None:
            # marimo's editor saves what it opens (in its own layout): work on a copy.
            self._copy = tempfile.TemporaryDirectory(prefix="infphys-labs-")
            self.labs_dir = Path(self._copy.name) / "labs"
            shutil.copytree(LABS_DIR, self.labs_dir, ignore=shutil.ignore_patterns("__*"))
        cmd += ["--labs-dir", str(self.labs_dir)] + (["--run"] if self.run else [])
        self._trap_signals()
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                cmd,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.start_timeout_s
        while http_status(self.base_url + "/") != 200:
            if self.proc.poll() is not None:
                raise RuntimeError(f"infphys labs exited {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"marimo did not answer in {self.start_timeout_s:g} s:\n" + self.log()
                )
            time.sleep(0.2)
        return self

    def close(self) -> None:
        """SIGINT to the whole process group, then SIGKILL what is left; the copy of the labs
        and the log are removed (idempotent)."""
        proc, self.proc = self.proc, None
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            # Kernels or a simulator that outlived their parent are in the same group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        if self._copy is not None:
            self._copy.cleanup()
            self._copy, self.labs_dir = None, None
        self.log_path.unlink(missing_ok=True)
        for signum, handler in self._old_handlers.items():
            signal.signal(signum, handler)
        self._old_handlers.clear()

    def _trap_signals(self) -> None:
        """SIGTERM and SIGHUP raise SystemExit here, so ``finally`` blocks stop the server."""
        if self._old_handlers or not _main_thread():
            return

        def _exit(signum: int, frame: FrameType | None) -> None:
            raise SystemExit(128 + signum)

        for signum in (signal.SIGTERM, signal.SIGHUP):
            self._old_handlers[signum] = signal.signal(signum, _exit)

    def __enter__(self) -> LabsServer:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def chromium_context(playwright: Any, **options: Any) -> Iterator[Any]:
    """Debian's chromium, headless, as one browser context over a fresh temporary profile
    (removed on exit); ``options`` go to Playwright (``viewport=``, ``service_workers=``, ...).

    A profile on disk keeps chromium's HTTP cache and its cache of compiled scripts, which an
    incognito context (``browser.new_context()``) does not: every page after the first that
    loads plotly.js, MathJax or marimo's frontend reuses their compiled code. Measured here, 13
    lab pages with snapshots and 6 other pages opened one after another: 52-53 s incognito,
    38-45 s with a profile.
    """
    path = chromium_path()
    if path is None:
        raise RuntimeError("chromium is not installed")
    with tempfile.TemporaryDirectory(prefix="infphys-chromium-") as profile:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=path, args=CHROMIUM_ARGS, **options
        )
        try:
            yield context
        finally:
            context.close()


#: Every URL that is neither on loopback nor ``data:``/``blob:``.
OFFSITE_URL = re.compile(
    r"^(?!(?:data:|blob:|https?://(?:127\.0\.0\.1|localhost|\[::1\])(?::[0-9]+)?(?:[/?#]|$)))"
)


def guard_loopback(context: Any) -> list[str]:
    """Record every request and websocket of ``context`` that would leave 127.0.0.1.

    Returns the list the offending URLs are appended to (check it is empty at the end). The
    requests are not held back here: the proxy in :data:`CHROMIUM_ARGS` fails them. Recording
    them from events rather than intercepting them (``context.route``) matters for speed:
    Playwright turns chromium's HTTP cache off while it intercepts, and every request of a
    page (a marimo page makes ~250) then waited on the driver and was fetched again. Measured
    here, the 13 lab pages with snapshots took 95 CPU-s intercepted and 74 CPU-s recorded.
    """
    offsite: list[str] = []

    def _request(request: Any) -> None:
        if OFFSITE_URL.match(request.url):
            offsite.append(request.url)

    context.on("request", _request)

    def _websocket(ws: Any) -> None:
        if urlsplit(ws.url).hostname not in _LOOPBACK:
            offsite.append(ws.url)

    context.on("page", lambda page: page.on("websocket", _websocket))
    return offsite


@dataclass
class LabTiming:
    """Seconds from the start of the navigation to each milestone (None: not within the wait)."""

    lab: str
    loaded_s: float | None = None
    first_output_s: float | None = None
    first_chart_s: float | None = None


def start_lab(context: Any, server: LabsServer, lab_file: str, *, timeout_s: float = 60.0) -> Any:
    """A new page navigating to one lab, returned as soon as the server answers (the page goes
    on loading): open one or several labs, then :func:`wait_lab` for each (the caller closes
    the page)."""
    page = context.new_page()
    page.goto(server.url(lab_file), wait_until="commit", timeout=timeout_s * 1e3)
    return page


def wait_lab(
    page: Any, server: LabsServer, lab_file: str, *, timeout_s: float = 60, want_chart: bool = False
) -> LabTiming:
    """Wait for a lab's page to load and show its first output (and its first chart if
    ``want_chart``); the timings count from the start of the page's navigation."""
    timing = LabTiming(lab_file)
    page.wait_for_load_state("load", timeout=timeout_s * 1e3)
    # The load event's time, not now: the page may have loaded while another lab was waited on.
    timing.loaded_s = page.evaluate(LOADED_MS_JS) / 1e3
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        seen = page.evaluate("window.__infphysProbe || {}")
        if seen.get("firstOutput") is not None:
            timing.first_output_s = seen["firstOutput"] / 1e3
        if seen.get("firstChart") is not None:
            timing.first_chart_s = seen["firstChart"] / 1e3
        if timing.first_output_s is not None and (not want_chart or timing.first_chart_s):
            break
        if server.proc is not None and server.proc.poll() is not None:
            raise RuntimeError(f"infphys labs exited:\n{server.log()}")
        page.wait_for_timeout(100)
    return timing


@contextlib.contextmanager
def browser_context() -> Iterator[tuple[Any, list[str]]]:
    """A chromium context guarded to loopback (service workers blocked so every request is
    seen by the guard), with :data:`PROBE_JS` in every page, and the list of offsite requests."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw, chromium_context(pw, service_workers="block") as context:
        context.add_init_script(PROBE_JS)
        yield context, guard_loopback(context)
