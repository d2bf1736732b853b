"""The receive loop against an in-memory source: batching, settlement order, backoff, permanent errors."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace

import pytest
from azure.servicebus.amqp import AmqpMessageBodyType
from pydantic import SecretStr

from zapflow.clock import FakeClock
from zapflow.domain.models import ConnectionDetails
from zapflow.servicebus import (
    Consumer,
    ConsumerOptions,
    ReceivedMessage,
    SourceRejected,
    SourceUnavailable,
    subscription_key,
)
from zapflow.servicebus.azure import message_body

DETAILS = ConnectionDetails(
    connection_type=0,
    host="ns.servicebus.windows.net",
    port=5671,
    use_ssl=True,
    username="listen",
    password=SecretStr("sas-key-never-printed"),
    topic="Topic",
    subscription="Sub",
)


@dataclass
class Bus:
    """An in-memory subscription: messages wait until completed; failures scripted per call."""

    waiting: list[bytes] = field(default_factory=list)
    completed: list[bytes] = field(default_factory=list)
    abandoned: list[bytes] = field(default_factory=list)
    connect_failures: list[Exception] = field(default_factory=list)
    receive_failures: list[Exception | None] = field(default_factory=list)
    connects: int = 0

    def connect(self, _details: ConnectionDetails) -> Source:
        """A new connection (or the next scripted failure)."""
        self.connects += 1
        if self.connect_failures:
            raise self.connect_failures.pop(0)
        return Source(self)


@dataclass
class Source:
    """A connection to the bus: locks what it hands out until settled or closed."""

    bus: Bus
    locked: list[bytes] = field(default_factory=list)

    def receive(self, max_messages: int, _max_wait_s: float) -> list[ReceivedMessage]:
        """Up to `max_messages` unlocked messages."""
        if self.bus.receive_failures:
            failure = self.bus.receive_failures.pop(0)
            if failure is not None:
                raise failure
        batch = [b for b in self.bus.waiting if b not in self.locked][:max_messages]
        self.locked += batch
        return [ReceivedMessage(b, i, None, None, 0, handle=b) for i, b in enumerate(batch)]

    def complete(self, messages: Sequence[ReceivedMessage]) -> None:
        """Remove them from the bus."""
        for m in messages:
            self.bus.waiting.remove(m.body)
            self.bus.completed.append(m.body)
            self.locked.remove(m.body)

    def abandon(self, messages: Sequence[ReceivedMessage]) -> None:
        """Unlock them."""
        for m in messages:
            self.bus.abandoned.append(m.body)
            self.locked.remove(m.body)

    def close(self) -> None:
        """Drop every lock."""
        self.locked.clear()


@dataclass
class Sink:
    """Records what the consumer hands it."""

    landed: list[bytes] = field(default_factory=list)
    fail_next: int = 0
    renewals: list[str] = field(default_factory=list)
    refreshes: int = 0
    flushes: int = 0
    bus: Bus | None = None

    def land(self, key: str, messages: Sequence[ReceivedMessage], *, received_at: datetime) -> int:  # noqa: ARG002
        """Store (or fail as told); bodies starting with `bad` count as quarantined."""
        if self.bus is not None:  # landing happens before any completion of this batch
            assert all(m.body in self.bus.waiting for m in messages)
        if self.fail_next:
            self.fail_next -= 1
            raise OSError("disk full")
        self.landed += [m.body for m in messages]
        return sum(1 for m in messages if m.body.startswith(b"bad"))

    def activity(self, key: str, *, at: datetime, details_refreshed: bool) -> None:  # noqa: ARG002
        """Count details refreshes."""
        self.refreshes += details_refreshed

    def renewal(self, key: str, *, at: datetime, reason: str, outcome: str, received: int) -> None:  # noqa: ARG002
        """Record the reason."""
        self.renewals.append(reason)

    def flush(self, *, at: datetime) -> None:  # noqa: ARG002
        """Count flushes."""
        self.flushes += 1


def _consumer(bus: Bus, sink: Sink, clock: FakeClock, **options: float) -> Consumer:
    return Consumer(
        lambda: DETAILS,
        bus.connect,
        sink,
        clock=clock,
        options=ConsumerOptions(**{"batch_size": 3, **options}),  # type: ignore[arg-type]
        rng=random.Random(7),  # noqa: S311 - jitter, seeded,
    )


def test_drains_in_batches_lands_before_completing_and_counts_quarantine() -> None:
    """Every message landed once, completed after landing; poison counted, not retried."""
    bus = Bus(waiting=[b"a", b"b", b"bad1", b"c", b"d", b"e", b"f"])
    sink = Sink(bus=bus)
    stats = _consumer(bus, sink, FakeClock()).run(duration_s=60, drain=True)
    assert sink.landed == [b"a", b"b", b"bad1", b"c", b"d", b"e", b"f"]
    assert bus.completed == sink.landed
    assert bus.waiting == []
    assert (stats.messages, stats.stored, stats.quarantined, stats.batches) == (7, 6, 1, 3)
    assert sink.renewals == ["start"]
    assert sink.flushes >= 1
    assert stats.keys == [subscription_key(DETAILS)] == ["ns.servicebus.windows.net/topic/sub"]


def test_a_batch_the_sink_cannot_store_is_abandoned_and_redelivered() -> None:
    """Nothing is completed unless landed: a failing land gives the batch back, then it lands."""
    bus = Bus(waiting=[b"a", b"b"])
    sink = Sink(fail_next=1)
    stats = _consumer(bus, sink, FakeClock()).run(duration_s=600, drain=True)
    assert bus.abandoned == [b"a", b"b"]
    assert sink.landed == [b"a", b"b"] == bus.completed
    assert stats.failures == 1
    assert "disk full" in (stats.last_error or "")
    assert sink.renewals == ["start", "reconnect"]


def test_backoff_doubles_with_jitter_up_to_the_cap_and_refetches_details() -> None:
    """Each failed attempt waits about twice as long (±10 %), capped; every attempt fetches details."""
    clock = FakeClock()
    bus = Bus(waiting=[b"a"], connect_failures=[SourceUnavailable("down")] * 6)
    sink = Sink()
    fetched = []

    def details() -> ConnectionDetails:
        fetched.append(clock.monotonic())
        return DETAILS

    consumer = Consumer(
        details,
        bus.connect,
        sink,
        clock=clock,
        options=ConsumerOptions(backoff_max_s=10.0),
        rng=random.Random(1),  # noqa: S311 - jitter, seeded,
    )
    stats = consumer.run(duration_s=3600, drain=True)
    gaps = [b - a for a, b in itertools.pairwise(fetched)]
    assert len(gaps) == 6
    for gap, base in zip(gaps, [1, 2, 4, 8, 10, 10], strict=True):
        assert base * 0.9 <= gap <= base * 1.1
    assert stats.failures == 6
    assert bus.completed == [b"a"]
    assert sink.refreshes == 1  # only the connect that worked counts as a use of the subscription
    assert stats.waited_s == pytest.approx(fetched[-1] - fetched[0])  # waited, as the clock moved


def test_backoff_resets_after_a_healthy_connection() -> None:
    """A connection that lived `healthy_after_s` starts the next outage at the first backoff again."""
    clock = FakeClock()
    bus = Bus(connect_failures=[SourceUnavailable("down")] * 3)
    sink = Sink()
    consumer = _consumer(bus, sink, clock, healthy_after_s=60.0, max_wait_s=5.0, backoff_jitter=0.0)
    consumer.run(duration_s=20, drain=True)  # three failures: backoff is now at 8 s
    assert consumer.stats.failures == 3
    bus.receive_failures = [None] * 20 + [SourceUnavailable("dropped")]

    class Ticking(Source):
        def receive(self, max_messages: int, max_wait_s: float) -> list[ReceivedMessage]:
            clock.advance(max_wait_s)
            return super().receive(max_messages, max_wait_s)

    consumer._connect = lambda _details: Ticking(bus)  # a source whose receives take time
    before = clock.monotonic()
    consumer.run(duration_s=200 + 1)
    assert consumer.stats.failures == 4
    # After 100 s of healthy receives the outage waits 1 s, not 8 s.
    assert consumer.stats.waited_s == pytest.approx(7.0 + 1.0, abs=0.01)
    assert clock.monotonic() - before >= 200


def test_a_permanent_failure_ends_the_run_after_flushing() -> None:
    """`SourceRejected` is not retried: it propagates with its message, the sink flushed."""
    bus = Bus(connect_failures=[SourceRejected("subscription gone")])
    sink = Sink()
    consumer = _consumer(bus, sink, FakeClock())
    with pytest.raises(SourceRejected, match="subscription gone"):
        consumer.run(duration_s=600)
    assert bus.connects == 1
    assert sink.flushes == 1
    assert consumer.stats.last_error == "subscription gone"


def test_reconnects_with_fresh_details_when_they_are_due() -> None:
    """A long connection is renewed with freshly fetched details every `refresh_details_s`."""
    clock = FakeClock()
    bus = Bus()
    sink = Sink()

    class Slow(Source):
        def receive(self, _max_messages: int, max_wait_s: float) -> list[ReceivedMessage]:
            clock.advance(max_wait_s)
            return []

    consumer = Consumer(
        lambda: DETAILS,
        lambda _details: Slow(bus),
        sink,
        clock=clock,
        options=ConsumerOptions(refresh_details_s=100.0, max_wait_s=10.0),
    )
    consumer.run(duration_s=350)
    assert sink.renewals == ["start", "refresh", "refresh", "refresh"]
    assert sink.refreshes == 4
    assert "sas-key" not in repr(DETAILS)


@pytest.mark.parametrize(
    ("body_type", "body", "expected"),
    [
        (AmqpMessageBodyType.DATA, iter([b'{"a":', b"1}"]), b'{"a":1}'),
        (AmqpMessageBodyType.VALUE, "plain text", b"plain text"),
        (AmqpMessageBodyType.VALUE, {"k": 1}, b'{"k": 1}'),
        (AmqpMessageBodyType.SEQUENCE, iter([[1, 2], ["x"]]), b'[[1, 2], ["x"]]'),
    ],
)
def test_every_amqp_body_kind_becomes_bytes(
    body_type: AmqpMessageBodyType, body: object, expected: bytes
) -> None:
    """Data joined; value and sequence bodies (other publishers) become bytes and so reach the quarantine."""
    assert message_body(SimpleNamespace(body_type=body_type, body=body)) == expected
