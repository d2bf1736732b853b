"""Phase choice: band around 4.14 kW, dwell across ticks, session switch budget with a reserve."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from zapflow.domain.phases import PhaseSettings, PhaseState, choose_phases

NOW = datetime(2026, 6, 17, 18, tzinfo=UTC)
LONG_AGO = NOW - timedelta(hours=2)
JUST_NOW = NOW - timedelta(minutes=5)


def _state(
    phases: int, since: datetime = LONG_AGO, returns: int = 0, session: str | None = "s1"
) -> PhaseState:
    return PhaseState(phases=phases, since=since, session_id=session, returns_to_3p=returns)


@pytest.mark.parametrize(
    ("available_w", "can_switch", "previous", "session", "phases", "reason", "returns"),
    [
        (5000.0, True, PhaseState(), "s1", 3, "session_start", 0),
        (3000.0, True, PhaseState(), "s1", 1, "session_start", 0),
        (3000.0, False, _state(3), "s1", 3, "fixed_three_phase", 0),
        (3700.0, True, _state(3), "s1", 1, "below_three_phase_minimum", 0),
        (4000.0, True, _state(3), "s1", 3, "within_band", 0),
        (3700.0, True, _state(3, JUST_NOW), "s1", 3, "dwell", 0),
        (4500.0, True, _state(1), "s1", 3, "above_three_phase_minimum", 1),
        (4300.0, True, _state(1), "s1", 1, "within_band", 0),
        (4500.0, True, _state(1, JUST_NOW), "s1", 1, "dwell", 0),
        (4500.0, True, _state(1, returns=3), "s1", 3, "above_three_phase_minimum", 4),
        (4500.0, True, _state(1, returns=4), "s1", 1, "switch_budget_spent", 4),
        (4500.0, True, _state(1, returns=4), "s2", 3, "session_start", 0),
    ],
    ids=[
        "start-above-minimum-3p",
        "start-below-minimum-1p",
        "go-fixed",
        "3p-drops-below-band",
        "3p-stays-inside-band",
        "3p-dwell-holds",
        "1p-returns-above-band",
        "1p-stays-inside-band",
        "1p-dwell-holds",
        "last-return-within-reserve",
        "budget-reserve-keeps-1p",
        "new-session-resets-budget",
    ],
)
def test_phase_choice(  # noqa: PLR0913, PLR0917 - a table row
    available_w: float,
    can_switch: bool,
    previous: PhaseState,
    session: str,
    phases: int,
    reason: str,
    returns: int,
) -> None:
    """Each row: the phases chosen, the reason, and the returns-to-3p count carried on."""
    choice = choose_phases(
        available_w=available_w, can_switch=can_switch, previous=previous, session_id=session, now=NOW
    )
    assert (choice.phases, choice.reason, choice.state.returns_to_3p) == (phases, reason, returns)


def test_a_day_of_oscillating_surplus_never_spends_the_budget() -> None:
    """Surplus swinging across 4.14 kW every tick: switches stay within budget minus reserve."""
    state = PhaseState()
    switches = 0
    for tick in range(96):
        now = NOW + timedelta(minutes=15 * tick)
        choice = choose_phases(
            available_w=3000.0 if tick % 2 else 6000.0,
            can_switch=True,
            previous=state,
            session_id="s",
            now=now,
        )
        switches += state.phases not in (0, choice.phases)
        state = choice.state
    settings = PhaseSettings()
    assert state.returns_to_3p == settings.switch_budget - settings.budget_reserve
    assert switches <= 2 * settings.switch_budget
