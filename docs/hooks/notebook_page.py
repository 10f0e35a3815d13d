"""The executed Day-3 notebook as the site shows it: its plotly outputs as the site's own charts.

- :func:`notebook_for_site`: each plotly output of an executed notebook becomes a
  ``div.infphys-chart`` (drawn by the site's ``infphys-charts.js`` and its local plotly.js), and
  each cell's stderr warnings fold into one collapsed block.
- :func:`strip_nbconvert_cdn`: removes the MathJax 2 and mermaid loaders of nbconvert's HTML
  template, which load from cdnjs (the site has its own MathJax 3).

Example: an output ``{"data": {"application/vnd.plotly.v1+json": {"data": [], "layout":
{"height": 300}}}}`` becomes ``<figure class="infphys-figure"><div class="infphys-chart"
id="nb-chart-1" ... style="height:300px" data-figure='{"data":[],"layout":{"height":300}}'>``.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

PLOTLY_MIME = "application/vnd.plotly.v1+json"


def chart_div(figure: dict[str, Any], div_id: str) -> str:
    """A ``div.infphys-chart`` for a plotly figure's JSON (drawn by infphys-charts.js)."""
    text = json.dumps(figure, separators=(",", ":"), allow_nan=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = text.replace("'", "&#39;")
    layout = figure.get("layout") or {}
    height = int(layout.get("height") or 450)
    title = (layout.get("title") or {}).get("text") or "chart"
    return (
        f'<figure class="infphys-figure"><div class="infphys-chart" id="{div_id}" role="img" '
        f'aria-label="{html.escape(str(title))}" style="height:{height}px" '
        f"data-figure='{text}'></div></figure>"
    )


def notebook_for_site(nb: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The executed notebook as the site shows it, and the number of charts in it.

    Each plotly output becomes a site chart; each cell's warnings (its stderr: the simulator
    saying it fell behind the wall clock on a busy build machine, a load level saying the
    client lagged) are folded into one collapsed block, kept but out of the way.
    """
    charts = 0
    for cell in nb.get("cells", []):
        outputs: list[dict[str, Any]] = []
        warnings: list[str] = []
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                text = output.get("text", "")
                warnings.append(text if isinstance(text, str) else "".join(text))
                continue
            data = output.get("data")
            if data and PLOTLY_MIME in data:
                charts += 1
                figure = data[PLOTLY_MIME]
                output["data"] = {"text/html": chart_div(figure, f"nb-chart-{charts}")}
                output["metadata"] = {}
            outputs.append(output)
        if warnings:
            lines = [w.rstrip() for w in "".join(warnings).splitlines() if w.strip()]
            folded = (
                '<details class="infphys-nb-warnings"><summary>'
                f"{len(lines)} warning{'s' if len(lines) != 1 else ''} from this run</summary>"
                f"<pre>{html.escape(chr(10).join(lines))}</pre></details>"
            )
            outputs.insert(0, {"output_type": "display_data", "metadata": {},
                               "data": {"text/html": folded}})  # fmt: skip
        if "outputs" in cell:
            cell["outputs"] = outputs
    return nb, charts


_NBCONVERT_CDN = [
    # nbconvert's MathJax 2 loader and its configuration (the site has its own MathJax 3)
    re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.S),
    # nbconvert's mermaid loader (imports from cdnjs when a diagram is present)
    re.compile(
        r'<script type="module">\s*document\.addEventListener\("DOMContentLoaded", async '
        r"\(\) => \{\s*const diagrams.*?</script>",
        re.S,
    ),
]


def strip_nbconvert_cdn(text: str) -> str:
    """Remove the CDN loaders of nbconvert's HTML template from a rendered notebook."""
    for pattern in _NBCONVERT_CDN:
        text = pattern.sub("", text)
    if "cdnjs.cloudflare.com" in text or "cdn.jsdelivr.net" in text:
        where = text.find("cdn")
        raise ValueError(f"the notebook page still names a CDN: {text[where - 120 : where + 80]}")
    return text
