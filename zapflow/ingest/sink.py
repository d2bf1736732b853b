"""`OutboxSink`: decoded batches into the outbox, poison into quarantine, activity and renewals.

A batch is one `charger_events` file (its `charger_state_latest` rows derive from it at merge
time), plus one `event_quarantine` file when something did not decode. Both keys are natural:
an event by (charger, state id, charger timestamp), a poison message by subscription + sequence
number + body hash, so a redelivered batch merges to the rows already there.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from storage import Storage, StorageError
from zapflow.clock import Clock
from zapflow.servicebus import ReceivedMessage
from zapflow.zaptec.bus import event_from_body
from zapflow.zaptec.errors import MessageDecodeError
from zapflow.zaptec.observations import Observation

__all__ = ["SOURCE", "Alert", "OutboxSink"]

log = logging.getLogger("zapflow.ingest")
SOURCE = "servicebus"
_QUARANTINE_NS = uuid.UUID("6c0e3c1a-1b1e-4d8e-9a53-3f1f0e0b2a11")

Alert = Callable[[str, str, str], None]
"""`on_alert(kind, subscription_key, message)`: raise an alert (a Prefect event in the flows)."""


@dataclass
class _Subscription:
    last_activity_at: datetime | None = None
    last_details_refresh_at: datetime | None = None
    last_message_at: datetime | None = None
    written_at: datetime | None = None
    dirty: bool = False
    chargers_seen: set[str] = field(default_factory=set)
    chargers_new: set[str] = field(default_factory=set)
    """Chargers first seen in this run, not yet recorded in `subscription_chargers`."""
    silent_alerted: bool = False


class OutboxSink:
    """The `EventSink` of the ingest flow."""

    def __init__(  # noqa: PLR0913 - keyword-only knobs
        self,
        storage: Storage,
        *,
        chargers: Mapping[str, str | None],
        clock: Clock,
        activity_every_s: float = 60.0,
        silent_after_s: float = 3600.0,
        on_alert: Alert | None = None,
    ) -> None:
        self.storage = storage
        self.chargers = {k.lower(): v for k, v in chargers.items()}
        """charger id -> installation id, for the chargers of the configured installations."""
        self.clock = clock
        self.activity_every_s = activity_every_s
        self.silent_after_s = silent_after_s
        self.on_alert = on_alert
        self.unknown_chargers: set[str] = set()
        self._subs: dict[str, _Subscription] = {}

    # -- batches ---------------------------------------------------------------------------------

    def land(self, key: str, messages: Sequence[ReceivedMessage], *, received_at: datetime) -> int:
        """Queue the batch durably (events, then quarantine); returns how many were poison."""
        events: list[dict[str, Any]] = []
        poison: list[dict[str, Any]] = []
        for message in messages:
            try:
                event = event_from_body(message.body)
            except MessageDecodeError as exc:
                poison.append(_quarantine_row(key, message, str(exc), received_at))
                continue
            installation = self.chargers.get(event.charger_id)
            known = event.charger_id in self.chargers
            if not known and event.charger_id not in self.unknown_chargers:
                self.unknown_chargers.add(event.charger_id)
                log.info(
                    "event for charger %s outside the configured installations (stored, flagged)",
                    event.charger_id,
                )
            events.append(
                {
                    "charger_id": event.charger_id,
                    "state_id": event.state_id,
                    "observed_at": event.observed_at,
                    "value": event.value,
                    "device_id": event.device_id,
                    "device_type": event.device_type,
                    "installation_id": installation,
                    "known_installation": known,
                    "source": SOURCE,
                    "received_at": received_at,
                    "sequence_number": message.sequence_number,
                }
            )
        if events:
            self.storage.write_batch("charger_events", events)
        if poison:
            log.warning("%d poison message(s) quarantined: %s", len(poison), poison[0]["error"])
            self.storage.write_batch("event_quarantine", poison)
        sub = self._sub(key)
        for row in events:
            if row["charger_id"] not in sub.chargers_seen:
                sub.chargers_seen.add(row["charger_id"])
                sub.chargers_new.add(row["charger_id"])
        sub.last_message_at = received_at
        sub.silent_alerted = False
        sub.dirty = True
        self._record_chargers(key, sub, received_at)
        return len(poison)

    def _record_chargers(self, key: str, sub: _Subscription, at: datetime) -> None:
        """Chargers this subscription carries, once per run each (the tick trusts events for those only)."""
        if sub.chargers_new and self._safe_write(
            "subscription_chargers",
            [
                {"subscription_key": key, "charger_id": c, "last_seen_at": at}
                for c in sorted(sub.chargers_new)
            ],
        ):
            sub.chargers_new.clear()

    # -- keep-alive bookkeeping ------------------------------------------------------------------

    def activity(self, key: str, *, at: datetime, details_refreshed: bool) -> None:
        """Note a use of the subscription; write a `subscriptions` row on refresh or when due."""
        sub = self._sub(key)
        sub.last_activity_at = at
        sub.dirty = True
        if details_refreshed:
            sub.last_details_refresh_at = at
        due = sub.written_at is None or at - sub.written_at >= timedelta(seconds=self.activity_every_s)
        if details_refreshed or due:
            self._write_subscription(key, sub, at)

    def renewal(self, key: str, *, at: datetime, reason: str, outcome: str, received: int) -> None:
        """Record one renewal (connected with fresh details and received)."""
        self._safe_write(
            "subscription_renewals",
            [
                {
                    "subscription_key": key,
                    "renewed_at": at,
                    "reason": reason,
                    "outcome": outcome,
                    "messages_received": received,
                }
            ],
        )

    def flush(self, *, at: datetime) -> None:
        """Write the subscription rows, merge everything queued, check for a silent subscription."""
        for key, sub in self._subs.items():
            self._record_chargers(key, sub, at)  # retried here when the write in `land` failed
            if sub.dirty:
                self._write_subscription(key, sub, at)
        with suppress(StorageError):  # busy: the files wait in the outbox for the next merge
            self.storage.merge()
        self._check_silence(at)

    def _sub(self, key: str) -> _Subscription:
        sub = self._subs.get(key)
        if sub is None:
            sub = _Subscription()
            with suppress(StorageError):
                rows = self.storage.read(
                    "SELECT updated_at, last_details_refresh_at, last_message_at FROM subscriptions "
                    "WHERE subscription_key = $key",
                    {"key": key},
                ).to_pylist()
                if rows:
                    sub.written_at = rows[0]["updated_at"]
                    sub.last_details_refresh_at = rows[0]["last_details_refresh_at"]
                    sub.last_message_at = rows[0]["last_message_at"]
            self._subs[key] = sub
        return sub

    def _write_subscription(self, key: str, sub: _Subscription, at: datetime) -> None:
        # The newest `updated_at` wins the merge: keep it strictly increasing even on a frozen clock.
        if sub.written_at is not None and at <= sub.written_at:
            at = sub.written_at + timedelta(microseconds=1)
        if self._safe_write(
            "subscriptions",
            [
                {
                    "subscription_key": key,
                    "updated_at": at,
                    "last_activity_at": sub.last_activity_at,
                    "last_details_refresh_at": sub.last_details_refresh_at,
                    "last_message_at": sub.last_message_at,
                }
            ],
        ):
            sub.written_at = at
            sub.dirty = False

    def _safe_write(self, table: str, rows: list[dict[str, Any]]) -> bool:
        """Bookkeeping rows: a failed write is logged, never fatal (the events matter more)."""
        try:
            self.storage.write_batch(table, rows)
        except (StorageError, OSError) as exc:
            log.warning("could not record %s: %s", table, exc)
            return False
        return True

    def _check_silence(self, at: datetime) -> None:
        if self.on_alert is None or not self.chargers:
            return
        for key, sub in self._subs.items():
            since = sub.last_message_at or sub.last_details_refresh_at
            if sub.silent_alerted or since is None or at - since < timedelta(seconds=self.silent_after_s):
                continue
            online = self._online_chargers(at - timedelta(seconds=self.silent_after_s))
            if online:
                sub.silent_alerted = True
                message = (
                    f"no Service Bus message for {(at - since).total_seconds() / 60:.0f} min "
                    f"while {online} charger(s) are online"
                )
                log.warning("subscription %s: %s", key, message)
                self.on_alert("silent", key, message)

    def _online_chargers(self, since: datetime) -> int:
        """Chargers a poll (not the silent stream itself) saw online since `since`."""
        try:
            rows = self.storage.read(
                "SELECT count(*) AS n FROM charger_state_latest WHERE state_id = $state AND value = '1' "
                "AND source = 'poll' AND received_at >= $since AND list_contains($chargers, charger_id)",
                {"state": int(Observation.IsOnline), "chargers": list(self.chargers), "since": since},
            ).to_pylist()
        except StorageError:
            return 0
        return int(rows[0]["n"]) if rows else 0


def _quarantine_row(key: str, message: ReceivedMessage, error: str, received_at: datetime) -> dict[str, Any]:
    digest = hashlib.sha256(message.body).hexdigest()
    identity = f"{key}|{message.sequence_number}|{message.message_id}|{digest}"
    return {
        "quarantine_id": str(uuid.uuid5(_QUARANTINE_NS, identity)),
        "received_at": received_at,
        "source": key,
        "sequence_number": message.sequence_number,
        "message_id": message.message_id,
        "error": error,
        "raw": message.body,
    }
