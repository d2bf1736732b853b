"""The client-side limiter: at most 15 + 10·t and, under sustained demand, at least 10·t per t seconds."""

from __future__ import annotations

import threading
from bisect import bisect_left

import pytest

from zapflow.clock import FakeClock
from zapflow.zaptec import LimiterRegistry, TokenBucket


def _timestamps(n: int, clock: FakeClock) -> list[float]:
    bucket = TokenBucket(10.0, 15, clock)
    stamps = []
    for _ in range(n):
        bucket.acquire()
        stamps.append(clock.monotonic())
    return stamps


def _count(stamps: list[float], start: float, length: float) -> int:
    return bisect_left(stamps, start + length - 1e-9) - bisect_left(stamps, start - 1e-9)


@pytest.mark.parametrize("window_s", [0.1, 0.5, 1.0, 2.0, 5.0, 10.0], ids=lambda w: f"{w}s")
def test_never_more_than_burst_plus_rate(clock: FakeClock, window_s: float) -> None:
    """No window of t seconds holds more than 15 + 10·t requests, wherever it starts."""
    stamps = _timestamps(300, clock)
    for start in stamps:
        assert _count(stamps, start, window_s) <= 15 + 10 * window_s + 1e-9


@pytest.mark.parametrize("window_s", [1.0, 2.0, 5.0, 10.0], ids=lambda w: f"{w}s")
def test_sustained_demand_gets_the_full_rate(clock: FakeClock, window_s: float) -> None:
    """Every full window of t seconds under constant demand holds at least 10·t requests."""
    stamps = _timestamps(300, clock)
    for start in stamps:
        if start + window_s <= stamps[-1]:
            assert _count(stamps, start, window_s) >= 10 * window_s


def test_the_burst_goes_out_without_waiting(clock: FakeClock) -> None:
    """The first 15 requests pass at once; the 16th waits 0.1 s."""
    stamps = _timestamps(16, clock)
    assert stamps[:15] == [0.0] * 15
    assert stamps[15] == pytest.approx(0.1)


def test_idle_time_refills_the_bucket(clock: FakeClock) -> None:
    """After a quiet period a new burst of 15 passes without waiting."""
    bucket = TokenBucket(10.0, 15, clock)
    for _ in range(40):
        bucket.acquire()
    clock.advance(10)
    clock.sleeps.clear()
    for _ in range(15):
        bucket.acquire()
    assert clock.sleeps == []


class _FrozenClock(FakeClock):
    """Time never moves, so concurrent reservations are all visible at once."""

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def test_concurrent_reservations_get_distinct_slots() -> None:
    """Threads racing for the bucket each get their own slot: none lost, none doubled."""
    clock = _FrozenClock()
    bucket = TokenBucket(10.0, 15, clock)
    waits: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(25):
            wait = bucket.reserve()
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expected = [0.0] * 15 + [round(0.1 * k, 6) for k in range(1, 86)]
    assert sorted(round(w, 6) for w in waits) == expected


def test_registry_shares_one_bucket_per_account(clock: FakeClock) -> None:
    """Every client of an account gets the same limiter; other accounts get their own."""
    registry = LimiterRegistry()
    a = registry.for_account("acct-a", rate_per_s=10, burst=15, clock=clock)
    assert registry.for_account("acct-a", rate_per_s=10, burst=15, clock=clock) is a
    assert registry.for_account("acct-b", rate_per_s=10, burst=15, clock=clock) is not a


@pytest.mark.parametrize(
    ("rate", "burst"), [(0, 15), (-1, 15), (10, 0)], ids=["zero-rate", "negative", "no-burst"]
)
def test_nonsense_limits_are_refused(rate: float, burst: int) -> None:
    """A limiter that could never pass a request is a configuration error."""
    with pytest.raises(ValueError, match="rate_per_s"):
        TokenBucket(rate, burst)
