"""The lab pages of the course site in a real browser, offline, each with its lab's snapshot.

Each lab page embeds the static snapshot ``marimo export html`` made of its lab; the snapshot
boots marimo's frontend (seconds of CPU apiece), which is why these pages have a module of their
own: pytest-xdist runs it on the other worker while ``test_site_browser.py`` opens every other
page. Both use the one site build of this tree (``tests/sitekit.py``, ``site`` in conftest.py).

Each lab page gets the checks every page gets (maths typeset, its own charts drawn, no console
error) and its snapshot's: every plotly chart marimo exported is drawn, the frame is sized to
its content, and not one request leaves 127.0.0.1. Skipped, with the reason, where chromium or
Playwright is missing (a failure under CI).
"""

from __future__ import annotations

import pytest
from sitekit import DRAW_TIMEOUT_MS, POLL_MS, Browser, Site, SitePage, lab_snapshots

#: A bound on each test, setup included: this module may be the one that builds the site.
pytestmark = [pytest.mark.timeout(900), pytest.mark.browser]
#: Lab pages opened at once: each boots marimo's frontend, which keeps one CPU busy a while.
PAGES_AT_ONCE = 4

#: True once the page's snapshot frame holds at least ``n`` marimo-plotly charts, all drawn,
#: and the frame has been sized to its content.
SNAPSHOT_DRAWN_JS = """(n) => {
    const f = document.querySelector('iframe.infphys-snapshot__frame');
    const d = f && f.contentDocument;
    if (!d) return false;
    const plots = [...d.querySelectorAll('marimo-plotly')];
    const drawn = plots.filter(m => m.shadowRoot && m.shadowRoot.querySelector('.main-svg'));
    return plots.length >= n && drawn.length >= n && f.dataset.fitted === 'true';
}"""


def test_lab_pages_load_offline_and_their_snapshots_draw_every_chart(
    site: Site, browser: Browser
) -> None:
    snapshots = list(lab_snapshots(site).items())
    assert len(snapshots) >= 1
    for start in range(0, len(snapshots), PAGES_AT_ONCE):
        batch = snapshots[start : start + PAGES_AT_ONCE]
        pages = [SitePage(browser) for _ in batch]
        try:
            for p, (url, _) in zip(pages, batch, strict=True):
                p.page.goto(url, wait_until="commit")
            for p, (url, (_, figures)) in zip(pages, batch, strict=True):
                p.page.wait_for_load_state("load")
                found = p.settle()
                assert found["typeset"] >= found["math"], f"{url}: maths not typeset: {found}"
                assert found["drawn"] == found["charts"], f"{url}: charts not drawn: {found}"
                p.page.wait_for_function(
                    SNAPSHOT_DRAWN_JS, arg=figures, timeout=DRAW_TIMEOUT_MS, polling=POLL_MS
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
