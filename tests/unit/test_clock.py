"""The fake clock moves only when told to."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from zapflow.clock import SYSTEM_CLOCK, FakeClock


def test_sleep_advances_and_is_recorded() -> None:
    """sleep() moves both readings and remembers the wait."""
    clock = FakeClock()
    start = clock.now()
    clock.sleep(2.5)
    clock.advance(1)
    assert clock.monotonic() == 3.5
    assert clock.now() - start == timedelta(seconds=3.5)
    assert clock.sleeps == [2.5]


def test_time_never_goes_backwards() -> None:
    """Negative advances are refused; negative sleeps are no-ops."""
    clock = FakeClock()
    clock.sleep(-1)
    assert clock.monotonic() == 0
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)


def test_start_must_be_aware() -> None:
    """A naive start time is refused: every datetime in zapflow is UTC-aware."""
    with pytest.raises(ValueError, match="timezone-aware"):
        FakeClock(datetime(2026, 1, 1))  # noqa: DTZ001 - the point of the test


def test_system_clock_is_utc_and_monotonic() -> None:
    """The real clock reports aware UTC and a non-decreasing monotonic value."""
    first = SYSTEM_CLOCK.monotonic()
    SYSTEM_CLOCK.sleep(0)
    assert SYSTEM_CLOCK.monotonic() >= first
    assert SYSTEM_CLOCK.now().utcoffset() == timedelta(0)
