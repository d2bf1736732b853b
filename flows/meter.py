"""The meter flow: long-running, in bounded runs that an automation restarts.

Samples every site's meter every N seconds into `meter_readings`, and charger state at Zaptec's
agreed cadence.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from tasks.balance import load_sites_task, sample_sites_task
from zapflow.settings import AppSettings

__all__ = ["meter"]


@flow(name="meter", log_prints=False)
def meter(duration_s: float = 3600.0) -> dict[str, Any]:
    """Sample for `duration_s`, then end Completed (the restart automation starts the next run)."""
    sites = load_sites_task(str(AppSettings().sites_file))
    return sample_sites_task(sites, duration_s)
