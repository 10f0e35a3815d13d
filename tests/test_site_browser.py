"""The course site, built with ``mkdocs build --strict`` and opened in a real browser, offline.

The site is built once per tree (``tests/sitekit.py``: a second worker or a later session with
the same files reuses it) and served on 127.0.0.1 by the ``site`` fixture (``conftest.py``).
Debian's ``chromium``, driven by Playwright (never ``playwright install``), then opens every
page of the sitemap and checks: no console error; maths typeset by the vendored MathJax; every
plotly chart drawn; a slider and a dropdown change what a chart draws; instant navigation
redraws charts and maths; and not one request leaves 127.0.0.1 (each is recorded and fails,
and the test fails). The lab pages, whose snapshots boot marimo's frontend, are opened once,
by ``test_site_snapshots.py`` (on the other worker), with the same checks and their snapshot's.

Where chromium or Playwright is missing the browser tests skip with the reason, except under CI
(``CI`` set), where that is a failure. ``.ci/install-browser`` installs chromium.
"""

from __future__ import annotations

import contextlib
import html
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sitekit import (
    DRAW_TIMEOUT_MS,
    FOUND_JS,
    Browser,
    Site,
    SitePage,
    check_pages,
    lab_snapshots,
    visit,
)

REPO = Path(__file__).resolve().parents[1]
#: A bound on each test, setup included: the first site test of a session builds the site
#: (tests/sitekit.py), which with a cold snapshot cache on a busy two-core machine outlasts
#: pytest's 300 s default (the build's own subprocess limit, 600 s, then reports first).
pytestmark = pytest.mark.timeout(900)


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


def test_every_lab_has_a_page_and_an_offline_snapshot(site: Site) -> None:
    """marimo's export, with its frontend served by the site and nothing left on a CDN."""
    snapshots = lab_snapshots(site)
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


#: The executed Day-3 notebook's page, checked further as it is opened with every page.
NOTEBOOK_PAGE = "notebooks/day3_walkthrough/"


def _notebook_page_draws_its_charts(p: SitePage, found: dict[str, int]) -> None:
    assert found["charts"] >= 5 and found["drawn"] == found["charts"], found
    assert p.page.locator(".jp-CodeCell").count() >= 10


@pytest.mark.browser
def test_every_page_loads_offline_with_maths_and_charts(site: Site, browser: Browser) -> None:
    """Every page but the lab pages with a snapshot (test_site_snapshots.py opens those); the
    notebook's page also shows its charts and code cells (it is opened only here)."""
    labs = set(lab_snapshots(site))
    urls = [url for url in site.pages if url not in labs]
    assert len(urls) + len(labs) == len(site.pages) and len(labs) >= 1
    assert site.base_url + NOTEBOOK_PAGE in urls
    seen = {"math": 0, "charts": 0}

    def check(p: SitePage, url: str, _: None) -> None:
        found = p.page.evaluate(FOUND_JS)
        assert found["typeset"] >= found["math"], f"{url}: maths not typeset: {found}"
        assert found["drawn"] == found["charts"], f"{url}: charts not drawn: {found}"
        if url == site.base_url + NOTEBOOK_PAGE:
            _notebook_page_draws_its_charts(p, found)
        seen["math"] += found["math"]
        seen["charts"] += found["charts"]

    check_pages(browser, [(url, None) for url in urls], check)
    assert seen["math"] > 0, "no page has maths: the MathJax check checked nothing"
    assert seen["charts"] > 0, "no page has a chart: the chart check checked nothing"
    assert not browser.external, f"requests left 127.0.0.1: {browser.external}"


@pytest.fixture(scope="module")
def figures(site: Site, browser: Browser) -> Iterator[SitePage]:
    """reference/figures/, opened once and settled: each test below moves one of its charts."""
    with visit(browser, site.base_url + "reference/figures/") as p:
        p.settle()
        yield p


@pytest.mark.browser
def test_slider_changes_the_plotted_data(figures: SitePage, browser: Browser) -> None:
    p, chart = figures, "div.infphys-chart[id$='-kv-cliff']"
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
def test_dropdown_changes_the_plotted_data(figures: SitePage, browser: Browser) -> None:
    p, chart = figures, "div.infphys-chart[id$='-decode-roofline']"
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
    with visit(browser, site.base_url + "reference/figures/") as p:
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


@pytest.fixture(scope="module")
def home(site: Site, browser: Browser) -> Iterator[SitePage]:
    """The home page, opened once and settled: a test below switches its palette, another
    searches from it."""
    with visit(browser, site.base_url) as p:
        p.settle()
        yield p


@pytest.mark.browser
def test_charts_follow_the_dark_palette(home: SitePage) -> None:
    p, chart = home, "div.infphys-chart"

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
def test_search_works_offline(home: SitePage, browser: Browser) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    p = home
    box = p.page.locator("input.md-search__input")
    results = p.page.locator(".md-search-result__item")
    deadline = time.monotonic() + DRAW_TIMEOUT_MS / 1000
    # The index loads in a web worker; a query typed before it is ready finds nothing, so the
    # query is typed again each second until results show.
    while not results.count() and time.monotonic() < deadline:
        box.fill("")
        box.press_sequentially("bandwidth", delay=20)
        with contextlib.suppress(PlaywrightTimeout):
            results.first.wait_for(timeout=1000)
    assert results.count() > 0, "search found nothing for 'bandwidth'"
    assert not p.errors, p.errors
    assert not browser.external, f"requests left 127.0.0.1: {browser.external}"


@pytest.mark.browser
def test_the_offline_guard_records_requests_off_loopback_and_the_browser_fails_them(
    site: Site, browser: Browser
) -> None:
    """The guard every browser test relies on: a request off 127.0.0.1 (a CDN script, a name
    that starts like loopback, an address given as a number, which no name lookup would stop)
    is recorded and fails at the browser's own proxy, not later for want of a network, which a
    developer's machine has; one on loopback goes through untouched."""
    offsite = [
        "https://cdn.jsdelivr.net/npm/plotly.js",
        "http://127.0.0.1.example.org/x.js",
        "http://192.0.2.1/x.js",  # TEST-NET-1 (RFC 5737): nothing there, here or anywhere
    ]
    seen = len(browser.external)
    reasons: dict[str, str | None] = {}
    with SitePage(browser) as p:
        p.page.on("requestfailed", lambda r: reasons.setdefault(r.url, r.failure))
        p.page.goto(site.base_url, wait_until="load")
        failed = p.page.evaluate(
            """async (urls) => Promise.all(urls.map(u => fetch(u).then(() => null, () => u)))""",
            [*offsite, site.base_url + "sitemap.xml"],
        )
    recorded = browser.external[seen:]
    del browser.external[seen:]  # planted here: the other tests' "nothing left" checks stand
    assert failed == [*offsite, None]  # failed, failed, failed, served
    assert recorded == offsite
    assert reasons == dict.fromkeys(offsite, "net::ERR_PROXY_CONNECTION_FAILED")
