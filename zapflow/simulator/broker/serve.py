"""Wiring the broker to a simulated cloud: one command serves both."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path

from zapflow.simulator.broker.core import Broker, BrokerConfig
from zapflow.simulator.broker.sink import BrokerEventSink
from zapflow.simulator.cloud import SimulatedCloud

__all__ = ["attach_broker"]


class _CloudClock:
    """The cloud's simulated time, followed through scenario reloads (which swap the clock)."""

    def __init__(self, cloud: SimulatedCloud) -> None:
        self._cloud = cloud

    def now(self) -> datetime:
        return self._cloud.clock.now()


def attach_broker(  # noqa: PLR0913 - where it listens and how locks behave
    cloud: SimulatedCloud,
    sink: BrokerEventSink,
    *,
    data_dir: Path,
    host: str = "127.0.0.1",
    port: int = 0,
    lock_duration_s: float = 30.0,
) -> Broker:
    """A broker (not started) for `cloud`: its connection details point at it, `sink` feeds it."""
    endpoint = cloud.broker
    config = BrokerConfig(
        data_dir=data_dir,
        host=host,
        port=port,
        key_name=endpoint.username,
        key=endpoint.password,
        topics={endpoint.topic: cloud.subscriptions()},
        lock_duration_s=lock_duration_s,
    )
    broker = Broker(config, clock=_CloudClock(cloud))
    cloud.broker = dataclasses.replace(endpoint, host=broker.host, port=broker.port, use_ssl=False)
    sink.bind(broker)
    return broker
