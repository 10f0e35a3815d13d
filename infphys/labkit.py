"""The course labs as files a learner owns: where they ship, and copying them to a folder.

The labs are marimo notebooks. In a checkout they live in ``labs/``; in an installed wheel the
same files ship as package data in ``infphys/labs_data/`` (copied there at build time by
``setup.py``, so ``labs/`` stays their one source). :func:`lab_source` finds whichever exists.

``infphys labs`` never opens the packaged files themselves (site-packages is not the learner's,
and an upgrade would wipe their edits): :func:`copy_labs` copies them to a working folder, by
default ``./infphys-labs/``, and keeps a manifest of what it copied (``.infphys-labs.json``: the
SHA-256 of each file as shipped). On the next run a lab is

- ``copied`` when it is not in the folder yet,
- ``unchanged`` when the folder already holds the shipped text,
- ``updated`` when the learner never edited it (it still matches the manifest) but a newer
  infphys ships a different text,
- ``kept`` when the learner edited it: it is left alone, unless ``refresh=True``, which saves
  their version as ``<name>.bak`` and writes the shipped one (``refreshed``).

Answers (``answers/`` in the folder) are never touched.

Worked example::

    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> report = copy_labs(Path(tmp.name) / "labs")
    >>> len(report.notebooks), sorted(set(report.actions.values()))
    (13, ['copied'])
    >>> sorted(set(copy_labs(Path(tmp.name) / "labs").actions.values()))
    ['unchanged']
    >>> tmp.cleanup()
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

__all__ = [
    "MANIFEST",
    "CopyReport",
    "copy_labs",
    "default_work_dir",
    "lab_files",
    "lab_source",
]

#: The manifest file :func:`copy_labs` keeps in the working folder.
MANIFEST = ".infphys-labs.json"
#: A lab notebook's file name: two digits, an underscore, a name (``03_kv_cache.py``).
NOTEBOOK = re.compile(r"^\d\d_[A-Za-z0-9_]+\.py$")

Action = Literal["copied", "unchanged", "updated", "kept", "refreshed"]


def lab_source() -> Path:
    """The folder the labs ship in: ``infphys/labs_data`` (wheel), else ``labs/`` (checkout).

    Raises:
        FileNotFoundError: when neither holds a notebook (a broken install).
    """
    package = Path(__file__).resolve().parent
    for folder in (package / "labs_data", package.parent / "labs"):
        if folder.is_dir() and any(NOTEBOOK.match(p.name) for p in folder.iterdir()):
            return folder
    raise FileNotFoundError(
        f"no lab notebooks in {package / 'labs_data'} or {package.parent / 'labs'}: "
        "reinstall infphys (pip install --force-reinstall 'infphys[labs]')"
    )


def lab_files(source: Path | None = None) -> list[Path]:
    """The files that make up the labs: every regular file of the source folder, sorted.

    Notebooks and any configuration shipped beside them (caches and hidden files left out).
    """
    folder = source or lab_source()
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix not in (".pyc", ".bak")
    )


def default_work_dir() -> Path:
    """Where ``infphys labs`` copies the labs by default: ``./infphys-labs``."""
    return Path("infphys-labs")


@dataclass
class CopyReport:
    """What :func:`copy_labs` did: the folder, and an action per file name."""

    folder: Path
    actions: dict[str, Action] = field(default_factory=dict)

    @property
    def notebooks(self) -> list[str]:
        """The lab notebooks now in the folder (file names)."""
        return [n for n in self.actions if NOTEBOOK.match(n)]

    def by_action(self, action: Action) -> list[str]:
        """File names that got ``action``."""
        return [n for n, a in self.actions.items() if a == action]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_manifest(folder: Path) -> dict[str, str]:
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        return {}
    return {str(k): str(v) for k, v in files.items()}


def copy_labs(folder: Path, *, refresh: bool = False, source: Path | None = None) -> CopyReport:
    """Copy the labs into ``folder`` (created if needed) without losing a learner's edits.

    See the module docstring for the actions. ``refresh=True`` replaces edited labs too, after
    saving each edited one as ``<name>.bak``. Returns what happened to each file.
    """
    src = source or lab_source()
    folder.mkdir(parents=True, exist_ok=True)
    shipped_before = _read_manifest(folder)
    report = CopyReport(folder=folder)
    manifest: dict[str, str] = dict(shipped_before)
    for path in lab_files(src):
        dest = folder / path.name
        new_hash = _sha256(path)
        action: Action
        if not dest.exists():
            action = "copied"
        else:
            have = _sha256(dest)
            if have == new_hash:
                action = "unchanged"
            elif shipped_before.get(path.name) == have:
                action = "updated"
            elif refresh:
                shutil.copyfile(dest, dest.with_name(dest.name + ".bak"))
                action = "refreshed"
            else:
                report.actions[path.name] = "kept"
                continue
        if action != "unchanged":
            shutil.copyfile(path, dest)
        manifest[path.name] = new_hash
        report.actions[path.name] = action
    text = json.dumps({"files": dict(sorted(manifest.items()))}, indent=2) + "\n"
    (folder / MANIFEST).write_text(text, encoding="utf-8")
    return report
