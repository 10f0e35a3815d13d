"""One record type for a request, measured or simulated, and the run file that holds them.

This module is plain data with no I/O beyond reading and writing run files. It sits below both
``infphys.measure`` (which times real servers) and ``infphys.sim`` (which simulates one), so
neither imports the other and every statistic, plot and exercise works on both.

Times inside a run are seconds on one monotonic clock whose zero is the run's start: a measured
run uses ``time.perf_counter()`` minus the start, a simulated run uses simulated seconds. The
wall-clock start time is kept once, in the header.

Definitions (fixed for the whole kit; the glossary maps them to vLLM, aiperf and guidellm):

- TTFT = time of the first content chunk − send time.
- e2e = end time − send time (the end is the ``[DONE]`` line, or the last byte of a
  non-streamed body).
- ITL = the gaps between successive content chunks (a distribution over tokens).
- TPOT = (e2e − TTFT) / (completion tokens − 1), one value per request.

Worked example: a request sent at 0.100 s whose first chunk came at 0.140 s and whose stream
ended at 1.140 s with 101 completion tokens has TTFT 40 ms, e2e 1.040 s and
TPOT = (1.040 − 0.040) / 100 = 10 ms.

File format (JSON lines): the first line is the header (``{"type": "header", ...}``), then one
line per request (``{"type": "request", ...}``) appended and flushed as each request completes,
so an interrupted run keeps every finished record. A torn last line is ignored on reading.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import itertools
import json
import math
import os
import platform
import sys
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, TypeVar

import pandas as pd

from infphys._check import positive
from infphys._closing import Closing

__all__ = [
    "ERROR_CLASSES",
    "TOKEN_COUNT_SOURCES",
    "RequestRecord",
    "Run",
    "RunHeader",
    "RunWriter",
    "infphys_version",
    "iter_json_lines",
    "json_safe",
    "load_run",
    "on_simulated_clock",
    "read_run",
    "records_to_frame",
    "utc_timestamp",
    "versions",
]

RequestStatus = Literal["ok", "failed", "incomplete"]

#: Error classes shared by the measuring client and the simulator. ``incomplete`` is not an
#: error: it marks a request cancelled at the end of a bounded run.
ERROR_CLASSES: tuple[str, ...] = (
    "connect_refused",
    "connect_timeout",
    "dns",
    "read_timeout",
    "total_timeout",
    "http_429",
    "http_4xx",
    "http_5xx",
    "malformed_sse",
    "malformed_json",
    "no_done",
    "stream_error_event",
    "connection_reset",
    "client_error",
)

#: Where a record's token counts came from. Anything but ``usage`` or ``simulated`` is a
#: fallback estimate and is flagged in reports.
TOKEN_COUNT_SOURCES: tuple[str, ...] = ("usage", "simulated", "chunks", "chars/4", "none")


def infphys_version() -> str:
    """The installed infphys distribution's version (pyproject.toml's), or ``0+unknown`` when
    the package is imported from a source tree that was never installed."""
    try:
        return importlib.metadata.version("infphys")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def utc_timestamp() -> str:
    """Now in UTC to the second, ISO 8601 with a ``Z``: what :attr:`RunHeader.started_at`
    holds, e.g. ``"2026-11-27T09:30:00Z"`` for half past nine UTC on 27 November 2026.

    >>> stamp = utc_timestamp()
    >>> len(stamp), stamp[10], stamp[-1]
    (20, 'T', 'Z')
    """
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def versions() -> dict[str, str]:
    """Versions worth recording with a run: infphys, Python and the platform."""
    return {
        "infphys": infphys_version(),
        "python": sys.version.split()[0],
        "platform": platform.platform(terse=True),
    }


_D = TypeVar("_D")


def _from_known_fields(cls: type[_D], d: dict[str, Any]) -> _D:
    """``cls`` (a dataclass) built from the keys of ``d`` that it has fields for; keys it does
    not know (a newer file's, or the line's ``type``) are left out."""
    known = cls.__dataclass_fields__  # type: ignore[attr-defined]
    return cls(**{k: v for k, v in d.items() if k in known})


@dataclass(slots=True)
class RequestRecord:
    """What happened to one request, measured or simulated.

    Attributes:
        request_id: index of the request in its run (0-based, in send order).
        sent_s: when the request was sent, seconds since the run's start.
        first_token_s: when the first content chunk arrived (None if none did).
        end_s: when the response ended or failed (None while still in flight).
        chunk_times_s: arrival time of every content chunk, in order. May be empty for
            simulated runs that skip per-token times to save memory; the ITL then falls back to
            the TPOT.
        prompt_tokens, completion_tokens: token counts, from the server's ``usage`` when it
            sent one (``token_count_source == "usage"``), else an estimate named by
            ``token_count_source``.
        finish_reason: the server's ``finish_reason`` (``length``, ``stop``, …).
        http_status: HTTP status of the response (None if no response arrived).
        status: ``ok``, ``failed`` or ``incomplete`` (cancelled at the end of a bounded run).
        error_class: one of :data:`ERROR_CLASSES` when status is not ``ok``.
        error_message: the server's or the client's message, for a human.
        warmup: True for warm-up requests, which statistics exclude.
        labels: what the load asked for this request (concurrency, rate, prompt size,
            max_tokens, attempt, …), flattened into DataFrame columns.
    """

    request_id: int
    sent_s: float
    first_token_s: float | None = None
    end_s: float | None = None
    chunk_times_s: list[float] = field(default_factory=list)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    token_count_source: str = "none"
    finish_reason: str | None = None
    http_status: int | None = None
    status: RequestStatus = "ok"
    error_class: str | None = None
    error_message: str | None = None
    warmup: bool = False
    labels: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def ttft_s(self) -> float | None:
        """Time to first content chunk, seconds."""
        if self.first_token_s is None:
            return None
        return self.first_token_s - self.sent_s

    @property
    def e2e_s(self) -> float | None:
        """End-to-end latency, seconds."""
        if self.end_s is None:
            return None
        return self.end_s - self.sent_s

    @property
    def tpot_s(self) -> float | None:
        """Time per output token after the first: (e2e − TTFT) / (completion tokens − 1)."""
        e2e, ttft, n = self.e2e_s, self.ttft_s, self.completion_tokens
        if e2e is None or ttft is None or n is None or n < 2:
            return None
        return (e2e - ttft) / (n - 1)

    @property
    def itl_s(self) -> list[float]:
        """Gaps between successive content chunks, seconds."""
        t = self.chunk_times_s
        return [b - a for a, b in itertools.pairwise(t)]

    @property
    def itl_mean_s(self) -> float | None:
        """Mean gap between content chunks; the TPOT when chunk times were not kept."""
        t = self.chunk_times_s
        if len(t) >= 2:
            return (t[-1] - t[0]) / (len(t) - 1)
        return self.tpot_s

    def to_json_dict(self) -> dict[str, Any]:
        # Shallow copies, not dataclasses.asdict: asdict deep-copies every float of
        # chunk_times_s, which costs more than timing the request (65 µs vs 8 µs).
        d: dict[str, Any] = {name: getattr(self, name) for name in _RECORD_FIELDS}
        d["chunk_times_s"] = list(self.chunk_times_s)
        d["labels"] = dict(self.labels)
        d["type"] = "request"
        return d

    @classmethod
    def from_json_dict(cls, d: dict[str, Any]) -> RequestRecord:
        return _from_known_fields(cls, d)


_RECORD_FIELDS: tuple[str, ...] = tuple(RequestRecord.__dataclass_fields__)


@dataclass(slots=True)
class RunHeader:
    """A run's settings: what was measured or simulated, how, and with which seed.

    ``target`` never holds an API key (the client strips it); ``load`` describes the load shape
    (mode, concurrency or rate, counts, prompt and output sizes); ``extra`` holds anything else a
    source wants to keep (the simulator's engine configuration, GPU identity, …).
    """

    source: Literal["measured", "simulated"]
    started_at: str
    target: dict[str, Any] = field(default_factory=dict)
    load: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    versions: dict[str, str] = field(default_factory=versions)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["type"] = "header"
        return d

    @classmethod
    def from_json_dict(cls, d: dict[str, Any]) -> RunHeader:
        return _from_known_fields(cls, d)


@dataclass(slots=True)
class Run:
    """A run in memory: its header and its records, in completion order."""

    header: RunHeader
    records: list[RequestRecord]

    def to_frame(self) -> pd.DataFrame:
        return records_to_frame(self.records, self.header)


def json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinite float (numpy's too) replaced by None, through dicts,
    lists and tuples, and numpy scalars made Python numbers: what strict JSON can hold.

    ``json.dumps`` writes a float NaN as the bare word ``NaN``, which is not JSON (browsers,
    ``jq`` and pandas' strict readers refuse it); its ``default=`` hook never sees floats.

    >>> json_safe({"ttft_s": float("nan"), "rates": (1.5, float("inf")), "n": 3})
    {'ttft_s': None, 'rates': [1.5, None], 'n': 3}
    """
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class RunWriter(Closing):
    """Append a run to a JSON-lines file as it goes.

    The header is written on open; each :meth:`write` appends one line and flushes it, so a run
    killed half-way leaves a readable file with every finished record.

    >>> import tempfile, pathlib
    >>> tmp = tempfile.TemporaryDirectory()
    >>> p = pathlib.Path(tmp.name) / "run.jsonl"
    >>> with RunWriter(p, RunHeader(source="simulated", started_at="2026-11-27T00:00:00Z")) as w:
    ...     w.write(RequestRecord(request_id=0, sent_s=0.0, first_token_s=0.05, end_s=1.0))
    >>> len(read_run(p).records)
    1
    >>> tmp.cleanup()
    """

    def __init__(self, path: str | os.PathLike[str], header: RunHeader) -> None:
        self.path = Path(path)
        self.header = header
        self._fh: IO[str] | None = None
        self.count = 0

    def open(self) -> RunWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("w", encoding="utf-8")
        self._line(self.header.to_json_dict())
        return self

    def _line(self, d: dict[str, Any]) -> None:
        if self._fh is None:
            raise RuntimeError("RunWriter is not open")
        line = json.dumps(json_safe(d), separators=(",", ":"), allow_nan=False)
        self._fh.write(line + "\n")
        self._fh.flush()

    def write(self, record: RequestRecord) -> None:
        self._line(record.to_json_dict())
        self.count += 1

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> RunWriter:
        return self.open()


def iter_json_lines(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """The objects of a JSON-lines file, one a line; blank lines and a line that does not parse
    (the torn last line of an interrupted run) are skipped, so what was finished is kept.

    Example: a file holding ``{"a": 1}``, a blank line and ``{"a": 2`` (cut off) yields
    ``{"a": 1}`` only.
    """
    with Path(path).open(encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                # A torn last line from an interrupted run: keep what was finished.
                continue


def read_run(path: str | os.PathLike[str]) -> Run:
    """Read a run file written by :class:`RunWriter`.

    Raises:
        ValueError: if ``path`` has no header line (not a run file).
    """
    p = Path(path)
    header: RunHeader | None = None
    records: list[RequestRecord] = []
    for d in iter_json_lines(p):
        kind = d.get("type")
        if kind == "header" and header is None:
            header = RunHeader.from_json_dict(d)
        elif kind == "request":
            records.append(RequestRecord.from_json_dict(d))
    if header is None:
        raise ValueError(f"path: {p} is not an infphys run file (no header line)")
    return Run(header=header, records=records)


#: The columns of :func:`records_to_frame` that are times a request measured, in seconds.
_REQUEST_TIME_COLUMNS = (
    "sent_s",
    "first_token_s",
    "end_s",
    "ttft_s",
    "e2e_s",
    "tpot_s",
    "itl_mean_s",
)
_FRAME_COLUMNS = (
    "request_id",
    *_REQUEST_TIME_COLUMNS,
    "n_chunks",
    "prompt_tokens",
    "completion_tokens",
    "token_count_source",
    "finish_reason",
    "http_status",
    "status",
    "error_class",
    "error_message",
    "warmup",
)


def records_to_frame(
    records: Iterable[RequestRecord], header: RunHeader | None = None
) -> pd.DataFrame:
    """One row per request with the derived latencies as columns (seconds).

    Labels become columns of their own; per-chunk times stay in ``chunk_times_s`` (a list per
    row). The header, when given, is kept in ``frame.attrs["header"]`` as a dict.
    """
    rows: list[dict[str, Any]] = []
    for r in records:
        row: dict[str, Any] = {
            "request_id": r.request_id,
            "sent_s": r.sent_s,
            "first_token_s": r.first_token_s,
            "end_s": r.end_s,
            "ttft_s": r.ttft_s,
            "e2e_s": r.e2e_s,
            "tpot_s": r.tpot_s,
            "itl_mean_s": r.itl_mean_s,
            "n_chunks": len(r.chunk_times_s),
            "prompt_tokens": r.prompt_tokens,
            "completion_tokens": r.completion_tokens,
            "token_count_source": r.token_count_source,
            "finish_reason": r.finish_reason,
            "http_status": r.http_status,
            "status": r.status,
            "error_class": r.error_class,
            "error_message": r.error_message,
            "warmup": r.warmup,
            "chunk_times_s": r.chunk_times_s,
        }
        for k, v in r.labels.items():
            if k not in row:
                row[k] = v
        rows.append(row)
    frame = pd.DataFrame(rows, columns=None if rows else [*_FRAME_COLUMNS, "chunk_times_s"])
    for col in ("ttft_s", "e2e_s", "tpot_s", "itl_mean_s", "first_token_s", "end_s"):
        if col in frame.columns:
            frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    if header is not None:
        frame.attrs["header"] = header.to_json_dict()
    return frame


def on_simulated_clock(frame: pd.DataFrame, time_scale: float) -> pd.DataFrame:
    """A copy of ``frame`` (from :func:`records_to_frame`) with every time a request measured
    divided by ``time_scale``: a run against a simulator whose clock was slowed ``time_scale``
    times (wall seconds per simulated second), read on the simulator's clock.

    The measured times (sends, first tokens, ends, TTFT, e2e, TPOT, ITL, ``chunk_times_s``)
    change; counts and the level's labels (the client's own settings) do not. With
    ``time_scale=1`` (a real server, or a simulator in real time) the copy equals the frame.
    Example: a decode step of 6.4 ms simulated on a clock slowed 3× is measured as a TPOT of
    19.2 ms; on the simulator's clock it reads 19.2 / 3 = 6.4 ms again.

    Raises:
        ValueError: ``time_scale`` is not a finite number > 0 (naming it).
    """
    scale = positive("time_scale", time_scale)
    out = frame.copy()
    if scale == 1:
        return out
    for col in _REQUEST_TIME_COLUMNS:
        if col in out.columns:
            out[col] = out[col] / scale
    if "chunk_times_s" in out.columns:
        out["chunk_times_s"] = [[t / scale for t in ts] for ts in out["chunk_times_s"]]
    return out


def load_run(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Load a run file into a DataFrame (one row per request, header in ``attrs``)."""
    run = read_run(path)
    return run.to_frame()
