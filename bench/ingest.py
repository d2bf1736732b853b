"""Ingest end to end (decode, outbox, merge, complete) against the raw receive + complete of the same client.

`python -m bench.ingest [N]` runs it alone. One broker process; N NBFX observation messages are
published, drained raw (the SDK receiver through `AzureEventSource`: receive, complete), published
again and drained by the ingest consumer into a fresh storage dir (final merge included). Same
client, prefetch and batch size; the two rates are measured side by side in one run.

Both paths first run once untimed on `WARMUP` messages, as a long-running process has long before:
the first pass of each pays one-off costs (the SDK's first connection, DuckDB's and pyarrow's
first use: about 0.9 s for storage alone), which are not throughput and used to land on whichever
path ran first.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from bench.broker import broker_process, publish
from storage import Storage
from zapflow.clock import SYSTEM_CLOCK
from zapflow.domain.models import ConnectionDetails
from zapflow.ingest.demo import local_broker_details
from zapflow.ingest.sink import OutboxSink
from zapflow.servicebus import Consumer, ConsumerOptions, ReceivedMessage
from zapflow.servicebus.azure import AzureEventSource, AzureOptions
from zapflow.simulator.broker import encode_nbfx
from zapflow.simulator.cloud import BrokerEndpoint

BATCH = 100
WARMUP = 200


def _details(port: int) -> ConnectionDetails:
    return local_broker_details(BrokerEndpoint(port=port))


def _body(i: int) -> bytes:
    """Observation `i`: distinct (charger, state id, timestamp) for every i below 360k (10:00-11:00)."""
    return encode_nbfx(
        {
            "DeviceId": "ZAP000001",
            "DeviceType": 4,
            "ChargerId": f"de522271-91f5-45b8-916b-{i % 50:012d}",
            "StateId": 500 + i % 60,
            "Timestamp": f"2026-06-21T10:{i // 6000 % 60:02d}:{i // 100 % 60:02d}.{i % 100:02d}",
            "ValueAsString": f"{i * 0.001:.3f}",
        }
    )


def _publish(port: int, messages: int) -> None:
    publish(port, [_body(i) for i in range(messages)])


def _raw(port: int, messages: int) -> float:
    """Seconds to connect, receive and complete `messages` with the bare source, and close."""
    started = time.perf_counter()
    source = AzureEventSource(_details(port), AzureOptions(prefetch=BATCH))
    try:
        done = 0
        while done < messages:
            got = source.receive(BATCH, 5.0)
            if not got:
                break
            source.complete(got)
            done += len(got)
    finally:
        source.close()
    seconds = time.perf_counter() - started
    if done != messages:
        msg = f"raw: received {done} of {messages}"
        raise RuntimeError(msg)
    return seconds


def _ingest(port: int, messages: int, data_dir: Path) -> float:
    """Seconds for the ingest consumer to store and complete `messages`, the final merge included."""
    storage = Storage.at(data_dir)
    storage.ensure_ready()
    done = threading.Event()

    class Counting(OutboxSink):
        """Stops the run once every message is stored, as the raw loop stops once all are received."""

        landed = 0

        def land(self, key: str, batch: Sequence[ReceivedMessage], *, received_at: datetime) -> int:
            quarantined = super().land(key, batch, received_at=received_at)
            self.landed += len(batch)
            if self.landed >= messages:
                done.set()  # the consumer completes this batch, then stops and merges
            return quarantined

    sink = Counting(storage, chargers={}, clock=SYSTEM_CLOCK)
    consumer = Consumer(
        lambda: _details(port),
        lambda details: AzureEventSource(details, AzureOptions(prefetch=BATCH)),
        sink,
        clock=SYSTEM_CLOCK,
        options=ConsumerOptions(batch_size=BATCH, max_wait_s=5.0),
    )
    started = time.perf_counter()
    stats = consumer.run(duration_s=3600, stop=done)  # the final merge is inside the timing
    seconds = time.perf_counter() - started
    stored = storage.read("SELECT count(*) AS n FROM charger_events", include_pending=False).to_pylist()[0][
        "n"
    ]
    if stats.messages != messages or stored != messages:
        msg = f"ingest: {stats.messages} received, {stored} stored of {messages}"
        raise RuntimeError(msg)
    return seconds


def bench_ingest(messages: int = 10_000) -> tuple[float, float]:
    """(ingest msg/s, raw msg/s) measured in one run against one broker process."""
    with tempfile.TemporaryDirectory() as tmp, broker_process(Path(tmp) / "broker") as (_pid, port):
        _publish(port, WARMUP)
        _raw(port, WARMUP)
        _publish(port, WARMUP)
        _ingest(port, WARMUP, Path(tmp) / "warmup")
        _publish(port, messages)
        raw_s = _raw(port, messages)
        _publish(port, messages)
        ingest_s = _ingest(port, messages, Path(tmp) / "data")
    return messages / ingest_s, messages / raw_s


def bench_row(messages: int = 10_000) -> tuple[str, str, float, float, str]:
    """`make bench`'s row: ingest end to end against raw receive + complete."""
    ours, raw = bench_ingest(messages)
    print(f"ingest: {messages:,} msgs end to end at {ours:,.0f} msg/s; raw receive+complete {raw:,.0f} msg/s")
    return (
        f"ingest end to end, {messages // 1000}k",
        "msg/s",
        ours,
        raw,
        "raw receive + complete, same client",
    )


def main() -> None:
    """Print the figures of one run."""
    messages = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    ours, raw = bench_ingest(messages)
    print(f"ingest {ours:,.0f} msg/s, raw {raw:,.0f} msg/s: {ours / raw:.0%} of raw ({messages:,} messages)")


if __name__ == "__main__":
    main()
