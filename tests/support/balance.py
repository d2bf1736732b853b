"""Ticks against the simulator in process (httpx.MockTransport), on the simulator's own clock."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from storage import Storage
from zapflow.balance.sampler import SiteSampler
from zapflow.balance.simday import SimDriver, sim_services, site_for
from zapflow.balance.tick import TickReport, TickRequest, TickServices, run_tick
from zapflow.domain.policy import PolicyMode
from zapflow.simulator.cloud import SimulatedCloud
from zapflow.simulator.scenarios import Scenario, build
from zapflow.sites import SiteConfig

BASE = "http://sim.test"


@dataclass
class Rig:
    """A simulated cloud, a storage dir and the services a tick needs, all on simulated time."""

    cloud: SimulatedCloud
    storage: Storage
    site: SiteConfig
    services: TickServices
    driver: SimDriver

    def tick(self, **request: Any) -> TickReport:
        """Run one tick now (scheduled at the current slot unless given)."""
        return run_tick(TickRequest(self.site.installation_id, **request), self.site, self.services)

    def step(self, seconds: float) -> None:
        """Move simulated time on."""
        self.driver.sleep(seconds)

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Query the ledger (pending rows included)."""
        return self.storage.read(sql, params).to_pylist()

    def posts(self) -> int:
        """POST attempts the simulated cloud saw."""
        return len(self.cloud.ledger.post_attempts)

    def accepted(self) -> int:
        """Writes the simulated cloud applied."""
        return len(self.cloud.ledger.accepted_writes)

    def sample_meter(self, minutes: float, every_s: float = 60.0) -> None:
        """Feed the meter history through the meter flow's sampler (one reading per `every_s`)."""
        sampler = SiteSampler(
            self.site.installation_id, self.storage, self.driver, self.services.meter, flush_every_s=math.inf
        )
        for _ in range(int(minutes * 60 / every_s)):
            self.step(every_s)
            sampler.sample()
        sampler.flush()


def rig(  # noqa: PLR0913 - keyword-only knobs of a test rig
    chosen: Scenario,
    data_dir: Any,
    *,
    mode: PolicyMode = PolicyMode.FUSE_ONLY,
    site_changes: dict[str, Any] | None = None,
    storage_overrides: dict[str, Any] | None = None,
    on_cloud: Callable[[SimulatedCloud], None] | None = None,
) -> Rig:
    """Build the rig for `chosen` (the cloud's clock frozen; time moves only by steps)."""
    cloud = build(chosen)
    if on_cloud is not None:
        on_cloud(cloud)
    driver = SimDriver(cloud)
    transport = cloud.transport()
    site = site_for(chosen, cloud, BASE, mode=mode)
    if site_changes:
        site = site.model_copy(update=site_changes)
    storage = Storage.at(data_dir, **(storage_overrides or {}))
    storage.ensure_ready()
    http = httpx.Client(transport=transport)
    services = sim_services(cloud, BASE, storage, site=site, driver=driver, http=http, transport=transport)
    return Rig(cloud, storage, site, services, driver)
