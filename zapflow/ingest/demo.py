"""Ingest beside the simulated day (`make demo`): the real consumer, SDK and local broker, in a thread.

The world publishes to the local broker as it steps; a consumer thread drains it into the same
storage the ticks read. Before each tick the day waits until the subscription is empty, so the
tick sees every event published so far (the consumer completes a message only once it is stored).
Bookkeeping times come from the simulated clock; the broker and the SDK run on real time.
"""

from __future__ import annotations

import math
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from storage import Storage
from zapflow.clock import Clock
from zapflow.domain.models import ConnectionDetails
from zapflow.ingest.sink import OutboxSink
from zapflow.servicebus import Consumer, ConsumerOptions
from zapflow.servicebus.azure import AzureEventSource
from zapflow.simulator.broker import Broker, BrokerEventSink, attach_broker
from zapflow.simulator.cloud import BrokerEndpoint, SimulatedCloud
from zapflow.zaptec import mapping, wire

__all__ = ["DemoIngest", "local_broker_details"]

_SETTLE_TIMEOUT_S = 60.0


def local_broker_details(endpoint: BrokerEndpoint) -> ConnectionDetails:
    """What the simulator's connection-details endpoints hand out for `endpoint`, parsed as from Zaptec."""
    return mapping.connection_details(wire.ConnectionDetailsBody.model_validate(endpoint.descriptor()))


class DemoIngest:
    """Start with `start(cloud, storage, clock)`, call `settle()` before each tick, `close()` at the end."""

    def __init__(self) -> None:
        self.sink = BrokerEventSink(BrokerEndpoint().topic)
        """The world's event sink: give it to `build` (it publishes to the broker once attached)."""
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.broker: Broker | None = None
        self.consumer: Consumer | None = None
        self._path = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def start(self, cloud: SimulatedCloud, storage: Storage, clock: Clock) -> None:
        """Attach a broker to `cloud` and start consuming into `storage`."""
        # Made here, not in __init__, so a demo that fails before starting leaves nothing behind.
        self._tmp = tempfile.TemporaryDirectory(prefix="zapflow-demo-broker-")
        self.broker = attach_broker(cloud, self.sink, data_dir=Path(self._tmp.name)).start()
        endpoint = cloud.broker
        self._path = f"{endpoint.topic}/Subscriptions/{endpoint.subscription}"
        details = local_broker_details(endpoint)
        chargers = {c.charger_id: c.installation_id for c in cloud.world.chargers.values()}
        sink = OutboxSink(storage, chargers=chargers, clock=clock)
        # Merge only at the end: the ticks read pending outbox rows, and one merger is enough.
        options = ConsumerOptions(batch_size=100, max_wait_s=0.2, flush_every_s=math.inf)
        self.consumer = Consumer(lambda: details, AzureEventSource, sink, clock=clock, options=options)
        self._thread = threading.Thread(target=self._run, name="zapflow-demo-ingest", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        assert self.consumer is not None  # noqa: S101 - set by start
        try:
            self.consumer.run(duration_s=math.inf, stop=self._stop)
        except BaseException as exc:  # noqa: BLE001 - reported by settle()
            self._error = exc

    def settle(self) -> None:
        """Wait until everything published so far is stored (bounded; raises if the consumer died)."""
        assert self.broker is not None  # noqa: S101 - set by start
        deadline = time.monotonic() + _SETTLE_TIMEOUT_S
        while True:
            if self._error is not None:
                msg = f"the ingest consumer stopped: {self._error}"
                raise RuntimeError(msg)
            stats = self.broker.stats(self._path)
            if stats.available + stats.locked == 0:
                return
            if time.monotonic() > deadline:
                msg = f"ingest did not drain the subscription within {_SETTLE_TIMEOUT_S:.0f} s"
                raise RuntimeError(msg)
            time.sleep(0.005)

    def summary(self) -> dict[str, Any]:
        """The consumer's counts."""
        stats = self.consumer.stats if self.consumer is not None else None
        return {
            "messages": stats.messages if stats else 0,
            "stored": stats.stored if stats else 0,
            "quarantined": stats.quarantined if stats else 0,
        }

    def close(self) -> None:
        """Stop the consumer (its final flush merges), then the broker; safe to call more than once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None
        if self.broker is not None:
            self.broker.stop()
            self.broker = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
