"""Clear-sky irradiance for a site, computed with pvlib outside the domain and handed to it.

The forecaster asks for clear sky at thousands of instants per tick, so values are computed a day
at a time on a one-minute grid (one vectorised pvlib call) and looked up; the Haurwitz model needs
nothing but the sun's position, so it runs offline with no data files.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pvlib

__all__ = ["ClearSky"]

_MINUTES = 1440


class ClearSky:
    """Clear-sky PV power (W) at a site; callable as `clear_sky(at)`.

    Clear-sky GHI x kWp, so the clear-sky index of a sunny hour is near 1; cached per UTC day.
    """

    def __init__(self, latitude: float, longitude: float, pv_kwp: float, *, max_days: int = 16) -> None:
        self.location = pvlib.location.Location(latitude, longitude, tz="UTC")
        self.pv_kwp = pv_kwp
        self._days: dict[date, np.ndarray] = {}
        self._max_days = max_days
        self._lock = threading.Lock()

    def _day(self, day: date) -> np.ndarray:
        with self._lock:
            values = self._days.get(day)
            if values is None:
                start = pd.Timestamp(datetime(day.year, day.month, day.day, tzinfo=UTC))
                times = pd.date_range(start, periods=_MINUTES, freq="1min")
                with warnings.catch_warnings():
                    # pvlib still calls DatetimeIndex.dayofyear, which pandas 3 deprecates; not ours to fix.
                    warnings.filterwarnings(
                        "ignore", message=".*dayofyear is deprecated", category=FutureWarning
                    )
                    warnings.filterwarnings("ignore", message=".*dayofyear is deprecated")
                    ghi = self.location.get_clearsky(times, model="haurwitz")["ghi"]
                values = np.clip(ghi.to_numpy(dtype=float), 0.0, None) * self.pv_kwp
                if len(self._days) >= self._max_days:
                    self._days.pop(min(self._days))
                self._days[day] = values
            return values

    def __call__(self, at: datetime) -> float:
        """Clear-sky PV power at `at` (linear between minutes)."""
        at = at.astimezone(UTC)
        values = self._day(at.date())
        minute = at.hour * 60 + at.minute + (at.second + at.microsecond / 1e6) / 60
        low = int(minute)
        frac = minute - low
        high_value = values[low + 1] if low + 1 < _MINUTES else self._day(at.date() + timedelta(days=1))[0]
        return float(values[low] * (1 - frac) + high_value * frac)

    def as_function(self) -> Callable[[datetime], float]:
        """The callable the domain forecaster takes."""
        return self
