"""The policy, table by table: modes, caps, guards, stale fallback, write rationing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from zapflow.domain.models import (
    AvailableCurrentMode,
    ChargerModel,
    ChargerOperationMode,
    ChargerState,
    Forecast,
    InstallationSettings,
    NetworkType,
    PhaseValues,
    Quantiles,
    SiteReading,
    Timed,
    UserRole,
)
from zapflow.domain.phases import PhaseState
from zapflow.domain.policy import (
    Hold,
    PolicyMode,
    PolicySettings,
    PreviousDecision,
    Reason,
    Setpoint,
    Snapshot,
    decide,
    overloaded_phases,
)
from zapflow.domain.units import Earthing

NOW = datetime(2026, 6, 17, 18, tzinfo=UTC)


def _pv(v: float) -> PhaseValues:
    return PhaseValues(l1=v, l2=v, l3=v)


def _installation(current_a: float = 16.0, mode: int = 0, switch_a: float = 8.0) -> InstallationSettings:
    return InstallationSettings(
        installation_id="i",
        name="Home",
        max_current_a=25.0,
        available_current_a=current_a,
        available_current_phases_a=_pv(current_a),
        mode=mode,
        three_to_one_phase_switch_current_a=switch_a,
        session_max_stop_count=5,
        network_type=NetworkType.TN_3_PHASE,
        user_roles=UserRole.OWNER,
    )


def _charger(
    model: ChargerModel = ChargerModel.GO2,
    mode: ChargerOperationMode = ChargerOperationMode.CONNECTED_CHARGING,
) -> ChargerState:
    return ChargerState(
        charger_id="c",
        model=model,
        operation_mode=Timed[ChargerOperationMode](value=mode, observed_at=NOW),
        session_id=Timed[str](value="session-1", observed_at=NOW),
        is_online=Timed[bool](value=True, observed_at=NOW),
    )


def _snapshot(
    installation: InstallationSettings | None = None,
    *,
    meter_age_s: float = 10.0,
    chargers: tuple[ChargerState, ...] | None = None,
    peak_w: float | None = None,
) -> Snapshot:
    return Snapshot(
        taken_at=NOW,
        installation=installation or _installation(),
        installation_read_at=NOW,
        chargers=(_charger(),) if chargers is None else chargers,
        meter=SiteReading(
            measured_at=NOW - timedelta(seconds=meter_age_s),
            grid_current_a=_pv(0),
            grid_power_w=_pv(0),
            pv_power_w=0,
        ),
        household_peak_w=_pv(peak_w) if peak_w is not None else None,
    )


def _q(low: float, mid: float, high: float) -> Quantiles:
    return Quantiles(values={0.1: low, 0.5: mid, 0.9: high})


def _forecast(
    load_hi_w: tuple[float, float, float] = (460.0, 460.0, 460.0), surplus_lo_w: float = 0.0
) -> Forecast:
    return Forecast(
        issued_at=NOW,
        target_start=NOW,
        horizon_s=900,
        provider="test",
        household_w=tuple(_q(0, h / 2, h) for h in load_hi_w),  # type: ignore[arg-type]
        pv_w=_q(0, 0, 0),
        surplus_w=_q(surplus_lo_w, surplus_lo_w + 500, surplus_lo_w + 1000),
        cold_start=False,
        error_samples=100,
    )


def _settings(mode: PolicyMode, **kw: object) -> PolicySettings:
    # The expected values below were worked out at the surplus's q0.1 (the band's lower edge).
    kw.setdefault("surplus_quantile", 0.1)
    return PolicySettings(mode=mode, fuse_a=25.0, fuse_margin_a=1.0, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("mode", "forecast", "currents", "phases", "switch", "reason", "binding"),
    [
        (
            PolicyMode.FUSE_ONLY,
            _forecast((460.0, 2300.0, 4600.0)),
            (22.0, 14.0, 4.0),
            1,  # a Go 2 cannot run 3-phase on 4 A: 1-phase pinned, each phase its own headroom
            32.0,
            Reason.FUSE_HEADROOM,
            "fuse_l3",
        ),
        (
            PolicyMode.FUSE_ONLY,
            _forecast((0.0, 0.0, 0.0)),
            (24.0, 24.0, 24.0),
            3,
            0.0,  # pinned to 3-phase: Zaptec's own switch would drop it on any dip
            Reason.FUSE_HEADROOM,
            "fuse_l1",
        ),
        (
            PolicyMode.SOLAR,
            _forecast(surplus_lo_w=6900.0),
            (10.0, 10.0, 10.0),
            3,
            0.0,
            Reason.SOLAR_SURPLUS,
            "surplus",
        ),
        (
            PolicyMode.SOLAR,
            _forecast(surplus_lo_w=2300.0),
            (10.0, 10.0, 10.0),
            1,
            32.0,
            Reason.SOLAR_SURPLUS,
            "surplus",
        ),
        (
            PolicyMode.SOLAR,
            _forecast(surplus_lo_w=1000.0),
            (0.0, 0.0, 0.0),
            1,
            32.0,
            Reason.SOLAR_PAUSE,
            "surplus_below_minimum",
        ),
        (
            PolicyMode.SOLAR_MIN,
            _forecast(surplus_lo_w=1000.0),
            (6.0, 6.0, 6.0),
            1,
            32.0,
            Reason.SOLAR_MINIMUM,
            "minimum_current",
        ),
        (
            PolicyMode.SOLAR,
            _forecast((2300.0, 460.0, 460.0), 13800.0),
            (14.0, 14.0, 14.0),
            3,
            0.0,
            Reason.SOLAR_SURPLUS,
            "fuse_l1",
        ),
        (PolicyMode.FIXED, _forecast(), (6.0, 6.0, 6.0), 3, None, Reason.FIXED, "fixed"),
        (PolicyMode.FIXED, _forecast((5520.0, 0.0, 0.0)), (0.0, 0.0, 0.0), 3, None, Reason.FIXED, "fuse_l1"),
    ],
    ids=[
        "fuse-per-phase-headroom",
        "fuse-capped-by-margin",
        "solar-3p",
        "solar-1p-below-3p-minimum",
        "solar-pause",
        "solar-min-holds-6a",
        "solar-capped-by-fuse",
        "fixed",
        "fixed-capped-by-fuse",
    ],
)
def test_modes(  # noqa: PLR0913, PLR0917 - a table row
    mode: PolicyMode,
    forecast: Forecast,
    currents: tuple[float, float, float],
    phases: int,
    switch: float | None,
    reason: Reason,
    binding: str,
) -> None:
    """Each mode's target per phase, phase count, switch current, reason and binding constraint."""
    decision = decide(_snapshot(), forecast, PreviousDecision(), _settings(mode), NOW)
    assert decision.setpoint is not None
    assert decision.setpoint.currents_a.as_tuple() == currents
    assert (decision.phases, decision.setpoint.switch_current_a) == (phases, switch)
    assert (decision.reason, decision.binding_constraint) == (reason, binding)
    assert {c.name for c in decision.candidates} >= {"max_current", "fuse_l1", "fuse_l2", "fuse_l3"}


def test_go_never_gets_a_switch_current() -> None:
    """A Go cannot switch: solar runs 3-phase and leaves the switch current alone."""
    snapshot = _snapshot(chargers=(_charger(ChargerModel.GO),))
    decision = decide(
        snapshot, _forecast(surplus_lo_w=2300.0), PreviousDecision(), _settings(PolicyMode.SOLAR), NOW
    )
    assert decision.phases == 3
    assert decision.setpoint is not None
    assert decision.setpoint.switch_current_a is None
    assert decision.reason is Reason.SOLAR_PAUSE  # 2.3 kW is below the 3-phase minimum


@pytest.mark.parametrize(
    "mode", [AvailableCurrentMode.APM, AvailableCurrentMode.SCHEDULED], ids=["apm", "schedule"]
)
def test_mode_not_default_stands_down(mode: AvailableCurrentMode) -> None:
    """APM or schedule mode: no setpoint, no write, reason mode_not_default."""
    decision = decide(
        _snapshot(_installation(mode=mode)),
        _forecast(),
        PreviousDecision(),
        _settings(PolicyMode.FUSE_ONLY),
        NOW,
    )
    assert (decision.setpoint, decision.write, decision.hold) == (None, False, Hold.STAND_DOWN)
    assert decision.reason is Reason.MODE_NOT_DEFAULT


@pytest.mark.parametrize(
    ("mode", "peak_w", "currents", "binding"),
    [
        (PolicyMode.FUSE_ONLY, 2300.0, (14.0, 14.0, 14.0), "household_peak"),
        (PolicyMode.FUSE_ONLY, None, (0.0, 0.0, 0.0), "no_history"),
        (PolicyMode.SOLAR, 2300.0, (0.0, 0.0, 0.0), "stale_solar_fallback"),
    ],
    ids=["fuse-peak-fallback", "fuse-no-history-pauses", "solar-pauses"],
)
def test_stale_meter_falls_back(
    mode: PolicyMode, peak_w: float | None, currents: tuple[float, ...], binding: str
) -> None:
    """A meter older than the limit: fuse minus margin minus the window's peak, or a pause."""
    snapshot = _snapshot(meter_age_s=600, peak_w=peak_w)
    decision = decide(snapshot, _forecast(), PreviousDecision(), _settings(mode), NOW)
    assert decision.reason is Reason.STALE_INPUTS
    assert decision.setpoint is not None
    assert decision.setpoint.currents_a.as_tuple() == currents
    assert decision.binding_constraint == binding


def _previous(written_a: float, minutes_ago: float) -> PreviousDecision:
    return PreviousDecision(
        written=Setpoint(currents_a=_pv(written_a)), written_at=NOW - timedelta(minutes=minutes_ago)
    )


@pytest.mark.parametrize(
    ("current_a", "previous", "load_w", "write", "hold", "safety", "reassert"),
    [
        (24.0, _previous(24.0, 30), 0.0, False, Hold.DEADBAND, False, False),
        (23.5, _previous(23.5, 30), 0.0, False, Hold.DEADBAND, False, False),
        (16.0, _previous(16.0, 30), 0.0, True, None, False, False),
        (16.0, _previous(16.0, 5), 0.0, False, Hold.WRITE_INTERVAL, False, False),
        (24.0, _previous(24.0, 5), 4600.0, True, None, True, False),
        (25.0, _previous(16.0, 5), 0.0, True, None, False, True),
        (16.0, PreviousDecision(), 0.0, True, None, False, False),
    ],
    ids=[
        "unchanged-not-written",
        "trivial-change-not-written",
        "change-after-interval",
        "change-inside-interval-held",
        "safety-reduction-inside-interval",
        "cloud-reset-reasserted",
        "first-write",
    ],
)
def test_write_rationing(  # noqa: PLR0913, PLR0917 - a table row
    current_a: float,
    previous: PreviousDecision,
    load_w: float,
    write: bool,
    hold: Hold | None,
    safety: bool,
    reassert: bool,
) -> None:
    """Deadband, one write per 15 minutes, safety reductions, and re-asserting a cloud reset."""
    decision = decide(
        # A Go (no phase switching) keeps the switch current out of the rationing rules under test.
        _snapshot(_installation(current_a), chargers=(_charger(ChargerModel.GO),)),
        _forecast((load_w, load_w, load_w)),
        previous,
        _settings(PolicyMode.FUSE_ONLY),
        NOW,
    )
    assert (decision.write, decision.hold, decision.safety_reduction, decision.reassert) == (
        write,
        hold,
        safety,
        reassert,
    )


def test_offline_and_standalone_chargers_are_noted() -> None:
    """A charger the cloud cannot reach is recorded on the decision."""
    offline = _charger().model_copy(update={"is_online": Timed[bool](value=False, observed_at=NOW)})
    standalone = _charger().model_copy(update={"is_standalone": Timed[bool](value=True, observed_at=NOW)})
    decision = decide(
        _snapshot(chargers=(offline, standalone)),
        _forecast(),
        PreviousDecision(),
        _settings(PolicyMode.FUSE_ONLY),
        NOW,
    )
    assert any("offline" in n for n in decision.notes)
    assert any("stand-alone" in n for n in decision.notes)


def test_phase_state_is_carried_on() -> None:
    """The solar decision returns the phase state the next tick starts from."""
    decision = decide(
        _snapshot(),
        _forecast(surplus_lo_w=2300.0),
        PreviousDecision(phase_state=PhaseState()),
        _settings(PolicyMode.SOLAR),
        NOW,
    )
    assert decision.phase_state.phases == 1
    assert decision.phase_state.session_id == "session-1"


def test_fuse_mode_pins_a_go2_to_three_phases_and_drops_to_one_only_past_the_band_and_dwell() -> None:
    """3-phase on the tightest phase while it allows 6 A; below, 1-phase only once the dwell is over."""
    settings = _settings(PolicyMode.FUSE_ONLY)
    first = decide(_snapshot(), _forecast((2300.0, 2300.0, 2300.0)), PreviousDecision(), settings, NOW)
    assert (first.phases, first.setpoint.currents_a.as_tuple() if first.setpoint else None) == (
        3,
        (14.0,) * 3,
    )
    tight = _forecast((2300.0, 2300.0, 4140.0))  # L3 leaves 6 A: still 3-phase
    again = decide(_snapshot(), tight, PreviousDecision(phase_state=first.phase_state), settings, NOW)
    assert again.phases == 3
    assert again.setpoint is not None
    assert again.setpoint.currents_a.as_tuple() == (6.0, 6.0, 6.0)
    squeezed = _forecast((2300.0, 2300.0, 4830.0))  # 3 A on L3: under the band, but inside the dwell
    held = decide(_snapshot(), squeezed, PreviousDecision(phase_state=first.phase_state), settings, NOW)
    assert held.phases == 3
    assert held.setpoint is not None
    assert held.setpoint.currents_a.as_tuple() == (3.0, 3.0, 3.0)  # a 3-phase car pauses below 6 A
    dwelt = first.phase_state.model_copy(update={"since": NOW - timedelta(minutes=31)})
    dropped = decide(_snapshot(), squeezed, PreviousDecision(phase_state=dwelt), settings, NOW)
    assert (dropped.phases, dropped.setpoint.switch_current_a if dropped.setpoint else None) == (1, 32.0)
    assert dropped.setpoint is not None
    assert dropped.setpoint.currents_a.as_tuple() == (14.0, 14.0, 3.0)


def test_overloaded_phases_names_the_phases_above_the_fuse() -> None:
    """The guard's trigger: import above the fuse, per phase (exactly at the fuse is not over)."""
    grid = PhaseValues(l1=16.0 * 230, l2=16.1 * 230, l3=-3000.0)
    assert overloaded_phases(grid, fuse_a=16.0, voltage_v=230.0) == (1,)


def test_a_site_configured_as_it_plans_solar_power_with_the_it_factor() -> None:
    """6900 W is 10 A on 3-phase TN (3 x 230 V) but 17 A on IT (sqrt(3) x 230 V): the setting decides."""
    forecast = _forecast(surplus_lo_w=6900.0)
    tn = decide(_snapshot(), forecast, PreviousDecision(), _settings(PolicyMode.SOLAR), NOW)
    it = decide(
        _snapshot(), forecast, PreviousDecision(), _settings(PolicyMode.SOLAR, earthing=Earthing.IT), NOW
    )
    assert tn.setpoint is not None
    assert it.setpoint is not None
    assert tn.setpoint.currents_a.l1 == 10.0
    assert it.setpoint.currents_a.l1 == 17.0
