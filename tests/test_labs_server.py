"""``infphys.labs_server``: labs run on open, and MathJax comes from the labs' own server.

The middleware is checked on a stand-in ASGI app (the HTML it serves gains the script first in
its ``<head>``, with a correct length; other responses pass untouched; MathJax is served), then
inside marimo's own server app, so a marimo upgrade that drops the middleware registry fails
here. The run-on-open setting is checked through marimo's own config manager, against a user
config that says ``auto_instantiate = false``. The browser side is ``test_labs_browser.py``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("marimo")

from starlette.applications import Starlette
from starlette.responses import HTMLResponse, PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

import infphys.labs_server as ls

REPO = Path(__file__).resolve().parents[1]
PAGE = "<!doctype html><html><head><title>lab</title></head><body>hi</body></html>"


def _client(mathjax: Path | None) -> TestClient:
    async def page(request: object) -> HTMLResponse:
        return HTMLResponse(PAGE)

    async def text(request: object) -> PlainTextResponse:
        return PlainTextResponse("<head>not html</head>")

    app = Starlette(routes=[Route("/", page), Route("/api/text", text)])
    return TestClient(ls.OfflineAssets(app, mathjax=mathjax))


def test_html_pages_get_the_script_first_in_head(tmp_path: Path) -> None:
    mathjax = tmp_path / "tex-svg.js"
    mathjax.write_text("window.MathJax = {version: '3.2.2'};")
    resp = _client(mathjax).get("/?file=01_preflight.py")
    assert resp.status_code == 200
    assert int(resp.headers["content-length"]) == len(resp.content)
    head = resp.text.split("<head>", 1)[1]
    assert head.startswith('<script data-infphys="offline-mathjax">')
    assert 'const LOCAL = "./_infphys/mathjax/tex-svg.js";' in head
    assert head.index("</script>") < head.index("<title>lab</title>")
    # Not HTML: untouched.
    assert _client(mathjax).get("/api/text").text == "<head>not html</head>"


def test_mathjax_is_served_from_the_route(tmp_path: Path) -> None:
    mathjax = tmp_path / "tex-svg.js"
    mathjax.write_bytes(b"/* mathjax */")
    client = _client(mathjax)
    resp = client.get(ls.MATHJAX_ROUTE)
    assert resp.status_code == 200 and resp.content == b"/* mathjax */"
    assert resp.headers["content-type"].startswith("text/javascript")
    # Under a base URL too (the route is matched by its ending).
    assert client.get("/course" + ls.MATHJAX_ROUTE).content == b"/* mathjax */"


def test_without_mathjax_the_script_still_makes_remote_mathjax_inert() -> None:
    client = _client(None)
    assert client.get(ls.MATHJAX_ROUTE).status_code == 404
    assert 'const LOCAL = "";' in client.get("/").text


def test_the_repository_vendors_mathjax_3() -> None:
    path = ls.mathjax_file()
    assert path is not None, "docs/assets/vendor/mathjax/tex-svg.js is missing"
    assert b"3.2.2" in path.read_bytes()[:4000] or b"3.2.2" in path.read_bytes()


def test_head_script_refuses_a_url_that_could_break_out() -> None:
    with pytest.raises(ValueError, match="unsafe"):
        ls.head_script('x";alert(1);"')


def test_install_adds_the_middleware_to_marimos_server_app() -> None:
    from marimo._server.main import create_starlette_app
    from marimo._server.registry import MIDDLEWARE_REGISTRY

    try:
        assert ls.install() is True
        app = create_starlette_app(base_url="", enable_auth=False)
        assert any(m.cls is ls.OfflineAssets for m in app.user_middleware)
        assert os.environ[ls.AUTO_INSTANTIATE_ENV] == "true"
    finally:
        MIDDLEWARE_REGISTRY.unregister("infphys-offline-assets")
        os.environ.pop(ls.AUTO_INSTANTIATE_ENV, None)


_CONFIG_PROBE = """
import json, sys
from marimo._config.manager import get_default_config_manager
cfg = get_default_config_manager(current_path=sys.argv[1]).get_config()
print(json.dumps(cfg["runtime"]["auto_instantiate"]))
"""


def _auto_instantiate(notebook: Path, home: Path, extra_env: dict[str, str]) -> bool:
    (home / "marimo").mkdir(parents=True, exist_ok=True)
    (home / "marimo" / "marimo.toml").write_text("[runtime]\nauto_instantiate = false\n")
    env = {k: v for k, v in os.environ.items() if k != ls.AUTO_INSTANTIATE_ENV}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home), **extra_env)
    out = subprocess.run(
        [sys.executable, "-c", _CONFIG_PROBE, str(notebook)],
        capture_output=True,
        text=True,
        env=env,
        cwd=home,
        timeout=120,
        check=True,
    )
    return bool(json.loads(out.stdout.strip().splitlines()[-1]))


def test_labs_run_on_open_over_a_users_config(tmp_path: Path) -> None:
    """A user config saying ``auto_instantiate = false`` loses to the repository's pyproject,
    and, for a copy of a lab outside the repository, to the variable ``infphys labs`` sets."""
    lab = REPO / "labs" / "01_preflight.py"
    assert _auto_instantiate(lab, tmp_path / "home", {}) is True
    copy = tmp_path / "elsewhere" / lab.name
    copy.parent.mkdir()
    copy.write_text(lab.read_text())
    assert _auto_instantiate(copy, tmp_path / "home", {}) is False  # the user's setting
    on = {ls.AUTO_INSTANTIATE_ENV: "true"}
    assert _auto_instantiate(copy, tmp_path / "home", on) is True


def test_one_default_gpu_for_the_home_page_lab1_and_the_simulator() -> None:
    """The simulator's default GPU is the one the home page's numbers and Lab 1's theory use."""
    import inspect

    from infphys.resolve import DEFAULT_GPU, DEFAULT_MODEL, resolve_target
    from infphys.sim.server import serve

    defaults = inspect.signature(resolve_target).parameters
    assert defaults["sim_gpu"].default == DEFAULT_GPU == "h200"
    assert defaults["sim_model"].default == DEFAULT_MODEL
    assert inspect.signature(serve).parameters["gpu"].default == DEFAULT_GPU
    index = (REPO / "docs" / "index.md").read_text()
    assert "gpu(infphys_default_gpu)" in index
    assert not re.search(r"""gpu\(["']""", index), "the home page names a GPU of its own"
    lab1 = (REPO / "labs" / "01_preflight.py").read_text()
    # Lab 1's theory starts at labsetup.theory_selects, whose fallback is DEFAULT_GPU.
    assert "labsetup.theory_selects(resolved)" in lab1 and "H200 SXM" not in lab1
    from types import SimpleNamespace
    from typing import Any

    from infphys.catalog import get_gpu
    from infphys.exercises import labsetup

    no_simulator: Any = SimpleNamespace(sim_config=None)
    assert labsetup.theory_selects(no_simulator).value[0] == get_gpu(DEFAULT_GPU)
    site_hook = (REPO / "docs" / "hooks" / "infphys_site.py").read_text()
    assert "infphys_default_gpu=DEFAULT_GPU" in site_hook


def test_kernels_spawned_by_the_labs_server_do_not_reimport_infphys() -> None:
    # Run as ``python -m infphys.labs_server``, a spawned child would first import this module
    # (and infphys, pandas) as its main; after _spawn_without_main it imports no main module.
    code = (
        "import multiprocessing.spawn as sp, sys, types\n"
        "main = types.ModuleType('__main__')\n"
        "main.__spec__ = types.SimpleNamespace(name='infphys.labs_server')\n"
        "main.__file__ = 'labs_server.py'\n"
        "sys.modules['__main__'] = main\n"
        "before = sp.get_preparation_data('k')\n"
        "import infphys.labs_server as ls\n"
        "ls._spawn_without_main()\n"
        "after = sp.get_preparation_data('k')\n"
        "print(before.get('init_main_from_name'), after.get('init_main_from_name'),\n"
        "      after.get('init_main_from_path'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["infphys.labs_server", "None", "None"]


def test_a_program_that_calls_main_keeps_its_main_module() -> None:
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    ls._spawn_without_main()
    assert getattr(sys.modules["__main__"], "__spec__", None) is spec


def test_install_tells_the_kernels_they_are_served_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    # The kernels inherit the server's environment; infphys.exercises.ui.offline_note reads it.
    monkeypatch.delenv(ls.SERVED_ENV, raising=False)
    monkeypatch.delenv(ls.AUTO_INSTANTIATE_ENV, raising=False)
    ls.install()
    assert os.environ[ls.SERVED_ENV] == "1"
    from infphys.exercises import ui

    assert "cdn" not in ui.offline_note().text
