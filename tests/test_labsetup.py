"""The controls at the top of a lab (infphys.exercises.labsetup) and the settings they give.

The headless lab tests override every settings cell, so the widgets' own values are checked
here: the helpers one by one, then each lab's control and settings cells run alone (no target,
no measurement) at the widgets' defaults, against the defaults read off the lab's widgets.
"""

from __future__ import annotations

import builtins
import importlib.util
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import marimo as mo
import pytest

from infphys import catalog
from infphys.catalog import get_gpu, get_model
from infphys.exercises import labsetup, ui

LABS = Path(__file__).resolve().parents[1] / "labs"


# --- the helpers ------------------------------------------------------------------------------


def test_values_reads_each_widget_in_order() -> None:
    a, b = labsetup.int_dropdown([16, 64], 64, "max_tokens"), labsetup.seed_input(7)
    assert labsetup.values(a, b) == (64, 7)
    assert type(labsetup.values(a)[0]) is int  # not the dropdown's label "64"


def test_int_dropdown_rejects_a_value_it_does_not_offer() -> None:
    with pytest.raises(ValueError, match="value=100"):
        labsetup.int_dropdown([16, 64], 100, "max_tokens")


def test_selects_hold_the_catalog_spec() -> None:
    assert labsetup.gpu_select("H100 SXM").value == get_gpu("h100")
    assert labsetup.gpu_select("h200").value.name == "H200 SXM"
    assert labsetup.model_select("llama-3.1-70b").value == get_model("llama-3.1-70b")
    with pytest.raises(ValueError):
        labsetup.gpu_select("no-such-gpu")


def test_theory_selects_start_at_the_simulator_else_the_course_defaults() -> None:
    # No simulator (a real server answered): H200 SXM and Llama-3.1-8B, the course's defaults.
    real: Any = SimpleNamespace(sim_config=None)
    assert labsetup.theory_selects(real).value == [get_gpu("h200"), get_model("llama-3.1-8b")]
    # The simulator's own GPU and model when the lab measures it.
    sim: Any = SimpleNamespace(
        sim_config=SimpleNamespace(gpu=get_gpu("a100-80gb-sxm"), model=get_model("llama-3.1-70b"))
    )
    assert labsetup.theory_selects(sim).value == [
        get_gpu("a100-80gb-sxm"),
        get_model("llama-3.1-70b"),
    ]


def test_controls_keys_every_setting_and_shows_each_row() -> None:
    form, view = labsetup.controls(
        labsetup.request_row([16, 64], 64, [8, 16], 16),
        "**The knobs**",
        {"max_queue": mo.ui.slider(steps=[1, 8], value=8, label="admission control: max_queue")},
        title="1 · Overload",
    )
    # Every setting by name, at the values the rows start at, in row order.
    assert form.value == {"prompt_tokens": 64, "max_tokens": 16, "seed": 0, "max_queue": 8}
    assert labsetup.settings(form, "max_queue", "seed") == (8, 0)
    html = view.text
    for shown in ("1 · Overload", "The knobs", "prompt tokens", "admission control: max_queue"):
        assert shown in html
    with pytest.raises(KeyError, match="no control for \\['max_num_seqs'\\]"):
        labsetup.settings(form, "max_num_seqs")
    with pytest.raises(ValueError, match="two controls set 'seed'"):
        labsetup.controls({"seed": labsetup.seed_input()}, {"seed": labsetup.seed_input()})


def test_controls_without_a_title_show_no_heading() -> None:
    _, view = labsetup.controls({"seed": labsetup.seed_input()}, title=None)
    assert "seed" in view.text and "Controls" not in view.text


def test_list_dropdown_shows_the_numbers_and_holds_the_list() -> None:
    pick = labsetup.list_dropdown([[0.5, 1.0, 2.0], [1, 2]], [0.5, 1.0, 2.0], "rates")
    assert pick.value == [0.5, 1.0, 2.0]
    assert "0.5, 1, 2" in pick.text  # 1.0 shown as 1
    with pytest.raises(ValueError, match=r"value=\[3\]"):
        labsetup.list_dropdown([[1, 2]], [3], "levels")


def test_server_row_holds_catalog_keys_and_the_batch_limit() -> None:
    row = labsetup.server_row("A100 80GB SXM", "Llama-3.1-8B", [4, 8, 16], 8, "simulated ")
    assert {k: w.value for k, w in row.items()} == {
        "gpu": "a100-80gb-sxm",
        "model": "llama-3.1-8b",
        "max_num_seqs": 8,
    }
    assert "simulated max_num_seqs (batch limit)" in row["max_num_seqs"].text


def test_figure_table_shows_the_chosen_columns_rounded() -> None:
    import pandas as pd

    table = pd.DataFrame({"layout": ["tp2"], "ttft_p95_s": [0.123456], "left_out_s": [1]})
    html = ui.figure_table(mo.md("the figure"), table, ["layout", "ttft_p95_s"], 4).text
    assert "the figure" in html and "0.1235" in html and "left_out_s" not in html


def test_answer_book_holds_the_learners_name_and_runs() -> None:
    learner = SimpleNamespace(value="Ada")
    book = ui.answer_book(learner, "lab05", {"sequential_vs_concurrent": {"n_requests": 8}})
    assert (book.learner, book.lab) == ("Ada", "lab05")
    assert book.runs["lab05"]["sequential_vs_concurrent"]["summary"] == {"n_requests": 8}
    # No run recorded: an empty book of the lab, still able to check answers.
    assert ui.answer_book(learner, "lab05", {}).runs.get("lab05", {}) == {}


def test_fallback_server_measures_what_answered_else_its_own() -> None:
    target = object()
    answered: Any = SimpleNamespace(
        answered=True,
        launcher_fallback=False,
        message="using http://gpu-box:8000",
        target=target,
        lag_note=lambda: None,
    )
    server = ui.FallbackServer(answered, "a100-80gb-sxm", "llama-3.1-8b", 8)
    assert not server.fallback and server.note == "using http://gpu-box:8000"
    with server.run() as (measured, lag_note):
        assert measured is target and lag_note() is None
    # A simulator `infphys labs` started because nothing answered: the lab's own replaces it.
    launched: Any = SimpleNamespace(
        answered=True, launcher_fallback=True, message="using http://127.0.0.1:8000"
    )
    note = ui.FallbackServer(launched, "a100-80gb-sxm", "llama-3.1-8b", 8).note
    assert note == (
        "using http://127.0.0.1:8000, which `infphys labs` started because nothing answered at "
        "NIM_BASE_URL; measuring this lab's fallback instead: a simulated llama-3.1-8b on one "
        "a100-80gb-sxm with max_num_seqs = 8, started on 127.0.0.1 for each run"
    )
    nothing: Any = SimpleNamespace(answered=False, launcher_fallback=False, message="x")
    assert ui.FallbackServer(nothing, "a100-80gb-sxm", "llama-3.1-8b", 8).fallback


def test_controls_view_shows_the_title_and_every_widget() -> None:
    seed = labsetup.seed_input()
    html = labsetup.controls_view([seed], title="3 · Time one request").text
    assert "3 · Time one request" in html
    assert "seed" in html


# --- each lab's settings at the widgets' defaults ---------------------------------------------


class _NoTarget:
    """``infphys.exercises.ui`` but for ``lab_target``, which resolves nothing and starts no
    simulator (the cell that makes a lab's controls also finds its target)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(ui, name)

    def lab_target(self, **settings: Any) -> tuple[Any, None]:
        return SimpleNamespace(message="no target (a test)", sim_config=None), None


def _settings_at_defaults(lab: str, **refs: Any) -> dict[str, Any]:
    """Run the lab's widget and settings cells alone (in order) and return the settings."""
    spec = importlib.util.spec_from_file_location(f"labsetup_{Path(lab).stem}", LABS / lab)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # time_scale: the simulator's clock, which lab 9's cell that finds its target reads.
    env: dict[str, Any] = {
        "mo": mo,
        "ui": _NoTarget(),
        "labsetup": labsetup,
        "time_scale": 1.0,
        **refs,
    }
    settings: dict[str, Any] = {}
    for data in module.app._cell_manager.cell_data():  # marimo is pinned (0.25.2)
        cell = data.cell
        reads = ("labsetup.values(", "labsetup.settings(")
        if cell is None or not any(r in data.code for r in reads):
            continue
        widget_names = cell._cell.refs - env.keys() - set(dir(builtins))
        for maker in module.app._cell_manager.cell_data():
            made = maker.cell._cell.defs if maker.cell is not None else set()
            if made & widget_names and maker.cell is not None:
                needs = maker.cell._cell.refs - set(dir(builtins))
                _, defs = maker.cell.run(**{k: env[k] for k in needs})
                env.update(defs)
        needs = cell._cell.refs - set(dir(builtins))
        _, defs = cell.run(**{k: env[k] for k in needs})
        env.update(defs)
        settings.update(defs)
    return settings


#: Each lab's settings at the widgets' defaults, read off the widget definitions in the lab.
DEFAULTS: dict[str, dict[str, Any]] = {
    "07_littles_law.py": {
        "requests": 24,
        "prompt_tokens": 64,
        "max_tokens": 32,
        "warmup": 1,
        "target_req_per_s": 20,
        "seed": 0,
    },
    "08_concurrency_sweep.py": {
        "gpu": "a100-80gb-sxm",  # keys: the simulator's settings take keys
        "model": "llama-3.1-8b",
        "max_num_seqs": 8,
        "concurrency_levels": [1, 2, 4, 8, 16, 32],
        "rounds_per_level": 4,
        "rate_fractions": [0.3, 0.5, 0.7, 0.85],
        "open_requests": 40,
        "prompt_tokens": 64,
        "max_tokens": 16,
        "seed": 0,
    },
    "09_token_budget.py": {
        "prompt_sizes": [64, 512, 2048],
        "max_tokens_values": [8, 32, 64],
        "requests_per_cell": 3,
        "seed": 0,
    },
    "10_overload.py": {
        "gpu": "a100-80gb-sxm",
        "model": "llama-3.1-8b",
        "max_num_seqs": 8,
        "client_levels": [4, 8, 16, 32],
        "requests_per_level": 64,
        "timeout_s": 0.5,
        "open_fractions": [0.5, 1.0, 1.5, 2.0],
        "open_requests": 40,
        "max_queue": 8,
        "ttft_slo_s": 1.0,  # Nielsen's 1 s (DEFAULT_SLO)
        "tpot_slo_s": 0.05,
        "burst_factor": 3.0,
        "burst_users": 100,
        "prompt_tokens": 64,
        "max_tokens": 16,
        "seed": 0,
    },
    "11_tuning.py": {
        "gpu": "h100-sxm",
        "model": "llama-3.1-8b",
        "tp": 1,
        "prompt_tokens": 2000,
        "max_tokens": 128,
        "slo_p95_s": 10,
        "users": 1000,
        "concurrency_levels": [1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512],
        "seed": 0,
        "max_num_seqs": 512,
        "gpu_memory_utilization": 0.95,  # a float sum of 0.05 steps, rounded to two places
        "max_num_batched_tokens": 2048,
        "kv_precision": "fp8",
    },
    "12_nim_benchmarks.py": {
        "model": get_model("llama-3.1-8b"),  # NVIDIA's "Llama-3-8B" rows
        "isl": 200,
        "osl": 200,
        "users": 100,
        "ttft_budget_ms": 1000,  # Nielsen's 1 s
        "itl_budget_ms": 50,
        "a100_usd": 1.8,
        "h100_usd": 2.5,
    },
}


@pytest.mark.parametrize("lab", sorted(DEFAULTS))
def test_settings_at_the_widgets_defaults(lab: str) -> None:
    assert _settings_at_defaults(lab, catalog=catalog) == DEFAULTS[lab]


def test_model_select_can_show_a_tables_own_names() -> None:
    nim = {"Llama-3-8B": "llama-3.1-8b", "Llama-3-70B": "llama-3.1-70b"}
    assert labsetup.model_select("Llama-3-70B", shown=nim).value == get_model("llama-3.1-70b")
    with pytest.raises(ValueError, match=r"value='Llama-3\.1-8B'"):
        labsetup.model_select("Llama-3.1-8B", shown=nim)
