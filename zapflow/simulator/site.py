"""The site behind a simulated installation: measured PV and a household, per UTC minute.

`Site` answers "how much PV, how much household load (W, per phase, EV excluded) right now?"
cheaply enough to be asked every simulated second: both come from 1-minute arrays built once per
UTC day (`SiteDay`) and cached. PV replays measured PVDAQ system 50 data (`pv.py`); the household
is the BDEW H25 profile plus a seeded appliance layer (`household.py`). Pure computation: no
network, no wall clock, the same config and seed always give the same days.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt

from zapflow.simulator.household import ApplianceEvent, household_day_w
from zapflow.simulator.pv import (
    PVDAQ50_LATITUDE_DEG,
    PVDAQ50_LONGITUDE_DEG,
    PVDAQ50_NOMINAL_W,
    clear_sky_ghi,
    load_pvdaq_system50,
    replay_pv_day_w,
)

__all__ = [
    "PVDAQ50_LATITUDE_DEG",
    "PVDAQ50_LONGITUDE_DEG",
    "PVDAQ50_NOMINAL_W",
    "ApplianceEvent",
    "Site",
    "SiteConfig",
    "SiteDay",
    "clear_sky_ghi",
    "load_pvdaq_system50",
]

_DAY_MINUTES = 1440
_CACHED_DAYS = 400
_PHASE_SPLIT_TOLERANCE = 1e-6


@dataclass(frozen=True)
class SiteConfig:
    """One home: where it is, its PV, its household, and the seed of its appliance layer."""

    latitude_deg: float = PVDAQ50_LATITUDE_DEG
    """Only picks the heating season's hemisphere: PV keeps Golden's latitude (see `replay_pv_day_w`)."""
    longitude_deg: float = PVDAQ50_LONGITUDE_DEG
    """Shifts the replayed PV by 4 min per degree from the source's, so solar noon lines up."""
    timezone: str = "America/Denver"
    """IANA zone of the site: drives the household's daily shape (PV follows the sun, i.e. UTC)."""
    pv_kwp: float = 8.0
    """Scale the measured series to this DC size (see `PVDAQ50_NOMINAL_W`)."""
    pv_source_day: date = date(2012, 6, 21)
    """The PVDAQ day replayed onto `sim_anchor_day`."""
    sim_anchor_day: date = date(2026, 6, 21)
    """The simulated date the source day lands on; other days follow consecutively in the data."""
    pv_phases: int = 3
    """3: inverter output split equally over L1-L3; 1: all on L1."""
    annual_household_kwh: float = 4500.0
    phase_split: tuple[float, float, float] = (0.40, 0.33, 0.27)
    """Share of the base load per phase (sums to 1)."""
    appliances: bool = True
    """Add the seeded stochastic appliance layer on top of the BDEW profile."""
    seed: int = 1

    def __post_init__(self) -> None:
        """Reject configurations that would silently simulate nonsense."""
        try:
            ZoneInfo(self.timezone)
        except (ValueError, ZoneInfoNotFoundError) as exc:
            raise ValueError(f"unknown IANA timezone {self.timezone!r}") from exc
        if self.pv_phases not in {1, 3}:
            raise ValueError(f"pv_phases must be 1 or 3, not {self.pv_phases}")
        if self.pv_kwp < 0 or self.annual_household_kwh < 0:
            raise ValueError("pv_kwp and annual_household_kwh must not be negative")
        if min(self.phase_split) < 0 or abs(sum(self.phase_split) - 1) > _PHASE_SPLIT_TOLERANCE:
            raise ValueError(
                f"phase_split must be three non-negative shares summing to 1: {self.phase_split}"
            )


@dataclass(frozen=True, eq=False)
class SiteDay:
    """One UTC day of the site at 1-minute resolution (arrays are read-only)."""

    day: date
    """The UTC date; index i of the arrays is minute i after 00:00 UTC."""
    pv_w: npt.NDArray[np.float64]
    """PV AC power in W at the start of each minute, shape (1440,)."""
    household_w: npt.NDArray[np.float64]
    """Household power in W per phase, mean over each minute, shape (1440, 3); EV excluded."""
    appliance_events: tuple[ApplianceEvent, ...]
    """Appliance runs overlapping this day (a run crossing midnight is listed on both days)."""
    missing_pv_minutes: int = 0
    """Minutes with no measured PV behind them (long data gaps), simulated as 0 W."""


class Site:
    """PV and household power of one simulated home, on demand for any aware instant."""

    def __init__(self, config: SiteConfig) -> None:
        self.config = config
        self._days: dict[date, SiteDay] = {}
        self._lock = threading.Lock()

    def day(self, day: date) -> SiteDay:
        """The 1-minute arrays of one UTC day, built on first use and cached."""
        with self._lock:
            cached = self._days.get(day)
        if cached is not None:
            return cached
        built = self._build(day)
        with self._lock:
            if len(self._days) >= _CACHED_DAYS:
                del self._days[next(iter(self._days))]  # oldest first: simulations move forward
            return self._days.setdefault(day, built)

    def pv_power_w(self, at: datetime) -> float:
        """PV AC power in W at `at` (tz-aware), interpolated linearly between minutes; never negative."""
        site_day, minute, fraction = self._locate(at)
        now_w = float(site_day.pv_w[minute])
        if fraction == 0.0:
            return now_w
        if minute + 1 < _DAY_MINUTES:
            next_w = float(site_day.pv_w[minute + 1])
        else:
            next_w = float(self.day(site_day.day + timedelta(days=1)).pv_w[0])
        return now_w + fraction * (next_w - now_w)

    def household_power_w(self, at: datetime) -> tuple[float, float, float]:
        """Household power in W per phase at `at` (tz-aware): the value of its minute; EV excluded."""
        site_day, minute, _ = self._locate(at)
        l1, l2, l3 = (float(value) for value in site_day.household_w[minute])
        return (l1, l2, l3)

    def _locate(self, at: datetime) -> tuple[SiteDay, int, float]:
        """The day holding `at`, its minute index and the fraction of that minute elapsed."""
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(f"site times must be timezone-aware: {at!r}")
        at_utc = at.astimezone(UTC)
        seconds = at_utc.hour * 3600 + at_utc.minute * 60 + at_utc.second + at_utc.microsecond / 1e6
        minute = math.floor(seconds / 60)
        return self.day(at_utc.date()), minute, seconds / 60 - minute

    def _build(self, day: date) -> SiteDay:
        """Compute one UTC day."""
        config = self.config
        pv_w, missing = replay_pv_day_w(
            day,
            source_day=config.pv_source_day,
            anchor_day=config.sim_anchor_day,
            longitude_deg=config.longitude_deg,
            pv_kwp=config.pv_kwp,
        )
        household_w, events = household_day_w(
            day,
            timezone=config.timezone,
            latitude_deg=config.latitude_deg,
            annual_kwh=config.annual_household_kwh,
            phase_split=config.phase_split,
            appliances=config.appliances,
            seed=config.seed,
        )
        pv_w.setflags(write=False)
        household_w.setflags(write=False)
        return SiteDay(day, pv_w, household_w, events, missing)
