"""The meter flow's body: build one sampler per site from settings and sample for a while."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from contextlib import ExitStack, suppress
from dataclasses import asdict
from functools import partial
from typing import Any

import httpx

from storage import Storage, StorageError
from zapflow.balance.sampler import SiteSampler, hierarchy_charger_ids, run_sampler
from zapflow.balance.wiring import ACCOUNTS, meter_for
from zapflow.clock import SYSTEM_CLOCK, Clock
from zapflow.settings import AppSettings
from zapflow.sites import SiteConfig
from zapflow.zaptec import ZaptecClient
from zapflow.zaptec.errors import ZaptecError

__all__ = ["sample_for"]


def sample_for(
    sites: list[SiteConfig],
    settings: AppSettings,
    *,
    duration_s: float,
    clock: Clock = SYSTEM_CLOCK,
    guard: Callable[[SiteConfig, str], None] | None = None,
) -> dict[str, Any]:
    """Sample every site for `duration_s` (a bounded run; SIGTERM ends it cleanly, rows flushed).

    `guard(site, what_was_seen)` runs when a phase goes over the site's fuse while a car charges.
    """
    stop = threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        return _sample(sites, settings, duration_s=duration_s, clock=clock, guard=guard, stop=stop)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _sample(  # noqa: PLR0913 - sample_for's arguments, keyword-only
    sites: list[SiteConfig],
    settings: AppSettings,
    *,
    duration_s: float,
    clock: Clock,
    guard: Callable[[SiteConfig, str], None] | None,
    stop: threading.Event,
) -> dict[str, Any]:
    storage = Storage(settings.storage, clock=clock)
    storage.ensure_ready()
    with ExitStack() as stack:
        http = stack.enter_context(httpx.Client(timeout=5.0))
        client = stack.enter_context(
            ZaptecClient.from_settings(settings.zaptec, accounts=ACCOUNTS, clock=clock)
        )
        samplers = []
        for site in sites:
            try:
                chargers = hierarchy_charger_ids(client, site.installation_id)
            except ZaptecError:
                chargers = []  # meter only; charger state comes from the tick's own polls then
            samplers.append(
                SiteSampler(
                    site.installation_id,
                    storage,
                    clock,
                    meter_for(site, http),
                    client=client,
                    charger_ids=chargers,
                    flush_every_s=settings.meter_flush_s,
                    fuse_a=site.fuse_a,
                    voltage_v=site.voltage_v,
                    on_overload=partial(guard, site) if guard is not None else None,
                )
            )

        run_sampler(
            samplers, clock=clock, interval_s=settings.meter_interval_s, duration_s=duration_s, stop=stop
        )
        with suppress(StorageError):  # rows stay in the outbox; the next merge takes them
            storage.merge()
    return {s.installation_id: asdict(s.stats) for s in samplers}
