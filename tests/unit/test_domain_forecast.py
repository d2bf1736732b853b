"""Forecaster v1: persistence, clear-sky-index persistence, quantiles from its own errors."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from zapflow.domain.forecast import ForecastSettings, forecast_next_interval, household_from_meter
from zapflow.domain.models import PhaseValues, SitePowerSample

NOW = datetime(2026, 6, 17, 18, 0, tzinfo=UTC)  # local noon at the simulator's site


def _sky(at: datetime) -> float:
    """A smooth clear-sky shape: a sine over 06:00-18:00 local (12:00-24:00 UTC here)."""
    hours = (at - NOW.replace(hour=12)).total_seconds() / 3600
    return max(0.0, math.sin(math.pi * hours / 12)) * 6000


def _history(  # noqa: PLR0913 - one knob per property of the synthetic site
    hours: float,
    *,
    load_w: float = 400.0,
    noise_w: float = 0.0,
    pv_index: float = 0.5,
    seed: int = 1,
    step_s: int = 60,
    end: datetime = NOW,
) -> list[SitePowerSample]:
    rng = random.Random(seed)  # noqa: S311 - reproducible noise, not cryptography
    samples = []
    t = end - timedelta(hours=hours)
    while t < end:
        load = [max(0.0, load_w + rng.gauss(0, noise_w)) for _ in range(3)]
        samples.append(
            SitePowerSample(
                at=t, household_w=PhaseValues(l1=load[0], l2=load[1], l3=load[2]), pv_w=pv_index * _sky(t)
            )
        )
        t += timedelta(seconds=step_s)
    return samples


def test_steady_household_is_forecast_exactly() -> None:
    """A constant load per phase gives that load with a zero-width band once errors exist."""
    forecast = forecast_next_interval(_history(6), now=NOW, clear_sky=_sky)
    assert not forecast.cold_start
    # Intervals are (start, end]: the first sample, at exactly now - 6 h, closes a 25th interval.
    assert forecast.error_samples == 24
    for phase in forecast.household_w:
        assert phase.at(0.1) == pytest.approx(400.0)
        assert phase.at(0.9) == pytest.approx(400.0)


def test_clear_sky_index_carries_over() -> None:
    """PV at half of clear sky stays at half of the next interval's clear sky."""
    forecast = forecast_next_interval(_history(6), now=NOW, clear_sky=_sky)
    next_sky = sum(_sky(NOW + timedelta(seconds=90 + 180 * k)) for k in range(5)) / 5
    assert forecast.pv_w.at(0.5) == pytest.approx(0.5 * next_sky, rel=0.02)
    assert forecast.surplus_w.at(0.5) == pytest.approx(forecast.pv_w.at(0.5) - 1200.0, rel=0.02)


def test_cold_start_is_wide_and_flagged() -> None:
    """Two hours of history is too little: a conservative band, recorded as cold_start."""
    forecast = forecast_next_interval(_history(2), now=NOW, clear_sky=_sky)
    assert forecast.cold_start
    assert forecast.household_w[0].at(0.9) >= 400 * 1.5 + 1000
    assert forecast.pv_w.at(0.1) == 0.0
    assert forecast.surplus_w.at(0.1) < forecast.surplus_w.at(0.5)


def test_band_width_follows_the_errors() -> None:
    """A noisier household gets a wider band: the quantiles come from observed errors."""
    calm = forecast_next_interval(_history(24, noise_w=50, step_s=900), now=NOW, clear_sky=_sky)
    wild = forecast_next_interval(_history(24, noise_w=800, step_s=900), now=NOW, clear_sky=_sky)
    width = [f.household_w[0].at(0.9) - f.household_w[0].at(0.1) for f in (calm, wild)]
    assert width[1] > 5 * width[0] > 0


def test_only_history_up_to_now_is_read() -> None:
    """Samples after `now` (a clock skew, a replay) change nothing."""
    history = _history(6)
    future = SitePowerSample(
        at=NOW + timedelta(minutes=5), household_w=PhaseValues(l1=9e9, l2=9e9, l3=9e9), pv_w=0
    )
    assert forecast_next_interval([*history, future], now=NOW, clear_sky=_sky) == forecast_next_interval(
        history, now=NOW, clear_sky=_sky
    )


def test_night_pv_is_zero() -> None:
    """With the sun down PV is forecast as 0 whatever the index was."""
    night = NOW + timedelta(hours=7)
    forecast = forecast_next_interval(_history(10, end=night), now=night, clear_sky=_sky)
    assert not forecast.cold_start
    assert forecast.pv_w.at(0.9) == 0.0


def test_no_history_at_all() -> None:
    """An empty history is a cold start around zero, not an error."""
    forecast = forecast_next_interval([], now=NOW, clear_sky=_sky, settings=ForecastSettings())
    assert forecast.cold_start
    assert forecast.error_samples == 0
    assert forecast.household_w[0].at(0.9) == pytest.approx(1000.0)


def test_household_from_meter() -> None:
    """Household = grid import + PV - EV per phase, never negative."""
    household = household_from_meter(
        PhaseValues(l1=1000, l2=-500, l3=0), 3000, PhaseValues(l1=3680, l2=0, l3=0), pv_phases=3
    )
    assert household.as_tuple() == (0.0, 500.0, 1000.0)
    single = household_from_meter(
        PhaseValues(l1=0, l2=0, l3=0), 600, PhaseValues(l1=0, l2=0, l3=0), pv_phases=1
    )
    assert single.as_tuple() == (600.0, 0.0, 0.0)
