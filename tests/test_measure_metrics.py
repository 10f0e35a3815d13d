"""Server metrics: vLLM and NIM 1.x names map onto one vocabulary; scraping a live server."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

from infphys.measure.metrics import VOCABULARY, MetricsScraper, load_metrics, parse_metrics
from infphys.measure.stub import StubConfig, StubServer

VLLM_V1 = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 3.0
vllm:num_requests_running{engine="1",model_name="m"} 2.0
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="m"} 7.0
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.5
vllm:kv_cache_usage_perc{engine="1",model_name="m"} 0.25
# TYPE vllm:num_preemptions counter
vllm:num_preemptions_total{engine="0",model_name="m"} 4.0
# TYPE vllm:e2e_request_latency_seconds histogram
vllm:e2e_request_latency_seconds_bucket{le="1.0",model_name="m"} 3.0
vllm:e2e_request_latency_seconds_count{model_name="m"} 3.0
vllm:e2e_request_latency_seconds_sum{model_name="m"} 1.5
"""

VLLM_V0 = """\
vllm:num_requests_running{model_name="m"} 1
vllm:num_requests_swapped{model_name="m"} 2
vllm:gpu_cache_usage_perc{model_name="m"} 0.9
"""

NIM_1X = """\
# HELP gpu_cache_usage_perc GPU KV-cache usage. 1 means 100 percent usage
# TYPE gpu_cache_usage_perc gauge
gpu_cache_usage_perc{model_name="meta/llama-3.1-8b-instruct"} 0.31
# TYPE num_requests_running gauge
num_requests_running{model_name="meta/llama-3.1-8b-instruct"} 12.0
# TYPE num_requests_waiting gauge
num_requests_waiting{model_name="meta/llama-3.1-8b-instruct"} 0.0
# TYPE num_request_max gauge
num_request_max{model_name="meta/llama-3.1-8b-instruct"} 256.0
# TYPE prompt_tokens counter
prompt_tokens_total{model_name="meta/llama-3.1-8b-instruct"} 1234.0
"""


def test_vllm_v1_names_sum_engines_and_average_kv() -> None:
    m = parse_metrics(VLLM_V1)
    # running 3 + 2 = 5; waiting 7; KV (0.5 + 0.25) / 2 = 0.375; preemptions 4
    assert m["requests_running"] == 5.0
    assert m["requests_waiting"] == 7.0
    assert m["kv_cache_usage"] == pytest.approx(0.375)
    assert m["preemptions_total"] == 4.0
    assert math.isnan(m["requests_max"]) and math.isnan(m["prompt_tokens_total"])


def test_vllm_v0_names() -> None:
    m = parse_metrics(VLLM_V0)
    assert (m["requests_running"], m["requests_swapped"], m["kv_cache_usage"]) == (1, 2, 0.9)


def test_nim_1x_names() -> None:
    m = parse_metrics(NIM_1X)
    assert m["kv_cache_usage"] == pytest.approx(0.31)
    assert (m["requests_running"], m["requests_waiting"], m["requests_max"]) == (12, 0, 256)
    assert m["prompt_tokens_total"] == 1234


def test_percent_values_are_scaled_and_absent_metrics_are_nan() -> None:
    assert parse_metrics("gpu_cache_usage_perc 45\n")["kv_cache_usage"] == pytest.approx(0.45)
    m = parse_metrics("process_cpu_seconds_total 1.0\n")
    assert set(m) == set(VOCABULARY) and all(math.isnan(v) for v in m.values())


def test_not_prometheus_text_raises() -> None:
    with pytest.raises(ValueError):
        parse_metrics("<html>not metrics {{{\n")


@pytest.mark.parametrize(("style", "endpoint"), [("vllm", "/metrics"), ("nim", "/v1/metrics")])
async def test_scraper_finds_the_endpoint_and_writes_rows(
    style: str, endpoint: str, tmp_path: Path
) -> None:
    async with StubServer(StubConfig(metrics_style=style)) as server:  # type: ignore[arg-type]
        scraper = MetricsScraper(server.target(), interval_s=0.02, path=tmp_path / "m.jsonl")
        await scraper.start()
        server.in_flight = 16  # what the stub reports: 16 of 64 → KV 0.25
        try:
            for _ in range(200):
                if len(scraper.rows) >= 3:
                    break
                await asyncio.sleep(0.01)
        finally:
            await scraper.stop()
    assert scraper.endpoint == endpoint
    f = scraper.frame()
    assert len(f) >= 3 and (f["t_s"].diff().dropna() > 0).all()
    assert f["requests_running"].iloc[-1] == 16 and f["kv_cache_usage"].iloc[-1] == 0.25
    again = load_metrics(tmp_path / "m.jsonl")
    assert len(again) == len(f)


async def test_scraper_without_metrics_or_server_gives_no_rows() -> None:
    async with StubServer(StubConfig(metrics_style="none")) as server:
        scraper = MetricsScraper(server.target())
        assert await scraper.scrape_once() is None
        await scraper.stop()
    assert scraper.frame().empty and scraper.errors == 1
    with pytest.raises(ValueError, match="interval_s"):
        MetricsScraper(server.target(), interval_s=0)
