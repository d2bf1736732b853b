"""Household load for the simulated site: the BDEW H25 shape per phase plus seeded appliances.

The smooth H25 standard profile (demandlib, 15-min, evaluated in the site's local time) gives the
annual energy and the average daily shape. Alone it understates a single home's 15-minute
variability by an order of magnitude, so an optional appliance layer switches real appliances on
and off: kettle, oven, induction hob, washing machine, dishwasher, fridge and a heat pump. The
layer replaces the share of the annual energy that these appliances (heat pump excepted) stand
for in the average profile, so a year still sums to about `annual_kwh` (summer days carry a
little more than H25, winter days less); the heat pump comes on top, as BDEW profiles heat pumps
separately from H25 homes.
"""

from __future__ import annotations

import functools
import math
import random
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pandas as pd
from demandlib import bdew

__all__ = ["ApplianceEvent", "household_day_w"]

FloatArray = npt.NDArray[np.float64]
Phases = tuple[float, float, float]

_DAY_MINUTES = 1440
_SLOT_S = 900
_H25_SLOT_H = 0.25
_MIN_BASE_SHARE = 0.25
"""The appliance layer never takes more than 75 % of the profile: the rest is lighting, IT, standby."""
_ON_TOP = frozenset({"heat_pump"})
"""Appliances whose energy comes on top of `annual_kwh` instead of out of the BDEW profile."""


@dataclass(frozen=True)
class ApplianceEvent:
    """One appliance run: UTC start, whole-minute duration in s, constant power per phase in W."""

    name: str
    start: datetime
    duration_s: float
    power_w_per_phase: tuple[float, float, float]

    @property
    def end(self) -> datetime:
        """When the run stops (UTC)."""
        return self.start + timedelta(seconds=self.duration_s)

    @property
    def energy_kwh(self) -> float:
        """Energy of the run over all phases in kWh."""
        return sum(self.power_w_per_phase) * self.duration_s / 3.6e6


def household_day_w(  # noqa: PLR0913 - keyword-only, one per site parameter
    day: date,
    *,
    timezone: str,
    latitude_deg: float,
    annual_kwh: float,
    phase_split: Phases,
    appliances: bool,
    seed: int,
) -> tuple[FloatArray, tuple[ApplianceEvent, ...]]:
    """Household power in W per phase for each UTC minute of `day` (shape (1440, 3)), and its events.

    Each minute holds the mean power over that minute; appliance runs start and stop on whole
    minutes, so they appear at their exact power. Events are those overlapping the UTC day.
    """
    day_start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    base_w = _base_day_w(day_start, timezone) * annual_kwh
    if not appliances:
        return np.outer(base_w, phase_split), ()
    share = 1.0
    if annual_kwh > 0:
        share = max(_MIN_BASE_SHARE, 1.0 - _discretionary_kwh_per_day() * 365.25 / annual_kwh)
    load_w = np.outer(base_w * share, phase_split)
    events = _events_overlapping(day_start, timezone, southern=latitude_deg < 0, seed=seed)
    for event in events:
        first = math.floor((event.start - day_start).total_seconds() / 60)
        last = first + round(event.duration_s / 60)
        load_w[max(first, 0) : min(last, _DAY_MINUTES)] += event.power_w_per_phase
    return load_w, events


# -- the BDEW H25 base ------------------------------------------------------------------------


@contextmanager
def _quiet_demandlib() -> Iterator[None]:
    """Silence the `inplace=` deprecations demandlib triggers on pandas 3.1 (pytest makes them errors)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"demandlib(\.|$)")
        yield


def _base_day_w(day_start: datetime, timezone: str) -> FloatArray:
    """H25 in W per UTC minute of the day, for a home using 1 kWh per (local) year."""
    minutes_s = day_start.timestamp() + 60.0 * np.arange(_DAY_MINUTES)
    zone = ZoneInfo(timezone)
    first_year = datetime.fromtimestamp(minutes_s[0], zone).year
    last_year = datetime.fromtimestamp(minutes_s[-1], zone).year
    base_w = np.zeros(_DAY_MINUTES)
    for year in range(first_year, last_year + 1):
        start_s, year_w = _h25_year(year, timezone)
        slot = np.floor((minutes_s - start_s) / _SLOT_S).astype(np.int64)
        inside = (slot >= 0) & (slot < len(year_w))
        base_w[inside] = year_w[slot[inside]]
    return base_w


@functools.lru_cache(maxsize=32)
def _h25_year(year: int, timezone: str) -> tuple[float, FloatArray]:
    """H25 over one local calendar year: (start in UTC epoch s, W per 15-min slot for 1 kWh/year).

    The slots are consecutive in absolute time (92 on a spring-forward day, 100 on a fall-back
    day), each valued by its local wall-clock time. No public holidays are set: Sundays only.
    """
    start = pd.Timestamp(year=year, month=1, day=1).tz_localize(timezone, nonexistent="shift_forward")
    end = pd.Timestamp(year=year + 1, month=1, day=1).tz_localize(timezone, nonexistent="shift_forward")
    index = pd.date_range(start, end, freq=f"{_SLOT_S}s", inclusive="left")
    with _quiet_demandlib():
        profile_kw = bdew.H25(index).to_numpy(dtype=np.float64)
    # Rescale so each local year sums to exactly 1 kWh (H25 itself gives ~995,000 kWh).
    year_w = profile_kw / (profile_kw.sum() * _H25_SLOT_H) * 1000.0
    year_w.setflags(write=False)
    return float(start.timestamp()), year_w


# -- the appliance layer ----------------------------------------------------------------------

_L1: Phases = (1.0, 0.0, 0.0)
_L2: Phases = (0.0, 1.0, 0.0)
_L3: Phases = (0.0, 0.0, 1.0)
_L23: Phases = (0.0, 0.5, 0.5)
_L123: Phases = (1 / 3, 1 / 3, 1 / 3)

_FRIDGE_W = 100.0
_KETTLE_W = 2000.0
_OVEN_W = 3400.0
_HOB_W = 3700.0
_HEATER_W = 2000.0
_KETTLE_USES = ((6.5, 8.5, 2, 0.8), (12.0, 13.5, 1, 0.3), (15.0, 17.0, 1, 0.4), (19.0, 22.0, 2, 0.4))
"""(window start h, window end h, tries, probability per try) in local time."""


class _Planner:
    """Collects one local day's runs; turns local wall-clock hours into UTC."""

    def __init__(self, local_day: date, zone: ZoneInfo, rng: random.Random) -> None:
        self.rng = rng
        self.local_day = local_day
        self.midnight = datetime.combine(local_day, time(), tzinfo=zone)
        self.end = datetime.combine(local_day + timedelta(days=1), time(), tzinfo=zone).astimezone(UTC)
        self.events: list[ApplianceEvent] = []

    def at(self, hour: float) -> datetime:
        """UTC instant of a local wall-clock hour, on a whole minute."""
        # Aware + timedelta is wall-clock arithmetic, so 07:00 stays 07:00 on DST days.
        return (self.midnight + timedelta(minutes=round(hour * 60))).astimezone(UTC)

    def start_in(self, first_h: float, last_h: float) -> datetime:
        """A random start inside a local window."""
        return self.at(self.rng.uniform(first_h, last_h))

    def add(self, name: str, start: datetime, minutes: int, total_w: float, phases: Phases) -> datetime:
        """Record a run of `minutes` at `total_w` spread over `phases`; return its end."""
        per_phase = (total_w * phases[0], total_w * phases[1], total_w * phases[2])
        self.events.append(ApplianceEvent(name, start, minutes * 60.0, per_phase))
        return start + timedelta(minutes=minutes)

    def cycle(
        self, name: str, on_min: tuple[int, int], off_min: tuple[int, int], total_w: float, phases: Phases
    ) -> None:
        """Run on/off cycles over the whole local day (absolute time: 23 or 25 h on DST days)."""
        t = self.midnight.astimezone(UTC) + timedelta(minutes=self.rng.randint(0, off_min[1]))
        while t < self.end:
            # The last run stops at midnight, where the next local day's chain takes over.
            minutes = min(self.rng.randint(*on_min), math.ceil((self.end - t).total_seconds() / 60))
            t = self.add(name, t, minutes, total_w, phases)
            t += timedelta(minutes=self.rng.randint(*off_min))


def _heating_need(local_day: date, *, southern: bool) -> float:
    """0 (no space heating) .. 1 (coldest weeks), from the day of year alone."""
    day_of_year = local_day.timetuple().tm_yday + (182 if southern else 0)
    # Peaks around 20 January, zero from about mid-May to mid-September (northern hemisphere).
    return min(1.0, max(0.0, (math.cos(2 * math.pi * (day_of_year - 20) / 365.25) + 0.3) / 1.3))


def _plan_day(local_day: date, timezone: str, *, southern: bool, seed: int) -> tuple[ApplianceEvent, ...]:
    """All appliance runs of one local day, drawn from a string-seeded RNG (stable across processes)."""
    rng = random.Random(f"{seed}:{local_day.isoformat()}")  # noqa: S311 - simulation, not crypto
    plan = _Planner(local_day, ZoneInfo(timezone), rng)
    plan.cycle("fridge", (12, 20), (25, 45), _FRIDGE_W, _L1)
    for first_h, last_h, tries, probability in _KETTLE_USES:
        for _ in range(tries):
            if rng.random() < probability:
                plan.add("kettle", plan.start_in(first_h, last_h), rng.randint(2, 4), _KETTLE_W, _L1)
    if rng.random() < 0.7:  # noqa: PLR2004 - oven on most evenings
        _oven(plan)
    for first_h, last_h, probability, longest_min in ((11.5, 12.75, 0.3, 20), (17.25, 19.0, 0.7, 30)):
        if rng.random() < probability:
            _hob(plan, plan.start_in(first_h, last_h), rng.randint(10, longest_min))
    if rng.random() < 0.4:  # noqa: PLR2004 - a wash on some days
        end = plan.add("washing_machine", plan.start_in(8.0, 19.0), rng.randint(15, 25), _HEATER_W, _L2)
        plan.add("washing_machine", end, rng.randint(60, 90), rng.uniform(150.0, 300.0), _L2)
    if rng.random() < 0.6:  # noqa: PLR2004 - dishwasher after dinner on most days
        end = plan.add("dishwasher", plan.start_in(19.5, 22.0), rng.randint(12, 18), _HEATER_W, _L3)
        plan.add(
            "dishwasher", end + timedelta(minutes=rng.randint(25, 35)), rng.randint(8, 12), _HEATER_W, _L3
        )
    _heat_pump(plan, _heating_need(local_day, southern=southern))
    return tuple(sorted(plan.events, key=lambda event: event.start))


def _oven(plan: _Planner) -> None:
    """Preheat at full power, then the thermostat cycles until the dish is done."""
    rng = plan.rng
    start = plan.start_in(17.0, 18.75)
    done = start + timedelta(minutes=rng.randint(30, 60))
    t = plan.add("oven", start, rng.randint(8, 12), _OVEN_W, _L123)
    while t < done:
        minutes = min(rng.randint(2, 4), math.ceil((done - t).total_seconds() / 60))
        t = plan.add("oven", t, minutes, _OVEN_W, _L123) + timedelta(minutes=rng.randint(2, 5))


def _hob(plan: _Planner, start: datetime, minutes: int) -> None:
    """Boost to bring a pot up, then simmer at part power on the same two phases."""
    rng = plan.rng
    boost_min = rng.randint(3, 6)
    end = plan.add("induction_hob", start, boost_min, _HOB_W, _L23)
    plan.add("induction_hob", end, minutes - boost_min, _HOB_W * rng.uniform(0.35, 0.65), _L23)


def _heat_pump(plan: _Planner, need: float) -> None:
    """Space heating cycles when it is cold (longer and stronger the colder), else hot water only."""
    rng = plan.rng
    if need <= 0:
        plan.add("heat_pump", plan.start_in(5.0, 7.0), rng.randint(30, 45), 2000.0, _L123)
        if rng.random() < 0.5:  # noqa: PLR2004 - an evening top-up every other day
            plan.add("heat_pump", plan.start_in(18.0, 21.0), rng.randint(20, 35), 2000.0, _L123)
        return
    power_w = min(3000.0, 1000.0 + 1200.0 * need * rng.uniform(0.8, 1.2))
    duty = 0.1 + 0.35 * need
    on_min = (20, 60)
    mean_on_min = sum(on_min) / 2
    mean_off_min = mean_on_min * (1 - duty) / duty
    plan.cycle("heat_pump", on_min, (round(0.5 * mean_off_min), round(1.5 * mean_off_min)), power_w, _L123)


@functools.lru_cache(maxsize=512)
def _local_day_events(
    local_day: date, timezone: str, *, southern: bool, seed: int
) -> tuple[ApplianceEvent, ...]:
    """Cached `_plan_day`: each local day is needed by two UTC days."""
    return _plan_day(local_day, timezone, southern=southern, seed=seed)


def _events_overlapping(
    day_start: datetime, timezone: str, *, southern: bool, seed: int
) -> tuple[ApplianceEvent, ...]:
    """Runs of every local day that touches the UTC day, clipped to those overlapping it."""
    zone = ZoneInfo(timezone)
    day_end = day_start + timedelta(days=1)
    # One local day before the first: its late runs (dishwasher, last cycles) may spill over.
    first = day_start.astimezone(zone).date() - timedelta(days=1)
    last = (day_end - timedelta(seconds=1)).astimezone(zone).date()
    events: list[ApplianceEvent] = []
    local_day = first
    while local_day <= last:
        events.extend(
            event
            for event in _local_day_events(local_day, timezone, southern=southern, seed=seed)
            if event.start < day_end and event.end > day_start
        )
        local_day += timedelta(days=1)
    return tuple(sorted(events, key=lambda event: event.start))


@functools.cache
def _discretionary_kwh_per_day() -> float:
    """Mean daily energy of the appliances that H25 already averages in (all but `_ON_TOP`).

    Measured on a fixed, seeded year of plans, so the calibration follows any change to the
    appliance parameters above without a hand-kept formula.
    """
    days = [date(2001, 1, 1) + timedelta(days=i) for i in range(365)]
    total_kwh = sum(
        event.energy_kwh
        for local_day in days
        for event in _plan_day(local_day, "UTC", southern=False, seed=0)
        if event.name not in _ON_TOP
    )
    return total_kwh / len(days)
