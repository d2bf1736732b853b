"""Time as a seam: every adapter that waits or compares times takes a `Clock`.

`SystemClock` is production; `FakeClock` is for tests and simulations: `sleep()` advances it
instantly, so retry backoff, token expiry and rate limits are tested without waiting.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["SYSTEM_CLOCK", "Clock", "FakeClock", "SystemClock"]


class Clock(Protocol):
    """Wall time (UTC, aware), a monotonic reading in seconds, and a way to wait."""

    def now(self) -> datetime:
        """Return the current UTC time (timezone-aware)."""
        ...

    def monotonic(self) -> float:
        """Return seconds on a clock that never goes backwards."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait `seconds` (a fake clock advances instead)."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """Return the current UTC time."""
        return datetime.now(UTC)

    def monotonic(self) -> float:
        """Return `time.monotonic()`."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """Block for `seconds`."""
        if seconds > 0:
            time.sleep(seconds)


SYSTEM_CLOCK = SystemClock()


class FakeClock:
    """A clock that only moves when told to; `sleep()` moves it and records the wait."""

    def __init__(self, start: datetime | None = None) -> None:
        self._start = start or datetime(2026, 6, 21, 10, 0, tzinfo=UTC)
        if self._start.tzinfo is None:
            msg = "FakeClock start must be timezone-aware"
            raise ValueError(msg)
        self._elapsed_s = 0.0
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        """Return start + elapsed."""
        with self._lock:
            return self._start + timedelta(seconds=self._elapsed_s)

    def monotonic(self) -> float:
        """Return the elapsed seconds."""
        with self._lock:
            return self._elapsed_s

    def sleep(self, seconds: float) -> None:
        """Advance by `seconds` and remember that a wait happened."""
        with self._lock:
            self.sleeps.append(seconds)
            self._elapsed_s += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        """Move time forward without counting it as a wait."""
        if seconds < 0:
            msg = "time only moves forward"
            raise ValueError(msg)
        with self._lock:
            self._elapsed_s += seconds
