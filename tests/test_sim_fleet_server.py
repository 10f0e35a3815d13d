"""The real-time fleet: several engines behind one OpenAI endpoint, and no secret ever printed.

Each test runs ``serve(replicas=…)`` on a free loopback port in a background thread; clients are
the official ``openai`` SDK and raw aiohttp. The router is the virtual-time fleet's
(:class:`infphys.sim.fleet.Router`), so the spread of requests is worked out by hand below.
"""

from __future__ import annotations

import asyncio
import os
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from openai import OpenAI
from prometheus_client.parser import text_string_to_metric_families
from simproc import MODEL, infphys_sim, small, stream_body
from typer.testing import CliRunner

from infphys.cli import app
from infphys.cli._measure_common import TargetOptions
from infphys.cli.sim import ServingOptions
from infphys.endpoint import Target
from infphys.measure.client import ChatClient
from infphys.measure.metrics import MetricsScraper
from infphys.measure.stub import StubConfig
from infphys.resolve import ResolvedTarget
from infphys.sim import SimHandle, serve
from infphys.sim.server import SimServer

SECRET = "sk-very-secret-123"


def samples(text: str, name: str) -> dict[str, float]:
    """``{replica: value}`` of the samples ``name`` (summed over other labels)."""
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name:
                key = s.labels.get("replica", "")
                out[key] = out.get(key, 0.0) + s.value
    return out


async def _metrics(base_url: str) -> str:
    async with aiohttp.ClientSession() as s, s.get(base_url + "/metrics") as r:
        return await r.text()


def test_the_openai_sdk_streams_from_a_two_replica_fleet() -> None:
    with (
        serve(config=small(), replicas=2, router="round-robin") as t,
        OpenAI(base_url=t.base_url + "/v1", api_key="none") as c,
    ):
        assert t.simulator is not None and "2 replicas" in t.describe()
        chunks = list(
            c.chat.completions.create(
                model=t.model,
                messages=[{"role": "user", "content": "hello"}],
                max_tokens=5,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        content = [ch for ch in chunks if ch.choices and ch.choices[0].delta.content]
        assert len(content) == 5 and content[-1].choices[0].finish_reason == "length"
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5
        r = c.completions.create(model=t.model, prompt="hi", max_tokens=3)
        assert r.choices[0].text == " the quick brown"
        text = asyncio.run(_metrics(t.base_url))
    # Round-robin: the stream went to replica 0, the completion to replica 1.
    assert samples(text, "vllm:request_success_total") == {"0": 1.0, "1": 1.0}
    assert samples(text, "vllm:generation_tokens_total") == {"0": 5.0, "1": 3.0}
    # Every engine series has a replica label, beside model_name, in both vocabularies.
    for name in (
        "vllm:num_requests_running",
        "vllm:kv_cache_usage_perc",
        "num_requests_waiting",
        "vllm:time_to_first_token_seconds_count",
        "vllm:inter_token_latency_seconds_count",
        "infphys_sim_step_lag_seconds",
    ):
        assert set(samples(text, name)) == {"0", "1"}, name
    assert 'model_name="meta/llama-3.1-8b-instruct",replica="0"' in text
    assert samples(text, "infphys_router_outstanding_requests") == {"0": 0.0, "1": 0.0}
    assert samples(text, "infphys_router_routed_requests_total") == {"0": 1.0, "1": 1.0}


async def _concurrent_streams(t: Target, n: int, max_tokens: int) -> list[int]:
    """``n`` streams sent at once; the content chunks each received."""
    body = stream_body(max_tokens)

    async def one(s: aiohttp.ClientSession) -> int:
        got = 0
        async with s.post(t.chat_url, json=body) as r:
            async for line in r.content:
                if line.startswith(b"data: {") and b'"content":"' in line and b'""' not in line:
                    got += 1
        return got

    async with aiohttp.ClientSession() as s:
        return list(await asyncio.gather(*(one(s) for _ in range(n))))


def test_least_outstanding_spreads_concurrent_requests_evenly() -> None:
    # Six streams of 60 tokens (~0.75 s each at time_scale 2) arrive together: each goes to a
    # replica with the fewest requests in it, so the three replicas get 2, 2 and 2.
    with serve(config=small(), replicas=3, router="least-outstanding", time_scale=2.0) as t:
        got = asyncio.run(_concurrent_streams(t, 6, 60))
        text = asyncio.run(_metrics(t.base_url))
    assert got == [60] * 6
    assert samples(text, "infphys_router_routed_requests_total") == {"0": 2, "1": 2, "2": 2}
    assert samples(text, "vllm:generation_tokens_total") == {"0": 120, "1": 120, "2": 120}


def test_session_affinity_is_a_fixed_hash_of_the_request_index() -> None:
    # With session-affinity and no session, the session is the request's index; the router's
    # blake2b hash of "0:<index>" modulo 3 puts requests 0..5 on replicas 1, 0, 2, 1, 2, 2
    # (worked out once with hashlib), whatever the load: 1, 2 and 3 requests.
    with (
        serve(config=small(), replicas=3, router="session-affinity") as t,
        OpenAI(base_url=t.base_url + "/v1", api_key="none") as c,
    ):
        for _ in range(6):
            c.completions.create(model=t.model, prompt="hi", max_tokens=2)
        text = asyncio.run(_metrics(t.base_url))
    assert samples(text, "infphys_router_routed_requests_total") == {"0": 1, "1": 2, "2": 3}


def test_disaggregated_fleet_moves_each_request_from_prefill_to_decode() -> None:
    with serve(config=small(), replicas=2, prefill_replicas=1, router="round-robin") as t:
        assert "1 prefill + 2 decode" in t.describe()
        got = asyncio.run(_concurrent_streams(t, 4, 12))
        with OpenAI(base_url=t.base_url + "/v1", api_key="none") as c:
            r = c.chat.completions.create(
                model=t.model, messages=[{"role": "user", "content": "hi"}], max_tokens=6
            )
        text = asyncio.run(_metrics(t.base_url))
    assert got == [12] * 4
    assert r.choices[0].finish_reason == "length" and r.usage is not None
    assert r.usage.completion_tokens == 6
    # Five requests prefilled on replica 0 (one token each there), then decoded on replicas 1
    # and 2 in turn (3 and 2 of them): 4 × 12 + 6 = 54 tokens, 5 of them first tokens.
    routed = samples(text, "infphys_router_routed_requests_total")
    assert routed == {"0": 5, "1": 3, "2": 2}
    gen = samples(text, "vllm:generation_tokens_total")
    assert gen["0"] == 5 and gen["1"] + gen["2"] == 54 - 5
    assert samples(text, "vllm:time_to_first_token_seconds_count")["0"] == 5
    assert samples(text, "vllm:request_success_total") == {"1": 3, "2": 2}
    assert samples(text, "infphys_router_kv_transfers_in_flight") == {"": 0}


def test_fleet_flags_are_checked() -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["sim", "--replicas", "0"])
    assert r.exit_code == 2 and "--replicas must be at least 1" in r.output
    r = runner.invoke(app, ["sim", "--router", "random"])
    assert r.exit_code == 2 and "--router must be one of" in r.output
    r = runner.invoke(app, ["sim", "--prefill-replicas", "1"])
    assert r.exit_code == 2 and "give both or neither" in r.output
    r = runner.invoke(
        app, ["sim", "--replicas", "2", "--prefill-replicas", "1", "--decode-replicas", "1"]
    )
    assert r.exit_code == 2 and "one or the other" in r.output


def test_infphys_sim_serves_a_fleet_until_interrupted() -> None:
    args = ["--replicas", "2", "--router", "least-outstanding", "--max-model-len", "8192"]
    with infphys_sim(*args) as sim:
        assert sim.proc.stdout is not None
        assert "2 replicas (least-outstanding)" in sim.proc.stdout.readline()
        with OpenAI(base_url=sim.url + "/v1", api_key="none") as c:
            r = c.completions.create(model=MODEL, prompt="hi", max_tokens=3)
        assert r.usage is not None and r.usage.completion_tokens == 3
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(sim.url + "/metrics", timeout=10) as resp:
            text = resp.read().decode()
        assert set(samples(text, "vllm:num_requests_running")) == {"0", "1"}
        assert sum(samples(text, "infphys_router_routed_requests_total").values()) == 1
    assert sim.proc.returncode in (0, 130), sim.out
    assert "stopped: 1 requests" in sim.out


# --- no object prints a secret -------------------------------------------------------------------


def _shown(obj: Any) -> str:
    return repr(obj) + str(obj)


def test_no_public_type_that_holds_an_api_key_prints_it() -> None:
    plain = Target(base_url="http://gpu-box:8000", api_key=SECRET)
    assert plain.api_key == SECRET and SECRET not in _shown(plain)
    assert SECRET not in str(plain.public_dict()) and SECRET not in plain.headers().get("X", "")
    assert SECRET not in _shown(plain.with_(model="other"))
    server = SimServer(small(), api_key=SECRET)
    assert server.api_key == SECRET and SECRET not in _shown(server)
    stub = StubConfig(api_key=SECRET)
    assert SECRET not in _shown(stub)
    # The CLI's option groups that carry --api-key.
    for options in (TargetOptions(api_key=SECRET), ServingOptions(api_key=SECRET)):
        assert options.api_key == SECRET and SECRET not in _shown(options), type(options)
    client = ChatClient(plain)  # holds the bearer header; its repr is the default one
    assert SECRET not in _shown(client)
    assert SECRET not in _shown(MetricsScraper(plain))
    with serve(config=small(), api_key=SECRET) as t:
        assert t.api_key == SECRET
        assert isinstance(t.simulator, SimHandle)
        for obj in (t, t.simulator, t.public_dict(), t.describe()):
            assert SECRET not in _shown(obj), type(obj)
        resolved = ResolvedTarget(target=t, simulated=True, message=t.describe(), sim=t)
        assert SECRET not in _shown(resolved)


def _children_cmdlines() -> list[str]:
    """Command lines of this process's children (Linux /proc)."""
    me = os.getpid()
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == me:
                out.append((stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except (OSError, IndexError, ValueError):
            continue
    return out


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_the_simulator_process_gets_its_key_off_the_command_line() -> None:
    with serve(config=small(), api_key=SECRET, process=True) as t:
        cmdlines = [c for c in _children_cmdlines() if "infphys.sim._child" in c]
        assert len(cmdlines) == 1 and SECRET not in cmdlines[0]
        with OpenAI(base_url=t.base_url + "/v1", api_key=SECRET) as c:  # the key still works
            r = c.completions.create(model=t.model, prompt="hi", max_tokens=2)
        assert r.usage is not None and r.usage.completion_tokens == 2
