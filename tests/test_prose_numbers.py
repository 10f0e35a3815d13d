"""Figures quoted in chapter and lab prose agree with the package (issue 13: the wrong numbers).

Each chapter is rendered with the site's own Jinja environment (docs/hooks/infphys_site.py;
charts stubbed out, so no simulator runs), then the sentence that once carried a wrong number is
found and its arithmetic checked. A number typed by hand into the page, the exercise or the lab
in place of the rendered one fails here as soon as the package disagrees with it. The expected
values are worked by hand in the comments.
"""

from __future__ import annotations

import importlib.util
import math
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from infphys.catalog import NVML_TOTAL_MIB
from infphys.exercises import get_exercise
from infphys.exercises.lab04 import fixed_cost_split
from infphys.physics import decode_step_s, kv_bytes_per_token, kv_bytes_per_token_naive
from infphys.sim.config import EngineConfig

REPO = Path(__file__).resolve().parents[1]


@cache
def _env() -> Any:
    spec = importlib.util.spec_from_file_location(
        "infphys_site_hook", REPO / "docs/hooks/infphys_site.py"
    )
    assert spec is not None and spec.loader is not None
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    return hook._environment()


@cache
def render(page: str) -> str:
    """The page as Markdown after the Jinja pass, charts left out, whitespace collapsed."""
    text = (REPO / "docs" / page).read_text(encoding="utf-8")
    out = _env().from_string(text).render(chart=lambda *a, **k: "", page=None, config=None)
    return re.sub(r"\s+", " ", out)


def _num(text: str) -> float:
    return float(text.replace(",", ""))


def test_batching_kv_limit_is_a_whole_number_of_sequences() -> None:
    text = render("physics/batching.md")
    m = re.search(r"⌊([\d,]+) / ([\d,]+)⌋ = \*\*([\d,]+)\*\* sequences", text)
    assert m, "the KV limit sentence is gone from batching.md"
    kv, s, b = (int(_num(g)) for g in m.groups())
    # KV tokens ÷ 1,024 tokens per sequence, rounded *down*: 410,384 / 1,024 = 400.8 → 400.
    assert kv == EngineConfig.build(gpu="h100", model="llama-3.1-8b").kv_capacity_tokens
    assert (s, b) == (1024, kv // 1024)


def test_backpressure_retry_amplification_and_time_to_miss() -> None:
    text = render("physics/backpressure.md")
    m = re.search(r"it is \*\*([\d.]+)\*\* — the overload multiplies itself ([\d.]+)×", text)
    assert m, "the retry amplification sentence is gone from backpressure.md"
    # k = 3 retries at p = 0.9: 1 + 0.9 + 0.81 + 0.729 = 3.439.
    assert _num(m.group(1)) == _num(m.group(2)) == pytest.approx(3.439, abs=0.005)
    m = re.search(r"after ([\d.]+) / ([\d.]+) ≈ \*\*([\d.]+) s\*\*", text)
    assert m, "worked problem 2's answer is gone from backpressure.md"
    backlog, growth, t = (_num(g) for g in m.groups())
    # The quoted division must give the quoted answer; and at 10 % overload with a 0.5 s
    # objective the answer is 0.5 μ / (0.1 μ) = 5 s whatever μ is.
    assert backlog / growth == pytest.approx(t, rel=0.01)
    assert t == pytest.approx(5.0, rel=0.01)


def test_capacity_is_the_whole_part_of_b_star() -> None:
    text = render("physics/capacity-planning.md")
    m = re.search(r"B\^\* = \\frac\{\\text\{\d.*?\\approx \\text\{([\d.,]+)\}", text)
    assert m
    b_star = _num(m.group(1))
    m = re.search(r"users come whole: \*\*([\d,]+) concurrent users", text)
    assert m
    assert int(_num(m.group(1))) == math.floor(b_star)
    m = re.search(
        r"≈ ([\d.,]+); the KV cache holds .*? Capacity = \*\*([\d,]+)\*\* whole users", text
    )
    assert m, "worked problem 1's answer is gone from capacity-planning.md"
    assert int(_num(m.group(2))) == math.floor(_num(m.group(1)))


def test_home_page_does_not_put_the_batching_limit_at_the_ridge_point() -> None:
    # roofline.md: with each sequence's KV read, decode stays bandwidth-bound far below the
    # ridge point; the home page must not say batching is free *until* the ridge.
    text = render("index.md")
    assert "until the batch reaches the GPU's ridge point" not in text
    assert "far below the GPU's ridge point" in text


def test_lab03_naive_factor_for_deepseek() -> None:
    # DeepSeek-V3: naive 2 × layers × 7,168 × 2 B against MLA's (512 + 64) × layers × 2 B per
    # token: 2 × 7,168 / 576 = 24.9.
    assert kv_bytes_per_token_naive("deepseek-v3") / kv_bytes_per_token(
        "deepseek-v3"
    ) == pytest.approx(24.89, abs=0.01)
    text = get_exercise("lab03.q3").explanation
    assert "24.9 for DeepSeek-V3" in text and "57" not in text


def test_lab02_flops_per_weight() -> None:
    text = get_exercise("lab02.q2").explanation
    assert "2 FLOPs per weight per sequence" in text
    assert "per weight byte per sequence in the batch (BF16" not in text
    # 989 TFLOP/s / 3.35 TB/s = 295 FLOP/byte (datasheet, H100 SXM).
    assert "≈ 295 on an H100 SXM" in text


def _ms_pairs(text: str) -> list[tuple[float, float]]:
    return [(_num(a), _num(b)) for a, b in re.findall(r"([\d.]+) ms \+ ([\d.]+) ms", text)]


def test_lab04_fixed_cost_figures_come_from_the_fitted_model() -> None:
    split = fixed_cost_split()
    text = get_exercise("lab04.q4").explanation
    assert "4.5 ms" not in text and "2.25 ms" not in text
    (bf16, fp8) = _ms_pairs(text)
    # The two parts add up to the fitted step model's batch-1 step in each format.
    bf16_s = decode_step_s("h100", "llama-3.1-8b", 1, 8192)
    fp8_s = decode_step_s(
        "h100", "llama-3.1-8b", 1, 8192, weights_precision="fp8", kv_precision="fp8"
    )
    assert sum(bf16) == pytest.approx(bf16_s * 1e3, abs=0.01)
    assert sum(fp8) == pytest.approx(fp8_s * 1e3, abs=0.01)
    assert f"{bf16_s / fp8_s:.2f}× gain" in text
    assert split["bf16_fixed_s"] == pytest.approx(split["fp8_fixed_s"])
    # The lab's own sentence is computed in its cell, not typed.
    lab = (REPO / "labs" / "04_fp8.py").read_text(encoding="utf-8")
    assert "2 ms in the simulator" not in lab
    assert "ex4.fixed_cost_split(" in lab


# --- GB and GiB (issue 13): the convention stated once, both units where nvidia-smi is read.
# Worked by hand: 81,559 MiB × 1,048,576 B = 85,520,809,984 B = 85.5 GB, ÷ 1,073,741,824 =
# 79.65 GiB → "79.6 GiB"; the catalog's 80 × 10⁹ B = 74.5 GiB = 76,294 MiB.


def test_h100_nvml_figure() -> None:
    assert NVML_TOTAL_MIB["h100-sxm"] == 81_559


def test_glossary_states_the_convention_with_numbers() -> None:
    text = render("physics/glossary.md")
    assert "## Units: GB and GiB" in text
    assert "**GB = 10⁹ bytes**" in text
    assert "**81,559 MiB** in `nvidia-smi`, that is 79.6 GiB or 85.5 GB" in text
    assert "The catalog's 80.0 GB is 74.5 GiB (76,294 MiB)" in text


def test_kv_budget_in_both_units() -> None:
    text = render("physics/kv-cache.md")
    m = re.search(r"the same budget reads ([\d.]+) GiB = ([\d,]+) MiB", text)
    assert m, "the KV budget in nvidia-smi's units is gone from kv-cache.md"
    gib, mib = float(m.group(1)), float(m.group(2).replace(",", ""))
    # The same number of bytes in two binary units: MiB ÷ 1,024 = GiB (to the rounding shown).
    assert abs(mib / 1024 - gib) < 0.01
    assert "shows 81,559 MiB for the whole card" in text
