"""marimo glue for the top of a lab: its controls, laid out, and their values as plain settings.

A lab's controls are marimo widgets, and marimo syncs only a lab's globals, so a lab keeps them
in one ``mo.ui.dictionary`` keyed by the setting each one sets (:func:`controls`). The widgets
made here already hold the value a lab computes with, so that one cell turns them all into
plain settings, which a headless test overrides at once (``app.run(defs=...)``)::

    # the widget cell: one row of widgets a mapping, shown under a heading
    controls, _view = controls(
        request_row([32, 128, 512], 128, [16, 64], 64),   # prompt_tokens, max_tokens, seed
        {"gpu": gpu_select("H100 SXM")},
    )
    _view
    # the settings cell
    prompt_tokens, seed, gpu = settings(controls, "prompt_tokens", "seed", "gpu")

Groups that several labs declare have one helper: :func:`request_row` (the requests' shape and
the seed), :func:`server_row` (a simulated server's GPU, model and batch limit),
:func:`list_dropdown` (a choice of load levels or sizes). ``gpu_select`` and ``model_select``
hold the catalog's spec (``GPUSpec``, ``ModelSpec``); the key-valued dropdowns a simulator's
settings want are :func:`infphys.exercises.ui.gpu_dropdown` and
:func:`~infphys.exercises.ui.model_dropdown`. marimo is imported lazily inside each function.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from infphys.sim.config import EngineConfig

__all__ = [
    "controls",
    "controls_view",
    "gpu_select",
    "int_dropdown",
    "list_dropdown",
    "model_select",
    "request_row",
    "seed_input",
    "server_row",
    "settings",
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


def settings(form: Any, *names: str) -> tuple[Any, ...]:
    """The values of the settings ``names`` in ``form`` (from :func:`controls`), in order.

    >>> from types import SimpleNamespace
    >>> settings(SimpleNamespace(value={"seed": 0, "prompt_tokens": 64}), "prompt_tokens", "seed")
    (64, 0)

    Raises:
        KeyError: for a name that ``form`` holds no control for, naming it and those it holds.
    """
    value = form.value
    missing = [n for n in names if n not in value]
    if missing:
        raise KeyError(f"no control for {missing} (the controls are {list(value)})")
    return tuple(value[n] for n in names)


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
    return mo.ui.dropdown(options={str(n): int(n) for n in options}, value=str(value), label=label)


def list_dropdown(options: Sequence[Sequence[float]], value: Sequence[float], label: str) -> Any:
    """A ``mo.ui.dropdown`` of lists of numbers (load levels, prompt sizes), each shown as its
    numbers (``[0.5, 1.0, 2.0]`` as "0.5, 1, 2"); its ``value`` is the ``list``.

    Raises:
        ValueError: when ``value`` is not one of ``options``, naming both.
    """
    import marimo as mo

    shown = {", ".join(f"{x:g}" for x in option): list(option) for option in options}
    if list(value) not in shown.values():
        raise ValueError(f"value={list(value)} is not one of options={list(shown.values())}")
    return mo.ui.dropdown(options=shown, value=", ".join(f"{x:g}" for x in value), label=label)


def request_row(
    prompt_options: Sequence[int],
    prompt_tokens: int,
    max_tokens_options: Sequence[int],
    max_tokens: int,
    max_tokens_label: str = "max_tokens",
) -> dict[str, Any]:
    """The shape of a lab's requests and its seed, a row for :func:`controls`: the settings
    ``prompt_tokens``, ``max_tokens`` (two :func:`int_dropdown`) and ``seed``
    (:func:`seed_input`), starting at the values given.

    Raises:
        ValueError: as :func:`int_dropdown`, for a start value not among its options.
    """
    return {
        "prompt_tokens": int_dropdown(prompt_options, prompt_tokens, "prompt tokens"),
        "max_tokens": int_dropdown(max_tokens_options, max_tokens, max_tokens_label),
        "seed": seed_input(),
    }


def server_row(
    gpu: str, model: str, max_num_seqs_steps: Sequence[int], max_num_seqs: int, prefix: str
) -> dict[str, Any]:
    """The simulated server a lab starts, a row for :func:`controls`: the settings ``gpu`` and
    ``model`` (catalog keys, from :func:`infphys.exercises.ui.gpu_dropdown` and
    :func:`~infphys.exercises.ui.model_dropdown`) and ``max_num_seqs`` (its batch limit, a
    slider over ``max_num_seqs_steps``); each label starts with ``prefix`` ("simulated ").

    Raises:
        ValueError: for a GPU or model the catalog does not hold.
    """
    import marimo as mo

    from infphys.exercises.ui import gpu_dropdown, model_dropdown

    return {
        "gpu": gpu_dropdown(gpu, f"{prefix}GPU"),
        "model": model_dropdown(model, f"{prefix}model"),
        "max_num_seqs": mo.ui.slider(
            steps=list(max_num_seqs_steps),
            value=max_num_seqs,
            label=f"{prefix}max_num_seqs (batch limit)",
            show_value=True,
        ),
    }


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


class _Resolved(Protocol):
    """What :func:`theory_selects` reads of a resolved target
    (:class:`infphys.resolve.ResolvedTarget`): the simulator's engine, None for a real server."""

    @property
    def sim_config(self) -> EngineConfig | None: ...


def _spec_dropdown(options: Mapping[str, Any], name: str, label: str) -> Any:
    import marimo as mo

    return mo.ui.dropdown(options=dict(options), value=name, label=label)


def theory_selects(resolved: _Resolved) -> Any:
    """The GPU and model the theory assumes behind a lab's target: one ``mo.ui.array`` of two
    selects, whose ``value`` is ``[GPUSpec, ModelSpec]``.

    They start at the embedded simulator's GPU and model when the lab measures it, else at the
    course's defaults (:data:`infphys.catalog.DEFAULT_GPU`, H200 SXM, and
    :data:`~infphys.catalog.DEFAULT_MODEL`, Llama-3.1-8B): a learner with a real server picks
    the hardware behind it.
    """
    import marimo as mo

    from infphys.catalog import DEFAULT_GPU, DEFAULT_MODEL

    cfg = resolved.sim_config
    return mo.ui.array(
        [
            gpu_select(
                cfg.gpu.key if cfg is not None else DEFAULT_GPU,
                "GPU behind the target (for the theory)",
            ),
            model_select(
                cfg.model.key if cfg is not None else DEFAULT_MODEL, "model behind the target"
            ),
        ]
    )


def controls_view(*rows: Sequence[Any], title: str = "Controls") -> Any:
    """A section heading (``## {title}``) over one row of widgets per ``rows`` item."""
    import marimo as mo

    return mo.vstack(
        [mo.md(f"## {title}"), *(mo.hstack(list(row), justify="start") for row in rows)]
    )


def controls(
    *rows: Mapping[str, Any] | Sequence[Any] | str, title: str | None = "Controls"
) -> tuple[Any, Any]:
    """A lab's controls as one ``mo.ui.dictionary`` keyed by the setting each sets, and its view.

    Each of ``rows`` is a row of the view under the heading (none when ``title`` is None): a
    mapping from a setting's name to the widget that sets it, a line of markdown, or a list of
    widgets shown as they are (the lab's own globals, such as :func:`theory_selects`' two
    selects). The dictionary's ``value``
    maps every name to its widget's value (read them with :func:`settings`); the view shows the
    dictionary's own copies of the widgets, so moving one updates the dictionary. A lab keeps
    the one dictionary as a global (marimo syncs only globals) instead of one per widget::

        controls, _view = controls(
            {"prompt_tokens": int_dropdown([32, 128], 128, "prompt tokens")},
            {"seed": seed_input()},
        )
        # and in the settings cell
        prompt_tokens, seed = settings(controls, "prompt_tokens", "seed")

    Raises:
        ValueError: when two rows name the same setting, naming it.
    """
    import marimo as mo

    widgets: dict[str, Any] = {}
    for row in rows:
        if not isinstance(row, Mapping):
            continue
        for name, widget in row.items():
            if name in widgets:
                raise ValueError(f"two controls set {name!r}")
            widgets[name] = widget
    form = mo.ui.dictionary(widgets)
    shown = [
        [form[n] for n in row]
        if isinstance(row, Mapping)
        else [mo.md(row)]
        if isinstance(row, str)
        else list(row)
        for row in rows
    ]
    if title is None:
        return form, mo.vstack([mo.hstack(row, justify="start") for row in shown])
    return form, controls_view(*shown, title=title)
