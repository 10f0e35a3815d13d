"""MkDocs hook: the lab pages, their static snapshots, and the Day-3 notebook, all offline.

**Lab snapshots.** Every ``labs/NN_*.py`` is run headless against the embedded simulator by
``marimo export html`` (all labs in one background process, ``labs_export.py``, started when the
build starts so that they run while MkDocs renders the other pages) and the result is written to
``labs/snapshots/`` in the site. The exported page loads marimo's frontend from a CDN; the same
files ship in the marimo wheel (``marimo/_static``), so they are copied once into
``assets/vendor/marimo/`` and every CDN URL in each snapshot is rewritten to that copy. marimo's
plotly renderer lazy-loads MathJax from a CDN; the copied frontend points it at the site's
vendored MathJax instead.

A lab page names its lab by its file name (``docs/labs/03-kv-cache.md`` is ``labs/03_*.py``) and
places generated parts with HTML comments, which survive the Jinja pass of ``infphys_site.py``:

- ``<!-- infphys:lab-facts -->``: the lab's time budget (from the lab's own ``**Time: about N
  minutes**`` line), its file and how to run it;
- ``<!-- infphys:lab-exercises -->``: its exercises' prompts from the registry
  (:mod:`infphys.exercises`; never the answers);
- ``<!-- infphys:lab-snapshot -->``: the snapshot in an iframe;
- ``<!-- infphys:labs-table -->`` (the labs index): one row per lab with its time, and the total.

A marker left unreplaced, a lab that fails or draws an error, or a snapshot that still names a
CDN stops the build.

**The Day-3 notebook.** ``notebooks/day3_walkthrough.ipynb`` (kept without outputs) is executed
with nbconvert against the embedded simulator, in the background like the labs, and handed to
mkdocs-jupyter as ``notebooks/day3_walkthrough.ipynb``. Its plotly outputs become the site's own
``div.infphys-chart`` elements, drawn by the locally served plotly.js like every chapter chart;
the MathJax 2 and mermaid loaders of nbconvert's template, which point at cdnjs, are removed.

The snapshots and the notebook are made by ``labs_runner.py`` (beside this file); this
module is the MkDocs glue.

**Cache.** Snapshots and the executed notebook are cached under ``$INFPHYS_SITE_CACHE``
(default ``~/.cache/infphys/site``), keyed by a hash of the lab (or notebook), every file of the
``infphys`` package and the marimo version, so a rebuild after editing a chapter reuses them.
``INFPHYS_SITE_JOBS`` sets how many labs run at once (default: CPUs + 2; the labs spend much of
their time waiting on the simulated server's clock). ``INFPHYS_SNAPSHOTS=0`` skips snapshots and
notebook execution for a quick local preview (the pages then say so; never in CI).
"""

from __future__ import annotations

import html
import json
import logging
import posixpath
import re
import sys
import time
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

sys.path.insert(0, str(Path(__file__).resolve().parent))
from labs_runner import (
    MARIMO_DIR,
    NOTEBOOK_SRC,
    NOTEBOOK_URI,
    Jobs,
    Lab,
    copy_marimo_frontend,
    notebook_dir,
    rewrite_snapshot,
    save_timings,
    start_jobs,
    write_atomic,
)
from notebook_page import notebook_for_site, strip_nbconvert_cdn

log = logging.getLogger("mkdocs.hooks.infphys_labs")

_MARKER = re.compile(r"<!--\s*infphys:([a-z-]+)\s*-->")
_LAB_PAGE = re.compile(r"^labs/(\d{2})-[a-z0-9-]+\.md$")

_jobs: Jobs | None = None


# --- MkDocs events -----------------------------------------------------------------------------


def _root(config: MkDocsConfig) -> Path:
    return Path(config.config_file_path).resolve().parent


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    """Start the lab snapshots and the notebook in the background."""
    global _jobs
    if _jobs is not None:
        _jobs.shutdown()
    root = _root(config)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    _jobs = start_jobs(root)
    return config


def on_shutdown() -> None:
    if _jobs is not None:
        _jobs.shutdown()


def on_build_error(error: Exception) -> None:
    if _jobs is not None:
        _jobs.shutdown()


def on_serve(server: Any, config: MkDocsConfig, builder: Any) -> Any:
    """``mkdocs serve`` rebuilds when a lab or the notebook changes."""
    root = _root(config)
    for folder in ("labs", "notebooks"):
        if (root / folder).is_dir():
            server.watch(str(root / folder))
    return server


@event_priority(100)  # before mkdocs-jupyter wraps the notebook
def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the Day-3 notebook as a page: the executed copy (it may still be running)."""
    assert _jobs is not None
    source = _jobs.root / NOTEBOOK_SRC
    if not source.is_file():
        return files
    # A File with its own src_dir, not File.generated(): mkdocs-jupyter wraps the File and
    # reads abs_src_path through the wrapper, which only works when src_dir is set.
    # Not executed (INFPHYS_SNAPSHOTS=0): the page shows the code without outputs.
    src_dir = notebook_dir(_jobs.cache, source, _jobs.tree) if _jobs.enabled else _jobs.root
    files.append(
        File(
            NOTEBOOK_URI,
            src_dir=str(src_dir),
            dest_dir=config.site_dir,
            use_directory_urls=config.use_directory_urls,
        )
    )
    return files


@event_priority(100)  # before mkdocs-jupyter reads the notebook
def on_pre_page(page: Page, config: MkDocsConfig, files: Files) -> Page:
    """Wait for the notebook to have run before its page is read."""
    assert _jobs is not None
    if page.file.src_uri == NOTEBOOK_URI and _jobs.enabled:
        result = _jobs.result(NOTEBOOK_URI)
        page_copy = result.path.parent / NOTEBOOK_URI
        if Path(page.file.abs_src_path or "") != page_copy:
            raise PluginError(
                f"{NOTEBOOK_URI}: the page reads {page.file.abs_src_path}, not {page_copy}"
            )
        nb, _ = notebook_for_site(json.loads(result.path.read_text(encoding="utf-8")))
        page_copy.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(page_copy, json.dumps(nb, ensure_ascii=False))
    return page


@event_priority(100)  # before infphys_site's Jinja pass
def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Fill a lab page's markers; keep the notebook out of the Jinja pass (it is no template)."""
    if page.file.src_uri == NOTEBOOK_URI:
        page.meta["render_macros"] = False
        return markdown
    if "<!--" not in markdown:
        return markdown
    return _replace_markers(markdown, page, files)


def _lab_of(page: Page) -> Lab | None:
    assert _jobs is not None
    m = _LAB_PAGE.match(page.file.src_uri)
    if m is None:
        return None
    number = int(m.group(1))
    if number not in _jobs.labs:
        raise PluginError(f"{page.file.src_uri}: no labs/{number:02d}_*.py")
    return _jobs.labs[number]


def _lab_page_uri(lab: Lab, files: Files) -> str | None:
    for f in files:
        m = _LAB_PAGE.match(f.src_uri)
        if m and int(m.group(1)) == lab.number:
            return f.src_uri
    return None


def labs_table(labs: dict[int, Lab], page: Page, files: Files) -> str:
    """The labs index's table: each lab with its own time budget, and the running total."""
    from infphys.exercises import exercises_for

    rows = ["| # | lab | time | from start | exercises |", "|--:|---|--:|--:|--:|"]
    total = 0
    for number in sorted(labs):
        lab = labs[number]
        total += lab.minutes
        uri = _lab_page_uri(lab, files)
        name = lab.short_title
        if uri is not None:
            name = f"[{name}]({posixpath.relpath(uri, posixpath.dirname(page.file.src_uri))})"
        n_ex = len(exercises_for(number))
        rows.append(f"| {number} | {name} | {lab.minutes} min | {total} min | {n_ex} |")
    rows.append(f"| | **all {len(labs)} labs** | **{total} min** | | |")
    return "\n".join(rows)


def lab_facts(lab: Lab) -> str:
    rel = f"labs/{lab.path.name}"
    return "\n".join(
        [
            '<div class="infphys-lab-facts" markdown>',
            "",
            f":material-timer-outline: **{lab.minutes} minutes** · "
            f":material-file-code-outline: `{rel}` · "
            ":material-chip: no GPU needed (the embedded simulator answers)",
            "",
            "</div>",
            "",
            '=== "With the course CLI"',
            "",
            "    ```bash",
            "    infphys labs            # opens marimo on the labs folder, target resolved",
            "    ```",
            "",
            f"    then open `{lab.path.name}` in the file list.",
            "",
            '=== "With marimo directly"',
            "",
            "    ```bash",
            f"    marimo edit {rel}",
            "    ```",
            "",
            '=== "Against your NIM (or vLLM, SGLang, …)"',
            "",
            "    ```bash",
            "    export NIM_BASE_URL=http://my-nim:8000       # the server to measure",
            "    export NIM_GEN_MODEL=meta/llama-3.1-8b-instruct",
            f"    marimo edit {rel}",
            "    ```",
            "",
            "    If nothing answers there, the lab says so in one line and uses the embedded "
            "simulator instead.",
            "",
        ]
    )


_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


def exercises_md(lab: Lab) -> str:
    """The lab's exercises as the learner sees them: prompt, choices, what to type (no answers)."""
    from infphys.exercises import exercises_for

    exercises = exercises_for(lab.number)
    if not exercises:
        return "*This lab has no exercises.*"
    blocks = []
    for ex in exercises:
        prompt = _PLACEHOLDER.sub(lambda m: f"`{m.group(1)}`", ex.prompt)
        lines = [f'!!! question "{ex.id} · {ex.title}"', ""]
        lines += ["    " + line if line else "" for line in prompt.splitlines()]
        lines.append("")
        if ex.kind == "choice":
            for j, choice in enumerate(ex.choices):
                lines.append(f"    - **{chr(ord('a') + j)})** {choice}")
            lines.append("")
            lines.append("    *Answer:* one of the choices.")
        else:
            unit = f" in {ex.unit}" if ex.unit else ""
            lines.append(
                f"    *Answer:* a number{unit}, within {ex.tolerance.describe(ex.unit)} of the "
                "value for your settings."
            )
        blocks.append("\n".join(lines))
    note = (
        "Names in `code` are your own settings and measurements: the lab fills them in, and "
        "checks your answer against the value they imply, so a neighbour's number fails. "
        "Answers are in the lab (after you try) and, with explanations, in the "
        "[instructor guide](../instructors.md)."
    )
    return note + "\n\n" + "\n\n".join(blocks)


def snapshot_html(lab: Lab, page: Page) -> str:
    assert _jobs is not None
    if not _jobs.enabled:
        return (
            '!!! warning "No snapshot in this build"\n\n'
            "    This site was built with `INFPHYS_SNAPSHOTS=0`; run the lab to see its output."
        )
    src = posixpath.relpath(lab.snapshot_uri, posixpath.dirname(page.url.rstrip("/") + "/x"))
    title = html.escape(f"{lab.title}: static snapshot")
    return (
        f'<div class="infphys-snapshot">\n'
        f'<div class="infphys-snapshot__bar">Static snapshot: <strong>{html.escape(lab.title)}'
        f"</strong> run top to bottom against the embedded simulator when this site was built. "
        f'Widgets are drawn but do not react. <a href="{src}" target="_blank" '
        f'rel="noopener">Open it full page</a>.</div>\n'
        f'<iframe class="infphys-snapshot__frame" src="{src}" title="{title}" '
        f'data-lab="{lab.stem}"></iframe>\n'
        f"</div>"
    )


@event_priority(-100)
def on_page_content(html_text: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Strip nbconvert's CDN loaders from the notebook page."""
    if page.file.src_uri == NOTEBOOK_URI:
        try:
            return strip_nbconvert_cdn(html_text)
        except ValueError as exc:
            raise PluginError(f"{NOTEBOOK_URI}: {exc}") from exc
    return html_text


@event_priority(50)  # before infphys_site reports the site's size
def on_post_build(config: MkDocsConfig) -> None:
    """Copy marimo's frontend and the snapshots into the site; report the time each took."""
    assert _jobs is not None
    site = Path(config.site_dir)
    if not _jobs.enabled:
        return
    t0 = time.perf_counter()
    copy_marimo_frontend(site)
    copy_s = time.perf_counter() - t0
    waited = time.perf_counter()
    timings: dict[str, float] = {}
    report = []
    for number in sorted(_jobs.labs):
        lab = _jobs.labs[number]
        result = _jobs.result(lab.stem)
        dest = site / lab.snapshot_uri
        dest.parent.mkdir(parents=True, exist_ok=True)
        # The cache keeps marimo's export as it came; the site gets it pointed at local files.
        assets = posixpath.relpath(MARIMO_DIR, posixpath.dirname(lab.snapshot_uri)) + "/"
        try:
            text = rewrite_snapshot(result.path.read_text(encoding="utf-8"), assets)
        except ValueError as exc:
            raise PluginError(f"{lab.path.name} snapshot: {exc}") from exc
        dest.write_text(text, encoding="utf-8")
        timings[lab.stem] = result.seconds
        report.append(
            f"{number:02d} {result.seconds:.0f}s{'' if not result.cached else ' (cached)'}"
        )
    if NOTEBOOK_URI in _jobs.futures:
        nb = _jobs.result(NOTEBOOK_URI)
        timings[NOTEBOOK_URI] = nb.seconds
        report.append(f"notebook {nb.seconds:.0f}s{'' if not nb.cached else ' (cached)'}")
    save_timings(_jobs.cache, timings)
    log.info(
        "infphys: lab snapshots %s; marimo frontend copied in %.1f s; waited %.1f s for jobs "
        "after the pages were built",
        ", ".join(report),
        copy_s,
        time.perf_counter() - waited,
    )


def _replace_markers(markdown: str, page: Page, files: Files) -> str:
    assert _jobs is not None
    lab = _lab_of(page)

    def swap(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "labs-table":
            return labs_table(_jobs.labs, page, files)
        if lab is None:
            raise PluginError(f"{page.file.src_uri}: <!-- infphys:{name} --> outside a lab page")
        if name == "lab-facts":
            return lab_facts(lab)
        if name == "lab-exercises":
            return exercises_md(lab)
        if name == "lab-snapshot":
            return snapshot_html(lab, page)
        raise PluginError(f"{page.file.src_uri}: unknown marker <!-- infphys:{name} -->")

    # The generated Markdown is not a template: infphys_site's Jinja pass leaves it alone.
    return _MARKER.sub(lambda m: "{% raw %}\n" + swap(m) + "\n{% endraw %}", markdown)
