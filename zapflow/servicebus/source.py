"""The seams of the receive loop: what a message is, where it comes from, where it goes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from zapflow.domain.models import ConnectionDetails

__all__ = [
    "EventSink",
    "EventSource",
    "ReceivedMessage",
    "SourceError",
    "SourceRejected",
    "SourceUnavailable",
    "subscription_key",
]


@dataclass(frozen=True)
class ReceivedMessage:
    """One peek-locked message: its body bytes and the broker's bookkeeping."""

    body: bytes
    sequence_number: int | None
    message_id: str | None
    enqueued_at: datetime | None
    delivery_count: int
    handle: object = field(default=None, repr=False, compare=False)
    """The source's own message object, needed to settle it."""


class SourceError(Exception):
    """A failure of the source; messages never carry credentials."""


class SourceUnavailable(SourceError):
    """Transient: the broker or the details endpoint is unreachable or dropped us; reconnect later."""


class SourceRejected(SourceError):
    """Permanent: retrying cannot help (credentials refused, no access, subscription gone)."""


class EventSource(Protocol):
    """A connected peek-lock receiver on one subscription."""

    def receive(self, max_messages: int, max_wait_s: float) -> list[ReceivedMessage]:
        """Up to `max_messages`, waiting at most `max_wait_s` for the first; may return none."""
        ...

    def complete(self, messages: Sequence[ReceivedMessage]) -> None:
        """Settle the messages as done (they leave the subscription)."""
        ...

    def abandon(self, messages: Sequence[ReceivedMessage]) -> None:
        """Give the messages back for redelivery."""
        ...

    def close(self) -> None:
        """Close the receiver and its connection (unsettled messages are redelivered)."""
        ...


class EventSink(Protocol):
    """Where received batches go; `land` returns only once the batch is durable."""

    def land(self, key: str, messages: Sequence[ReceivedMessage], *, received_at: datetime) -> int:
        """Store the batch durably; returns how many messages were quarantined."""
        ...

    def activity(self, key: str, *, at: datetime, details_refreshed: bool) -> None:
        """Record that the subscription was used at `at` (a receive, a connect)."""
        ...

    def renewal(self, key: str, *, at: datetime, reason: str, outcome: str, received: int) -> None:
        """Record one renewal of the subscription (a connect with fresh details and a receive)."""
        ...

    def flush(self, *, at: datetime) -> None:
        """Make everything recorded so far durable and merge it (called periodically and at the end)."""
        ...


def subscription_key(details: ConnectionDetails) -> str:
    """`host/topic/subscription`: identifies a subscription across details refreshes."""
    return f"{details.host}/{details.topic}/{details.subscription}".lower()
