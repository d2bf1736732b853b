"""1-phase or 3-phase: a power band around the 3-phase minimum, a dwell time, a switch budget.

Three-phase charging cannot go below 6 A x 3 phases (4.14 kW on TN), so on a sunny afternoon the
phase decision matters more than the forecast. Switching too often upsets cars and Zaptec caps
the returns to 3-phase per session (`PropertySessionMaxStopCount`, default 5): this keeps a
hysteresis band, a minimum dwell across ticks, and a reserve in the budget. Pure functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict

from zapflow.domain.units import MIN_CHARGE_CURRENT_A, NOMINAL_VOLTAGE_V, Earthing, power_for_current_w

__all__ = ["PhaseChoice", "PhaseSettings", "PhaseState", "choose_phases"]


class PhaseState(BaseModel):
    """What the previous ticks decided about phases, carried to the next one."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    phases: int = 0
    """1 or 3; 0 before the first decision of a session."""
    since: datetime | None = None
    session_id: str | None = None
    returns_to_3p: int = 0


class PhaseSettings(BaseModel):
    """Knobs of the phase decision."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    band_w: float = 600.0
    """Width of the hysteresis band around the 3-phase minimum power."""
    min_dwell_s: float = 1800.0
    switch_budget: int = 5
    budget_reserve: int = 1
    """Returns to 3-phase kept unused, so Zaptec never locks a session to 1-phase because of us."""


@dataclass(frozen=True)
class PhaseChoice:
    """The phase count for this tick, why, and the state to carry on."""

    phases: int
    reason: str
    state: PhaseState


def choose_phases(  # noqa: PLR0911, PLR0913 - a rule table; keyword-only inputs
    *,
    available_w: float,
    can_switch: bool,
    previous: PhaseState,
    session_id: str | None,
    now: datetime,
    settings: PhaseSettings | None = None,
    system: Earthing = Earthing.TN,
    voltage_v: float = NOMINAL_VOLTAGE_V,
) -> PhaseChoice:
    """Pick 1 or 3 phases for `available_w` of charging power."""
    settings = settings or PhaseSettings()
    if not can_switch:
        return PhaseChoice(3, "fixed_three_phase", previous.model_copy(update={"phases": 3}))
    state = previous if previous.session_id == session_id else PhaseState(session_id=session_id)
    threshold_w = power_for_current_w(MIN_CHARGE_CURRENT_A, 3, system, voltage_v)
    if state.phases == 0:
        phases = 3 if available_w >= threshold_w else 1
        return PhaseChoice(phases, "session_start", state.model_copy(update={"phases": phases, "since": now}))
    dwell_over = state.since is None or now - state.since >= timedelta(seconds=settings.min_dwell_s)
    if state.phases == 3 and available_w < threshold_w - settings.band_w / 2:  # noqa: PLR2004
        if not dwell_over:
            return PhaseChoice(3, "dwell", state)
        return PhaseChoice(
            1, "below_three_phase_minimum", state.model_copy(update={"phases": 1, "since": now})
        )
    if state.phases == 1 and available_w >= threshold_w + settings.band_w / 2:
        if state.returns_to_3p >= settings.switch_budget - settings.budget_reserve:
            return PhaseChoice(1, "switch_budget_spent", state)
        if not dwell_over:
            return PhaseChoice(1, "dwell", state)
        update = {"phases": 3, "since": now, "returns_to_3p": state.returns_to_3p + 1}
        return PhaseChoice(3, "above_three_phase_minimum", state.model_copy(update=update))
    return PhaseChoice(state.phases, "within_band", state)
