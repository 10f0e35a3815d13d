"""Total cost of ownership: on-premises servers, cloud GPU-hours and a per-token API, per token.

Three ways to serve the same token load for a year, each priced per million input and per
million output tokens:

- **On premises**: buy servers and write them off over ``amortisation_years``; pay for power
  (server draw × ``power_utilisation`` × $/kWh × PUE, every hour of the year) and for hosting
  (rack units × $ per rack unit per year). :func:`on_prem_usd_per_gpu_hour` turns that into a
  price per GPU-hour; the fleet is bought in whole servers.
- **Cloud**: rent GPUs by the hour, all year, in whole GPUs.
- **API**: pay a price per million input and output tokens for the tokens actually served.

Assumptions. A self-hosted fleet is sized for the **peak** load (the average × ``peak_to_average``)
and paid for all year, busy or idle; an API bills the average. A GPU's time is shared between
prefill and decode: serving ``I`` input and ``O`` output tokens per second keeps
``I / input_tokens_per_s + O / output_tokens_per_s`` GPUs busy, where the two rates are one
GPU's prefill rate and its decode rate at the latency objective (measured or from the roofline).
The fleet's yearly cost is split between input and output tokens in proportion to the GPU time
each takes, so an input token costs ``output_tokens_per_s / input_tokens_per_s`` of an output
token. Prices are inputs, never facts: the defaults in the labs and the site are labelled examples.

Worked example (rented): an average of 20,000 input and 2,000 output tokens/s with a peak 3× the
average, on GPUs that prefill 40,000 tokens/s and decode 2,500 tokens/s at the objective: the peak
keeps 3 × (20,000 / 40,000 + 2,000 / 2,500) = 3.9 GPUs busy, so rent 4. At $2.50 per GPU-hour that
is 4 × 2.50 × 8,760 = $87,600 a year. On average 1.3 GPUs are busy (utilisation 1.3 / 4 = 32.5 %),
so a busy GPU-second costs 4 × 2.50 / 3600 / 1.3 = $0.002137; an output token takes 1 / 2,500 s of
it, $0.855 per million; an input token 1 / 40,000 s, $0.0534 per million.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from infphys._check import fraction, positive, positive_int
from infphys.physics.roofline import GPULike, ModelLike, prefill_time, tokens_per_s_ceiling

__all__ = [
    "HOURS_PER_YEAR",
    "GpuThroughput",
    "OnPremGpuHour",
    "OnPremInputs",
    "TcoResult",
    "TokenLoad",
    "api_tco",
    "gpus_for_peak",
    "on_prem_tco",
    "on_prem_usd_per_gpu_hour",
    "rented_tco",
    "roofline_throughput",
]

#: Hours in a (non-leap) year.
HOURS_PER_YEAR = 8760.0
_SECONDS_PER_YEAR = HOURS_PER_YEAR * 3600.0


@dataclass(frozen=True, slots=True)
class TokenLoad:
    """The tokens a service must serve: yearly averages, and the peak as a multiple of them."""

    average_input_tokens_per_s: float
    average_output_tokens_per_s: float
    peak_to_average: float = 1.0

    def __post_init__(self) -> None:
        positive("average_input_tokens_per_s", self.average_input_tokens_per_s)
        positive("average_output_tokens_per_s", self.average_output_tokens_per_s)
        if not self.peak_to_average >= 1.0:
            raise ValueError(f"peak_to_average must be >= 1, got {self.peak_to_average!r}")


@dataclass(frozen=True, slots=True)
class GpuThroughput:
    """One GPU's rates: prefill (input tokens/s) and decode at the latency objective (output)."""

    input_tokens_per_s: float
    output_tokens_per_s: float

    def __post_init__(self) -> None:
        positive("input_tokens_per_s", self.input_tokens_per_s)
        positive("output_tokens_per_s", self.output_tokens_per_s)


def roofline_throughput(
    gpu: GPULike, model: ModelLike, *, prompt_tokens: int, users: int, context_tokens: int
) -> GpuThroughput:
    """One GPU's rates from the roofline, a starting point before anything is measured.

    Input: one prompt of ``prompt_tokens`` prefilled in one step (:func:`prefill_time`), so
    ``prompt_tokens / prefill_s``. Output: ``users`` sequences decoding together at
    ``context_tokens`` each (:func:`tokens_per_s_ceiling`), so choose ``users`` as the batch that
    still meets the latency objective (the SLO cap). Both at the kit's fitted efficiencies.
    Worked example: Llama-3.1-8B on an H100 prefills 1,024 tokens in 32.1 ms (31,873 tokens/s)
    and decodes 64 sequences at 1,152 tokens of context in 11.6 ms steps (5,518 tokens/s).

    >>> r = roofline_throughput("h100", "llama-3.1-8b", prompt_tokens=1024, users=64,
    ...                         context_tokens=1152)
    >>> round(r.input_tokens_per_s), round(r.output_tokens_per_s)
    (31873, 5518)
    """
    prefill_s = prefill_time(gpu, model, prompt_tokens).total_s
    _per_user, decode_tokens_per_s = tokens_per_s_ceiling(gpu, model, users, context_tokens)
    return GpuThroughput(prompt_tokens / prefill_s, decode_tokens_per_s)


@dataclass(frozen=True, slots=True)
class OnPremInputs:
    """What owning a server costs. Every figure is an input: prices differ by buyer and site."""

    server_price_usd: float
    gpus_per_server: int
    amortisation_years: float
    server_power_kw: float
    power_utilisation: float
    usd_per_kwh: float
    pue: float
    rack_units_per_server: float
    hosting_usd_per_rack_unit_year: float

    def __post_init__(self) -> None:
        positive("server_price_usd", self.server_price_usd)
        positive_int("gpus_per_server", self.gpus_per_server)
        positive("amortisation_years", self.amortisation_years)
        positive("server_power_kw", self.server_power_kw)
        fraction("power_utilisation", self.power_utilisation, allow_zero=True)
        positive("usd_per_kwh", self.usd_per_kwh)
        if not self.pue >= 1.0:
            raise ValueError(f"pue must be >= 1 (facility power / IT power), got {self.pue!r}")
        positive("rack_units_per_server", self.rack_units_per_server)
        positive("hosting_usd_per_rack_unit_year", self.hosting_usd_per_rack_unit_year)


@dataclass(frozen=True, slots=True)
class OnPremGpuHour:
    """An owned GPU's cost per hour, by part (US dollars)."""

    capital_usd: float
    power_usd: float
    hosting_usd: float

    @property
    def total_usd(self) -> float:
        """Capital + power + hosting per GPU-hour."""
        return self.capital_usd + self.power_usd + self.hosting_usd


@dataclass(frozen=True, slots=True)
class TcoResult:
    """A year of serving one :class:`TokenLoad` one way."""

    option: str
    gpus: int
    annual_usd: float
    usd_per_million_input: float
    usd_per_million_output: float
    average_utilisation: float


def on_prem_usd_per_gpu_hour(inputs: OnPremInputs) -> OnPremGpuHour:
    """What one owned GPU costs per hour of the year: write-off, power and hosting.

    Per server and year: price / years + kW × utilisation × 8,760 h × $/kWh × PUE + rack units
    × $ per rack unit; divided by GPUs per server and 8,760 h. Power is drawn every hour at the
    given average utilisation of the server's rated draw; financing, staff and support are left
    out (add them to the price).

    >>> example = OnPremInputs(300_000, 8, 4, 10.2, 0.6, 0.10, 1.4, 8, 500)
    >>> hour = on_prem_usd_per_gpu_hour(example)
    >>> round(hour.capital_usd, 4), round(hour.power_usd, 4), round(hour.total_usd, 4)
    (1.0702, 0.1071, 1.2344)
    """
    per_year_capital = inputs.server_price_usd / inputs.amortisation_years
    per_year_power = (
        inputs.server_power_kw
        * inputs.power_utilisation
        * HOURS_PER_YEAR
        * inputs.usd_per_kwh
        * inputs.pue
    )
    per_year_hosting = inputs.rack_units_per_server * inputs.hosting_usd_per_rack_unit_year
    per_gpu_hour = inputs.gpus_per_server * HOURS_PER_YEAR
    return OnPremGpuHour(
        capital_usd=per_year_capital / per_gpu_hour,
        power_usd=per_year_power / per_gpu_hour,
        hosting_usd=per_year_hosting / per_gpu_hour,
    )


def _busy_gpus(input_tps: float, output_tps: float, rates: GpuThroughput) -> float:
    return input_tps / rates.input_tokens_per_s + output_tps / rates.output_tokens_per_s


def gpus_for_peak(load: TokenLoad, rates: GpuThroughput, *, gpus_per_unit: int = 1) -> int:
    """GPUs that serve the peak load, bought or rented in whole units of ``gpus_per_unit``.

    >>> gpus_for_peak(TokenLoad(20_000, 2_000, 3), GpuThroughput(40_000, 2_500))  # 3.9 → 4
    4
    >>> gpus_for_peak(TokenLoad(20_000, 2_000, 3), GpuThroughput(40_000, 2_500), gpus_per_unit=8)
    8
    """
    unit = positive_int("gpus_per_unit", gpus_per_unit)
    peak = load.peak_to_average * _busy_gpus(
        load.average_input_tokens_per_s, load.average_output_tokens_per_s, rates
    )
    # A hair of slack so that 4.000000000001 busy GPUs (float noise) still rounds to 4.
    units = max(1, math.ceil(peak / unit - 1e-9))
    return units * unit


def _self_hosted(
    option: str, load: TokenLoad, rates: GpuThroughput, usd_per_gpu_hour: float, unit: int
) -> TcoResult:
    gpus = gpus_for_peak(load, rates, gpus_per_unit=unit)
    fleet_usd_per_s = gpus * usd_per_gpu_hour / 3600.0
    busy = _busy_gpus(load.average_input_tokens_per_s, load.average_output_tokens_per_s, rates)
    usd_per_busy_gpu_s = fleet_usd_per_s / busy
    return TcoResult(
        option=option,
        gpus=gpus,
        annual_usd=fleet_usd_per_s * _SECONDS_PER_YEAR,
        usd_per_million_input=usd_per_busy_gpu_s * 1e6 / rates.input_tokens_per_s,
        usd_per_million_output=usd_per_busy_gpu_s * 1e6 / rates.output_tokens_per_s,
        average_utilisation=busy / gpus,
    )


def rented_tco(load: TokenLoad, rates: GpuThroughput, usd_per_gpu_hour: float) -> TcoResult:
    """Cloud GPUs rented all year for the peak, priced per million input and output tokens.

    >>> r = rented_tco(TokenLoad(20_000, 2_000, 3), GpuThroughput(40_000, 2_500), 2.50)
    >>> r.gpus, r.annual_usd, round(r.usd_per_million_output, 3), round(r.usd_per_million_input, 4)
    (4, 87600.0, 0.855, 0.0534)
    """
    price = positive("usd_per_gpu_hour", usd_per_gpu_hour)
    return _self_hosted("cloud GPU-hours", load, rates, price, 1)


def on_prem_tco(load: TokenLoad, rates: GpuThroughput, inputs: OnPremInputs) -> TcoResult:
    """Owned servers bought for the peak (whole servers), priced per million tokens.

    >>> example = OnPremInputs(300_000, 8, 4, 10.2, 0.6, 0.10, 1.4, 8, 500)
    >>> r = on_prem_tco(TokenLoad(20_000, 2_000, 3), GpuThroughput(40_000, 2_500), example)
    >>> r.gpus, round(r.annual_usd), round(r.usd_per_million_output, 3)
    (8, 86506, 0.844)
    """
    hour = on_prem_usd_per_gpu_hour(inputs)
    return _self_hosted("on premises", load, rates, hour.total_usd, inputs.gpus_per_server)


def api_tco(
    load: TokenLoad, usd_per_million_input: float, usd_per_million_output: float
) -> TcoResult:
    """A per-token API: the average load's tokens at the list price, no GPUs, no peak sizing.

    >>> r = api_tco(TokenLoad(20_000, 2_000, 3), 0.10, 0.40)
    >>> round(r.annual_usd)  # 630,720 M input × 0.10 + 63,072 M output × 0.40
    88301
    """
    usd_in = positive("usd_per_million_input", usd_per_million_input)
    usd_out = positive("usd_per_million_output", usd_per_million_output)
    million_in = load.average_input_tokens_per_s * _SECONDS_PER_YEAR / 1e6
    million_out = load.average_output_tokens_per_s * _SECONDS_PER_YEAR / 1e6
    return TcoResult(
        option="per-token API",
        gpus=0,
        annual_usd=million_in * usd_in + million_out * usd_out,
        usd_per_million_input=usd_in,
        usd_per_million_output=usd_out,
        average_utilisation=float("nan"),
    )
