"""Forecaster v1: the next interval's household load per phase, PV and surplus, as quantiles.

Point forecasts: persistence of the last interval's mean load per phase, and clear-sky-index
persistence for PV (the last interval's PV over its clear-sky value, times the next interval's
clear-sky value; clear sky is computed outside the domain, e.g. with pvlib, and passed in as a
function). Quantiles: the point forecast plus the empirical quantiles of this same method's own
errors over past intervals of the history (never a constant band). With too few past errors
(cold start) a deliberately wide band is used and the forecast says so.

Only history up to `now` is read. Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise

from zapflow.domain.models import Forecast, PhaseValues, Quantiles, SitePowerSample

__all__ = [
    "QUANTILES",
    "ForecastSettings",
    "forecast_next_interval",
    "household_from_meter",
    "interval_means",
]

QUANTILES = (0.1, 0.5, 0.9)
PROVIDER = "persistence+csi/v1"
_MIN_CLEAR_SKY = 1e-3
"""Below this the sun is down: the clear-sky index is undefined and PV is forecast as 0."""


@dataclass(frozen=True)
class ForecastSettings:
    """Knobs of forecaster v1."""

    horizon_s: float = 900.0
    min_error_samples: int = 12
    """Fewer past errors than this is a cold start."""
    error_window: int = 672
    """How many of the most recent past intervals' errors to use (672 = one week of 15 min)."""
    max_clear_sky_index: float = 1.3
    cold_start_load_factor: float = 1.5
    cold_start_load_extra_w: float = 1000.0
    """Cold-start upper load per phase = point x factor + extra (a kettle's worth)."""


@dataclass(frozen=True)
class IntervalMean:
    """Mean household load per phase, PV and clear-sky value over one past interval."""

    household_w: tuple[float, float, float]
    pv_w: float
    clear_sky: float
    household_peak_w: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Highest sample per phase in the interval (minute means in: the peak minute)."""


def interval_means(
    history: Sequence[SitePowerSample],
    *,
    end: datetime,
    horizon_s: float,
    count: int,
    clear_sky: Callable[[datetime], float],
) -> list[IntervalMean | None]:
    """Means of the `count` intervals before `end` (oldest first); None where there is no data."""
    step = timedelta(seconds=horizon_s)
    start = end - count * step
    sums: list[list[float]] = [[0.0] * 5 for _ in range(count)]
    peaks: list[list[float]] = [[0.0] * 3 for _ in range(count)]
    for sample in history:
        # (start, end]: a reading taken at `end` (the tick's fresh one) is the newest evidence.
        if not start < sample.at <= end:
            continue
        index = math.ceil((sample.at - start) / step) - 1
        bucket = sums[index]
        for p, watts in enumerate(sample.household_w.as_tuple()):
            bucket[p] += watts
            peaks[index][p] = max(peaks[index][p], watts)
        bucket[3] += sample.pv_w
        bucket[4] += 1
    result: list[IntervalMean | None] = []
    for index, (l1, l2, l3, pv, n) in enumerate(sums):
        if n == 0:
            result.append(None)
            continue
        interval_start = start + index * step
        peak = peaks[index]
        result.append(
            IntervalMean(
                (l1 / n, l2 / n, l3 / n),
                pv / n,
                _mean_clear_sky(clear_sky, interval_start, step),
                (peak[0], peak[1], peak[2]),
            )
        )
    return result


def _mean_clear_sky(clear_sky: Callable[[datetime], float], start: datetime, step: timedelta) -> float:
    # Five points across the interval are plenty for a smooth clear-sky curve.
    return sum(clear_sky(start + step * (k + 0.5) / 5) for k in range(5)) / 5


def _point(
    last: IntervalMean, next_clear_sky: float, settings: ForecastSettings
) -> tuple[tuple[float, ...], float]:
    if last.clear_sky < _MIN_CLEAR_SKY or next_clear_sky < _MIN_CLEAR_SKY:
        pv = 0.0 if next_clear_sky < _MIN_CLEAR_SKY else last.pv_w
    else:
        index = min(max(last.pv_w / last.clear_sky, 0.0), settings.max_clear_sky_index)
        pv = index * next_clear_sky
    return last.household_w, pv


def _empirical(errors: Sequence[float], q: float) -> float:
    ordered = sorted(errors)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def forecast_next_interval(
    history: Sequence[SitePowerSample],
    *,
    now: datetime,
    clear_sky: Callable[[datetime], float],
    settings: ForecastSettings | None = None,
) -> Forecast:
    """Forecast [now, now + horizon) from `history` (samples after `now` are ignored)."""
    settings = settings or ForecastSettings()
    step = timedelta(seconds=settings.horizon_s)
    intervals = interval_means(
        history, end=now, horizon_s=settings.horizon_s, count=settings.error_window + 1, clear_sky=clear_sky
    )
    next_clear_sky = _mean_clear_sky(clear_sky, now, step)
    last = intervals[-1]
    if last is None:
        last = IntervalMean((0.0, 0.0, 0.0), 0.0, 0.0)
    load_point, pv_point = _point(last, next_clear_sky, settings)
    surplus_point = pv_point - sum(load_point)

    # The method's own errors: forecast each past interval from the one before it.
    load_errors: list[list[float]] = [[], [], []]
    peak_errors: list[list[float]] = [[], [], []]
    pv_errors: list[float] = []
    surplus_errors: list[float] = []
    for before, actual in pairwise(intervals):
        if before is None or actual is None:
            continue
        loads, pv = _point(before, actual.clear_sky, settings)
        for p in range(3):
            load_errors[p].append(actual.household_w[p] - loads[p])
            peak_errors[p].append(actual.household_peak_w[p] - before.household_peak_w[p])
        pv_errors.append(actual.pv_w - pv)
        surplus_errors.append((actual.pv_w - sum(actual.household_w)) - (pv - sum(loads)))

    samples = len(pv_errors)
    cold = samples < settings.min_error_samples
    if cold:
        households = tuple(_cold_load(load, settings) for load in load_point)
        peaks = tuple(_cold_load(peak, settings) for peak in last.household_peak_w)
        pv_upper = pv_point * 1.2 + 500.0 if pv_point > 0 else 0.0
        pv_q = Quantiles(values={0.1: 0.0, 0.5: pv_point, 0.9: pv_upper})
        upper_load = sum(h.at(0.9) for h in households)
        surplus_q = Quantiles(
            values={
                0.1: -upper_load,
                0.5: surplus_point,
                0.9: pv_q.at(0.9) - sum(h.at(0.1) for h in households),
            }
        )
    else:
        households = tuple(
            Quantiles(values={q: max(0.0, load_point[p] + _empirical(load_errors[p], q)) for q in QUANTILES})
            for p in range(3)
        )
        # The peak minute: persistence of the last interval's peak plus its own error quantiles.
        peaks = tuple(
            Quantiles(
                values={
                    q: max(0.0, last.household_peak_w[p] + _empirical(peak_errors[p], q)) for q in QUANTILES
                }
            )
            for p in range(3)
        )
        sun_up = next_clear_sky >= _MIN_CLEAR_SKY  # at night no error quantile makes PV
        pv_q = Quantiles(
            values={q: max(0.0, pv_point + _empirical(pv_errors, q)) * sun_up for q in QUANTILES}
        )
        surplus_q = Quantiles(values={q: surplus_point + _empirical(surplus_errors, q) for q in QUANTILES})
    return Forecast(
        issued_at=now,
        target_start=now,
        horizon_s=settings.horizon_s,
        provider=PROVIDER,
        household_w=(households[0], households[1], households[2]),
        pv_w=pv_q,
        surplus_w=surplus_q,
        cold_start=cold,
        error_samples=samples,
        household_peak_w=(peaks[0], peaks[1], peaks[2]),
    )


def _cold_load(load_w: float, settings: ForecastSettings) -> Quantiles:
    return Quantiles(
        values={
            0.1: load_w * 0.5,
            0.5: load_w,
            0.9: load_w * settings.cold_start_load_factor + settings.cold_start_load_extra_w,
        }
    )


def household_from_meter(
    grid_power_w: PhaseValues, pv_power_w: float, ev_power_w: PhaseValues, *, pv_phases: int = 3
) -> PhaseValues:
    """Household load per phase = grid import + PV - EV (never below zero)."""
    pv = (pv_power_w / 3,) * 3 if pv_phases == 3 else (pv_power_w, 0.0, 0.0)  # noqa: PLR2004
    values = [
        max(0.0, g + s - e)
        for g, s, e in zip(grid_power_w.as_tuple(), pv, ev_power_w.as_tuple(), strict=True)
    ]
    return PhaseValues(l1=values[0], l2=values[1], l3=values[2])
