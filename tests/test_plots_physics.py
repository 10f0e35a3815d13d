"""infphys.plots.physics: the figures draw what the physics computes, and their controls work.

Expected values are worked out by hand in the comments (REFERENCE_DATA.md figures), not by
calling the formula again.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from figures import trace

from infphys.catalog import IDEAL_STEP_PARAMS
from infphys.plots.physics import decode_roofline, gpu_specs, kv_cliff


def _visible(fig: Any, visible: list[bool]) -> list[Any]:
    return [t for t, v in zip(fig.data, visible, strict=True) if v]


def test_gpu_specs_sorted_by_bandwidth_with_a_metric_dropdown() -> None:
    fig = gpu_specs(["h100-sxm", "l4", "h200-sxm"])
    bandwidth = trace(fig, "Memory bandwidth")
    assert list(bandwidth.x) == ["L4", "H100 SXM", "H200 SXM"]
    assert list(bandwidth.y) == pytest.approx([0.300, 3.35, 4.8])  # TB/s, datasheets
    labels = [b.label for b in fig.layout.updatemenus[0].buttons]
    assert labels == ["Memory bandwidth", "Memory", "Dense BF16", "Dense FP8", "BF16 ridge point"]
    ridge = trace(fig, "BF16 ridge point")
    # 989 TFLOP/s / 3.35 TB/s = 295 FLOP/byte on an H100 SXM.
    assert ridge.y[1] == pytest.approx(295.2, abs=0.1)
    with pytest.raises(ValueError, match="metric"):
        gpu_specs(metric="colour")


def test_kv_cliff_marks_where_each_gpu_runs_out() -> None:
    fig = kv_cliff("llama-3.1-8b", contexts=[2048, 8192], gpus=["h100-sxm"], context=8192)
    steps = fig.layout.sliders[0].steps
    assert [s.label for s in steps] == ["2K", "8K"]
    assert fig.layout.sliders[0].active == 1
    # The 8K step shows its three traces: weights, weights + KV, out-of-memory marker.
    shown = _visible(fig, steps[1].args[0]["visible"])
    assert len(shown) == 3 and all(t.visible for t in shown)
    # 16.06 GB of weights + n × 8,192 × 131,072 B (1.074 GB): 59 users take 79.4 GB, 60 take
    # 80.5 GB, over the H100's 80 GB.
    marker = shown[2]
    assert list(marker.x) == [60]
    assert marker.text[0] == "H100 SXM full at 60 users"
    weights, total = shown[0], shown[1]
    assert weights.y[0] == pytest.approx(16.06, abs=0.01)
    assert total.y[0] == pytest.approx(16.06 + 1.074, abs=0.01)


def test_kv_cliff_drops_contexts_beyond_the_model_and_flags_weights_that_do_not_fit() -> None:
    fig = kv_cliff("mistral-7b-v0.3", context=4096)  # 32,768-token model
    assert [s.label for s in fig.layout.sliders[0].steps][-1] == "32K"
    # Llama-3.1-70B: 70.6 B × 2 bytes = 141 GB of weights, more than an H100's 80 GB.
    fig = kv_cliff("llama-3.1-70b", gpus=["h100-sxm"], context=4096)
    texts = [str(x) for t in fig.data if t.mode == "markers+text" for x in t.text]
    assert "H100 SXM: the weights alone do not fit" in texts
    with pytest.raises(ValueError, match="context"):
        kv_cliff(context=1000)


def test_decode_roofline_starts_at_the_weight_read_floor() -> None:
    fig = decode_roofline(
        "llama-3.1-8b", ["h100-sxm", "h200-sxm"], context_tokens=0, params=IDEAL_STEP_PARAMS
    )
    total = trace(fig, "H100 SXM: total tokens/s")
    assert total.x[0] == 1
    # (16.06 − 1.05 embedding table) GB / 3.35 TB/s = 4.48 ms per step: 223 tokens/s.
    assert total.y[0] == pytest.approx(223.2, rel=0.005)
    per_user = trace(fig, "tokens/s per user")
    assert per_user.y[0] == pytest.approx(total.y[0])
    buttons = fig.layout.updatemenus[0].buttons
    assert [b.label for b in buttons] == ["H100 SXM", "H200 SXM", "All GPUs"]
    # "All GPUs" shows one total-throughput line per GPU.
    shown = _visible(fig, buttons[-1].args[0]["visible"])
    assert [t.name for t in shown] == ["H100 SXM: total tokens/s", "H200 SXM: total tokens/s"]


def test_decode_roofline_shades_where_the_kv_cache_is_full() -> None:
    fig = decode_roofline("llama-3.1-8b", ["h100-sxm"], context_tokens=2048)
    # 80 GB × 0.9 − 16.06 GB − 2 GiB = 53.79 GB of KV cache; 2,048 × 131,072 B = 268 MB per
    # sequence: 200 sequences fit.
    notes = [a.text for a in fig.layout.annotations]
    assert "KV cache full beyond 200 sequences" in notes
    rect = next(s for s in fig.layout.shapes if s.type == "rect")
    assert (rect.x0, rect.x1) == (200, 1024)


@pytest.mark.parametrize("make", [gpu_specs, kv_cliff, decode_roofline])
def test_figures_serialise_for_the_site(make: Any) -> None:
    fig = json.loads(make().to_json())
    assert fig["data"] and fig["layout"]["title"]["text"]
