"""The simulated world: installations, circuits, chargers, cars and Zaptec's own load balancer.

Pure and stepped by explicit time: `advance_to(t)` moves the world in `tick_s` steps. Nothing here
reads a clock or does I/O; observations go to an injected `EventSink`. The REST surface
(`routes.py`) reads this state and writes Zaptec's JSON from it.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from zapflow.simulator.balancer import Demand, allocate, conductors_for, decide_phases
from zapflow.simulator.devices import (
    DEVICE_PREFIX,
    DEVICE_TYPE,
    MIN_CHARGE_CURRENT_A,
    Mode,
    Model,
    Network,
    Obs,
    OpMode,
    set_phases_id,
)
from zapflow.simulator.events import EventSink

__all__ = [
    "CarSpec",
    "ChargerSim",
    "ChargerSpec",
    "InstallationSim",
    "InstallationSpec",
    "MeterReading",
    "SitePower",
    "Visit",
    "World",
    "ev_power_w",
    "zaptec_timestamp",
]

_ID_NAMESPACE = uuid.UUID("6d1f0e2a-4b1c-4d5e-9f00-7a11ce5e0001")
_SESSION_ENERGY_EVERY = timedelta(seconds=60)
_SQRT3 = math.sqrt(3)
_ENERGY_EPS_KWH = 1e-9


def zaptec_timestamp(at: datetime) -> str:
    """Zaptec's timestamp style: UTC, no zone suffix, at most 3 fraction digits, zeros trimmed."""
    text = at.strftime("%Y-%m-%dT%H:%M:%S")
    millis = at.microsecond // 1000
    return f"{text}.{millis:03d}".rstrip("0").rstrip(".") if millis else text


def _fmt(value: float) -> str:
    return f"{value:.3f}"


def ev_power_w(network: Network, voltage_v: float, conductors: tuple[int, ...], current_a: float) -> float:
    """Charging power of `current_a` on `conductors`: TN n*V*I; IT 3-phase sqrt(3)*V*I, 1-phase V*I."""
    if not conductors or current_a <= 0:
        return 0.0
    if network is Network.IT:
        return (_SQRT3 if len(conductors) == 3 else 1.0) * voltage_v * current_a  # noqa: PLR2004
    return len(conductors) * voltage_v * current_a


# -- specifications (what a scenario declares) ---------------------------------------------------


@dataclass(frozen=True)
class CarSpec:
    """A car: battery, how much it wants, and what its on-board charger can take."""

    name: str
    battery_kwh: float = 60.0
    arrival_soc: float = 0.3
    target_soc: float = 0.9
    max_phases: int = 3
    max_current_a: float = 16.0
    can_switch_up: bool = True
    """Some cars cannot go from 1-phase back to 3-phase within a session."""


@dataclass(frozen=True)
class Visit:
    """A car plugged into a charger (by charger name) from `arrive` to `depart`."""

    charger: str
    car: CarSpec
    arrive: datetime
    depart: datetime


@dataclass(frozen=True)
class ChargerSpec:
    """A charger as installed."""

    name: str
    model: Model
    rotation: int = 0
    """Which installation phase the charger's L1 is wired to (0, 1, 2)."""
    wired_phases: int = 3
    max_current_a: float = 32.0
    offline_current_a: float = 6.0
    standalone: bool = False
    circuit: str = "Charge circuit"


@dataclass(frozen=True)
class InstallationSpec:
    """An installation: fuse, network, Zaptec settings and what the account may do there."""

    name: str
    max_current_a: float = 25.0
    network: Network = Network.TN
    voltage_v: float = 230.0
    available_current_a: float | None = None
    """Initial AvailableCurrent on all phases; None = MaxCurrent."""
    mode: int = Mode.DEFAULT
    switch_current_a: float = 8.0
    session_max_stop_count: int = 5
    allow_return_to_3p: bool = True
    user_roles: int = 2
    """CurrentUserRoles of the simulated account here (2 Owner; 1 User only gets 403/204)."""
    circuit_max_current_a: float | None = None
    chargers: tuple[ChargerSpec, ...] = ()


@dataclass(frozen=True)
class MeterReading:
    """What the site meter reports: import positive, per phase, plus PV."""

    timestamp: datetime
    grid_current_a: tuple[float, float, float]
    grid_power_w: tuple[float, float, float]
    pv_power_w: float


class SitePower:
    """The site behind one installation: PV and household load per phase (see `site.py`)."""

    def __init__(
        self,
        pv_power_w: Callable[[datetime], float],
        household_power_w: Callable[[datetime], tuple[float, float, float]],
        *,
        pv_phases: int = 3,
    ) -> None:
        self.pv_power_w = pv_power_w
        self.household_power_w = household_power_w
        self.pv_phases = pv_phases

    def pv_per_phase_w(self, at: datetime) -> tuple[float, float, float]:
        """PV split over the phases the inverter feeds."""
        total = self.pv_power_w(at)
        if self.pv_phases == 3:  # noqa: PLR2004
            return (total / 3, total / 3, total / 3)
        return (total, 0.0, 0.0)


# -- runtime state -------------------------------------------------------------------------------


@dataclass
class _Car:
    spec: CarSpec
    energy_kwh: float
    """Energy still wanted before the car stops by itself."""


@dataclass
class ChargerSim:
    """One simulated charger and its session."""

    spec: ChargerSpec
    charger_id: str
    device_id: str
    installation_id: str
    circuit_id: str
    online: bool = True
    car: _Car | None = None
    depart: datetime | None = None
    session_id: str = ""
    session_started: datetime | None = None
    session_energy_kwh: float = 0.0
    phases: int = 0
    conductors: tuple[int, ...] = ()
    allocated_a: float = 0.0
    current_a: float = 0.0
    power_w: float = 0.0
    returns_to_3p: int = 0
    phase_switches: int = 0
    op_mode: int = OpMode.DISCONNECTED
    observations: dict[int, tuple[datetime, str | None]] = field(default_factory=dict)
    last_energy_report: datetime | None = None

    @property
    def model(self) -> Model:
        """The charger's product."""
        return self.spec.model

    def charger_phase_currents_a(self) -> tuple[float, float, float]:
        """Currents on the charger's own L1..L3 (what 507-509 report)."""
        by_conductor = [self.current_a if p in self.conductors else 0.0 for p in range(3)]
        r = self.spec.rotation
        return (by_conductor[r % 3], by_conductor[(r + 1) % 3], by_conductor[(r + 2) % 3])


@dataclass
class InstallationSim:
    """One simulated installation and its (written and effective) settings."""

    spec: InstallationSpec
    installation_id: str
    circuit_ids: dict[str, str]
    max_current_a: float
    available_a: tuple[float, float, float]
    effective_available_a: tuple[float, float, float]
    switch_current_a: float
    effective_switch_current_a: float
    mode: int
    user_roles: int
    pending: list[tuple[datetime, tuple[float, float, float], float]] = field(default_factory=list)
    site: SitePower | None = None
    meter_frozen: MeterReading | None = None

    @property
    def network(self) -> Network:
        """TN or IT."""
        return self.spec.network

    @property
    def network_type(self) -> int:
        """Zaptec `NetworkTypes` value (3-phase installations only here)."""
        return 4 if self.spec.network is Network.TN else 2


class World:
    """All installations of one simulated account, advanced by explicit time."""

    def __init__(  # noqa: PLR0913 - the world's parts, all explicit
        self,
        installations: list[InstallationSpec],
        *,
        start: datetime,
        sink: EventSink,
        visits: list[Visit] | None = None,
        sites: dict[str, SitePower] | None = None,
        seed: int = 1,
        tick_s: float = 1.0,
        reaction_delay_s: float = 5.0,
    ) -> None:
        self.now = start
        self.sink = sink
        self.seed = seed
        self.tick_s = tick_s
        self.reaction_delay_s = reaction_delay_s
        self.installations: dict[str, InstallationSim] = {}
        self.chargers: dict[str, ChargerSim] = {}
        self._visits = sorted(visits or [], key=lambda v: v.arrive)
        self._hooks: list[Callable[[World], None]] = []
        for spec in installations:
            self._add_installation(spec, (sites or {}).get(spec.name))
        for charger in self.chargers.values():
            self._report_static(charger)

    # -- construction ----------------------------------------------------------------------------

    def _id(self, kind: str, name: str) -> str:
        return str(uuid.uuid5(_ID_NAMESPACE, f"{self.seed}:{kind}:{name}"))

    def _add_installation(self, spec: InstallationSpec, site: SitePower | None) -> None:
        initial = spec.max_current_a if spec.available_current_a is None else spec.available_current_a
        circuits = {c.circuit: self._id("circuit", f"{spec.name}/{c.circuit}") for c in spec.chargers}
        inst = InstallationSim(
            spec=spec,
            installation_id=self._id("installation", spec.name),
            circuit_ids=circuits,
            max_current_a=spec.max_current_a,
            available_a=(initial, initial, initial),
            effective_available_a=(initial, initial, initial),
            switch_current_a=spec.switch_current_a,
            effective_switch_current_a=spec.switch_current_a,
            mode=spec.mode,
            user_roles=spec.user_roles,
            site=site,
        )
        self.installations[inst.installation_id] = inst
        for number, c in enumerate(spec.chargers):
            charger_id = self._id("charger", f"{spec.name}/{c.name}")
            self.chargers[charger_id] = ChargerSim(
                spec=c,
                charger_id=charger_id,
                device_id=f"{DEVICE_PREFIX[c.model]}{(self.seed * 7919 + number * 104729) % 1_000_000:06d}",
                installation_id=inst.installation_id,
                circuit_id=circuits[c.circuit],
            )

    def installation_by_name(self, name: str) -> InstallationSim:
        """Look an installation up by its scenario name."""
        return next(i for i in self.installations.values() if i.spec.name == name)

    def charger_by_name(self, name: str) -> ChargerSim:
        """Look a charger up by its scenario name."""
        return next(c for c in self.chargers.values() if c.spec.name == name)

    def add_hook(self, hook: Callable[[World], None]) -> None:
        """Run `hook(world)` at every tick before balancing (scheduled faults use it)."""
        self._hooks.append(hook)

    # -- settings (what the REST surface changes) ------------------------------------------------

    def write_available_current(
        self,
        installation_id: str,
        *,
        phases_a: tuple[float, float, float] | None = None,
        switch_current_a: float | None = None,
    ) -> datetime:
        """Accept a write now; Zaptec's balancer acts on it `reaction_delay_s` later (returned)."""
        inst = self.installations[installation_id]
        if phases_a is not None:
            inst.available_a = phases_a
        if switch_current_a is not None:
            inst.switch_current_a = switch_current_a
        effective_at = self.now + timedelta(seconds=self.reaction_delay_s)
        inst.pending.append((effective_at, inst.available_a, inst.switch_current_a))
        return effective_at

    def reset_available_current(self, installation_id: str) -> None:
        """Cloud-side reset: AvailableCurrent jumps back to MaxCurrent on all phases."""
        inst = self.installations[installation_id]
        full = (inst.max_current_a,) * 3
        inst.available_a = inst.effective_available_a = full
        inst.pending.clear()

    def set_online(self, charger_id: str, *, online: bool) -> None:
        """Take a charger off the cloud (or back)."""
        charger = self.chargers[charger_id]
        if charger.online != online:
            charger.online = online
            self._report(charger, Obs.IS_ONLINE, "1" if online else "0")

    # -- time --------------------------------------------------------------------------------------

    def advance_to(self, until: datetime) -> None:
        """Step the world in `tick_s` increments until `until` (never backwards)."""
        while self.now + timedelta(seconds=self.tick_s) <= until:
            self._tick(self.tick_s)
        remainder = (until - self.now).total_seconds()
        if remainder > 0:
            self._tick(remainder)

    def _tick(self, dt_s: float) -> None:
        self.now += timedelta(seconds=dt_s)
        for hook in self._hooks:
            hook(self)
        self._apply_pending()
        self._visits_arrive_and_leave()
        for inst in self.installations.values():
            self._balance(inst)
        for charger in self.chargers.values():
            self._charge(charger, dt_s)

    def _apply_pending(self) -> None:
        for inst in self.installations.values():
            while inst.pending and inst.pending[0][0] <= self.now:
                _, inst.effective_available_a, inst.effective_switch_current_a = inst.pending.pop(0)

    def _visits_arrive_and_leave(self) -> None:
        for charger in self.chargers.values():
            if charger.car is not None and charger.depart is not None and charger.depart <= self.now:
                self._end_session(charger)
        while self._visits and self._visits[0].arrive <= self.now:
            visit = self._visits.pop(0)
            charger = self.charger_by_name(visit.charger)
            if charger.car is None and visit.depart > self.now:
                self._start_session(charger, visit)

    def _start_session(self, charger: ChargerSim, visit: Visit) -> None:
        spec = visit.car
        wanted_kwh = max(0.0, (spec.target_soc - spec.arrival_soc) * spec.battery_kwh)
        charger.car = _Car(spec, wanted_kwh)
        charger.depart = visit.depart
        charger.session_id = self._id("session", f"{charger.charger_id}/{self.now.isoformat()}")
        charger.session_started = self.now
        charger.session_energy_kwh = 0.0
        charger.phases = 0
        charger.returns_to_3p = 0
        charger.phase_switches = 0
        charger.op_mode = OpMode.REQUESTING if wanted_kwh > 0 else OpMode.FINISHED
        self._report(charger, Obs.SESSION_ID, charger.session_id)
        self._report(charger, Obs.OPERATION_MODE, str(charger.op_mode))
        self._report(charger, Obs.SESSION_ENERGY, _fmt(0.0))

    def _end_session(self, charger: ChargerSim) -> None:
        charger.car = None
        charger.depart = None
        charger.phases = 0
        charger.conductors = ()
        charger.allocated_a = charger.current_a = charger.power_w = 0.0
        charger.op_mode = OpMode.DISCONNECTED
        self._report(charger, Obs.OPERATION_MODE, str(charger.op_mode))
        self._report_electrics(charger, force=True)

    # -- Zaptec's load balancer ------------------------------------------------------------------

    def _balance(self, inst: InstallationSim) -> None:
        chargers = [c for c in self.chargers.values() if c.installation_id == inst.installation_id]
        demands: list[Demand] = []
        for c in sorted(chargers, key=lambda c: c.session_started or self.now):
            if c.car is None or c.car.energy_kwh <= 0:
                continue  # nobody plugged in, or the car is full
            if not c.online or c.spec.standalone:
                # Cloud limits do not reach it: offline current, or its own stand-alone limit.
                limit_a = c.spec.offline_current_a if not c.online else c.spec.max_current_a
                phases = 3 if c.spec.wired_phases == 3 and c.car.spec.max_phases == 3 else 1  # noqa: PLR2004
                self._set_phases(c, inst, phases)
                c.allocated_a = min(limit_a, c.car.spec.max_current_a)
                continue
            decision = decide_phases(
                model=c.model,
                wired_phases=c.spec.wired_phases,
                car_phases=c.car.spec.max_phases,
                current_phases=c.phases,
                available_a=inst.effective_available_a,
                switch_current_a=inst.effective_switch_current_a,
                returns_to_3p=c.returns_to_3p,
                max_returns=inst.spec.session_max_stop_count,
                allow_return=inst.spec.allow_return_to_3p,
                car_can_switch_up=c.car.spec.can_switch_up,
            )
            c.returns_to_3p = decision.returns_to_3p
            self._set_phases(c, inst, decision.phases)
            demands.append(
                Demand(
                    c.charger_id,
                    c.conductors,
                    min(c.spec.max_current_a, c.car.spec.max_current_a),
                    c.circuit_id,
                )
            )
        circuit_limit = inst.spec.circuit_max_current_a or inst.max_current_a
        shares = allocate(
            demands, inst.effective_available_a, dict.fromkeys(inst.circuit_ids.values(), circuit_limit)
        )
        for charger_id, share in shares.items():
            charger = self.chargers[charger_id]
            charger.allocated_a = share if share >= MIN_CHARGE_CURRENT_A else 0.0

    def _set_phases(self, charger: ChargerSim, inst: InstallationSim, phases: int) -> None:
        if charger.phases and phases != charger.phases:
            charger.phase_switches += 1
        charger.phases = phases
        charger.conductors = conductors_for(phases, charger.spec.rotation, inst.network)

    # -- physics and reporting -------------------------------------------------------------------

    def _charge(self, charger: ChargerSim, dt_s: float) -> None:
        inst = self.installations[charger.installation_id]
        car = charger.car
        if car is None:
            return
        if car.energy_kwh <= 0:
            charger.current_a = charger.power_w = 0.0
            charger.op_mode = OpMode.FINISHED
        else:
            charger.current_a = min(charger.allocated_a, car.spec.max_current_a)
            charger.power_w = ev_power_w(
                inst.network, inst.spec.voltage_v, charger.conductors, charger.current_a
            )
            energy_kwh = min(car.energy_kwh, charger.power_w * dt_s / 3_600_000)
            car.energy_kwh -= energy_kwh
            charger.session_energy_kwh += energy_kwh
            charger.op_mode = OpMode.CHARGING if charger.current_a > 0 else OpMode.REQUESTING
            if car.energy_kwh <= _ENERGY_EPS_KWH:
                car.energy_kwh = 0.0
        self._report(charger, Obs.OPERATION_MODE, str(charger.op_mode))
        self._report_electrics(charger)

    def _report_electrics(self, charger: ChargerSim, *, force: bool = False) -> None:
        inst = self.installations[charger.installation_id]
        self._report(charger, Obs.CHARGE_CURRENT_SET, _fmt(charger.allocated_a))
        self._report(charger, Obs.SET_PHASES, str(set_phases_id(inst.network, charger.conductors)))
        for obs_id, amps in zip(Obs.CURRENT, charger.charger_phase_currents_a(), strict=True):
            self._report(charger, obs_id, _fmt(amps))
        self._report(charger, Obs.TOTAL_CHARGE_POWER, _fmt(charger.power_w))
        last = charger.last_energy_report
        if force or last is None or self.now - last >= _SESSION_ENERGY_EVERY:
            self._report(charger, Obs.SESSION_ENERGY, _fmt(charger.session_energy_kwh))
            charger.last_energy_report = self.now

    def _report_static(self, charger: ChargerSim) -> None:
        inst = self.installations[charger.installation_id]
        capabilities = {
            "CommunicationModes": ["Wifi"],
            "DeviceType": "Pro" if charger.model is Model.PRO else "Go",
            "ProductVariant": {Model.PRO: "Pro", Model.GO: "Go", Model.GO2: "Go2"}[charger.model],
            "SchemaVersion": "1.0",
        }
        self._report(charger, Obs.IS_ONLINE, "1" if charger.online else "0")
        self._report(charger, Obs.CAPABILITIES, json.dumps(capabilities, separators=(",", ":")))
        self._report(charger, Obs.CHARGER_MAX_CURRENT, _fmt(charger.spec.max_current_a))
        self._report(charger, Obs.CHARGER_MIN_CURRENT, _fmt(MIN_CHARGE_CURRENT_A))
        self._report(charger, Obs.MAX_PHASES, str(charger.spec.wired_phases))
        self._report(charger, Obs.OFFLINE_CURRENT, _fmt(charger.spec.offline_current_a))
        self._report(charger, Obs.IS_STANDALONE, "1" if charger.spec.standalone else "0")
        self._report(charger, Obs.FINAL_STOP_ACTIVE, "0")
        self._report(charger, Obs.INSTALLATION_ID, inst.installation_id)
        self._report(charger, Obs.OPERATION_MODE, str(charger.op_mode))
        self._report(charger, Obs.SESSION_ID, "")
        for obs_id, volts in zip(Obs.VOLTAGE, (230.4, 229.8, 231.1), strict=True):
            self._report(charger, obs_id, _fmt(volts * inst.spec.voltage_v / 230.0))
        self._report_electrics(charger, force=True)

    def _report(self, charger: ChargerSim, state_id: int, value: str | None) -> None:
        """Record and publish an observation when its value changed (as chargers do)."""
        seen = charger.observations.get(state_id)
        if seen is not None and seen[1] == value:
            return
        charger.observations[state_id] = (self.now, value)
        self.sink.publish(
            {
                "DeviceId": charger.device_id,
                "DeviceType": DEVICE_TYPE[charger.model],
                "ChargerId": charger.charger_id,
                "StateId": state_id,
                "Timestamp": zaptec_timestamp(self.now),
                "ValueAsString": value,
            }
        )

    # -- the site meter --------------------------------------------------------------------------

    def meter_reading(self, installation_id: str) -> MeterReading:
        """Grid current per phase (import positive) = household + EV - PV, plus PV power."""
        inst = self.installations[installation_id]
        if inst.meter_frozen is not None:
            return inst.meter_frozen
        volts = inst.spec.voltage_v
        household = inst.site.household_power_w(self.now) if inst.site else (0.0, 0.0, 0.0)
        pv = inst.site.pv_per_phase_w(self.now) if inst.site else (0.0, 0.0, 0.0)
        ev_a = [0.0, 0.0, 0.0]
        for c in self.chargers.values():
            if c.installation_id == installation_id:
                for p in c.conductors:
                    ev_a[p] += c.current_a
        current = tuple(round((household[p] - pv[p]) / volts + ev_a[p], 3) for p in range(3))
        power = tuple(round(current[p] * volts, 1) for p in range(3))
        return MeterReading(
            timestamp=self.now,
            grid_current_a=current,  # type: ignore[arg-type]
            grid_power_w=power,  # type: ignore[arg-type]
            pv_power_w=round(sum(pv), 1),
        )

    def freeze_meter(self, installation_id: str) -> None:
        """Stale meter fault: keep answering the current reading, timestamp included."""
        inst = self.installations[installation_id]
        inst.meter_frozen = self.meter_reading(installation_id)

    def summary(self) -> dict[str, Any]:
        """A JSON-able view for the control endpoint and the demo."""
        return {
            "now": self.now.isoformat(),
            "installations": [
                {
                    "id": i.installation_id,
                    "name": i.spec.name,
                    "mode": i.mode,
                    "available_a": list(i.available_a),
                    "effective_available_a": list(i.effective_available_a),
                    "switch_current_a": i.switch_current_a,
                }
                for i in self.installations.values()
            ],
            "chargers": [
                {
                    "id": c.charger_id,
                    "name": c.spec.name,
                    "model": c.model.value,
                    "online": c.online,
                    "op_mode": c.op_mode,
                    "phases": c.phases,
                    "allocated_a": c.allocated_a,
                    "power_w": round(c.power_w, 1),
                    "session_energy_kwh": round(c.session_energy_kwh, 3),
                    "returns_to_3p": c.returns_to_3p,
                }
                for c in self.chargers.values()
            ],
        }
