"""The lab snapshots and the Day-3 notebook, run in the background for the site build.

MkDocs-free except for its ``PluginError`` (what a failed job raises), so the runner can be
driven and tested on its own; ``infphys_labs.py`` is the MkDocs glue that starts it, waits for
it and places what it made.

- :func:`find_labs`: every ``labs/NN_*.py`` with its title and time budget.
- :func:`start_jobs`: the labs not in the cache exported by one ``labs_export.py`` process
  (``marimo export html`` of each, longest first, several at once, their kernels forked from
  one warm forkserver) and one nbconvert run of the notebook, against the embedded simulator,
  in the background; :meth:`Jobs.result` waits for one. Results are cached under
  :func:`cache_dir`, keyed by a hash of the lab (or notebook), every file of the ``infphys``
  package and the marimo version.
- :func:`rewrite_snapshot`, :func:`snapshot_problems`, :func:`copy_marimo_frontend`: point a
  snapshot at the site's copy of marimo's frontend and check that nothing is left on a CDN.
  ``notebook_page.py`` turns the executed notebook into the site's page.

Example: ``jobs = start_jobs(Path(".")); jobs.result("03_kv_cache").path`` is the exported
HTML of Lab 3 once the exporter has reported it (from an empty cache on two cores, the 13 labs
take 36 s, Lab 10 the longest).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import json
import logging
import os
import posixpath
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

if str(Path(__file__).resolve().parent) not in sys.path:  # its sibling, without the hook's help
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from notebook_page import notebook_for_site

log = logging.getLogger("mkdocs.hooks.infphys_labs")

#: Bump when the way labs are exported or the notebook executed changes (invalidates the
#: cache). Pointing a snapshot at the local frontend is redone on every build, not cached.
PIPELINE_VERSION = "8"
#: Where things go in the built site.
SNAPSHOT_DIR = "labs/snapshots"
MARIMO_DIR = "assets/vendor/marimo"
MATHJAX_JS = "assets/vendor/mathjax/tex-svg.js"
#: The notebook: its source in the repository and its page in the site.
NOTEBOOK_SRC = "notebooks/day3_walkthrough.ipynb"
NOTEBOOK_URI = "notebooks/day3_walkthrough.ipynb"
#: The executed notebook, as nbconvert wrote it, in its cache folder.
RAW_NOTEBOOK = "executed.ipynb"
#: Nothing listens on the discard port, so the labs fall back to the embedded simulator rather
#: than measure whatever answers on localhost:8000 of a shared machine.
NO_SERVER_URL = "http://127.0.0.1:9"
#: Seconds one lab export or the notebook may take before the build gives up on it.
JOB_TIMEOUT_S = 300.0
#: Seconds a job's process has to end after SIGTERM before it is killed.
STOP_GRACE_S = 10.0
#: The program that exports the labs (one process for all of them).
EXPORTER = Path(__file__).resolve().parent / "labs_export.py"

_MARIMO_CDN = re.compile(r"https://cdn\.jsdelivr\.net/npm/@marimo-team/frontend@[^/\"']+/dist/")
_MATHJAX_CDN = re.compile(r"`https://cdn\.jsdelivr\.net/npm/mathjax-full@[^`]+`")
#: A resource the browser would fetch from another host (what the browser test forbids).
_EXTERNAL_RESOURCE = re.compile(
    r"""<(?:script|img|iframe|source)[^>]*\ssrc=["'](?:https?:)?//"""
    r"""|<link[^>]*\shref=["'](?:https?:)?//""",
    re.I,
)
_TIME = re.compile(r"\*\*Time: about (\d+) minutes?\b")
_TITLE = re.compile(r"""app_title\s*=\s*(?:"([^"]+)"|'([^']+)')""")


# --- the labs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lab:
    """One marimo lab: ``labs/03_kv_cache.py``."""

    number: int
    path: Path
    title: str  # "Lab 3 · The KV-cache cliff" (the notebook's app_title)
    minutes: int  # the lab's own time budget

    @property
    def stem(self) -> str:
        return self.path.stem

    @property
    def snapshot_uri(self) -> str:
        return f"{SNAPSHOT_DIR}/{self.stem}.html"

    @property
    def short_title(self) -> str:
        """The title without the ``Lab N ·`` prefix."""
        return re.sub(r"^Lab\s+\d+\s*·\s*", "", self.title)


def find_labs(root: Path) -> dict[int, Lab]:
    """Every ``labs/NN_*.py`` by number, with the title and time budget each states."""
    labs: dict[int, Lab] = {}
    for path in sorted((root / "labs").glob("[0-9][0-9]_*.py")):
        number = int(path.name[:2])
        text = path.read_text(encoding="utf-8")
        title = _TITLE.search(text)
        minutes = _TIME.search(text)
        if title is None or minutes is None:
            raise PluginError(
                f"{path.relative_to(root)}: a lab needs app_title=... and a "
                "'**Time: about N minutes**' line (the lab pages read both)"
            )
        if number in labs:
            raise PluginError(
                f"two labs numbered {number:02d}: {labs[number].path.name}, {path.name}"
            )
        name = title.group(1) or title.group(2)
        labs[number] = Lab(number, path, name, int(minutes.group(1)))
    return labs


# --- cache keys ------------------------------------------------------------------------------


def _tree_digest(root: Path) -> str:
    """A hash of every file of the infphys package (its source and data), and of marimo."""
    import marimo

    h = hashlib.sha256(f"pipeline {PIPELINE_VERSION} marimo {marimo.__version__}".encode())
    for path in sorted((root / "infphys").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            h.update(path.relative_to(root).as_posix().encode())
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def _key(source: Path, tree: str) -> str:
    return hashlib.sha256(source.read_bytes() + tree.encode()).hexdigest()[:16]


def cache_dir() -> Path:
    """``$INFPHYS_SITE_CACHE``, else ``$XDG_CACHE_HOME/infphys/site`` (``~/.cache/...``)."""
    configured = os.environ.get("INFPHYS_SITE_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "infphys" / "site"


# --- rewriting a snapshot to the local frontend ----------------------------------------------


def rewrite_snapshot(text: str, assets_url: str) -> str:
    """Point a ``marimo export html`` page at a local copy of marimo's frontend.

    ``assets_url`` is the copy's URL relative to the page (``../../assets/vendor/marimo/``).
    Raises ``ValueError`` if the page still loads anything from another host.
    """
    out = _MARIMO_CDN.sub(assets_url, text)
    found = _EXTERNAL_RESOURCE.search(out)
    if found:
        raise ValueError(f"still loads from another host: {out[found.start() : found.end() + 80]}")
    return out


def snapshot_problems(text: str) -> tuple[int, list[str]]:
    """The number of plotly figures in a snapshot, and the cells that ended in an error."""
    start = text.find('"session": ')
    if start < 0:
        return 0, ["no session data: the export did not run the notebook"]
    session, _ = json.JSONDecoder().raw_decode(text, start + len('"session": '))
    errors = []
    for cell in session.get("cells", []):
        for output in cell.get("outputs", []):
            data = output.get("data") or {}
            if output.get("type") == "error" and "evalue" in output:  # what the cell raised
                what = f"{output.get('ename')}: {output['evalue']}"
            elif output.get("type") == "error" or any("error" in str(m) for m in data):
                what = json.dumps(data)
            else:
                continue
            errors.append(f"cell {cell.get('id')}: {what[:300]}")
    return text.count("marimo-plotly data-figure="), errors  # "<" is escaped in the JSON


def copy_marimo_frontend(site_dir: Path) -> Path:
    """Copy the marimo wheel's frontend into the site once; point its MathJax at the site's."""
    import marimo

    static = Path(marimo.__file__).parent / "_static"
    dest = site_dir / MARIMO_DIR
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(static, dest, ignore=shutil.ignore_patterns("*.md", "index.html"))
    mathjax = posixpath.relpath(MATHJAX_JS, f"{MARIMO_DIR}/assets")
    replacement = f"new URL(`{mathjax}`,import.meta.url).href"
    patched = 0
    for js in (dest / "assets").glob("*.js"):
        text = js.read_text(encoding="utf-8")
        if "mathjax-full@" in text:
            new, n = _MATHJAX_CDN.subn(replacement, text)
            if n:
                js.write_text(new, encoding="utf-8")
                patched += n
    if not patched:
        raise PluginError(
            f"marimo {marimo.__version__}: its frontend no longer names MathJax's CDN the way "
            "this hook expects; check docs/hooks/infphys_labs.py"
        )
    return dest


# --- background jobs ---------------------------------------------------------------------------


@dataclass
class Result:
    """A finished snapshot or notebook: the cached file and what the job found."""

    path: Path
    seconds: float
    cached: bool
    charts: int = 0

    @classmethod
    def from_cache(cls, path: Path, meta_path: Path) -> Result | None:
        """What an earlier build cached at ``path``, or None when it or its metadata is missing."""
        if not (path.is_file() and meta_path.is_file()):
            return None
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        return cls(path, float(meta["seconds"]), True, int(meta["charts"]))

    @classmethod
    def fresh(cls, path: Path, meta_path: Path, seconds: float, charts: int) -> Result:
        """A job's new result, its metadata written next to it for the next build."""
        write_atomic(meta_path, json.dumps({"seconds": round(seconds, 2), "charts": charts}))
        return cls(path, seconds, False, charts)


@dataclass
class Jobs:
    """The build's snapshot and notebook jobs, running in the background."""

    root: Path
    enabled: bool
    labs: dict[int, Lab] = field(default_factory=dict)
    tree: str = ""  # the infphys package's digest (part of every cache key)
    cache: Path = field(default_factory=lambda: cache_dir())
    futures: dict[str, concurrent.futures.Future[Result]] = field(default_factory=dict)
    pool: concurrent.futures.ThreadPoolExecutor | None = None
    procs: set[subprocess.Popen[str]] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    started: float = field(default_factory=time.perf_counter)

    def result(self, name: str) -> Result:
        try:
            return self.futures[name].result()
        except PluginError:
            raise
        except Exception as exc:
            raise PluginError(f"infphys_labs: {name}: {exc}") from exc

    def shutdown(self) -> None:
        """Stop every job's process and wait for the job threads."""
        with self.lock:
            procs = list(self.procs)
        _stop(procs)
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


def _stop(procs: list[subprocess.Popen[str]]) -> None:
    """SIGTERM each of ``procs`` (the lab exporter then stops its kernels); SIGKILL those still
    running :data:`STOP_GRACE_S` later."""
    for proc in procs:
        with contextlib.suppress(OSError):
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _job_env(tmp: Path, root: Path) -> dict[str, str]:
    """The environment of a lab or notebook run: the simulator, nothing from the user's setup."""
    env = dict(os.environ)
    for name in (
        "NIM_GEN_MODEL",
        "NIM_CHAT_PATH",
        "NIM_API_KEY",
        "OPENAI_API_KEY",
        "INFPHYS_LEARNER",
    ):
        env.pop(name, None)
    env.pop("INFPHYS_ANSWERS_DIR", None)  # the default, answers/ in the job's own folder
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    env.update(
        NIM_BASE_URL=NO_SERVER_URL,
        # The snapshot's pages load MathJax from the site's vendored copy (this hook rewrites
        # marimo's CDN URL), as under `infphys labs`: no "this page reaches a CDN" note.
        INFPHYS_LABS_SERVER="1",
        PLOTLY_RENDERER="plotly_mimetype",
        MPLBACKEND="Agg",
        PYTHONUNBUFFERED="1",
    )
    return env


def _run(jobs: Jobs, cmd: list[str], cwd: Path, env: dict[str, str], what: str) -> str:
    """Run a job's subprocess (killed when the build stops); its output, or PluginError."""
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    with jobs.lock:
        jobs.procs.add(proc)
    try:
        out, _ = proc.communicate(timeout=JOB_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise PluginError(f"{what} took more than {JOB_TIMEOUT_S:.0f} s:\n{out[-3000:]}") from None
    finally:
        with jobs.lock:
            jobs.procs.discard(proc)
    if proc.returncode != 0:
        raise PluginError(f"{what} failed (exit {proc.returncode}):\n{out[-3000:]}")
    return out


#: A cached snapshot of another key is deleted only once this old, seconds: several builds of
#: different trees may share the cache, and one must not delete what another is about to read.
STALE_AFTER_S = 3600.0


def _prune(folder: Path, pattern: str, keep: tuple[Path, ...]) -> None:
    """Delete the entries of ``folder`` matching ``pattern`` that are not in ``keep`` and were
    last written more than :data:`STALE_AFTER_S` ago."""
    now = time.time()
    for old in folder.glob(pattern):
        if old in keep:
            continue
        with contextlib.suppress(OSError):
            if now - old.stat().st_mtime > STALE_AFTER_S:
                old.unlink()


def _snapshot_path(cache: Path, lab: Lab, tree: str) -> Path:
    """Where the snapshot of ``lab`` is cached (its metadata beside it, ``.json``)."""
    return cache / "snapshots" / f"{lab.stem}.{_key(lab.path, tree)}.html"


def _export_snapshots(jobs: Jobs, todo: dict[str, tuple[Lab, Path]], at_once: int) -> None:
    """Export every lab of ``todo`` (stem → the lab, its cache path), in that order, with one
    ``labs_export.py`` process running ``at_once`` of them; settle each lab's future as the
    process reports it, and fail those it never reported with its log."""
    try:
        with tempfile.TemporaryDirectory(prefix="infphys-snapshots-") as tmp_name:
            tmp = Path(tmp_name)
            # Copies, in a folder of this build's own: the labs run there (answers/ would be
            # there, not in labs/), with the project's [tool.marimo] settings in a copy of
            # pyproject.toml (marimo reads the nearest one).
            if (jobs.root / "pyproject.toml").is_file():
                shutil.copyfile(jobs.root / "pyproject.toml", tmp / "pyproject.toml")
            for lab, _ in todo.values():
                shutil.copyfile(lab.path, tmp / lab.path.name)
            cmd = [
                sys.executable, str(EXPORTER), "--jobs", str(at_once),
                "--timeout", str(JOB_TIMEOUT_S), *(lab.path.name for lab, _ in todo.values()),
            ]  # fmt: skip
            log_path = tmp / "export.log"
            with open(log_path, "w", encoding="utf-8") as log_file:
                proc = subprocess.Popen(
                    cmd, cwd=tmp, env=_job_env(tmp, jobs.root), stdout=subprocess.PIPE,
                    stderr=log_file, text=True,
                )  # fmt: skip
            with jobs.lock:
                jobs.procs.add(proc)
            # A bound on the whole batch: each lab's own is JOB_TIMEOUT_S, inside the exporter.
            rounds = -(-len(todo) // at_once)
            watchdog = threading.Timer(JOB_TIMEOUT_S * rounds + 60, _stop, args=([proc],))
            watchdog.start()
            try:
                assert proc.stdout is not None
                for line in proc.stdout:
                    row = json.loads(line)
                    lab, cached = todo.pop(Path(row["lab"]).stem)
                    try:
                        jobs.futures[lab.stem].set_result(_snapshot(lab, cached, tmp, row))
                    except Exception as exc:  # this lab's page: its build fails, not the others'
                        jobs.futures[lab.stem].set_exception(exc)
                code = proc.wait()
            finally:
                watchdog.cancel()
                if proc.poll() is None:  # a report this could not read
                    _stop([proc])
                if proc.stdout is not None:
                    proc.stdout.close()
                with jobs.lock:
                    jobs.procs.discard(proc)
            log = log_path.read_text(encoding="utf-8", errors="replace")
            for lab, _ in todo.values():
                jobs.futures[lab.stem].set_exception(
                    PluginError(
                        f"marimo export of {lab.path.name}: the exporter ended (exit {code}) "
                        f"without it:\n{log[-3000:]}"
                    )
                )
    except Exception as exc:  # the futures must settle, or a page would wait for ever
        for lab, _ in todo.values():
            future = jobs.futures[lab.stem]
            if not future.done():
                future.set_exception(exc)
        raise


def _snapshot(lab: Lab, cached: Path, folder: Path, row: dict[str, Any]) -> Result:
    """Check the page ``labs_export.py`` reported in ``row`` and cache it at ``cached``."""
    output = str(row.get("output") or "")
    if row.get("error"):
        raise PluginError(f"marimo export of {lab.path.name}: {row['error']}\n{output[-3000:]}")
    page = folder / str(row["html"])
    if not page.is_file():
        raise PluginError(f"marimo export of {lab.path.name} wrote nothing:\n{output[-3000:]}")
    _note_lag(lab.path.name, output)
    text = page.read_text(encoding="utf-8")
    charts, errors = snapshot_problems(text)
    if errors or row.get("failed"):
        raise PluginError(
            f"{lab.path.name}: cells failed in the snapshot run:\n  "
            + "\n  ".join(errors)
            + f"\n{output[-3000:]}"
        )
    cached.parent.mkdir(parents=True, exist_ok=True)
    meta_path = cached.with_suffix(".json")
    _prune(cached.parent, f"{lab.stem}.*", keep=(cached, meta_path))
    write_atomic(cached, text)
    return Result.fresh(cached, meta_path, float(row["seconds"]), charts)


def notebook_dir(cache: Path, source: Path, tree: str) -> Path:
    """The folder that holds the executed notebook at ``NOTEBOOK_URI`` (a docs-like tree)."""
    return cache / "notebook" / f"{source.stem}.{_key(source, tree)}"


def _notebook_job(jobs: Jobs, source: Path, tree: str, cache: Path) -> Result:
    folder = notebook_dir(cache, source, tree)
    meta_path = folder / "meta.json"
    return Result.from_cache(folder / RAW_NOTEBOOK, meta_path) or _execute_notebook(
        jobs, source, folder, meta_path
    )


def _execute_notebook(jobs: Jobs, source: Path, folder: Path, meta_path: Path) -> Result:
    """Execute ``source`` with nbconvert and cache the result in ``folder``."""
    cached = folder / RAW_NOTEBOOK
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="infphys-notebook-") as tmp_name:
        tmp = Path(tmp_name)
        cmd = [
            sys.executable, "-m", "nbconvert", "--to", "notebook", "--execute",
            f"--ExecutePreprocessor.timeout={int(JOB_TIMEOUT_S)}",
            "--ExecutePreprocessor.kernel_name=python3",
            "--output-dir", str(tmp), "--output", source.name, str(source),
        ]  # fmt: skip
        env = _job_env(tmp, jobs.root)
        _note_lag(source.name, _run(jobs, cmd, source.parent, env, f"executing {source.name}"))
        nb = json.loads((tmp / source.name).read_text(encoding="utf-8"))
    seconds = time.perf_counter() - t0
    errors = [
        o.get("ename", "error") + ": " + str(o.get("evalue", ""))[:200]
        for c in nb.get("cells", [])
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    if errors:
        raise PluginError(f"{source.name}: cells raised: {errors}")
    _, charts = notebook_for_site(json.loads(json.dumps(nb)))
    now = time.time()
    for old in folder.parent.glob(f"{source.stem}.*"):
        with contextlib.suppress(OSError):
            if old != folder and now - old.stat().st_mtime > STALE_AFTER_S:
                shutil.rmtree(old, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    # The executed notebook as nbconvert wrote it; the page's copy is made from it each build.
    write_atomic(folder / RAW_NOTEBOOK, json.dumps(nb, ensure_ascii=False))
    return Result.fresh(cached, meta_path, seconds, charts)


_LAG = re.compile(r"falling behind the wall clock|did not keep up with the wall clock")


def _note_lag(what: str, output: str) -> None:
    """Say in the build log when a run's simulated server fell behind the wall clock."""
    lagged = len(_LAG.findall(output))
    if lagged:
        log.info(
            "infphys: %s: the simulated server fell behind the wall clock %d time(s) during the "
            "snapshot run (a busy machine); its measured latencies include that lag",
            what,
            lagged,
        )


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def start_jobs(root: Path) -> Jobs:
    enabled = os.environ.get("INFPHYS_SNAPSHOTS", "1").strip().lower() not in ("0", "false", "no")
    jobs = Jobs(root=root, enabled=enabled, labs=find_labs(root))
    if not enabled:
        log.info("infphys: INFPHYS_SNAPSHOTS=0: no lab snapshots, notebook not executed")
        return jobs
    jobs.tree = tree = _tree_digest(root)
    cache = jobs.cache
    # The labs wait on the simulated servers' clocks about half the time: CPUs + 2 at once
    # keeps the CPUs busy (a clean build on 2 cores: 63 s with 4 at once, 81 s with 3).
    at_once = max(1, int(os.environ.get("INFPHYS_SITE_JOBS") or (os.cpu_count() or 1) + 2))
    # Two threads: the notebook's run, and the one labs_export.py process for every lab not cached.
    jobs.pool = concurrent.futures.ThreadPoolExecutor(
        max_workers=2, thread_name_prefix="infphys-labs"
    )
    notebook = root / NOTEBOOK_SRC
    if notebook.is_file():
        jobs.futures[NOTEBOOK_URI] = jobs.pool.submit(_notebook_job, jobs, notebook, tree, cache)
    # Longest first, so that the slowest lab does not start last: as last measured, else (a
    # clean cache) from the last lab (the later labs run the longest load experiments).
    timings = _load_timings(cache)
    todo: dict[str, tuple[Lab, Path]] = {}
    for lab in sorted(jobs.labs.values(), key=lambda lab: -timings.get(lab.stem, 1e9 + lab.number)):
        cached = _snapshot_path(cache, lab, tree)
        future: concurrent.futures.Future[Result] = concurrent.futures.Future()
        jobs.futures[lab.stem] = future
        hit = Result.from_cache(cached, cached.with_suffix(".json"))
        if hit is not None:
            future.set_result(hit)
        else:
            todo[lab.stem] = (lab, cached)
    if todo:
        jobs.pool.submit(_export_snapshots, jobs, todo, at_once)
    return jobs


def _load_timings(cache: Path) -> dict[str, float]:
    with contextlib.suppress(OSError, ValueError):
        data = json.loads((cache / "timings.json").read_text(encoding="utf-8"))
        return {str(k): float(v) for k, v in data.items()}
    return {}


def save_timings(cache: Path, timings: dict[str, float]) -> None:
    with contextlib.suppress(OSError):
        cache.mkdir(parents=True, exist_ok=True)
        write_atomic(cache / "timings.json", json.dumps(timings, indent=1, sort_keys=True))
