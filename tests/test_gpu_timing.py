"""The timing loops the GPU probes share: the CUDA-event one checked against a fake GPU clock."""

from __future__ import annotations

import importlib
from contextlib import nullcontext
from types import SimpleNamespace
from typing import Any

import pytest

from infphys.measure.gpu._timing import cuda_event_times_s, host_times_s
from infphys.measure.gpu.decode_stack import DecodeStack, StepTiming

# The module, not the function of the same name that the package re-exports.
copy_module = importlib.import_module("infphys.measure.gpu.copy_bandwidth")


class _FakeCuda:
    """Just enough of ``torch.cuda`` for the event loop: a GPU clock in ms that each call of the
    timed work moves on by ``ms_per_call``; a log of what ran in which order."""

    def __init__(self, ms_per_call: float) -> None:
        self.now_ms = 0.0
        self.ms_per_call = ms_per_call
        self.log: list[str] = []

    def work(self) -> None:
        self.now_ms += self.ms_per_call
        self.log.append("call")

    def synchronize(self, device: Any) -> None:
        self.log.append("sync")

    def Event(self, enable_timing: bool) -> Any:
        assert enable_timing
        cuda = self
        stamp: dict[str, float] = {}

        def record() -> None:
            stamp["ms"] = cuda.now_ms

        def elapsed_time(other: Any) -> float:
            return float(other.stamp["ms"] - stamp["ms"])

        return SimpleNamespace(
            record=record, synchronize=lambda: None, elapsed_time=elapsed_time, stamp=stamp
        )


def test_cuda_events_give_seconds_per_call() -> None:
    cuda = _FakeCuda(ms_per_call=5.0)
    torch = SimpleNamespace(cuda=cuda)
    times = cuda_event_times_s(torch, "cuda:0", cuda.work, 3, warmup=2, calls=16)
    # 16 calls of 5 ms between the events: 80 ms / 1e3 / 16 = 0.005 s per call, every timing.
    assert times == pytest.approx([0.005, 0.005, 0.005])
    # Two untimed warm-up calls, one synchronize, then 3 × 16 timed calls.
    assert cuda.log[:3] == ["call", "call", "sync"]
    assert cuda.log.count("call") == 2 + 48 and cuda.log.count("sync") == 1


def test_cuda_events_without_warmup_time_every_call() -> None:
    cuda = _FakeCuda(ms_per_call=2.5)
    times = cuda_event_times_s(SimpleNamespace(cuda=cuda), None, cuda.work, 4)
    assert times == pytest.approx([0.0025] * 4)  # 2.5 ms per call, one call per timing
    assert cuda.log == ["sync"] + ["call"] * 4


def test_host_loop_counts_calls_the_same_way() -> None:
    calls: list[int] = []
    times = host_times_s(lambda: calls.append(1), 3, warmup=0, calls=4)
    assert len(times) == 3 and len(calls) == 1 + 12  # the host loop warms up at least once


def test_device_copy_is_timed_on_the_event_clock() -> None:
    # A 64 MiB device copy: 256 MiB per timing is 4 copies, each 1 ms on the fake clock, so
    # each timing is 4 ms / 4 = 1e-3 s per copy.
    cuda = _FakeCuda(ms_per_call=1.0)
    cuda.empty_cache = lambda: None  # type: ignore[attr-defined]

    class _Buffer:
        def fill_(self, value: int) -> None:
            pass

        def copy_(self, src: _Buffer) -> None:
            cuda.work()

    torch = SimpleNamespace(
        cuda=cuda, uint8="uint8", empty=lambda *a, **k: _Buffer(), empty_like=lambda t: _Buffer()
    )
    size = 64 * 2**20
    times, n = copy_module._time_cuda(torch, size, 3, 1, "cuda:0")
    assert n == 4
    assert times == pytest.approx([1e-3] * 3)
    assert cuda.log.count("call") == 1 + 3 * n  # one warm-up copy, then 3 timings of n copies


def test_step_timing_from_step_times() -> None:
    # Steps of 8, 6 and 7 ms: median 7 ms, fastest 6 ms, 3 repeats.
    t = StepTiming.of(4, [0.008, 0.006, 0.007], cuda_graph=True, note="n")
    assert (t.batch, t.step_s, t.step_min_s, t.repeats, t.cuda_graph, t.note) == (
        4,
        0.007,
        0.006,
        3,
        True,
        "n",
    )
    with pytest.raises(ValueError, match="times_s"):
        StepTiming.of(4, [], cuda_graph=False)


class _FakeCudaWithGraphs(_FakeCuda):
    """The fake clock plus the streams and CUDA graphs ``DecodeStack.time_step`` asks for; a
    graph replays the timed work; capture raises when ``capture_fails``."""

    def __init__(self, ms_per_call: float, capture_fails: bool) -> None:
        super().__init__(ms_per_call)
        self.capture_fails = capture_fails

    def Stream(self, device: Any) -> Any:
        return SimpleNamespace(wait_stream=lambda other: None)

    def current_stream(self, device: Any) -> Any:
        return self.Stream(device)

    def stream(self, stream: Any) -> Any:
        return nullcontext()

    def CUDAGraph(self) -> Any:
        return SimpleNamespace(replay=self.work)

    def graph(self, graph: Any) -> Any:
        if self.capture_fails:
            raise RuntimeError("capture refused")
        return nullcontext()


def _fake_cuda_stack(cuda: _FakeCuda) -> DecodeStack:
    """A DecodeStack on the fake CUDA device whose step is ``cuda.work`` (the tensors are never
    built: only the timing path runs)."""
    stack = DecodeStack.__new__(DecodeStack)
    stack.torch = SimpleNamespace(cuda=cuda)
    stack.device = SimpleNamespace(type="cuda")
    stack.max_batch = 8
    stack.step = lambda batch: cuda.work()  # type: ignore[method-assign]
    return stack


@pytest.mark.parametrize("capture_fails", [False, True])
def test_decode_step_on_cuda_is_timed_on_the_event_clock(capture_fails: bool) -> None:
    # Each step (eager or a graph replay) is 3 ms on the fake GPU clock: every timing is 3e-3 s.
    cuda = _FakeCudaWithGraphs(ms_per_call=3.0, capture_fails=capture_fails)
    t = _fake_cuda_stack(cuda).time_step(4, repeats=5, warmup=2)
    assert (t.batch, t.repeats) == (4, 5)
    assert t.step_s == pytest.approx(3e-3) and t.step_min_s == pytest.approx(3e-3)
    assert t.cuda_graph is not capture_fails
    assert (t.note is not None and "capture refused" in t.note) is capture_fails
