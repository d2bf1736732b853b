"""Named worlds, each fully specified here: site, kWp, fuse, chargers, cars, source day, seed, faults.

`build(name)` turns a scenario into a ready `SimulatedCloud` on a `SimClock`. PV replays a measured
PVDAQ system 50 day (Golden, CO) onto the scenario date, so the default site sits in Golden too
(timezone America/Denver); the sunny and cloudy source days were picked from summer 2012 by the
smoothness of their measured curve (17 June: smooth; 29 June: broken clouds).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field, fields, is_dataclass, replace
from datetime import UTC, date, datetime, timedelta

from zapflow.clock import SYSTEM_CLOCK, Clock
from zapflow.simulator.cloud import Account, BrokerEndpoint, SimulatedCloud
from zapflow.simulator.devices import Model, Network
from zapflow.simulator.events import EventSink, InMemoryEventSink
from zapflow.simulator.faults import ChargerOffline, Faults, ServerErrorBurst, Window
from zapflow.simulator.simclock import SimClock
from zapflow.simulator.site import Site, SiteConfig
from zapflow.simulator.world import CarSpec, ChargerSpec, InstallationSpec, SitePower, Visit, World

__all__ = ["SCENARIOS", "Scenario", "build", "rebased", "scenario"]


@dataclass(frozen=True)
class Scenario:
    """Everything a simulated world needs, in one value."""

    name: str
    description: str
    start: datetime
    seed: int
    installations: tuple[InstallationSpec, ...]
    sites: dict[str, SiteConfig]
    """Site per installation name."""
    visits: tuple[Visit, ...] = ()
    faults: Faults = field(default_factory=Faults)
    account: Account = field(default_factory=Account)


def _utc(day: date, hour: float) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(hours=hour)


# Golden, CO is UTC-6 in summer (MDT) and UTC-7 in winter (MST).
_SUMMER = date(2026, 6, 17)
_CLOUDY = date(2026, 6, 29)
_WINTER = date(2026, 1, 14)
_DAY_CAR = CarSpec(name="Commuter EV", battery_kwh=80.0, arrival_soc=0.1, target_soc=1.0, max_current_a=16.0)
"""Wants 72 kWh: more than a sunny June day's surplus, so every watt of it has somewhere to go."""
_COMMUTER = CarSpec(
    name="Commuter EV", battery_kwh=60.0, arrival_soc=0.25, target_soc=0.9, max_current_a=16.0
)
_BIG_1P = CarSpec(name="Van (1-phase)", battery_kwh=75.0, arrival_soc=0.2, max_phases=1, max_current_a=32.0)


def _home(**changes: object) -> InstallationSpec:
    base = InstallationSpec(
        name="Home",
        max_current_a=25.0,
        chargers=(ChargerSpec(name="Driveway Go 2", model=Model.GO2),),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _one_car_day(name: str, description: str, day: date, source_day: date, seed: int) -> Scenario:
    """8 kWp, 3x25 A TN, one Go 2 and a car plugged in from 08:00 to 18:00 local.

    The day starts at 04:00 local so the meter history covers the night before the car arrives.
    """
    return Scenario(
        name=name,
        description=description,
        start=_utc(day, 10),  # 04:00 local
        seed=seed,
        installations=(_home(),),
        sites={"Home": SiteConfig(pv_kwp=8.0, pv_source_day=source_day, sim_anchor_day=day, seed=seed)},
        visits=(Visit("Driveway Go 2", _DAY_CAR, _utc(day, 14), _utc(day, 24)),),
    )


def _sunny(seed: int) -> Scenario:
    description = (
        "8 kWp, 3x25 A TN, one Go 2, a car wanting 72 kWh plugged in 08:00-18:00 (PVDAQ 2012-06-17 replayed)."
    )
    return _one_car_day("sunny-day", description, _SUMMER, date(2012, 6, 17), seed)


def _cloudy(seed: int) -> Scenario:
    description = "As sunny-day, on a day of broken clouds (PVDAQ 2012-06-29 replayed)."
    return _one_car_day("cloudy-day", description, _CLOUDY, date(2012, 6, 29), seed)


def _fuse_limited_evening(seed: int) -> Scenario:
    chargers = (
        ChargerSpec(name="Garage Go 2", model=Model.GO2),
        ChargerSpec(name="Carport Pro", model=Model.PRO),
    )
    return Scenario(
        name="fuse-limited-evening",
        description="3x16 A fuse on a January evening: household peak, heat pump, two cars from 17:00.",
        start=_utc(_WINTER, 19),  # 12:00 local: meter history before the evening
        seed=seed,
        installations=(_home(max_current_a=16.0, chargers=chargers),),
        sites={
            "Home": SiteConfig(
                pv_kwp=5.0,
                pv_source_day=date(2012, 1, 14),
                sim_anchor_day=_WINTER,
                annual_household_kwh=6500.0,
                seed=seed,
            )
        },
        visits=(
            Visit("Garage Go 2", _COMMUTER, _utc(_WINTER, 24), _utc(_WINTER, 38)),
            Visit("Carport Pro", replace(_COMMUTER, name="Second EV"), _utc(_WINTER, 25), _utc(_WINTER, 37)),
        ),
    )


def _two_cars_go_fixed(seed: int) -> Scenario:
    chargers = (
        ChargerSpec(name="Old Go", model=Model.GO, rotation=0),
        ChargerSpec(name="New Go 2", model=Model.GO2, rotation=1),
    )
    return Scenario(
        name="two-cars-go-fixed",
        description="3x32 A, a Go on fixed phases and a Go 2 (L1 on L2), a 3-phase car and a 1-phase van.",
        start=_utc(_SUMMER, 12),
        seed=seed,
        installations=(_home(max_current_a=32.0, chargers=chargers),),
        sites={
            "Home": SiteConfig(
                pv_kwp=10.0, pv_source_day=date(2012, 6, 17), sim_anchor_day=_SUMMER, seed=seed
            )
        },
        visits=(
            Visit("Old Go", _COMMUTER, _utc(_SUMMER, 13), _utc(_SUMMER, 23)),
            Visit("New Go 2", _BIG_1P, _utc(_SUMMER, 14), _utc(_SUMMER, 24)),
        ),
    )


def _storm(seed: int) -> Scenario:
    base = _sunny(seed)
    storm = Window(_utc(_SUMMER, 13), _utc(_SUMMER, 13) + timedelta(minutes=10))  # 07:00 local
    return replace(
        base,
        name="429-storm",
        description="sunny-day with every API request rate limited (429) for 10 minutes from 07:00.",
        faults=Faults(rate_limit_storms=[storm]),
    )


def _apm_on(seed: int) -> Scenario:
    base = _sunny(seed)
    return replace(
        base,
        name="apm-on",
        description="sunny-day until 08:00, then the installation goes to APM (writes refused: Code 527).",
        faults=Faults(apm_on_at=_utc(_SUMMER, 14)),  # 08:00 local
    )


def _it_network(seed: int) -> Scenario:
    base = _sunny(seed)
    return replace(
        base,
        name="it-network",
        description="sunny-day on a 3x32 A IT network (230 V between phases: 3-phase P = sqrt(3) x 230 x I).",
        installations=(_home(max_current_a=32.0, network=Network.IT),),
    )


def _troubled(seed: int) -> Scenario:
    base = _sunny(seed)
    start = _utc(_SUMMER, 12)  # 06:00 local: the faults are placed from here
    return replace(
        base,
        name="troubled-day",
        description="sunny-day with every fault: 5xx, a lost write response, token expiry, offline charger, "
        "stale meter, a cloud-side reset.",
        faults=Faults(
            server_errors=[ServerErrorBurst(status=503, count=3, start=start + timedelta(hours=2))],
            write_timeouts=1,
            token_expiry_at=[start + timedelta(hours=3)],
            chargers_offline=[
                ChargerOffline(
                    "Driveway Go 2", Window(start + timedelta(hours=4), start + timedelta(hours=5))
                )
            ],
            meter_stale_from=start + timedelta(hours=8),
            cloud_reset_at=[start + timedelta(hours=6)],
        ),
    )


SCENARIOS: dict[str, Callable[[int], Scenario]] = {
    "sunny-day": _sunny,
    "cloudy-day": _cloudy,
    "fuse-limited-evening": _fuse_limited_evening,
    "two-cars-go-fixed": _two_cars_go_fixed,
    "429-storm": _storm,
    "apm-on": _apm_on,
    "it-network": _it_network,
    "troubled-day": _troubled,
}


def scenario(name: str, *, seed: int = 1) -> Scenario:
    """The named scenario for `seed`; unknown names list the known ones."""
    try:
        return SCENARIOS[name](seed)
    except KeyError:
        msg = f"unknown scenario {name!r}; known: {', '.join(sorted(SCENARIOS))}"
        raise ValueError(msg) from None


def _shift_times(value: object, delta: timedelta) -> object:
    """`value` with every datetime inside it (dataclasses, lists, tuples) moved by `delta`."""
    if isinstance(value, datetime):
        return value + delta
    if isinstance(value, list | tuple):
        return type(value)(_shift_times(v, delta) for v in value)
    if is_dataclass(value) and not isinstance(value, type):
        return replace(value, **{f.name: _shift_times(getattr(value, f.name), delta) for f in fields(value)})
    return value


def rebased(chosen: Scenario, now: datetime) -> Scenario:
    """`chosen` moved to `now`'s date and started at `now` (for live serving in real time).

    Whole days keep every visit, fault and the replayed PV at the same local time of day; the world
    then starts at `now`, so a flow on the real clock sees fresh timestamps.
    """
    if now.tzinfo is None:
        msg = "rebased needs a timezone-aware now"
        raise ValueError(msg)
    days = (now.astimezone(UTC).date() - chosen.start.date()).days
    delta = timedelta(days=days)
    sites = {k: replace(v, sim_anchor_day=v.sim_anchor_day + delta) for k, v in chosen.sites.items()}
    faults = _shift_times(copy.deepcopy(chosen.faults), delta)
    return replace(
        chosen,
        start=now.astimezone(UTC),
        visits=tuple(_shift_times(v, delta) for v in chosen.visits),  # type: ignore[misc]
        faults=faults,  # type: ignore[arg-type]
        sites=sites,
    )


def build(  # noqa: PLR0913 - every seam of a running simulation
    chosen: Scenario,
    *,
    scale: float = 0.0,
    wall: Clock = SYSTEM_CLOCK,
    sink: EventSink | None = None,
    broker: BrokerEndpoint | None = None,
    tick_s: float = 1.0,
) -> SimulatedCloud:
    """A `SimulatedCloud` for `chosen`, its clock at the scenario start (frozen unless `scale` > 0)."""
    sites = {}
    for installation in chosen.installations:
        config = chosen.sites.get(installation.name)
        if config is not None:
            site = Site(config)
            sites[installation.name] = SitePower(
                site.pv_power_w, site.household_power_w, pv_phases=config.pv_phases
            )
    world = World(
        list(chosen.installations),
        start=chosen.start,
        sink=sink or InMemoryEventSink(),
        visits=list(chosen.visits),
        sites=sites,
        seed=chosen.seed,
        tick_s=tick_s,
    )
    cloud = SimulatedCloud(
        world,
        clock=SimClock(chosen.start, scale=scale, wall=wall),
        wall=wall,
        account=chosen.account,
        broker=broker,
        faults=copy.deepcopy(chosen.faults),  # counters in faults are consumed per run
    )
    cloud.scenario_name = chosen.name

    def load(name: str, seed: int) -> SimulatedCloud:
        # A fresh sink per world keeps in-memory event lists apart; a broker sink is shared.
        next_sink = InMemoryEventSink() if sink is None else sink
        return build(
            scenario(name, seed=seed), scale=scale, wall=wall, sink=next_sink, broker=broker, tick_s=tick_s
        )

    cloud.loader = load
    return cloud
