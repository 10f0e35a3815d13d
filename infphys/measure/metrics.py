"""Server metrics: scrape Prometheus text during a run and map it to one vocabulary.

Servers name the same gauges differently. This module reads the Prometheus text exposition
format with ``prometheus_client``'s parser and maps the names it knows onto :data:`VOCABULARY`:

========================  ==============================================  ======================
infphys name              vLLM (``/metrics``)                             NIM 1.x (``/v1/metrics``)
========================  ==============================================  ======================
kv_cache_usage (0..1)     vllm:kv_cache_usage_perc, vllm:gpu_cache_usage  gpu_cache_usage_perc
                          _perc (before v0.10)
requests_running          vllm:num_requests_running                       num_requests_running
requests_waiting          vllm:num_requests_waiting                       num_requests_waiting
requests_swapped          vllm:num_requests_swapped (V0 only)             num_requests_swapped
requests_max              —                                               num_request_max
preemptions_total         vllm:num_preemptions_total                      num_preemptions_total
prompt_tokens_total       vllm:prompt_tokens_total                        prompt_tokens_total
generation_tokens_total   vllm:generation_tokens_total                    generation_tokens_total
========================  ==============================================  ======================

Assumptions: a name with several label sets (one per engine under vLLM's data parallelism, one
per model) is summed, except ``kv_cache_usage``, which is averaged. The ``_perc`` gauges are
fractions ("1 means 100 percent usage" in both vLLM's and NIM's docs); a value above 1 is taken
as a percentage and divided by 100. Absent metrics are NaN, never an error.

Worked example::

    >>> parse_metrics('vllm:num_requests_running{model_name="m"} 3\\n'
    ...               'vllm:kv_cache_usage_perc{model_name="m"} 0.42\\n')["requests_running"]
    3.0

:class:`MetricsScraper` polls ``/v1/metrics`` then ``/metrics`` (the first that answers with a
known name wins) every ``interval_s`` during a run and returns a DataFrame whose ``t_s`` is on
the run's clock, so server gauges line up with the request records.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import aiohttp
import pandas as pd
from prometheus_client.parser import text_string_to_metric_families

from infphys._check import positive
from infphys._closing import cancel_and_wait
from infphys.measure.target import Target
from infphys.records import iter_json_lines, json_safe

__all__ = [
    "METRICS_PATHS",
    "VOCABULARY",
    "MetricsScraper",
    "load_metrics",
    "metrics_path_for",
    "parse_metrics",
]

log = logging.getLogger("infphys.measure")

#: Paths tried in order: NIM 1.x serves ``/v1/metrics``, vLLM and SGLang ``/metrics``.
METRICS_PATHS: tuple[str, ...] = ("/v1/metrics", "/metrics")

#: infphys name → the sample names that mean it, in order of preference.
VOCABULARY: dict[str, tuple[str, ...]] = {
    "kv_cache_usage": (
        "vllm:kv_cache_usage_perc",
        "vllm:gpu_cache_usage_perc",
        "gpu_cache_usage_perc",
    ),
    "requests_running": ("vllm:num_requests_running", "num_requests_running"),
    "requests_waiting": ("vllm:num_requests_waiting", "num_requests_waiting"),
    "requests_swapped": ("vllm:num_requests_swapped", "num_requests_swapped"),
    "requests_max": ("num_request_max",),
    "preemptions_total": ("vllm:num_preemptions_total", "num_preemptions_total"),
    "prompt_tokens_total": ("vllm:prompt_tokens_total", "prompt_tokens_total"),
    "generation_tokens_total": ("vllm:generation_tokens_total", "generation_tokens_total"),
}

_AVERAGED = frozenset({"kv_cache_usage"})
_WANTED = frozenset(n for names in VOCABULARY.values() for n in names)


def parse_metrics(text: str) -> dict[str, float]:
    """The :data:`VOCABULARY` values found in Prometheus ``text`` (absent names are NaN).

    Raises:
        ValueError: if ``text`` is not Prometheus text format.
    """
    found: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in _WANTED:
                found.setdefault(sample.name, []).append(float(sample.value))
    out: dict[str, float] = {}
    for name, sources in VOCABULARY.items():
        value = math.nan
        for src in sources:
            vals = [v for v in found.get(src, []) if math.isfinite(v)]
            if vals:
                value = sum(vals) / len(vals) if name in _AVERAGED else sum(vals)
                break
        if name == "kv_cache_usage" and value > 1.0:
            value /= 100.0
        out[name] = value
    return out


def _known(values: dict[str, float]) -> bool:
    return any(not math.isnan(v) for v in values.values())


class MetricsScraper:
    """Polls a server's metrics endpoint in the background of a run.

    Args:
        target: the server (its ``base_url`` and key are used).
        interval_s: time between scrapes, seconds.
        clock_zero_s: ``time.perf_counter()`` value that is the run's time 0 (default: now).
        path: if given, each scrape is appended to this JSON-lines file as it comes.
        paths: endpoint paths to try, in order.
        timeout_s: limit of one scrape.
    """

    def __init__(
        self,
        target: Target,
        *,
        interval_s: float = 1.0,
        clock_zero_s: float | None = None,
        path: str | Path | None = None,
        paths: Sequence[str] = METRICS_PATHS,
        timeout_s: float = 2.0,
    ) -> None:
        self.target = target
        self.interval_s = positive("interval_s", interval_s)
        self.timeout_s = positive("timeout_s", timeout_s)
        self.clock_zero_s = time.perf_counter() if clock_zero_s is None else clock_zero_s
        self.path = Path(path) if path is not None else None
        if not paths:
            raise ValueError("paths must name at least one endpoint path")
        self.paths = tuple(paths)
        self.endpoint: str | None = None
        self.rows: list[dict[str, Any]] = []
        self.errors = 0
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._fh: IO[str] | None = None
        self._warned = False

    async def _get(self, path: str) -> dict[str, float] | None:
        assert self._session is not None
        headers = {k: v for k, v in self.target.headers().items() if k == "Authorization"}
        async with self._session.get(self.target.url(path), headers=headers) as resp:
            if resp.status != 200:
                return None
            text = await resp.text(errors="replace")
        try:
            return parse_metrics(text)
        except ValueError:
            return None

    async def scrape_once(self) -> dict[str, Any] | None:
        """One scrape (discovering the endpoint first if needed); the row, or None."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s)
            )
        values: dict[str, float] | None = None
        try:
            if self.endpoint is not None:
                values = await self._get(self.endpoint)
            else:
                for p in self.paths:
                    v = await self._get(p)
                    if v is not None and _known(v):
                        self.endpoint, values = p, v
                        break
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            self.errors += 1
            if not self._warned:
                log.info("metrics scrape of %s failed: %s", self.target.base_url, exc)
                self._warned = True
            return None
        if values is None:
            self.errors += 1
            return None
        row: dict[str, Any] = {"t_s": time.perf_counter() - self.clock_zero_s}
        row.update(values)
        row["endpoint"] = self.endpoint
        self.rows.append(row)
        if self._fh is not None:
            self._fh.write(json.dumps(json_safe(row), allow_nan=False) + "\n")
            self._fh.flush()
        return row

    async def _loop(self) -> None:
        next_t = time.perf_counter()
        while True:
            await self.scrape_once()
            next_t += self.interval_s
            await asyncio.sleep(max(0.0, next_t - time.perf_counter()))

    async def start(self) -> None:
        """Start polling in the background of the running event loop."""
        if self.path is not None and self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("w", encoding="utf-8")
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Stop polling and release the connection and the file."""
        await cancel_and_wait(self._task)
        self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def frame(self) -> pd.DataFrame:
        """One row per scrape: ``t_s`` (run clock), the vocabulary, and ``endpoint``."""
        return _frame(self.rows)


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    cols = ["t_s", *VOCABULARY, "endpoint"]
    f = pd.DataFrame(rows, columns=cols)
    for c in ["t_s", *VOCABULARY]:
        f[c] = pd.to_numeric(f[c], errors="coerce").astype("float64")
    return f


def metrics_path_for(run_path: Path) -> Path:
    """Where the server's metrics of the run file ``run_path`` are kept: beside it, as
    ``<name>.metrics.jsonl`` (``runs/sweep-1.jsonl`` → ``runs/sweep-1.metrics.jsonl``)."""
    return run_path.with_name(run_path.stem + ".metrics.jsonl")


def load_metrics(path: str | Path) -> pd.DataFrame:
    """Read a metrics file written during a run (a torn last line is ignored)."""
    return _frame(list(iter_json_lines(path)))
