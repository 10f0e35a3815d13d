"""The load generator against loopback stubs: shapes, bounds, run files, secrecy."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from infphys import stats
from infphys.measure import (
    Level,
    LoadProgress,
    StubConfig,
    StubServer,
    Target,
    Timeouts,
    open_loop,
    overload,
    run_closed_loop,
    run_levels,
    run_sync,
    sweep,
    token_grid,
)
from infphys.records import read_run


async def test_closed_loop_counts_warmup_and_writes_every_record(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    seen: list[int] = []
    async with StubServer(StubConfig(delay_s=0.01, tokens=4)) as server:
        result = await run_closed_loop(
            server.target(),
            concurrency=3,
            requests=10,
            warmup=2,
            max_tokens=4,
            prompt_tokens=16,
            path=path,
            seed=7,
            on_record=lambda r: seen.append(r.request_id),
        )
    assert len(result.records) == 12 and sorted(seen) == list(range(12))
    # The first two sent are the warm-up (records are in completion order, which may differ).
    assert sorted(r.request_id for r in result.records if r.warmup) == [0, 1]
    assert all(r.ok for r in result.records)
    run = read_run(path)
    assert len(run.records) == 12
    assert run.header.seed == 7
    assert run.header.load["kind"] == "closed_loop"
    assert run.header.load["levels"][0]["concurrency"] == 3
    assert run.header.target["api_key_set"] is False
    frame = result.frame()
    assert set(frame["concurrency"]) == {3}
    assert set(frame["prompt_tokens"]) == {16}  # the stub counts words: 16 words asked
    s = result.summary()
    assert int(s["requests"].iloc[0]) == 10 and int(s["ok"].iloc[0]) == 10
    d = result.delivered[0]
    assert d.asked == "concurrency 3" and d.sent == 12 and d.peak_in_flight == 3


async def test_closed_loop_keeps_c_in_flight_and_littles_law_holds() -> None:
    # 4 workers, 200 ms per request: mean in flight ≈ 4, throughput ≈ 4 / 0.2 = 20 req/s. Each
    # worker is idle between an answer and its next send; on a busy machine that turnaround
    # reaches tens of ms, so the stub's delay is long enough for 3.3 to allow 40 ms of it.
    async with StubServer(StubConfig(delay_s=0.2, tokens=2)) as server:
        result = await run_closed_loop(server.target(), concurrency=4, requests=24, max_tokens=2)
    d = result.delivered[0]
    assert 3.3 <= d.mean_in_flight <= 4.0
    law = stats.littles_law(result.frame())
    assert law.holds, law
    # 4 in flight for ≥ 200 ms each: at most 4 / 0.2 = 20 req/s (+ 2 % for the window's
    # edges). A busy machine can only lower it, and Little's Law above ties it to the latency.
    tp = stats.throughput(result.frame())
    assert 0 < tp.requests_per_s <= 20.4


async def test_open_loop_constant_arrivals_are_on_schedule() -> None:
    async with StubServer(StubConfig(delay_s=0.005, tokens=2)) as server:
        result = await open_loop(
            server.target(), rate_per_s=40, requests=12, arrival="constant", max_tokens=2
        )
    f = result.frame().sort_values("request_id")
    gaps = f["scheduled_s"].diff().dropna()
    assert gaps.round(9).eq(0.025).all()  # 1 / 40 req/s
    assert (f["dispatch_lag_s"] >= 0).all()
    d = result.delivered[0]
    assert d.asked == "40 req/s constant" and d.sent == 12
    # Each request goes out at its schedule plus its dispatch lag, so the first-to-last window
    # is 11 gaps × 25 ms = 275 ms, give or take the largest lag measured (a busy machine lags,
    # and the report says by how much): 11 / 0.275 s = 40 req/s on an idle one.
    assert f["dispatch_lag_s"].max() == pytest.approx(d.dispatch_lag_max_s)
    assert abs(d.dispatch_window_s - 0.275) <= d.dispatch_lag_max_s + 1e-9
    assert d.delivered_rate_per_s == pytest.approx(11 / d.dispatch_window_s)


async def test_poisson_arrivals_are_seeded() -> None:
    async def schedule(seed: int) -> list[float]:
        async with StubServer(StubConfig(tokens=1)) as server:
            r = await open_loop(
                server.target(), rate_per_s=200, requests=8, seed=seed, max_tokens=1
            )
        f = r.frame().sort_values("request_id")
        return list(f["scheduled_s"] - f["scheduled_s"].iloc[0])

    a, b, c = await schedule(1), await schedule(1), await schedule(2)
    assert a == pytest.approx(b, abs=1e-9) and a != pytest.approx(c, abs=1e-6)


async def test_duration_bounds_the_run_and_marks_incomplete() -> None:
    # The stub answers after 3 s; the run stops at duration 0.2 s + drain 0.2 s. Had it waited
    # for the server, both requests would be ``ok``; had a client timeout ended them, they would
    # carry its error class. Incomplete with no error class: the run's own bound ended them.
    # (How soon it returns is a speed figure: benchmarks/bench_budgets.py prints it.)
    async with StubServer(StubConfig(delay_s=3.0)) as server:
        result = await run_closed_loop(
            server.target(), concurrency=2, requests=50, duration_s=0.2, drain_s=0.2
        )
    assert len(result.records) == 2
    assert all(r.status == "incomplete" and r.error_class is None for r in result.records)
    assert stats.error_rates(result.frame())["error_class"].tolist() == ["incomplete"]


async def test_open_loop_is_bounded_by_duration() -> None:
    # 100 req/s for 0.2 s schedules about 20 of the 10,000 requests: the duration, not the
    # count, ends the run. Nothing scheduled after 0.2 s goes out; a loaded machine may get
    # fewer of the scheduled ones out in time (seen: 2), never more.
    async with StubServer(StubConfig(tokens=1)) as server:
        result = await open_loop(
            server.target(), rate_per_s=100, requests=10_000, duration_s=0.2, drain_s=1.0
        )
    assert 1 <= len(result.records) <= 30
    assert (result.frame()["scheduled_s"] < 0.2).all()


async def test_cancelled_run_keeps_finished_records(tmp_path: Path) -> None:
    path = tmp_path / "cancelled.jsonl"
    async with StubServer(StubConfig(delay_s=0.03, tokens=1)) as server:
        progress = LoadProgress()
        task = asyncio.ensure_future(
            run_closed_loop(
                server.target(), concurrency=2, requests=1000, path=path, progress=progress
            )
        )
        while progress.done < 6:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    run = read_run(path)
    statuses = [r.status for r in run.records]
    assert statuses.count("ok") >= 6
    assert 1 <= statuses.count("incomplete") <= 2


def test_a_killed_run_leaves_a_readable_file(tmp_path: Path) -> None:
    path = tmp_path / "killed.jsonl"
    script = textwrap.dedent(
        f"""
        from infphys.measure import StubConfig, StubServer, run_closed_loop, run_sync
        with StubServer(StubConfig(delay_s=0.02, tokens=2)) as server:
            run_sync(run_closed_loop(server.target(), concurrency=2, requests=100000,
                                 path={str(path)!r}))
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if path.exists() and path.read_text().count('"type":"request"') >= 5:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
    run = read_run(path)
    assert len(run.records) >= 5
    assert all(r.ok for r in run.records)
    assert run.header.source == "measured"


async def test_the_api_key_is_never_written_or_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk-TOPSECRET-123456"
    caplog.set_level(logging.DEBUG)
    path = tmp_path / "run.jsonl"
    async with StubServer(
        StubConfig(api_key=secret, tokens=2, fault="http_500", fault_every=3)
    ) as s:
        target = s.target()
        assert target.api_key == secret
        result = await sweep(
            target, concurrency=[1, 2], requests_per_level=6, path=path, metrics_interval_s=0.05
        )
        wrong = await run_closed_loop(
            s.target(api_key=secret + "-wrong"), requests=2, path=tmp_path / "wrong.jsonl"
        )
    assert any(r.error_class == "http_5xx" for r in result.records)
    assert all(r.http_status == 401 for r in wrong.records)
    texts = [p.read_text() for p in tmp_path.iterdir()]
    assert len(texts) == 3  # two runs and one metrics file
    texts += [caplog.text, repr(result), repr(target), str(result.warnings)]
    assert all(secret not in t for t in texts)
    assert json.loads(path.read_text().splitlines()[0])["target"]["api_key_set"] is True


async def test_metrics_are_scraped_during_the_run(tmp_path: Path) -> None:
    async with StubServer(StubConfig(delay_s=0.05, tokens=2)) as server:
        result = await run_closed_loop(
            server.target(),
            concurrency=4,
            requests=24,
            path=tmp_path / "m.jsonl",
            metrics_interval_s=0.03,
        )
    m = result.metrics
    assert m is not None and len(m) >= 5
    assert m["requests_running"].max() >= 1
    assert (m["kv_cache_usage"].dropna() <= 1).all()
    assert result.metrics_path == tmp_path / "m.metrics.jsonl"
    assert result.metrics_path.is_file()


async def test_sweep_grid_and_overload_label_their_levels() -> None:
    async with StubServer(StubConfig(delay_s=0.01, tokens=8)) as server:
        t = server.target()
        sw = await sweep(t, rates_per_s=[50, 100], requests_per_level=5, max_tokens=4)
        grid = await token_grid(t, prompt_tokens=[8, 32], max_tokens=[2, 6], requests_per_cell=2)
    s = sw.summary()
    assert s["rate_per_s"].tolist() == [50, 100] and s["mode"].tolist() == ["open", "open"]
    g = grid.summary()
    assert list(zip(g["prompt_tokens_asked"], g["max_tokens"], strict=True)) == [
        (8, 2),
        (8, 6),
        (32, 2),
        (32, 6),
    ]
    f = grid.frame()
    assert (f["completion_tokens"] == f["max_tokens"]).all()  # stub answers min(8, max_tokens)

    async with StubServer(StubConfig(delay_s=0.3)) as server:
        ov = await overload(
            server.target(), concurrency=[2, 4], requests_per_level=2, timeout_s=0.1
        )
    assert {r.error_class for r in ov.records} <= {"total_timeout", "read_timeout"}
    assert set(ov.frame()["timeout_s"]) == {0.1}
    assert ov.header.load["timeouts"]["total_s"] == 0.1


async def test_run_sync_works_inside_a_running_event_loop() -> None:
    # The notebook case: a loop is running in this thread (as in a marimo or Jupyter cell).
    with StubServer(StubConfig(tokens=2)) as server:
        result = run_sync(run_closed_loop(server.target(), requests=3, max_tokens=2))
    assert [r.status for r in result.records] == ["ok"] * 3


def test_bad_input_names_the_argument() -> None:
    with pytest.raises(ValueError, match="concurrency or rate_per_s"):
        Level(requests=1)
    with pytest.raises(ValueError, match="requests"):
        Level(requests=0, concurrency=1)
    with pytest.raises(ValueError, match="arrival"):
        Level(requests=1, rate_per_s=1, arrival="bursty")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"concurrency\[1\]"):
        asyncio.run(sweep(_target(), concurrency=[1, 0]))
    with pytest.raises(ValueError, match="duration_s"):
        asyncio.run(run_levels(_target(), [Level(requests=1, concurrency=1)], duration_s=0))
    with pytest.raises(ValueError, match="total_s"):
        Timeouts(total_s=-1)


def _target() -> Target:
    return Target(base_url="http://127.0.0.1:9")


async def test_a_prompt_list_is_used_in_turn() -> None:
    async with StubServer(StubConfig(tokens=1)) as server:
        result = await run_closed_loop(
            server.target(), requests=4, prompts=["one two", "one two three four"], max_tokens=1
        )
    by_id = sorted(result.records, key=lambda r: r.request_id)
    assert [r.prompt_tokens for r in by_id] == [2, 4, 2, 4]  # the stub counts words
    assert "prompt_tokens_asked" not in result.frame().columns
    # mean characters: (7 + 18) / 2 = 12.5
    assert result.header.load["prompts"] == {"kind": "list", "count": 2, "mean_chars": 12.5}


@pytest.mark.parametrize("http_stack", ["wire", "aiohttp"])
async def test_a_busy_client_still_records_the_servers_latency(http_stack: str) -> None:
    """The clock is read where the bytes are: a client that blocks its event loop 40 ms after
    every record (as a slow notebook callback would) still records the server's 50 ms on the
    wire stack (kernel receive timestamps), and reports the lag; aiohttp's stamps, taken when
    the coroutine resumes, carry the blocking.

    Hand count: 4 workers, answers every ~50 ms, 40 ms of blocking per answer, so most answers
    arrive while the loop is blocked and wait up to 40 ms (tens of ms on average) to be read.
    """
    if http_stack == "wire" and sys.platform != "linux":
        pytest.skip("kernel receive timestamps are Linux-only")

    def block(_rec: object) -> None:
        time.sleep(0.04)

    # The server runs in its own thread (sync ``with``): the blocking stalls the client only.
    # The same run without the blocking is the control: what this machine makes of the stub's
    # 50 ms right now (a loaded machine adds to both runs alike).
    with StubServer(StubConfig(delay_s=0.05, tokens=2)) as server:
        result = await run_closed_loop(
            server.target(),
            concurrency=4,
            requests=24,
            max_tokens=2,
            on_record=block,
            http_stack=http_stack,
        )
        control = await run_closed_loop(
            server.target(), concurrency=4, requests=24, max_tokens=2, http_stack=http_stack
        )
    e2e = [r.e2e_s for r in result.records if r.ok and r.e2e_s is not None]
    assert len(e2e) == 24
    p50 = stats.percentiles(e2e, (50,))["p50"]
    control_e2e = [r.e2e_s for r in control.records if r.ok and r.e2e_s is not None]
    control_p50 = stats.percentiles(control_e2e, (50,))["p50"]
    assert p50 >= 0.049 and control_p50 >= 0.049  # never sooner than the stub's 50 ms
    d = result.delivered[0]
    if http_stack == "wire":
        assert "infphys wire" in result.header.extra["http_client"]
        assert "kernel" in result.header.extra["http_client"]
        # The reads waited behind the blocking (≥ 15 ms at p95) ...
        assert d.receive_lag_p95_s >= 0.015
        # ... yet the latency is the control's, not the control's plus that wait.
        assert p50 <= control_p50 + 0.008, (p50, control_p50)
    else:
        assert result.header.extra["http_client"].startswith("aiohttp")
        # The blocking shows up in the latency: tens of ms on top of the control's.
        assert p50 >= control_p50 + 0.02, (p50, control_p50)
        assert d.receive_lag_p95_s != d.receive_lag_p95_s  # NaN: no kernel stamps here
