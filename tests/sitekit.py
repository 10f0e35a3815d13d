"""The course site for the browser tests: built once per tree, served on loopback, in chromium.

:func:`build_site` runs ``mkdocs build --strict`` into a folder of the system's temporary
directory named by a hash of everything the build reads (``docs/``, ``labs/``, ``notebooks/``,
``infphys/``, ``mkdocs.yml``, ``pyproject.toml``, and the versions of Python, mkdocs,
mkdocs-material and marimo). An exclusive lock on that folder's lock file is held while it builds,
so two pytest-xdist workers never build the same tree at once: the second one waits, then reads
the first one's site (and its build log). A later session on an unchanged tree reuses it too;
any edit to a file the build reads gives a new folder and a new build.

The site is built for :data:`BUILD_URL`. Each worker serves it on a free port of 127.0.0.1
(:func:`serve`), and the one file that names the build address to the browser, ``sitemap.xml``
(mkdocs-material's instant navigation follows only links whose address it lists), is sent with
that address replaced by the worker's own. Example::

    site = build_site()                      # e.g. 35 s the first time, 0.3 s after
    with serve(site) as served:
        print(served.base_url, len(served.pages))  # http://127.0.0.1:41234/ 47

:class:`Browser` and :class:`SitePage` are Debian's chromium driven by Playwright (never
``playwright install``), recording every request that leaves 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import pytest

REPO = Path(__file__).resolve().parents[1]
#: The address the site is built for: the discard port, where nothing answers, so a page that
#: fetched its own absolute address instead of a relative one would fail the console check.
BUILD_URL = "http://127.0.0.1:9/"
#: What the build reads, besides the installed packages' versions below.
BUILD_INPUTS = ("docs", "labs", "notebooks", "infphys", "mkdocs.yml", "pyproject.toml")
BUILD_PACKAGES = ("mkdocs", "mkdocs-material", "mkdocs-jupyter", "mkdocstrings", "marimo")
#: Environment variables the build reads (``INFPHYS_SNAPSHOTS=0`` skips the lab snapshots).
BUILD_ENV = ("INFPHYS_SNAPSHOTS",)
#: Built sites of other trees older than this are removed when a new one is built, seconds.
STALE_S = 24 * 3600
#: How long any browser step (a load, typesetting the maths, drawing the charts) may take
#: before a test gives up, ms: a guard against a hang, generous for a busy 2-core machine
#: (Playwright's own 30 s default once ran out there while marimo snapshots booted).
DRAW_TIMEOUT_MS = 120_000
#: How often a wait re-checks its condition, ms. Playwright's default re-runs it on every
#: animation frame (60 a second, in each open tab): a check that walks every marimo-plotly
#: shadow root, in four tabs at 60 Hz, took CPU from the drawing itself.
POLL_MS = 200


def missing(what: str) -> NoReturn:
    """Skip (a user's machine) or fail (CI) because ``what`` is not installed."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required in CI (run .ci/install-browser)")
    pytest.skip(f"{what} is not installed (bash .ci/install-browser installs chromium)")


# --- the build -------------------------------------------------------------------------------


@dataclass
class BuiltSite:
    """A finished ``mkdocs build --strict``: its folder and what it printed."""

    root: Path
    log: str


def tree_key(repo: Path = REPO) -> str:
    """A hash of every file the site build reads, and the versions of the tools that build it."""
    h = hashlib.sha256(sys.version.encode())
    for name in BUILD_PACKAGES:
        try:
            h.update(f"{name} {importlib.metadata.version(name)}".encode())
        except importlib.metadata.PackageNotFoundError:
            h.update(f"{name} -".encode())
    for name in BUILD_ENV:
        h.update(f"{name}={os.environ.get(name)}".encode())
    for top in BUILD_INPUTS:
        base = repo / top
        paths = [base] if base.is_file() else sorted(base.rglob("*"))
        for path in paths:
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                h.update(path.relative_to(repo).as_posix().encode())
                h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:20]


def _remove_stale(keep: Path) -> None:
    now = time.time()
    for other in keep.parent.glob("infphys-test-site-*"):
        if other != keep and other.is_dir() and now - other.stat().st_mtime > STALE_S:
            shutil.rmtree(other, ignore_errors=True)


def build_site(repo: Path = REPO, timeout_s: float = 600) -> BuiltSite:
    """The site of this tree, built strict (or the build another worker or session made of it).

    Fails the calling test, with mkdocs' output, if the build fails.
    """
    import fcntl  # POSIX only; imported here so that conftest.py imports this module anywhere

    folder = Path(tempfile.gettempdir()) / f"infphys-test-site-{tree_key(repo)}"
    folder.mkdir(exist_ok=True)
    root, log_path = folder / "site", folder / "build.log"
    with open(folder / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not (log_path.is_file() and (root / "sitemap.xml").is_file()):
            _remove_stale(folder)
            partial = folder / "site.partial"
            shutil.rmtree(partial, ignore_errors=True)
            shutil.rmtree(root, ignore_errors=True)
            env = {**os.environ, "INFPHYS_SITE_URL": BUILD_URL, "NO_MKDOCS_2_WARNING": "1"}
            proc = subprocess.run(
                [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(partial)],
                cwd=repo,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout_s,
            )
            log = proc.stdout + proc.stderr
            if proc.returncode != 0:
                pytest.fail(f"mkdocs build --strict failed (exit {proc.returncode}):\n{log}")
            partial.rename(root)
            log_path.write_text(log, encoding="utf-8")
        os.utime(folder)
        return BuiltSite(root=root, log=log_path.read_text(encoding="utf-8"))


# --- serving it --------------------------------------------------------------------------------


@dataclass
class Site:
    """A built site served on loopback: its folder, address, build log and sitemap's pages."""

    root: Path
    base_url: str
    log: str
    pages: list[str] = field(default_factory=list)


class _SiteHandler(SimpleHTTPRequestHandler):
    """Serves the folder; ``sitemap.xml`` names the address it is served from, not the build's."""

    base_url = ""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if urlsplit(self.path).path != "/sitemap.xml":
            super().do_GET()
            return
        body = Path(self.translate_path("/sitemap.xml")).read_text("utf-8")
        data = body.replace(BUILD_URL, self.base_url).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _QuietServer(ThreadingHTTPServer):
    """Says nothing when a browser closes a tab while a file is still being sent to it."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


@contextlib.contextmanager
def serve(built: BuiltSite) -> Iterator[Site]:
    """Serve ``built`` on a free port of 127.0.0.1 until the block ends."""
    handler_class = type("Handler", (_SiteHandler,), {})
    handler = functools.partial(handler_class, directory=str(built.root))
    server = _QuietServer(("127.0.0.1", 0), handler)
    base_url = f"http://127.0.0.1:{server.server_address[1]}/"
    handler_class.base_url = base_url
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        sitemap = ET.parse(built.root / "sitemap.xml").getroot()
        ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
        pages = [
            (loc.text or "").replace(BUILD_URL, base_url)
            for loc in sitemap.findall("s:url/s:loc", ns)
        ]
        yield Site(root=built.root, base_url=base_url, log=built.log, pages=pages)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def lab_snapshots(site: Site) -> dict[str, tuple[str, int]]:
    """Each lab's snapshot in the built site: lab page URL → (snapshot path, its plotly figures)."""
    found: dict[str, tuple[str, int]] = {}
    for lab in sorted((REPO / "labs").glob("[0-9][0-9]_*.py")):
        snapshot = site.root / "labs" / "snapshots" / f"{lab.stem}.html"
        assert snapshot.is_file(), f"no snapshot of {lab.name} in the site"
        page = next((site.root / "labs").glob(f"{lab.name[:2]}-*/index.html"), None)
        assert page is not None, f"no page for {lab.name} under labs/"
        url = site.base_url + page.parent.relative_to(site.root).as_posix() + "/"
        found[url] = (
            f"labs/snapshots/{lab.stem}.html",
            snapshot.read_text("utf-8").count("marimo-plotly data-figure="),
        )
    return found


# --- the browser -------------------------------------------------------------------------------


def labs_browser() -> Any:
    """``benchmarks/labs_browser.py`` (chromium's path and flags, shared with the labs test)."""
    module = sys.modules.get("labs_browser")
    if module is None:
        path = REPO / "benchmarks" / "labs_browser.py"
        spec = importlib.util.spec_from_file_location("labs_browser", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["labs_browser"] = module
        spec.loader.exec_module(module)
    return module


@dataclass
class Browser:
    """One chromium and a context that records every request leaving loopback (each fails)."""

    context: Any
    external: list[str]


@contextlib.contextmanager
def open_browser() -> Iterator[Browser]:
    """Chromium with a fresh profile; skips (fails in CI) without chromium or Playwright."""
    lb = labs_browser()
    if lb.chromium_path() is None:
        missing("Debian's chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright (pip install playwright; never `playwright install`)")
    # A fresh profile on disk: its compiled-code cache spares each page recompiling plotly.js,
    # MathJax and marimo's frontend (benchmarks/labs_browser.py, chromium_context).
    viewport = {"width": 1280, "height": 900}
    with sync_playwright() as p, lb.chromium_context(p, viewport=viewport) as context:
        context.set_default_timeout(DRAW_TIMEOUT_MS)
        yield Browser(context=context, external=lb.guard_loopback(context))


#: True once a page's maths is typeset and each of its charts drawn (or failed, reported below).
SETTLED_JS = """() => {
    const math = document.querySelectorAll('.arithmatex').length;
    const typeset = document.querySelectorAll('.arithmatex mjx-container').length;
    const charts = [...document.querySelectorAll('div.infphys-chart')];
    return (math === 0 || typeset >= math) &&
           charts.every(d => ['true', 'error'].includes(d.dataset.rendered));
}"""
#: What a settled page holds: formulas, typeset formulas, charts, drawn charts.
FOUND_JS = """() => ({
    math: document.querySelectorAll('.arithmatex').length,
    typeset: document.querySelectorAll('.arithmatex mjx-container').length,
    charts: document.querySelectorAll('div.infphys-chart').length,
    drawn: [...document.querySelectorAll('div.infphys-chart')].filter(
        d => d.dataset.rendered === 'true' && d.querySelector('.main-svg')).length,
})"""


class SitePage:
    """A page with its console errors and uncaught exceptions collected."""

    def __init__(self, browser: Browser) -> None:
        self.page = browser.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))

    def __enter__(self) -> SitePage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.page.close()

    def settle(self) -> dict[str, int]:
        """Wait until the maths is typeset and every chart drawn; return what was found."""
        self.page.wait_for_function(SETTLED_JS, timeout=DRAW_TIMEOUT_MS, polling=POLL_MS)
        result: dict[str, int] = self.page.evaluate(FOUND_JS)
        return result

    def lines(self, chart: str) -> list[str]:
        """The drawn paths of a chart's line traces (what the reader sees)."""
        paths: list[str] = self.page.eval_on_selector_all(
            f"{chart} .scatterlayer .trace path.js-line", "els => els.map(e => e.getAttribute('d'))"
        )
        return paths

    def title(self, chart: str) -> str:
        text: str = self.page.eval_on_selector(f"{chart} .gtitle", "e => e.textContent")
        return text


#: Pages :func:`check_pages` keeps open at once: one typesets or draws while another loads.
PAGES_AT_ONCE = 4


def _ready(p: SitePage, ready_js: str, arg: Any) -> bool:
    """Whether ``p`` has loaded and ``ready_js(arg)`` holds (False while it is navigating)."""
    from playwright.sync_api import Error

    try:
        return bool(
            p.page.evaluate("() => document.readyState") == "complete"
            and p.page.evaluate(ready_js, arg)
        )
    except Error:  # the page's context was replaced by its navigation: not yet
        return False


def check_pages(
    browser: Browser,
    items: Sequence[tuple[str, Any]],
    check: Callable[[SitePage, str, Any], None],
    *,
    ready_js: str = SETTLED_JS,
    at_once: int = PAGES_AT_ONCE,
) -> None:
    """Open each ``(url, arg)`` of ``items`` in its own tab, ``at_once`` tabs at a time (the next
    page starts as soon as one is done, not when a whole batch is); once a page has loaded and
    ``ready_js(arg)`` holds, call ``check(page, url, arg)``, then require that the page logged no
    console error. Fails, with what the page holds, when one is not ready within twice
    :data:`DRAW_TIMEOUT_MS` of its navigation (a guard against a hang).

    Example: ``check_pages(browser, [(url, None) for url in site.pages], check)`` with a
    ``check`` that reads ``p.page.evaluate(FOUND_JS)``.
    """
    pending = list(items)
    opened: list[tuple[SitePage, str, Any, float]] = []
    try:
        while pending or opened:
            while pending and len(opened) < at_once:
                url, arg = pending.pop(0)
                p = SitePage(browser)
                p.page.goto(url, wait_until="commit")
                opened.append((p, url, arg, time.monotonic() + 2 * DRAW_TIMEOUT_MS / 1000))
            done = next((o for o in opened if _ready(o[0], ready_js, o[2])), None)
            if done is None:
                for p, url, _, deadline in opened:
                    if time.monotonic() > deadline:
                        pytest.fail(f"{url}: not ready in time: {p.page.evaluate(FOUND_JS)}")
                opened[0][0].page.wait_for_timeout(POLL_MS)  # Playwright handles events meanwhile
                continue
            opened.remove(done)
            p, url, arg, _ = done
            try:
                check(p, url, arg)
                assert not p.errors, f"{url}: console errors: {p.errors}"
            finally:
                p.page.close()
    finally:
        for p, *_ in opened:
            p.page.close()


@contextlib.contextmanager
def visit(browser: Browser, url: str) -> Iterator[SitePage]:
    """``url`` loaded in a new tab. When the block ends (without an error of its own): the page
    logged no console error, and no request of the browser left 127.0.0.1."""
    with SitePage(browser) as p:
        p.page.goto(url, wait_until="load")
        yield p
        assert not p.errors, f"{url}: console errors: {p.errors}"
    assert not browser.external, f"requests left 127.0.0.1: {browser.external}"
