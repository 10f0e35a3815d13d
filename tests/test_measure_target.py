"""Target: environment parsing, overrides, validation, and the API key kept secret."""

from __future__ import annotations

import pickle

import pytest

from infphys.measure.target import DEFAULT_BASE_URL, DEFAULT_CHAT_PATH, DEFAULT_MODEL, Target


def test_defaults_from_an_empty_environment() -> None:
    t = Target.from_env(env={})
    assert (t.base_url, t.chat_path, t.model, t.api_key) == (
        "http://localhost:8000",
        "/v1/chat/completions",
        "meta/llama-3.1-8b-instruct",
        None,
    )
    assert (t.base_url, t.chat_path, t.model) == (
        DEFAULT_BASE_URL,
        DEFAULT_CHAT_PATH,
        DEFAULT_MODEL,
    )
    assert t.chat_url == "http://localhost:8000/v1/chat/completions"


def test_classic_notebook_variables() -> None:
    env = {
        "NIM_BASE_URL": "http://gpu-box:9000/",
        "NIM_CHAT_PATH": "/v1/chat/completions",
        "NIM_GEN_MODEL": "nvidia/llama-3.3-nemotron",
        "NIM_API_KEY": "nvapi-123",
        "OPENAI_API_KEY": "sk-other",
    }
    t = Target.from_env(env=env)
    assert t.base_url == "http://gpu-box:9000"  # trailing slash dropped
    assert t.model == "nvidia/llama-3.3-nemotron"
    assert t.api_key == "nvapi-123"  # NIM_API_KEY wins over OPENAI_API_KEY
    assert t.headers()["Authorization"] == "Bearer nvapi-123"


def test_openai_key_is_the_fallback_and_blank_means_unset() -> None:
    assert Target.from_env(env={"OPENAI_API_KEY": "sk-1"}).api_key == "sk-1"
    assert Target.from_env(env={"NIM_API_KEY": "  ", "OPENAI_API_KEY": "sk-2"}).api_key == "sk-2"
    t = Target.from_env(env={"NIM_API_KEY": ""})
    assert t.api_key is None and "Authorization" not in t.headers()


def test_overrides_win_and_none_means_not_given() -> None:
    env = {"NIM_BASE_URL": "http://a:1", "NIM_GEN_MODEL": "m-env"}
    t = Target.from_env(env=env, base_url="https://b:2", model=None, api_key="k")
    assert (t.base_url, t.model, t.api_key) == ("https://b:2", "m-env", "k")


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NIM_BASE_URL", "http://127.0.0.1:8123")
    monkeypatch.delenv("NIM_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert Target.from_env().base_url == "http://127.0.0.1:8123"


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"base_url": "localhost:8000"}, "base_url"),
        ({"base_url": "ftp://x"}, "base_url"),
        ({"base_url": "http://x?q=1"}, "base_url"),
        ({"chat_path": "v1/chat"}, "chat_path"),
        ({"model": "  "}, "model"),
        ({"bogus": 1}, "overrides"),
    ],
)
def test_bad_settings_name_the_argument(kwargs: dict[str, object], names: str) -> None:
    with pytest.raises(ValueError, match=names):
        Target.from_env(env={}, **kwargs)


def test_the_key_never_shows() -> None:
    t = Target(api_key="sk-SECRET-42")
    assert "SECRET" not in repr(t) and "SECRET" not in str(t)
    assert "api_key=<set>" in repr(t)
    public = t.public_dict()
    assert public == {
        "base_url": DEFAULT_BASE_URL,
        "chat_path": DEFAULT_CHAT_PATH,
        "model": DEFAULT_MODEL,
        "api_key_set": True,
    }
    assert "SECRET" not in str(public)
    assert t.redact("failed with key sk-SECRET-42 in it") == "failed with key *** in it"
    assert pickle.loads(pickle.dumps(t)) == t


def test_url_and_with() -> None:
    t = Target(base_url="http://h:1")
    assert t.url("/v1/models") == "http://h:1/v1/models"
    assert t.with_(model="x", api_key=None).model == "x"
    with pytest.raises(ValueError, match="chat_path"):
        t.url("v1/models")
