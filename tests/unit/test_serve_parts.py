"""The pure parts of `zapflow serve`: sites written for the simulator, scenario rebasing, options."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from zapflow.domain.policy import PolicyMode
from zapflow.serve import ServeOptions, descendants
from zapflow.simulator.scenarios import rebased, scenario
from zapflow.sites import HttpMeterConfig, PolicyOverrides, SiteConfig, SitesFile, dump_sites, parse_sites


def test_dump_sites_round_trips_through_the_validating_parser() -> None:
    """What serve writes is a sites file the flows read back unchanged (quotes, tables, overrides)."""
    sites = SitesFile(
        site=(
            SiteConfig(
                installation_id="a-1",
                name='Cabin "north"',
                latitude=59.9,
                longitude=10.75,
                fuse_a=25,
                pv_kwp=8.0,
                mode=PolicyMode.SOLAR,
                writes_enabled=True,
                meter=HttpMeterConfig(url="http://127.0.0.1:8080/sites/a-1/meter"),
                policy=PolicyOverrides(fuse_margin_a=2.0, phase_switch_budget=3),
            ),
            SiteConfig(installation_id="b-2", latitude=1, longitude=2, fuse_a=63),
        )
    )
    assert parse_sites(dump_sites(sites)) == sites


def test_rebased_moves_visits_faults_and_pv_by_whole_days_and_starts_at_now() -> None:
    """Same local time of day for the car and the sun; the world starts at the real now."""
    chosen = scenario("troubled-day")
    now = datetime(2026, 11, 24, 17, 3, 12, tzinfo=UTC)
    moved = rebased(chosen, now)
    days = (now.date() - chosen.start.date()).days
    assert moved.start == now
    assert [v.arrive for v in moved.visits] == [v.arrive + timedelta(days=days) for v in chosen.visits]
    assert moved.faults.cloud_reset_at == [t + timedelta(days=days) for t in chosen.faults.cloud_reset_at]
    window = moved.faults.chargers_offline[0].window
    assert window.start == chosen.faults.chargers_offline[0].window.start + timedelta(days=days)
    site = next(iter(moved.sites.values()))
    original = next(iter(chosen.sites.values()))
    assert site.sim_anchor_day == original.sim_anchor_day + timedelta(days=days)
    assert site.pv_source_day == original.pv_source_day  # the measured data replayed stays the same
    with pytest.raises(ValueError, match="timezone-aware"):
        rebased(chosen, datetime(2026, 11, 24, 17, 3))  # noqa: DTZ001 - the mistake under test


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"heartbeat_s": 10}, "heartbeat_s must be >= 30"), ({"crash_after_s": 30}, "must exceed heartbeat_s")],
)
def test_serve_options_refuse_windows_that_would_crash_healthy_runs(
    changes: dict[str, int], message: str
) -> None:
    """Prefect refuses heartbeats under 30 s; a crash window inside one heartbeat kills healthy runs."""
    with pytest.raises(ValueError, match=message):
        ServeOptions(project_dir=Path(), **changes)  # type: ignore[arg-type]


def test_descendants_finds_this_process_under_its_parent() -> None:
    """The /proc walk serve uses to leave nothing behind."""
    assert os.getpid() in descendants(os.getppid())
