"""The balance flow: every 15 minutes, one tick per configured installation.

Thin orchestration: read the sites file, map `balance_tick` over the installations (each holds
its installation's concurrency slot), publish one markdown + table artifact per tick.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.runtime import flow_run

from tasks.balance import balance_tick, load_sites_task
from zapflow.balance.artifact import tick_markdown, tick_table
from zapflow.balance.tick import TickReport, TickRequest
from zapflow.domain.policy import PolicyMode
from zapflow.settings import AppSettings
from zapflow.sites import SiteConfigError

__all__ = ["balance"]


@flow(name="balance", log_prints=False)
def balance(  # noqa: PLR0913, PLR0917 - the run's parameters, as the UI shows them
    installation_ids: list[str] | None = None,
    mode: PolicyMode | None = None,
    dry_run: bool = False,  # noqa: FBT001, FBT002 - a flow parameter
    overrides: dict[str, float] | None = None,
    requested_by: str | None = None,
    reason: str | None = None,
    strict_limit: bool = True,  # noqa: FBT001, FBT002 - a flow parameter
) -> list[dict[str, Any]]:
    """One balance tick per installation (all configured ones unless `installation_ids`)."""
    logger = get_run_logger()
    settings = AppSettings()
    sites = load_sites_task(str(settings.sites_file))
    chosen = [s for s in sites.site if not installation_ids or s.installation_id in installation_ids]
    missing = set(installation_ids or ()) - {s.installation_id for s in chosen}
    if missing:
        msg = f"not in {settings.sites_file}: {', '.join(sorted(missing))}"
        raise SiteConfigError(msg)
    scheduled = flow_run.scheduled_start_time
    run_id = flow_run.id
    futures = [
        balance_tick.submit(
            TickRequest(
                site.installation_id,
                scheduled_at=scheduled,
                dry_run=dry_run,
                mode=mode,
                overrides=overrides or {},
                requested_by=requested_by,
                reason=reason,
                flow_run_id=run_id,
            ),
            site,
            strict_limit=strict_limit,
        )
        for site in chosen
    ]
    reports: list[TickReport] = [f.result() for f in futures]
    for report in reports:
        key = f"tick-{report.installation_id[:8]}".lower()
        create_markdown_artifact(tick_markdown(report), key=key, description="balance tick")
        create_table_artifact(tick_table(report), key=f"{key}-table", description="balance tick, as a table")
    logger.info("%d tick(s): %s", len(reports), ", ".join(r.status for r in reports))
    return [r.model_dump(mode="json") for r in reports]
