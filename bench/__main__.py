"""`python -m bench`: client and decoder overhead, as ratios against a baseline in the same run.

Absolute timings on shared 2-core machines move by +-30 %; a ratio of two measurements taken
side by side in one process is what we compare between versions.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from bench.broker import bench_row as bench_broker_row
from bench.ingest import bench_row as bench_ingest_row
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


def bench_storage(rows_n: int = 100_000, baseline_n: int = 5_000) -> tuple[float, float]:
    """Rows/s merged through the outbox (100 files of 1,000) vs row-by-row INSERTs, same machine, same run."""
    import tempfile  # noqa: PLC0415 - only this benchmark needs it

    import duckdb  # noqa: PLC0415

    from storage import Storage  # noqa: PLC0415

    t0 = datetime(2026, 6, 17, 12, tzinfo=UTC)
    rows = [
        {
            "charger_id": f"charger-{i % 50}",
            "state_id": 513,
            "observed_at": t0 + timedelta(seconds=i),
            "value": f"{i}.000",
            "source": "bench",
            "received_at": t0 + timedelta(seconds=i),
        }
        for i in range(rows_n)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        store = Storage.at(Path(tmp) / "outbox-run")
        store.ensure_ready()
        started = time.perf_counter()
        for start in range(0, rows_n, 1_000):
            store.write_batch("charger_events", rows[start : start + 1_000])
        merged = store.merge()
        outbox_rate = rows_n / (time.perf_counter() - started)
        assert merged.rows_inserted["charger_events"] == rows_n  # noqa: S101 - a bench that lost rows is void
        baseline = Storage.at(Path(tmp) / "row-by-row")
        baseline.ensure_ready()
        columns = list(rows[0])
        names, marks = ", ".join(columns), ", ".join("?" * len(columns))
        insert = f"INSERT INTO charger_events ({names}) VALUES ({marks}) ON CONFLICT DO NOTHING"  # noqa: S608
        with duckdb.connect(str(baseline.settings.db_path)) as con:
            started = time.perf_counter()
            con.begin()
            for row in rows[:baseline_n]:
                con.execute(insert, list(row.values()))
            con.commit()
            baseline_rate = baseline_n / (time.perf_counter() - started)
    return outbox_rate, baseline_rate


def bench_balance_day(ticks: int = 96) -> tuple[float, float, float]:
    """The demo's simulated day (sunny-day, solar): wall s, ticks/s, and the share spent in the tick."""
    import tempfile  # noqa: PLC0415

    from storage import Storage  # noqa: PLC0415
    from zapflow.balance.simday import run_day, served, site_for  # noqa: PLC0415
    from zapflow.domain.policy import PolicyMode  # noqa: PLC0415
    from zapflow.simulator.scenarios import scenario  # noqa: PLC0415

    chosen = scenario("sunny-day")
    with tempfile.TemporaryDirectory() as tmp:
        storage = Storage.at(Path(tmp))
        storage.ensure_ready()
        started = time.perf_counter()
        with served(chosen) as (cloud, base_url):
            site = site_for(chosen, cloud, base_url, mode=PolicyMode.SOLAR)
            result = run_day(cloud, base_url, storage, site=site, ticks=ticks)
        wall_s = time.perf_counter() - started
    return wall_s, ticks / wall_s, result.tick_wall_s / wall_s


def main() -> None:
    """Run every benchmark and print one table."""
    results: list[tuple[str, str, float, float, str]] = []
    ours, base = bench_client()
    results.append(
        ("client GET installation", "µs per call", ours * 1e6, base * 1e6, "bare httpx GET + json.loads")
    )
    ours, base = bench_nbfx()
    results.append(("NBFX decode", "µs per body", ours * 1e6, base * 1e6, "json.loads of the bare JSON"))
    outbox_rate, row_rate = bench_storage()
    results.append(
        ("storage merge, 100k rows", "rows/s", outbox_rate, row_rate, "row-by-row INSERT, one transaction")
    )
    results.append(("simulator", "sim s per wall s", bench_simulator(), 1.0, "real time"))
    wall_s, ticks_per_s, tick_share = bench_balance_day()
    results.append(
        (
            "simulated day, 96 ticks",
            "sim s per wall s",
            96 * 900 / wall_s,
            1.0,
            f"real time; {wall_s:.0f} s wall, {ticks_per_s:.2f} ticks/s, {tick_share:.0%} in the tick",
        )
    )
    results.append(bench_broker_row())
    results.append(bench_ingest_row())
    table = Table(title="zapflow bench (ratios measured in one run)")
    for column in ("benchmark", "metric", "ours", "baseline", "ratio", "baseline is"):
        table.add_column(column)
    for name, metric, ours, base, what in results:
        table.add_row(name, metric, f"{ours:,.1f}", f"{base:,.1f}", f"{ours / base:,.2f}x", what)
    Console(width=140).print(table)
    _record(results)


def _record(results: list[tuple[str, str, float, float, str]]) -> None:
    """Keep the figures in DuckDB (`bench_results`) so versions can be compared with SQL."""
    from storage import Storage  # noqa: PLC0415
    from zapflow import __version__  # noqa: PLC0415
    from zapflow.settings import AppSettings  # noqa: PLC0415

    now = datetime.now(UTC)
    rows = []
    for name, metric, ours, base, what in results:
        rows.append(
            {
                "measured_at": now,
                "version": __version__,
                "benchmark": name,
                "metric": metric,
                "value": ours,
                "baseline": what,
            }
        )
        rows.append(
            {
                "measured_at": now,
                "version": __version__,
                "benchmark": name,
                "metric": f"{metric} (baseline)",
                "value": base,
                "baseline": what,
            }
        )
        rows.append(
            {
                "measured_at": now,
                "version": __version__,
                "benchmark": name,
                "metric": "ratio",
                "value": ours / base,
                "baseline": what,
            }
        )
    store = Storage(AppSettings().storage)
    store.ensure_ready()
    store.write_batch("bench_results", rows)
    result = store.merge()
    where = "merged into" if not result.skipped_busy else "queued in the outbox of"
    Console().print(f"figures {where} {store.settings.db_path} (table bench_results)")


if __name__ == "__main__":
    main()
