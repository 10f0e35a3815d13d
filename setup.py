"""Build hook: ship the course labs (``labs/*.py``, the one source in git) inside the wheel.

Everything else about the package is in ``pyproject.toml``. When a wheel is built, the files of
``labs/`` are copied to ``infphys/labs_data/`` in the build tree, where ``infphys labs`` finds
them after ``pip install infphys``; an editable install reads ``labs/`` in the checkout instead.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

LABS = Path(__file__).resolve().parent / "labs"


class build_py_with_labs(build_py):
    """``build_py`` that also copies ``labs/`` to ``infphys/labs_data/`` in the build tree."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False) or not LABS.is_dir():
            return
        target = Path(self.build_lib) / "infphys" / "labs_data"
        target.mkdir(parents=True, exist_ok=True)
        for path in sorted(LABS.iterdir()):
            if path.is_file() and not path.name.startswith("."):
                shutil.copyfile(path, target / path.name)


setup(cmdclass={"build_py": build_py_with_labs})
