"""marimo as ``infphys labs`` runs it: cells run when a lab opens, and nothing leaves 127.0.0.1.

``python -m infphys.labs_server edit labs/ --port 2718 …`` takes marimo's own command line
(``edit`` or ``run`` and their options) and runs marimo's CLI in this process after two
additions:

1. **Run on open.** marimo runs a notebook's cells when it opens only if the runtime setting
   ``auto_instantiate`` is true; a learner's own marimo config may say false (marimo writes
   ``auto_instantiate = false`` into the user config it creates on some installs). The
   project's ``pyproject.toml`` sets it under ``[tool.marimo.runtime]``, but that file is not
   found when the labs are copied elsewhere, and a PEP 723 header may not set it (marimo
   strips it there on purpose). marimo reads one more source, ahead of the user config: the
   environment variable ``_MARIMO_CONFIG_OVERLOAD_RUNTIME_AUTO_INSTANTIATE``. It is set to
   ``true`` here, for this server only.

2. **MathJax from this server.** marimo's plotly renderer loads MathJax for every chart from a
   CDN (``cdn.jsdelivr.net/npm/mathjax-full@3.2.2/…``, hard-coded in its frontend). A small
   ASGI middleware (:class:`OfflineAssets`), added through marimo's middleware registry
   (``marimo._server.registry.MIDDLEWARE_REGISTRY``, the hook marimo's
   ``marimo.server.asgi.middleware`` entry points use), serves the MathJax 3 the course site
   already vendors (``tex-svg.js``, from the npm package ``mathjax@3.2.2``) at
   ``/_infphys/mathjax/tex-svg.js`` and puts a short script at the top of every HTML page
   marimo serves (:data:`HEAD_SCRIPT`). Before marimo's code runs, that script makes any
   ``<script>`` whose ``src`` is set to a MathJax URL on another host inert (its ``type`` is
   changed, so the browser neither fetches nor runs it) while keeping the URL, so marimo's
   loader still finds "its" script; the local copy is loaded once instead, and each such
   element is then marked ready, which is what marimo's loader waits for. Nothing of marimo's
   is patched: no file on disk, no frontend asset. The script matches any MathJax URL on
   another host, not one version's, so a marimo upgrade that moves to another MathJax build
   or CDN path is still caught; ``tests/test_labs_browser.py`` fails if any request leaves
   127.0.0.1 all the same.

Where the vendored MathJax is missing (an install without it), charts still draw, interactive
as ever; only LaTeX inside a chart's labels would stay as text (the course's charts have none).

Example (what ``infphys labs`` runs)::

    python -m infphys.labs_server edit labs --host 127.0.0.1 --port 2718 --no-token --headless
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

__all__ = [
    "AUTO_INSTANTIATE_ENV",
    "HEAD_SCRIPT",
    "MATHJAX_ROUTE",
    "SERVED_ENV",
    "OfflineAssets",
    "install",
    "main",
    "mathjax_file",
]

#: marimo's environment override of ``runtime.auto_instantiate`` (read by its config manager
#: after the user and project configs).
AUTO_INSTANTIATE_ENV = "_MARIMO_CONFIG_OVERLOAD_RUNTIME_AUTO_INSTANTIATE"
#: Set to ``1`` for the marimo server and its kernels when the labs run through this module, so
#: a lab can tell it is served offline (:func:`infphys.exercises.ui.offline_note`).
SERVED_ENV = "INFPHYS_LABS_SERVER"
#: Where :class:`OfflineAssets` serves MathJax (under marimo's base URL).
MATHJAX_ROUTE = "/_infphys/mathjax/tex-svg.js"
_REGISTRY_NAME = "infphys-offline-assets"
_PACKAGE = Path(__file__).resolve().parent

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Put first in every page's ``<head>``; ``__MATHJAX_URL__`` becomes the local copy's URL
#: (relative to the page) or ``""`` when there is none. See the module docstring.
HEAD_SCRIPT = r"""<script data-infphys="offline-mathjax">
(() => {
  const LOCAL = "__MATHJAX_URL__";
  const srcProp = Object.getOwnPropertyDescriptor(HTMLScriptElement.prototype, "src");
  const setAttr = Element.prototype.setAttribute;
  const held = [];
  let state = LOCAL ? "idle" : "error";
  const isRemoteMathJax = (value) => {
    try {
      const url = new URL(String(value), location.href);
      return url.origin !== location.origin && /mathjax/i.test(url.pathname);
    } catch (err) {
      return false;
    }
  };
  const settle = (el) => {
    el.dataset.status = state === "ready" ? "ready" : "error";
    el.dispatchEvent(new Event(state === "ready" ? "load" : "error"));
  };
  const loadLocal = () => {
    state = "loading";
    const s = document.createElement("script");
    srcProp.set.call(s, new URL(LOCAL, location.href).href);
    s.async = true;
    s.dataset.infphys = "mathjax";
    s.addEventListener("load", () => { state = "ready"; held.forEach(settle); });
    s.addEventListener("error", () => { state = "error"; held.forEach(settle); });
    document.head.appendChild(s);
  };
  const hold = (el, url) => {
    setAttr.call(el, "type", "text/x-infphys-offline");
    setAttr.call(el, "src", url);
    held.push(el);
    if (state === "idle") loadLocal();
    if (state === "ready" || state === "error") setTimeout(() => settle(el), 0);
  };
  Object.defineProperty(HTMLScriptElement.prototype, "src", {
    configurable: true,
    enumerable: srcProp.enumerable,
    get() { return srcProp.get.call(this); },
    set(value) {
      if (isRemoteMathJax(value)) hold(this, String(value));
      else srcProp.set.call(this, value);
    },
  });
  Element.prototype.setAttribute = function (name, value) {
    if (this instanceof HTMLScriptElement && String(name).toLowerCase() === "src"
        && isRemoteMathJax(value)) {
      hold(this, String(value));
      return undefined;
    }
    return setAttr.call(this, name, value);
  };
})();
</script>"""

_HEAD_OPEN = re.compile(rb"<head(\s[^>]*)?>", re.I)


def mathjax_file() -> Path | None:
    """The vendored MathJax 3 (``tex-svg.js``): in the package if a build put it there, else in
    the repository's site assets (``docs/assets/vendor/mathjax``); None if neither exists.

    >>> path = mathjax_file()
    >>> path is None or path.name == "tex-svg.js"
    True
    """
    for candidate in (
        _PACKAGE / "_vendor" / "mathjax" / "tex-svg.js",
        _PACKAGE.parent / "docs" / "assets" / "vendor" / "mathjax" / "tex-svg.js",
    ):
        if candidate.is_file():
            return candidate
    return None


def head_script(mathjax_url: str) -> str:
    """:data:`HEAD_SCRIPT` pointing at ``mathjax_url`` ("" when none is served).

    >>> 'const LOCAL = "./_infphys/mathjax/tex-svg.js";' in head_script(
    ...     "./_infphys/mathjax/tex-svg.js")
    True
    """
    if '"' in mathjax_url or "<" in mathjax_url or "\\" in mathjax_url:
        raise ValueError(f"unsafe MathJax URL: {mathjax_url!r}")
    return HEAD_SCRIPT.replace("__MATHJAX_URL__", mathjax_url)


def inject_head(html: bytes, snippet: str) -> bytes:
    """``html`` with ``snippet`` right after its ``<head>`` tag (unchanged if it has none).

    >>> inject_head(b"<html><head><title>x</title></head></html>", "<script></script>")
    b'<html><head><script></script><title>x</title></head></html>'
    """
    found = _HEAD_OPEN.search(html)
    if found is None:
        return html
    return html[: found.end()] + snippet.encode() + html[found.end() :]


class OfflineAssets:
    """ASGI middleware: serves :data:`MATHJAX_ROUTE` and puts :data:`HEAD_SCRIPT` into HTML pages.

    Args:
        app: the application it wraps (marimo's).
        mathjax: the MathJax file to serve (:func:`install` passes :func:`mathjax_file`); None
            serves nothing, and the script then only makes remote MathJax inert.
    """

    def __init__(self, app: ASGIApp, mathjax: Path | None = None) -> None:
        self.app = app
        self.mathjax = mathjax
        self._body = mathjax.read_bytes() if mathjax is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        if path.endswith(MATHJAX_ROUTE) and scope.get("method") in ("GET", "HEAD"):
            await self._send_mathjax(scope, send)
            return
        await self.app(scope, receive, self._injecting(scope, send))

    async def _send_mathjax(self, scope: Scope, send: Send) -> None:
        if self._body is None:
            await send(
                {
                    "type": "http.response.start",
                    "status": 404,
                    "headers": [(b"content-length", b"0")],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/javascript; charset=utf-8"),
                    (b"content-length", str(len(self._body)).encode()),
                    (b"cache-control", b"public, max-age=86400"),
                ],
            }
        )
        body = b"" if scope.get("method") == "HEAD" else self._body
        await send({"type": "http.response.body", "body": body})

    def _injecting(self, scope: Scope, send: Send) -> Send:
        """``send`` that holds an HTML response until complete and adds the head script."""
        # Relative to the page: marimo serves its pages at its base URL, and the route is
        # matched by its ending, so this also holds under ``--base-url``.
        snippet = head_script("." + MATHJAX_ROUTE if self._body is not None else "")
        start: Message | None = None
        chunks: list[bytes] = []

        async def _send(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                named = {k.lower(): v for k, v in message.get("headers", [])}
                html = named.get(b"content-type", b"").startswith(b"text/html")
                if html and b"content-encoding" not in named:
                    start = message
                    return
                await send(message)
                return
            if message["type"] == "http.response.body" and start is not None:
                chunks.append(bytes(message.get("body", b"")))
                if message.get("more_body", False):
                    return
                body = inject_head(b"".join(chunks), snippet)
                headers = [
                    (k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"
                ]
                headers.append((b"content-length", str(len(body)).encode()))
                await send({**start, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        return _send


def install() -> bool:
    """Add :class:`OfflineAssets` to the marimo servers this process starts; set run-on-open.

    Returns False (and marimo still runs, with MathJax from its CDN) if this marimo has no
    middleware registry where this module expects it.
    """
    os.environ[AUTO_INSTANTIATE_ENV] = "true"
    os.environ[SERVED_ENV] = "1"
    try:
        from marimo._server.registry import MIDDLEWARE_REGISTRY
        from starlette.middleware import Middleware
    except ImportError:
        return False
    MIDDLEWARE_REGISTRY.register(_REGISTRY_NAME, Middleware(OfflineAssets, mathjax=mathjax_file()))
    return True


def main(argv: list[str] | None = None) -> None:
    """Run marimo's command line (``edit …`` or ``run …``) with :func:`install` applied."""
    if not install():
        print(
            "infphys labs: this marimo has no middleware registry; charts will load MathJax "
            "from its CDN",
            file=sys.stderr,
        )
    from marimo._cli.cli import main as marimo_main

    args = sys.argv[1:] if argv is None else argv
    _spawn_without_main()
    marimo_main(args=args, prog_name="marimo")


def _spawn_without_main() -> None:
    """Keep marimo's kernel processes from importing this module (and so all of infphys).

    marimo's editor starts each notebook's kernel with ``multiprocessing``'s *spawn* method,
    which first re-imports the parent's ``__main__`` module in the child: run as
    ``python -m infphys.labs_server`` that is this module, hence the ``infphys`` package and
    pandas, about 0.5 s of CPU before the kernel can run a lab's first cell. The kernel needs
    nothing from here (its target is marimo's own function), so the main module is made
    anonymous, as for ``python -c``: spawn then imports no main module at all.
    """
    main_module = sys.modules.get("__main__")
    spec = getattr(main_module, "__spec__", None)
    if main_module is None or getattr(spec, "name", None) != "infphys.labs_server":
        return  # started some other way: leave that program's main module alone
    main_module.__spec__ = None
    if hasattr(main_module, "__file__"):
        del main_module.__file__


if __name__ == "__main__":
    main()
