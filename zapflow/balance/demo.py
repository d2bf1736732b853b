"""`make demo`: a simulated day through the real tick code, with progress, a summary and a PNG."""

from __future__ import annotations

import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any, Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from storage import Storage
from zapflow.balance.simday import DayResult, SimDriver, run_day, save_plot, score, served, site_for
from zapflow.balance.tick import TickReport
from zapflow.clock import Clock
from zapflow.domain.policy import PolicyMode
from zapflow.simulator.cloud import SimulatedCloud
from zapflow.simulator.events import EventSink
from zapflow.simulator.scenarios import scenario

__all__ = ["DEMO_QUERIES", "run_demo", "summary_rows"]

DEMO_QUERIES = (
    (
        "SELECT t.scheduled_at, d.reason, d.binding_constraint, d.setpoint_l1_a, d.phases, d.hold "
        "FROM ticks t JOIN decisions d USING (tick_id) ORDER BY t.scheduled_at"
    ),
    (
        "SELECT date_trunc('hour', measured_at) AS hour, round(avg(pv_power_w)) AS pv_w, "
        "round(avg(grid_power_l1_w + grid_power_l2_w + grid_power_l3_w)) AS grid_w "
        "FROM meter_readings GROUP BY 1 ORDER BY 1"
    ),
    (
        "SELECT endpoint, method, count(*) AS calls, max(attempts) AS max_attempts "
        "FROM api_calls GROUP BY ALL ORDER BY calls DESC"
    ),
)


class Beside(Protocol):
    """Something that runs beside the day (the ingest flow's consumer): see `zapflow.ingest.demo`."""

    @property
    def sink(self) -> EventSink:
        """What the simulated world publishes to."""
        ...

    def start(self, cloud: SimulatedCloud, storage: Storage, clock: Clock) -> None:
        """Start, once the cloud exists."""
        ...

    def settle(self) -> None:
        """Catch up before a tick."""
        ...

    def summary(self) -> dict[str, Any]:
        """Counts for the summary table."""
        ...

    def close(self) -> None:
        """Stop."""
        ...


def _clean(data_dir: Path) -> None:
    """The demo's data dir holds only demo data; refuse anything that looks like something else."""
    if not data_dir.exists():
        return
    unexpected = [
        p.name
        for p in data_dir.iterdir()
        if p.name not in {"zapflow.duckdb", "zapflow.duckdb.wal", "outbox", "day.png"}
    ]
    if unexpected:
        msg = (
            f"{data_dir} holds more than demo data ({', '.join(sorted(unexpected))}); pick another --data-dir"
        )
        raise ValueError(msg)
    shutil.rmtree(data_dir)


def summary_rows(result: DayResult) -> list[tuple[str, str]]:
    """The day in a few figures (ground truth from the simulator, writes from the ledger)."""
    s = score(result.truth)
    outcomes = Counter(r.write_outcome for r in result.reports if r.write_outcome)
    statuses = Counter(r.status for r in result.reports)
    switches = 0
    last_switch: float | None = None
    for r in result.reports:
        if r.write_outcome in ("accepted", "landed") and r.payload is not None:
            switch = r.payload.get("switch_current_a")
            if switch is not None and last_switch is not None and switch != last_switch:
                switches += 1
            last_switch = switch if switch is not None else last_switch
    return [
        ("ticks", ", ".join(f"{n} {k}" for k, n in sorted(statuses.items()))),
        (
            "charger state from",
            ", ".join(
                f"{n} {k}" for k, n in sorted(Counter(r.state_source or "-" for r in result.reports).items())
            ),
        ),
        ("EV energy delivered", f"{s.ev_kwh:.1f} kWh"),
        ("solar share of EV energy", f"{s.solar_share:.1%}"),
        (
            "surplus captured while plugged in",
            f"{s.surplus_captured:.1%} of {s.surplus_while_plugged_kwh:.1f} kWh",
        ),
        ("grid import caused by the EV", f"{s.grid_kwh:.1f} kWh"),
        ("writes", ", ".join(f"{n} {k}" for k, n in sorted(outcomes.items())) or "none"),
        ("phase switches written", str(switches)),
        ("worst fuse margin", f"{s.worst_margin_a:.1f} A (fuse {result.truth.fuse_a:g} A)"),
        (
            "EV-caused minutes over the fuse",
            f"{s.ev_caused_over_fuse} of {s.charging_minutes} charging minutes",
        ),
    ]


def run_demo(  # noqa: PLR0913 - the demo's options, keyword-only
    console: Console,
    *,
    scenario_name: str,
    mode: PolicyMode,
    ticks: int,
    data_dir: Path,
    plot: Path,
    beside: Beside | None = None,
) -> DayResult:
    """Serve the scenario, run the ticks with progress, print the summary, save the PNG."""
    chosen = scenario(scenario_name)
    _clean(data_dir)
    storage = Storage.at(data_dir)
    storage.ensure_ready()
    started = time.perf_counter()
    with served(chosen, sink=beside.sink if beside else None) as (cloud, base_url):
        site = site_for(chosen, cloud, base_url, mode=mode)
        try:
            if beside is not None:
                beside.start(cloud, storage, SimDriver(cloud))
            console.print(f"[bold]zapflow demo[/]: {chosen.name} ({chosen.description})")
            console.print(
                f"  simulated Zaptec cloud on {base_url}, policy {mode.value}, {ticks} ticks of 15 min"
            )
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=False,
            ) as progress:
                task = progress.add_task("ticks", total=ticks)

                def on_tick(_index: int, report: TickReport) -> None:
                    at = report.scheduled_at.strftime("%H:%M")
                    label = report.reason or report.status
                    progress.update(task, advance=1, description=f"{at} UTC {label:<22}")

                result = run_day(
                    cloud,
                    base_url,
                    storage,
                    site=site,
                    ticks=ticks,
                    on_tick=on_tick,
                    before_tick=beside.settle if beside else None,
                )
            if beside is not None:
                beside.settle()
        finally:
            # Also when a tick or the settle fails: the consumer thread and the broker must not outlive it.
            if beside is not None:
                beside.close()
    wall_s = time.perf_counter() - started
    table = Table(title=f"{chosen.name}, {mode.value}: {ticks} ticks in {wall_s:.0f} s")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, value in summary_rows(result):
        table.add_row(name, value)
    if beside is not None:
        got = beside.summary()
        table.add_row(
            "Service Bus events (ingest flow)",
            f"{got['stored']} stored, {got['quarantined']} quarantined of {got['messages']} received",
        )
    console.print(table)
    saved = save_plot(result, plot)
    console.print(f"plot: {saved}")
    console.print(f"ledger: {storage.settings.db_path}  (query it with `zapflow sql`, e.g.)")
    for query in DEMO_QUERIES:
        console.print(f'  ZAPFLOW_STORAGE_DATA_DIR={data_dir} zapflow sql "{query}"', soft_wrap=True)
    return result
