"""Build hook: ship the course labs and the MathJax they need offline inside the wheel.

Everything else about the package is in ``pyproject.toml``. When a wheel is built,

- the files of ``labs/`` (the one source in git) are copied to ``infphys/labs_data/``, where
  ``infphys labs`` finds them after ``pip install infphys``;
- the MathJax 3 the site vendors (``docs/assets/vendor/mathjax/``: ``tex-svg.js`` from the npm
  package ``mathjax@3.2.2``, its licence and source note) is copied to
  ``infphys/_vendor/mathjax/``, where :func:`infphys.labs_server.mathjax_file` serves it from.

An editable install reads both from the checkout instead.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
#: Source folder in the checkout → folder under ``infphys/`` in the wheel.
PACKAGE_DATA = {
    ROOT / "labs": "labs_data",
    ROOT / "docs" / "assets" / "vendor" / "mathjax": "_vendor/mathjax",
}


class build_py_with_labs(build_py):
    """``build_py`` that also copies :data:`PACKAGE_DATA` into ``infphys/`` in the build tree."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for source, name in PACKAGE_DATA.items():
            if not source.is_dir():
                continue
            target = Path(self.build_lib) / "infphys" / name
            target.mkdir(parents=True, exist_ok=True)
            for path in sorted(source.iterdir()):
                if path.is_file() and not path.name.startswith("."):
                    shutil.copyfile(path, target / path.name)


setup(cmdclass={"build_py": build_py_with_labs})
