"""Rows for the ledger tables, built from domain objects (no I/O; the tick writes them)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from zapflow.domain.events import ChargerEvent
from zapflow.domain.models import Forecast, SiteReading
from zapflow.domain.policy import Decision, Snapshot
from zapflow.zaptec import ApiCall

__all__ = [
    "api_call_rows",
    "decision_row",
    "event_rows",
    "forecast_rows",
    "meter_row",
    "snapshot_row",
]


def snapshot_row(
    tick_id: str, snapshot: Snapshot, *, ev_power_w: float, oldest_age_s: float
) -> dict[str, Any]:
    """One `snapshots` row: the headline values as columns, the whole snapshot as JSON."""
    inst = snapshot.installation
    phases = inst.available_current_phases_a
    meter = snapshot.meter
    return {
        "tick_id": tick_id,
        "installation_id": inst.installation_id,
        "taken_at": snapshot.taken_at,
        "mode": int(inst.mode),
        "max_current_a": inst.max_current_a,
        "available_current_l1_a": phases.l1 if phases else inst.available_current_a,
        "available_current_l2_a": phases.l2 if phases else inst.available_current_a,
        "available_current_l3_a": phases.l3 if phases else inst.available_current_a,
        "switch_current_a": inst.three_to_one_phase_switch_current_a,
        "meter_at": meter.measured_at if meter else None,
        "grid_current_l1_a": meter.grid_current_a.l1 if meter else None,
        "grid_current_l2_a": meter.grid_current_a.l2 if meter else None,
        "grid_current_l3_a": meter.grid_current_a.l3 if meter else None,
        "pv_power_w": meter.pv_power_w if meter else None,
        "ev_power_w": ev_power_w,
        "oldest_input_age_s": oldest_age_s,
        "payload": snapshot.model_dump_json(),
    }


def forecast_rows(tick_id: str, installation_id: str, forecast: Forecast) -> list[dict[str, Any]]:
    """One row per (quantity, phase, quantile): household per phase 1-3, pv and surplus as phase 0."""
    series = [("household_w", p + 1, q) for p, q in enumerate(forecast.household_w)]
    series += [("household_peak_w", p + 1, q) for p, q in enumerate(forecast.household_peak_w or ())]
    series += [("pv_w", 0, forecast.pv_w), ("surplus_w", 0, forecast.surplus_w)]
    return [
        {
            "tick_id": tick_id,
            "installation_id": installation_id,
            "issued_at": forecast.issued_at,
            "target_start": forecast.target_start,
            "horizon_s": forecast.horizon_s,
            "provider": forecast.provider,
            "quantity": quantity,
            "phase": phase,
            "quantile": quantile,
            "value": value,
            "cold_start": forecast.cold_start,
        }
        for quantity, phase, values in series
        for quantile, value in sorted(values.values.items())
    ]


def decision_row(
    tick_id: str, installation_id: str, decision: Decision, *, dry_run: bool, policy_version: str
) -> dict[str, Any]:
    """One `decisions` row."""
    currents = decision.setpoint.currents_a if decision.setpoint else None
    return {
        "tick_id": tick_id,
        "installation_id": installation_id,
        "decided_at": decision.decided_at,
        "policy_mode": decision.policy_mode.value,
        "reason": decision.reason.value,
        "binding_constraint": decision.binding_constraint,
        "setpoint_l1_a": currents.l1 if currents else None,
        "setpoint_l2_a": currents.l2 if currents else None,
        "setpoint_l3_a": currents.l3 if currents else None,
        "phases": decision.phases,
        "switch_current_a": decision.setpoint.switch_current_a if decision.setpoint else None,
        "write_needed": decision.write,
        "safety_reduction": decision.safety_reduction,
        "dry_run": dry_run,
        "policy_version": policy_version,
        "candidates": json.dumps([c.model_dump() for c in decision.candidates]),
        "hold": decision.hold.value if decision.hold else None,
        "reassert": decision.reassert,
        "phase_state": decision.phase_state.model_dump_json(),
        "notes": json.dumps(list(decision.notes)),
    }


def api_call_rows(
    tick_id: str, installation_id: str, calls: list[tuple[datetime, ApiCall]]
) -> list[dict[str, Any]]:
    """One row per logical API call (no bodies, no headers: nothing secret is in an ApiCall)."""
    return [
        {
            "tick_id": tick_id,
            "installation_id": installation_id,
            "called_at": at,
            "endpoint": call.endpoint,
            "method": call.method,
            "status": call.status,
            "attempts": call.attempts,
            "latency_ms": call.latency_s * 1000.0,
            "error": call.error,
        }
        for at, call in calls
    ]


def event_rows(
    events: list[ChargerEvent], *, installation_id: str, source: str, received_at: datetime
) -> list[dict[str, Any]]:
    """`charger_events` rows for polled observations (`charger_state_latest` derives from them)."""
    return [
        {
            "charger_id": e.charger_id,
            "state_id": e.state_id,
            "observed_at": e.observed_at,
            "value": e.value,
            "device_id": e.device_id,
            "device_type": e.device_type,
            "installation_id": installation_id,
            "known_installation": True,
            "source": source,
            "received_at": received_at,
            "sequence_number": None,
        }
        for e in events
    ]


def meter_row(
    installation_id: str, reading: SiteReading, *, source: str, received_at: datetime
) -> dict[str, Any]:
    """One `meter_readings` row."""
    c, p = reading.grid_current_a, reading.grid_power_w
    return {
        "installation_id": installation_id,
        "measured_at": reading.measured_at,
        "grid_current_l1_a": c.l1,
        "grid_current_l2_a": c.l2,
        "grid_current_l3_a": c.l3,
        "grid_power_l1_w": p.l1,
        "grid_power_l2_w": p.l2,
        "grid_power_l3_w": p.l3,
        "pv_power_w": reading.pv_power_w,
        "source": source,
        "received_at": received_at,
    }
