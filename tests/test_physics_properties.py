"""Property tests: monotonicity and units hold over wide ranges of input."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from infphys.catalog import GPUS, MODELS
from infphys.physics import (
    decode_step_s,
    kv_bytes_per_sequence,
    kv_bytes_per_token,
    max_concurrent_sequences,
    mm1,
    weight_bytes,
)

models = st.sampled_from(sorted(MODELS))
full_attention_models = st.sampled_from(
    sorted(k for k, m in MODELS.items() if m.sliding_window_layers == 0)
)
gpus = st.sampled_from(sorted(GPUS))
contexts = st.integers(min_value=1, max_value=200_000)
# No per-example time limit (hypothesis's default is 200 ms): a busy machine must not fail these.
no_deadline = settings(deadline=None)


@no_deadline
@given(full_attention_models, contexts)
def test_kv_doubles_when_context_doubles(model: str, n: int) -> None:
    assert kv_bytes_per_sequence(model, 2 * n) == 2 * kv_bytes_per_sequence(model, n)


@no_deadline
@given(models)
def test_fp8_halves_bf16(model: str) -> None:
    assert kv_bytes_per_token(model, "fp8") * 2 == kv_bytes_per_token(model, "bf16")
    assert weight_bytes(model, "fp8") * 2 == weight_bytes(model, "bf16")


@no_deadline
@given(models, contexts, contexts)
def test_kv_monotone_in_context(model: str, a: int, b: int) -> None:
    lo, hi = sorted((a, b))
    assert kv_bytes_per_sequence(model, lo) <= kv_bytes_per_sequence(model, hi)


@settings(max_examples=50, deadline=None)
@given(gpus, models, st.integers(1, 65_536), st.integers(1, 65_536))
def test_longer_context_never_fits_more_users(gpu: str, model: str, a: int, b: int) -> None:
    lo, hi = sorted((a, b))
    assert max_concurrent_sequences(gpu, model, hi) <= max_concurrent_sequences(gpu, model, lo)


@settings(max_examples=50, deadline=None)
@given(gpus, models, st.integers(1, 512), st.integers(0, 32_768))
def test_step_time_grows_with_batch_and_context(gpu: str, model: str, b: int, c: int) -> None:
    base = decode_step_s(gpu, model, b, c)
    assert decode_step_s(gpu, model, b + 1, c) >= base
    assert decode_step_s(gpu, model, b, c + 1) >= base


@no_deadline
@given(st.floats(0.01, 0.99), st.floats(0.1, 100))
def test_mm1_latency_grows_with_load(rho: float, mu: float) -> None:
    lo = mm1(rho * mu * 0.5, mu).mean_response_s
    hi = mm1(rho * mu, mu).mean_response_s
    assert hi >= lo
