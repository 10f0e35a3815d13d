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
from sitekit import FOUND_JS, SETTLED_JS, Browser, Site, SitePage, check_pages, lab_snapshots

#: A bound on each test, setup included: this module may be the one that builds the site.
pytestmark = [pytest.mark.timeout(900), pytest.mark.browser]
#: True once the page's snapshot frame holds at least ``n`` marimo-plotly charts, all drawn,
#: the frame has been sized to its content, and the page's own maths and charts are done.
SNAPSHOT_DRAWN_JS = """(n) => {
    const f = document.querySelector('iframe.infphys-snapshot__frame');
    const d = f && f.contentDocument;
    if (!d) return false;
    const plots = [...d.querySelectorAll('marimo-plotly')];
    const drawn = plots.filter(m => m.shadowRoot && m.shadowRoot.querySelector('.main-svg'));
    return plots.length >= n && drawn.length >= n && f.dataset.fitted === 'true' &&
        (SETTLED)();
}""".replace("SETTLED", SETTLED_JS)


def test_lab_pages_load_offline_and_their_snapshots_draw_every_chart(
    site: Site, browser: Browser
) -> None:
    snapshots = [(url, figures) for url, (_, figures) in lab_snapshots(site).items()]
    assert len(snapshots) >= 1

    def check(p: SitePage, url: str, figures: int) -> None:
        found = p.page.evaluate(FOUND_JS)
        assert found["typeset"] >= found["math"], f"{url}: maths not typeset: {found}"
        assert found["drawn"] == found["charts"], f"{url}: charts not drawn: {found}"
        height = p.page.eval_on_selector(
            "iframe.infphys-snapshot__frame", "f => f.getBoundingClientRect().height"
        )
        assert height > 1000, f"{url}: the frame was not sized to its snapshot ({height}px)"

    check_pages(browser, snapshots, check, ready_js=SNAPSHOT_DRAWN_JS)
    assert not browser.external, f"requests left 127.0.0.1: {browser.external}"
