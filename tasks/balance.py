"""Prefect tasks of the balance and meter flows: each one call into `zapflow.balance`.

Task retries are for whole-step transient failures only (a 429 storm that outlasted the client's
own retries, a 5xx burst); permanent errors (bad credentials, APM, a rejected write) are never
retried. The tick is safe to rerun: it finds its own records (see `zapflow.balance.tick`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.concurrency.sync import concurrency
from prefect.logging import get_run_logger
from prefect.states import State

from tasks.credentials import resolved_settings
from zapflow.balance.tick import TickReport, TickRequest, run_tick
from zapflow.balance.wiring import services_for
from zapflow.sites import SiteConfig, SitesFile, load_sites
from zapflow.zaptec.errors import TransientError

__all__ = [
    "balance_tick",
    "fuse_guard_tick",
    "installation_limit",
    "load_sites_task",
    "only_transient",
    "sample_sites_task",
]


def installation_limit(installation_id: str) -> str:
    """The global concurrency limit that keeps ticks of one installation from overlapping."""
    return f"zapflow-installation-{installation_id}"


def only_transient(_task: Task[..., Any], _run: TaskRun, state: State[Any]) -> bool:
    """Retry condition: the step failed with a transient Zaptec error (never a permanent one)."""
    try:
        state.result()
    except TransientError:
        return True
    except Exception:  # noqa: BLE001 - anything else is not ours to retry
        return False
    return False


@task(name="load-sites", cache_policy=NO_CACHE)
def load_sites_task(path: str) -> SitesFile:
    """Read and validate the sites file."""
    return load_sites(Path(path))


@task(
    name="balance-tick",
    retries=2,
    retry_delay_seconds=60,
    retry_condition_fn=only_transient,
    cache_policy=NO_CACHE,
)
def balance_tick(request: TickRequest, site: SiteConfig, *, strict_limit: bool = True) -> TickReport:
    """One tick for one installation, holding the installation's concurrency slot."""
    logger = get_run_logger()
    settings = resolved_settings()
    with (
        concurrency(installation_limit(site.installation_id), occupy=1, strict=strict_limit),
        httpx.Client(timeout=settings.zaptec.timeout_s) as http,
    ):
        report = run_tick(request, site, services_for(site, settings, http=http))
    logger.info(
        "tick %s %s: %s (%s), setpoint %s A, %d phase(s), write %s",
        site.installation_id,
        report.status,
        report.reason,
        report.binding_constraint,
        report.setpoint_a,
        report.phases or 0,
        report.write_outcome or "not needed",
    )
    return report


def fuse_guard_tick(site: SiteConfig, seen: str) -> TickReport:
    """The meter flow's out-of-cycle tick: a phase is over the fuse while a car charges.

    It waits for the installation's slot like any tick (a regular tick may be writing), but does
    not insist on the limit existing: a missing limit must not stop a safety reduction.
    """
    settings = resolved_settings()
    with (
        concurrency(installation_limit(site.installation_id), occupy=1, strict=False),
        httpx.Client(timeout=settings.zaptec.timeout_s) as http,
    ):
        request = TickRequest.fuse_guard(site.installation_id, datetime.now(UTC), seen)
        return run_tick(request, site, services_for(site, settings, http=http))


@task(name="sample-sites", cache_policy=NO_CACHE)
def sample_sites_task(sites: SitesFile, duration_s: float) -> dict[str, Any]:
    """Sample every site's meter (and charger state at the agreed cadence) for `duration_s`."""
    from zapflow.balance.meterloop import sample_for  # noqa: PLC0415 - keeps the tick task light

    stats = sample_for(list(sites.site), resolved_settings(), duration_s=duration_s, guard=fuse_guard_tick)
    get_run_logger().info("meter: %s", stats)
    return stats
