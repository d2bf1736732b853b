"""Where the world's state changes go: an `EventSink` (the local Service Bus broker, or a list).

Each event is the JSON object Zaptec publishes per observation:
`{DeviceId, DeviceType, ChargerId, StateId, Timestamp, ValueAsString}`.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

__all__ = ["EventSink", "InMemoryEventSink"]


class EventSink(Protocol):
    """Receives every observation the simulated chargers report."""

    def publish(self, event: dict[str, Any]) -> None:
        """Take one observation message (Zaptec's JSON fields)."""
        ...


class InMemoryEventSink:
    """Keeps events in a list (until the broker exists, and for tests)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def publish(self, event: dict[str, Any]) -> None:
        """Append the event."""
        with self._lock:
            self.events.append(event)
