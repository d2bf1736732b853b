"""`zapflow` command line (typer + rich): the composition root that wires settings to adapters.

Commands stay thin: they build objects from settings, call plain functions and render results.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from zapflow import __version__
from zapflow.clock import FakeClock
from zapflow.domain.models import InstallationSettings
from zapflow.settings import ZaptecSettings
from zapflow.zaptec import (
    AccountRegistry,
    ApiCall,
    InstallationUpdate,
    ModeNotControllable,
    RetryPolicy,
    ZaptecClient,
    ZaptecError,
)
from zapflow.zaptec.mapping import charger_state
from zapflow.zaptec.recorded import RECORDED_INSTALLATION_ID, RecordedZaptec

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
def demo() -> None:
    """Round trip through the Zaptec client against recorded Zaptec responses (no account needed)."""
    clock = FakeClock()
    cloud = RecordedZaptec(clock=clock)
    calls: list[ApiCall] = []
    settings = ZaptecSettings(
        base_url="https://api.zaptec.recorded", username=cloud.username, password=cloud.password
    )
    client = ZaptecClient.from_settings(
        settings,
        transport=cloud.transport(),
        clock=clock,
        accounts=AccountRegistry(),
        retry=RetryPolicy(),
        on_call=calls.append,
    )
    with client:
        installations = client.list_installations()
        console.print(_installations_table(installations))
        home = client.get_installation(RECORDED_INSTALLATION_ID)
        hierarchy = client.get_hierarchy(RECORDED_INSTALLATION_ID)
        states = Table(title=f"Chargers of {home.name}")
        for column in ("charger", "model", "online", "mode", "power W", "phases"):
            states.add_column(column)
        for circuit in hierarchy.circuits if hierarchy else ():
            for ref in circuit.chargers:
                s = charger_state(
                    ref.charger_id, client.get_charger_state(ref.charger_id), device_id=ref.device_id
                )
                states.add_row(
                    ref.name or ref.charger_id,
                    s.model.value,
                    str(s.is_online.value) if s.is_online else "?",
                    s.operation_mode.value.name if s.operation_mode else "?",
                    f"{s.total_charge_power_w.value:.0f}" if s.total_charge_power_w else "?",
                    str(s.set_phases.value) if s.set_phases else "?",
                )
        console.print(states)
        # A write, then the read-back that verifies it (what every balance tick does).
        client.update_installation(
            home.installation_id,
            InstallationUpdate(available_current_a=10.0),
            max_current_a=home.max_current_a,
        )
        after = client.get_installation(home.installation_id)
        console.print(f"wrote 10 A to {home.name}: Zaptec now reports {after.available_current_a:g} A")
        apm = next(i for i in installations if not i.is_controllable)
        try:
            client.update_installation(
                apm.installation_id,
                InstallationUpdate(available_current_a=10.0),
                max_current_a=apm.max_current_a,
            )
        except ModeNotControllable as exc:
            console.print(f"[yellow]refused as expected[/]: {exc}")
    console.print(_calls_table(calls))


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


def main() -> None:
    """Entry point for `python -m zapflow`."""
    app()
