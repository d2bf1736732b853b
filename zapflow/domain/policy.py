"""The policy: `decide(snapshot, forecast, previous, settings, now) -> Decision`. Pure.

Modes: `fuse_only` (per-phase headroom = fuse - margin - upper-quantile household load),
`solar` (lower-quantile surplus only; pause below the minimum), `solar_min` (never below 6 A while
a car wants energy), `fixed` (hold a value). Every target is capped by the fuse headroom and the
installation's MaxCurrent. Guards stand down when Zaptec would refuse (mode not Default) and fall
back safely when inputs are stale. Writes are rationed: a deadband, at most one write per
interval, except a safety reduction; a cloud-side reset is re-asserted. Every decision carries a
reason code, the binding constraint and the candidates considered.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from zapflow.domain.models import (
    AvailableCurrentMode,
    ChargerModel,
    ChargerOperationMode,
    ChargerState,
    Forecast,
    InstallationSettings,
    PhaseValues,
    SiteReading,
)
from zapflow.domain.phases import PhaseChoice, PhaseSettings, PhaseState, choose_phases
from zapflow.domain.units import (
    MIN_CHARGE_CURRENT_A,
    NOMINAL_VOLTAGE_V,
    Earthing,
    current_for_power_a,
    earthing,
    power_for_current_w,
)

__all__ = [
    "Candidate",
    "Decision",
    "Hold",
    "PolicyMode",
    "PolicySettings",
    "PreviousDecision",
    "Reason",
    "Setpoint",
    "Snapshot",
    "decide",
    "overloaded_phases",
]

FORCE_3P_A = 0.0
FORCE_1P_A = 32.0
_RESET_TOLERANCE_A = 0.5


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PolicyMode(StrEnum):
    """What the installation's charging current follows."""

    FUSE_ONLY = "fuse_only"
    SOLAR = "solar"
    SOLAR_MIN = "solar_min"
    FIXED = "fixed"


class Reason(StrEnum):
    """Why the target is what it is (machine-readable, stored with every decision)."""

    MODE_NOT_DEFAULT = "mode_not_default"
    STALE_INPUTS = "stale_inputs"
    FUSE_HEADROOM = "fuse_headroom"
    SOLAR_SURPLUS = "solar_surplus"
    SOLAR_PAUSE = "solar_pause"
    SOLAR_MINIMUM = "solar_minimum"
    FIXED = "fixed"


class Hold(StrEnum):
    """Why nothing is written this tick."""

    STAND_DOWN = "stand_down"
    DEADBAND = "deadband"
    WRITE_INTERVAL = "write_interval"


class PolicySettings(_Frozen):
    """Per-installation policy knobs (validated config; defaults are conservative)."""

    mode: PolicyMode = PolicyMode.FUSE_ONLY
    fuse_a: float = 25.0
    fuse_margin_a: float = 1.0
    fixed_current_a: float = MIN_CHARGE_CURRENT_A
    deadband_a: float = 1.0
    min_write_interval_s: float = 900.0
    max_input_age_s: float = 120.0
    stale_solar_current_a: float = 0.0
    """Solar modes with stale inputs: this current (0 pauses)."""
    load_quantile: float = 0.9
    guarded_load_quantile: float = 0.6
    """Used instead while the meter flow's fuse guard runs: it corrects a surge within seconds."""
    surplus_quantile: float = 0.3
    """Lower quantile of the surplus forecast the solar modes follow (sunny-day: q0.1 captured 86.5 %,
    q0.3 87.8 %, q0.5 88.9 % of the surplus; solar share 99 % for all three)."""
    voltage_v: float = NOMINAL_VOLTAGE_V
    earthing: Earthing | None = None
    """TN or IT as configured for the site; None takes the installation's NetworkType."""
    phases: PhaseSettings = PhaseSettings()


class Snapshot(_Frozen):
    """Everything one tick knows, each part with its own time."""

    taken_at: datetime
    installation: InstallationSettings
    installation_read_at: datetime
    chargers: tuple[ChargerState, ...] = ()
    meter: SiteReading | None = None
    household_peak_w: PhaseValues | None = None
    """Highest household load per phase in the fallback window (for stale inputs)."""
    fuse_guarded: bool = False
    """The meter flow samples the site now, so its fuse guard would catch a surge within seconds."""


class Setpoint(_Frozen):
    """What to write: available current per phase, and the 3-to-1 switch current if it matters."""

    currents_a: PhaseValues
    switch_current_a: float | None = None


class PreviousDecision(_Frozen):
    """What earlier ticks wrote and decided (from the ledger)."""

    written: Setpoint | None = None
    written_at: datetime | None = None
    phase_state: PhaseState = PhaseState()


class Candidate(_Frozen):
    """One limit or target considered, in amperes per phase."""

    name: str
    value_a: float


class Decision(_Frozen):
    """The outcome of one tick's policy."""

    decided_at: datetime
    policy_mode: PolicyMode
    reason: Reason
    binding_constraint: str
    setpoint: Setpoint | None
    phases: int
    write: bool
    hold: Hold | None = None
    safety_reduction: bool = False
    reassert: bool = False
    candidates: tuple[Candidate, ...] = ()
    phase_state: PhaseState = PhaseState()
    notes: tuple[str, ...] = ()


def _floor_a(value: float) -> float:
    # Whole amperes: Zaptec allocates in steps anyway and the deadband stays meaningful.
    return float(max(0, math.floor(value + 1e-9)))


def _wants_energy(chargers: tuple[ChargerState, ...]) -> ChargerState | None:
    wanting = (ChargerOperationMode.CONNECTED_REQUESTING, ChargerOperationMode.CONNECTED_CHARGING)
    return next(
        (c for c in chargers if c.operation_mode is not None and c.operation_mode.value in wanting), None
    )


def _notes(snapshot: Snapshot) -> tuple[str, ...]:
    notes = []
    for c in snapshot.chargers:
        if c.is_online is not None and not c.is_online.value:
            notes.append(f"charger {c.charger_id} offline: limits do not reach it")
        if c.is_standalone is not None and c.is_standalone.value:
            notes.append(f"charger {c.charger_id} stand-alone: cloud limits are ignored")
    return tuple(notes)


def _can_switch(car: ChargerState | None) -> bool:
    """Only a Go 2 or a Pro switches between 1 and 3 phases during a session."""
    return car is not None and car.model in (ChargerModel.GO2, ChargerModel.PRO)


def _phase_choice(  # noqa: PLR0913 - the phase rule's inputs, keyword-only
    car: ChargerState | None,
    available_w: float,
    *,
    previous: PreviousDecision,
    settings: PolicySettings,
    system: Earthing,
    now: datetime,
) -> PhaseChoice:
    """1 or 3 phases for `available_w`, carrying the phase state of the car's session."""
    return choose_phases(
        available_w=available_w,
        can_switch=_can_switch(car),
        previous=previous.phase_state,
        session_id=car.session_id.value if car is not None and car.session_id else None,
        now=now,
        settings=settings.phases,
        system=system,
        voltage_v=settings.voltage_v,
    )


def _pinned_switch_a(phases: int) -> float:
    """The 3-to-1 switch current that holds a Go 2 / Pro at `phases`."""
    return FORCE_3P_A if phases == 3 else FORCE_1P_A  # noqa: PLR2004


def decide(  # noqa: C901, PLR0912, PLR0915 - the policy reads top to bottom as the issue states it
    snapshot: Snapshot,
    forecast: Forecast | None,
    previous: PreviousDecision,
    settings: PolicySettings,
    now: datetime,
) -> Decision:
    """Decide this tick's available current (see the module docstring)."""
    installation = snapshot.installation
    notes = _notes(snapshot)
    if installation.mode != AvailableCurrentMode.DEFAULT:
        return Decision(
            decided_at=now,
            policy_mode=settings.mode,
            reason=Reason.MODE_NOT_DEFAULT,
            binding_constraint="installation_mode",
            setpoint=None,
            phases=previous.phase_state.phases,
            write=False,
            hold=Hold.STAND_DOWN,
            phase_state=previous.phase_state,
            notes=notes,
        )

    volts = settings.voltage_v
    system = settings.earthing or earthing(installation.network_type)
    max_a = installation.max_current_a or settings.fuse_a
    fuse_room_a = settings.fuse_a - settings.fuse_margin_a
    candidates: list[Candidate] = [Candidate(name="max_current", value_a=max_a)]
    ages = [
        (now - snapshot.installation_read_at).total_seconds(),
        (now - snapshot.meter.measured_at).total_seconds() if snapshot.meter else math.inf,
    ]
    stale = forecast is None or max(ages) > settings.max_input_age_s
    phase_state = previous.phase_state
    phases = 3
    switch: float | None = None
    car = _wants_energy(snapshot.chargers)

    if stale:
        reason = Reason.STALE_INPUTS
        if settings.mode in (PolicyMode.SOLAR, PolicyMode.SOLAR_MIN):
            headroom = [min(settings.stale_solar_current_a, fuse_room_a)] * 3
            binding = "stale_solar_fallback"
        elif snapshot.household_peak_w is not None:
            peak = snapshot.household_peak_w.as_tuple()
            headroom = [fuse_room_a - peak[p] / volts for p in range(3)]
            binding = "household_peak"
        else:
            headroom = [0.0, 0.0, 0.0]
            binding = "no_history"
        targets = list(headroom)
        if settings.mode is PolicyMode.FIXED:
            targets = [min(settings.fixed_current_a, h) for h in headroom]
    else:
        assert forecast is not None  # noqa: S101 - `stale` covers the None case
        # A fuse trips on the interval's peak minute, not its mean: use the peak forecast when there is one.
        load_q = forecast.household_peak_w or forecast.household_w
        quantile = settings.guarded_load_quantile if snapshot.fuse_guarded else settings.load_quantile
        loads = [load_q[p].at(quantile) for p in range(3)]
        headroom = [fuse_room_a - loads[p] / volts for p in range(3)]
        candidates += [Candidate(name=f"fuse_l{p + 1}", value_a=headroom[p]) for p in range(3)]
        if settings.mode is PolicyMode.FUSE_ONLY:
            targets, reason = list(headroom), Reason.FUSE_HEADROOM
            binding = f"fuse_l{headroom.index(min(headroom)) + 1}"
            if _can_switch(car):
                # Left to Zaptec, a Go 2 / Pro drops to 1-phase whenever any phase limit dips under
                # its switch current and spends a return per dip: choose the phases here and pin them.
                three_a = min(*headroom, max_a)
                three_w = power_for_current_w(max(three_a, 0.0), 3, system, volts)
                choice = _phase_choice(
                    car, three_w, previous=previous, settings=settings, system=system, now=now
                )
                phases, phase_state = choice.phases, choice.state
                if phases == 3:  # noqa: PLR2004
                    targets = [three_a] * 3  # a 3-phase session takes the tightest phase anyway
                switch = _pinned_switch_a(phases)
        elif settings.mode is PolicyMode.FIXED:
            targets, reason, binding = [settings.fixed_current_a] * 3, Reason.FIXED, "fixed"
        else:
            surplus_w = forecast.surplus_w.at(settings.surplus_quantile)
            choice = _phase_choice(
                car, surplus_w, previous=previous, settings=settings, system=system, now=now
            )
            phases, phase_state = choice.phases, choice.state
            surplus_a = current_for_power_a(max(surplus_w, 0.0), phases, system, volts)
            candidates.append(Candidate(name=f"surplus_{phases}p", value_a=surplus_a))
            target = _floor_a(surplus_a)
            reason, binding = Reason.SOLAR_SURPLUS, "surplus"
            if target < MIN_CHARGE_CURRENT_A:
                if settings.mode is PolicyMode.SOLAR_MIN and car is not None:
                    target, reason, binding = MIN_CHARGE_CURRENT_A, Reason.SOLAR_MINIMUM, "minimum_current"
                else:
                    target, reason, binding = 0.0, Reason.SOLAR_PAUSE, "surplus_below_minimum"
            targets = [target] * 3
            if _can_switch(car):
                switch = _pinned_switch_a(phases)

    limits = [min(h, max_a) for h in headroom]
    if settings.mode is not PolicyMode.FUSE_ONLY:
        # Equal phases: a 3-phase session is bound by its tightest phase anyway, and a Go 2
        # cannot return to 3-phase while the phase limits differ (zaptec-api.md 3.6).
        limits = [min(limits)] * 3
    capped = []
    for p in range(3):
        if targets[p] > limits[p] + 1e-9:
            tightest = headroom.index(min(headroom))
            binding = f"fuse_l{tightest + 1}" if headroom[tightest] <= max_a else "max_current"
        capped.append(_floor_a(min(targets[p], limits[p])))
    setpoint = Setpoint(
        currents_a=PhaseValues(l1=capped[0], l2=capped[1], l3=capped[2]), switch_current_a=switch
    )
    write, hold, safety, reassert = _ration(
        setpoint, installation=installation, previous=previous, headroom=headroom, settings=settings, now=now
    )
    return Decision(
        decided_at=now,
        policy_mode=settings.mode,
        reason=reason,
        binding_constraint=binding,
        setpoint=setpoint,
        phases=phases,
        write=write,
        hold=hold,
        safety_reduction=safety,
        reassert=reassert,
        candidates=tuple(candidates),
        phase_state=phase_state,
        notes=notes,
    )


def _ration(  # noqa: PLR0913 - the inputs of one rationing rule
    setpoint: Setpoint,
    *,
    installation: InstallationSettings,
    previous: PreviousDecision,
    headroom: list[float],
    settings: PolicySettings,
    now: datetime,
) -> tuple[bool, Hold | None, bool, bool]:
    """(write, hold, safety_reduction, reassert): deadband, write interval, resets."""
    phases_now = installation.available_current_phases_a
    current = (
        phases_now.as_tuple() if phases_now is not None else (installation.available_current_a or 0.0,) * 3
    )
    target = setpoint.currents_a.as_tuple()
    reassert = False
    if previous.written is not None and installation.max_current_a is not None:
        ours = previous.written.currents_a.as_tuple()
        moved = any(abs(c - o) > _RESET_TOLERANCE_A for c, o in zip(current, ours, strict=True))
        at_max = all(abs(c - installation.max_current_a) <= _RESET_TOLERANCE_A for c in current)
        reassert = moved and at_max
    switch_differs = (
        setpoint.switch_current_a is not None
        and setpoint.switch_current_a != installation.three_to_one_phase_switch_current_a
    )
    differs = switch_differs or any(
        abs(t - c) >= settings.deadband_a for t, c in zip(target, current, strict=True)
    )
    if not differs:
        return False, Hold.DEADBAND, False, False
    recent = previous.written_at is not None and now - previous.written_at < timedelta(
        seconds=settings.min_write_interval_s
    )
    if not recent or reassert:
        return True, None, False, reassert
    # Inside the interval only a reduction that keeps a phase within its fuse headroom may go out.
    unsafe = any(c > h + 1e-9 and t < c for t, c, h in zip(target, current, headroom, strict=True))
    if unsafe:
        return True, None, True, False
    return False, Hold.WRITE_INTERVAL, False, False


def overloaded_phases(grid_power_w: PhaseValues, *, fuse_a: float, voltage_v: float) -> tuple[int, ...]:
    """Phases (0-based) whose grid import is above the main fuse right now (the guard's trigger)."""
    return tuple(p for p, w in enumerate(grid_power_w.as_tuple()) if w / voltage_v > fuse_a)
