"""The meter adapter: the README contract over HTTP (served by the simulator), errors, and replay."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from zapflow.clock import FakeClock
from zapflow.meter import HttpMeter, MeterDataInvalid, MeterUnavailable, ReplayMeter
from zapflow.simulator.cloud import SimulatedCloud
from zapflow.simulator.devices import Model
from zapflow.simulator.events import InMemoryEventSink
from zapflow.simulator.simclock import SimClock
from zapflow.simulator.world import CarSpec, ChargerSpec, InstallationSpec, Visit, World

T0 = datetime(2026, 6, 17, 12, tzinfo=UTC)
GOOD = {
    "timestamp": "2026-06-17T12:00:00Z",
    "grid_current_a": [1, 2, 3],
    "grid_power_w": [1, 2, 3],
    "pv_power_w": 0,
}


def _body(**changes: object) -> bytes:
    body = {**GOOD, **changes}
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()


def _simulated() -> tuple[SimulatedCloud, str]:
    world = World(
        [InstallationSpec(name="Home", chargers=(ChargerSpec("Go 2", Model.GO2),))],
        start=T0,
        sink=InMemoryEventSink(),
        visits=[Visit("Go 2", CarSpec(name="EV"), T0 + timedelta(seconds=1), T0 + timedelta(hours=5))],
    )
    cloud = SimulatedCloud(world, clock=SimClock(T0), wall=FakeClock())
    return cloud, world.installation_by_name("Home").installation_id


def test_reads_the_simulators_meter() -> None:
    """The adapter parses what the simulator serves: per-phase import and PV, UTC time."""
    cloud, home = _simulated()
    cloud.step(30)
    meter = HttpMeter(
        httpx.Client(base_url="http://sim", transport=cloud.transport()), f"/sites/{home}/meter"
    )
    reading = meter.read(T0)
    assert reading.measured_at == T0 + timedelta(seconds=30)
    assert reading.grid_current_a.as_tuple() == (16.0, 16.0, 16.0)
    assert reading.grid_power_w.as_tuple() == (3680.0, 3680.0, 3680.0)
    assert reading.pv_power_w == 0.0


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"not json", "not a meter reading"),
        (_body(timestamp="2026-06-17T12:00:00"), "must carry a zone"),
        (_body(grid_current_a=[1, 2]), "three finite numbers"),
        (_body(pv_power_w=-5), "pv_power_w"),
        (_body(pv_power_w=None), "pv_power_w"),
    ],
    ids=["not-json", "naive-time", "two-phases", "negative-pv", "missing-pv"],
)
def test_bad_data_is_a_typed_error(body: bytes, match: str) -> None:
    """Anything outside the contract is MeterDataInvalid, naming what was wrong."""
    transport = httpx.MockTransport(lambda _request: httpx.Response(200, content=body))
    with pytest.raises(MeterDataInvalid, match=match):
        HttpMeter(httpx.Client(base_url="http://gw", transport=transport), "/meter").read(T0)


@pytest.mark.parametrize(
    "respond",
    [
        lambda _request: httpx.Response(503),
        lambda request: (_ for _ in ()).throw(httpx.ConnectError("refused", request=request)),
    ],
    ids=["http-503", "connect-error"],
)
def test_unreachable_meter_is_unavailable(respond: object) -> None:
    """Network failures and error statuses are MeterUnavailable (the caller falls back)."""
    transport = httpx.MockTransport(respond)  # type: ignore[arg-type]
    with pytest.raises(MeterUnavailable):
        HttpMeter(httpx.Client(base_url="http://gw", transport=transport), "/meter").read(T0)


def test_replay_returns_the_newest_reading_at_or_before_now(tmp_path: Path) -> None:
    """A recorded file replays by time; asking before its start is MeterUnavailable."""
    cloud, home = _simulated()
    meter = HttpMeter(
        httpx.Client(base_url="http://sim", transport=cloud.transport()), f"/sites/{home}/meter"
    )
    lines = []
    for _ in range(3):
        cloud.step(60)
        lines.append(ReplayMeter.line(meter.read(T0)))
    path = tmp_path / "meter.jsonl"
    path.write_text("\n".join(reversed(lines)) + "\n\n")
    replay = ReplayMeter(path)
    assert replay.read(T0 + timedelta(seconds=150)).measured_at == T0 + timedelta(seconds=120)
    assert replay.read(T0 + timedelta(hours=1)).measured_at == T0 + timedelta(seconds=180)
    with pytest.raises(MeterUnavailable, match="no reading at or before"):
        replay.read(T0)


def test_replay_file_errors_name_the_line(tmp_path: Path) -> None:
    """A broken line in a replay file is reported with its line number; an empty file too."""
    path = tmp_path / "meter.jsonl"
    path.write_text(json.dumps({"timestamp": "x"}) + "\n")
    with pytest.raises(MeterDataInvalid, match=r"meter.jsonl:1"):
        ReplayMeter(path)
    path.write_text("\n")
    with pytest.raises(MeterDataInvalid, match="no readings"):
        ReplayMeter(path)
