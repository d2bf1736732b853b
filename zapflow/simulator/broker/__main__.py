"""`python -m zapflow.simulator.broker --port P --data-dir D`: the broker alone, in its own process.

Prints `ready <port>` on stdout once listening; stops cleanly on SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from zapflow.simulator.broker.core import Broker, BrokerConfig


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, serve until signalled."""
    parser = argparse.ArgumentParser(prog="python -m zapflow.simulator.broker", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5672)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--topic", default="zapflow-sim")
    parser.add_argument("--subscription", action="append", default=None)
    parser.add_argument("--key-name", default="zapflow-sim")
    parser.add_argument("--key", default="zapflow-sim-sas-key")
    parser.add_argument("--lock-duration", type=float, default=30.0, help="seconds")
    parser.add_argument("--max-delivery-count", type=int, default=10)
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = BrokerConfig(
        data_dir=args.data_dir,
        host=args.host,
        port=args.port,
        key_name=args.key_name,
        key=args.key,
        topics={args.topic: tuple(args.subscription or ["default"])},
        lock_duration_s=args.lock_duration,
        max_delivery_count=args.max_delivery_count,
    )
    broker = Broker(config)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    broker.start()
    print(f"ready {broker.port}", flush=True)  # noqa: T201 - the parent process reads this line
    stop.wait()
    broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
