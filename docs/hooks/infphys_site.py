"""MkDocs hook: pages compute their numbers and charts with infphys at build time.

Every Markdown page is a Jinja2 template rendered before Markdown (pages with no ``{{`` or
``{%`` are left untouched). A page can use:

- ``{{ chart("kv_cliff", model="llama-3.1-70b") }}`` on a line of its own: calls the public
  figure function of that name in ``infphys.plots.*`` (or ``"physics.kv_cliff"`` to name the
  module), embeds the figure's JSON in the page and draws it in the browser with the locally
  served plotly.js (``docs/assets/javascripts/infphys-charts.js``). ``caption="..."`` adds a
  caption; every other keyword goes to the figure function.
- every name in ``infphys.physics.__all__`` and ``infphys.catalog.__all__`` (``weight_bytes``,
  ``get_gpu``, ``GPUS``, …), the modules ``physics``, ``catalog``, ``fmt``, ``sim``, ``stats``,
  ``planning``, ``evidence``, ``nim_planning``, ``exercises`` and ``infphys``, and
  the shorthands ``gpu(key)`` and ``model(key)``;
- the format helpers of ``infphys.fmt`` as functions or filters:
  ``{{ fmt.gb(weight_bytes("llama-3.1-8b")) }}`` or ``{{ weight_bytes("llama-3.1-8b") | gb }}``.

Jinja comments are ``{## … ##}`` (not ``{# … #}``, which attr_list uses for heading ids). Put
literal ``{{`` in ``{% raw %}…{% endraw %}``; set ``render_macros: false`` in a page's front
matter to skip rendering it. A page whose template fails stops the build with the page, line
and error.

After the build the hook writes plotly.js from the plotly wheel into the site (it is not
committed) and prints the site's size and the build time.

Why a hook and not mkdocs-macros-plugin: it is one small file with no extra dependency
(Jinja2 ships with MkDocs); a chart needs the page it sits on (its JSON goes into that page's
HTML after Markdown, so Markdown, the table of contents and search never see it); and the
same file does the post-build work. The page syntax is the same as mkdocs-macros', so moving
to it later would not touch the chapters.
"""

from __future__ import annotations

import html
import importlib
import logging
import pkgutil
import re
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

log = logging.getLogger("mkdocs.hooks.infphys_site")

#: Where plotly.js goes in the built site (infphys-charts.js loads it from there).
PLOTLY_JS = "assets/vendor/plotly/plotly.min.js"
#: A chart that takes longer than this to compute is named in the build log, s.
SLOW_CHART_S = 2.0
#: Height of a chart whose figure sets none, px.
DEFAULT_HEIGHT_PX = 450

_TOKEN = "INFPHYSCHART{}X"
_TOKEN_RE = re.compile(r"<p>\s*(INFPHYSCHART\d+X)\s*</p>|(INFPHYSCHART\d+X)")


class _Build:
    """State of one build (``mkdocs serve`` runs many builds in one process)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.env: jinja2.Environment | None = None
        self.figures: dict[str, dict[str, str]] = {}  # page src_uri → token → HTML
        self.charts = 0
        self.chart_s = 0.0
        self.functions: tuple[dict[str, Callable[..., Any]], dict[str, list[str]]] | None = None


_build = _Build()


#: The modules of ``infphys`` a page can name, each under its own name (``fmt.gb``).
_PAGE_MODULES = (
    "catalog",
    "evidence",
    "exercises",
    "fleet_compare",
    "fleet_planning",
    "fmt",
    "nim_planning",
    "physics",
    "planning",
    "sim",
    "stats",
)


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    """Start the clock, make the package importable from the repository, build the Jinja env."""
    global _build
    _build = _Build()
    root = str(Path(config.config_file_path).resolve().parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    _build.env = _environment()
    return config


def _environment() -> jinja2.Environment:
    import infphys
    from infphys.resolve import DEFAULT_GPU

    modules = {name: importlib.import_module(f"infphys.{name}") for name in _PAGE_MODULES}
    catalog, physics, fmt = modules["catalog"], modules["physics"], modules["fmt"]

    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        comment_start_string="{##",
        comment_end_string="##}",
    )
    names: dict[str, Any] = {}
    for module in (catalog, physics):
        names.update({n: getattr(module, n) for n in module.__all__})
    names.update(modules)
    names.update(
        infphys=infphys,
        gpu=catalog.get_gpu,
        model=catalog.get_model,
        # The GPU the labs' simulator plays by default (the home page's numbers use it).
        infphys_default_gpu=DEFAULT_GPU,
    )
    env.globals.update(names)
    env.filters.update({n: getattr(fmt, n) for n in fmt.__all__})
    return env


def figure_functions() -> tuple[dict[str, Callable[..., Any]], dict[str, list[str]]]:
    """Every public figure function in ``infphys.plots.*``, as ``module.name`` and ``name``.

    A bare name defined in two modules is left out (a page must qualify it); the second value
    maps each such name to its qualified forms.
    """
    import infphys.plots

    qualified: dict[str, Callable[..., Any]] = {}
    for info in pkgutil.iter_modules(infphys.plots.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"infphys.plots.{info.name}")
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if callable(obj):
                qualified[f"{info.name}.{name}"] = obj
    bare: dict[str, list[str]] = {}
    for q in qualified:
        bare.setdefault(q.split(".", 1)[1], []).append(q)
    out = dict(qualified)
    for name, qs in bare.items():
        if len(qs) == 1:
            out[name] = qualified[qs[0]]
    return out, {name: qs for name, qs in bare.items() if len(qs) > 1}


def _chart_html(div_id: str, fig: Any, caption: str | None, height: int | None) -> str:
    from plotly.io import to_json

    text = to_json(fig, validate=False, pretty=False)
    # The figure travels in an attribute, not a <script type="application/json">: instant
    # navigation re-creates the scripts of a new page and would run the JSON as JavaScript.
    # JSON escapes < > & inside strings; the single quote closes the attribute.
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = text.replace("'", "&#39;")
    layout = fig.layout
    h = int(height or layout.height or DEFAULT_HEIGHT_PX)
    title = layout.title.text if layout.title and layout.title.text else "chart"
    parts = [
        '<figure class="infphys-figure">',
        f'<div class="infphys-chart" id="{div_id}" role="img" aria-label="{html.escape(title)}" '
        f"style=\"height:{h}px\" data-figure='{text}'></div>",
    ]
    if caption:
        parts.append(f"<figcaption>{html.escape(caption)}</figcaption>")
    parts.append("</figure>")
    return "\n".join(parts)


def _chart_macro(page: Page) -> Callable[..., str]:
    store = _build.figures.setdefault(page.file.src_uri, {})
    if _build.functions is None:
        _build.functions = figure_functions()
    functions, ambiguous = _build.functions

    def chart(
        name: str, *, caption: str | None = None, height: int | None = None, **kwargs: Any
    ) -> str:
        func = functions.get(name)
        if func is None and name in ambiguous:
            raise ValueError(f"chart: {name!r} is ambiguous, use one of {ambiguous[name]}")
        if func is None:
            known = ", ".join(sorted(k for k in functions if "." not in k))
            raise ValueError(f"chart: no figure function {name!r} in infphys.plots; known: {known}")
        t0 = time.perf_counter()
        fig = func(**kwargs)
        token = _TOKEN.format(len(store) + 1)
        slug = re.sub(r"[^a-z0-9]+", "-", name.rsplit(".", 1)[-1].lower()).strip("-")
        store[token] = _chart_html(f"chart-{len(store) + 1}-{slug}", fig, caption, height)
        took = time.perf_counter() - t0
        _build.charts += 1
        _build.chart_s += took
        if took > SLOW_CHART_S:
            log.info("infphys: chart %r on %s took %.1f s", name, page.file.src_uri, took)
        return f"\n\n{token}\n\n"

    return chart


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Render the page as a Jinja2 template (charts become placeholders until after Markdown)."""
    _build.figures.pop(page.file.src_uri, None)
    if page.meta.get("render_macros") is False or ("{{" not in markdown and "{%" not in markdown):
        return markdown
    assert _build.env is not None
    where = page.file.src_uri
    try:
        template = _build.env.from_string(markdown)
        return template.render(chart=_chart_macro(page), page=page, config=config)
    except jinja2.TemplateSyntaxError as exc:
        raise PluginError(f"{where}:{exc.lineno}: template error: {exc.message}") from exc
    except Exception as exc:
        line = next(
            (
                f.lineno
                for f in reversed(traceback.extract_tb(exc.__traceback__))
                if f.filename == "<template>"
            ),
            None,
        )
        raise PluginError(f"{where}:{line or '?'}: {type(exc).__name__}: {exc}") from exc


@event_priority(100)  # before search and the other plugins read the page's HTML
def on_page_content(html_text: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Put each chart's figure and drawing element where its placeholder landed."""
    store = _build.figures.get(page.file.src_uri)
    if not store:
        return html_text
    seen: set[str] = set()

    def swap(match: re.Match[str]) -> str:
        token = match.group(1) or match.group(2)
        seen.add(token)
        return store[token]

    out = _TOKEN_RE.sub(swap, html_text)
    missing = set(store) - seen
    if missing:
        raise PluginError(f"{page.file.src_uri}: {len(missing)} chart(s) lost in Markdown")
    return out


def on_post_build(config: MkDocsConfig) -> None:
    """Write plotly.js into the site, then report the site's size and the build time."""
    from plotly.offline import get_plotlyjs

    site = Path(config.site_dir)
    target = site / PLOTLY_JS
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(get_plotlyjs(), encoding="utf-8")
    files = [p for p in site.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    took = time.perf_counter() - _build.started
    log.info(
        "infphys: site %.1f MB in %d files (plotly.js %.1f MB); %d charts in %.1f s; "
        "built in %.1f s",
        size / 1e6,
        len(files),
        target.stat().st_size / 1e6,
        _build.charts,
        _build.chart_s,
        took,
    )
