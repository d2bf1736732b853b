"""`zapflow` command line (typer + rich): the composition root that wires settings to adapters.

Commands stay thin: they build objects from settings, call plain functions and render results.
"""

from __future__ import annotations

import io
import json
import logging
import sys
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import duckdb
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import typer
from rich.console import Console
from rich.table import Table

from zapflow import __version__
from zapflow.domain.models import InstallationSettings
from zapflow.settings import AppSettings, ZaptecSettings
from zapflow.zaptec import (
    ApiCall,
    ZaptecClient,
    ZaptecError,
)

app = typer.Typer(help="Dynamic load balancing for Zaptec EV-charger installations.", no_args_is_help=True)
console = Console()


def _installations_table(installations: list[InstallationSettings]) -> Table:
    table = Table(title="Installations")
    for column in ("id", "name", "mode", "max A", "available A (L1/L2/L3)", "network", "can write"):
        table.add_column(column)
    for i in installations:
        phases = i.available_current_phases_a
        table.add_row(
            i.installation_id,
            i.name or "",
            getattr(i.mode, "name", str(i.mode)),
            f"{i.max_current_a:g}" if i.max_current_a is not None else "?",
            "/".join(f"{v:g}" for v in phases.as_tuple()) if phases else "?",
            i.network_type.name,
            "yes" if i.can_write else "no",
        )
    return table


def _calls_table(calls: list[ApiCall]) -> Table:
    table = Table(title="API calls")
    for column in ("endpoint", "status", "attempts", "error"):
        table.add_column(column)
    for call in calls:
        table.add_row(call.endpoint, str(call.status), str(call.attempts), call.error or "")
    return table


@app.command()
def version() -> None:
    """Print the zapflow version."""
    console.print(f"zapflow {__version__}")


@app.command()
def demo(  # noqa: PLR0913, PLR0917 - the command's options
    scenario_name: Annotated[
        str, typer.Option("--scenario", help="Simulator scenario to run.")
    ] = "sunny-day",
    mode: Annotated[str, typer.Option(help="Policy mode: fuse_only, solar, solar_min or fixed.")] = "solar",
    ticks: Annotated[int, typer.Option(min=1, max=96 * 7, help="15-minute ticks to run (96 = a day).")] = 96,
    data_dir: Annotated[
        Path, typer.Option(help="Where the demo's DuckDB goes (replaced on every run).")
    ] = Path("data/demo"),
    plot: Annotated[Path, typer.Option(help="PNG of available power vs setpoint vs charging.")] = Path(
        "data/demo/day.png"
    ),
    ingest: Annotated[  # noqa: FBT002 - a typer flag
        bool, typer.Option(help="Run the ingest flow's consumer beside the ticks (local Service Bus broker).")
    ] = True,
) -> None:
    """Run a simulated day of balance ticks on the embedded default and summarise it."""
    from zapflow.balance.demo import run_demo  # noqa: PLC0415 - heavy deps only for this command
    from zapflow.domain.policy import PolicyMode  # noqa: PLC0415

    try:
        policy_mode = PolicyMode(mode)
    except ValueError:
        console.print(
            f"[red]error[/]: unknown mode {mode!r}; one of {', '.join(m.value for m in PolicyMode)}"
        )
        raise typer.Exit(code=2) from None
    beside = None
    if ingest:
        from zapflow.ingest.demo import DemoIngest  # noqa: PLC0415 - loads the SDK only for this command

        beside = DemoIngest()
    try:
        run_demo(
            console,
            scenario_name=scenario_name,
            mode=policy_mode,
            ticks=ticks,
            data_dir=data_dir,
            plot=plot,
            beside=beside,
        )
    except ValueError as exc:
        console.print(f"[red]error[/]: {exc}")
        raise typer.Exit(code=2) from None


@app.command()
def inspect(
    installation: Annotated[str | None, typer.Option(help="Only this installation id.")] = None,
) -> None:
    """Read-only look at the configured Zaptec account (set ZAPFLOW_ZAPTEC_* first)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        with ZaptecClient.from_settings(ZaptecSettings()) as client:
            found = [client.get_installation(installation)] if installation else client.list_installations()
            console.print(_installations_table(found))
    except ZaptecError as exc:
        console.print(f"[red]error[/]: {type(exc).__name__}: {exc}")
        raise typer.Exit(code=2) from None


class OutputFormat(StrEnum):
    """How `zapflow sql` prints its result."""

    TABLE = "table"
    CSV = "csv"
    JSON = "json"
    PARQUET = "parquet"


@app.command("sql")
def sql_command(
    query: Annotated[str | None, typer.Argument(help="One SELECT over zapflow's tables.")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="Read the query from this file.")] = None,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="Output format.")
    ] = OutputFormat.TABLE,
    output: Annotated[
        Path | None, typer.Option("--output", help="Write to this file (required for parquet).")
    ] = None,
    pending: Annotated[bool, typer.Option(help="Include rows still waiting in the outbox.")] = True,  # noqa: FBT002
) -> None:
    """Query the history read-only: pending outbox rows included, files and writes refused."""
    from storage import QueryRefused, Storage, StorageBusy, StorageError  # noqa: PLC0415 - heavy deps

    if (query is None) == (file is None):
        console.print("[red]error[/]: give a query or --file, not both")
        raise typer.Exit(code=2)
    if output_format is OutputFormat.PARQUET and output is None:
        console.print("[red]error[/]: --format parquet needs --output FILE")
        raise typer.Exit(code=2)
    text = file.read_text(encoding="utf-8") if file is not None else str(query)
    try:
        result = Storage(AppSettings().storage).read(text, include_pending=pending, locked_down=True)
    except QueryRefused as exc:
        console.print(f"[red]refused[/]: {exc}")
        raise typer.Exit(code=2) from None
    except StorageBusy as exc:
        console.print(f"[red]busy[/]: {exc}")
        raise typer.Exit(code=3) from None
    except (StorageError, duckdb.Error) as exc:
        console.print(f"[red]error[/]: {str(exc).splitlines()[0]}")
        raise typer.Exit(code=2) from None
    _write_result(result, output_format, output)


def _write_result(result: pa.Table, output_format: OutputFormat, output: Path | None) -> None:
    if output_format is OutputFormat.PARQUET:
        pq.write_table(result, str(output))
        return
    if output_format is OutputFormat.TABLE:
        table = Table(*result.column_names)
        for row in result.to_pylist():
            table.add_row(*("" if v is None else str(v) for v in row.values()))
        console.print(table)
        console.print(f"{result.num_rows} row(s)")
        return
    if output_format is OutputFormat.CSV:
        buffer = io.BytesIO()
        pa_csv.write_csv(result, buffer)
        text = buffer.getvalue().decode()
    else:
        text = json.dumps(result.to_pylist(), default=_json_default, indent=1) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")


def _json_default(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


@app.command()
def serve(  # noqa: PLR0913, PLR0917 - the command's options
    port: Annotated[int, typer.Option(help="Prefect server (API and UI) port on 127.0.0.1.")] = 4200,
    scenario_name: Annotated[
        str, typer.Option("--scenario", help="Simulator scenario when no Zaptec account is configured.")
    ] = "sunny-day",
    simulator_port: Annotated[int, typer.Option(help="Simulator port (0: any free port).")] = 0,
    prefect_home: Annotated[
        Path | None, typer.Option(help="Prefect's database and logs (default ./.prefect).")
    ] = None,
    heartbeat_s: Annotated[int, typer.Option(min=30, help="Flow-run heartbeat interval (s).")] = 30,
    crash_after_s: Annotated[
        int, typer.Option(min=31, help="Mark a run Crashed after this long without a heartbeat (s).")
    ] = 90,
    worker_poll_s: Annotated[float, typer.Option(min=1, help="How often the worker polls for runs.")] = 10.0,
) -> None:
    """Run zapflow on this machine: Prefect server + UI, worker, deployments, automations, simulator.

    Stops cleanly on Ctrl-C or SIGTERM, leaving no process behind.
    """
    import signal  # noqa: PLC0415

    from zapflow.serve import Platform, ServeError, ServeOptions  # noqa: PLC0415 - prefect loads here

    options = ServeOptions(
        project_dir=Path.cwd(),
        port=port,
        prefect_home=prefect_home,
        scenario=scenario_name,
        simulator_port=simulator_port,
        heartbeat_s=heartbeat_s,
        crash_after_s=crash_after_s,
        worker_poll_s=worker_poll_s,
    )
    try:
        settings = AppSettings()
    except ValueError as exc:
        console.print(f"[red]error[/]: configuration: {exc}")
        raise typer.Exit(code=2) from None
    platform = Platform(options, settings, say=console.print)
    signal.signal(signal.SIGTERM, platform.request_stop)
    signal.signal(signal.SIGINT, platform.request_stop)
    console.print("[bold]zapflow serve[/]")
    try:
        platform.start()
    except ServeError as exc:
        console.print(f"[red]error[/]: {exc}")
        raise typer.Exit(code=2) from None
    console.print(
        f"ready: UI {options.api_url.removesuffix('/api')}; start a run with "
        "`zapflow run balance --dry-run`; Ctrl-C stops everything"
    )
    code = platform.wait()
    console.print("stopping ...")
    platform.stop()
    console.print("stopped")
    raise typer.Exit(code=code)


run_app = typer.Typer(help="Start ad-hoc runs of the deployments `zapflow serve` created.")
app.add_typer(run_app, name="run")


def _overrides(pairs: list[str]) -> dict[str, float]:
    found = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            found[key.strip()] = float(value)
        except ValueError:  # also no "=" at all: float("") fails
            msg = f"--override wants key=number (got {pair!r})"
            raise typer.BadParameter(msg) from None
    return found


@run_app.command("balance")
def run_balance(  # noqa: PLR0913, PLR0917 - the flow's parameters
    installation: Annotated[
        list[str] | None, typer.Option(help="Installation id (repeatable; default: every configured one).")
    ] = None,
    mode: Annotated[str | None, typer.Option(help="Override the sites file's mode for this run.")] = None,
    dry_run: Annotated[  # noqa: FBT002 - a typer flag
        bool, typer.Option("--dry-run/--write", help="Decide and record, never write.")
    ] = True,
    override: Annotated[
        list[str] | None, typer.Option(help="Policy override key=value (repeatable), e.g. fuse_margin_a=2.")
    ] = None,
    requested_by: Annotated[
        str | None, typer.Option(help="Who asked (recorded in the ledger; default $USER).")
    ] = None,
    reason: Annotated[str | None, typer.Option(help="Why (recorded in the ledger).")] = None,
    wait: Annotated[  # noqa: FBT002 - a typer flag
        bool, typer.Option(help="Wait for the run to finish and show its state.")
    ] = True,
    api_url: Annotated[
        str | None, typer.Option(help="Prefect API (default $PREFECT_API_URL or the local server).")
    ] = None,
) -> None:
    """Start an ad-hoc balance run (dry run unless --write)."""
    import getpass  # noqa: PLC0415
    import os  # noqa: PLC0415

    from zapflow.serve import ServeError, start_run  # noqa: PLC0415 - prefect loads here

    parameters: dict[str, object] = {
        "dry_run": dry_run,
        "requested_by": requested_by or getpass.getuser(),
        "reason": reason or "ad-hoc run from the CLI",
    }
    if installation:
        parameters["installation_ids"] = installation
    if mode:
        parameters["mode"] = mode
    if override:
        parameters["overrides"] = _overrides(override)
    url = api_url or os.environ.get("PREFECT_API_URL") or "http://127.0.0.1:4200/api"
    try:
        state = start_run(url, "balance", parameters, wait_s=3600 if wait else None, say=console.print)
    except ServeError as exc:
        console.print(f"[red]error[/]: {exc}")
        raise typer.Exit(code=2) from None
    if wait and state != "Completed":
        raise typer.Exit(code=1)


simulator_app = typer.Typer(help="The embedded default: a simulated Zaptec cloud with a site behind it.")
app.add_typer(simulator_app, name="simulator")


@simulator_app.command("scenarios")
def simulator_scenarios() -> None:
    """List the named scenarios."""
    from zapflow.simulator.scenarios import SCENARIOS, scenario  # noqa: PLC0415 - heavy data deps

    table = Table(title="Simulator scenarios")
    table.add_column("name")
    table.add_column("what it is")
    for name in SCENARIOS:
        table.add_row(name, scenario(name).description)
    console.print(table)


@simulator_app.command("serve")
def simulator_serve(  # noqa: PLR0913, PLR0917 - one CLI option each
    scenario_name: Annotated[
        str, typer.Option("--scenario", help="A name from `zapflow simulator scenarios`.")
    ] = ("sunny-day"),
    host: Annotated[str, typer.Option(help="Interface to listen on (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
    scale: Annotated[
        float, typer.Option(help="Simulated seconds per real second (0 = only /_sim/step).")
    ] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed of the household appliance layer and ids.")] = 1,
    broker_port: Annotated[
        int, typer.Option(help="AMQP port of the local Service Bus broker (0 = a free one).")
    ] = 0,
    broker_data_dir: Annotated[
        Path, typer.Option(help="Where the broker keeps its messages (survives restarts).")
    ] = Path("data/broker"),
) -> None:
    """Serve the simulated Zaptec cloud, site meter and Service Bus broker until Ctrl-C."""
    from zapflow.simulator.broker import BrokerEventSink, attach_broker  # noqa: PLC0415
    from zapflow.simulator.cloud import BrokerEndpoint  # noqa: PLC0415
    from zapflow.simulator.scenarios import build, scenario  # noqa: PLC0415 - heavy data deps
    from zapflow.simulator.server import SimulatorServer, port_is_free  # noqa: PLC0415

    try:
        chosen = scenario(scenario_name, seed=seed)
    except ValueError as exc:
        console.print(f"[red]error[/]: {exc}")
        raise typer.Exit(code=2) from None
    if not port_is_free(host, port):
        console.print(f"[red]error[/]: {host}:{port} is in use; pick another with --port")
        raise typer.Exit(code=2)
    if broker_port and not port_is_free(host, broker_port):
        console.print(f"[red]error[/]: {host}:{broker_port} is in use; pick another with --broker-port")
        raise typer.Exit(code=2)
    sink = BrokerEventSink(BrokerEndpoint().topic)
    cloud = build(chosen, scale=scale, sink=sink)
    broker = attach_broker(cloud, sink, data_dir=broker_data_dir, host=host, port=broker_port)
    server = SimulatorServer(cloud, host=host, port=port)
    console.print(f"[bold]zapflow simulator[/]: scenario {chosen.name} ({chosen.description})")
    console.print(
        f"  Zaptec API   {server.base_url}   (simulated time x{scale:g} from {chosen.start.isoformat()})"
    )
    console.print(f"  credentials  ZAPFLOW_ZAPTEC_BASE_URL={server.base_url}")
    console.print(f"               ZAPFLOW_ZAPTEC_USERNAME={cloud.account.username}")
    console.print(f"               ZAPFLOW_ZAPTEC_PASSWORD={cloud.account.password}")
    for inst in cloud.world.installations.values():
        console.print(
            f"  site meter   {server.base_url}/sites/{inst.installation_id}/meter   ({inst.spec.name})"
        )
    console.print(f"  control      {server.base_url}/_sim/state (GET), /_sim/step and /_sim/clock (POST)")
    endpoint = cloud.broker
    console.print(
        f"  service bus  amqp://{endpoint.host}:{endpoint.port} topic {endpoint.topic} subscription "
        f"{endpoint.subscription}\n               (details: /api/userGroups/"
        f"{cloud.account.user_group_id}/messagingConnectionDetails)"
    )
    broker.start()
    try:
        server.serve_until_signalled(on_ready=lambda url: console.print(f"simulator ready on {url}"))
    finally:
        broker.stop()
    console.print("simulator stopped")


def main() -> None:
    """Entry point for `python -m zapflow`."""
    app()
