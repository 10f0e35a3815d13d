"""marimo glue for the top of a lab: its controls, laid out, and their values as plain settings.

A lab's controls are marimo widgets, each a global of the lab (marimo syncs only those). The
widgets made here already hold the value a lab computes with, so that one cell turns them all
into plain settings, which a headless test overrides at once (``app.run(defs=...)``)::

    # the widget cell
    prompt_pick = int_dropdown([32, 128, 512], 128, "prompt tokens")
    seed_number = seed_input()
    gpu_pick = gpu_select("H100 SXM")
    controls_view([prompt_pick, seed_number], [gpu_pick])
    # the settings cell
    prompt_tokens, seed, gpu = values(prompt_pick, seed_number, gpu_pick)

``gpu_select`` and ``model_select`` hold the catalog's spec (``GPUSpec``, ``ModelSpec``); the
key-valued dropdowns a simulator's settings want are :func:`infphys.exercises.ui.gpu_dropdown`
and :func:`~infphys.exercises.ui.model_dropdown`. marimo is imported lazily inside each function.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from infphys.resolve import ResolvedTarget

__all__ = [
    "controls_view",
    "gpu_select",
    "int_dropdown",
    "model_select",
    "seed_input",
    "theory_selects",
    "values",
]


def values(*widgets: Any) -> tuple[Any, ...]:
    """The ``value`` of each widget, in order: a lab's settings as plain values.

    >>> from types import SimpleNamespace
    >>> values(SimpleNamespace(value=64), SimpleNamespace(value="fp8"))
    (64, 'fp8')
    """
    return tuple(w.value for w in widgets)


def seed_input(value: int = 0) -> Any:
    """The seed control every lab shows: a ``mo.ui.number`` from 0 to 10,000, an ``int``."""
    import marimo as mo

    return mo.ui.number(0, 10_000, step=1, value=value, label="seed")


def int_dropdown(options: Sequence[int], value: int, label: str) -> Any:
    """A ``mo.ui.dropdown`` of whole numbers (token counts, MiB) whose ``value`` is the ``int``.

    Raises:
        ValueError: when ``value`` is not one of ``options``, naming both.
    """
    import marimo as mo

    if value not in options:
        raise ValueError(f"value={value} is not one of options={list(options)}")
    return mo.ui.dropdown(
        options={str(n): int(n) for n in options}, value=str(value), label=label
    )


def gpu_select(value: str, label: str = "GPU") -> Any:
    """A ``mo.ui.dropdown`` of every catalog GPU, showing names; its ``value`` is the ``GPUSpec``.

    ``value`` is the GPU first selected, by key or name (``"h100"`` or ``"H100 SXM"``).

    Raises:
        ValueError: for a GPU the catalog does not hold (from :func:`infphys.catalog.get_gpu`).
    """
    from infphys.catalog import GPUS, get_gpu

    return _spec_dropdown({g.name: g for g in GPUS.values()}, get_gpu(value).name, label)


def model_select(value: str, label: str = "model", shown: Mapping[str, str] | None = None) -> Any:
    """A ``mo.ui.dropdown`` of catalog models; its ``value`` is the ``ModelSpec``.

    Every catalog model by its name, or only those in ``shown``, a mapping from the name to show
    (a benchmark table's own, ``"Llama-3-8B"``) to a catalog key; ``value`` is then one of those
    names.

    Raises:
        ValueError: for a model the catalog does not hold (from :func:`infphys.catalog.get_model`),
            or a ``value`` that ``shown`` does not hold.
    """
    from infphys.catalog import MODELS, get_model

    if shown is None:
        return _spec_dropdown({m.name: m for m in MODELS.values()}, get_model(value).name, label)
    if value not in shown:
        raise ValueError(f"value={value!r} is not one of shown={list(shown)}")
    return _spec_dropdown({name: get_model(key) for name, key in shown.items()}, value, label)


def _spec_dropdown(options: Mapping[str, Any], name: str, label: str) -> Any:
    import marimo as mo

    return mo.ui.dropdown(options=dict(options), value=name, label=label)


def theory_selects(resolved: ResolvedTarget) -> Any:
    """The GPU and model the theory assumes behind a lab's target: one ``mo.ui.array`` of two
    selects, whose ``value`` is ``[GPUSpec, ModelSpec]``.

    They start at the embedded simulator's GPU and model when the lab measures it, else at the
    course's defaults (:data:`infphys.resolve.DEFAULT_GPU`, H200 SXM, and
    :data:`~infphys.resolve.DEFAULT_MODEL`, Llama-3.1-8B): a learner with a real server picks
    the hardware behind it.
    """
    import marimo as mo

    from infphys.resolve import DEFAULT_GPU, DEFAULT_MODEL

    cfg = resolved.sim_config
    return mo.ui.array(
        [
            gpu_select(cfg.gpu.key if cfg is not None else DEFAULT_GPU,
                       "GPU behind the target (for the theory)"),
            model_select(cfg.model.key if cfg is not None else DEFAULT_MODEL,
                         "model behind the target"),
        ]
    )


def controls_view(*rows: Sequence[Any], title: str = "Controls") -> Any:
    """A section heading (``## {title}``) over one row of widgets per ``rows`` item."""
    import marimo as mo

    return mo.vstack(
        [mo.md(f"## {title}"), *(mo.hstack(list(row), justify="start") for row in rows)]
    )
