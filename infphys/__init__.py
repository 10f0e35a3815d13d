"""infphys: the physics of LLM inference serving, measured and simulated.

The package under the course kit's three faces (site, labs, CLI). Public names are re-exported
here; see ``infphys.catalog`` (GPU and model reference data), ``infphys.physics`` (pure formulas),
``infphys.records`` (the one request record), ``infphys.measure`` (real servers and GPUs) and
``infphys.sim`` (the simulated serving engine).
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
