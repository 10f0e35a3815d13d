"""Statistics over request records, measured or simulated: latency, throughput, errors, goodput.

Pure functions over a DataFrame from :func:`infphys.records.records_to_frame` (or anything
:func:`as_frame` accepts: a list of records, a :class:`~infphys.records.Run`). No I/O, no clock.
This module sits below ``measure`` and ``sim`` so both can use it; it imports neither.

Conventions:

- Warm-up requests (``warmup=True``) are dropped before anything is computed.
- Percentiles use ``numpy.percentile(..., method="linear")`` (Hyndman & Fan type 7, numpy's
  default): p95 of ``[1, 2, …, 20]`` is 19.05.
- Latency percentiles are over successful requests (``status == "ok"``) only.
- The measured window of a run (or of one level of a sweep) runs from the first measured send
  to the last measured end. Throughput = successful requests (or their output tokens) / window;
  failed and incomplete requests never count as throughput.
- Error rate = failed / (ok + failed), by error class. Incomplete requests (cancelled at the end
  of a bounded run) are counted apart and belong to neither.

Worked example: 10 requests in a window of 2.0 s, 9 ok with 100 output tokens each and one
``http_5xx``: throughput 4.5 requests/s and 450 output tokens/s, error rate 10 %.

Goodput: with service-level objectives on TTFT and TPOT, a request *attains* the SLO if it
succeeded and both its TTFT and its TPOT are within them (a request with one output token has no
TPOT and is judged on TTFT alone). :func:`goodput` gives the attainment (met / (ok + failed)) and
the rate of SLO-meeting requests per second of window (vLLM's ``--goodput``). DistServe (Zhong et
al., OSDI 2024) defines goodput as the highest request rate whose attainment is at least a goal
(90 %); :func:`distserve_goodput` reads it off a rate sweep.

Little's Law (L = λ·W) holds for any stable system; :func:`littles_law` compares the
time-averaged number in flight with throughput × mean latency over the steady-state window, as a
check that the load was steady and the clocks consistent.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from infphys.physics.queueing import find_knee, find_latency_cliff
from infphys.records import RequestRecord, Run, records_to_frame

__all__ = [
    "PERCENTILE_METHOD",
    "Goodput",
    "InFlight",
    "Knee",
    "LatencySummary",
    "LittlesLaw",
    "Throughput",
    "as_frame",
    "describe_latency",
    "distserve_goodput",
    "error_rates",
    "goodput",
    "in_flight",
    "itl_values",
    "littles_law",
    "measured",
    "measured_window",
    "percentiles",
    "successful",
    "summarize",
    "sweep_knee",
    "throughput",
]

#: The numpy percentile method used everywhere (type 7, linear interpolation between ranks).
PERCENTILE_METHOD: Literal["linear"] = "linear"

#: Columns of a level that describe what the load asked for, in order of preference as x-axis.
LEVEL_COLUMNS: tuple[str, ...] = (
    "concurrency",
    "rate_per_s",
    "prompt_tokens_asked",
    "max_tokens",
    "timeout_s",
)

RecordsLike = pd.DataFrame | Run | Iterable[RequestRecord]


def as_frame(data: RecordsLike) -> pd.DataFrame:
    """A records DataFrame from a DataFrame (returned as is), a Run or records."""
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, Run):
        return data.to_frame()
    return records_to_frame(list(data))


def measured(data: RecordsLike) -> pd.DataFrame:
    """The rows that count: everything but warm-up requests."""
    f = as_frame(data)
    if "warmup" in f.columns and len(f):
        return f[~f["warmup"].astype(bool)]
    return f


def successful(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``frame`` whose ``status`` is ``ok`` (an empty frame, columns or not, as is).

    Warm-up rows stay if ``frame`` has them: ``successful(measured(data))`` for the requests
    that count. Example: statuses ok, error, ok, timeout give the first and third rows.

    >>> successful(pd.DataFrame({"status": ["ok", "error", "ok", "timeout"]})).index.tolist()
    [0, 2]
    """
    return frame[frame["status"] == "ok"] if len(frame) else frame


def percentiles(values: Iterable[float], qs: Sequence[float] = (50, 95, 99)) -> dict[str, float]:
    """``{"p50": …, "p95": …, "p99": …}`` of the finite values (NaN when there are none)."""
    a = np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=float)
    a = a[np.isfinite(a)]
    out: dict[str, float] = {}
    for q in qs:
        if not 0 <= q <= 100:
            raise ValueError(f"qs must be percentiles in [0, 100] (got {q!r})")
        key = f"p{q:g}"
        out[key] = float(np.percentile(a, q, method=PERCENTILE_METHOD)) if a.size else float("nan")
    return out


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Count, mean, min, max and p50/p95/p99 of one latency, seconds."""

    count: int
    mean_s: float
    min_s: float
    max_s: float
    p50_s: float
    p95_s: float
    p99_s: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def describe_latency(values: Iterable[float]) -> LatencySummary:
    """Summary of the finite values (NaN fields when there are none).

    >>> describe_latency([0.1, 0.2, 0.3, 0.4]).p50_s
    0.25
    """
    a = np.asarray(list(values), dtype=float)
    a = a[np.isfinite(a)]
    if not a.size:
        nan = float("nan")
        return LatencySummary(0, nan, nan, nan, nan, nan, nan)
    p = percentiles(a)
    return LatencySummary(
        count=int(a.size),
        mean_s=float(a.mean()),
        min_s=float(a.min()),
        max_s=float(a.max()),
        p50_s=p["p50"],
        p95_s=p["p95"],
        p99_s=p["p99"],
    )


def itl_values(data: RecordsLike) -> np.ndarray:
    """Every gap between successive content chunks of the successful measured requests, s."""
    f = successful(measured(data))
    if not len(f) or "chunk_times_s" not in f.columns:
        return np.zeros(0)
    gaps = [np.diff(np.asarray(t, dtype=float)) for t in f["chunk_times_s"] if len(t) >= 2]
    return np.concatenate(gaps) if gaps else np.zeros(0)


def measured_window(data: RecordsLike) -> tuple[float, float]:
    """(start, end) of the measured window: first measured send, last measured end, seconds."""
    f = measured(data)
    if not len(f):
        return (float("nan"), float("nan"))
    start = float(f["sent_s"].min())
    ends = f["end_s"].dropna()
    end = float(ends.max()) if len(ends) else start
    return (start, end)


@dataclass(frozen=True, slots=True)
class Throughput:
    """Successful requests and output tokens per second over the measured window."""

    window_s: float
    ok: int
    failed: int
    incomplete: int
    requests_per_s: float
    output_tokens_per_s: float


def _tokens(value: object) -> float:
    """A completion-token count as a number; missing or not a number counts 0."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return 0.0
    v = float(value)
    return v if math.isfinite(v) else 0.0


def throughput(data: RecordsLike) -> Throughput:
    """Throughput over the measured window (failed and incomplete requests never count).

    The window runs from the first measured send to the last measured end (warm-up left out;
    failed requests bound it too). Output tokens are the successful requests'
    ``completion_tokens`` (server ``usage`` when present; see ``token_count_source``). Records
    (a list of :class:`~infphys.records.RequestRecord`) are read directly, without building a
    frame; a DataFrame or a Run is read by column. Both give the same figures.

    >>> from infphys.records import RequestRecord
    >>> recs = [RequestRecord(request_id=i, sent_s=0.0, end_s=2.0, status="ok",
    ...                       completion_tokens=100) for i in range(9)]
    >>> recs.append(RequestRecord(request_id=9, sent_s=0.0, end_s=1.0, status="failed"))
    >>> tp = throughput(recs)
    >>> tp.requests_per_s, tp.output_tokens_per_s, tp.failed
    (4.5, 450.0, 1)
    """
    if isinstance(data, pd.DataFrame | Run):
        f = measured(data)
        sent = f["sent_s"].tolist() if len(f) else []
        ends = f["end_s"].tolist() if len(f) else []
        status = f["status"].tolist() if len(f) else []
        tokens = f["completion_tokens"].tolist() if len(f) else []
    else:
        recs = [r for r in data if not r.warmup]
        sent = [r.sent_s for r in recs]
        ends = [r.end_s for r in recs]
        status = [r.status for r in recs]
        tokens = [r.completion_tokens for r in recs]
    nan = float("nan")
    finished = [float(e) for e in ends if e is not None and math.isfinite(float(e))]
    if sent:
        start = float(min(sent))
        window = (max(finished) if finished else start) - start
    else:
        window = nan
    n_ok = status.count("ok")
    n_failed = status.count("failed")
    n_incomplete = status.count("incomplete")
    ok_tokens = 0.0
    for t, st in zip(tokens, status, strict=True):
        if st == "ok":
            ok_tokens += t if type(t) is int else _tokens(t)
    if window > 0:
        rps, tps = n_ok / window, ok_tokens / window
    else:
        rps = tps = nan
    return Throughput(window, n_ok, n_failed, n_incomplete, rps, tps)


def error_rates(data: RecordsLike) -> pd.DataFrame:
    """One row per error class: ``count`` and ``fraction`` of finished (ok + failed) requests.

    An ``incomplete`` row, when there are any, gives its fraction of all measured requests.
    """
    f = measured(data)
    finished = int(f["status"].isin(["ok", "failed"]).sum()) if len(f) else 0
    failed = f[f["status"] == "failed"] if len(f) else f
    rows: list[dict[str, Any]] = []
    if len(failed):
        counts = failed["error_class"].fillna("client_error").value_counts()
        for cls, n in counts.items():
            rows.append({"error_class": cls, "count": int(n), "fraction": n / finished})
    n_inc = int((f["status"] == "incomplete").sum()) if len(f) else 0
    if n_inc:
        rows.append({"error_class": "incomplete", "count": n_inc, "fraction": n_inc / len(f)})
    return pd.DataFrame(rows, columns=["error_class", "count", "fraction"])


@dataclass(frozen=True, slots=True)
class Goodput:
    """SLO attainment and the rate of SLO-meeting requests."""

    ttft_slo_s: float | None
    tpot_slo_s: float | None
    met: int
    judged: int
    attainment: float
    goodput_per_s: float


def _slo_met(f: pd.DataFrame, ttft_slo_s: float | None, tpot_slo_s: float | None) -> pd.Series:
    ok = f["status"] == "ok"
    met = ok.copy()
    if ttft_slo_s is not None:
        met &= f["ttft_s"] <= ttft_slo_s
    if tpot_slo_s is not None:
        tpot = f["tpot_s"]
        met &= tpot.isna() | (tpot <= tpot_slo_s)
    return met


def goodput(
    data: RecordsLike, *, ttft_slo_s: float | None = None, tpot_slo_s: float | None = None
) -> Goodput:
    """SLO attainment and goodput (SLO-meeting requests per second of the measured window).

    Example: 4 finished requests over 2 s, TTFTs 0.1, 0.2, 0.6, 0.1 s and TPOTs 20, 20, 20,
    80 ms under SLOs of 0.5 s and 50 ms: requests 1 and 2 meet both, so attainment is 0.5 and
    goodput 1.0 request/s.
    """
    for name, v in (("ttft_slo_s", ttft_slo_s), ("tpot_slo_s", tpot_slo_s)):
        if v is not None and not (isinstance(v, int | float) and v > 0):
            raise ValueError(f"{name} must be a number > 0 or None (got {v!r})")
    f = measured(data)
    judged_f = f[f["status"].isin(["ok", "failed"])] if len(f) else f
    judged = len(judged_f)
    met = int(_slo_met(judged_f, ttft_slo_s, tpot_slo_s).sum()) if judged else 0
    start, end = measured_window(f)
    window = end - start
    return Goodput(
        ttft_slo_s=ttft_slo_s,
        tpot_slo_s=tpot_slo_s,
        met=met,
        judged=judged,
        attainment=met / judged if judged else float("nan"),
        goodput_per_s=met / window if window > 0 else float("nan"),
    )


def distserve_goodput(
    data: RecordsLike,
    *,
    by: str = "rate_per_s",
    ttft_slo_s: float | None = None,
    tpot_slo_s: float | None = None,
    attainment_goal: float = 0.9,
) -> float | None:
    """DistServe's goodput: the highest level of ``by`` whose SLO attainment ≥ the goal.

    ``by`` is the sweep's load column (``rate_per_s`` for an open-loop sweep as in the paper;
    ``concurrency`` works too). None when no level reaches the goal.
    """
    if not 0 < attainment_goal <= 1:
        raise ValueError(f"attainment_goal must be in (0, 1] (got {attainment_goal!r})")
    f = measured(data)
    if by not in f.columns:
        raise ValueError(f"by: the records have no column {by!r}")
    best: float | None = None
    for level, group in f.groupby(by):
        g = goodput(group, ttft_slo_s=ttft_slo_s, tpot_slo_s=tpot_slo_s)
        lv = float(level)  # type: ignore[arg-type]
        if g.judged and g.attainment >= attainment_goal and (best is None or lv > best):
            best = lv
    return best


@dataclass(frozen=True, slots=True)
class InFlight:
    """Requests in flight over a window: time average and peak."""

    window_start_s: float
    window_end_s: float
    mean: float
    peak: int


def in_flight(data: RecordsLike, window: tuple[float, float] | None = None) -> InFlight:
    """Time-averaged and peak number of requests in flight, from send and end times.

    Every request counts (warm-up, failed and incomplete too: they all held a slot); a request
    with no end time is in flight to the end of the window. ``window`` defaults to the whole
    span, first send to last end.

    Example: requests over [0, 2], [1, 3] and [1, 2] in the window [0, 3] are in flight
    1 + 3 + 1 = 5 request-seconds, so the mean is 5 / 3 = 1.67 and the peak 3.
    """
    f = as_frame(data)
    if not len(f):
        nan = float("nan")
        return InFlight(nan, nan, nan, 0)
    s = f["sent_s"].to_numpy(dtype=float)
    e = f["end_s"].to_numpy(dtype=float)
    if window is None:
        a = float(np.nanmin(s))
        b = float(np.nanmax(np.where(np.isnan(e), s, e)))
    else:
        a, b = float(window[0]), float(window[1])
        if not b >= a:
            raise ValueError(f"window must be (start, end) with end >= start (got {window!r})")
    e = np.where(np.isnan(e), b, e)
    overlap = np.clip(np.minimum(e, b) - np.maximum(s, a), 0.0, None)
    mean = float(overlap.sum() / (b - a)) if b > a else float("nan")
    # Peak: sweep the +1/−1 events in time order (ends before starts at equal times).
    times = np.concatenate([s, e])
    deltas = np.concatenate([np.ones_like(s), -np.ones_like(e)])
    order = np.lexsort((deltas, times))
    counts = np.cumsum(deltas[order])
    t_sorted = times[order]
    at_start = int(((s <= a) & (e > a)).sum())
    inside = (t_sorted >= a) & (t_sorted <= b)
    peak = max(at_start, int(counts[inside].max()) if inside.any() else 0)
    return InFlight(a, b, mean, peak)


@dataclass(frozen=True, slots=True)
class LittlesLaw:
    """L (measured mean in flight) against λ·W (throughput × mean latency) over a window."""

    window_start_s: float
    window_end_s: float
    mean_in_flight: float
    throughput_per_s: float
    mean_latency_s: float
    predicted_in_flight: float
    ratio: float
    holds: bool


def littles_law(
    data: RecordsLike, *, window: tuple[float, float] | None = None, tolerance: float = 0.1
) -> LittlesLaw:
    """Check L = λ·W over the steady-state window.

    The window defaults to [first measured send, last measured send]: the stretch during which
    load was being offered (over the full span, first send to last end, L = λ·W is an identity
    and checks nothing). Within it, over the measured requests only (warm-up excluded from all
    three): L = time-averaged in flight; λ = requests that
    ended inside the window / its length; W = mean e2e of those requests. ``holds`` when
    |L / (λ·W) − 1| ≤ ``tolerance``. A ramp-up, a drain or a client that stalls shows as a ratio
    away from 1.

    Example (hand-computed in the tests): requests sent at 0, 1, …, 9 s, each taking 2 s. The
    window is [0, 9]; one request is in flight during [0, 1) and two after, so L = (1 + 16) / 9 =
    1.889. Eight requests end inside (at 2, …, 9 s): λ = 8 / 9 per s, W = 2 s, λ·W = 1.778, and
    the ratio is 1.0625.
    """
    if not tolerance > 0:
        raise ValueError(f"tolerance must be > 0 (got {tolerance!r})")
    f = as_frame(data)
    m = measured(f)
    nan = float("nan")
    if not len(m):
        return LittlesLaw(nan, nan, nan, nan, nan, nan, nan, False)
    if window is None:
        window = (float(m["sent_s"].min()), float(m["sent_s"].max()))
    a, b = window
    span = b - a
    if not span > 0:
        return LittlesLaw(a, b, nan, nan, nan, nan, nan, False)
    # One population for L, λ and W: the measured requests. Warm-up requests that end inside
    # the window would otherwise add their whole latency to W but only their in-window part to L.
    occupancy = in_flight(m, (a, b)).mean
    ended = m[(m["end_s"] >= a) & (m["end_s"] <= b)]
    lam = len(ended) / span
    w = float((ended["end_s"] - ended["sent_s"]).mean()) if len(ended) else nan
    predicted = lam * w
    ratio = occupancy / predicted if predicted > 0 else nan
    holds = bool(np.isfinite(ratio) and abs(ratio - 1.0) <= tolerance)
    return LittlesLaw(a, b, occupancy, lam, w, predicted, ratio, holds)


def _level_key(f: pd.DataFrame) -> str | None:
    return "level" if "level" in f.columns else None


def _first(group: pd.DataFrame, col: str) -> Any:
    if col not in group.columns:
        return None
    vals = group[col].dropna()
    return vals.iloc[0] if len(vals) else None


def summarize(data: RecordsLike, by: str | None = "level") -> pd.DataFrame:
    """One row per level of a run (or one row for the whole run): what was asked, what came.

    Columns: the level's load (``mode``, ``concurrency``, ``rate_per_s``,
    ``prompt_tokens_asked``, ``max_tokens``, ``timeout_s`` where present), counts (``requests``,
    ``ok``, ``failed``, ``incomplete``, ``error_rate``), throughput
    (``throughput_req_per_s``, ``output_tokens_per_s``, ``window_s``), latency percentiles in
    seconds (``ttft_p50_s`` … ``e2e_p99_s``, ``e2e_mean_s``, ``tpot_*``, ``itl_*``), delivered
    load (``mean_in_flight``, ``peak_in_flight``, ``dispatch_lag_p95_s``) and
    ``tokens_estimated`` (True when any count is a fallback estimate, not server ``usage``).
    """
    f = as_frame(data)
    key = by if by is not None and by in f.columns else None
    groups: list[tuple[Any, pd.DataFrame]] = (
        [(0, f)] if key is None else [(k, g) for k, g in f.groupby(key, sort=True)]
    )
    rows: list[dict[str, Any]] = []
    for k, g in groups:
        m = measured(g)
        ok = successful(m)
        row: dict[str, Any] = {"level": k}
        for col in ("mode", *LEVEL_COLUMNS):
            v = _first(g, col)
            if v is not None:
                row[col] = v
        tp = throughput(g)
        finished = tp.ok + tp.failed
        row.update(
            requests=len(m),
            ok=tp.ok,
            failed=tp.failed,
            incomplete=tp.incomplete,
            error_rate=tp.failed / finished if finished else float("nan"),
            window_s=tp.window_s,
            throughput_req_per_s=tp.requests_per_s,
            output_tokens_per_s=tp.output_tokens_per_s,
        )
        for name in ("ttft", "tpot", "e2e"):
            p = percentiles(ok[f"{name}_s"]) if len(ok) else percentiles([])
            for q, v in p.items():
                row[f"{name}_{q}_s"] = v
        row["e2e_mean_s"] = float(ok["e2e_s"].mean()) if len(ok) else float("nan")
        for q, v in percentiles(itl_values(m)).items():
            row[f"itl_{q}_s"] = v
        if len(m):
            occ = in_flight(g, measured_window(m)) if tp.window_s > 0 else None
            row["mean_in_flight"] = occ.mean if occ else float("nan")
            row["peak_in_flight"] = occ.peak if occ else len(m)
        if "dispatch_lag_s" in m.columns:
            row["dispatch_lag_p95_s"] = percentiles(m["dispatch_lag_s"], (95,))["p95"]
        src = ok["token_count_source"] if len(ok) else pd.Series([], dtype=object)
        row["tokens_estimated"] = bool((~src.isin(["usage", "simulated"])).any())
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass(frozen=True, slots=True)
class Knee:
    """Where a sweep stops paying: the throughput knee and the latency cliff."""

    x_column: str
    knee_index: int | None
    knee_x: float | None
    knee_throughput: float | None
    cliff_index: int | None
    cliff_x: float | None


def sweep_knee(
    summary: pd.DataFrame,
    *,
    x: str | None = None,
    throughput_column: str = "throughput_req_per_s",
    latency_column: str = "e2e_p95_s",
    cliff_factor: float = 2.0,
) -> Knee | None:
    """The knee of a sweep summary (:func:`summarize`) and its latency cliff.

    Indices refer to the levels sorted by ``x``. ``knee_index`` is None when throughput has no
    knee inside the sweep (it rises straight or faster up to the last level).

    Uses :func:`infphys.physics.queueing.find_knee` on throughput against ``x`` (default: the
    first of ``concurrency``/``rate_per_s`` present) on a log₂ axis, and
    :func:`~infphys.physics.queueing.find_latency_cliff` on ``latency_column``: the first level
    whose p95 exceeds ``cliff_factor`` × the first level's. None with fewer than 3 usable
    levels.
    """
    if x is None:
        x = next((c for c in ("concurrency", "rate_per_s") if c in summary.columns), None)
        if x is None:
            return None
    for col in (x, throughput_column, latency_column):
        if col not in summary.columns:
            raise ValueError(f"summary has no column {col!r}")
    s = summary[[x, throughput_column, latency_column]].dropna()
    s = s.sort_values(x)
    if len(s) < 3 or s[x].duplicated().any() or (s[x] <= 0).any():
        return None
    xs = s[x].astype(float).tolist()
    k: int | None = find_knee(xs, s[throughput_column].astype(float).tolist(), log_x=True)
    if k == 0:
        # find_knee measures each point's height above the chord from the first to the last
        # point; the first point is on the chord, so index 0 means no point rose above it: the
        # curve is straight or still bending upwards, with no knee inside the sweep.
        k = None
    cliff = find_latency_cliff(xs, s[latency_column].astype(float).tolist(), factor=cliff_factor)
    return Knee(
        x_column=x,
        knee_index=k,
        knee_x=xs[k] if k is not None else None,
        knee_throughput=float(s[throughput_column].iloc[k]) if k is not None else None,
        cliff_index=cliff,
        cliff_x=xs[cliff] if cliff is not None else None,
    )
