"""The built wheel carries the labs: ``infphys labs`` works with no checkout in sight.

The test copies the tracked source to a temporary folder (so the build leaves nothing in the
checkout), builds the wheel offline (``pip wheel --no-deps --no-build-isolation``), installs it
with ``--no-index --no-deps`` into a fresh virtual environment, and runs that environment's
``infphys`` from a folder outside the checkout. Dependencies (numpy, typer, …) come from the
development environment's site-packages on ``PYTHONPATH``; the test checks that ``infphys``
itself is imported from the fresh environment, not from the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LABS = sorted(p.name for p in (REPO / "labs").glob("[0-9][0-9]_*.py"))

pytestmark = pytest.mark.slow


def _source_copy(dest: Path) -> Path:
    """The files git tracks (plus untracked, not ignored ones), copied to ``dest``."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
        ).stdout.split(b"\0")
        names = [n.decode() for n in listed if n]
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("needs git to list the source files")
    for name in names:
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def _run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)  # type: ignore[call-overload]
    assert result.returncode == 0, f"{cmd}\n{result.stdout}\n{result.stderr}"
    return result


def test_wheel_ships_the_labs_and_infphys_labs_copies_them(tmp_path: Path) -> None:
    # Every lab of the checkout, 01 to 13.
    assert [name[:2] for name in LABS] == [f"{i:02d}" for i in range(1, 14)]
    src = _source_copy(tmp_path / "src")
    dist = tmp_path / "dist"
    _run(
        [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
         "--no-index", "-w", str(dist), "-q"]
    )  # fmt: skip
    (wheel,) = dist.glob("infphys-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    shipped = sorted(Path(n).name for n in names if n.startswith("infphys/labs_data/"))
    assert [n for n in shipped if n.endswith(".py")] == LABS
    # The MathJax the labs serve offline (infphys.labs_server), with its licence.
    assert "infphys/_vendor/mathjax/tex-svg.js" in names
    assert "infphys/_vendor/mathjax/LICENSE" in names

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    py = venv / "bin" / "python"
    _run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "--no-index", "--no-deps",
         "-q", str(wheel)]
    )  # fmt: skip

    work = tmp_path / "learner"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "INFPHYS_ANSWERS_DIR")}
    env["PYTHONPATH"] = sysconfig.get_paths()["purelib"]  # the deps, not the checkout
    where = _run([str(py), "-c", "import infphys; print(infphys.__file__)"], cwd=work, env=env)
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout
    mathjax = _run(
        [str(py), "-c", "import infphys.labs_server as s; print(s.mathjax_file())"],
        cwd=work,
        env=env,
    )
    assert Path(mathjax.stdout.strip()).is_relative_to(venv), mathjax.stdout

    infphys = str(venv / "bin" / "infphys")
    listed = _run([infphys, "labs", "--list"], cwd=work, env=env)
    assert listed.stdout.split() == LABS
    assert "labs_data" in listed.stderr

    _run([infphys, "labs", "--copy-only"], cwd=work, env=env)
    copied = sorted(p.name for p in (work / "infphys-labs").glob("*.py"))
    assert copied == LABS
    # The copies are the labs of the checkout, byte for byte.
    for name in LABS:
        assert (work / "infphys-labs" / name).read_bytes() == (REPO / "labs" / name).read_bytes()
