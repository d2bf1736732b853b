"""The meter flow's fuse guard: a phase over the fuse while a car charges calls for a guard tick."""

from __future__ import annotations

from pathlib import Path

from storage import Storage
from zapflow.balance.meterloop import sample_for
from zapflow.balance.simday import SimDriver, served, site_for
from zapflow.domain.policy import PolicyMode
from zapflow.settings import AppSettings, StorageSettings, ZaptecSettings
from zapflow.simulator.scenarios import scenario
from zapflow.sites import SiteConfig


def test_an_uncontrolled_evening_trips_the_guard_once_per_cooldown(tmp_path: Path) -> None:
    """No zapflow writes: the cars take the whole 16 A on top of the household, so the guard fires."""
    chosen = scenario("fuse-limited-evening")
    seen: list[tuple[str, str]] = []
    with served(chosen) as (cloud, url):
        cloud.step(6 * 3600)  # 01:00 UTC: both cars plugged in and charging at the installation's 16 A
        site = site_for(chosen, cloud, url, mode=PolicyMode.FUSE_ONLY)
        settings = AppSettings(
            _env_file=None,  # type: ignore[call-arg]
            zaptec=ZaptecSettings(
                _env_file=None,  # type: ignore[call-arg]
                base_url=url,
                username=cloud.account.username,
                password=cloud.account.password,
            ),
            storage=StorageSettings(_env_file=None, data_dir=tmp_path),  # type: ignore[call-arg]
            meter_interval_s=10.0,
        )

        queued: list[int] = []

        def guard(at_site: SiteConfig, what: str) -> None:
            seen.append((at_site.installation_id, what))
            # The sampler queued what it saw before calling: the guard tick's history has the surge.
            rows = Storage(settings.storage).read("SELECT count(*) AS n FROM meter_readings").to_pylist()
            queued.append(rows[0]["n"])

        stats = sample_for([site], settings, duration_s=150, clock=SimDriver(cloud), guard=guard)
    assert stats[site.installation_id]["guard_ticks"] == len(seen)
    # The first over-fuse sample after the first charger poll, then at most one per 60 s cooldown.
    assert 1 <= len(seen) <= 3
    assert all(iid == site.installation_id for iid, _ in seen)
    assert "> 16 A while charging" in seen[0][1]
    assert queued[0] > 0
