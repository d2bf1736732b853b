"""The broker's life: killed and restarted, idle subscriptions expiring, the world publishing to it."""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from azure.servicebus import ServiceBusMessage, ServiceBusReceivedMessage
from azure.servicebus.exceptions import MessagingEntityNotFoundError, ServiceBusError

from tests.support.broker import (
    SUBSCRIPTION,
    SUBSCRIPTION_PATH,
    TOPIC,
    BrokerProcess,
    client_for,
    running_broker,
)
from zapflow.clock import FakeClock
from zapflow.simulator.broker import BrokerEventSink, PublishFaults, attach_broker, connection_string
from zapflow.simulator.scenarios import build, scenario
from zapflow.zaptec.errors import MessageDecodeError
from zapflow.zaptec.nbfx import decode_message

DAY_S = 86400.0


def _body(message: ServiceBusReceivedMessage) -> bytes:
    return b"".join(message.body)


# The SDK leaves its old socket to the garbage collector after the broker process dies.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_broker_killed_mid_stream_loses_nothing(tmp_path: Path) -> None:
    """SIGKILL and restart: the receiver reconnects; unsettled + unreceived arrive, completed never."""
    process = BrokerProcess(tmp_path / "broker")
    port = process.start()
    try:
        with client_for(port, retry_total=10) as client:
            with client.get_topic_sender(TOPIC) as sender:
                batch = sender.create_message_batch()
                for i in range(40):
                    batch.add_message(ServiceBusMessage(f"k{i:02d}".encode()))
                sender.send_messages(batch)
            with client.get_subscription_receiver(TOPIC, SUBSCRIPTION, prefetch_count=5) as receiver:
                first: list[ServiceBusReceivedMessage] = []
                while len(first) < 10:
                    first.extend(
                        receiver.receive_messages(max_message_count=10 - len(first), max_wait_time=1)
                    )
                for message in first[:5]:
                    receiver.complete_message(message)
                completed = {_body(m) for m in first[:5]}
                process.kill()
                assert process.start() == port
                after: dict[bytes, ServiceBusReceivedMessage] = {}
                deadline = time.monotonic() + 60
                while len(after) < 35 and time.monotonic() < deadline:
                    try:
                        batch_in = receiver.receive_messages(max_message_count=20, max_wait_time=1)
                    except ServiceBusError:
                        continue  # the receive that meets the dead connection; the next reconnects
                    for message in batch_in:
                        after.setdefault(_body(message), message)
                assert set(after) == {f"k{i:02d}".encode() for i in range(40)} - completed
                for message in after.values():
                    # A copy prefetched before the kill cannot be settled: its lock died with the broker.
                    with contextlib.suppress(ServiceBusError):
                        receiver.complete_message(message)
                leftover = receiver.receive_messages(max_message_count=40, max_wait_time=2)
                for message in leftover:
                    receiver.complete_message(message)
                assert not {_body(m) for m in leftover} & completed
                assert receiver.receive_messages(max_wait_time=1) == []
    finally:
        assert process.stop() == 0
    gc.collect()  # collect the SDK's orphaned socket inside this test (see the mark)


def test_subscription_deleted_after_14_idle_days_on_the_simulator_clock(tmp_path: Path) -> None:
    """No receive attempt for 14 days (simulated): the subscription is gone and attaches are refused."""
    clock = FakeClock()
    with running_broker(tmp_path, clock=clock) as broker:
        broker.publish(TOPIC, [b"left behind"])
        clock.advance(14 * DAY_S - 60)
        assert not broker.stats(SUBSCRIPTION_PATH).deleted
        clock.advance(60)
        assert broker.stats(SUBSCRIPTION_PATH).deleted
        with (
            client_for(broker.port, retry_total=0) as client,
            pytest.raises(MessagingEntityNotFoundError),
            client.get_subscription_receiver(TOPIC, SUBSCRIPTION) as receiver,
        ):
            receiver.receive_messages(max_wait_time=1)
        broker.publish(TOPIC, [b"nobody listens"])
    with running_broker(tmp_path, clock=clock) as broker:
        assert broker.stats(SUBSCRIPTION_PATH).deleted  # deletion is durable


def test_subscription_alive_at_60_days_with_an_empty_receive_every_few_days(tmp_path: Path) -> None:
    """An empty receive every 3 simulated days keeps the subscription for 60 days and beyond."""
    clock = FakeClock()
    with running_broker(tmp_path, clock=clock) as broker, client_for(broker.port) as client:
        receiver = client.get_subscription_receiver(TOPIC, SUBSCRIPTION)
        with receiver:
            for _ in range(20):
                clock.advance(3 * DAY_S)
                assert receiver.receive_messages(max_wait_time=0.2) == []
            assert not broker.stats(SUBSCRIPTION_PATH).deleted
        broker.publish(TOPIC, [b"still here"])
        with client.get_subscription_receiver(TOPIC, SUBSCRIPTION) as receiver:
            (message,) = receiver.receive_messages(max_wait_time=5)
            assert _body(message) == b"still here"
            receiver.complete_message(message)


def test_world_observations_arrive_as_zaptec_publishes_them(tmp_path: Path) -> None:
    """The simulated world's state changes arrive NBFX-wrapped with Zaptec's JSON fields, with faults."""
    sink = BrokerEventSink(TOPIC, faults=PublishFaults(duplicate_every=5, malformed_every=7))
    cloud = build(scenario("sunny-day"), wall=FakeClock(), sink=sink)
    broker = attach_broker(cloud, sink, data_dir=tmp_path)
    with broker:
        assert cloud.broker.port == broker.port
        cloud.step(600)
        published = broker.stats(SUBSCRIPTION_PATH).available
        assert published > 7
        endpoint = cloud.broker
        conn = connection_string(endpoint.host, endpoint.port, endpoint.username, endpoint.password)
        decoded, malformed = [], 0
        with (
            client_for(broker.port) as client,
            client.get_subscription_receiver(
                endpoint.topic, endpoint.subscription, prefetch_count=50
            ) as receiver,
        ):
            assert "UseDevelopmentEmulator=true" in conn
            while len(decoded) + malformed < published:
                for message in receiver.receive_messages(max_message_count=50, max_wait_time=1):
                    try:
                        decoded.append(decode_message(_body(message)))
                    except MessageDecodeError:
                        malformed += 1
                    receiver.complete_message(message)
    assert malformed >= 1
    assert set(decoded[0]) == {"DeviceId", "DeviceType", "ChargerId", "StateId", "Timestamp", "ValueAsString"}
    keys = [(e["ChargerId"], e["StateId"], e["Timestamp"], e["ValueAsString"]) for e in decoded]
    assert len(keys) > len(set(keys))  # the duplicates arrived


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_starts_the_broker_and_hands_out_its_details(tmp_path: Path) -> None:
    """`simulator serve` serves HTTP and AMQP; the connection details reach the broker; SIGTERM exits 0."""
    port = _free_port()
    process = subprocess.Popen(  # noqa: S603 - our own CLI
        [
            sys.executable,
            "-m",
            "zapflow",
            "simulator",
            "serve",
            "--port",
            str(port),
            "--scale",
            "0",
            "--broker-data-dir",
            str(tmp_path / "broker"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "200"},
    )
    base_url = f"http://127.0.0.1:{port}"
    assert process.stdout is not None
    seen: list[str] = []
    try:
        while not seen or "simulator ready" not in seen[-1]:
            line = process.stdout.readline().decode()
            assert line, "simulator exited before it was ready:\n" + "".join(seen)
            seen.append(line)
        token = httpx.post(
            f"{base_url}/oauth/token",
            data={"grant_type": "password", "username": "demo@zapflow.local", "password": "zapflow-demo"},
        ).json()["access_token"]
        group = "4f6c3b1e-9a2d-4e57-8b10-5a1d2c3e4f50"
        details = httpx.get(
            f"{base_url}/api/userGroups/{group}/messagingConnectionDetails",
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        assert details["UseSSL"] is False
        httpx.post(f"{base_url}/_sim/step", json={"seconds": 300}).raise_for_status()
        with (
            client_for(details["Port"]) as client,
            client.get_subscription_receiver(details["Topic"], details["Subscription"]) as receiver,
        ):
            (message,) = receiver.receive_messages(max_wait_time=10)
            assert "ChargerId" in decode_message(_body(message))
            receiver.complete_message(message)
    finally:
        process.send_signal(signal.SIGTERM)
        output = "".join(seen) + process.communicate(timeout=30)[0].decode()
    assert process.returncode == 0, output
    assert "Traceback" not in output
    assert "zapflow-sim-sas-key" not in output.replace("ZAPFLOW", "")
