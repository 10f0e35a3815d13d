"""Preflight: is there a server, is it ready, does it serve the model, can it stream an answer?

Three steps, stopping at the first that settles the verdict:

1. ``GET /v1/models`` — does anything answer, is the key accepted, is the model listed?
   (A 404 is fine: not every server lists models.)
2. ``GET /v1/health/ready`` — NIM's readiness probe; a 503 means "up, still loading". Servers
   without it (404) skip the step.
3. One tiny streamed chat request (``max_tokens=4``) through the measuring client, so the
   verdict covers streaming, ``stream_options`` and the chat path.

The verdict carries every step tried and one actionable message: what was tried, what came
back, what to do. For example, with nothing on port 8000::

    not ok: nothing answers at http://localhost:8000 (connection refused on GET /v1/models).
    Start the server, point NIM_BASE_URL (or --base-url) at one that runs, or use the
    embedded simulator.

``await preflight(target)`` in async code and notebook cells; :func:`preflight_sync` elsewhere.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from infphys._check import positive
from infphys.measure._sync import run_sync
from infphys.measure.client import ChatClient, Timeouts, classify_exception
from infphys.measure.target import Target

__all__ = ["PreflightStep", "PreflightVerdict", "preflight", "preflight_sync"]

_PROMPT = "Say hello in three words."


@dataclass(frozen=True, slots=True)
class PreflightStep:
    """One probe: what was asked, what came back."""

    name: str
    url: str
    ok: bool
    status: int | None
    detail: str
    elapsed_s: float
    skipped: bool = False


@dataclass(frozen=True, slots=True)
class PreflightVerdict:
    """The outcome: ``ok``, the steps tried, one actionable ``message``.

    ``problem`` names what went wrong (``unreachable``, ``dns``, ``timeout``, ``auth``,
    ``model``, ``path``, ``not_ready``, ``bad_request``, ``server_error``, ``protocol``) or is
    None when ``ok``. ``models`` lists what ``/v1/models`` reported (may be empty).
    """

    ok: bool
    target: dict[str, Any]
    steps: tuple[PreflightStep, ...]
    message: str
    problem: str | None = None
    models: tuple[str, ...] = ()

    def __str__(self) -> str:
        return ("ok: " if self.ok else "not ok: ") + self.message


_WHAT_TO_DO_UNREACHABLE = (
    "Start the server, point NIM_BASE_URL (or --base-url) at one that runs, "
    "or use the embedded simulator."
)


def _connect_problem(exc: BaseException, base_url: str, what: str) -> tuple[str, str]:
    cls = classify_exception(exc)
    if cls == "dns":
        return "dns", (
            f"the host of {base_url} is not found (DNS lookup failed on {what}). "
            "Check the spelling of NIM_BASE_URL (or --base-url)."
        )
    if cls in ("connect_timeout", "read_timeout"):
        return "timeout", (
            f"{base_url} did not answer in time ({cls.replace('_', ' ')} on {what}). "
            "Check that the host and port are right and reachable (firewall, VPN), "
            "or that the server is not overloaded."
        )
    if cls == "connect_refused":
        return "unreachable", (
            f"nothing answers at {base_url} (connection refused on {what}). "
            + _WHAT_TO_DO_UNREACHABLE
        )
    return "unreachable", f"{what} failed: {type(exc).__name__}: {exc}. " + _WHAT_TO_DO_UNREACHABLE


def _auth_message(target: Target, status: int, what: str) -> str:
    have = "a key is set" if target.api_key else "no key is set"
    return (
        f"the server refused the request (HTTP {status} on {what}; {have}). "
        "Set NIM_API_KEY or OPENAI_API_KEY (or --api-key) to a valid key."
    )


async def preflight(target: Target, *, timeout_s: float = 30.0) -> PreflightVerdict:
    """Probe ``target`` and return a :class:`PreflightVerdict` (never raises for a bad server).

    Args:
        target: the server.
        timeout_s: limit of each step (the chat step includes the model's first answer).
    """
    limit = positive("timeout_s", timeout_s)
    steps: list[PreflightStep] = []
    public = target.public_dict()
    models: tuple[str, ...] = ()

    def verdict(ok: bool, message: str, problem: str | None = None) -> PreflightVerdict:
        return PreflightVerdict(ok, public, tuple(steps), target.redact(message), problem, models)

    auth = {k: v for k, v in target.headers().items() if k == "Authorization"}
    timeout = aiohttp.ClientTimeout(total=limit, sock_connect=min(limit, 10.0))
    async with aiohttp.ClientSession(timeout=timeout) as session:
        # 1. models
        url = target.url("/v1/models")
        t = time.perf_counter()
        try:
            async with session.get(url, headers=auth) as resp:
                status = resp.status
                body = await resp.read()
        except Exception as exc:
            steps.append(
                PreflightStep(
                    "models",
                    url,
                    False,
                    None,
                    f"{type(exc).__name__}: {exc}",
                    time.perf_counter() - t,
                )
            )
            problem, message = _connect_problem(exc, target.base_url, "GET /v1/models")
            return verdict(False, message, problem)
        elapsed = time.perf_counter() - t
        if status in (401, 403):
            steps.append(PreflightStep("models", url, False, status, "refused", elapsed))
            return verdict(False, _auth_message(target, status, "GET /v1/models"), "auth")
        if status == 200:
            try:
                data = json.loads(body)
                models = tuple(
                    str(m["id"]) for m in data.get("data", []) if isinstance(m, dict) and "id" in m
                )
            except (ValueError, AttributeError, TypeError):
                models = ()
            steps.append(
                PreflightStep("models", url, True, status, f"serves {list(models)}", elapsed)
            )
            if models and target.model not in models:
                return verdict(
                    False,
                    f"model {target.model!r} is not served at {target.base_url}; it serves "
                    f"{', '.join(models)}. Set NIM_GEN_MODEL (or --model) to one of them.",
                    "model",
                )
        else:
            steps.append(
                PreflightStep(
                    "models",
                    url,
                    status == 404,
                    status,
                    "no model list here" if status == 404 else f"HTTP {status}",
                    elapsed,
                    skipped=status == 404,
                )
            )

        # 2. readiness
        url = target.url("/v1/health/ready")
        t = time.perf_counter()
        try:
            async with session.get(url, headers=auth) as resp:
                status = resp.status
                await resp.read()
            elapsed = time.perf_counter() - t
            if status == 200:
                steps.append(PreflightStep("ready", url, True, status, "ready", elapsed))
            elif status == 503:
                steps.append(PreflightStep("ready", url, False, status, "not ready", elapsed))
                return verdict(
                    False,
                    f"{target.base_url} is up but not ready (HTTP 503 on GET /v1/health/ready): "
                    "the model is probably still loading. Wait a minute and run preflight again.",
                    "not_ready",
                )
            else:
                steps.append(
                    PreflightStep(
                        "ready", url, True, status, "no readiness endpoint", elapsed, skipped=True
                    )
                )
        except Exception as exc:
            steps.append(
                PreflightStep(
                    "ready",
                    url,
                    False,
                    None,
                    f"{type(exc).__name__}: {exc}",
                    time.perf_counter() - t,
                )
            )

    # 3. one tiny streamed chat request, through the measuring client
    timeouts = Timeouts(connect_s=min(limit, 10.0), read_s=limit, total_s=limit)
    async with ChatClient(target, timeouts=timeouts) as client:
        rec = await client.chat(_PROMPT, max_tokens=4)
    what = f"POST {target.chat_path}"
    detail = "answered" if rec.ok else f"{rec.error_class}: {rec.error_message}"
    steps.append(
        PreflightStep("chat", target.chat_url, rec.ok, rec.http_status, detail, rec.e2e_s or 0.0)
    )
    if rec.ok:
        usage = (
            "token counts from usage"
            if rec.token_count_source == "usage"
            else "no usage in the stream, token counts will be estimates"
        )
        ttft = f"{rec.ttft_s * 1e3:.0f} ms" if rec.ttft_s is not None else "n/a"
        return verdict(
            True,
            f"{target.model} at {target.base_url} streamed {rec.completion_tokens} tokens in "
            f"{(rec.e2e_s or 0) * 1e3:.0f} ms (TTFT {ttft}; {usage}).",
        )
    cls, msg, code = rec.error_class or "client_error", rec.error_message or "", rec.http_status
    if cls in ("connect_refused", "dns", "connect_timeout"):
        problem = {"connect_refused": "unreachable", "dns": "dns"}.get(cls, "timeout")
        return verdict(
            False,
            f"{what} failed ({cls.replace('_', ' ')}: {msg}). " + _WHAT_TO_DO_UNREACHABLE,
            problem,
        )
    if code in (401, 403):
        return verdict(False, _auth_message(target, code, what), "auth")
    if code == 404:
        if "model" in msg.lower():
            return verdict(
                False,
                f"{what} says the model {target.model!r} does not exist ({msg}). "
                "Set NIM_GEN_MODEL (or --model) to a model the server serves "
                "(see GET /v1/models).",
                "model",
            )
        hint = " NIM_BASE_URL should not end in /v1." if target.base_url.endswith("/v1") else ""
        return verdict(
            False,
            f"HTTP 404 on {what}: no chat API at {target.chat_url}. Check NIM_CHAT_PATH "
            f"(or --chat-path).{hint}",
            "path",
        )
    if code is not None and 400 <= code < 500 and code != 429:
        hint = (
            " The server rejects stream_options: turn off include_usage (--no-usage)."
            if "stream_options" in msg
            else ""
        )
        return verdict(False, f"{what} was rejected ({msg}).{hint}", "bad_request")
    if cls in ("read_timeout", "total_timeout"):
        return verdict(
            False,
            f"{what} got no complete answer within {limit:g} s ({cls.replace('_', ' ')}). "
            "The server may be overloaded or still warming up; retry, or raise --timeout.",
            "timeout",
        )
    if cls in ("http_5xx", "http_429"):
        return verdict(
            False,
            f"{what} failed on the server ({msg}). Check the server's log; retry later.",
            "server_error",
        )
    return verdict(
        False,
        f"{what} answered, but not as an OpenAI-compatible stream ({cls}: {msg}). "
        "Check that the server speaks /v1/chat/completions with stream=true.",
        "protocol",
    )


def preflight_sync(target: Target, *, timeout_s: float = 30.0) -> PreflightVerdict:
    """:func:`preflight` for synchronous code (works inside a running event loop too)."""
    return run_sync(preflight(target, timeout_s=timeout_s))
