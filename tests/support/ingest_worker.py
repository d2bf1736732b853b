"""A consumer in its own process that SIGKILLs itself right after its first batch is durable.

`python -m tests.support.ingest_worker DATA_DIR PORT` (the local broker's demo key): the batch is
in the outbox, nothing is completed, and no shutdown code runs.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from storage import Storage
from zapflow.clock import FakeClock
from zapflow.domain.models import ConnectionDetails
from zapflow.ingest.demo import local_broker_details
from zapflow.ingest.sink import OutboxSink
from zapflow.servicebus import Consumer, ConsumerOptions, ReceivedMessage
from zapflow.servicebus.azure import AzureEventSource
from zapflow.simulator.cloud import BrokerEndpoint


def local_details(port: int) -> ConnectionDetails:
    """The simulator's broker endpoint on `port` (plain AMQP, demo key)."""
    return local_broker_details(BrokerEndpoint(port=port))


class DyingSink(OutboxSink):
    """Lands the batch durably, then dies before the consumer can complete it."""

    def land(self, key: str, messages: Sequence[ReceivedMessage], *, received_at: datetime) -> int:
        """Land, then SIGKILL."""
        quarantined = super().land(key, messages, received_at=received_at)
        print(f"landed {len(messages)}", flush=True)  # noqa: T201 - the parent reads it
        os.kill(os.getpid(), signal.SIGKILL)
        return quarantined


def main() -> None:
    """Consume until the first batch kills the process."""
    data_dir, port = Path(sys.argv[1]), int(sys.argv[2])
    clock = FakeClock()
    storage = Storage.at(data_dir)
    storage.ensure_ready()
    sink = DyingSink(storage, chargers={}, clock=clock)
    consumer = Consumer(
        lambda: local_details(port),
        AzureEventSource,
        sink,
        clock=clock,
        options=ConsumerOptions(batch_size=25, max_wait_s=2.0),
    )
    consumer.run(duration_s=60, drain=True)


if __name__ == "__main__":
    main()
