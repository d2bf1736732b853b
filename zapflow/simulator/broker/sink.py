"""The world's observations onto the broker, as Zaptec publishes them, with fault injection.

The simulator may not import `zapflow.zaptec` (adapters stay independent), so it carries its own
NBFX *encoder*; the consumer's decoder in `zapflow.zaptec.nbfx` is tested against it and against
a body recorded from the real service.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Final, Protocol

__all__ = ["BrokerEventSink", "PublishFaults", "encode_nbfx"]

_NAMESPACE: Final = b"http://schemas.microsoft.com/2003/10/Serialization/"
# ShortElement "string", ShortXmlnsAttribute with the DataContract namespace (lengths < 128).
_PREAMBLE: Final = b"\x40\x06string\x08" + bytes((len(_NAMESPACE),)) + _NAMESPACE
_MAX8: Final = 0xFF
_MAX16: Final = 0xFFFF
MALFORMED_BODY: Final = b"\x40\x06string\x08\x05bogus\x98\x02{}\x01"
"""An NBFX body with the wrong namespace: what a consumer must refuse without losing the stream."""


def encode_nbfx(payload: dict[str, Any]) -> bytes:
    """`<string xmlns=...>{json}</string>` in MC-NBFX, as Zaptec's .NET publisher writes it."""
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    size = len(text)
    if size <= _MAX8:
        record = b"\x98" + bytes((size,))
    elif size <= _MAX16:
        record = b"\x9a" + size.to_bytes(2, "little")
    else:
        record = b"\x9c" + size.to_bytes(4, "little")
    return _PREAMBLE + record + text + b"\x01"


class _Publisher(Protocol):
    def publish(self, topic: str, bodies: list[bytes], *, message_ids: list[str | None]) -> list[int]: ...

    def drop_connections(self) -> int: ...


@dataclass
class PublishFaults:
    """Trouble on the bus, each off by default; every N counts published observations."""

    malformed_every: int = 0
    """After every Nth observation, also publish a body no decoder accepts."""
    duplicate_every: int = 0
    """Publish every Nth observation twice (two messages, one content)."""
    out_of_order_every: int = 0
    """Hold every Nth observation back and publish it after the next one."""
    drop_connections_every: int = 0
    """Drop every client connection after every Nth observation."""


class BrokerEventSink:
    """An `EventSink` that publishes each observation to a topic of the local broker."""

    def __init__(
        self, topic: str, broker: _Publisher | None = None, *, faults: PublishFaults | None = None
    ) -> None:
        self._broker = broker
        self._topic = topic
        self.faults = faults or PublishFaults()
        self._count = 0
        self._held: bytes | None = None
        self._lock = threading.Lock()
        self._pending: list[dict[str, Any]] = []

    def bind(self, broker: _Publisher) -> None:
        """Publish to `broker` from now on (the broker is built after the world that feeds it)."""
        with self._lock:
            self._broker = broker
            pending, self._pending = self._pending, []
        for event in pending:
            self.publish(event)

    def publish(self, event: dict[str, Any]) -> None:
        """Publish one observation (and whatever the faults add); kept until a broker is bound."""
        with self._lock:
            broker = self._broker
            if broker is None:
                self._pending.append(event)
                return
            self._count += 1
            n, f = self._count, self.faults
            bodies = [encode_nbfx(event)]
            if _every(n, f.duplicate_every):
                bodies.append(bodies[0])
            if _every(n, f.out_of_order_every) and self._held is None:
                self._held, bodies = bodies[0], bodies[1:]
            elif self._held is not None:
                bodies.append(self._held)
                self._held = None
            if _every(n, f.malformed_every):
                bodies.append(MALFORMED_BODY)
            if bodies:
                broker.publish(self._topic, bodies, message_ids=[uuid.uuid4().hex for _ in bodies])
            if _every(n, f.drop_connections_every):
                broker.drop_connections()


def _every(n: int, every: int) -> bool:
    return every > 0 and n % every == 0
