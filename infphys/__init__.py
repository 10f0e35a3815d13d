"""infphys: the physics of LLM inference serving, measured and simulated.

The package under the course kit's three faces (site, labs, CLI). The pure layer is re-exported
here: ``infphys.catalog`` (GPU and model reference data), ``infphys.physics`` (formulas) and
``infphys.records`` (the one request record). The I/O layers are subpackages:
``infphys.measure`` (real servers and GPUs) and ``infphys.sim`` (the simulated serving engine).

>>> import infphys
>>> infphys.kv_bytes_per_token("llama-3.1-8b")
131072.0
"""

from __future__ import annotations

from infphys.records import infphys_version as _infphys_version

#: The installed distribution's version: pyproject.toml is the one place it is written.
__version__ = _infphys_version()

from infphys.catalog import *
from infphys.catalog import __all__ as _catalog_all
from infphys.physics import *
from infphys.physics import __all__ as _physics_all
from infphys.records import (
    RequestRecord,
    Run,
    RunHeader,
    RunWriter,
    load_run,
    read_run,
)

__all__ = sorted(
    {
        "RequestRecord",
        "Run",
        "RunHeader",
        "RunWriter",
        "__version__",
        "load_run",
        "read_run",
        *_catalog_all,
        *_physics_all,
    }
)
