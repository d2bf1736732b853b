"""Prefect tasks of the ingest and renew-subscription flows: thin wrappers over `zapflow.ingest`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from tasks.credentials import resolved_settings
from zapflow.ingest import ingest_for, renew_subscription
from zapflow.servicebus import SourceRejected
from zapflow.sites import SitesFile

__all__ = ["IngestRejected", "emit_alert", "ingest_active", "ingest_task", "renew_task"]

ALERT_EVENT_PREFIX = "zapflow.subscription."


class IngestRejected(RuntimeError):
    """A permanent Service Bus or details-endpoint failure: the run ends Failed and is not restarted."""


def emit_alert(kind: str, key: str, message: str) -> None:
    """Raise a zapflow alert as a Prefect event (`zapflow.subscription.<kind>`); automations forward it."""
    emit_event(
        event=f"{ALERT_EVENT_PREFIX}{kind}",
        resource={"prefect.resource.id": f"zapflow.subscription.{key or 'configured'}"},
        payload={"message": message},
    )


@contextmanager
def _rejection_fails_the_run() -> Iterator[None]:
    """A permanent refusal: alert, then raise `IngestRejected` so the run ends Failed."""
    try:
        yield
    except SourceRejected as exc:
        emit_alert("rejected", "", str(exc))
        raise IngestRejected(str(exc)) from None


@task(name="ingest-events", cache_policy=NO_CACHE)
def ingest_task(sites: SitesFile, duration_s: float) -> dict[str, Any]:
    """Drain the subscription into storage for `duration_s`; a permanent failure fails the run."""
    logger = get_run_logger()
    with _rejection_fails_the_run():
        report = ingest_for(list(sites.site), resolved_settings(), duration_s=duration_s, on_alert=emit_alert)
    logger.info(
        "ingest: %d message(s), %d stored, %d quarantined, %d connect(s), %d failure(s)",
        report.messages,
        report.stored,
        report.quarantined,
        report.connects,
        report.failures,
    )
    return report.as_dict()


def ingest_active() -> bool:
    """True while an `ingest` flow run is running or about to (its receiver keeps the subscription alive)."""
    from prefect.client.orchestration import get_client  # noqa: PLC0415
    from prefect.client.schemas.filters import (  # noqa: PLC0415
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType  # noqa: PLC0415

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["ingest"])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(
                    type=FlowRunFilterStateType(any_=[StateType.RUNNING, StateType.PENDING])
                )
            ),
            limit=1,
        )
    return bool(runs)


@task(name="renew-subscription", cache_policy=NO_CACHE)
def renew_task(sites: SitesFile) -> dict[str, Any]:
    """The daily renewal, skipped while an ingest run is active."""
    with _rejection_fails_the_run():
        report = renew_subscription(
            list(sites.site), resolved_settings(), ingest_active=ingest_active(), on_alert=emit_alert
        )
    get_run_logger().info("renew-subscription: %s", report.outcome)
    return report.as_dict()
