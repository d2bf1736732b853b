"""Acceptance: a simulated sunny day through the real tick code, simulator over loopback HTTP."""

from __future__ import annotations

from pathlib import Path

from storage import Storage
from zapflow.balance.simday import Truth, run_day, score, served, site_for
from zapflow.domain.policy import PolicyMode
from zapflow.simulator.scenarios import build, scenario

TICKS = 4 * 14  # 04:00 to 18:00 local: the car leaves at 18:00


def _static_6a_three_phase() -> Truth:
    """The baseline: 6 A on all phases, forced 3-phase, all day, no zapflow."""
    chosen = scenario("sunny-day")
    cloud = build(chosen)
    inst = cloud.world.installation_by_name("Home")
    cloud.world.write_available_current(inst.installation_id, phases_a=(6.0, 6.0, 6.0), switch_current_a=0.0)
    truth = Truth(inst.installation_id, inst.spec.voltage_v, inst.spec.max_current_a)
    for _ in range(TICKS * 90):
        cloud.step(10)
        truth.record(cloud)
    return truth


def test_sunny_day_solar_mode_beats_a_static_6a_run(tmp_path: Path) -> None:
    """Solar share >= 85 %, >= 65 % of the surplus while plugged in captured, both above static 6 A."""
    chosen = scenario("sunny-day")
    storage = Storage.at(tmp_path)
    storage.ensure_ready()
    with served(chosen) as (cloud, url):
        result = run_day(
            cloud, url, storage, site=site_for(chosen, cloud, url, mode=PolicyMode.SOLAR), ticks=TICKS
        )
    ours = score(result.truth)
    static = score(_static_6a_three_phase())
    assert all(r.status == "done" for r in result.reports)
    assert ours.solar_share >= 0.85, ours
    assert ours.surplus_captured >= 0.65, ours
    assert ours.solar_share > static.solar_share, (ours, static)
    assert ours.surplus_captured > static.surplus_captured, (ours, static)
    decided = storage.read("SELECT count(*) AS n FROM decisions").to_pylist()[0]["n"]
    assert decided == TICKS
    sources = {r.state_source for r in result.reports}
    assert sources <= {"poll", "local"}
    assert "local" in sources  # the meter flow's polls feed the tick while the car charges
