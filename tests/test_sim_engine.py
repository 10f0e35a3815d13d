"""The simulated engine against hand calculations, and its fast path against its reference loop.

Hand-computed constants used below (Llama-3.1-8B, BF16, one H200, default calibration:
bandwidth 0.7 × 4.8 TB/s = 3.36 TB/s, FLOPs 0.5 × 989 TFLOP/s = 494.5 TFLOP/s, 1 ms per step,
10 µs per scheduled sequence):

- parameters 8,030,261,248, of which the input embedding 128,256 × 4,096 = 525,336,576; so a
  token costs 2 × (8,030,261,248 − 525,336,576) = 15,009,849,344 FLOPs of matrix products;
- attention: 2 × 32 heads × (128 + 128) = 16,384 FLOPs per (query, key) pair per layer, × 32
  layers = 524,288 per pair;
- weights 8,030,261,248 × 2 B = 16,060,522,496 B; KV 2 × 32 × 8 × 128 × 2 B = 131,072 B/token.
"""

from __future__ import annotations

import math
import random

import pytest

from infphys.catalog import IDEAL_STEP_PARAMS
from infphys.sim import (
    EngineConfig,
    OutputLengths,
    RequestRejected,
    Workload,
    simulate,
)
from infphys.sim.engine import Engine, _add_chunks, sum_max_linear

BW = 0.7 * 4.8e12  # bytes/s
FL = 0.5 * 989e12  # FLOP/s
FLOP_PER_TOKEN = 15_009_849_344
FLOP_PER_PAIR = 524_288
WEIGHT_BYTES = 16_060_522_496
KV_PER_TOKEN = 131_072
#: Weights a decode step reads: all but the 1,050,673,152-byte input embedding table.
W_READ = WEIGHT_BYTES - 128_256 * 4096 * 2


def h200() -> EngineConfig:
    return EngineConfig.build("h200", "llama-3.1-8b")


def tiny(blocks: int, **settings: object) -> EngineConfig:
    """An H200 engine whose KV cache holds exactly ``blocks`` usable blocks of 16 tokens.

    Budget = memory × util − weights − 2 GiB; usable blocks = budget // 2 MiB − 1 (null block).
    """
    block = 16 * KV_PER_TOKEN
    budget = (blocks + 1) * block + block / 2
    util = (budget + WEIGHT_BYTES + 2 * 2**30) / 141e9
    cfg = EngineConfig.build(
        "h200",
        "llama-3.1-8b",
        gpu_memory_utilization=util,
        max_model_len=min(4096, blocks * 16),
        **settings,  # type: ignore[arg-type]
    )
    assert cfg.kv_capacity_blocks == blocks
    return cfg


# --- capacity --------------------------------------------------------------------------------


def test_kv_capacity_matches_hand_calculation() -> None:
    # 141 GB × 0.9 − 16.0605 GB − 2 GiB = 108,691,993,856 B; / 2 MiB per block = 51,828 blocks,
    # less the null block: 51,827 blocks, 829,232 tokens.
    cfg = h200()
    assert cfg.kv_capacity_blocks == 51_827
    assert cfg.kv_capacity_tokens == 829_232
    # FP8 weights free 8.03 GB: (126.9 − 8.0303 − 2.1475) GB / 2 MiB = 55,657 blocks − 1.
    assert EngineConfig.build(
        "h200", "llama-3.1-8b", weights_precision="fp8"
    ).kv_capacity_blocks == (55_656)


# --- timing of one request -------------------------------------------------------------------


#: A hand-checkable step model: 70 % of the datasheet bandwidth, 50 % of the dense peak, a hard
#: roofline in each phase, 1 ms per step and 10 µs per sequence.
HAND = IDEAL_STEP_PARAMS.with_(
    bandwidth_efficiency=0.7, flops_efficiency=0.5, step_overhead_s=0.001, sequence_overhead_s=10e-6
)


def test_one_request_alone_ttft_is_the_prefill_step_and_itl_the_decode_step() -> None:
    # Prefill of 1,000 tokens, one step. GEMMs: 1,000 × 15,009,849,344 FLOPs / 494.5 TFLOP/s
    # = 30.353 ms against (15,009,849,344 + 1,000 × 8,192 embedding rows) B / 3.36 TB/s
    # = 4.470 ms: compute-bound. Attention: 500,500 pairs × 524,288 FLOPs / 494.5 TFLOP/s
    # = 0.531 ms against 1,000 × 131,072 B written / 3.36 TB/s = 0.039 ms.
    # TTFT = 30.353 + 0.531 + 1 + 0.01 ms.
    prefill_s = (1000 * FLOP_PER_TOKEN) / FL + (500_500 * FLOP_PER_PAIR) / FL + 0.001 + 10e-6
    # First decode step: GEMMs read 15,009,849,344 + 8,192 B → 4.4673 ms (their 15 GFLOP take
    # 0.03 ms); attention reads 1,000 cached tokens and writes 1: 1,001 × 131,072 B → 0.039 ms.
    decode0_s = (W_READ + 8192) / BW + 1001 * KV_PER_TOKEN / BW + 0.001 + 10e-6
    cfg = EngineConfig.build("h200", "llama-3.1-8b", step_params=HAND)
    res = simulate(cfg, Workload.closed(1, 1, prompt_tokens=1000, max_tokens=50))
    (rec,) = res.records
    assert rec.ttft_s == pytest.approx(prefill_s, rel=1e-9)
    gaps = rec.itl_s
    assert len(gaps) == 49 and rec.completion_tokens == 50
    assert gaps[0] == pytest.approx(decode0_s, rel=1e-9)
    # Step k reads 1,000 + k cached tokens: each gap is 131,072 B / 3.36 TB/s = 39 ns longer.
    assert gaps[10] - gaps[9] == pytest.approx(KV_PER_TOKEN / BW, rel=1e-6)
    # The whole request: TTFT + Σ decode steps, exactly the end time.
    assert rec.e2e_s == pytest.approx(rec.ttft_s + sum(gaps), rel=1e-12)


def test_trtllm_scheduler_reserves_whole_length_and_never_preempts() -> None:
    # 64-token blocks; each request reserves ceil((1,000 + 1,000) / 64) = 32 blocks at
    # admission, so a cache of 100 blocks runs 3 at once (96 blocks), never 4, and preempts none.
    block = 64 * KV_PER_TOKEN
    util = (101 * block + block / 2 + WEIGHT_BYTES + 2 * 2**30) / 141e9
    cfg = EngineConfig.build(
        "h200",
        "llama-3.1-8b",
        scheduler="trtllm",
        block_tokens=64,
        gpu_memory_utilization=util,
        max_model_len=2048,
    )
    assert cfg.kv_capacity_blocks == 100 and cfg.chunked_prefill is False
    res = simulate(cfg, Workload.offline(8, prompt_tokens=1000, max_tokens=1000, ignore_eos=True))
    assert res.stats.preemptions == 0
    assert int(res.timeseries["running"].max()) == 3
    # vLLM's scheduler takes blocks as tokens come: it starts more and has to preempt.
    vllm = simulate(
        cfg.with_(scheduler="vllm", chunked_prefill=True),
        Workload.offline(8, prompt_tokens=1000, max_tokens=1000, ignore_eos=True),
    )
    assert vllm.stats.preemptions > 0


def test_sum_max_linear_matches_brute_force() -> None:
    rng = random.Random(1)
    for _ in range(300):
        a, b, c, d = (rng.uniform(-2, 2) for _ in range(4))
        k = rng.randint(0, 40)
        brute = sum(max(a + b * i, c + d * i) for i in range(k))
        assert sum_max_linear(a, b, c, d, k) == pytest.approx(brute, abs=1e-9)


# --- KV blocks ----------------------------------------------------------------------------------


def test_blocks_are_allocated_per_16_tokens() -> None:
    eng = Engine(h200())
    req = eng.add_request(33, 40)
    eng.step()  # prefill 33 tokens → ⌈33/16⌉ = 3 blocks; first token
    assert eng.kv_blocks_used == 3
    assert eng.computed_tokens(req) == 33 and eng.output_tokens(req) == 1
    for _ in range(15):  # decode computes positions 33 … 47: still in block 3
        eng.step()
    assert eng.computed_tokens(req) == 48 and eng.kv_blocks_used == 3
    eng.step()  # position 48 opens block 4
    assert eng.kv_blocks_used == 4
    while not eng.idle:
        eng.step()
    assert eng.kv_blocks_used == 0 and req.finish_reason == "length" and req.output == 40


def test_fast_forward_counts_blocks_like_single_steps() -> None:
    a, b = Engine(h200()), Engine(h200())
    for eng in (a, b):
        for p in (5, 17, 30, 64, 100):
            eng.add_request(p, 300)
        eng.step()
    while not a.idle:
        a.step()
        assert a.kv_blocks_used >= 0
    used_b = []
    while not b.idle:
        if not b.fast_forward():
            b.step()
        used_b.append(b.kv_blocks_used)
    assert a.steps == b.steps
    assert a.now_s == pytest.approx(b.now_s, rel=1e-12)
    assert b.stretches > 0


# --- the token budget and chunked prefill --------------------------------------------------------


def test_chunked_prefill_splits_a_long_prompt_by_the_budget() -> None:
    # Budget 512: a 1,200-token prompt takes 512 + 512 + 176 tokens; the first token comes at the
    # end of the third step.
    eng = Engine(
        EngineConfig.build("h200", "llama-3.1-8b", max_num_batched_tokens=512, max_num_seqs=64)
    )
    req = eng.add_request(1200, 10)
    news = []
    for _ in range(3):
        out = eng.step()
        news.append(out.new_tokens)
    assert news == [512, 512, 176]
    assert req.first_token_s == pytest.approx(eng.now_s)


def test_running_requests_come_first_then_the_new_prompt_gets_the_rest() -> None:
    # One request decoding takes 1 token of the 512 budget; a new 1,000-token prompt gets 511.
    eng = Engine(
        EngineConfig.build("h200", "llama-3.1-8b", max_num_batched_tokens=512, max_num_seqs=64)
    )
    eng.add_request(10, 100)
    eng.step()
    late = eng.add_request(1000, 10)
    out = eng.step()
    assert out.new_tokens == 512
    assert eng.computed_tokens(late) == 511


# --- admission ---------------------------------------------------------------------------------


def test_admission_stops_at_max_num_seqs() -> None:
    eng = Engine(
        EngineConfig.build("h200", "llama-3.1-8b", max_num_seqs=2, max_num_batched_tokens=2048)
    )
    first, second, third = (eng.add_request(20, n) for n in (3, 10, 10))
    eng.step()
    assert eng.num_running == 2 and eng.num_waiting == 1
    while first.state != "finished":
        eng.step()
    assert third.state == "waiting"  # the seat frees at the end of the step
    eng.step()
    assert third.state == "running" and second.state == "running"


def test_admission_waits_for_kv_blocks() -> None:
    # 10 blocks = 160 tokens. Two prompts of 64 tokens take 8 blocks; a third needs 4, only 2
    # are free: it waits (FCFS: a smaller fourth request behind it waits too).
    eng = Engine(tiny(10))
    a = eng.add_request(64, 8)
    b = eng.add_request(64, 8)
    c = eng.add_request(64, 8)
    d = eng.add_request(1, 8)
    eng.step()
    assert (a.state, b.state, c.state, d.state) == ("running", "running", "waiting", "waiting")
    assert eng.free_blocks == 2


# --- preemption ---------------------------------------------------------------------------------


def test_preemption_takes_the_most_recently_admitted_and_recomputes_it() -> None:
    # 12 blocks (192 tokens); three 48-token prompts take 3 blocks each (9 used). Each needs a
    # 4th block at its 49th token: the first two get blocks 10 and 11, ... at the next boundary
    # the last-admitted request is preempted: freed, reset, front of the queue.
    eng = Engine(tiny(12))
    reqs = [eng.add_request(48, 40, request_id=i) for i in range(3)]
    eng.step()
    assert eng.kv_blocks_used == 9
    preempted = []
    while not preempted:
        out = eng.step()
        preempted = out.preempted
    victim = preempted[0]
    assert victim is reqs[2]
    assert victim.state == "waiting" and eng.waiting[0] is victim and victim.computed == 0
    assert eng.preemptions_total >= 1 and victim.num_preemptions == 1
    generated = victim.output
    assert generated >= 1
    ttft = victim.first_token_s
    while not eng.idle:
        eng.step()
    # It was recomputed (prompt + generated tokens) and still produced exactly 40 tokens, once.
    assert victim.output == 40 and victim.first_token_s == ttft
    assert all(r.state == "finished" for r in reqs)
    assert eng.kv_blocks_used == 0


def test_nothing_is_admitted_in_a_step_that_preempted() -> None:
    eng = Engine(tiny(12))
    for i in range(3):
        eng.add_request(48, 40, request_id=i)
    eng.step()
    late = eng.add_request(1, 5, request_id="late")
    while True:
        out = eng.step()
        if out.preempted:
            assert late.state == "waiting"
            break
        assert late.state == "waiting"  # no free blocks before that either


# --- rejection ----------------------------------------------------------------------------------


def test_too_long_requests_are_rejected_with_vllms_message() -> None:
    eng = Engine(EngineConfig.build("h200", "llama-3.1-8b", max_model_len=8192))
    with pytest.raises(RequestRejected) as exc:
        eng.add_request(8000, 500)
    assert exc.value.status == 400
    assert exc.value.message == (
        "This model's maximum context length is 8192 tokens. However, you requested 8500 "
        "tokens (8000 in the messages, 500 in the completion). Please reduce the length of the "
        "messages or completion."
    )
    with pytest.raises(RequestRejected, match="max_tokens must be at least 1, got 0"):
        eng.add_request(10, 0)
    with pytest.raises(RequestRejected, match="cannot be empty"):
        eng.add_request(0, 10)
    r = eng.add_request(8000)  # no max_tokens: whatever the context leaves
    assert r.max_tokens == 192


# --- output lengths, abort ----------------------------------------------------------------------


def test_geometric_output_lengths_have_the_asked_mean_and_stop_early() -> None:
    cfg = h200().with_(output_lengths=OutputLengths("geometric", mean_tokens=50), seed=7)
    eng = Engine(cfg)
    lengths = [eng.add_request(10, 1000).output_target for _ in range(4000)]
    assert sum(lengths) / len(lengths) == pytest.approx(50, rel=0.05)
    res = simulate(cfg, Workload.closed(8, 40, prompt_tokens=10, max_tokens=30))
    reasons = {r.finish_reason for r in res.records}
    assert reasons == {"stop", "length"}
    assert all((r.finish_reason == "length") == (r.completion_tokens == 30) for r in res.records)


def test_abort_frees_the_blocks() -> None:
    eng = Engine(h200())
    a = eng.add_request(100, 50)
    b = eng.add_request(100, 50)
    eng.step()
    eng.step()
    eng.abort(a)
    assert a.state == "aborted" and eng.num_running == 1
    assert eng.kv_blocks_used == math.ceil(102 / 16)
    eng.abort(b)
    assert eng.idle and eng.kv_blocks_used == 0


# --- the fast path is the reference loop ---------------------------------------------------------


@pytest.mark.parametrize(
    ("cfg", "wl"),
    [
        (
            h200(),
            Workload.closed(
                24,
                80,
                prompt_tokens=200,
                max_tokens=50,
                prompt_tokens_max=3000,
                max_tokens_max=200,
                seed=3,
            ),
        ),
        (
            h200(),
            Workload.open(
                20,
                100,
                prompt_tokens=100,
                max_tokens=50,
                prompt_tokens_max=9000,
                max_tokens_max=200,
                seed=4,
            ),
        ),
        (
            tiny(600, max_num_seqs=32),
            Workload.closed(
                32,
                60,
                prompt_tokens=300,
                max_tokens=200,
                prompt_tokens_max=900,
                max_tokens_max=500,
                seed=5,
            ),
        ),
        (
            EngineConfig.build(
                "h100", "gpt-oss-120b", weights_precision="int4", max_model_len=16384
            ),
            Workload.open(10, 50, prompt_tokens=50, max_tokens=200, prompt_tokens_max=600, seed=7),
        ),
    ],
    ids=["closed-mixed", "open-mixed", "kv-bound-preempting", "sliding-window"],
)
def test_fast_forward_gives_exactly_the_reference_schedule(cfg: EngineConfig, wl: Workload) -> None:
    ref = simulate(cfg, wl, exact=True)
    fast = simulate(cfg, wl)
    assert fast.stats.steps == ref.stats.steps
    assert fast.stats.preemptions == ref.stats.preemptions
    assert fast.stats.stretches > 0
    by_id = {r.request_id: r for r in ref.records}
    for r in fast.records:
        q = by_id[r.request_id]
        assert r.completion_tokens == q.completion_tokens
        assert r.first_token_s == pytest.approx(q.first_token_s, rel=1e-9)
        assert r.end_s == pytest.approx(q.end_s, rel=1e-9)
        assert r.chunk_times_s == pytest.approx(q.chunk_times_s, rel=1e-9)


# --- configuration errors -----------------------------------------------------------------------


def test_config_errors_name_the_setting() -> None:
    with pytest.raises(ValueError, match="max_num_batched_tokens"):
        EngineConfig.build("h200", "llama-3.1-8b", max_num_seqs=512, max_num_batched_tokens=256)
    with pytest.raises(ValueError, match="does not fit"):
        EngineConfig.build("l4", "llama-3.1-70b")
    with pytest.raises(ValueError, match="max_model_len"):
        EngineConfig.build("l4", "llama-3.1-8b")  # 131,072 tokens do not fit in 24 GB
    with pytest.raises(ValueError, match="unknown engine setting 'max_seqs'"):
        EngineConfig.build("h200", "llama-3.1-8b", max_seqs=3)
    with pytest.raises(ValueError, match="bandwidth_efficiency"):
        EngineConfig.build("h200", "llama-3.1-8b", bandwidth_efficiency=1.5)
    with pytest.raises(ValueError, match="kind"):
        OutputLengths("zipf")  # type: ignore[arg-type]


def test_chunk_totals_by_hand() -> None:
    # A 100-token chunk after 1,000 cached tokens: 100 new, 1,000 read, 100 × 1,000 +
    # 100 × 101 / 2 = 105,050 pairs. With a 128-token window: min(1,000, 128) = 128 read and
    # 100 × min(1,100, 128) = 12,800 pairs; a 1-token decode after 50 adds 1, 50, 51, 50, 51.
    sched = [(None, 100, 1000), (None, 1, 50)]
    assert _add_chunks(sched, 0, (0,) * 5) == (101, 1050, 105_101, 0, 0)  # type: ignore[arg-type]
    assert _add_chunks(sched, 128, (1, 2, 3, 4, 5)) == (  # type: ignore[arg-type]
        102,
        1052,
        105_104,
        4 + 128 + 50,
        5 + 12_800 + 51,
    )
