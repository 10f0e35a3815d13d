"""The real-time simulated server: OpenAI shapes, errors, metrics, overload, keeping up.

Every test runs the server on a free loopback port in a background thread (``serve``); clients
are the official ``openai`` SDK, raw aiohttp (to see exact bytes) and ``infphys.measure``.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import logging
import signal
import time
from typing import Any

import aiohttp
import numpy as np
import pytest
from openai import OpenAI
from simproc import MODEL, small, stream_body

from infphys._closing import end_process
from infphys.measure import Target, open_loop, parse_metrics, run_closed_loop
from infphys.sim import EngineConfig, OutputLengths, Workload, hosting, serve, simulate

# --- the official SDK works unchanged ------------------------------------------------------------


def test_openai_sdk_streaming_and_not() -> None:
    with serve(config=small()) as t, OpenAI(base_url=t.base_url + "/v1", api_key="none") as c:
        assert [m.id for m in c.models.list().data] == [MODEL]
        r = c.chat.completions.create(
            model=t.model, messages=[{"role": "user", "content": "the cat sat"}], max_tokens=7
        )
        assert r.choices[0].finish_reason == "length"
        assert r.usage is not None and r.usage.completion_tokens == 7
        # 5 (begin + assistant header) + 5 per message + 3 words.
        assert r.usage.prompt_tokens == 13
        assert len(r.choices[0].message.content.split()) == 7  # type: ignore[union-attr]
        stream = c.chat.completions.create(
            model=t.model,
            messages=[{"role": "user", "content": "hello"}],
            max_tokens=5,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
        assert chunks[0].choices[0].delta.role == "assistant"
        content = [ch for ch in chunks if ch.choices and ch.choices[0].delta.content]
        assert len(content) == 5
        assert content[-1].choices[0].finish_reason == "length"
        assert chunks[-1].choices == [] and chunks[-1].usage is not None
        assert chunks[-1].usage.completion_tokens == 5
        comp = c.completions.create(model=t.model, prompt=[1, 2, 3, 4], max_tokens=3)
        assert comp.usage is not None and comp.usage.prompt_tokens == 4
        assert comp.choices[0].text == " the quick brown"
        texts = [
            ch.choices[0].text
            for ch in c.completions.create(model=t.model, prompt="hi", max_tokens=3, stream=True)
            if ch.choices
        ]
        assert "".join(texts) == " the quick brown"


# --- exact bytes, errors, headers ----------------------------------------------------------------


async def _post(
    session: aiohttp.ClientSession,
    url: str,
    body: Any,
    *,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    data = body if isinstance(body, str) else json.dumps(body)
    hdrs = {"Content-Type": content_type, **(headers or {})}
    async with session.post(url, data=data, headers=hdrs) as resp:
        text = await resp.text()
        try:
            return resp.status, json.loads(text)
        except json.JSONDecodeError:
            return resp.status, text


async def test_sse_shapes_headers_and_errors() -> None:
    with serve(config=small(), time_scale=2.0, api_key="sekret") as t:
        auth = {"Authorization": "Bearer sekret"}
        url = t.base_url + "/v1/chat/completions"
        async with aiohttp.ClientSession() as s:
            body = {
                "model": MODEL,
                "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 2,
                "stream": True,
                "stream_options": {"include_usage": True},
            }
            async with s.post(url, json=body, headers=auth) as resp:
                assert resp.status == 200
                assert resp.headers["x-infphys-time-scale"] == "2"
                assert resp.headers["x-infphys-simulated"] == "true"
                float(resp.headers["x-infphys-sim-lag-ms"])
                raw = (await resp.read()).decode()
            events = [e[len("data: ") :] for e in raw.split("\n\n") if e]
            assert events[-1] == "[DONE]"
            role, tok1, tok2, usage = (json.loads(e) for e in events[:-1])
            assert role["object"] == "chat.completion.chunk" and role["model"] == MODEL
            assert role["choices"] == [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": ""},
                    "logprobs": None,
                    "finish_reason": None,
                }
            ]
            assert tok1["choices"][0] == {
                "index": 0,
                "delta": {"content": " the"},
                "logprobs": None,
                "finish_reason": None,
            }
            assert tok2["choices"][0]["finish_reason"] == "length"
            assert tok2["choices"][0]["stop_reason"] is None
            assert usage["choices"] == []
            assert usage["usage"] == {
                "prompt_tokens": 11,
                "total_tokens": 13,
                "completion_tokens": 2,
            }
            assert len({role["id"], tok1["id"], usage["id"]}) == 1

            def is_error(payload: Any, status: int) -> None:
                assert set(payload) == {"error"}
                assert set(payload["error"]) == {"message", "type", "param", "code"}
                assert payload["error"]["code"] == status

            st, p = await _post(s, url, body)  # no key
            assert st == 401
            is_error(p, 401)
            st, p = await _post(s, url, "{not json", headers=auth)
            assert st == 400
            is_error(p, 400)
            st, p = await _post(s, url, {"model": MODEL}, headers=auth)
            assert st == 400 and p["error"]["param"] == "messages"
            st, p = await _post(s, url, {**body, "max_tokens": 0}, headers=auth)
            assert st == 400 and "at least 1" in p["error"]["message"]
            st, p = await _post(s, url, {**body, "max_tokens": 5000}, headers=auth)
            assert st == 400
            assert p["error"]["message"].startswith("This model's maximum context length is 4096")
            st, p = await _post(s, url, {**body, "model": "gpt-4"}, headers=auth)
            assert st == 404 and p["error"]["message"] == "The model `gpt-4` does not exist."
            st, p = await _post(s, url, {**body, "stream": False}, headers=auth)
            assert st == 400 and p["error"]["param"] == "stream_options"
            # vLLM's validate_json_request: a body that is not application/json is refused
            # (a charset parameter is fine).
            st, p = await _post(s, url, body, headers=auth, content_type="text/plain")
            assert st == 400 and "Only 'application/json' is allowed" in p["error"]["message"]
            is_error(p, 400)
            st, p = await _post(
                s, url, body, headers=auth, content_type="application/json; charset=utf-8"
            )
            assert st == 200
            # Unknown paths and methods answer OpenAI-shaped JSON, as vLLM's handler does.
            async with s.get(t.base_url + "/v1/nothing-here", headers=auth) as resp:
                assert resp.status == 404
                p = await resp.json()
            is_error(p, 404)
            assert p["error"]["message"] == "Not Found"
            async with s.get(url, headers=auth) as resp:
                assert resp.status == 405
                p = await resp.json()
            is_error(p, 405)
            assert p["error"]["message"] == "Method Not Allowed"
            # On /v1/completions the context-length message names the prompt, not messages.
            comp = {"model": MODEL, "prompt": "hi", "max_tokens": 5000}
            st, p = await _post(s, t.base_url + "/v1/completions", comp, headers=auth)
            assert st == 400 and p["error"]["message"].startswith("This model's maximum context")
            assert "messages" not in p["error"]["message"]
            assert "2 in the prompt" in p["error"]["message"]  # "hi" + begin-of-text
            async with s.get(t.base_url + "/v1/models", headers=auth) as resp:
                card = (await resp.json())["data"][0]
            assert card["id"] == MODEL and card["max_model_len"] == 4096
            assert card["infphys"]["simulated"] is True and card["infphys"]["time_scale"] == 2.0
            for path in ("/v1/health/live", "/v1/health/ready", "/health"):
                async with s.get(t.base_url + path) as resp:  # no key needed
                    assert resp.status == 200


async def test_metrics_in_both_vocabularies() -> None:
    with serve(config=small()) as t:
        async with aiohttp.ClientSession() as s:
            sent_s = time.perf_counter()
            await _post(
                s,
                t.base_url + "/v1/chat/completions",
                {"messages": [{"role": "user", "content": "a b c"}], "max_tokens": 4},
            )
            e2e_s = time.perf_counter() - sent_s
            for path in ("/metrics", "/v1/metrics"):
                async with s.get(t.base_url + path) as resp:
                    text = await resp.text()
                for name in (
                    "vllm:num_requests_running",
                    "vllm:num_requests_waiting",
                    "vllm:kv_cache_usage_perc",
                    "vllm:num_preemptions_total",
                    "vllm:time_to_first_token_seconds_bucket",
                    "vllm:e2e_request_latency_seconds_count",
                    "num_requests_running",
                    "num_requests_waiting",
                    "gpu_cache_usage_perc",
                    "infphys_sim_step_lag_seconds",
                ):
                    assert f"\n{name}" in text, name
                parsed = parse_metrics(text)
                assert parsed["generation_tokens_total"] == 4
                assert parsed["prompt_tokens_total"] == 13
                assert parsed["requests_running"] == 0
                # The request-level series peers and dashboards read. One request of 13 prompt
                # tokens (5 + 5 + 3) and 4 output tokens: one prefill step of 13 tokens and 3
                # decode steps of 1 (4 steps, 16 tokens), 3 gaps between its 4 tokens.
                assert _sample(text, "vllm:request_success_total", finished_reason="length") == 1
                assert _sample(text, "vllm:request_prompt_tokens_sum") == 13
                assert _sample(text, "vllm:request_prompt_tokens_bucket", le="20.0") == 1
                assert _sample(text, "vllm:request_prompt_tokens_bucket", le="10.0") == 0
                assert _sample(text, "vllm:request_generation_tokens_sum") == 4
                assert _sample(text, "vllm:inter_token_latency_seconds_count") == 3
                assert _sample(text, "vllm:iteration_tokens_total_count") == 4
                assert _sample(text, "vllm:iteration_tokens_total_sum") == 16
                for name in ("queue", "prefill", "decode", "inference"):
                    assert _sample(text, f"vllm:request_{name}_time_seconds_count") == 1
                # In seconds: 3 decode steps of ~6 ms each on an H200 (18 ms), and never more
                # than the whole request as this client saw it, however late a busy machine ran
                # the steps (in milliseconds it would be a thousand times more).
                decode_s = _sample(text, "vllm:request_decode_time_seconds_sum")
                assert 0 < decode_s < e2e_s


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of the sample ``name`` whose labels include ``labels`` (summed over the rest)."""
    from prometheus_client.parser import text_string_to_metric_families

    total, found = 0.0, False
    for fam in text_string_to_metric_families(text):
        for smp in fam.samples:
            if smp.name == name and all(smp.labels.get(k) == v for k, v in labels.items()):
                total += smp.value
                found = True
    assert found, f"no sample {name} {labels}"
    return total


async def test_a_client_that_goes_away_frees_its_request() -> None:
    with serve(config=small(), time_scale=4.0) as t:
        body = {
            "messages": [{"role": "user", "content": "x " * 300}],
            "max_tokens": 2000,
            "stream": True,
        }
        async with (
            aiohttp.ClientSession() as s,
            s.post(t.base_url + "/v1/chat/completions", json=body) as resp,
        ):
            await resp.content.readline()
            assert t.simulator.server is not None and t.simulator.server.engine.num_running == 1
        for _ in range(200):
            if t.simulator.server.engine.idle:
                break
            await asyncio.sleep(0.01)
        assert t.simulator.server.engine.idle and t.simulator.server.engine.kv_blocks_used == 0
        assert t.simulator.server.stats.aborted == 1


# --- overload: a bounded queue -------------------------------------------------------------------


async def test_overload_with_max_queue_refuses_with_503_and_stays_live() -> None:
    # 4 seats, a queue of 8: about 10 requests/s of 64 tokens can be served; 100/s arrive for
    # 1.5 s. The rest must get 503 at once, the queue never exceeds 8, and the server keeps
    # answering its health probe.
    cfg = small().with_(max_num_seqs=4)
    with serve(config=cfg, max_queue=8) as t:
        assert t.simulator.server is not None
        target = Target(base_url=t.base_url, model=t.model)
        load = asyncio.create_task(
            open_loop(
                target,
                rate_per_s=100,
                requests=150,
                prompt_tokens=32,
                max_tokens=64,
                duration_s=1.5,
                drain_s=5.0,
                arrival="constant",
            )
        )
        await asyncio.sleep(0.8)
        async with aiohttp.ClientSession() as s, s.get(t.base_url + "/v1/health/live") as r:
            assert r.status == 200
        res = await load
        st = t.simulator.server.stats
    failed = [r for r in res.records if r.status == "failed"]
    ok = [r for r in res.records if r.ok]
    assert ok and failed
    assert {r.http_status for r in failed} == {503}
    assert {r.error_class for r in failed} == {"http_5xx"}
    assert st.rejected_503 == len(failed)
    assert st.peak_waiting <= 8
    assert "max_queue=8" in (failed[0].error_message or "")


# --- keeping up with the wall clock --------------------------------------------------------------


def test_falling_behind_is_detected_and_reported(caplog: pytest.LogCaptureFixture) -> None:
    # At time_scale 0.0005 a decode step is due 3 µs after the previous one: no Python server
    # can deliver that, so the lag must show in the stats, the metrics, the header and the log.
    caplog.set_level(logging.WARNING, logger="infphys.sim")
    with (
        serve(config=small(), time_scale=0.0005) as t,
        OpenAI(base_url=t.base_url + "/v1", api_key="none") as c,
    ):
        assert t.simulator.server is not None
        c.chat.completions.create(
            model=t.model, messages=[{"role": "user", "content": "x"}], max_tokens=1500
        )
        st = t.simulator.server.stats
        assert st.late_steps > 0 and st.max_lag_s > 0.005 and not st.kept_up
        raw = c.chat.completions.with_raw_response.create(
            model=t.model, messages=[{"role": "user", "content": "x"}], max_tokens=2
        )
        assert float(raw.headers["x-infphys-sim-lag-ms"]) > 0
    assert any(
        "falling behind" in r.getMessage() or "did not keep up" in r.getMessage()
        for r in caplog.records
    )


def _served_vs_simulated(time_scale: float) -> tuple[float, float, dict[str, Any]]:
    """Relative errors (TTFT, ITL) of a measured c=64 run against the virtual-time prediction."""
    cfg = EngineConfig.build(
        "h200",
        "llama-3.1-8b",
        max_model_len=4096,
        output_lengths=OutputLengths("uniform", low_tokens=4, high_tokens=28),
    )
    with serve(config=cfg, time_scale=time_scale) as t:
        assert t.simulator.server is not None
        target = Target(base_url=t.base_url, model=t.model)
        res = asyncio.run(
            run_closed_loop(
                target, concurrency=64, requests=128, warmup=64, prompt_tokens=16, max_tokens=28
            )
        )
        info = t.simulator.server.stats.as_dict()
    served = [r for r in res.records if r.ok and not r.warmup]
    assert len(served) == 128
    prompt = served[0].prompt_tokens or 0
    sim = simulate(cfg, Workload.closed(64, 128, warmup=64, prompt_tokens=prompt, max_tokens=28))
    predicted = [r for r in sim.records if r.ok and not r.warmup]

    def means(recs: list[Any], scale: float) -> tuple[float, float]:
        ttft = float(np.mean([r.ttft_s for r in recs])) / scale
        itl = float(np.mean([g for r in recs for g in r.itl_s])) / scale
        return ttft, itl

    (a_ttft, a_itl), (b_ttft, b_itl) = means(served, time_scale), means(predicted, 1.0)
    info.update(served_ttft_s=a_ttft, sim_ttft_s=b_ttft, served_itl_s=a_itl, sim_itl_s=b_itl)
    return a_ttft / b_ttft - 1, a_itl / b_itl - 1, info


def test_served_itl_and_ttft_match_the_virtual_time_prediction_at_c64() -> None:
    # 64 clients, short prompts, 4–28 tokens per answer (so that waves desynchronise). At
    # time_scale 8 a decode step lasts ~52 ms of wall time, so delivery jitter of a few ms is
    # small. On a loaded machine the run is repeated slower, whether the server fell behind or
    # the client did: a client late to send its next request meets a shorter queue, which the
    # server's own lag account does not see (seen: TTFT 7 % under the prediction at ×8 on a
    # busy machine, with the server reporting it kept up).
    attempts = []
    for scale in (8.0, 16.0, 32.0):
        t0 = time.perf_counter()
        e_ttft, e_itl, info = _served_vs_simulated(scale)
        info.update(scale=scale, wall_s=time.perf_counter() - t0, e_ttft=e_ttft, e_itl=e_itl)
        attempts.append(info)
        if abs(e_ttft) <= 0.05 and abs(e_itl) <= 0.05:
            print(f"served vs simulated: {attempts}")
            return
    if all(a["rebases"] > 0 for a in attempts):
        # The server's own account: at every scale a step came so late that it shifted its
        # whole timeline (seen beside two chromiums and two busy loops: 3–7 stalls of up to
        # 0.66 s even at ×32). The timings then measure the computer, not the server.
        stalls = ", ".join(f"{a['rebases']} at ×{a['scale']:g}" for a in attempts)
        pytest.skip(f"too busy to time the server: it stalled at every scale ({stalls})")
    pytest.fail(f"served vs simulated differ by more than 5 %: {attempts}")


def test_serve_in_a_child_process() -> None:
    cfg = EngineConfig.build(
        "h100",
        "llama-3.1-8b",
        weights_precision="fp8",
        max_model_len=8192,
        output_lengths=OutputLengths("geometric", mean_tokens=30),
    )
    assert EngineConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with serve(config=cfg, process=True, time_scale=2.0, api_key="k") as t:
        assert t.simulator.server is None and t.time_scale == 2.0
        with OpenAI(base_url=t.base_url + "/v1", api_key="k") as c:
            r = c.chat.completions.create(
                model=t.model, messages=[{"role": "user", "content": "hi"}], max_tokens=3
            )
            card = c.models.list().data[0]
        assert r.usage is not None and r.usage.completion_tokens <= 3
        assert card.model_dump()["infphys"]["engine"]["gpu"] == "h100-sxm"
        url = t.base_url
    with pytest.raises(aiohttp.ClientConnectorError):  # the process is gone
        asyncio.run(_get(url + "/v1/health/live"))


async def _get(url: str) -> int:
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        return r.status


def test_a_child_server_started_with_sigint_ignored_still_stops_on_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A run started in the background of a shell script has SIGINT ignored, and its children
    # inherit that. The child server must still leave by itself when end_process asks with
    # SIGINT (exit 0), not be killed once the 15 s grace is over (-9).
    codes: list[int] = []

    def recorded(proc: Any, grace_s: float, **kw: Any) -> int:
        codes.append(end_process(proc, grace_s, **kw))
        return codes[-1]

    monkeypatch.setattr(hosting, "end_process", recorded)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # what the child inherits
    try:
        with serve(config=small(), process=True) as t:
            assert asyncio.run(_get(t.base_url + "/v1/health/live")) == 200
    finally:
        signal.signal(signal.SIGINT, previous)
    assert codes == [0]


# --- a huge request does not hold other streams back -------------------------------------------


async def _gaps_beside_a_huge_request(time_scale: float, max_tokens: int) -> dict[str, Any]:
    """Four streams of ``max_tokens``; after ~12 of their tokens a 10 MB request (refused as
    too long).

    Returns the median inter-token gap of the streams before the big request was sent, the
    median over the streams of their longest gap overlapping the time from its sending to its
    answer, and whether every stream was still running when the answer came (else the window
    was not fully watched).
    """
    words = "the quick brown fox jumps over a lazy dog " * 250_000  # ~10 MB, 2.25 M tokens
    big = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": words}]})
    assert len(big) > 10_000_000
    with serve(config=small(), time_scale=time_scale, log_lag=False, process=True) as t:
        url = t.base_url + "/v1/chat/completions"
        arrivals: list[list[float]] = [[] for _ in range(4)]
        window: list[float] = []

        async def stream(s: aiohttp.ClientSession, k: int) -> None:
            async with s.post(url, json=stream_body(max_tokens)) as resp:
                async for line in resp.content:
                    if line.startswith(b"data: {"):
                        arrivals[k].append(time.perf_counter())

        async def huge(s: aiohttp.ClientSession) -> None:
            await asyncio.sleep(0.08 * time_scale)  # ~12 decode steps of ~6 ms (simulated)
            headers = {"Content-Type": "application/json"}
            window.append(time.perf_counter())
            async with s.post(url, data=io.BytesIO(big.encode()), headers=headers) as resp:
                payload = await resp.json()
            window.append(time.perf_counter())
            assert resp.status == 400 and "maximum context length" in payload["error"]["message"]

        async with aiohttp.ClientSession() as s:
            await asyncio.gather(*(stream(s, k) for k in range(4)), huge(s))
    t_send, t_answer = window
    before: list[float] = []
    worst: list[float] = []
    for times in arrivals:
        during = [0.0]
        for a, b in itertools.pairwise(times[1:]):  # skip the role chunk's gap
            if b <= t_send:
                before.append(b - a)
            elif a < t_answer:
                during.append(b - a)
        worst.append(max(during))
    return {
        "scale": time_scale,
        "before_s": float(np.median(before)),
        "worst_during_s": float(np.median(worst)),
        "window_s": t_answer - t_send,
        "watched": all(times[-1] > t_answer for times in arrivals),
    }


#: (time_scale, max_tokens) of each attempt: a slower clock, and streams long enough to outlast
#: the big request's answer on a busy machine (~5 and ~10 s of wall time after it is sent).
HUGE_REQUEST_ATTEMPTS = ((16.0, 64), (32.0, 64))


def _not_stalled(info: dict[str, Any]) -> bool:
    """The streams' worst gap beside the big request is within twice their normal gap, or
    exceeds it by under a quarter of the time the server took to answer the big request."""
    excess_s = info["worst_during_s"] - info["before_s"]
    return info["worst_during_s"] <= 2 * info["before_s"] or excess_s <= 0.25 * info["window_s"]


def test_a_10_mb_request_does_not_stall_other_streams() -> None:
    # Counting 10 MB of prompt takes most of the time the server spends on it (~0.7 s of the
    # ~0.85 s from sending to answer on an idle core). Done in one go on the event loop it held
    # four live streams back all that time (worst gap ≈ the whole window: 0.85 s against a
    # normal 0.1 s, seen with the slices disabled). Counted in 8 KB slices, what is left is the
    # JSON parse of the body, one C call that holds the GIL (vLLM parses its bodies the same
    # way), ~1/50 of the counting's CPU: ~15 ms on an idle core, up to ~0.3 s on a busy machine
    # (seen). So a stream's worst gap must stay within twice its normal gap (the median of gaps
    # before; the simulated clock is slowed ×16 so a normal gap is ~0.1 s of wall time), or
    # exceed it by under a quarter of the window: load slows the parse and the counting alike,
    # so that bound holds on a busy machine and still fails counting in one go (~0.9 of the
    # window). The median over four streams is robust to one late token; an attempt counts
    # only if every stream outlived the answer; a disturbed one is retried twice as slow.
    attempts = []
    for scale, max_tokens in HUGE_REQUEST_ATTEMPTS:
        info = asyncio.run(_gaps_beside_a_huge_request(scale, max_tokens))
        attempts.append(info)
        if info["watched"] and _not_stalled(info):
            print(f"gaps beside a 10 MB request: {attempts}")
            return
    pytest.fail(f"streams stalled beside a 10 MB request (or ended before its answer): {attempts}")


async def test_queue_and_prefill_times_follow_the_scheduler() -> None:
    # One slot (max_num_seqs 1), two requests at once: the second waits in the queue while the
    # first runs, so the queue times add up to at least the first's decode. A prompt of 20,000
    # token ids takes three steps of the 8,192-token budget (8,192 + 8,192 + 3,616): its prefill
    # time spans all three, nearly its whole TTFT (it waited for nothing).
    cfg = EngineConfig.build("h200", "llama-3.1-8b", max_model_len=32768, max_num_seqs=1)
    url_of = "/v1/completions"
    with serve(config=cfg) as t:
        async with aiohttp.ClientSession() as s:
            body = {"model": MODEL, "prompt": "the cat sat", "max_tokens": 20, "ignore_eos": True}
            await asyncio.gather(*(_post(s, t.base_url + url_of, body) for _ in range(2)))
            async with s.get(t.base_url + "/metrics") as resp:
                text = await resp.text()
            queue_s = _sample(text, "vllm:request_queue_time_seconds_sum")
            decode_s = _sample(text, "vllm:request_decode_time_seconds_sum")
            assert _sample(text, "vllm:request_queue_time_seconds_count") == 2
            assert queue_s >= 0.8 * decode_s / 2
            long = {"model": MODEL, "prompt": [1] * 20_000, "max_tokens": 2}
            st, _ = await _post(s, t.base_url + url_of, long)
            assert st == 200
            async with s.get(t.base_url + "/metrics") as resp:
                text2 = await resp.text()
    ttft_s = _sample(text2, "vllm:time_to_first_token_seconds_sum") - _sample(
        text, "vllm:time_to_first_token_seconds_sum"
    )
    prefill_s = _sample(text2, "vllm:request_prefill_time_seconds_sum") - _sample(
        text, "vllm:request_prefill_time_seconds_sum"
    )
    assert prefill_s >= 0.8 * ttft_s
