"""The real client against the simulator served over HTTP on loopback (uvicorn)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from zapflow.clock import FakeClock
from zapflow.settings import ZaptecSettings
from zapflow.simulator.cloud import SimulatedCloud
from zapflow.simulator.devices import Model, Obs
from zapflow.simulator.events import InMemoryEventSink
from zapflow.simulator.faults import Faults, ServerErrorBurst
from zapflow.simulator.server import SimulatorServer
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

T0 = datetime(2026, 6, 17, 12, 0, tzinfo=UTC)


def _world() -> World:
    car = CarSpec(name="EV", max_current_a=16.0)
    return World(
        [
            InstallationSpec(
                name="Home", chargers=(ChargerSpec("Go 2", Model.GO2), ChargerSpec("Pro", Model.PRO))
            ),
            InstallationSpec(name="Cabin", mode=2, chargers=(ChargerSpec("Cabin Go", Model.GO),)),
            InstallationSpec(name="Neighbour", user_roles=1, chargers=(ChargerSpec("Their Go", Model.GO),)),
        ],
        start=T0,
        sink=InMemoryEventSink(),
        visits=[Visit("Go 2", car, T0 + timedelta(seconds=1), T0 + timedelta(hours=10))],
    )


@pytest.fixture
def wall() -> FakeClock:
    """The clock the client waits on and the server's rate limiter judges by (shared, as in life)."""
    return FakeClock()


@pytest.fixture
def served(wall: FakeClock) -> Iterator[tuple[SimulatedCloud, str]]:
    """A simulated cloud served on a free loopback port; simulated time frozen between steps."""
    cloud = SimulatedCloud(
        _world(),
        clock=SimClock(T0),
        wall=wall,
        faults=Faults(
            server_errors=[
                ServerErrorBurst(status=503, count=2, path="/api/chargers"),
                ServerErrorBurst(status=429, count=2, path="/api/constants"),
            ],
            token_expiry_at=[T0 + timedelta(minutes=10)],
            write_timeouts=0,
            write_timeout_hold_s=1.0,
        ),
    )
    with SimulatorServer(cloud) as server:
        yield cloud, server.base_url


def _client(base_url: str, cloud: SimulatedCloud, clock: FakeClock, **kw: float) -> ZaptecClient:
    settings = ZaptecSettings(
        base_url=base_url, username=cloud.account.username, password=cloud.account.password, **kw
    )
    # A fake clock for the client's own waits (Retry-After, backoff); the wire and server are real.
    client = ZaptecClient.from_settings(
        settings, clock=clock, accounts=AccountRegistry(), retry=RetryPolicy(max_attempts=4)
    )
    client._page_size = 1
    return client


def _step(base_url: str, seconds: float) -> None:
    httpx.post(f"{base_url}/_sim/step", json={"seconds": seconds}).raise_for_status()


def test_client_round_trip_over_http(served: tuple[SimulatedCloud, str], wall: FakeClock) -> None:
    """Paging, 5xx, 429 + Retry-After, re-login on expiry, writes, 527 and 403 over the wire."""
    cloud, base_url = served
    with _client(base_url, cloud, wall) as client:
        _round_trip(client, cloud, wall, base_url)


def _round_trip(client: ZaptecClient, cloud: SimulatedCloud, clock: FakeClock, base_url: str) -> None:
    installations = client.list_installations()  # three pages of one
    assert [i.name for i in installations] == ["Home", "Cabin", "Neighbour"]
    assert [c.name for c in client.list_chargers()] == [
        "Go 2",
        "Pro",
        "Cabin Go",
        "Their Go",
    ]  # after two 503s
    clock.sleeps.clear()
    assert client.get_constants().Observations["IsOnline"] == -2
    assert clock.sleeps[:2] == [1.0, 1.0]  # two 429s, each waited Retry-After: 1
    home, cabin, neighbour = (i.installation_id for i in installations)

    client.update_installation(home, InstallationUpdate(phases_a=(10.0, 12.0, 14.0)), max_current_a=25.0)
    after = client.get_installation(home)
    assert after.available_current_phases_a is not None
    assert after.available_current_phases_a.as_tuple() == (10.0, 12.0, 14.0)
    _step(base_url, 6)
    go2 = cloud.world.charger_by_name("Go 2")
    state = {e.state_id: e.value for e in client.get_charger_state(go2.charger_id)}
    assert state[Obs.CHARGE_CURRENT_SET] == "10.000"

    _step(base_url, 600)  # the scenario revokes tokens at 10 minutes
    logins = cloud.logins
    client.get_installation(home)
    assert cloud.logins == logins + 1

    with pytest.raises(ModeNotControllable):
        client.update_installation(cabin, InstallationUpdate(available_current_a=10.0), max_current_a=25.0)
    with pytest.raises(Forbidden):
        client.update_installation(
            neighbour, InstallationUpdate(available_current_a=10.0), max_current_a=25.0
        )
    assert client.get_hierarchy(neighbour) is None


def test_lost_write_response_over_http(served: tuple[SimulatedCloud, str], wall: FakeClock) -> None:
    """A write applied but answered too late is AmbiguousWrite after one POST, and it did land."""
    cloud, base_url = served
    cloud.faults.write_timeouts = 1
    home = cloud.world.installation_by_name("Home").installation_id
    with _client(base_url, cloud, wall, timeout_s=0.3) as client:
        with pytest.raises(AmbiguousWrite):
            client.update_installation(home, InstallationUpdate(available_current_a=9.0), max_current_a=25.0)
        assert len(cloud.ledger.post_attempts) == 1
        assert client.get_installation(home).available_current_a == 9.0


def test_meter_and_control_over_http(served: tuple[SimulatedCloud, str]) -> None:
    """The meter contract and the control endpoints answer over the wire."""
    cloud, base_url = served
    home = cloud.world.installation_by_name("Home").installation_id
    _step(base_url, 10)
    reading = httpx.get(f"{base_url}/sites/{home}/meter").json()
    assert set(reading) == {"timestamp", "grid_current_a", "grid_power_w", "pv_power_w"}
    assert reading["grid_current_a"] == [16.0, 16.0, 16.0]
    state = httpx.get(f"{base_url}/_sim/state").json()
    assert state["now"] == (T0 + timedelta(seconds=10)).isoformat()
    assert httpx.post(f"{base_url}/_sim/clock", json={"scale": 0}).json()["scale"] == 0
