"""The ingest flow (long-running, in bounded runs) and the daily renew-subscription flow.

`ingest` drains the Service Bus subscription into DuckDB for `duration_s`, then ends Completed;
the restart automation starts the next run. A permanent failure (403 on the details endpoint,
refused credentials, the subscription gone) ends it Failed, which alerts and is not restarted.
`renew-subscription` is a short drain of the same code, skipped while an ingest run is active.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from tasks.balance import load_sites_task
from tasks.ingest import ingest_task, renew_task
from zapflow.settings import AppSettings

__all__ = ["ingest", "renew_subscription"]


@flow(name="ingest", log_prints=False)
def ingest(duration_s: float = 3600.0) -> dict[str, Any]:
    """Receive for `duration_s` (SIGTERM ends it cleanly), then end Completed."""
    sites = load_sites_task(str(AppSettings().sites_file))
    return ingest_task(sites, duration_s)


@flow(name="renew-subscription", log_prints=False)
def renew_subscription() -> dict[str, Any]:
    """Receive once when the subscription sat unused (keeps it from Zaptec's 14-day deletion)."""
    sites = load_sites_task(str(AppSettings().sites_file))
    return renew_task(sites)
