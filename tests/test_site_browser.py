"""The course site, built with ``mkdocs build --strict`` and opened in a real browser, offline.

The site is built once per session into a temporary folder and served on 127.0.0.1. Debian's
``chromium``, driven by Playwright (never ``playwright install``), then opens every page of the
sitemap and checks: no console error; maths typeset by the vendored MathJax; every plotly chart
drawn; a slider and a dropdown change what a chart draws; instant navigation redraws charts and
maths; and not one request leaves 127.0.0.1 (each is recorded and aborted, and the test fails).

Where chromium or Playwright is missing the browser tests skip with the reason, except under CI
(``CI`` set), where that is a failure. ``.ci/install-browser`` installs chromium.
"""

from __future__ import annotations

import functools
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import pytest

REPO = Path(__file__).resolve().parents[1]
#: A bound on each test, setup included: the first one builds the site, which with a cold
#: snapshot cache on a busy two-core machine outlasts pytest's 300 s default (the build's own
#: subprocess limit, 600 s, then reports first).
pytestmark = pytest.mark.timeout(900)
sys.path.insert(0, str(REPO / "benchmarks"))
from labs_browser import CHROMIUM_ARGS  # noqa: E402  (the labs' browser checks use the same)

#: How long any browser step (a load, typesetting the maths, drawing the charts) may take
#: before the test gives up, ms: a guard against a hang, generous for a busy 2-core machine
#: (Playwright's own 30 s default once ran out there while marimo snapshots booted).
DRAW_TIMEOUT_MS = 120_000
#: How often a wait re-checks its condition, ms. Playwright's default re-runs it on every
#: animation frame (60 a second, in each open tab): the snapshot test's check walks every
#: marimo-plotly shadow root, and four tabs polling at 60 Hz took CPU from the drawing itself.
POLL_MS = 200
#: Lab pages opened at once by the snapshot test.
SNAPSHOT_PAGES_AT_ONCE = 4
#: Pages opened at once by the every-page test.
PAGES_AT_ONCE = 4


def _missing(what: str) -> NoReturn:
    """Skip (a user's machine) or fail (CI) because ``what`` is not installed."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required in CI (run .ci/install-browser)")
    pytest.skip(f"{what} is not installed (bash .ci/install-browser installs chromium)")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class Site:
    """A built site served on loopback."""

    root: Path
    base_url: str
    log: str
    pages: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    """Build the site once (strict) and serve it on a free loopback port."""
    if not os.environ.get("CI"):
        pytest.importorskip("mkdocs")
    with tempfile.TemporaryDirectory(prefix="infphys-site-") as tmp:
        root = Path(tmp) / "site"
        root.mkdir()
        handler = functools.partial(_QuietHandler, directory=str(root))
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        base_url = f"http://127.0.0.1:{server.server_address[1]}/"
        env = {**os.environ, "INFPHYS_SITE_URL": base_url, "NO_MKDOCS_2_WARNING": "1"}
        proc = subprocess.run(
            [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(root)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        log = proc.stdout + proc.stderr
        if proc.returncode != 0:
            server.server_close()
            pytest.fail(f"mkdocs build --strict failed (exit {proc.returncode}):\n{log}")
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            sitemap = ET.parse(root / "sitemap.xml").getroot()
            ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
            pages = [loc.text or "" for loc in sitemap.findall("s:url/s:loc", ns)]
            yield Site(root=root, base_url=base_url, log=log, pages=pages)
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


# --- the build, no browser -------------------------------------------------------------------


def test_site_builds_strict(site: Site) -> None:
    # How long the build takes is a benchmark figure (benchmarks/bench_budgets.py, 120 s target).
    assert re.search(r"infphys: site [\d.]+ MB in \d+ files", site.log), site.log
    assert site.pages and site.pages[0] == site.base_url


def test_no_page_references_another_host(site: Site) -> None:
    """Scripts, styles, images and fonts all come from the site itself."""
    pattern = re.compile(
        r"""<(?:script|img|iframe|source)[^>]*\ssrc=["'](https?:)?//"""
        r"""|<link[^>]*rel=["'](?:stylesheet|preload|preconnect|icon)["'][^>]*"""
        r"""href=["'](https?:)?//""",
        re.I,
    )
    offenders = [
        str(p.relative_to(site.root))
        for p in site.root.rglob("*.html")
        if pattern.search(p.read_text(encoding="utf-8"))
    ]
    assert not offenders, f"pages load resources from another host: {offenders}"


def test_assets_are_served_locally(site: Site) -> None:
    plotly_js = site.root / "assets/vendor/plotly/plotly.min.js"
    assert plotly_js.stat().st_size > 1_000_000
    assert (site.root / "assets/vendor/mathjax/tex-svg.js").is_file()
    # plotly.js is generated at build time, never kept in docs/.
    assert not list((REPO / "docs").rglob("plotly*.js"))


def test_every_chart_has_valid_figure_data(site: Site) -> None:
    charts = 0
    for page in site.root.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        for div_id, data in re.findall(
            r"<div class=\"infphys-chart\" id=\"([^\"]+)\"[^>]*data-figure='([^']*)'", text
        ):
            fig = json.loads(html.unescape(data))
            assert fig["data"], f"{page}: chart {div_id} has no traces"
            charts += 1
    assert charts >= 3


def _lab_snapshots(site: Site) -> dict[str, tuple[str, int]]:
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


def test_every_lab_has_a_page_and_an_offline_snapshot(site: Site) -> None:
    """marimo's export, with its frontend served by the site and nothing left on a CDN."""
    snapshots = _lab_snapshots(site)
    assert len(snapshots) == len(list((REPO / "labs").glob("[0-9][0-9]_*.py"))) >= 1
    frontend = site.root / "assets/vendor/marimo/assets"
    assert len(list(frontend.glob("*.js"))) > 100, "marimo's frontend was not copied"
    assert not list(frontend.glob("*.js.map"))
    # marimo's plotly renderer loads MathJax: from the site's vendored copy, not a CDN.
    assert not [js.name for js in frontend.glob("*.js") if "mathjax-full@" in js.read_text("utf-8")]
    for url, (path, figures) in snapshots.items():
        text = (site.root / path).read_text("utf-8")
        assert "cdn.jsdelivr.net" not in text, f"{path} still names marimo's CDN"
        assert "__MARIMO_MOUNT_CONFIG__" in text and figures >= 1, f"{path}: no chart exported"
        page = (site.root / urlsplit(url).path.lstrip("/") / "index.html").read_text("utf-8")
        assert f'src="../snapshots/{path.rsplit("/", 1)[1]}"' in page, f"{url} does not embed it"
        assert "infphys:" not in page, f"{url}: a marker was left unreplaced"
        assert 'class="admonition question"' in page, f"{url}: no exercises listed"


def test_notebook_page_has_its_outputs_and_no_cdn(site: Site) -> None:
    text = (site.root / "notebooks/day3_walkthrough/index.html").read_text("utf-8")
    assert "jp-Notebook" in text and "jp-OutputArea" in text, "not rendered by mkdocs-jupyter"
    assert text.count('class="infphys-chart"') >= 5, "the notebook's plotly outputs are missing"
    for cdn in ("cdnjs.cloudflare.com", "cdn.jsdelivr.net", "cdn.plot.ly", "require.js"):
        assert cdn not in text, f"the notebook page names {cdn}"


# --- in the browser --------------------------------------------------------------------------


@dataclass
class Browser:
    """One Chromium and a context that records every request leaving loopback."""

    context: Any
    external: list[str]


@pytest.fixture(scope="module")
def browser(site: Site) -> Iterator[Browser]:
    exe = shutil.which("chromium")
    if exe is None:
        _missing("Debian's chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright (pip install playwright; never `playwright install`)")
    external: list[str] = []

    def route(r: Any) -> None:
        host = urlsplit(r.request.url).hostname
        if r.request.url.startswith(("data:", "blob:")) or host == "127.0.0.1":
            r.continue_()
        else:
            external.append(r.request.url)
            r.abort()

    # Playwright gives the browser a fresh temporary profile (it refuses --user-data-dir).
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        context = b.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(DRAW_TIMEOUT_MS)
        context.route("**/*", route)
        try:
            yield Browser(context=context, external=external)
        finally:
            context.close()
            b.close()


class _Page:
    """A page with its console errors and uncaught exceptions collected."""

    def __init__(self, browser: Browser) -> None:
        self.page = browser.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))

    def __enter__(self) -> _Page:
        return self

    def __exit__(self, *exc: object) -> None:
        self.page.close()

    def settle(self) -> dict[str, int]:
        """Wait until the maths is typeset and every chart drawn; return what was found."""
        self.page.wait_for_function(
            """() => {
                const math = document.querySelectorAll('.arithmatex').length;
                const typeset = document.querySelectorAll('.arithmatex mjx-container').length;
                const charts = [...document.querySelectorAll('div.infphys-chart')];
                return (math === 0 || typeset >= math) &&
                       charts.every(d => ['true', 'error'].includes(d.dataset.rendered));
            }""",
            timeout=DRAW_TIMEOUT_MS,
            polling=POLL_MS,
        )
        result: dict[str, int] = self.page.evaluate(
            """() => ({
                math: document.querySelectorAll('.arithmatex').length,
                typeset: document.querySelectorAll('.arithmatex mjx-container').length,
                charts: document.querySelectorAll('div.infphys-chart').length,
                drawn: [...document.querySelectorAll('div.infphys-chart')].filter(
                    d => d.dataset.rendered === 'true' && d.querySelector('.main-svg')).length,
            })"""
        )
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


#: What a lab page's snapshot frame gets in the every-page test: each snapshot boots marimo's
#: frontend (seconds of CPU apiece), and test_lab_snapshots_show_their_charts opens them all.
SNAPSHOT_STAND_IN = "<!doctype html><title>snapshot</title><p>opened by the snapshot test</p>"


@pytest.mark.browser
def test_every_page_loads_offline_with_maths_and_charts(site: Site, browser: Browser) -> None:
    seen = {"math": 0, "charts": 0}
    # A few tabs at a time: one page typesets while another loads or draws.
    for start in range(0, len(site.pages), PAGES_AT_ONCE):
        batch = site.pages[start : start + PAGES_AT_ONCE]
        pages = [_Page(browser) for _ in batch]
        try:
            for p, url in zip(pages, batch, strict=True):
                p.page.route(
                    "**/labs/snapshots/*.html",
                    lambda r: r.fulfill(
                        status=200, content_type="text/html", body=SNAPSHOT_STAND_IN
                    ),
                )
                p.page.goto(url, wait_until="commit")
            for p, url in zip(pages, batch, strict=True):
                p.page.wait_for_load_state("load")
                found = p.settle()
                assert found["typeset"] >= found["math"], f"{url}: maths not typeset: {found}"
                assert found["drawn"] == found["charts"], f"{url}: charts not drawn: {found}"
                assert not p.errors, f"{url}: console errors: {p.errors}"
                seen["math"] += found["math"]
                seen["charts"] += found["charts"]
        finally:
            for p in pages:
                p.page.close()
    assert seen["math"] > 0, "no page has maths: the MathJax check checked nothing"
    assert seen["charts"] > 0, "no page has a chart: the chart check checked nothing"
    assert not browser.external, f"requests left 127.0.0.1: {browser.external}"


@pytest.mark.browser
def test_slider_changes_the_plotted_data(site: Site, browser: Browser) -> None:
    chart = "div.infphys-chart[id$='-kv-cliff']"
    with _Page(browser) as p:
        p.page.goto(site.base_url + "reference/figures/", wait_until="load")
        p.settle()
        before, title = p.lines(chart), p.title(chart)
        rail = p.page.locator(f"{chart} .slider-rail-rect").first
        rail.scroll_into_view_if_needed()
        box = rail.bounding_box()
        assert box is not None
        p.page.mouse.click(box["x"] + box["width"] - 2, box["y"] + box["height"] / 2)
        p.page.wait_for_function(
            f't => document.querySelector("{chart} .gtitle").textContent !== t', arg=title
        )
        after = p.lines(chart)
        assert after != before, "moving the slider did not change the drawn lines"
        assert "131,072-token" in p.title(chart)
        assert not p.errors, p.errors
    assert not browser.external, f"requests left 127.0.0.1: {browser.external}"


@pytest.mark.browser
def test_dropdown_changes_the_plotted_data(site: Site, browser: Browser) -> None:
    chart = "div.infphys-chart[id$='-decode-roofline']"
    with _Page(browser) as p:
        p.page.goto(site.base_url + "reference/figures/", wait_until="load")
        p.settle()
        before = p.lines(chart)
        p.page.locator(f"{chart} .updatemenu-header").first.click()
        p.page.locator(f"{chart} .updatemenu-dropdown-button", has_text="All GPUs").click()
        p.page.wait_for_function(
            f"() => document.querySelector(\"{chart} .gtitle\").textContent.includes('by GPU')"
        )
        after = p.lines(chart)
        assert after != before and len(after) >= 4, (len(before), len(after))
        assert not p.errors, p.errors
    assert not browser.external, f"requests left 127.0.0.1: {browser.external}"


@pytest.mark.browser
def test_instant_navigation_draws_charts_and_maths(site: Site, browser: Browser) -> None:
    """Material swaps the page in place: charts and maths must be drawn again."""
    with _Page(browser) as p:
        p.page.goto(site.base_url + "reference/figures/", wait_until="load")
        p.settle()
        p.page.evaluate("() => { window.__sameDocument = true; }")
        p.page.locator("a.md-nav__link[href$='reference/authoring/']:visible").first.click()
        p.page.wait_for_url(re.compile(r"reference/authoring/$"))
        # The URL changes before instant navigation swaps the content in: wait for the new page.
        p.page.wait_for_function(
            "() => (document.querySelector('h1') || {}).textContent?.includes('Writing a page')"
        )
        found = p.settle()
        assert p.page.evaluate("() => window.__sameDocument === true"), "the page reloaded"
        assert found["math"] and found["typeset"] >= found["math"], found
        assert found["charts"] and found["drawn"] == found["charts"], found
        assert not p.errors, p.errors
    assert not browser.external, f"requests left 127.0.0.1: {browser.external}"


@pytest.mark.browser
def test_charts_follow_the_dark_palette(site: Site, browser: Browser) -> None:
    chart = "div.infphys-chart"
    with _Page(browser) as p:
        p.page.goto(site.base_url, wait_until="load")
        p.settle()

        def font() -> str:
            color: str = p.page.eval_on_selector(chart, "d => d._fullLayout.font.color")
            return color

        light = font()
        p.page.evaluate("() => document.body.setAttribute('data-md-color-scheme', 'slate')")
        p.page.wait_for_function(
            "c => document.querySelector('div.infphys-chart')._fullLayout.font.color !== c",
            arg=light,
        )
        assert font() != light
        assert not p.errors, p.errors


@pytest.mark.browser
def test_search_works_offline(site: Site, browser: Browser) -> None:
    with _Page(browser) as p:
        p.page.goto(site.base_url, wait_until="load")
        box = p.page.locator("input.md-search__input")
        results = p.page.locator(".md-search-result__item")
        deadline = time.monotonic() + DRAW_TIMEOUT_MS / 1000
        # The index loads in a web worker; a query typed before it is ready finds nothing.
        while not results.count() and time.monotonic() < deadline:
            box.fill("")
            box.press_sequentially("bandwidth", delay=20)
            p.page.wait_for_timeout(1000)
        assert results.count() > 0, "search found nothing for 'bandwidth'"
        assert not p.errors, p.errors
    assert not browser.external, f"requests left 127.0.0.1: {browser.external}"


@pytest.mark.browser
def test_lab_snapshots_show_their_charts(site: Site, browser: Browser) -> None:
    """Each lab page's snapshot draws every plotly chart marimo exported, offline."""
    draw_all = """(n) => {
        const f = document.querySelector('iframe.infphys-snapshot__frame');
        const d = f && f.contentDocument;
        if (!d) return false;
        const plots = [...d.querySelectorAll('marimo-plotly')];
        const drawn = plots.filter(m => m.shadowRoot && m.shadowRoot.querySelector('.main-svg'));
        return plots.length >= n && drawn.length >= n && f.dataset.fitted === 'true';
    }"""
    snapshots = list(_lab_snapshots(site).items())
    # A few pages at a time: each boots marimo's frontend, which keeps one CPU busy a while.
    for start in range(0, len(snapshots), SNAPSHOT_PAGES_AT_ONCE):
        batch = snapshots[start : start + SNAPSHOT_PAGES_AT_ONCE]
        pages = [_Page(browser) for _ in batch]
        try:
            for p, (url, _) in zip(pages, batch, strict=True):
                p.page.goto(url, wait_until="commit")
            for p, (url, (_, figures)) in zip(pages, batch, strict=True):
                p.page.wait_for_load_state("load")
                p.page.wait_for_function(
                    draw_all, arg=figures, timeout=DRAW_TIMEOUT_MS, polling=POLL_MS
                )
                height = p.page.eval_on_selector(
                    "iframe.infphys-snapshot__frame", "f => f.getBoundingClientRect().height"
                )
                assert height > 1000, f"{url}: the frame was not sized to its snapshot ({height}px)"
                assert not p.errors, f"{url}: console errors: {p.errors}"
        finally:
            for p in pages:
                p.page.close()
    assert not browser.external, f"requests left 127.0.0.1: {browser.external}"


@pytest.mark.browser
def test_notebook_page_draws_its_charts(site: Site, browser: Browser) -> None:
    with _Page(browser) as p:
        p.page.goto(site.base_url + "notebooks/day3_walkthrough/", wait_until="load")
        found = p.settle()
        assert found["charts"] >= 5 and found["drawn"] == found["charts"], found
        assert p.page.locator(".jp-CodeCell").count() >= 10
        assert not p.errors, p.errors
    assert not browser.external, f"requests left 127.0.0.1: {browser.external}"
