"""The public API is what ``__all__`` says, in every package that the labs import."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import pytest

import infphys

PACKAGES = [
    "infphys",
    *sorted(
        f"infphys.{m.name}"
        for m in pkgutil.iter_modules(infphys.__path__)
        if m.ispkg and m.name not in {"cli"}
    ),
]


def _isort_key(name: str) -> tuple[int, list[int | str]]:
    """ruff's RUF022 order: CONSTANTS, then Classes, then functions; digits compared as numbers."""
    kind = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    parts = re.split(r"(\d+)", name.lower())
    return kind, [int(p) if p.isdigit() else p for p in parts]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_unique_and_importable(name: str) -> None:
    mod = importlib.import_module(name)
    exported = list(mod.__all__)
    assert exported in (sorted(exported), sorted(exported, key=_isort_key)), (
        f"{name}.__all__ is not sorted"
    )
    assert len(set(exported)) == len(exported), f"{name}.__all__ has duplicates"
    for attr in exported:
        assert hasattr(mod, attr), f"{name}.__all__ names {attr!r} which is missing"


def _is_public_export(name: str, value: object) -> bool:
    """Public names a package defines: infphys classes and functions, and UPPER_CASE constants."""
    if name.startswith("_") or inspect.ismodule(value):
        return False
    if inspect.isclass(value) or inspect.isfunction(value):
        return str(getattr(value, "__module__", "")).startswith("infphys")
    return name.isupper()


@pytest.mark.parametrize("name", PACKAGES)
def test_every_public_name_is_in_all(name: str) -> None:
    mod = importlib.import_module(name)
    public = {k for k, v in vars(mod).items() if _is_public_export(k, v)}
    missing = public - set(mod.__all__)
    assert not missing, f"{name} exports {sorted(missing)} without listing them in __all__"


def test_subpackages_found() -> None:
    assert "infphys.catalog" in PACKAGES and "infphys.physics" in PACKAGES


def test_top_level_reexports_physics_and_catalog() -> None:
    assert infphys.kv_bytes_per_token is infphys.physics.kv_bytes_per_token
    assert infphys.get_gpu is infphys.catalog.get_gpu
    assert infphys.__version__


def test_the_version_is_written_once_in_pyproject() -> None:
    # pyproject.toml holds the version; the package, run files and answer books read the
    # installed distribution's metadata rather than a second copy of the string.
    import tomllib
    from pathlib import Path

    from infphys.records import versions

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    declared = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"]
    assert infphys.__version__ == declared
    assert versions()["infphys"] == declared
    init = Path(infphys.__file__).read_text(encoding="utf-8")
    assert declared not in init, "infphys/__init__.py repeats the version string"
