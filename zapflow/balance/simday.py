"""A simulated day on the embedded default, through the same tick code the deployment runs.

The ticks run against the
simulated Zaptec cloud over loopback HTTP, with the meter sampled on the simulated clock.

The simulator's own clock is the only clock: `SimDriver.sleep()` moves simulated time (so the
client's retry back-offs and the sampler's interval pass in simulated time, instantly). The
world's ground truth (household, PV, EV current per phase) is recorded beside the ledger so a
run can be scored: solar share, surplus captured, EV-caused fuse excursions.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import httpx

from storage import Storage
from zapflow.balance.sampler import SiteSampler, hierarchy_charger_ids
from zapflow.balance.solar import ClearSky
from zapflow.balance.tick import TickReport, TickRequest, TickServices, run_tick
from zapflow.domain.policy import PolicyMode
from zapflow.meter.sources import HttpMeter
from zapflow.settings import ZaptecSettings
from zapflow.simulator.cloud import SimulatedCloud
from zapflow.simulator.events import EventSink
from zapflow.simulator.scenarios import Scenario, build
from zapflow.simulator.server import SimulatorServer
from zapflow.sites import HttpMeterConfig, SiteConfig
from zapflow.zaptec import AccountRegistry, ApiCall, ZaptecClient

__all__ = ["DayResult", "SimDriver", "Truth", "TruthSample", "run_day", "score", "sim_services", "site_for"]

# The scenarios' PV replays PVDAQ system 50 in Golden, CO (see simulator/scenarios.py).
GOLDEN_CO = (39.742, -105.179)


class SimDriver:
    """A `Clock` over the simulator: `now()` is simulated time, `sleep()` steps the world."""

    def __init__(self, cloud: SimulatedCloud) -> None:
        self.cloud = cloud

    def now(self) -> datetime:
        """Simulated now."""
        return self.cloud.clock.now()

    def sleep(self, seconds: float) -> None:
        """Move simulated time forward (the world with it)."""
        if seconds > 0:
            self.cloud.step(seconds)

    def monotonic(self) -> float:
        """Simulated seconds (for rate limiters and retry budgets)."""
        return self.now().timestamp()


@dataclass(frozen=True)
class TruthSample:
    """The world as it was at one instant (what the meter cannot tell apart)."""

    at: datetime
    household_w: tuple[float, float, float]
    pv_w: tuple[float, float, float]
    ev_a: tuple[float, float, float]
    plugged: bool
    wants: bool
    available_a: tuple[float, float, float]


@dataclass
class Truth:
    """Ground truth sampled from the simulated world."""

    installation_id: str
    voltage_v: float
    fuse_a: float
    samples: list[TruthSample] = field(default_factory=list)

    def record(self, cloud: SimulatedCloud) -> None:
        """Sample the world now."""
        world = cloud.world
        inst = world.installations[self.installation_id]
        site = inst.site
        household = site.household_power_w(world.now) if site else (0.0, 0.0, 0.0)
        pv = site.pv_per_phase_w(world.now) if site else (0.0, 0.0, 0.0)
        ev = [0.0, 0.0, 0.0]
        plugged = wants = False
        for c in world.chargers.values():
            if c.installation_id != self.installation_id:
                continue
            for p in c.conductors:
                ev[p] += c.current_a
            plugged |= c.car is not None
            wants |= c.car is not None and c.car.energy_kwh > 0
        self.samples.append(
            TruthSample(
                world.now,
                tuple(household),  # type: ignore[arg-type]
                tuple(pv),  # type: ignore[arg-type]
                (ev[0], ev[1], ev[2]),
                plugged,
                wants,
                tuple(inst.effective_available_a),  # type: ignore[arg-type]
            )
        )


def site_for(
    chosen: Scenario, cloud: SimulatedCloud, base_url: str, *, mode: PolicyMode, name: str = "Home"
) -> SiteConfig:
    """The sites-file entry a user would write for a simulated installation."""
    inst = cloud.world.installation_by_name(name)
    site = chosen.sites.get(name)
    return SiteConfig(
        installation_id=inst.installation_id,
        name=inst.spec.name,
        latitude=GOLDEN_CO[0],
        longitude=GOLDEN_CO[1],
        timezone="America/Denver",
        fuse_a=inst.spec.max_current_a,
        pv_kwp=site.pv_kwp if site else 0.0,
        voltage_v=inst.spec.voltage_v,
        mode=mode,
        writes_enabled=True,
        meter=HttpMeterConfig(url=f"{base_url}/sites/{inst.installation_id}/meter"),
    )


def sim_services(  # noqa: PLR0913 - the seams of a simulated run, keyword-only
    cloud: SimulatedCloud,
    base_url: str,
    storage: Storage,
    *,
    site: SiteConfig,
    driver: SimDriver,
    http: httpx.Client,
    transport: httpx.BaseTransport | None = None,
) -> TickServices:
    """A tick's services against the simulated cloud, on its clock (over HTTP, or `transport`)."""
    settings = ZaptecSettings(
        _env_file=None,
        base_url=base_url,
        username=cloud.account.username,
        password=cloud.account.password,
    )
    accounts = AccountRegistry()

    def client_factory(on_call: Callable[[ApiCall], None]) -> ZaptecClient:
        return ZaptecClient.from_settings(
            settings, transport=transport, accounts=accounts, clock=driver, on_call=on_call
        )

    meter = HttpMeter(http, str(site.meter.url)) if isinstance(site.meter, HttpMeterConfig) else None
    return TickServices(
        storage=storage,
        client_factory=client_factory,
        clock=driver,
        meter=meter,
        clear_sky=ClearSky(site.latitude, site.longitude, site.pv_kwp),
    )


@dataclass
class DayResult:
    """What a simulated day produced."""

    reports: list[TickReport]
    truth: Truth
    site: SiteConfig
    cloud: SimulatedCloud
    sampler: SiteSampler
    tick_wall_s: float = 0.0
    """Wall seconds spent inside `run_tick` (the rest is the simulator and the meter sampling)."""
    guard_reports: list[TickReport] = field(default_factory=list)
    """Out-of-cycle ticks the fuse guard ran."""


class _SimulatedWall:
    """The simulator's rate limiter runs on simulated time too (the run races ahead of the wall)."""

    cloud: SimulatedCloud | None = None

    def now(self) -> datetime:
        assert self.cloud is not None  # noqa: S101 - set right after build
        # The world's time, not the sim clock's: the sim clock reads this clock under its own lock.
        return self.cloud.world.now

    def monotonic(self) -> float:
        # Read once while the sim clock is built, before the cloud exists (scale 0: unused then).
        return 0.0 if self.cloud is None else self.now().timestamp()

    def sleep(self, seconds: float) -> None:  # pragma: no cover - the cloud never sleeps
        raise NotImplementedError


@contextmanager
def served(chosen: Scenario, *, sink: EventSink | None = None) -> Iterator[tuple[SimulatedCloud, str]]:
    """The scenario's simulated cloud served on a free loopback port, on simulated time only."""
    wall = _SimulatedWall()
    cloud = build(chosen, wall=wall, sink=sink)
    wall.cloud = cloud
    with SimulatorServer(cloud) as server:
        yield cloud, server.base_url


def run_day(  # noqa: PLR0913 - every knob of a simulated run, keyword-only
    cloud: SimulatedCloud,
    base_url: str,
    storage: Storage,
    *,
    site: SiteConfig,
    ticks: int = 96,
    meter_interval_s: float = 10.0,
    dry_run: bool = False,
    overrides: dict[str, float] | None = None,
    on_tick: Callable[[int, TickReport], None] | None = None,
    fuse_guard: bool = True,
    before_tick: Callable[[], None] | None = None,
) -> DayResult:
    """Run `ticks` balance ticks 15 minutes apart from the cloud's current time.

    `before_tick` runs before each tick (the demo waits there for ingest to catch up).

    With `fuse_guard`, the meter sampling runs an extra tick when a phase goes over the fuse while
    a car charges, as the meter flow does.
    """
    truth = Truth(site.installation_id, site.voltage_v, site.fuse_a)
    driver = SimDriver(cloud)
    http = httpx.Client(timeout=10.0)
    services = sim_services(cloud, base_url, storage, site=site, driver=driver, http=http)
    meter = services.meter
    poller = services.client_factory(lambda _call: None)
    charger_ids = hierarchy_charger_ids(poller, site.installation_id)
    guard_reports: list[TickReport] = []

    def guard(seen: str) -> None:
        request = TickRequest.fuse_guard(
            site.installation_id, driver.now(), seen, dry_run=dry_run, overrides=overrides
        )
        guard_reports.append(run_tick(request, site, services))

    sampler = SiteSampler(
        site.installation_id,
        storage,
        driver,
        meter,
        client=poller,
        charger_ids=charger_ids,
        flush_every_s=900.0,
        fuse_a=site.fuse_a,
        voltage_v=site.voltage_v,
        on_overload=guard if fuse_guard else None,
    )
    reports = []
    tick_wall_s = 0.0
    steps = max(1, round(900.0 / meter_interval_s))
    try:
        for index in range(ticks):
            scheduled = driver.now()
            sampler.flush()
            if before_tick is not None:
                before_tick()
            started = time.perf_counter()
            try:
                report = run_tick(
                    TickRequest(
                        site.installation_id,
                        scheduled_at=scheduled,
                        dry_run=dry_run,
                        overrides=overrides or {},
                        requested_by="simulated-day",
                    ),
                    site,
                    services,
                )
            except Exception as exc:  # noqa: BLE001 - a failed tick is recorded; the day goes on
                report = TickReport(
                    tick_id="",
                    installation_id=site.installation_id,
                    scheduled_at=scheduled,
                    status="failed",
                    dry_run=dry_run,
                    error=f"{type(exc).__name__}: {exc}",
                )
            tick_wall_s += time.perf_counter() - started
            reports.append(report)
            if on_tick is not None:
                on_tick(index, report)
            # The rest of the slot: the meter flow's sampling, on simulated time.
            for _ in range(steps):
                target = scheduled + timedelta(seconds=meter_interval_s * (_ + 1))
                remaining = (target - driver.now()).total_seconds()
                if remaining > 0:
                    driver.sleep(remaining)
                sampler.sample()
                truth.record(cloud)
        sampler.flush()
        storage.merge()
    finally:
        poller.close()
        http.close()
    return DayResult(reports, truth, site, cloud, sampler, tick_wall_s, guard_reports)


@dataclass(frozen=True)
class Score:
    """How a run did, from ground truth (energies in kWh)."""

    ev_kwh: float
    solar_kwh: float
    grid_kwh: float
    surplus_while_plugged_kwh: float
    solar_share: float
    surplus_captured: float
    charging_minutes: int
    minutes_over_fuse: int
    ev_caused_over_fuse: int
    ev_caused_over_113: int
    worst_margin_a: float
    """Smallest fuse minus grid current on any phase (negative: over the fuse)."""


def _minutes(truth: Truth) -> list[list[TruthSample]]:
    buckets: dict[datetime, list[TruthSample]] = {}
    for s in truth.samples:
        buckets.setdefault(s.at.replace(second=0, microsecond=0), []).append(s)
    return [buckets[k] for k in sorted(buckets)]


def score(truth: Truth) -> Score:
    """Energy and fuse figures per minute (means of the samples in each minute)."""
    v = truth.voltage_v
    ev_kwh = solar_kwh = surplus_plugged = 0.0
    charging = over = caused = caused_113 = 0
    worst = math.inf
    for minute in _minutes(truth):
        n = len(minute)
        hh = [sum(s.household_w[p] for s in minute) / n for p in range(3)]
        pv = [sum(s.pv_w[p] for s in minute) / n for p in range(3)]
        ev = [sum(s.ev_a[p] for s in minute) / n for p in range(3)]
        ev_w = sum(ev) * v
        surplus_w = max(0.0, sum(pv) - sum(hh))
        ev_kwh += ev_w / 60000
        solar_kwh += min(ev_w, surplus_w) / 60000
        if any(s.plugged and s.wants for s in minute):
            surplus_plugged += surplus_w / 60000
        grid_a = [(hh[p] - pv[p]) / v + ev[p] for p in range(3)]
        without_a = [(hh[p] - pv[p]) / v for p in range(3)]
        worst = min(worst, *(truth.fuse_a - g for g in grid_a))
        if ev_w > 0:
            charging += 1
            if max(grid_a) > truth.fuse_a:
                over += 1
        ev_over = [grid_a[p] > truth.fuse_a and without_a[p] <= truth.fuse_a for p in range(3)]
        if any(ev_over):
            caused += 1
        if any(grid_a[p] > 1.13 * truth.fuse_a and without_a[p] <= 1.13 * truth.fuse_a for p in range(3)):
            caused_113 += 1
    return Score(
        ev_kwh=ev_kwh,
        solar_kwh=solar_kwh,
        grid_kwh=ev_kwh - solar_kwh,
        surplus_while_plugged_kwh=surplus_plugged,
        solar_share=solar_kwh / ev_kwh if ev_kwh else 0.0,
        surplus_captured=solar_kwh / surplus_plugged if surplus_plugged else 0.0,
        charging_minutes=charging,
        minutes_over_fuse=over,
        ev_caused_over_fuse=caused,
        ev_caused_over_113=caused_113,
        worst_margin_a=worst if math.isfinite(worst) else 0.0,
    )


def perfect_foresight_kwh(truth: Truth, *, car_max_a: float, wanted_kwh: float) -> float:
    """Energy of the perfect-foresight fuse schedule.

    Per 15 minutes, the minimum over its minutes of fuse minus household load per phase
    (three-phase charging: the tightest phase), capped by what the cars can take while they want
    energy, and by the energy they want in total.
    """
    v = truth.voltage_v
    slots: dict[datetime, list[list[TruthSample]]] = {}
    for minute in _minutes(truth):
        at = minute[0].at
        slot = at.replace(minute=at.minute - at.minute % 15, second=0, microsecond=0)
        slots.setdefault(slot, []).append(minute)
    total = 0.0
    for minutes in slots.values():
        if not any(s.wants for m in minutes for s in m):
            continue
        room = min(
            truth.fuse_a
            - (sum(s.household_w[p] for s in m) / len(m) - sum(s.pv_w[p] for s in m) / len(m)) / v
            for m in minutes
            for p in range(3)
        )
        amps = min(max(0.0, room), car_max_a)
        total += amps * 3 * v * len(minutes) / 60000
    return min(total, wanted_kwh)


def save_plot(result: DayResult, path: Path) -> Path:
    """PNG: power available for charging (truth) vs the setpoint written vs charging power."""
    import matplotlib as mpl  # noqa: PLC0415 - heavy, only for the picture

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    truth = result.truth
    v = truth.voltage_v
    minutes = _minutes(truth)
    import matplotlib.dates as mdates  # noqa: PLC0415

    times = mdates.date2num(  # type: ignore[no-untyped-call]
        [m[0].at for m in minutes]
    )
    surplus = [max(0.0, sum(sum(s.pv_w) - sum(s.household_w) for s in m) / len(m)) / 1000 for m in minutes]
    headroom = [
        min(truth.fuse_a - sum(s.household_w[p] - s.pv_w[p] for s in m) / len(m) / v for p in range(3))
        * 3
        * v
        / 1000
        for m in minutes
    ]
    ev = [sum(sum(s.ev_a) for s in m) / len(m) * v / 1000 for m in minutes]
    setpoint = [sum(sum(s.available_a) for s in m) / len(m) * v / 1000 for m in minutes]
    fig, ax = plt.subplots(figsize=(11, 4.5), dpi=100)
    ax.fill_between(times, surplus, step="post", alpha=0.3, color="gold", label="solar surplus (truth)")
    ax.plot(times, headroom, color="grey", lw=0.8, label="fuse headroom (truth)")
    ax.plot(
        times,
        setpoint,
        color="tab:blue",
        lw=1.2,
        drawstyle="steps-post",
        label="available current written (as power)",
    )
    ax.plot(times, ev, color="tab:green", lw=1.2, label="EV charging power")
    ax.set_ylabel("kW")
    ax.set_ylim(bottom=0)
    ax.set_title(f"{result.site.name}: {result.cloud.scenario_name}, {result.site.mode.value}")
    ax.legend(loc="upper left", fontsize=8)
    ax.xaxis_date()
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
