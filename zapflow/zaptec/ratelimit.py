"""Client-side rate limiting: stay inside Zaptec's 10 requests/s, burst 15, per account.

Zaptec rejects excess requests with 429 (nginx `nodelay`, no queueing), so the client spaces its
own requests. `RateLimiter` is the seam: the default `TokenBucket` is in-process and shared by
every client of one account through `LimiterRegistry`; a cross-process implementation (fleet work:
a Prefect global concurrency limit configured as a rate limit) plugs in behind the same protocol.
"""

from __future__ import annotations

import threading
from typing import Protocol

from zapflow.clock import SYSTEM_CLOCK, Clock

__all__ = ["LimiterRegistry", "RateLimiter", "TokenBucket"]


class RateLimiter(Protocol):
    """Something that blocks until one more request may be sent."""

    def acquire(self) -> None:
        """Block until a request may go out, then count it."""
        ...


class TokenBucket:
    """A token bucket (`rate_per_s` refill, `burst` capacity), implemented as GCRA reservations.

    Each caller reserves the next free slot under a lock and then sleeps outside it, so waiting
    threads are served in arrival order and never spin. Over any window of t seconds at most
    `burst + rate_per_s * t` requests pass; under sustained demand the rate settles at `rate_per_s`.
    """

    def __init__(self, rate_per_s: float = 10.0, burst: int = 15, clock: Clock = SYSTEM_CLOCK) -> None:
        if rate_per_s <= 0 or burst < 1:
            msg = f"rate_per_s must be > 0 and burst >= 1 (got {rate_per_s}, {burst})"
            raise ValueError(msg)
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._clock = clock
        self._interval_s = 1.0 / rate_per_s
        self._tolerance_s = (burst - 1) * self._interval_s
        # Theoretical arrival time of the next request (GCRA); starts "empty" = full bucket.
        self._tat_s: float | None = None
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Reserve the next slot and return how long to wait before using it (seconds)."""
        with self._lock:
            now = self._clock.monotonic()
            tat = now if self._tat_s is None else max(self._tat_s, now)
            wait_s = max(0.0, tat - self._tolerance_s - now)
            self._tat_s = tat + self._interval_s
            return wait_s

    def acquire(self) -> None:
        """Block until a request may go out."""
        wait_s = self.reserve()
        if wait_s > 0:
            self._clock.sleep(wait_s)


class LimiterRegistry:
    """One limiter per account key, shared by every client of that account in this process."""

    def __init__(self) -> None:
        self._limiters: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def for_account(self, key: str, *, rate_per_s: float, burst: int, clock: Clock) -> TokenBucket:
        """Return the account's limiter, creating it on first use."""
        with self._lock:
            limiter = self._limiters.get(key)
            if limiter is None:
                limiter = TokenBucket(rate_per_s, burst, clock)
                self._limiters[key] = limiter
            return limiter
