"""Every named scenario builds, runs, and shows the behaviour it is named for."""

from __future__ import annotations

import socket
from datetime import timedelta

import httpx
import pytest
from typer.testing import CliRunner

from zapflow.cli import app
from zapflow.clock import FakeClock
from zapflow.simulator.devices import Mode
from zapflow.simulator.scenarios import SCENARIOS, build, scenario


def _energy_kwh(cloud_pv: list[float], step_s: float) -> float:
    return sum(cloud_pv) * step_s / 3_600_000


@pytest.mark.parametrize("name", sorted(SCENARIOS), ids=str)
def test_scenario_runs_two_hours(name: str) -> None:
    """Each scenario builds, its visits name real chargers, and two simulated hours run cleanly."""
    chosen = scenario(name)
    names = {c.name for i in chosen.installations for c in i.chargers}
    assert {v.charger for v in chosen.visits} <= names
    cloud = build(chosen, wall=FakeClock())
    cloud.step(2 * 3600)
    assert cloud.world.now == chosen.start + timedelta(hours=2)
    assert cloud.events()
    for inst in cloud.world.installations.values():
        reading = cloud.world.meter_reading(inst.installation_id)
        assert len(reading.grid_current_a) == 3


def test_sunny_beats_cloudy() -> None:
    """The sunny source day yields clearly more PV than the cloudy one over the same hours."""
    totals = {}
    for name in ("sunny-day", "cloudy-day"):
        cloud = build(scenario(name), wall=FakeClock())
        home = cloud.world.installation_by_name("Home").installation_id
        samples = []
        cloud.step(2 * 3600)
        for _ in range(48):  # 12 h in 15-min steps from 06:00 local
            cloud.step(900)
            samples.append(cloud.world.meter_reading(home).pv_power_w)
        totals[name] = _energy_kwh(samples, 900)
    assert totals["sunny-day"] > 1.15 * totals["cloudy-day"]
    assert totals["sunny-day"] > 25  # 8 kWp on a June day


def test_fuse_limited_evening_stays_within_the_fuse() -> None:
    """With two cars on 3x16 A, Zaptec's balancer never allocates more than 16 A on a phase."""
    cloud = build(scenario("fuse-limited-evening"), wall=FakeClock())
    inst = cloud.world.installation_by_name("Home")
    both_charging = False
    cloud.step(4 * 3600)  # the day starts at 12:00 local
    for _ in range(6 * 60):
        cloud.step(60)
        per_phase = [0.0, 0.0, 0.0]
        for c in cloud.world.chargers.values():
            for p in c.conductors:
                per_phase[p] += c.current_a
        assert max(per_phase) <= inst.max_current_a + 1e-9
        both_charging |= all(c.current_a > 0 for c in cloud.world.chargers.values())
    assert both_charging


def test_apm_on_switches_mode() -> None:
    """At 08:00 local the installation goes to APM mode."""
    cloud = build(scenario("apm-on"), wall=FakeClock())
    cloud.step(3 * 3600)  # the day starts at 04:00 local
    assert cloud.world.installation_by_name("Home").mode == Mode.DEFAULT
    cloud.step(3601)
    assert cloud.world.installation_by_name("Home").mode == Mode.APM


def test_storm_rate_limits_every_request() -> None:
    """During the 429 storm every API request is refused with Retry-After: 1."""
    cloud = build(scenario("429-storm"), wall=FakeClock())
    cloud.step(3 * 3600 + 60)  # 07:01 local
    response = cloud.handle(httpx.Request("GET", "http://s/api/constants"))
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    cloud.step(600)
    assert cloud.handle(httpx.Request("GET", "http://s/api/constants")).status_code == 200


def test_same_seed_same_world_other_seed_other_household() -> None:
    """A seed fixes the world; another seed changes the household appliance layer."""

    def meter_trace(seed: int) -> list[tuple[float, float, float]]:
        cloud = build(scenario("sunny-day", seed=seed), wall=FakeClock())
        home = cloud.world.installation_by_name("Home").installation_id
        trace = []
        for _ in range(96):
            cloud.step(600)
            trace.append(cloud.world.meter_reading(home).grid_current_a)
        return trace

    assert meter_trace(1) == meter_trace(1)
    assert meter_trace(1) != meter_trace(2)


def test_unknown_scenario_lists_the_known_ones() -> None:
    """A typo gets the list of names, not a KeyError."""
    with pytest.raises(ValueError, match="known: 429-storm"):
        scenario("sunny")


def test_cli_lists_scenarios_and_refuses_bad_serve_arguments() -> None:
    """`zapflow simulator scenarios` lists every name; `serve` explains bad input with exit 2."""
    runner = CliRunner()
    listing = runner.invoke(app, ["simulator", "scenarios"], env={"COLUMNS": "200"})
    assert listing.exit_code == 0
    for name in SCENARIOS:
        assert name in listing.output
    unknown = runner.invoke(app, ["simulator", "serve", "--scenario", "nope"])
    assert unknown.exit_code == 2
    assert "known:" in unknown.output
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = runner.invoke(app, ["simulator", "serve", "--port", str(port)])
    assert busy.exit_code == 2
    assert "in use" in busy.output


def test_control_endpoint_loads_a_named_scenario() -> None:
    """POST /_sim/scenario swaps the world in place; unknown names get a 404 with the list."""
    cloud = build(scenario("sunny-day"), wall=FakeClock())
    cloud.step(600)

    def load(body: object) -> httpx.Response:
        return cloud.handle(httpx.Request("POST", "http://s/_sim/scenario", json=body))

    response = load({"name": "fuse-limited-evening", "seed": 3})
    assert response.status_code == 200
    assert cloud.world.installation_by_name("Home").max_current_a == 16.0
    assert cloud.world.now == scenario("fuse-limited-evening").start
    assert (
        cloud.handle(httpx.Request("GET", "http://s/_sim/state")).json()["scenario"] == "fuse-limited-evening"
    )
    assert [r.path for r in cloud.ledger.requests] == ["/_sim/scenario", "/_sim/state"]  # a fresh ledger
    assert load({"name": "nope"}).status_code == 404
    assert load({"seed": 1}).status_code == 400


def test_troubled_day_has_its_5xx_burst() -> None:
    """From 08:00 local the next three API reads answer 503, then service resumes."""
    cloud = build(scenario("troubled-day"), wall=FakeClock())
    cloud.step(4 * 3600)  # 08:00 local (the day starts at 04:00)
    statuses = [cloud.handle(httpx.Request("GET", "http://s/api/constants")).status_code for _ in range(4)]
    assert statuses == [503, 503, 503, 200]
