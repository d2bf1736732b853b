"""The simulated site: DST-corrected measured PV, its replay, and the household load model."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from pvlib.irradiance import get_total_irradiance
from pvlib.location import Location
from pvlib.solarposition import equation_of_time_spencer71

from zapflow.simulator.site import (
    PVDAQ50_LATITUDE_DEG,
    PVDAQ50_LONGITUDE_DEG,
    PVDAQ50_NOMINAL_W,
    ApplianceEvent,
    Site,
    SiteConfig,
    SiteDay,
    clear_sky_ghi,
    load_pvdaq_system50,
)

FloatArray = npt.NDArray[np.float64]

MST = "Etc/GMT+7"
"""Mountain standard time all year: the frame in which the uncorrected labels are read."""
DST_CHANGES = (date(2011, 11, 6), date(2012, 3, 11), date(2012, 11, 4), date(2013, 3, 10), date(2013, 11, 3))
WINDOW_DAYS = 35
"""Clear days are looked for this far either side of a change (February 2013 had only three)."""
ARRAY_TILT_DEG = 60.0
ARRAY_AZIMUTH_DEG = 163.0
"""System 50's orientation, from a pvlib PVWatts fit on its clear days (see `pv.py`)."""
DAY = date(2026, 6, 21)


@contextmanager
def quiet_pvlib() -> Iterator[None]:
    """Silence pvlib's calls of deprecated pandas APIs (pytest makes warnings errors)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"pvlib(\.|$)")
        yield


def local(day: date, hour: float, zone: str = "America/Denver") -> datetime:
    """An aware local wall-clock time."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zone))
    return midnight + timedelta(hours=hour)


# -- DST correction -----------------------------------------------------------------------------


def mst_days(series: pd.Series, first: date, days: int) -> FloatArray:
    """The series as a (days, 96) matrix of MST days starting at `first`."""
    start = pd.Timestamp(first).tz_localize(MST)
    grid = pd.date_range(start, periods=days * 96, freq="15min")
    matrix: FloatArray = series.reindex(grid).to_numpy(dtype=np.float64).reshape(days, 96)
    return matrix


def peak_centre_min(power: FloatArray) -> float:
    """Centre of the daily peak in minutes after midnight: midpoint of the half-maximum crossings.

    Robust where the argmax is not: the top of a clear-day curve is a flat, noisy plateau.
    """
    half = power.max() / 2
    above = np.nonzero(power >= half)[0]
    rise, fall = int(above[0]), int(above[-1])
    rise_at = rise - 1 + (half - power[rise - 1]) / (power[rise] - power[rise - 1])
    fall_at = fall + (power[fall] - half) / (power[fall] - power[fall + 1])
    return float((rise_at + fall_at) / 2 * 15)


def clear_day_mask(matrix: FloatArray) -> npt.NDArray[np.bool_]:
    """Clear days: complete, unimodal (total variation = 2 x peak) and near the fortnight's best energy."""
    complete = ~np.isnan(matrix).any(axis=1) & (np.nanmax(matrix, axis=1) > 0)
    filled = np.nan_to_num(matrix)
    peak = np.maximum(filled.max(axis=1), 1.0)
    smooth = np.abs(np.diff(filled, axis=1)).sum(axis=1) / (2 * peak) <= 1.1
    energy = filled.sum(axis=1)
    best_nearby = pd.Series(energy).rolling(15, center=True, min_periods=1).max().to_numpy()
    mask: npt.NDArray[np.bool_] = complete & smooth & (energy >= 0.8 * best_nearby)
    return mask


def modelled_peak_centre_min(day: date) -> float:
    """Where pvlib's clear sky puts the peak centre of system 50's array, in minutes after MST midnight."""
    times = pd.date_range(pd.Timestamp(day).tz_localize(MST), periods=96, freq="15min")
    site = Location(PVDAQ50_LATITUDE_DEG, PVDAQ50_LONGITUDE_DEG)
    with quiet_pvlib():
        sun = site.get_solarposition(times)
        sky = site.get_clearsky(times, solar_position=sun)
        poa = get_total_irradiance(
            ARRAY_TILT_DEG,
            ARRAY_AZIMUTH_DEG,
            sun["apparent_zenith"],
            sun["azimuth"],
            sky["dni"],
            sky["ghi"],
            sky["dhi"],
        )
    return peak_centre_min(poa["poa_global"].to_numpy(dtype=np.float64))


def solar_noon_mst_min(day: date) -> float:
    """Solar noon in minutes after MST midnight at the PVDAQ site (equation of time)."""
    equation_of_time_min = float(equation_of_time_spencer71(day.timetuple().tm_yday))
    return 720.0 - 4.0 * (PVDAQ50_LONGITUDE_DEG + 105.0) - equation_of_time_min


def peak_error_min(change: date, *, corrected: bool) -> tuple[float, float]:
    """Median (measured - modelled) peak centre on clear days (before, after) a DST change, in minutes.

    Clear days are picked on the corrected series for both flavours, so both are judged on the same days.
    """
    first = change - timedelta(days=WINDOW_DAYS)
    days = 2 * WINDOW_DAYS + 1
    clear = clear_day_mask(mst_days(load_pvdaq_system50(), first, days))
    measured = mst_days(load_pvdaq_system50(corrected=corrected), first, days)
    sides: dict[bool, list[float]] = {True: [], False: []}
    for index in np.nonzero(clear)[0]:
        day = first + timedelta(days=int(index))
        if day != change and not np.isnan(measured[index]).any():
            error = peak_centre_min(measured[index]) - modelled_peak_centre_min(day)
            sides[day < change].append(error)
    assert min(len(sides[True]), len(sides[False])) >= 3, "too few clear days to judge"
    return float(np.median(sides[True])), float(np.median(sides[False]))


def is_dst_side(change: date, *, before: bool) -> bool:
    """Spring changes start DST, autumn changes end it."""
    spring = change.month < 7
    return spring != before


@pytest.mark.parametrize("change", DST_CHANGES, ids=[f"change-{c.isoformat()}" for c in DST_CHANGES])
def test_corrected_peak_follows_the_sun_on_both_sides_of_a_dst_change(change: date) -> None:
    """After correction, clear-day peaks sit within 20 min of pvlib's clear-sky peak before and after."""
    before, after = peak_error_min(change, corrected=True)
    assert abs(before) <= 20
    assert abs(after) <= 20


@pytest.mark.parametrize("change", DST_CHANGES, ids=[f"change-{c.isoformat()}" for c in DST_CHANGES])
def test_uncorrected_peak_is_an_hour_late_on_the_dst_side(change: date) -> None:
    """The labels as shipped fail the same check on the DST side only (by about an hour)."""
    before, after = peak_error_min(change, corrected=False)
    dst_error, standard_error = (before, after) if is_dst_side(change, before=True) else (after, before)
    assert abs(standard_error) <= 20
    assert 40 <= dst_error <= 80


def test_array_peaks_before_solar_noon_and_clear_sky_ghi_at_it() -> None:
    """The peak-centre estimator finds solar noon in clear-sky GHI; the SSE-facing array peaks earlier."""
    day = date(2012, 6, 21)
    times = pd.date_range(pd.Timestamp(day).tz_localize(MST), periods=96, freq="15min")
    ghi = clear_sky_ghi(PVDAQ50_LATITUDE_DEG, PVDAQ50_LONGITUDE_DEG, times).to_numpy(dtype=np.float64)
    assert abs(peak_centre_min(ghi) - solar_noon_mst_min(day)) <= 3
    assert -60 <= modelled_peak_centre_min(day) - solar_noon_mst_min(day) <= -20


def test_corrected_series_is_regular_utc_with_night_gaps_closed() -> None:
    """15-min UTC grid; the fall-back night's missing hour is interpolated, spring-forward is seamless."""
    series = load_pvdaq_system50()
    assert str(series.index.tz) == "UTC"
    assert (series.index[1:] - series.index[:-1] == pd.Timedelta(minutes=15)).all()
    assert series.min() >= 0
    fall_back = series["2012-11-04 07:00":"2012-11-04 09:00"]
    spring_forward = series["2012-03-11 08:00":"2012-03-11 10:00"]
    assert not fall_back.isna().any()
    assert not spring_forward.isna().any()


def test_nominal_size_is_the_99th_percentile_of_daily_peaks() -> None:
    """The documented nominal size is reproducible from the data."""
    daily_peak_w = load_pvdaq_system50().resample("D").max().dropna()
    assert np.percentile(daily_peak_w, 99) == pytest.approx(PVDAQ50_NOMINAL_W, rel=0.01)


# -- PV replay ----------------------------------------------------------------------------------


def source_power_w(at: pd.Timestamp) -> float:
    """Source power at a quarter-hour: the mean of the intervals ending and starting there."""
    series = load_pvdaq_system50()
    return float((series[at - pd.Timedelta(minutes=15)] + series[at]) / 2)


@pytest.mark.parametrize(
    ("longitude_deg", "source_shift_min"),
    [(PVDAQ50_LONGITUDE_DEG, 0), (PVDAQ50_LONGITUDE_DEG + 3.75, 15), (PVDAQ50_LONGITUDE_DEG - 7.5, -30)],
    ids=["same-longitude", "3.75-deg-east", "7.5-deg-west"],
)
def test_noon_replays_the_source_day_at_the_same_solar_time(
    longitude_deg: float, source_shift_min: int
) -> None:
    """PV at 12:00 local on the anchor day is the scaled source power at the same solar time."""
    site = Site(SiteConfig(longitude_deg=longitude_deg, pv_kwp=8.0))
    at = local(DAY, 12)
    source_at = pd.Timestamp(local(date(2012, 6, 21), 12) + timedelta(minutes=source_shift_min))
    expected_w = source_power_w(source_at) * 8000.0 / PVDAQ50_NOMINAL_W
    assert expected_w > 1000
    assert site.pv_power_w(at) == pytest.approx(expected_w, rel=1e-9)


@pytest.mark.parametrize(
    "day", [DAY, date(2026, 12, 21), date(2026, 3, 8)], ids=["midsummer", "midwinter", "spring-forward"]
)
def test_pv_is_zero_at_night_and_never_negative(day: date) -> None:
    """Between local midnight and 03:00 there is no PV; no minute is negative."""
    site = Site(SiteConfig())
    assert all(site.pv_power_w(local(day, hour)) == 0 for hour in (0, 1, 2.5, 3))
    assert (site.day(day).pv_w >= 0).all()
    assert site.day(day).pv_w.max() > 0


def test_pv_scales_linearly_with_kwp() -> None:
    """Doubling pv_kwp doubles every minute; zero kWp is no PV."""
    base = Site(SiteConfig(pv_kwp=4.0)).day(DAY).pv_w
    np.testing.assert_allclose(Site(SiteConfig(pv_kwp=8.0)).day(DAY).pv_w, 2 * base)
    assert not Site(SiteConfig(pv_kwp=0.0)).day(DAY).pv_w.any()


def centroid_min(site: Site) -> float:
    """Energy-weighted mean minute of the PV day around DAY (local midnight to midnight, in UTC minutes)."""
    minutes = np.concatenate([site.day(DAY).pv_w, site.day(DAY + timedelta(days=1)).pv_w])[6 * 60 : 30 * 60]
    return float((minutes * np.arange(len(minutes))).sum() / minutes.sum())


@pytest.mark.parametrize(
    ("degrees_east", "expected_shift_min"),
    [(10.0, -40.0), (-5.0, 20.0), (2.5, -10.0)],
    ids=["10-east", "5-west", "2.5-east"],
)
def test_longitude_shift_moves_the_curve_4_min_per_degree(
    degrees_east: float, expected_shift_min: float
) -> None:
    """A site further east sees the same sun earlier in UTC: 4 min per degree."""
    reference = centroid_min(Site(SiteConfig()))
    shifted = centroid_min(Site(SiteConfig(longitude_deg=PVDAQ50_LONGITUDE_DEG + degrees_east)))
    assert shifted - reference == pytest.approx(expected_shift_min, abs=0.5)


def test_later_days_follow_consecutively_in_the_source() -> None:
    """The day after the anchor replays the day after the source day."""
    site = Site(SiteConfig())
    source_w = source_power_w(pd.Timestamp("2012-06-22 18:00", tz=UTC))
    assert site.pv_power_w(datetime(2026, 6, 22, 18, tzinfo=UTC)) == pytest.approx(
        source_w * 8000 / PVDAQ50_NOMINAL_W
    )


@pytest.mark.parametrize(
    ("source_day", "at_least_missing"),
    [(date(2012, 12, 12), 1000), (date(2010, 6, 21), 1440), (date(2014, 6, 21), 1440)],
    ids=["logger-outage", "before-the-data", "after-the-data"],
)
def test_missing_source_data_is_zero_and_counted(source_day: date, at_least_missing: int) -> None:
    """Gaps longer than an hour, and days outside the data, give 0 W and a missing-minute count."""
    site_day = Site(SiteConfig(pv_source_day=source_day, sim_anchor_day=source_day)).day(source_day)
    assert site_day.missing_pv_minutes >= at_least_missing
    assert site_day.pv_w[19 * 60] == 0  # local noon


def test_complete_day_has_no_missing_minutes() -> None:
    """The default midsummer replay is backed by data throughout."""
    assert Site(SiteConfig()).day(DAY).missing_pv_minutes == 0


def test_pv_interpolates_between_minutes_across_midnight() -> None:
    """Half a minute in is the mean of two minute values, also from the last minute into the next day."""
    site = Site(SiteConfig(longitude_deg=PVDAQ50_LONGITUDE_DEG + 270))  # 164.8 E: daylight at 00:00 UTC
    today, tomorrow = site.day(DAY), site.day(DAY + timedelta(days=1))
    at_1200 = datetime(2026, 6, 21, 12, 0, 30, tzinfo=UTC)
    assert site.pv_power_w(at_1200) == pytest.approx((today.pv_w[720] + today.pv_w[721]) / 2)
    last = datetime(2026, 6, 21, 23, 59, 30, tzinfo=UTC)
    assert today.pv_w[1439] > 0
    assert site.pv_power_w(last) == pytest.approx((today.pv_w[1439] + tomorrow.pv_w[0]) / 2)


def test_naive_times_are_refused() -> None:
    """Every datetime in zapflow is aware; a naive one is a bug upstream."""
    with pytest.raises(ValueError, match="timezone-aware"):
        Site(SiteConfig()).pv_power_w(datetime(2026, 6, 21, 12))  # noqa: DTZ001 - the point of the test


# -- household ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("annual_kwh", "zone"),
    [(4500.0, "America/Denver"), (2000.0, "Europe/Oslo"), (6500.0, "Australia/Sydney")],
    ids=["4500-denver", "2000-oslo", "6500-sydney"],
)
def test_base_profile_sums_to_the_annual_energy(annual_kwh: float, zone: str) -> None:
    """A year of UTC days without appliances carries annual_household_kwh within 1 %."""
    site = Site(SiteConfig(annual_household_kwh=annual_kwh, timezone=zone, appliances=False))
    total_kwh = (
        sum(site.day(date(2026, 1, 1) + timedelta(days=i)).household_w.sum() for i in range(365)) / 60_000
    )
    assert total_kwh == pytest.approx(annual_kwh, rel=0.01)


def test_base_profile_is_split_over_phases_by_phase_split() -> None:
    """Without appliances every minute is split exactly by phase_split."""
    split = (0.5, 0.3, 0.2)
    load_w = Site(SiteConfig(phase_split=split, appliances=False)).day(DAY).household_w
    np.testing.assert_allclose(load_w / load_w.sum(axis=1, keepdims=True), np.tile(split, (1440, 1)))


def test_base_profile_follows_local_time() -> None:
    """The same profile in a zone 8 hours east runs 8 hours earlier in UTC (DST in both)."""
    denver = Site(SiteConfig(appliances=False)).day(DAY).household_w.sum(axis=1)
    oslo = Site(SiteConfig(appliances=False, timezone="Europe/Oslo")).day(DAY).household_w.sum(axis=1)
    # rtol: each zone rescales its own local year, whose DST days fall on other dates.
    np.testing.assert_allclose(np.roll(oslo, 8 * 60)[8 * 60 :], denver[8 * 60 :], rtol=1e-3)


def test_same_seed_gives_the_same_day() -> None:
    """Two sites with one seed build identical arrays and events."""
    first, second = Site(SiteConfig(seed=7)).day(DAY), Site(SiteConfig(seed=7)).day(DAY)
    np.testing.assert_array_equal(first.household_w, second.household_w)
    np.testing.assert_array_equal(first.pv_w, second.pv_w)
    assert first.appliance_events == second.appliance_events


def test_different_seed_gives_a_different_appliance_layer() -> None:
    """Another seed is another home: other events, other load, the same PV."""
    first, second = Site(SiteConfig(seed=1)).day(DAY), Site(SiteConfig(seed=2)).day(DAY)
    assert first.appliance_events != second.appliance_events
    assert not np.array_equal(first.household_w, second.household_w)
    np.testing.assert_array_equal(first.pv_w, second.pv_w)


def rasterise(events: tuple[ApplianceEvent, ...], day: date) -> FloatArray:
    """Per-phase W per UTC minute of the given events (test's own, independent rasteriser)."""
    load_w = np.zeros((1440, 3))
    day_start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    for event in events:
        for minute in range(int(event.duration_s // 60)):
            index = int((event.start - day_start).total_seconds() // 60) + minute
            if 0 <= index < 1440:
                load_w[index] += event.power_w_per_phase
    return load_w


@pytest.mark.parametrize(
    "day", [DAY, date(2026, 1, 14), date(2026, 11, 1)], ids=["summer", "winter-heat-pump", "fall-back-day"]
)
def test_appliance_power_appears_on_the_phases_it_claims(day: date) -> None:
    """Load minus the listed events is the base profile: non-negative and split exactly by phase_split."""
    config = SiteConfig(seed=3)
    site_day = Site(config).day(day)
    residual_w = site_day.household_w - rasterise(site_day.appliance_events, day)
    assert residual_w.min() >= -1e-9
    np.testing.assert_allclose(
        residual_w / residual_w.sum(axis=1, keepdims=True), np.tile(config.phase_split, (1440, 1)), atol=1e-9
    )


def test_appliance_events_claim_the_documented_phases() -> None:
    """Kettle and fridge on L1, washer on L2, dishwasher on L3, hob on L2+L3, oven and heat pump on all."""
    events = [
        event
        for i in range(14)
        for event in Site(SiteConfig(seed=5)).day(DAY + timedelta(days=i)).appliance_events
    ]
    used = {(event.name, tuple(power > 0 for power in event.power_w_per_phase)) for event in events}
    expected = {
        ("fridge", (True, False, False)),
        ("kettle", (True, False, False)),
        ("washing_machine", (False, True, False)),
        ("dishwasher", (False, False, True)),
        ("induction_hob", (False, True, True)),
        ("oven", (True, True, True)),
        ("heat_pump", (True, True, True)),
    }
    assert used == expected


@pytest.mark.parametrize(
    "zone", ["America/Denver", "Europe/Oslo", "Asia/Kolkata"], ids=["denver", "oslo", "kolkata-half-hour"]
)
def test_kettle_runs_in_local_breakfast_and_evening_windows(zone: str) -> None:
    """Appliance times are local: every kettle run starts inside one of its local windows."""
    site = Site(SiteConfig(timezone=zone, seed=11))
    starts = {
        event.start.astimezone(ZoneInfo(zone))
        for i in range(10)
        for event in site.day(DAY + timedelta(days=i)).appliance_events
        if event.name == "kettle"
    }
    windows = ((6.5, 8.5), (12.0, 13.5), (15.0, 17.0), (19.0, 22.0))
    assert len(starts) >= 10
    for start in starts:
        hour = start.hour + start.minute / 60
        assert any(first <= hour <= last for first, last in windows), start


@pytest.mark.parametrize(
    ("zone", "day"),
    [
        ("America/Denver", date(2026, 3, 8)),
        ("America/Denver", date(2026, 11, 1)),
        ("Europe/Oslo", date(2026, 3, 29)),
        ("Australia/Sydney", date(2026, 4, 5)),
        ("America/Denver", date(2026, 12, 31)),
    ],
    ids=["denver-spring-forward", "denver-fall-back", "oslo-spring-forward", "sydney-fall-back", "new-year"],
)
def test_household_is_positive_and_complete_on_awkward_days(zone: str, day: date) -> None:
    """DST days and the year boundary give a full, finite, non-negative day."""
    site_day = Site(SiteConfig(timezone=zone)).day(day)
    assert site_day.household_w.shape == (1440, 3)
    assert np.isfinite(site_day.household_w).all()
    assert site_day.household_w.min(axis=0).min() > 0


def test_appliances_keep_the_homes_energy_except_the_heat_pump() -> None:
    """Over a year the layer moves energy around: the total without the heat pump stays within 3 %."""
    days = [date(2026, 1, 1) + timedelta(days=i) for i in range(365)]
    with_layer, without = Site(SiteConfig(seed=4)), Site(SiteConfig(seed=4, appliances=False))
    heat_pump_kwh = 0.0
    layer_kwh = 0.0
    for day in days:
        site_day = with_layer.day(day)
        layer_kwh += site_day.household_w.sum() / 60_000
        pump = tuple(event for event in site_day.appliance_events if event.name == "heat_pump")
        heat_pump_kwh += rasterise(pump, day).sum() / 60_000
    base_kwh = sum(without.day(day).household_w.sum() for day in days) / 60_000
    assert layer_kwh - heat_pump_kwh == pytest.approx(base_kwh, rel=0.03)


def test_heat_pump_works_harder_in_winter() -> None:
    """Heat pump energy per day in January is several times its June (hot water only) energy."""

    def heat_pump_kwh(first: date) -> float:
        site = Site(SiteConfig(seed=9))
        days = [first + timedelta(days=i) for i in range(7)]
        return sum(
            float(rasterise(tuple(e for e in site.day(d).appliance_events if e.name == "heat_pump"), d).sum())
            / 60_000
            for d in days
        )

    assert heat_pump_kwh(date(2026, 1, 10)) > 5 * heat_pump_kwh(date(2026, 6, 10))


@pytest.mark.parametrize(
    ("appliances", "low", "high"),
    [(False, 0.0, 0.05), (True, 0.25, 0.7)],
    ids=["smooth-bdew", "with-appliances"],
)
def test_single_home_persistence_error_is_realistic(appliances: bool, low: float, high: float) -> None:
    """15-min persistence nMAE: ~2 % for the smooth profile, tens of % (real homes ~40 %) with appliances."""
    site = Site(SiteConfig(appliances=appliances, seed=2))
    load_w = np.concatenate([site.day(DAY + timedelta(days=i)).household_w.sum(axis=1) for i in range(14)])
    quarter_hour_w = load_w.reshape(-1, 15).mean(axis=1)
    nmae = np.abs(np.diff(quarter_hour_w)).mean() / quarter_hour_w.mean()
    assert low <= nmae <= high


def test_household_power_reads_the_minute_value() -> None:
    """The instantaneous reading is the value of the minute holding `at`, any zone given."""
    site = Site(SiteConfig())
    site_day = site.day(DAY)
    at = local(DAY, 12.5).replace(second=40)
    minute = (at.astimezone(UTC).hour * 60) + at.astimezone(UTC).minute
    assert site.household_power_w(at) == tuple(site_day.household_w[minute])
    assert all(value >= 0 for value in site.household_power_w(at))


# -- the site object ----------------------------------------------------------------------------


def test_days_are_cached_and_read_only() -> None:
    """A day is built once; its arrays cannot be changed by a caller."""
    site = Site(SiteConfig())
    site_day = site.day(DAY)
    assert site.day(DAY) is site_day
    assert isinstance(site_day, SiteDay)
    assert site_day.pv_w.shape == (1440,)
    with pytest.raises(ValueError, match="read-only"):
        site_day.pv_w[0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        site_day.household_w[0, 0] = 1.0


@pytest.mark.parametrize(
    "changes",
    [
        {"phase_split": (0.5, 0.5, 0.5)},
        {"phase_split": (1.2, -0.1, -0.1)},
        {"pv_phases": 2},
        {"pv_kwp": -1.0},
        {"timezone": "Mars/Olympus_Mons"},
    ],
    ids=["split-over-1", "negative-share", "two-phases", "negative-kwp", "unknown-zone"],
)
def test_nonsense_configs_are_refused(changes: dict[str, Any]) -> None:
    """A config that cannot describe a real home fails at construction."""
    with pytest.raises(ValueError, match=r"pv_|phase_split|timezone"):
        replace(SiteConfig(), **changes)
