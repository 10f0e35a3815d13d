"""The install paths the docs give are the ones pyproject.toml defines, and ``.[labs]`` is enough
to open every lab: no lab imports (directly or through infphys) a package outside the core
dependencies and marimo.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
LABS = sorted((REPO / "labs").glob("[0-9][0-9]_*.py"))
#: Import names of the optional extras' packages a lab must not need (gpu, docs, dev).
NOT_IN_LABS = [
    "torch", "mkdocs", "material", "mkdocs_jupyter", "mkdocstrings", "nbconvert", "ipykernel",
    "pytest", "hypothesis", "openai", "playwright", "ruff", "mypy",
]  # fmt: skip


def _setup_commands(readme: str) -> list[str]:
    section = readme.split("## Set up", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return block.splitlines()


def test_readme_setup_is_install_then_test_then_the_learner_path() -> None:
    lines = _setup_commands((REPO / "README.md").read_text())
    assert lines[:2] == ['pip install -e ".[dev]"', "pytest"]
    assert 'pip install -e ".[labs]"' in lines[2]


def test_extras_are_what_the_docs_say() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert extras["labs"] == ["marimo==0.25.2"]  # the labs need marimo and nothing else
    assert extras["gpu"] == ["torch==2.13.0"]
    assert not any("torch" in d for d in extras["labs"] + extras["docs"])
    assert "infphys[gpu,labs,docs,dask]" in extras["dev"]  # contributors test every extra
    assert extras["dask"] == ["dask[distributed]>=2024.1"]  # the fleet planner's cluster path


def test_docs_give_only_the_three_install_recipes() -> None:
    allowed = re.compile(
        r'pip install (-e "\.\[(labs|dev|gpu)\]"|--no-index --find-links wheels/ "infphys\[labs\]"'
        r"|--force-reinstall 'infphys\[labs\]'|'infphys\[labs\]')"
    )
    texts = [REPO / "README.md", REPO / "docs" / "index.md", REPO / "docs" / "instructors.md"]
    texts += [REPO / "docs" / "labs" / "index.md"]
    for path in texts:
        for m in re.finditer(r"pip install [^\n`]*", path.read_text()):
            line = m.group(0)
            if "torch" in line or "jupyterlab" in line or "vllm" in line:
                continue
            assert allowed.match(line), f"{path.name}: {line!r}"


def _lab_imports() -> list[str]:
    statements = set()
    for lab in LABS:
        for node in ast.walk(ast.parse(lab.read_text())):
            if isinstance(node, ast.Import | ast.ImportFrom):
                statements.add(ast.unparse(node))
    return sorted(statements)


def test_pep723_headers_list_only_core_and_labs_packages() -> None:
    core = {re.split(r"[<>=\[ ]", d)[0] for d in PYPROJECT["project"]["dependencies"]}
    allowed = core | {"marimo", "infphys"}
    for lab in LABS:
        header = lab.read_text().split("# ///", 2)[1]
        deps = re.findall(r'^#\s+"([A-Za-z0-9_.-]+)', header, re.MULTILINE)
        assert deps and set(deps) <= allowed, (lab.name, set(deps) - allowed)


def test_every_lab_import_works_without_the_other_extras(tmp_path: Path) -> None:
    """Run every import statement of every lab with the gpu/docs/dev packages made unimportable."""
    script = tmp_path / "imports.py"
    script.write_text(
        "import importlib.abc, sys\n"
        f"BLOCKED = {NOT_IN_LABS!r}\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in BLOCKED:\n"
        "            raise ModuleNotFoundError(f'{name} is not in .[labs]')\n"
        "        return None\n"
        "sys.meta_path.insert(0, Block())\n"
        + "".join(f"{s}\n" for s in _lab_imports())
        + "import infphys.cli, infphys.exercises.ui\n"
        + "print(sorted(m for m in sys.modules if m.split('.')[0] in BLOCKED))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
