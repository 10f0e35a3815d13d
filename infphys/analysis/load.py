"""Load runs against queueing theory and the roofline: the tables and fits labs 7–11 show.

Each function takes a run — a records DataFrame (``LoadResult.frame()``,
``SimResult.to_frame()``, :func:`infphys.records.load_run`), a :class:`~infphys.records.Run`
or a list of records — summarises it per level with :mod:`infphys.stats`, and sets each level
beside a model from :mod:`infphys.physics`: Little's Law (:func:`littles_law_by_level`), a
batch-limited closed loop (:func:`closed_loop_vs_little`), an M/M/c queue
(:func:`open_loop_vs_mmc`), SLO goodput (:func:`goodput_by_level`), and, over a token grid
(prompt size × ``max_tokens``), each cell's time split into TTFT and decode
(:func:`token_budget_split`), the roofline (:func:`token_budget_table`) and the fitted cost
of a prompt and an output token (:func:`token_costs`). Errors are
:func:`infphys.analysis.compare.error_pct`.

Worked example: 8 clients against a server that runs at most 4 requests at once, each for
0.5 s, complete 8 requests/s, so each waits W = 8 / 8 = 1.0 s
(:func:`infphys.physics.closed_loop`); a measured mean of 1.05 s is +5.0 %.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from infphys import stats
from infphys.analysis.compare import error_pct
from infphys.analysis.compare import sig as _sig
from infphys.physics import closed_loop, mmc, request_latency_s
from infphys.stats import RecordsLike as RunData

__all__ = [
    "TokenCosts",
    "closed_loop_vs_little",
    "errors_by_level",
    "goodput_by_level",
    "grid_summary",
    "littles_law_by_level",
    "load_column",
    "open_loop_vs_mmc",
    "service_time_s",
    "token_budget_split",
    "token_budget_table",
    "token_costs",
    "top_finished_level",
    "ttft_decode_by_level",
]

#: Utilisation from which an open-loop level is treated as saturated (no steady state).
_SATURATED = 0.995


def load_column(summary: pd.DataFrame, x: str | None = None) -> str:
    """The column a summary's levels vary: ``x`` when given (it must be a column), else
    ``concurrency`` (closed loop) or ``rate_per_s`` (open loop), preferring one that takes more
    than one value, else ``level``."""
    if x is not None:
        if x not in summary.columns:
            raise ValueError(f"x: the run has no column {x!r}")
        return x
    known = [c for c in ("concurrency", "rate_per_s") if c in summary.columns]
    full = [c for c in known if summary[c].notna().all()]
    varied = [c for c in full if summary[c].nunique() > 1]
    return (varied or full or ["level"])[0]


def errors_by_level(data: RunData, *, x: str | None = None) -> pd.DataFrame:
    """Failed requests per level and error class, as a % of the level's finished (ok + failed)
    requests, and its incomplete ones (cancelled at the run's end: not an error) as a % of its
    measured requests (:func:`infphys.stats.error_rates` per level).

    One row per level, sorted by its load (:func:`load_column`, or ``x``): that column, one
    column per error class seen in the run, sorted, and ``incomplete``. Worked example: a
    level with 40 ok, 8 timed out, 2 ``http_5xx`` and 2 incomplete has 50 finished: timeout
    16 %, http_5xx 4 %, incomplete 2 / 52 = 3.8 %.
    """
    f = stats.measured(stats.as_frame(data))
    if not len(f):
        return pd.DataFrame(columns=["level", "incomplete"])
    xc = load_column(stats.summarize(f), x)
    groups = list(f.groupby("level", sort=True)) if "level" in f.columns else [(0, f)]
    rows = []
    for level, g in groups:
        er = stats.error_rates(g)
        load = g[xc].dropna() if xc in g.columns else pd.Series([level])
        row: dict[str, Any] = {xc: load.iloc[0] if len(load) else level}
        row.update(
            {str(c): 100.0 * v for c, v in zip(er["error_class"], er["fraction"], strict=True)}
        )
        rows.append(row)
    out = pd.DataFrame(rows).sort_values(xc).reset_index(drop=True)
    classes = sorted(str(c) for c in out.columns if c not in {xc, "incomplete"})
    out[classes] = out[classes].fillna(0.0)
    out["incomplete"] = out["incomplete"].fillna(0.0) if "incomplete" in out else 0.0
    return out[[xc, *classes, "incomplete"]]


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of ``frame`` as plain dicts (typed for mypy, unlike ``itertuples``)."""
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict("records")]


def grid_summary(data: RunData, value: str | None = None) -> pd.DataFrame | None:
    """A token-grid run summarised per cell (:func:`infphys.stats.summarize`), sorted by prompt
    size then ``max_tokens``; ``None`` when the run is empty, not a token grid, or (with
    ``value``) its summary has no column ``value``."""
    f = stats.as_frame(data)
    if not len(f):
        return None
    s = stats.summarize(f)
    if not {"prompt_tokens_asked", "max_tokens", value or "max_tokens"} <= set(s.columns):
        return None
    return s.sort_values(["prompt_tokens_asked", "max_tokens"])


def littles_law_by_level(data: RunData) -> pd.DataFrame:
    """Little's Law at every level of a run: measured mean in flight L against λ·W.

    One row per level (:func:`infphys.stats.littles_law` on the level's measured records): the
    level's load (``concurrency`` or ``rate_per_s``), throughput λ (requests/s), mean latency W
    (ms), λ·W, the measured time-averaged L, and ``error_%`` = (L − λW) / λW × 100.

    Warm-up requests are left out of L, λ and W alike: the law holds for any population of
    requests, and a warm-up request that started before the window would count its whole
    latency in W but only its in-window part in L.
    """
    f = stats.as_frame(data)
    cols = [
        "level",
        "load",
        "throughput_req_per_s",
        "mean_latency_ms",
        "lambda_w",
        "measured_l",
        "error_%",
    ]
    if not len(f):
        return pd.DataFrame(columns=cols)
    groups = list(f.groupby("level", sort=True)) if "level" in f.columns else [(0, f)]
    s = stats.summarize(f)
    xc = load_column(s)
    rows = []
    for level, g in groups:
        law = stats.littles_law(stats.measured(g))
        load = g[xc].dropna().iloc[0] if xc in g.columns and g[xc].notna().any() else level
        pred, meas = law.predicted_in_flight, law.mean_in_flight
        rows.append(
            {
                "level": level,
                "load": load,
                "throughput_req_per_s": _sig(law.throughput_per_s),
                "mean_latency_ms": _sig(law.mean_latency_s * 1e3),
                "lambda_w": _sig(pred),
                "measured_l": _sig(meas),
                "error_%": error_pct(meas, pred) if pred > 0 else math.nan,
            }
        )
    out = pd.DataFrame(rows, columns=cols)
    return out.rename(columns={"load": xc})


def service_time_s(data: RunData, *, servers: int) -> float | None:
    """A batch-limited server's service time s, read off a closed-loop overload run.

    The mean e2e latency (successful requests) at the highest client level the batch still
    holds (concurrency <= ``servers``): there no request queues, so a request takes its bare
    service time. Levels whose every request failed have no latency and are passed over; with
    no level at or under ``servers`` measured, the lowest measured level stands in. None when
    no level has a single success (every request timed out): there is no s to read.

    Worked example: levels 1, 4, 16 with mean e2e 0.40, 0.50, 1.90 s and ``servers=8``: s =
    0.50 s (level 4, the last the batch of 8 holds), so capacity ≈ 8 / 0.5 = 16 requests/s.
    """
    if int(servers) < 1:
        raise ValueError(f"servers must be a whole number >= 1 (got {servers!r})")
    s = stats.summarize(stats.as_frame(data))
    if not len(s) or "concurrency" not in s.columns:
        return None
    s = s[np.isfinite(s["e2e_mean_s"].astype(float)) & (s["e2e_mean_s"] > 0)]
    s = s.sort_values("concurrency")
    if not len(s):
        return None
    held = s[s["concurrency"] <= servers]
    return float(held.iloc[-1]["e2e_mean_s"] if len(held) else s.iloc[0]["e2e_mean_s"])


def top_finished_level(data: RunData, *, by: str = "rate_per_s") -> pd.Series | None:
    """The summary row (:func:`infphys.stats.summarize`) of the highest level, by ``by``, at
    which some request finished: a level whose every request failed or was cut off has no
    latency percentiles. None when no level has one.

    Worked example: open-loop rates 2, 4 and 6 requests/s whose last level timed out entirely
    give the 4 requests/s row, its ``e2e_p95_s`` the tail to compare with a single user's.
    """
    s = stats.summarize(stats.as_frame(data))
    if not len(s) or by not in s.columns:
        return None
    s = s[s["e2e_p95_s"].notna()].sort_values(by)
    return None if s.empty else s.iloc[-1]


def closed_loop_vs_little(data: RunData, *, servers: int, service_s: float) -> pd.DataFrame:
    """Each closed-loop level's mean latency against Little's Law for a batch-limited server.

    A server that runs at most ``servers`` requests at once, each for ``service_s``, completes
    X = servers / service_s requests per second; c clients then wait W = c / X, and below the
    limit a request takes its bare service time: W = max(1, c / servers) × service_s
    (:func:`infphys.physics.closed_loop` with no think time). Per level: ``concurrency``, the
    predicted and measured mean (successful requests, ms), ``error_%``, and the level's
    ``error_rate`` (timed-out requests have no latency to average, so under timeouts the
    measured mean is that of the survivors).
    """
    c_max = int(servers)
    if c_max < 1:
        raise ValueError(f"servers must be a whole number >= 1 (got {servers!r})")
    if not service_s > 0:
        raise ValueError(f"service_s must be > 0 (got {service_s!r})")
    s = stats.summarize(stats.as_frame(data))
    cols = ["concurrency", "predicted_mean_ms", "measured_mean_ms", "error_%", "error_rate"]
    if not len(s) or "concurrency" not in s.columns:
        return pd.DataFrame(columns=cols)
    rows = []
    for r in _records(s.sort_values("concurrency")):
        c = float(r["concurrency"])
        pred = closed_loop(int(c), 1.0 / service_s, c_max).mean_response_s
        meas = float(r["e2e_mean_s"])
        rows.append(
            {
                "concurrency": int(c),
                "predicted_mean_ms": _sig(pred * 1e3),
                "measured_mean_ms": _sig(meas * 1e3),
                "error_%": error_pct(meas, pred),
                "error_rate": round(float(r["error_rate"]), 3),
            }
        )
    return pd.DataFrame(rows, columns=cols)


def open_loop_vs_mmc(data: RunData, *, servers: int, capacity_req_per_s: float) -> pd.DataFrame:
    """Each open-loop rate of a run against an M/M/c queue with the same capacity.

    The server is modelled as ``servers`` parallel slots (the concurrency where the closed
    loop's throughput levelled off), each serving at μ = ``capacity_req_per_s`` / ``servers``
    (Little's Law at the knee: μ = 1 / W there). Per level: the arrival rate λ, the utilisation
    ρ = λ / capacity, the M/M/c mean time in system (:func:`infphys.physics.mmc`; NaN from
    ρ = 0.995 up, where the queue has no steady state within any run's reach), the measured
    mean end-to-end latency, and
    ``error_%`` = (measured − M/M/c) / M/M/c × 100.

    M/M/c assumes exponential service times; a batching server's are nearly constant, so
    measured waits come out shorter (about half as long in heavy traffic, per Kingman's
    (cₐ² + cₛ²) / 2 factor with cₛ ≈ 0).
    """
    c = int(servers)
    if c < 1:
        raise ValueError(f"servers must be a whole number >= 1 (got {servers!r})")
    if not capacity_req_per_s > 0:
        raise ValueError(f"capacity_req_per_s must be > 0 (got {capacity_req_per_s!r})")
    mu = capacity_req_per_s / c
    s = stats.summarize(stats.as_frame(data))
    cols = [
        "rate_per_s",
        "utilisation",
        "mmc_mean_ms",
        "measured_mean_ms",
        "error_%",
        "measured_p95_ms",
    ]
    if not len(s) or "rate_per_s" not in s.columns:
        return pd.DataFrame(columns=cols)
    rows = []
    for r in _records(s.sort_values("rate_per_s")):
        lam = float(r["rate_per_s"])
        rho = lam / capacity_req_per_s
        # At ρ ≥ 99.5 % the steady state is hours away from any real run: say "unbounded".
        theory = mmc(lam, mu, c).mean_response_s if rho < _SATURATED else math.nan
        meas = float(r["e2e_mean_s"])
        rows.append(
            {
                "rate_per_s": _sig(lam),
                "utilisation": round(rho, 3),
                "mmc_mean_ms": _sig(theory * 1e3),
                "measured_mean_ms": _sig(meas * 1e3),
                "error_%": error_pct(meas, theory),
                "measured_p95_ms": _sig(float(r["e2e_p95_s"]) * 1e3),
            }
        )
    return pd.DataFrame(rows, columns=cols)


def token_budget_table(data: RunData, *, roofline: Any | None = None) -> pd.DataFrame:
    """Per token-grid cell: measured p50 TTFT, TPOT and end to end, and (with ``roofline``) the
    roofline's prediction of each with its error.

    Columns: ``prompt_tokens``, ``max_tokens``, ``ttft_ms``, ``tpot_ms`` and ``e2e_ms`` (p50s
    of the successful requests). With ``roofline`` (an :class:`infphys.physics.RooflineModel`,
    e.g. a simulated engine's ``config.roofline``) for one request alone: ``roofline_ttft_ms``
    (the prompt prefilled in one step), ``roofline_tpot_ms`` (one decode step at batch 1 with
    the prompt and half the answer cached), ``roofline_e2e_ms`` = TTFT + (max_tokens − 1) ×
    TPOT, and ``ttft_error_%``, ``tpot_error_%``, ``e2e_error_%`` = (measured − roofline) /
    roofline × 100.

    What the roofline leaves out shows in the TTFT error: a request that arrives during a step
    waits for it to end (half a decode step on average), and the server's chat template adds a
    few prompt tokens. Both matter only for short prompts.
    """
    cols = ["prompt_tokens", "max_tokens", "ttft_ms", "tpot_ms", "e2e_ms"]
    theory_cols = [
        "roofline_ttft_ms",
        "ttft_error_%",
        "roofline_tpot_ms",
        "tpot_error_%",
        "roofline_e2e_ms",
        "e2e_error_%",
    ]
    s = grid_summary(data)
    if s is None:
        return pd.DataFrame(columns=cols + (theory_cols if roofline is not None else []))

    rows = []
    for r in _records(s):
        p, m = int(r["prompt_tokens_asked"]), int(r["max_tokens"])
        ttft, tpot, e2e = float(r["ttft_p50_s"]), float(r["tpot_p50_s"]), float(r["e2e_p50_s"])
        row: dict[str, Any] = {
            "prompt_tokens": p,
            "max_tokens": m,
            "ttft_ms": _sig(ttft * 1e3),
            "tpot_ms": _sig(tpot * 1e3),
            "e2e_ms": _sig(e2e * 1e3),
        }
        if roofline is not None:
            th_ttft = float(roofline.step_for([p], [0]).total_s)
            th_tpot = float(roofline.step_for([1], [p + m // 2]).total_s)
            th_e2e = request_latency_s(th_ttft, th_tpot, m)
            row.update(
                {
                    "roofline_ttft_ms": _sig(th_ttft * 1e3),
                    "ttft_error_%": error_pct(ttft, th_ttft),
                    "roofline_tpot_ms": _sig(th_tpot * 1e3),
                    "tpot_error_%": error_pct(tpot, th_tpot),
                    "roofline_e2e_ms": _sig(th_e2e * 1e3),
                    "e2e_error_%": error_pct(e2e, th_e2e),
                }
            )
        rows.append(row)
    return pd.DataFrame(rows, columns=cols + (theory_cols if roofline is not None else []))


def token_budget_split(data: RunData) -> pd.DataFrame:
    """Where a token-grid cell's time goes: median TTFT and median decode time, seconds.

    One row per (prompt size, ``max_tokens``) cell, sorted by both, over the cell's successful
    measured requests: ``prompt_tokens``, ``max_tokens``, ``requests``, ``ttft_p50_s`` and
    ``decode_p50_s``, the median of each request's own decode time e2e − TTFT. Per request
    that is exactly (N − 1) × TPOT with the N tokens it streamed (TPOT is defined as
    (e2e − TTFT) / (N − 1)), so it stays right when an answer stops before ``max_tokens`` and
    for one-token answers (0 s). Neither shortcut does: (``max_tokens`` − 1) × median TPOT
    counts tokens that were never sent, and median e2e − median TTFT is a difference of two
    medians, the decode time of no request. The cell's end to end is about
    ``ttft_p50_s + decode_p50_s`` (equal when the requests are alike).

    Worked example: a request with TTFT 50 ms and e2e 1,320 ms that streamed 128 tokens decoded
    for 1,270 ms = 127 × 10 ms TPOT; if it stopped at 64 tokens of ``max_tokens`` = 128 with
    e2e 680 ms, its decode time is 630 ms (63 × 10 ms), not 127 × 10 ms.
    """
    cols = ["prompt_tokens", "max_tokens", "requests", "ttft_p50_s", "decode_p50_s"]
    f = stats.measured(stats.as_frame(data))
    if not len(f) or "prompt_tokens_asked" not in f.columns or "max_tokens" not in f.columns:
        return pd.DataFrame(columns=cols)
    ok = stats.successful(f)
    rows = []
    for key, g in ok.groupby(["prompt_tokens_asked", "max_tokens"], sort=True):
        p, m = (int(v) for v in np.asarray(key, dtype=float))
        rows.append({"prompt_tokens": p, "max_tokens": m, **_ttft_decode(g)})
    return pd.DataFrame(rows, columns=cols)


def ttft_decode_by_level(data: RunData, *, x: str | None = None) -> pd.DataFrame:
    """Each level's median TTFT and median decode time, seconds, as :func:`token_budget_split`
    computes them for a grid cell (decode: the median of each request's e2e − TTFT).

    One row per level with a successful request, sorted by its load (:func:`load_column`, or
    ``x``): that column, ``requests``, ``ttft_p50_s``, ``decode_p50_s``. Worked example: at
    concurrency 4, requests with (TTFT, e2e) of (0.10, 0.50), (0.12, 0.60) and (0.30, 0.62) s
    give a median TTFT of 0.12 s and a median decode of median(0.40, 0.48, 0.32) = 0.40 s.
    """
    f = stats.measured(stats.as_frame(data))
    ok = stats.successful(f)
    if not len(ok):
        return pd.DataFrame(columns=["level", "requests", "ttft_p50_s", "decode_p50_s"])
    s = stats.summarize(stats.as_frame(data))
    xc = load_column(s, x)
    rows = []
    for r in _records(s.sort_values(xc)):
        g = ok[ok["level"] == r["level"]] if "level" in ok.columns else ok
        if len(g):
            rows.append({xc: r.get(xc, r["level"]), **_ttft_decode(g)})
    return pd.DataFrame(rows)


def _ttft_decode(ok: pd.DataFrame) -> dict[str, Any]:
    """The successful requests ``ok``: how many, their median TTFT and median e2e − TTFT (s)."""
    ttft = pd.to_numeric(ok["ttft_s"], errors="coerce")
    decode = pd.to_numeric(ok["e2e_s"], errors="coerce") - ttft
    return {
        "requests": len(ok),
        "ttft_p50_s": float(ttft.median()),
        "decode_p50_s": float(decode.median()),
    }


@dataclass(frozen=True, slots=True)
class TokenCosts:
    """What a prompt token and an output token cost, fitted over a token grid (ms).

    Attributes:
        prefill_ms_per_1k_tokens: slope of p50 TTFT against prompt size, per 1,000 tokens.
        ttft_floor_ms: its intercept (the TTFT of an empty prompt: step overhead, queueing for
            the next step, the chat template).
        decode_ms_per_token: slope of the median decode time (e2e − TTFT) against
            max_tokens − 1.
        output_vs_prompt_token: how many prompt tokens cost as much latency as one output token.
    """

    prefill_ms_per_1k_tokens: float
    ttft_floor_ms: float
    decode_ms_per_token: float
    output_vs_prompt_token: float


def token_costs(data: RunData) -> TokenCosts:
    """Least-squares lines through a token grid's cells (:func:`token_budget_split`): median
    TTFT = floor + prefill × prompt tokens, and median decode time = decode × (max_tokens − 1)
    through the origin. Needs at least two prompt sizes and one max_tokens above 1."""
    s = token_budget_split(data)
    if not len(s):
        raise ValueError("data: not a token-grid run (no prompt size and max_tokens columns)")
    p = s["prompt_tokens"].to_numpy(dtype=float)
    ttft = s["ttft_p50_s"].to_numpy(dtype=float) * 1e3
    if np.unique(p).size < 2:
        raise ValueError("data: a token grid needs at least two prompt sizes to fit prefill")
    slope, floor = np.polyfit(p, ttft, 1)
    n = s["max_tokens"].to_numpy(dtype=float) - 1.0
    decode = s["decode_p50_s"].to_numpy(dtype=float) * 1e3
    if not np.any(n > 0):
        raise ValueError("data: a token grid needs a max_tokens above 1 to fit decode")
    per_token = float(np.dot(n, decode) / np.dot(n, n))
    per_prompt_token = slope
    ratio = per_token / per_prompt_token if per_prompt_token > 0 else math.inf
    return TokenCosts(
        prefill_ms_per_1k_tokens=float(slope * 1000.0),
        ttft_floor_ms=float(floor),
        decode_ms_per_token=per_token,
        output_vs_prompt_token=float(ratio),
    )


def goodput_by_level(
    data: RunData, *, ttft_slo_s: float | None = None, tpot_slo_s: float | None = None
) -> pd.DataFrame:
    """Goodput next to throughput at every level of a run (:func:`infphys.stats.goodput`).

    Columns: the level's load (``concurrency`` or ``rate_per_s``), ``judged`` (finished
    requests), ``met`` (succeeded within both SLOs), ``attainment``, ``window_s``,
    ``goodput_per_s`` and ``throughput_req_per_s`` (every success, however late), and
    ``error_rate``.
    """
    f = stats.as_frame(data)
    cols = [
        "level",
        "judged",
        "met",
        "attainment",
        "window_s",
        "goodput_per_s",
        "throughput_req_per_s",
        "error_rate",
    ]
    if not len(f):
        return pd.DataFrame(columns=cols)
    s = stats.summarize(f)
    xc = load_column(s)
    rows = []
    for r in _records(s):
        g = f[f["level"] == r["level"]] if "level" in f.columns else f
        gp = stats.goodput(g, ttft_slo_s=ttft_slo_s, tpot_slo_s=tpot_slo_s)
        start, end = stats.measured_window(g)
        rows.append(
            {
                "level": r["level"],
                xc: r.get(xc, r["level"]),
                "judged": gp.judged,
                "met": gp.met,
                "attainment": round(gp.attainment, 3),
                "window_s": _sig(end - start),
                "goodput_per_s": _sig(gp.goodput_per_s),
                "throughput_req_per_s": _sig(float(r["throughput_req_per_s"])),
                "error_rate": round(float(r["error_rate"]), 3),
            }
        )
    out = pd.DataFrame(rows)
    return out[["level", *([xc] if xc != "level" else []), *cols[1:]]]
