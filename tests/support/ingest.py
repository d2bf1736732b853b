"""The ingest flow's body against the simulated cloud (over HTTP) and the local broker (real SDK)."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from storage import Storage
from tests.support.broker import SUBSCRIPTION_PATH, TOPIC
from zapflow.balance.simday import site_for
from zapflow.clock import FakeClock
from zapflow.domain.policy import PolicyMode
from zapflow.settings import AppSettings, IngestSettings, StorageSettings, ZaptecSettings
from zapflow.simulator.broker import Broker, BrokerConfig, BrokerEventSink, PublishFaults, attach_broker
from zapflow.simulator.cloud import SimulatedCloud
from zapflow.simulator.scenarios import Scenario, build, scenario
from zapflow.simulator.server import SimulatorServer
from zapflow.sites import SiteConfig


class RecordingSink:
    """Keeps every observation the world publishes, then hands it to the broker sink."""

    def __init__(self, inner: BrokerEventSink) -> None:
        self.inner = inner
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def publish(self, event: dict[str, Any]) -> None:
        """Record, then publish."""
        with self._lock:
            self.events.append(event)
        self.inner.publish(event)


@dataclass
class IngestRig:
    """A simulated cloud serving HTTP, its broker, a storage dir and the settings the flow reads."""

    cloud: SimulatedCloud
    broker: Broker
    server: SimulatorServer
    recorder: RecordingSink
    data_dir: Path
    site: SiteConfig
    """The first installation's."""
    sites: list[SiteConfig] = field(default_factory=list)
    """Every installation's."""
    clock: FakeClock = field(default_factory=FakeClock)
    ingest: dict[str, Any] = field(default_factory=dict)

    @property
    def settings(self) -> AppSettings:
        """Settings pointing at the simulator with the account's user group."""
        account = self.cloud.account
        return AppSettings(
            _env_file=None,  # type: ignore[call-arg]
            zaptec=ZaptecSettings(
                _env_file=None,  # type: ignore[call-arg]
                base_url=self.server.base_url,
                username=account.username,
                password=SecretStr(account.password),
                user_group_id=account.user_group_id,
                retry_attempts=2,
                retry_max_total_s=1.0,
            ),
            storage=StorageSettings(_env_file=None, data_dir=self.data_dir),  # type: ignore[call-arg]
            ingest=IngestSettings(_env_file=None, **{"max_wait_s": 1.0, **self.ingest}),  # type: ignore[arg-type]
        )

    @property
    def storage(self) -> Storage:
        """The storage the flow writes."""
        return Storage(self.settings.storage)

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Query the ledger (pending rows included)."""
        return self.storage.read(sql, params).to_pylist()

    def pending(self, subscription: str = "default") -> int:
        """Messages still in the subscription (available or locked)."""
        stats = self.broker.stats(f"{TOPIC}/Subscriptions/{subscription}")
        return stats.available + stats.locked

    def dead_letters(self) -> int:
        """Messages in the dead-letter subqueue."""
        stats = self.broker.stats(f"{SUBSCRIPTION_PATH}/$DeadLetterQueue")
        return stats.available + stats.locked


@contextmanager
def ingest_rig(  # noqa: PLR0913 - the rig's knobs, keyword-only
    data_dir: Path,
    *,
    faults: PublishFaults | None = None,
    name: str = "sunny-day",
    chosen: Scenario | None = None,
    lock_duration_s: float = 30.0,
    broker_clock: FakeClock | None = None,
    legacy: bool = False,
) -> Iterator[IngestRig]:
    """The rig, running until the block ends; `broker_clock` gives the broker its own idle clock.

    `legacy`: the user group has no messaging, and each installation's (legacy) details name a
    subscription of its own; the world's events reach every subscription of the topic.
    """
    broker_sink = BrokerEventSink(TOPIC, faults=faults)
    recorder = RecordingSink(broker_sink)
    chosen = chosen or scenario(name)
    wall = broker_clock or FakeClock()  # the cloud's rate limit refills on it
    cloud = build(chosen, wall=wall, sink=recorder)
    cloud.user_group_messaging = not legacy
    cloud.legacy_subscription_per_installation = legacy
    if broker_clock is None:
        broker = attach_broker(
            cloud, broker_sink, data_dir=data_dir / "broker", lock_duration_s=lock_duration_s
        )
    else:
        endpoint = cloud.broker
        config = BrokerConfig(
            data_dir=data_dir / "broker",
            key_name=endpoint.username,
            key=endpoint.password,
            topics={endpoint.topic: cloud.subscriptions()},
            lock_duration_s=lock_duration_s,
        )
        broker = Broker(config, clock=broker_clock)
        cloud.broker = dataclasses.replace(endpoint, host=broker.host, port=broker.port, use_ssl=False)
        broker_sink.bind(broker)
    with broker, SimulatorServer(cloud) as server:
        sites = [
            site_for(chosen, cloud, server.base_url, mode=PolicyMode.SOLAR, name=i.name)
            for i in chosen.installations
        ]
        yield IngestRig(cloud, broker, server, recorder, data_dir / "data", sites[0], sites=sites, clock=wall)


def newest_per_key(events: list[dict[str, Any]]) -> dict[tuple[str, int], str | None]:
    """The newest observation's value per (charger, state id), as `charger_state_latest` must hold."""
    newest: dict[tuple[str, int], tuple[datetime, str | None]] = {}
    for e in events:
        key = (e["ChargerId"].lower(), int(e["StateId"]))
        at = datetime.fromisoformat(e["Timestamp"])
        if key not in newest or at >= newest[key][0]:
            newest[key] = (at, e["ValueAsString"])
    return {k: v[1] for k, v in newest.items()}
