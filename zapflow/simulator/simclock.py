"""Simulated time: stepped explicitly in tests, or running at `scale` x a wall clock.

Everything the world does (physics, token expiry, subscription idle time) runs on this clock.
What a real client compares with its own clock (HTTP Retry-After, AMQP lock expiry) uses the
wall clock instead, which tests replace with a `FakeClock`.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from zapflow.clock import SYSTEM_CLOCK, Clock

__all__ = ["SimClock"]


class SimClock:
    """`now()` = start + explicit steps + scale x wall time elapsed since the last re-anchor."""

    def __init__(self, start: datetime, *, scale: float = 0.0, wall: Clock = SYSTEM_CLOCK) -> None:
        if start.tzinfo is None:
            msg = "SimClock start must be timezone-aware"
            raise ValueError(msg)
        if scale < 0:
            msg = f"scale must be >= 0 (got {scale})"
            raise ValueError(msg)
        self._wall = wall
        self._lock = threading.Lock()
        self._base = start
        self._wall_anchor_s = wall.monotonic()
        self._scale = scale

    @property
    def scale(self) -> float:
        """Simulated seconds per wall second (0: only explicit steps move time)."""
        return self._scale

    def now(self) -> datetime:
        """The simulated time (UTC)."""
        with self._lock:
            return self._now_locked()

    def _now_locked(self) -> datetime:
        elapsed_s = (self._wall.monotonic() - self._wall_anchor_s) * self._scale
        return self._base + timedelta(seconds=elapsed_s)

    def step(self, seconds: float) -> datetime:
        """Move simulated time forward by `seconds`; return the new time."""
        if seconds < 0:
            msg = "simulated time only moves forward"
            raise ValueError(msg)
        with self._lock:
            self._base += timedelta(seconds=seconds)
            return self._now_locked()

    def set_scale(self, scale: float) -> None:
        """Change the speed from now on (0 freezes time between steps)."""
        if scale < 0:
            msg = f"scale must be >= 0 (got {scale})"
            raise ValueError(msg)
        with self._lock:
            self._base = self._now_locked()
            self._wall_anchor_s = self._wall.monotonic()
            self._scale = scale
