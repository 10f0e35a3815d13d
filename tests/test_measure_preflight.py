"""Preflight verdicts against real loopback servers: one actionable message each."""

from __future__ import annotations

from loopback import free_port

from infphys.measure.preflight import preflight, preflight_sync
from infphys.measure.stub import StubConfig, StubServer
from infphys.measure.target import Target


async def test_ok() -> None:
    async with StubServer(StubConfig(tokens=4)) as server:
        v = await preflight(server.target())
    assert v.ok and v.problem is None
    assert [s.name for s in v.steps] == ["models", "ready", "chat"]
    assert "streamed 4 tokens" in v.message and "usage" in v.message
    assert v.models == ("meta/llama-3.1-8b-instruct",)


async def test_nothing_listening() -> None:
    v = await preflight(Target(base_url=f"http://127.0.0.1:{free_port()}"))
    assert not v.ok and v.problem == "unreachable"
    assert "connection refused" in v.message and "NIM_BASE_URL" in v.message
    assert "simulator" in v.message
    assert len(v.steps) == 1


async def test_model_not_served() -> None:
    async with StubServer() as server:
        v = await preflight(server.target(model="meta/llama-3.1-70b-instruct"))
    assert v.problem == "model"
    assert "meta/llama-3.1-8b-instruct" in v.message and "NIM_GEN_MODEL" in v.message


async def test_bad_key() -> None:
    async with StubServer(StubConfig(api_key="good")) as server:
        v = await preflight(server.target(api_key="bad-KEY-value"))
        w = await preflight(server.target(api_key=None))
    assert v.problem == "auth" and "NIM_API_KEY" in v.message
    assert "bad-KEY-value" not in v.message and "a key is set" in v.message
    assert w.problem == "auth" and "no key is set" in w.message


async def test_not_ready() -> None:
    async with StubServer(StubConfig(ready=False)) as server:
        v = await preflight(server.target())
    assert v.problem == "not_ready" and "loading" in v.message


async def test_wrong_chat_path() -> None:
    async with StubServer() as server:
        v = await preflight(server.target(chat_path="/v2/chat"))
    assert v.problem == "path" and "NIM_CHAT_PATH" in v.message


async def test_server_errors_and_broken_streams() -> None:
    async with StubServer(StubConfig(fault="http_500")) as server:
        v = await preflight(server.target())
    assert v.problem == "server_error"
    async with StubServer(StubConfig(fault="malformed_sse")) as server:
        w = await preflight(server.target())
    assert w.problem == "protocol" and "malformed_sse" in w.message
    async with StubServer(StubConfig(fault="stall", stall_s=5)) as server:
        x = await preflight(server.target(), timeout_s=0.3)
    assert x.problem == "timeout"


def test_sync_wrapper() -> None:
    with StubServer() as server:
        v = preflight_sync(server.target())
    assert v.ok and str(v).startswith("ok: ")
