"""The real azure-servicebus client against the local broker in another process: receive + complete.

`python -m bench.broker [N]` runs it alone. The client receives in batches of 100 with prefetch
100 and completes every message (one disposition round trip each, as the SDK does). Broker CPU
comes from /proc/<pid>/stat of the broker process (Linux), read before and after the run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from azure.servicebus import ServiceBusClient, ServiceBusMessage

from zapflow.simulator.broker import connection_string

ROOT = Path(__file__).resolve().parents[1]
TOPIC = "zapflow-sim"
SUBSCRIPTION = "default"


@dataclass(frozen=True)
class BrokerBench:
    """One run's figures."""

    messages: int
    seconds: float
    client_cpu_s: float
    broker_cpu_s: float

    @property
    def rate(self) -> float:
        """Messages received and completed per second."""
        return self.messages / self.seconds

    @property
    def broker_cpu_us_per_msg(self) -> float:
        """Broker CPU (user + system) per message, in µs."""
        return self.broker_cpu_s / self.messages * 1e6

    @property
    def client_cpu_us_per_msg(self) -> float:
        """Client CPU per message, in µs."""
        return self.client_cpu_s / self.messages * 1e6


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def broker_process(data_dir: Path) -> Iterator[tuple[int, int]]:
    """`python -m zapflow.simulator.broker` in a child process on a free port: yields (pid, port)."""
    process = subprocess.Popen(  # noqa: S603 - our own module
        [sys.executable, "-m", "zapflow.simulator.broker", "--port", "0", "--data-dir", str(data_dir)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None  # noqa: S101 - piped above
        yield process.pid, int(process.stdout.readline().split()[1])
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)


def client(port: int) -> ServiceBusClient:
    """The SDK client for the local broker on `port` (demo key)."""
    return ServiceBusClient.from_connection_string(
        connection_string("127.0.0.1", port, "zapflow-sim", "zapflow-sim-sas-key")
    )


def publish(port: int, bodies: Sequence[str | bytes]) -> None:
    """Send `bodies` to the topic in batches of 500."""
    with client(port) as sb, sb.get_topic_sender(TOPIC) as sender:
        for start in range(0, len(bodies), 500):
            out = sender.create_message_batch()
            for body in bodies[start : start + 500]:
                out.add_message(ServiceBusMessage(body))
            sender.send_messages(out)


def bench_broker(messages: int = 20_000, batch: int = 100) -> BrokerBench:
    """Publish `messages`, then time receive + complete of all of them (broker in a child process)."""
    with tempfile.TemporaryDirectory() as tmp, broker_process(Path(tmp)) as (pid, port):
        publish(port, [f'{{"i":{i},"ValueAsString":"10969.104"}}' for i in range(messages)])
        with (
            client(port) as sb,
            sb.get_subscription_receiver(TOPIC, SUBSCRIPTION, prefetch_count=batch) as receiver,
        ):
            broker_before = _cpu_s(pid)
            client_before = time.process_time()
            started = time.perf_counter()
            done = 0
            while done < messages:
                got = receiver.receive_messages(max_message_count=batch, max_wait_time=5)
                if not got:
                    break
                for message in got:
                    receiver.complete_message(message)
                done += len(got)
            seconds = time.perf_counter() - started
            client_cpu = time.process_time() - client_before
            broker_cpu = _cpu_s(pid) - broker_before
    if done != messages:
        msg = f"received {done} of {messages} messages"
        raise RuntimeError(msg)
    return BrokerBench(done, seconds, client_cpu, broker_cpu)


def main() -> None:
    """Print the figures of one run."""
    messages = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    result = bench_broker(messages)
    print(
        f"broker receive+complete: {result.messages} msgs in {result.seconds:.1f} s "
        f"= {result.rate:,.0f} msg/s; "
        f"client CPU {result.client_cpu_s:.1f} s ({result.client_cpu_us_per_msg:.0f} µs/msg), "
        f"broker CPU {result.broker_cpu_s:.2f} s ({result.broker_cpu_us_per_msg:.0f} µs/msg, "
        f"{result.broker_cpu_s / result.client_cpu_s:.2f}x the client's)"
    )


if __name__ == "__main__":
    main()


def bench_row(messages: int = 10_000) -> tuple[str, str, float, float, str]:
    """`make bench`'s row: broker CPU per message against the SDK client's, one run; prints the rate."""
    result = bench_broker(messages)
    print(
        f"broker: {result.messages:,} msgs received+completed at {result.rate:,.0f} msg/s "
        f"(batch and prefetch 100), client CPU {result.client_cpu_s:.2f} s, "
        f"broker CPU {result.broker_cpu_s:.2f} s"
    )
    return (
        f"broker receive+complete, {messages // 1000}k",
        "CPU µs per msg",
        result.broker_cpu_us_per_msg,
        result.client_cpu_us_per_msg,
        "the SDK client's CPU per msg",
    )
