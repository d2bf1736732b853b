"""The fake clock moves only when told to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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


def test_sim_clock_steps_and_scales() -> None:
    """Simulated time moves by explicit steps and, when scaled, with the wall clock."""
    from zapflow.simulator.simclock import SimClock  # noqa: PLC0415 - simulator-only check

    wall = FakeClock()
    start = datetime(2026, 6, 17, 12, tzinfo=UTC)
    sim = SimClock(start, wall=wall)
    wall.advance(100)
    assert sim.now() == start  # scale 0: frozen between steps
    sim.step(30)
    sim.set_scale(60)
    wall.advance(2)
    assert sim.now() == start + timedelta(seconds=30 + 120)
    sim.set_scale(0)
    wall.advance(5)
    assert sim.now() == start + timedelta(seconds=150)
    with pytest.raises(ValueError, match="forward"):
        sim.step(-1)
    with pytest.raises(ValueError, match="scale"):
        sim.set_scale(-1)
    with pytest.raises(ValueError, match="scale"):
        SimClock(start, scale=-2)
    with pytest.raises(ValueError, match="timezone-aware"):
        SimClock(datetime(2026, 1, 1))  # noqa: DTZ001 - the point of the check
