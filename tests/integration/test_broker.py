"""The real azure-servicebus client against the local broker: receive, settle, redeliver, refuse."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.servicebus import (
    ServiceBusMessage,
    ServiceBusReceivedMessage,
    ServiceBusReceiver,
    ServiceBusSubQueue,
)
from azure.servicebus.exceptions import (
    MessagingEntityNotFoundError,
    ServiceBusAuthenticationError,
    ServiceBusConnectionError,
    ServiceBusError,
)

from tests.support.broker import SUBSCRIPTION, SUBSCRIPTION_PATH, TOPIC, client_for, running_broker
from zapflow.simulator.broker import Broker

WAIT_S = 20.0


def receive(
    receiver: ServiceBusReceiver, count: int, *, timeout_s: float = WAIT_S
) -> list[ServiceBusReceivedMessage]:
    """Receive until `count` messages arrived or `timeout_s` passed (generous: never a speed claim)."""
    got: list[ServiceBusReceivedMessage] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < count and time.monotonic() < deadline:
        got.extend(receiver.receive_messages(max_message_count=count - len(got), max_wait_time=1))
    return got


def body(message: ServiceBusReceivedMessage) -> bytes:
    """The joined body chunks."""
    return b"".join(message.body)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A broker with a 30 s lock (lock expiry has its own short-lock broker)."""
    with running_broker(tmp_path / "broker") as running:
        yield running


def test_published_messages_arrive_once_and_complete_removes(broker: Broker) -> None:
    """N published -> N received, distinct sequence numbers, delivery count 0; completed ones are gone."""
    bodies = [f"m{i}".encode() for i in range(25)]
    broker.publish(TOPIC, bodies)
    with (
        client_for(broker.port) as client,
        client.get_subscription_receiver(TOPIC, SUBSCRIPTION, prefetch_count=10) as receiver,
    ):
        got = receive(receiver, 25)
        assert sorted(body(m) for m in got) == sorted(bodies)
        assert len({m.sequence_number for m in got}) == 25
        assert {m.delivery_count for m in got} == {0}
        assert all(m.locked_until_utc is not None for m in got)
        for message in got:
            receiver.complete_message(message)
        assert receiver.receive_messages(max_wait_time=1) == []
    assert broker.stats(SUBSCRIPTION_PATH).available == 0
    assert broker.stats(SUBSCRIPTION_PATH).locked == 0


def test_abandon_redelivers_with_delivery_count_one(broker: Broker) -> None:
    """An abandoned message comes back with delivery count 1."""
    (seq,) = broker.publish(TOPIC, [b"retry me"])
    with client_for(broker.port) as client, client.get_subscription_receiver(TOPIC, SUBSCRIPTION) as receiver:
        (first,) = receive(receiver, 1)
        receiver.abandon_message(first)
        (again,) = receive(receiver, 1)
        assert (again.sequence_number, again.delivery_count, body(again)) == (seq, 1, b"retry me")
        receiver.complete_message(again)


def test_dead_letter_moves_to_the_dead_letter_subqueue(broker: Broker) -> None:
    """A dead-lettered message leaves the subscription and is readable from its dead-letter queue."""
    (seq,) = broker.publish(TOPIC, [b"poison"])
    with client_for(broker.port) as client:
        with client.get_subscription_receiver(TOPIC, SUBSCRIPTION) as receiver:
            (message,) = receive(receiver, 1)
            receiver.dead_letter_message(message, reason="unreadable", error_description="not NBFX")
            assert receiver.receive_messages(max_wait_time=1) == []
        with client.get_subscription_receiver(
            TOPIC, SUBSCRIPTION, sub_queue=ServiceBusSubQueue.DEAD_LETTER
        ) as dead:
            (letter,) = receive(dead, 1)
            assert (letter.sequence_number, body(letter)) == (seq, b"poison")
            assert (letter.dead_letter_reason, letter.dead_letter_error_description) == (
                "unreadable",
                "not NBFX",
            )
            dead.complete_message(letter)
    assert broker.stats(SUBSCRIPTION_PATH + "/$DeadLetterQueue").available == 0


def test_max_delivery_count_dead_letters(tmp_path: Path) -> None:
    """A message abandoned max-delivery-count times lands in the dead-letter queue."""
    with running_broker(tmp_path, max_delivery_count=2) as broker:
        broker.publish(TOPIC, [b"twice"])
        with client_for(broker.port) as client:
            with client.get_subscription_receiver(TOPIC, SUBSCRIPTION) as receiver:
                for _ in range(2):
                    (message,) = receive(receiver, 1)
                    receiver.abandon_message(message)
                assert receiver.receive_messages(max_wait_time=1) == []
            with client.get_subscription_receiver(
                TOPIC, SUBSCRIPTION, sub_queue=ServiceBusSubQueue.DEAD_LETTER
            ) as dead:
                (letter,) = receive(dead, 1)
                assert letter.dead_letter_reason == "MaxDeliveryCountExceeded"
                assert letter.delivery_count == 2
                dead.complete_message(letter)


def test_defer_sets_aside_and_unsupported_management_answers_clearly(broker: Broker) -> None:
    """A deferred message is kept but not redelivered; management requests we lack fail fast."""
    broker.publish(TOPIC, [b"later"])
    with client_for(broker.port) as client, client.get_subscription_receiver(TOPIC, SUBSCRIPTION) as receiver:
        (message,) = receive(receiver, 1)
        receiver.defer_message(message)
        assert receiver.receive_messages(max_wait_time=1) == []
        with pytest.raises(ServiceBusError, match="does not support"):
            receiver.peek_messages(max_message_count=1, timeout=10)
    assert broker.stats(SUBSCRIPTION_PATH).deferred == 1


def test_renew_lock_extends_the_lock(broker: Broker) -> None:
    """`renew_message_lock` answers through `$management` with a later locked-until."""
    broker.publish(TOPIC, [b"slow work"])
    with client_for(broker.port) as client, client.get_subscription_receiver(TOPIC, SUBSCRIPTION) as receiver:
        (message,) = receive(receiver, 1)
        before = message.locked_until_utc
        assert before is not None
        time.sleep(0.05)  # so that the renewed lock lies measurably later
        after = receiver.renew_message_lock(message)
        assert after > before
        receiver.complete_message(message)


def test_lock_expiry_redelivers(tmp_path: Path) -> None:
    """A message whose lock passes without settlement is delivered again, counted."""
    with running_broker(tmp_path, lock_duration_s=1.0) as broker:
        (seq,) = broker.publish(TOPIC, [b"forgotten"])
        with (
            client_for(broker.port) as client,
            client.get_subscription_receiver(TOPIC, SUBSCRIPTION) as receiver,
        ):
            (first,) = receive(receiver, 1)
            assert first.delivery_count == 0
            (again,) = receive(receiver, 1)
            assert (again.sequence_number, again.delivery_count) == (seq, 1)
            receiver.complete_message(again)


# The SDK leaves its socket to the garbage collector after the broker drops the connection.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_connection_drop_redelivers_unsettled(broker: Broker) -> None:
    """Messages held by a connection that drops are delivered again to the next receiver."""
    seqs = broker.publish(TOPIC, [b"a", b"b", b"c"])
    with client_for(broker.port) as client:
        receiver = client.get_subscription_receiver(TOPIC, SUBSCRIPTION, prefetch_count=3)
        with receiver:
            got = receive(receiver, 3)
            assert sorted(m.sequence_number for m in got) == seqs
            receiver.complete_message(got[0])
            assert broker.drop_connections() >= 1
            with pytest.raises(ServiceBusError):
                receiver.complete_message(got[1])  # the lock went with the connection
        with client_for(broker.port) as fresh, fresh.get_subscription_receiver(TOPIC, SUBSCRIPTION) as again:
            back = receive(again, 2)
            assert sorted(m.sequence_number for m in back) == sorted(m.sequence_number for m in got[1:])
            assert {m.delivery_count for m in back} == {1}
            for message in back:
                again.complete_message(message)
    gc.collect()  # collect the SDK's orphaned socket inside this test (see the mark)


def test_receiver_close_releases_prefetched_without_counting(broker: Broker) -> None:
    """Closing a receiver releases what it prefetched: delivered again with delivery count 0."""
    broker.publish(TOPIC, [f"p{i}".encode() for i in range(5)])
    with client_for(broker.port) as client:
        with client.get_subscription_receiver(TOPIC, SUBSCRIPTION, prefetch_count=5) as receiver:
            (one,) = receive(receiver, 1)
            receiver.complete_message(one)
        with client.get_subscription_receiver(TOPIC, SUBSCRIPTION) as again:
            rest = receive(again, 4)
            assert len(rest) == 4
            assert {m.delivery_count for m in rest} == {0}
            for message in rest:
                again.complete_message(message)


def test_wrong_sas_key_is_refused(broker: Broker) -> None:
    """A token signed with the wrong key is refused on `$cbs`; nothing is received."""
    broker.publish(TOPIC, [b"secret"])
    with (
        client_for(broker.port, key="not-the-key", retry_total=0) as client,
        pytest.raises(ServiceBusAuthenticationError),
        client.get_subscription_receiver(TOPIC, SUBSCRIPTION) as receiver,
    ):
        receiver.receive_messages(max_wait_time=1)
    assert broker.stats(SUBSCRIPTION_PATH).available == 1


def test_unknown_subscription_is_not_found(broker: Broker) -> None:
    """An attach to an entity the broker does not hold is refused with amqp:not-found."""
    with (
        client_for(broker.port, retry_total=0) as client,
        pytest.raises(MessagingEntityNotFoundError),
        client.get_subscription_receiver(TOPIC, "nobody") as receiver,
    ):
        receiver.receive_messages(max_wait_time=1)


def test_sdk_sender_single_and_batch_messages_arrive(broker: Broker) -> None:
    """Messages sent with the SDK's topic sender (one, then a batch) arrive with their properties."""
    with client_for(broker.port) as client:
        with client.get_topic_sender(TOPIC) as sender:
            sender.send_messages(ServiceBusMessage(b"one", application_properties={"kind": "single"}))
            batch = sender.create_message_batch()
            for i in range(3):
                batch.add_message(ServiceBusMessage(f"b{i}".encode()))
            sender.send_messages(batch)
        with client.get_subscription_receiver(TOPIC, SUBSCRIPTION) as receiver:
            got = receive(receiver, 4)
            assert [body(m) for m in got] == [b"one", b"b0", b"b1", b"b2"]
            assert got[0].application_properties == {b"kind": b"single"}
            for message in got:
                receiver.complete_message(message)


def test_state_survives_a_restart(tmp_path: Path) -> None:
    """Stopped and started on the same data: unsettled messages, counts and sequence numbers remain."""
    with running_broker(tmp_path) as broker:
        broker.publish(TOPIC, [b"x", b"y"])
        with (
            client_for(broker.port) as client,
            client.get_subscription_receiver(TOPIC, SUBSCRIPTION) as receiver,
        ):
            first = receive(receiver, 2)
            receiver.complete_message(first[0])
            receiver.abandon_message(first[1])
    with running_broker(tmp_path) as broker:
        assert broker.publish(TOPIC, [b"z"]) == [3]
        with (
            client_for(broker.port) as client,
            client.get_subscription_receiver(TOPIC, SUBSCRIPTION) as receiver,
        ):
            got = receive(receiver, 2)
            assert [(body(m), m.delivery_count) for m in got] == [(b"y", 1), (b"z", 0)]
            for message in got:
                receiver.complete_message(message)


def test_a_receive_while_the_broker_is_gone_raises_a_connection_error(tmp_path: Path) -> None:
    """With no broker listening the client reports a connection error instead of hanging."""
    with running_broker(tmp_path) as broker:
        port = broker.port
    with (
        client_for(port, retry_total=0) as client,
        pytest.raises(ServiceBusConnectionError),
        client.get_subscription_receiver(TOPIC, SUBSCRIPTION) as receiver,
    ):
        receiver.receive_messages(max_wait_time=1)
