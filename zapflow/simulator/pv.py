"""Measured PV for the simulated site: NREL PVDAQ system 50, DST-corrected and replayed.

pvanalytics ships the measured AC power of PVDAQ system 50 (Golden, CO; 15-min, 2011-04-15 ..
2013-12-31). Its timestamps carry a fixed -07:00 offset, but the logger wrote local wall-clock time
and followed DST: the nonexistent spring-forward hour is NaN in the file and the daily curve jumps
an hour at every change. `load_pvdaq_system50()` reads the labels as America/Denver wall time and
converts them to UTC. Everything here is offline and deterministic.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from importlib import resources

import numpy as np
import numpy.typing as npt
import pandas as pd
from pvlib.location import Location

__all__ = [
    "PVDAQ50_LATITUDE_DEG",
    "PVDAQ50_LONGITUDE_DEG",
    "PVDAQ50_NOMINAL_W",
    "clear_sky_ghi",
    "load_pvdaq_system50",
    "replay_pv_day_w",
]

PVDAQ50_LATITUDE_DEG = 39.742
PVDAQ50_LONGITUDE_DEG = -105.179
PVDAQ50_NOMINAL_W = 3150.0
"""Nominal size of system 50 in W: the 99th percentile of its daily AC maxima over 2011-2013.

No nameplate ships with the data. The 99th percentile of daily maxima is 3,150 W (of clear days
only: 3,136 W; the absolute maximum, 3,368 W, is a cloud-edge spike). Taking that cold, clear
spring-noon output as the nominal size means a site scaled to `pv_kwp` peaks near `pv_kwp` on such
days and near 75 % of it in June: the array is steep (a pvlib PVWatts fit on clear days gives
~60 deg tilt, azimuth ~163 deg, facing slightly east of south, so it peaks ~40 min before noon).
"""

_TIMEZONE = "America/Denver"
_SAMPLE_S = 900
_MAX_FILLED_GAP_SAMPLES = 4
"""Gaps of up to one hour (four 15-min samples) are interpolated; longer ones stay missing."""
_NOISE_FLOOR_W = 1.0
"""Readings below this are 0: night readings are logger noise (99th percentile 0.16 W)."""
_DAY_MINUTES = 1440

FloatArray = npt.NDArray[np.float64]


@contextmanager
def _quiet_pvlib() -> Iterator[None]:
    """Silence the pandas deprecations pvlib triggers on pandas 3.1 (pytest turns them into errors)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"pvlib(\.|$)")
        yield


def clear_sky_ghi(latitude_deg: float, longitude_deg: float, times: pd.DatetimeIndex) -> pd.Series:
    """Clear-sky global horizontal irradiance in W/m2 (pvlib Ineichen, offline).

    Linke turbidity and site altitude come from the maps pvlib ships; `times` must be tz-aware.
    """
    location = Location(latitude_deg, longitude_deg)
    with _quiet_pvlib():
        clear_sky = location.get_clearsky(times, model="ineichen")
    ghi: pd.Series = clear_sky["ghi"]
    return ghi


def load_pvdaq_system50(*, corrected: bool = True) -> pd.Series:
    """Measured AC power of PVDAQ system 50 in W on a regular 15-min UTC index (a copy of a cache).

    `corrected=True` (the default) reads the labels as local wall time with DST, fills gaps of
    up to one hour by linear interpolation, leaves longer gaps NaN and sets readings under 1 W
    (night noise) to 0. `corrected=False` returns the file as shipped, its fixed -07:00 labels
    taken at face value (for tests of the correction). Each value is the mean over the 15 minutes
    after its label: samples labelled up to 1.5 deg before sunrise carry up to 107 W, which only an
    interval reaching past sunrise explains.
    """
    return _load(corrected=corrected).copy()


@functools.cache
def _load(*, corrected: bool) -> pd.Series:
    """Read the shipped Parquet once per flavour."""
    path = resources.files("pvanalytics") / "data" / "system_50_ac_power_2_full_DST.parquet"
    with resources.as_file(path) as file:
        frame = pd.read_parquet(file, columns=["measured_on", "ac_power_2"])
    labels = pd.DatetimeIndex(frame["measured_on"])
    power_w = frame["ac_power_2"].to_numpy(dtype=np.float64)
    if not corrected:
        return pd.Series(power_w, index=labels.tz_convert(UTC), name="ac_power_w")
    wall = labels.tz_localize(None)
    # Fall-back nights: the file holds one set of 01:00-01:45 samples; we read them as the first
    # (MDT) pass, so the second pass (08:00-08:45 UTC) is a one-hour gap that the gap filling
    # below closes with night zeros. Spring-forward nights: 02:00-02:45 never existed on the
    # logger's clock (they are NaN in the file); we drop them instead of guessing an offset.
    local = wall.tz_localize(_TIMEZONE, ambiguous=np.ones(len(wall), dtype=bool), nonexistent="NaT")
    keep = ~local.isna()
    series = pd.Series(power_w[keep], index=local[keep].tz_convert(UTC), name="ac_power_w")
    grid = pd.date_range(series.index[0], series.index[-1], freq=f"{_SAMPLE_S}s")
    values = _fill_short_gaps(series.reindex(grid).to_numpy(dtype=np.float64))
    values[values < _NOISE_FLOOR_W] = 0.0
    return pd.Series(values, index=grid, name="ac_power_w")


def _fill_short_gaps(values: FloatArray) -> FloatArray:
    """Linearly interpolate interior NaN runs of at most one hour; keep longer runs NaN."""
    missing = np.isnan(values)
    if not missing.any():
        return values
    positions = np.arange(len(values))
    filled = np.interp(positions, positions[~missing], values[~missing])
    starts = missing & ~np.concatenate(([False], missing[:-1]))
    run_id = np.cumsum(starts) * missing
    run_length = np.bincount(run_id)[run_id]
    # Runs touching either end have no right/left neighbour to interpolate from.
    edge_runs = {int(run_id[0]), int(run_id[-1])} - {0}
    too_long = missing & ((run_length > _MAX_FILLED_GAP_SAMPLES) | np.isin(run_id, list(edge_runs)))
    filled[too_long] = np.nan
    return filled


@functools.cache
def _samples() -> tuple[float, FloatArray]:
    """The corrected series as (first sample in UTC epoch seconds, read-only W array)."""
    series = _load(corrected=True)
    first_s = float(series.index[0].timestamp())
    values = series.to_numpy(dtype=np.float64).copy()
    values.setflags(write=False)
    return first_s, values


def replay_pv_day_w(
    day: date, *, source_day: date, anchor_day: date, longitude_deg: float, pv_kwp: float
) -> tuple[FloatArray, int]:
    """PV power in W at the start of each UTC minute of `day`, and the count of minutes without data.

    P_sim(t) = P_src(t - (anchor_day - source_day) + 4 min/deg x (longitude_deg - source longitude))
    x pv_kwp / nominal: whole days shift the calendar, the longitude term lines up solar noon
    (a site 1 deg east sees the same sun 4 min earlier). Latitude differences are knowingly ignored:
    day length and peak height are those of Golden, CO. P_src(t) interpolates linearly between
    the 15-min means placed at their interval centres (label + 7.5 min). Minutes whose source
    samples are missing (gaps over an hour, or outside 2011-04-15 .. 2013-12-31) are 0 W and counted.
    """
    first_s, values = _samples()
    day_start_s = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
    offset_s = (anchor_day - source_day).days * 86_400.0
    solar_shift_s = (longitude_deg - PVDAQ50_LONGITUDE_DEG) * 240.0
    source_s = day_start_s - offset_s + solar_shift_s + 60.0 * np.arange(_DAY_MINUTES)
    position = (source_s - first_s - _SAMPLE_S / 2) / _SAMPLE_S
    index = np.floor(position).astype(np.int64)
    fraction = position - index
    inside = (index >= 0) & (index + 1 < len(values))
    left = values[np.clip(index, 0, len(values) - 1)]
    right = values[np.clip(index + 1, 0, len(values) - 1)]
    # On a sample exactly, a missing neighbour must not poison the value.
    power_w = np.where(fraction == 0.0, left, left + fraction * (right - left))
    missing = ~inside | np.isnan(power_w)
    scaled_w = np.where(missing, 0.0, power_w) * (pv_kwp * 1000.0 / PVDAQ50_NOMINAL_W)
    return np.clip(scaled_w, 0.0, None), int(missing.sum())
