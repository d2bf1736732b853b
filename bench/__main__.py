"""`python -m bench`: client and decoder overhead, as ratios against a baseline in the same run.

Absolute timings on shared 2-core machines move by +-30 %; a ratio of two measurements taken
side by side in one process is what we compare between versions.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable

import httpx
from rich.console import Console
from rich.table import Table

from zapflow.clock import FakeClock
from zapflow.settings import ZaptecSettings
from zapflow.zaptec import AccountRegistry, RetryPolicy, ZaptecClient
from zapflow.zaptec.nbfx import decode_message, encode_message
from zapflow.zaptec.recorded import RECORDED_INSTALLATION_ID, RecordedZaptec


def _best_of(fn: Callable[[], object], *, loops: int, repeats: int = 5) -> float:
    """Median seconds per call over `repeats` runs of `loops` calls."""
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(loops):
            fn()
        runs.append((time.perf_counter() - started) / loops)
    return statistics.median(runs)


def bench_client() -> tuple[float, float]:
    """Seconds per get_installation through ZaptecClient vs a bare httpx GET + json.loads."""
    clock = FakeClock()
    cloud = RecordedZaptec(clock=clock)
    settings = ZaptecSettings(
        base_url="https://bench.invalid", username=cloud.username, password=cloud.password
    )
    client = ZaptecClient.from_settings(
        settings, transport=cloud.transport(), clock=clock, accounts=AccountRegistry(), retry=RetryPolicy()
    )
    client.get_installation(RECORDED_INSTALLATION_ID)
    token = "recorded-token-1"  # noqa: S105 - the fake cloud's first token
    raw = httpx.Client(base_url="https://bench.invalid", transport=cloud.transport())
    path = f"/api/installation/{RECORDED_INSTALLATION_ID}"

    def bare() -> object:
        return json.loads(raw.get(path, headers={"Authorization": f"Bearer {token}"}).content)

    def ours() -> object:
        cloud.requests.clear()  # keep the fake's request log from growing during the bench
        return client.get_installation(RECORDED_INSTALLATION_ID)

    return _best_of(ours, loops=300), _best_of(bare, loops=300)


def bench_nbfx() -> tuple[float, float]:
    """Seconds per decode of a real-shaped Service Bus body vs json.loads of its JSON alone."""
    payload = {
        "DeviceId": "ZAP000000",
        "DeviceType": 4,
        "ChargerId": "de522271-91f5-45b8-916b-07e258ff07d2",
        "StateId": 513,
        "Timestamp": "2026-05-20T12:41:41.55472Z",
        "ValueAsString": "10969.104",
    }
    body = encode_message(payload)
    text = json.dumps(payload, separators=(",", ":")).encode()
    return _best_of(lambda: decode_message(body), loops=20_000), _best_of(
        lambda: json.loads(text), loops=20_000
    )


def bench_simulator() -> float:
    """Simulated seconds per wall second: the sunny-day world stepped through 12 hours at 1 s ticks."""
    from zapflow.simulator.scenarios import build, scenario  # noqa: PLC0415 - heavy data deps

    cloud = build(scenario("sunny-day"), wall=FakeClock())
    cloud.step(60)  # site data loaded and cached before timing
    started = time.perf_counter()
    cloud.step(12 * 3600)
    return 12 * 3600 / (time.perf_counter() - started)


def main() -> None:
    """Run every benchmark and print one table."""
    table = Table(title="zapflow bench (ratios measured in one run)")
    for column in ("benchmark", "ours µs", "baseline µs", "ratio", "baseline"):
        table.add_column(column)
    for name, (ours, base), baseline in (
        ("client GET installation", bench_client(), "bare httpx GET + json.loads, same transport"),
        ("NBFX decode", bench_nbfx(), "json.loads of the bare JSON"),
    ):
        table.add_row(name, f"{ours * 1e6:.1f}", f"{base * 1e6:.1f}", f"{ours / base:.2f}x", baseline)
    Console().print(table)
    Console().print(
        f"simulator: {bench_simulator():,.0f} simulated seconds per wall second (sunny-day, 1 s ticks)"
    )


if __name__ == "__main__":
    main()
