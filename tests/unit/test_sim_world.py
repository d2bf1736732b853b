"""The simulated cloud in-process: the real client against the world's own state, on explicit time."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from zapflow.clock import FakeClock
from zapflow.settings import ZaptecSettings
from zapflow.simulator.cloud import Account, SimulatedCloud
from zapflow.simulator.devices import Model, Network, Obs, OpMode
from zapflow.simulator.events import InMemoryEventSink
from zapflow.simulator.faults import ChargerOffline, Faults, ServerErrorBurst, Window
from zapflow.simulator.simclock import SimClock
from zapflow.simulator.world import CarSpec, ChargerSpec, InstallationSpec, Visit, World
from zapflow.zaptec import (
    AccountRegistry,
    AmbiguousWrite,
    Forbidden,
    InstallationUpdate,
    ModeNotControllable,
    RetryPolicy,
    ZaptecClient,
)
from zapflow.zaptec.mapping import charger_state

T0 = datetime(2026, 6, 17, 12, 0, tzinfo=UTC)
CAR = CarSpec(name="EV", battery_kwh=60.0, arrival_soc=0.2, target_soc=0.9, max_current_a=16.0)


def _cloud(
    chargers: tuple[ChargerSpec, ...] = (ChargerSpec("Go 2", Model.GO2),),
    visits: tuple[tuple[str, CarSpec], ...] = (("Go 2", CAR),),
    faults: Faults | None = None,
    wall: FakeClock | None = None,
    **installation: object,
) -> SimulatedCloud:
    spec = InstallationSpec(name="Home", chargers=chargers, **installation)  # type: ignore[arg-type]
    world = World(
        [spec],
        start=T0,
        sink=InMemoryEventSink(),
        visits=[
            Visit(name, car, T0 + timedelta(seconds=1), T0 + timedelta(hours=12)) for name, car in visits
        ],
    )
    return SimulatedCloud(world, clock=SimClock(T0), wall=wall or FakeClock(), faults=faults)


def _client(cloud: SimulatedCloud, wall: FakeClock, retry: RetryPolicy | None = None) -> ZaptecClient:
    settings = ZaptecSettings(
        base_url="http://simulator.test", username=cloud.account.username, password=cloud.account.password
    )
    return ZaptecClient.from_settings(
        settings,
        transport=cloud.transport(),
        clock=wall,
        accounts=AccountRegistry(),
        retry=retry or RetryPolicy(),
    )


@pytest.fixture
def wall() -> FakeClock:
    """The client's (and the server rate limiter's) clock."""
    return FakeClock()


def _token(cloud: SimulatedCloud) -> str:
    """Log in against the handler directly (tests that bypass the client)."""
    form = {"grant_type": "password", "username": cloud.account.username, "password": cloud.account.password}
    response = cloud.handle(httpx.Request("POST", "http://s/oauth/token", data=form))
    return str(json.loads(response.content)["access_token"])


def _home(cloud: SimulatedCloud) -> str:
    return cloud.world.installation_by_name("Home").installation_id


def test_client_reads_what_the_world_holds(wall: FakeClock) -> None:
    """Installation, hierarchy, chargers and state come from the world, in Zaptec's shapes."""
    cloud = _cloud(wall=wall)
    client = _client(cloud, wall)
    (inst,) = client.list_installations()
    settings = client.get_installation(inst.installation_id)
    assert settings.max_current_a == 25.0
    assert settings.available_current_phases_a is not None
    assert settings.available_current_phases_a.as_tuple() == (25.0, 25.0, 25.0)
    hierarchy = client.get_hierarchy(inst.installation_id)
    assert hierarchy is not None
    assert hierarchy.circuits[0].chargers[0].model.value == "go2"
    (charger,) = client.list_chargers()
    cloud.step(30)
    state = charger_state(
        charger.charger_id, client.get_charger_state(charger.charger_id), device_id=charger.device_id
    )
    assert state.model.value == "go2"
    assert state.is_online is not None
    assert state.is_online.value is True
    assert state.operation_mode is not None
    assert state.operation_mode.value.value == OpMode.CHARGING
    assert state.total_charge_power_w is not None
    assert state.total_charge_power_w.value == pytest.approx(3 * 230 * 16)


def test_per_phase_write_shows_in_get_then_in_observations(wall: FakeClock) -> None:
    """A write is in the next GET at once, and in the charger's 708/513 after the reaction delay."""
    cloud = _cloud(wall=wall)
    client = _client(cloud, wall)
    home = _home(cloud)
    cloud.step(30)
    client.update_installation(home, InstallationUpdate(phases_a=(10.0, 10.0, 10.0)), max_current_a=25.0)
    after = client.get_installation(home)
    assert after.available_current_phases_a is not None
    assert after.available_current_phases_a.as_tuple() == (10.0, 10.0, 10.0)
    charger = cloud.world.charger_by_name("Go 2")
    assert charger.observations[Obs.CHARGE_CURRENT_SET][1] == "16.000"  # not yet: Zaptec reacts later
    cloud.step(6)
    assert charger.observations[Obs.CHARGE_CURRENT_SET][1] == "10.000"
    assert float(charger.observations[Obs.TOTAL_CHARGE_POWER][1] or 0) == pytest.approx(3 * 230 * 10)
    (write,) = cloud.ledger.accepted_writes
    assert write.effective_at - write.received_at == timedelta(seconds=5)
    assert write.body == {
        "availableCurrentPhase1": 10.0,
        "availableCurrentPhase2": 10.0,
        "availableCurrentPhase3": 10.0,
    }


def test_state_endpoint_is_cached_15_seconds(wall: FakeClock) -> None:
    """Polling faster than Zaptec's 15 s cache returns the same snapshot."""
    cloud = _cloud(wall=wall)
    client = _client(cloud, wall)
    charger = cloud.world.charger_by_name("Go 2")
    first = client.get_charger_state(charger.charger_id)
    cloud.step(10)
    assert client.get_charger_state(charger.charger_id) == first
    cloud.step(6)
    assert client.get_charger_state(charger.charger_id) != first


def test_partial_phase_write_resets_missing_phases(wall: FakeClock) -> None:
    """Zaptec resets phases left out of a per-phase write to their default (MaxCurrent)."""
    cloud = _cloud(wall=wall)
    home = _home(cloud)
    body = json.dumps({"availableCurrent": 10}).encode()
    cloud.handle(
        httpx.Request("POST", f"http://s/api/installation/{home}/update", content=body)
    )  # 401: no token
    token = _token(cloud)
    partial = json.dumps({"availableCurrentPhase1": 8}).encode()
    response = cloud.handle(
        httpx.Request(
            "POST",
            f"http://s/api/installation/{home}/update",
            content=partial,
            headers={"Authorization": f"Bearer {token}"},
        )
    )
    assert response.status_code == 200
    assert cloud.world.installations[home].available_a == (8.0, 25.0, 25.0)


def test_two_chargers_share_and_the_go_stays_on_three_phases(wall: FakeClock) -> None:
    """A Go and a Go 2 share 3x32 A; the Go never switches, even when forced to 1-phase."""
    chargers = (ChargerSpec("Go", Model.GO), ChargerSpec("Go 2", Model.GO2, rotation=1))
    van = CarSpec(name="Van", max_phases=1, max_current_a=32.0)
    cloud = _cloud(chargers, (("Go", CAR), ("Go 2", van)), wall=wall, max_current_a=32.0)
    client = _client(cloud, wall)
    cloud.step(10)
    go, go2 = cloud.world.charger_by_name("Go"), cloud.world.charger_by_name("Go 2")
    assert (go.phases, go2.phases) == (3, 1)
    assert go2.conductors == (1,)  # rotation 1: the van loads L2
    assert go.allocated_a == 16.0
    assert go2.allocated_a == 16.0  # L2 is shared: 32 / 2
    client.update_installation(
        _home(cloud), InstallationUpdate(three_to_one_phase_switch_current_a=32.0), max_current_a=32.0
    )
    cloud.step(10)
    assert go.phases == 3


def test_go2_session_switch_budget(wall: FakeClock) -> None:
    """A Go 2 returns to 3-phase at most `PropertySessionMaxStopCount` times per session."""
    cloud = _cloud(wall=wall, session_max_stop_count=2)
    client = _client(cloud, wall)
    home = _home(cloud)
    charger = cloud.world.charger_by_name("Go 2")
    phases_seen = []
    for available in (7.0, 16.0, 7.0, 16.0, 7.0, 16.0, 7.0, 16.0):
        client.update_installation(
            home, InstallationUpdate(available_current_a=available), max_current_a=25.0
        )
        cloud.step(10)
        phases_seen.append(charger.phases)
    assert phases_seen == [1, 3, 1, 3, 1, 1, 1, 1]
    assert charger.returns_to_3p == 2
    set_phases = [e["ValueAsString"] for e in cloud.events() if e["StateId"] == Obs.SET_PHASES]
    assert set_phases[-5:] == ["1", "4", "1", "4", "1"]


@pytest.mark.parametrize(
    ("network", "expected_w"),
    [(Network.TN, 3 * 230 * 16), (Network.IT, 3**0.5 * 230 * 16)],
    ids=["tn", "it"],
)
def test_reported_power_by_network(wall: FakeClock, network: Network, expected_w: float) -> None:
    """TotalChargePower (513) follows the network: TN 3 x 230 x I, IT sqrt(3) x 230 x I."""
    cloud = _cloud(wall=wall, network=network)
    cloud.step(10)
    charger = cloud.world.charger_by_name("Go 2")
    assert float(charger.observations[Obs.TOTAL_CHARGE_POWER][1] or 0) == pytest.approx(expected_w, abs=0.01)


def test_session_finishes_and_car_leaves(wall: FakeClock) -> None:
    """A full battery ends in Connected_Finished; leaving ends in Disconnected, and 553 holds the energy."""
    small = CarSpec(name="Small", battery_kwh=10.0, arrival_soc=0.5, target_soc=0.6, max_current_a=16.0)
    cloud = _cloud(visits=(("Go 2", small),), wall=wall)
    cloud.step(600)
    charger = cloud.world.charger_by_name("Go 2")
    assert charger.op_mode == OpMode.FINISHED
    assert charger.session_energy_kwh == pytest.approx(1.0)
    cloud.step(13 * 3600)
    assert charger.op_mode == OpMode.DISCONNECTED
    energies = [e["ValueAsString"] for e in cloud.events() if e["StateId"] == Obs.SESSION_ENERGY]
    assert energies[-1] == "1.000"


def test_apm_refuses_writes_with_527(wall: FakeClock) -> None:
    """After APM is switched on, a write is refused with HTTP 500 + Code 527 and not retried."""
    faults = Faults(apm_on_at=T0 + timedelta(minutes=5))
    cloud = _cloud(wall=wall, faults=faults)
    client = _client(cloud, wall)
    home = _home(cloud)
    client.update_installation(home, InstallationUpdate(available_current_a=10.0), max_current_a=25.0)
    cloud.step(600)
    with pytest.raises(ModeNotControllable):
        client.update_installation(home, InstallationUpdate(available_current_a=12.0), max_current_a=25.0)
    assert [p.status for p in cloud.ledger.post_attempts] == [200, 500]
    assert client.get_installation(home).mode == 2


def test_user_role_only_gets_403(wall: FakeClock) -> None:
    """Without Owner/Service the write is forbidden and the hierarchy answers 204."""
    cloud = _cloud(wall=wall, user_roles=1)
    client = _client(cloud, wall)
    home = _home(cloud)
    assert client.get_hierarchy(home) is None
    with pytest.raises(Forbidden):
        client.update_installation(home, InstallationUpdate(available_current_a=10.0), max_current_a=25.0)


def test_write_timeout_after_apply_is_ambiguous_and_landed(wall: FakeClock) -> None:
    """An applied write whose response times out: AmbiguousWrite for the client, one POST in the ledger."""
    cloud = _cloud(wall=wall, faults=Faults(write_timeouts=1))
    client = _client(cloud, wall)
    home = _home(cloud)
    with pytest.raises(AmbiguousWrite):
        client.update_installation(home, InstallationUpdate(available_current_a=11.0), max_current_a=25.0)
    assert len(cloud.ledger.post_attempts) == 1
    assert len(cloud.ledger.accepted_writes) == 1
    assert client.get_installation(home).available_current_a == 11.0


def test_server_error_burst_and_rate_limit_storm(wall: FakeClock) -> None:
    """A 5xx burst and a 429 storm are ridden out by the client's retries (Retry-After honoured)."""
    faults = Faults(
        server_errors=[ServerErrorBurst(status=502, count=2, path="/api/installation/.*")],
        rate_limit_storms=[Window(T0, T0 + timedelta(seconds=30))],
    )
    cloud = _cloud(wall=wall, faults=faults)
    client = _client(cloud, wall, RetryPolicy(max_attempts=10, max_total_s=600))
    home = _home(cloud)
    with pytest.raises(Exception, match="429"):
        client.get_installation(home)  # the storm outlasts the retries in frozen simulated time
    cloud.step(31)
    wall.sleeps.clear()
    assert client.get_installation(home).name == "Home"
    statuses = [r.status for r in cloud.ledger.requests if r.path == f"/api/installation/{home}"]
    assert statuses[-3:] == [502, 502, 200]


def test_server_rate_limit_is_ten_per_second_burst_fifteen(wall: FakeClock) -> None:
    """Without client-side spacing, the 16th request in an instant gets 429 with Retry-After: 1."""
    cloud = _cloud(wall=wall)
    statuses = [cloud.handle(httpx.Request("GET", "http://s/api/constants")).status_code for _ in range(16)]
    assert statuses == [200] * 15 + [429]
    wall.advance(0.1)
    assert cloud.handle(httpx.Request("GET", "http://s/api/constants")).status_code == 200


def test_token_expiry_forces_relogin(wall: FakeClock) -> None:
    """Tokens revoked by the fault cost the client one re-login."""
    cloud = _cloud(wall=wall, faults=Faults(token_expiry_at=[T0 + timedelta(minutes=1)]))
    client = _client(cloud, wall)
    home = _home(cloud)
    client.get_installation(home)
    cloud.step(120)
    client.get_installation(home)
    assert cloud.logins == 2


def test_tokens_expire_on_simulated_time(wall: FakeClock) -> None:
    """A token's lifetime runs on the simulated clock."""
    cloud = _cloud(wall=wall)
    cloud.account = Account(token_lifetime_s=60)
    client = _client(cloud, wall)
    home = _home(cloud)
    client.get_installation(home)
    cloud.step(61)
    client.get_installation(home)
    assert cloud.logins == 2


def test_offline_charger_ignores_the_cloud(wall: FakeClock) -> None:
    """An offline charger reports IsOnline 0 and falls back to its offline current."""
    window = Window(T0 + timedelta(minutes=1), T0 + timedelta(minutes=10))
    cloud = _cloud(wall=wall, faults=Faults(chargers_offline=[ChargerOffline("Go 2", window)]))
    cloud.step(120)
    charger = cloud.world.charger_by_name("Go 2")
    assert charger.observations[Obs.IS_ONLINE][1] == "0"
    assert charger.allocated_a == 6.0
    cloud.step(600)
    assert charger.observations[Obs.IS_ONLINE][1] == "1"
    assert charger.allocated_a == 16.0


def test_cloud_reset_restores_max_current(wall: FakeClock) -> None:
    """A cloud-side reset puts AvailableCurrent back to MaxCurrent."""
    cloud = _cloud(wall=wall, faults=Faults(cloud_reset_at=[T0 + timedelta(minutes=30)]))
    client = _client(cloud, wall)
    home = _home(cloud)
    client.update_installation(home, InstallationUpdate(available_current_a=8.0), max_current_a=25.0)
    cloud.step(1800)
    assert client.get_installation(home).available_current_a == 25.0


def test_events_carry_zaptec_fields(wall: FakeClock) -> None:
    """Every published event is Zaptec's message object with zone-less charger timestamps."""
    cloud = _cloud(wall=wall)
    cloud.step(5)
    events = cloud.events()
    assert events
    assert set(events[0]) == {"DeviceId", "DeviceType", "ChargerId", "StateId", "Timestamp", "ValueAsString"}
    assert events[0]["DeviceId"].startswith("GPN")
    assert not events[-1]["Timestamp"].endswith("Z")


def test_control_endpoints(wall: FakeClock) -> None:
    """Step, scale, state and ledger are reachable through the same handler; bad input is a 400."""
    cloud = _cloud(wall=wall)

    def post(path: str, body: object) -> httpx.Response:
        return cloud.handle(httpx.Request("POST", f"http://s{path}", json=body))

    assert post("/_sim/step", {"seconds": 60}).status_code == 200
    assert cloud.world.now == T0 + timedelta(seconds=60)
    assert post("/_sim/step", {"seconds": -1}).status_code == 400
    assert post("/_sim/clock", {"scale": 60}).json()["scale"] == 60
    assert post("/_sim/clock", {"scale": "fast"}).status_code == 400
    state = cloud.handle(httpx.Request("GET", "http://s/_sim/state")).json()
    assert state["chargers"][0]["name"] == "Go 2"
    assert "requests" in cloud.handle(httpx.Request("GET", "http://s/_sim/ledger")).json()
    assert cloud.handle(httpx.Request("GET", "http://s/_sim/nope")).status_code == 404


def test_meter_endpoint_without_site_reports_ev_only(wall: FakeClock) -> None:
    """With no site attached the meter sees only the EV: import positive, per phase."""
    cloud = _cloud(wall=wall)
    cloud.step(10)
    home = _home(cloud)
    reading = cloud.handle(httpx.Request("GET", f"http://s/sites/{home}/meter")).json()
    assert reading["grid_current_a"] == [16.0, 16.0, 16.0]
    assert reading["grid_power_w"] == [3680.0, 3680.0, 3680.0]
    assert reading["pv_power_w"] == 0.0
    assert reading["timestamp"].endswith("Z")
    assert cloud.handle(httpx.Request("GET", "http://s/sites/nope/meter")).status_code == 404


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"threeToOnePhaseSwitchCurrent": 5}, 400),
        ({"threeToOnePhaseSwitchCurrent": 0}, 200),
        ({"availableCurrent": 26}, 400),
        ({"availableCurrent": "ten"}, 400),
        ({"unrelated": 1}, 400),
        ([1, 2], 400),
    ],
    ids=["switch-5a", "switch-0", "above-max", "string", "nothing-known", "not-an-object"],
)
def test_simulator_refuses_bad_writes(wall: FakeClock, body: object, status: int) -> None:
    """The simulated cloud validates writes itself (it must not trust the client's validation)."""
    cloud = _cloud(wall=wall)
    token = _token(cloud)
    request = httpx.Request(
        "POST",
        f"http://s/api/installation/{_home(cloud)}/update",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert cloud.handle(request).status_code == status
