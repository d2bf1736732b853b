"""The client's one retry layer: bounded attempts and total time, jittered backoff.

Built on tenacity with the clock injected (`sleep=clock.sleep`), so tests run the real retry
logic on a `FakeClock`: backoff takes no time, and waits are observable. `RetryPolicy.off()`
turns retries off entirely. Which failures are retried is the caller's predicate: reads and
writes differ (see `zapflow.zaptec.client`).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import tenacity

from zapflow.clock import Clock
from zapflow.zaptec.errors import RateLimited

__all__ = ["RetryPolicy", "call_with_retries"]

T = TypeVar("T")
log = logging.getLogger("zapflow.zaptec")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard the client tries before giving up on a transient failure."""

    max_attempts: int = 6
    """Attempts in all, the first included; 1 means no retry."""
    max_total_s: float = 60.0
    """No retry is started if its wait would end later than this after the first attempt."""
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 20.0
    jitter: float = 0.5
    """Each backoff is drawn uniformly from [(1 - jitter) * b, b] so clients de-synchronise."""

    def __post_init__(self) -> None:
        """Reject nonsensical bounds early."""
        if self.max_attempts < 1 or self.max_total_s < 0 or not 0 <= self.jitter <= 1:
            msg = f"invalid retry policy: {self}"
            raise ValueError(msg)

    @classmethod
    def off(cls) -> RetryPolicy:
        """A policy that never retries."""
        return cls(max_attempts=1)

    def backoff_s(self, attempt: int, rng: random.Random) -> float:
        """Jittered exponential backoff before attempt `attempt + 1` (attempt counts from 1)."""
        ceiling = min(self.max_backoff_s, self.initial_backoff_s * 2 ** (attempt - 1))
        return rng.uniform((1 - self.jitter) * ceiling, ceiling)


def call_with_retries(  # noqa: PLR0913 - keyword-only, all required seams
    fn: Callable[[], T],
    *,
    should_retry: Callable[[BaseException], bool],
    policy: RetryPolicy,
    clock: Clock,
    rng: random.Random,
    what: str,
) -> tuple[T, int]:
    """Call `fn` until it succeeds or a bound is hit; return (result, attempts).

    A `RateLimited` error waits at least its `Retry-After`. The last error is re-raised as is,
    with the number of attempts made added to its context.
    """
    started_s = clock.monotonic()

    def wait(state: tenacity.RetryCallState) -> float:
        backoff_s = policy.backoff_s(state.attempt_number, rng)
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimited) and exc.retry_after_s is not None:
            # Retry-After is a floor; growing backoff still applies under a 429 storm.
            return max(exc.retry_after_s, backoff_s)
        return backoff_s

    def stop(state: tenacity.RetryCallState) -> bool:
        if state.attempt_number >= policy.max_attempts:
            return True
        return clock.monotonic() - started_s + state.upcoming_sleep > policy.max_total_s

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "%s failed (attempt %d/%d): %s; retrying in %.2f s",
            what,
            state.attempt_number,
            policy.max_attempts,
            exc,
            state.upcoming_sleep,
        )

    retrying = tenacity.Retrying(
        sleep=clock.sleep,
        stop=stop,
        wait=wait,
        retry=tenacity.retry_if_exception(should_retry),
        before_sleep=before_sleep,
        reraise=True,
    )
    attempts = 0

    def counted() -> T:
        nonlocal attempts
        attempts += 1
        return fn()

    try:
        return retrying(counted), attempts
    except BaseException as exc:
        if hasattr(exc, "context") and isinstance(exc.context, dict):
            exc.context["attempts"] = attempts
        raise
