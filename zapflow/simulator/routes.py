"""Zaptec's literal JSON, written from the simulated world's own state.

Deliberately not built from `zapflow.zaptec.wire`: field names are typed out here as Zaptec sends
them (PascalCase, null fields left out, timestamps without a zone), so a naming mistake in the
client's wire models fails the integration tests instead of being mirrored.
"""

from __future__ import annotations

from typing import Any

from zapflow.simulator.devices import DEVICE_TYPE, Mode
from zapflow.simulator.world import ChargerSim, InstallationSim, MeterReading, World, zaptec_timestamp

__all__ = [
    "charger_list_item",
    "error_body",
    "hierarchy",
    "installation",
    "installation_list_item",
    "meter_reading",
    "mode_refusal",
    "state",
]

_CREATED = "2024-03-01T09:12:44.217"
_SUPPORT_GROUP = {
    "Id": "5b1f4f3e-2d8c-4a57-9d7e-1f2a3b4c5d6e",
    "Name": "zapflow simulated installer",
    "LookupKey": "ZAPFLOW-SIM",
    "CurrentUserRoles": 0,
    "Protected": False,
    "PropertyMessagingAllowed": True,
    "PropertyMessagingEnabled": True,
    "TransferrableExperimentalFeatures": 0,
}


def installation_list_item(inst: InstallationSim, world: World) -> dict[str, Any]:
    """An `InstallationModel` as the list endpoint sends it (no AvailableCurrent fields)."""
    return {
        "Id": inst.installation_id,
        "Name": inst.spec.name,
        "InstallationType": 0,
        "MaxCurrent": inst.max_current_a,
        "AvailableCurrentMode": inst.mode,
        "AvailableCurrentScheduleWeekendActive": False,
        "InstallationCategory": "Private_Installation_Category",
        "UseLoadBalancing": True,
        "IsRequiredAuthentication": False,
        "Active": True,
        "NetworkType": inst.network_type,
        "CreatedOnDate": _CREATED,
        "UpdatedOn": zaptec_timestamp(world.now),
        "CurrentUserRoles": inst.user_roles,
        "AuthenticationType": 0,
        "MessagingEnabled": True,
        "RoutingId": "default",
        "OcppCloudUrlVersion": 0,
        "IsSubscriptionsAvailableForCurrentUser": False,
        "AvailableFeatures": 471,
        "EnabledFeatures": 0,
    }


def installation(inst: InstallationSim, world: World) -> dict[str, Any]:
    """`GET /api/installation/{id}`: the full model, current settings included."""
    body = installation_list_item(inst, world)
    phases = inst.available_a
    body.update(
        {
            "AvailableCurrent": min(phases),  # Zaptec reports the smallest phase here
            "AvailableCurrentPhase1": phases[0],
            "AvailableCurrentPhase2": phases[1],
            "AvailableCurrentPhase3": phases[2],
            "ThreeToOnePhaseSwitchCurrent": inst.switch_current_a,
            "DefaultThreeToOneSwitchCurrent": 8.0,
            "PropertySessionMaxStopCount": inst.spec.session_max_stop_count,
            "PropertyMainFuseCurrent": inst.max_current_a,
            "TimeZoneName": "(UTC) Coordinated Universal Time",
            "TimeZoneIanaName": "UTC",
            "UpdateStatusCode": 0,
            "ActiveChargerCount": sum(
                1 for c in world.chargers.values() if c.installation_id == inst.installation_id
            ),
            "SupportGroup": _SUPPORT_GROUP,
        }
    )
    return body


def hierarchy(inst: InstallationSim, world: World) -> dict[str, Any]:
    """`GET /api/installation/{id}/hierarchy`, deprecated duplicate keys included."""
    circuits = []
    for circuit_name, circuit_id in inst.circuit_ids.items():
        chargers = [c for c in world.chargers.values() if c.circuit_id == circuit_id]
        circuits.append(
            {
                "Id": circuit_id,
                "Name": circuit_name,
                "MaxCurrent": inst.spec.circuit_max_current_a or inst.max_current_a,
                "IsActive": True,
                "Active": True,
                "InstallationId": inst.installation_id,
                "InstallationName": inst.spec.name,
                "Chargers": [
                    {
                        "Id": c.charger_id,
                        "DeviceId": c.device_id,
                        "MID": c.device_id,
                        "Name": c.spec.name,
                        "SerialNo": c.spec.name,
                        "Active": True,
                        "DeviceType": DEVICE_TYPE[c.model],
                    }
                    for c in chargers
                ],
            }
        )
    return {
        "Id": inst.installation_id,
        "Name": inst.spec.name,
        "InstallationName": inst.spec.name,
        "NetworkType": inst.network_type,
        "Circuits": circuits,
    }


def charger_list_item(charger: ChargerSim, inst: InstallationSim) -> dict[str, Any]:
    """A `ChargerListModel` item of `GET /api/chargers`."""
    return {
        "OperatingMode": charger.op_mode,
        "IsOnline": charger.online,
        "Id": charger.charger_id,
        "MID": charger.device_id,
        "DeviceId": charger.device_id,
        "SerialNo": charger.spec.name,
        "Name": charger.spec.name,
        "CreatedOnDate": _CREATED,
        "CircuitId": charger.circuit_id,
        "Active": True,
        "CurrentUserRoles": inst.user_roles,
        "DeviceType": DEVICE_TYPE[charger.model],
        "InstallationName": inst.spec.name,
        "InstallationId": inst.installation_id,
        "AuthenticationType": 0,
        "IsAuthorizationRequired": False,
    }


def state(charger: ChargerSim) -> list[dict[str, Any]]:
    """`GET /api/chargers/{id}/state`: every observation with the charger's own timestamp."""
    rows = []
    for state_id in sorted(charger.observations):
        at, value = charger.observations[state_id]
        row: dict[str, Any] = {
            "ChargerId": charger.charger_id,
            "StateId": state_id,
            "Timestamp": zaptec_timestamp(at),
        }
        if value is not None:  # Zaptec leaves ValueAsString out rather than sending null
            row["ValueAsString"] = value
        rows.append(row)
    return rows


def error_body(code: int, details: str | None) -> dict[str, Any]:
    """Zaptec's business-error body (HTTP 500)."""
    return {"Code": code, "Details": details, "StackTrace": None}


def mode_refusal(mode: int) -> dict[str, Any]:
    """The Code 527 body for an installation not in Default mode."""
    what = "APM" if mode == Mode.APM else "scheduled power management"
    return error_body(527, f"Cannot update installation when using {what}")


def meter_reading(reading: MeterReading) -> dict[str, Any]:
    """The site-meter JSON contract (see README): UTC timestamp, import positive."""
    return {
        "timestamp": reading.timestamp.isoformat().replace("+00:00", "Z"),
        "grid_current_a": list(reading.grid_current_a),
        "grid_power_w": list(reading.grid_power_w),
        "pv_power_w": reading.pv_power_w,
    }
