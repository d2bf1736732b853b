"""The local Service Bus broker for tests: in-process on a free port, or as its own process."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from azure.servicebus import ServiceBusClient

from zapflow.simulator.broker import Broker, BrokerConfig, connection_string
from zapflow.simulator.broker.core import NowClock

ROOT = Path(__file__).resolve().parents[2]
TOPIC = "zapflow-sim"
SUBSCRIPTION = "default"
KEY_NAME = "zapflow-sim"
KEY = "zapflow-sim-sas-key"
SUBSCRIPTION_PATH = f"{TOPIC}/Subscriptions/{SUBSCRIPTION}"


@contextmanager
def running_broker(
    data_dir: Path,
    *,
    clock: NowClock | None = None,
    lock_duration_s: float = 30.0,
    max_delivery_count: int = 10,
) -> Iterator[Broker]:
    """A broker serving on a free port in a background thread until the block ends."""
    config = BrokerConfig(
        data_dir=data_dir, lock_duration_s=lock_duration_s, max_delivery_count=max_delivery_count
    )
    broker = Broker(config) if clock is None else Broker(config, clock=clock)
    with broker:
        yield broker


def client_for(port: int, *, key: str = KEY, retry_total: int = 3) -> ServiceBusClient:
    """The real SDK client for a local broker (plain TCP); quick retries keep failing tests fast."""
    return ServiceBusClient.from_connection_string(
        connection_string("127.0.0.1", port, KEY_NAME, key),
        retry_total=retry_total,
        retry_backoff_factor=0.2,
        retry_backoff_max=1,
    )


class BrokerProcess:
    """`python -m zapflow.simulator.broker` in a child process (for SIGKILL tests and the bench)."""

    def __init__(self, data_dir: Path, *, port: int = 0, lock_duration_s: float = 30.0) -> None:
        self.data_dir = data_dir
        self.port = port
        self.lock_duration_s = lock_duration_s
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> int:
        """Start the broker (on the same port as before, if it ran) and return its port."""
        self.process = subprocess.Popen(  # noqa: S603 - our own module
            [
                sys.executable,
                "-m",
                "zapflow.simulator.broker",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
                "--lock-duration",
                str(self.lock_duration_s),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("ready "):
            _, err = self.process.communicate(timeout=30)
            msg = f"broker process did not start: {line!r}\n{err}"
            raise RuntimeError(msg)
        self.port = int(line.split()[1])
        return self.port

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        assert self.process is not None
        self.process.kill()
        self.process.communicate(timeout=30)

    def stop(self) -> int:
        """SIGTERM and wait; returns the exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self.process.communicate(timeout=30)
        return int(self.process.returncode)
