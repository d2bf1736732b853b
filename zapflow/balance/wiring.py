"""Build a tick's services from settings (the composition a flow run or the CLI does once)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import httpx

from storage import Storage
from zapflow.balance.solar import ClearSky
from zapflow.balance.tick import TickServices
from zapflow.clock import SYSTEM_CLOCK, Clock
from zapflow.meter.sources import HttpMeter, MeterSource, ReplayMeter
from zapflow.settings import AppSettings
from zapflow.sites import HttpMeterConfig, SiteConfig
from zapflow.zaptec import AccountRegistry, ApiCall, ZaptecClient

__all__ = ["ACCOUNTS", "meter_for", "services_for"]

ACCOUNTS = AccountRegistry()
"""One token and one rate limiter per account for the whole process (every tick shares them)."""


@cache
def _clear_sky(latitude: float, longitude: float, pv_kwp: float) -> ClearSky:
    return ClearSky(latitude, longitude, pv_kwp)


def meter_for(site: SiteConfig, http: httpx.Client) -> MeterSource | None:
    """The site's meter source (None when the site has none configured)."""
    if site.meter is None:
        return None
    if isinstance(site.meter, HttpMeterConfig):
        return HttpMeter(http, site.meter.url)
    return ReplayMeter(site.meter.path)


def services_for(
    site: SiteConfig, settings: AppSettings, *, http: httpx.Client, clock: Clock = SYSTEM_CLOCK
) -> TickServices:
    """Real adapters for one site: the Zaptec client per tick (shared token), meter, storage."""

    def client_factory(on_call: Callable[[ApiCall], None]) -> ZaptecClient:
        return ZaptecClient.from_settings(settings.zaptec, accounts=ACCOUNTS, clock=clock, on_call=on_call)

    return TickServices(
        storage=Storage(settings.storage, clock=clock),
        client_factory=client_factory,
        clock=clock,
        meter=meter_for(site, http),
        clear_sky=_clear_sky(site.latitude, site.longitude, site.pv_kwp),
        ingest_live_s=settings.ingest.live_within_s,
    )
