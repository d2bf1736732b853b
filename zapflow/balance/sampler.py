"""The meter flow's work: the site meter every N seconds, charger state at the agreed cadence.

Samples the site meter every N seconds and polls charger state at the
cadence agreed with Zaptec (60 s while a car charges, 10 min otherwise: zaptec-api.md 5.3), so the
tick has household history without a Service Bus subscription.

Samples are buffered and written to the outbox every `flush_every_s` (one Parquet file per table
per flush, not per sample); a failing meter or API call is logged and counted, never fatal.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from storage import Storage, StorageError
from zapflow.balance.records import event_rows, meter_row
from zapflow.clock import Clock
from zapflow.domain.models import ChargerOperationMode, SiteReading
from zapflow.domain.policy import overloaded_phases
from zapflow.domain.units import NOMINAL_VOLTAGE_V
from zapflow.meter.sources import MeterError, MeterSource
from zapflow.zaptec import ZaptecClient
from zapflow.zaptec.errors import ZaptecError
from zapflow.zaptec.mapping import charger_state

__all__ = ["SampleStats", "SiteSampler", "hierarchy_charger_ids", "run_sampler"]

log = logging.getLogger(__name__)


@dataclass
class SampleStats:
    """What a sampler did (the meter flow returns it)."""

    samples: int = 0
    meter_errors: int = 0
    polls: int = 0
    poll_errors: int = 0
    flushes: int = 0
    guard_ticks: int = 0
    last_error: str | None = None


@dataclass
class SiteSampler:
    """Samples one site; call `sample()` once per meter interval, `flush()` at the end."""

    installation_id: str
    storage: Storage
    clock: Clock
    meter: MeterSource | None
    client: ZaptecClient | None = None
    charger_ids: list[str] = field(default_factory=list)
    charging_poll_s: float = 60.0
    idle_poll_s: float = 600.0
    flush_every_s: float = 60.0
    fuse_a: float | None = None
    """With `on_overload`: the main fuse the guard watches."""
    voltage_v: float = NOMINAL_VOLTAGE_V
    on_overload: Callable[[str], None] | None = None
    """Called (with what was seen) when a phase is above the fuse while a car charges."""
    guard_cooldown_s: float = 60.0
    """At most one guard call per this long: the reduction needs a moment to reach the charger."""
    stats: SampleStats = field(default_factory=SampleStats)
    _buffer: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _last_flush: datetime | None = None
    _last_poll: datetime | None = None
    _charging: bool = False
    _last_measured: datetime | None = None
    _last_guard: datetime | None = None

    def sample(self) -> None:
        """One meter reading, a charger poll when due, and a flush when due."""
        now = self.clock.now()
        if self.meter is not None:
            try:
                reading = self.meter.read(now)
            except MeterError as exc:
                self.stats.meter_errors += 1
                self.stats.last_error = str(exc)
                log.warning("meter %s: %s", self.installation_id, exc)
            else:
                if reading.measured_at != self._last_measured:  # a stuck meter repeats itself
                    self._last_measured = reading.measured_at
                    self._buffer.setdefault("meter_readings", []).append(
                        meter_row(self.installation_id, reading, source="meter", received_at=now)
                    )
                    self.stats.samples += 1
                    self._guard(reading, now)
        if self.client is not None and self.charger_ids and self._poll_due(now):
            self._poll(now)
        if self._last_flush is None:
            self._last_flush = now
        elif (now - self._last_flush).total_seconds() >= self.flush_every_s:
            self.flush()

    def _guard(self, reading: SiteReading, now: datetime) -> None:
        """Call `on_overload` when a phase is over the fuse while a car charges (not between ticks only)."""
        if self.on_overload is None or self.fuse_a is None or not self._charging:
            return
        over = overloaded_phases(reading.grid_power_w, fuse_a=self.fuse_a, voltage_v=self.voltage_v)
        if not over:
            return
        if self._last_guard is not None and now - self._last_guard < timedelta(seconds=self.guard_cooldown_s):
            return
        self._last_guard = now
        amps = reading.grid_power_w.as_tuple()
        seen = ", ".join(f"L{p + 1} {amps[p] / self.voltage_v:.1f} A" for p in over)
        self.stats.guard_ticks += 1
        self.flush()  # the guard tick reads the samples that showed the overload
        log.warning(
            "fuse guard %s: %s over the %.0f A fuse while charging", self.installation_id, seen, self.fuse_a
        )
        try:
            self.on_overload(f"fuse guard: {seen} > {self.fuse_a:g} A while charging")
        except Exception as exc:  # noqa: BLE001 - the sampling loop must go on; the next tick retries
            self.stats.last_error = f"guard: {type(exc).__name__}: {exc}"
            log.warning("fuse guard %s failed: %s", self.installation_id, exc)

    def _poll_due(self, now: datetime) -> bool:
        if self._last_poll is None:
            return True
        every = self.charging_poll_s if self._charging else self.idle_poll_s
        return now - self._last_poll >= timedelta(seconds=every)

    def _poll(self, now: datetime) -> None:
        assert self.client is not None  # noqa: S101 - checked by the caller
        self._last_poll = now
        charging = False
        for charger_id in self.charger_ids:
            try:
                events = self.client.get_charger_state(charger_id)
            except ZaptecError as exc:
                self.stats.poll_errors += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("charger state %s: %s", charger_id, exc)
                continue
            self.stats.polls += 1
            rows = event_rows(events, installation_id=self.installation_id, source="poll", received_at=now)
            self._buffer.setdefault("charger_events", []).extend(rows)
            mode = charger_state(charger_id, events).operation_mode
            charging = charging or (
                mode is not None and mode.value == ChargerOperationMode.CONNECTED_CHARGING
            )
        self._charging = charging

    def flush(self) -> None:
        """Write buffered rows to the outbox (kept for the next flush if the write fails)."""
        self._last_flush = self.clock.now()
        for table in list(self._buffer):
            rows = self._buffer[table]
            if not rows:
                continue
            try:
                self.storage.write_batch(table, rows)
            except (StorageError, OSError) as exc:
                log.warning("could not queue %d %s rows (kept for the next flush): %s", len(rows), table, exc)
                continue
            self._buffer[table] = []
        self.stats.flushes += 1


def hierarchy_charger_ids(client: ZaptecClient, installation_id: str) -> list[str]:
    """The installation's chargers from its hierarchy (structure is read at start-up only)."""
    hierarchy = client.get_hierarchy(installation_id)
    return [r.charger_id for c in (hierarchy.circuits if hierarchy else ()) for r in c.chargers]


def run_sampler(  # noqa: PLR0913 - keyword-only loop knobs
    samplers: list[SiteSampler],
    *,
    clock: Clock,
    interval_s: float,
    duration_s: float,
    stop: threading.Event | None = None,
    on_sample: Callable[[], None] | None = None,
) -> None:
    """Sample every `interval_s` for `duration_s` (or until `stop`), then flush; the meter flow's loop."""
    end = clock.now() + timedelta(seconds=duration_s)
    try:
        while clock.now() < end and not (stop is not None and stop.is_set()):
            started = clock.now()
            for sampler in samplers:
                sampler.sample()
            if on_sample is not None:
                on_sample()
            spent = (clock.now() - started).total_seconds()
            clock.sleep(max(0.0, interval_s - spent))
    finally:
        for sampler in samplers:
            sampler.flush()
