"""The receive loop: (re)connect with fresh details, receive in batches, land, then complete.

At-least-once: a batch is completed only after the sink made it durable, so a crash anywhere
redelivers it and the sink's idempotent storage keeps one copy. Failures of the broker or of the
details endpoint are retried forever with exponential backoff and jitter (reset after a healthy
period); a `SourceRejected` ends the run, because retrying cannot help.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from zapflow.clock import Clock
from zapflow.domain.models import ConnectionDetails
from zapflow.servicebus.source import (
    EventSink,
    EventSource,
    ReceivedMessage,
    SourceError,
    SourceRejected,
    SourceUnavailable,
    subscription_key,
)

__all__ = ["Consumer", "ConsumerOptions", "ConsumerStats"]

log = logging.getLogger("zapflow.servicebus")
_SLEEP_SLICE_S = 1.0


@dataclass(frozen=True)
class ConsumerOptions:
    """Batching, backoff and keep-alive knobs (defaults follow zaptec-api.md 4.5)."""

    batch_size: int = 100
    max_wait_s: float = 5.0
    """How long one receive waits for a first message."""
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 300.0
    backoff_jitter: float = 0.1
    """Each wait is drawn from [b * (1 - j), b * (1 + j)] so many consumers de-synchronise."""
    healthy_after_s: float = 600.0
    """A connection that lived this long resets the backoff."""
    refresh_details_s: float = 86_400.0
    """Reconnect with freshly fetched details at least this often (host and key can change)."""
    flush_every_s: float = 10.0
    """How often recorded rows are merged into the database."""


@dataclass
class ConsumerStats:
    """What one run did."""

    messages: int = 0
    """Messages received (redeliveries included)."""
    stored: int = 0
    """Messages landed as observations."""
    quarantined: int = 0
    batches: int = 0
    connects: int = 0
    failures: int = 0
    renewals: int = 0
    waited_s: float = 0.0
    """Time spent in backoff."""
    last_error: str | None = None
    keys: list[str] = field(default_factory=list)


class Consumer:
    """Drains one subscription into a sink until a deadline, a stop request or a permanent error."""

    def __init__(  # noqa: PLR0913 - each argument is a seam
        self,
        details: Callable[[], ConnectionDetails],
        connect: Callable[[ConnectionDetails], EventSource],
        sink: EventSink,
        *,
        clock: Clock,
        options: ConsumerOptions | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._details = details
        self._connect = connect
        self._sink = sink
        self._clock = clock
        self.options = options or ConsumerOptions()
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self.stats = ConsumerStats()
        self._attempt = 0
        self._last_flush = clock.monotonic()

    def run(
        self,
        *,
        duration_s: float,
        stop: threading.Event | None = None,
        drain: bool = False,
        reason: str = "start",
    ) -> ConsumerStats:
        """Receive for `duration_s` (or until `stop`); with `drain`, end at the first empty receive.

        Raises `SourceRejected` on a permanent failure, after recording it.
        """
        stop = stop or threading.Event()
        deadline = self._clock.monotonic() + duration_s
        try:
            while not stop.is_set() and self._clock.monotonic() < deadline:
                try:
                    finished = self._session(deadline, stop, drain=drain, reason=reason)
                except SourceRejected as exc:
                    self.stats.last_error = str(exc)
                    log.error("service bus: %s (not retried)", exc)  # noqa: TRY400 - no traceback: it is expected
                    raise
                except SourceError as exc:
                    self._failed(exc, deadline, stop)
                    reason = "reconnect"
                    continue
                if finished:
                    break
                reason = "refresh"
        finally:
            self._sink.flush(at=self._clock.now())
        return self.stats

    def _session(self, deadline: float, stop: threading.Event, *, drain: bool, reason: str) -> bool:
        """One connection's life; True when the run is done, False to reconnect with fresh details."""
        details = self._details()
        key = subscription_key(details)
        if key not in self.stats.keys:
            self.stats.keys.append(key)
        source = self._connect(details)
        # Recorded once connected: a subscription that cannot be reached must not look used.
        self._sink.activity(key, at=self._clock.now(), details_refreshed=True)
        self.stats.connects += 1
        connected = self._clock.monotonic()
        renewed = False
        if self._attempt:
            log.warning("service bus: reconnected to %s after %d failed attempt(s)", key, self._attempt)
        try:
            while not stop.is_set():
                now_m = self._clock.monotonic()
                if now_m >= deadline:
                    return True
                if now_m - connected >= self.options.refresh_details_s:
                    return False
                if now_m - connected >= self.options.healthy_after_s:
                    self._attempt = 0
                wait = min(self.options.max_wait_s, max(0.0, deadline - now_m))
                batch = source.receive(self.options.batch_size, wait)
                now = self._clock.now()
                if not renewed:
                    renewed = True
                    self.stats.renewals += 1
                    self._sink.renewal(key, at=now, reason=reason, outcome="ok", received=len(batch))
                if batch:
                    self._land(key, source, batch, now)
                self._sink.activity(key, at=now, details_refreshed=False)
                self._maybe_flush()
                if drain and not batch:
                    return True
            return True
        finally:
            source.close()

    def _land(self, key: str, source: EventSource, batch: Sequence[ReceivedMessage], now: datetime) -> None:
        try:
            quarantined = self._sink.land(key, batch, received_at=now)
        except Exception as exc:  # any storage failure: give the batch back
            # Nothing is lost: the batch goes back and is redelivered after the backoff.
            with contextlib.suppress(SourceError):  # a closed link redelivers them anyway
                source.abandon(batch)
            msg = f"could not store a batch of {len(batch)}: {type(exc).__name__}: {exc}"
            raise SourceUnavailable(msg) from exc
        source.complete(batch)
        self.stats.messages += len(batch)
        self.stats.quarantined += quarantined
        self.stats.stored += len(batch) - quarantined
        self.stats.batches += 1

    def _maybe_flush(self) -> None:
        if self._clock.monotonic() - self._last_flush >= self.options.flush_every_s:
            self._last_flush = self._clock.monotonic()
            self._sink.flush(at=self._clock.now())

    def _failed(self, exc: SourceError, deadline: float, stop: threading.Event) -> None:
        """Log (once per outage at warning level), record, and wait out the backoff."""
        self.stats.failures += 1
        self.stats.last_error = str(exc)
        backoff = min(self.options.backoff_max_s, self.options.backoff_initial_s * 2**self._attempt)
        jitter = self.options.backoff_jitter
        wait = backoff * self._rng.uniform(1 - jitter, 1 + jitter)
        level = logging.WARNING if self._attempt == 0 else logging.INFO
        if stop.is_set():
            log.log(level, "service bus unavailable (%s); the run is stopping", exc)
            return
        log.log(level, "service bus unavailable (%s); reconnecting in %.1f s", exc, wait)
        self._attempt += 1
        started = self._clock.monotonic()
        end = started + max(0.0, min(wait, deadline - started))
        while not stop.is_set() and self._clock.monotonic() < end:
            self._clock.sleep(min(_SLEEP_SLICE_S, end - self._clock.monotonic()))
        self.stats.waited_s += self._clock.monotonic() - started  # what was waited, not what was planned
