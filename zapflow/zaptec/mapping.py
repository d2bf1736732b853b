"""Wire models -> domain models, in one pure step (no I/O, no logging, no clock).

Observation values arrive as strings (`"32.000"`, `"1"`); a value that does not parse is left out
of the typed view and its state id listed in `ChargerState.invalid_state_ids`, so the caller can
report it while the raw event is still stored.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TypeVar

from zapflow.domain.devices import charger_model
from zapflow.domain.events import ChargerEvent
from zapflow.domain.models import (
    AvailableCurrentMode,
    ChargerInfo,
    ChargerOperationMode,
    ChargerRef,
    ChargerState,
    Circuit,
    ConnectionDetails,
    Hierarchy,
    InstallationSettings,
    NetworkType,
    PhaseValues,
    Timed,
    UserRole,
)
from zapflow.zaptec import wire
from zapflow.zaptec.observations import Observation

__all__ = [
    "charger_info",
    "charger_state",
    "connection_details",
    "event_from_state_item",
    "hierarchy",
    "installation_settings",
    "product_variant",
]

T = TypeVar("T")


def _enum_or_int(enum: type[AvailableCurrentMode], value: int | None) -> AvailableCurrentMode | int:
    value = 0 if value is None else value
    try:
        return enum(value)
    except ValueError:
        return value  # an unknown future mode is kept as a number and is never "DEFAULT"


def _network_type(value: int | None) -> NetworkType:
    try:
        return NetworkType(value or 0)
    except ValueError:
        return NetworkType.UNKNOWN


def _operation_mode(value: int | None) -> ChargerOperationMode | None:
    if value is None:
        return None
    try:
        return ChargerOperationMode(value)
    except ValueError:
        return ChargerOperationMode.UNKNOWN


def installation_settings(body: wire.InstallationBody) -> InstallationSettings:
    """Map `InstallationModel` to `InstallationSettings`."""
    phases = (body.AvailableCurrentPhase1, body.AvailableCurrentPhase2, body.AvailableCurrentPhase3)
    return InstallationSettings(
        installation_id=body.Id,
        name=body.Name,
        max_current_a=body.MaxCurrent,
        available_current_a=body.AvailableCurrent,
        available_current_phases_a=(
            PhaseValues(l1=phases[0], l2=phases[1], l3=phases[2])
            if phases[0] is not None and phases[1] is not None and phases[2] is not None
            else None
        ),
        mode=_enum_or_int(AvailableCurrentMode, body.AvailableCurrentMode),
        three_to_one_phase_switch_current_a=body.ThreeToOnePhaseSwitchCurrent,
        session_max_stop_count=body.PropertySessionMaxStopCount,
        network_type=_network_type(body.NetworkType),
        user_roles=UserRole(body.CurrentUserRoles or 0),
        time_zone=body.TimeZoneIanaName,
    )


def hierarchy(body: wire.HierarchyBody) -> Hierarchy:
    """Map the hierarchy body to circuits and chargers."""
    return Hierarchy(
        installation_id=body.Id,
        name=body.Name,
        network_type=_network_type(body.NetworkType),
        circuits=tuple(
            Circuit(
                circuit_id=c.Id,
                name=c.Name,
                max_current_a=c.MaxCurrent,
                active=c.IsActive,
                chargers=tuple(
                    ChargerRef(
                        charger_id=ch.Id,
                        device_id=ch.DeviceId,
                        name=ch.Name,
                        model=charger_model(ch.DeviceId),
                        active=ch.Active,
                    )
                    for ch in c.Chargers
                ),
            )
            for c in body.Circuits
        ),
    )


def charger_info(item: wire.ChargerListItem) -> ChargerInfo:
    """Map a `ChargerListModel` item."""
    return ChargerInfo(
        charger_id=item.Id,
        device_id=item.DeviceId,
        name=item.Name,
        model=charger_model(item.DeviceId),
        installation_id=item.InstallationId,
        circuit_id=item.CircuitId,
        active=item.Active,
        is_online=item.IsOnline,
        operation_mode=_operation_mode(item.OperatingMode),
    )


def connection_details(body: wire.ConnectionDetailsBody) -> ConnectionDetails:
    """Map a `ConnectionDescriptor`; the password stays a `SecretStr`."""
    return ConnectionDetails(
        connection_type=body.Type,
        host=body.Host,
        port=body.Port,
        use_ssl=body.UseSSL,
        username=body.Username,
        password=body.Password,
        topic=body.Topic,
        subscription=body.Subscription,
    )


def event_from_state_item(item: wire.ChargerStateItem) -> ChargerEvent:
    """Map one state-endpoint entry to a `ChargerEvent`."""
    return ChargerEvent(
        charger_id=item.ChargerId.lower(),
        state_id=item.StateId,
        observed_at=item.Timestamp,
        value=item.ValueAsString,
    )


def product_variant(capabilities: str | None) -> str | None:
    """`productVariant` from the Capabilities (100) JSON string, if it is there."""
    if not capabilities:
        return None
    try:
        parsed = json.loads(capabilities)
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    # Real Go firmware writes PascalCase keys inside this JSON, older samples camelCase.
    variant = {str(k).lower(): v for k, v in parsed.items()}.get("productvariant")
    return variant if isinstance(variant, str) else None


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # NaN/inf are not readings
        raise ValueError(text)
    return value


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "1.000"}:
        return True
    if lowered in {"0", "false", "0.000"}:
        return False
    raise ValueError(text)


def _op_mode(text: str) -> ChargerOperationMode:
    mode = _operation_mode(int(_float(text)))
    return ChargerOperationMode.UNKNOWN if mode is None else mode


def charger_state(
    charger_id: str, events: Iterable[ChargerEvent], *, device_id: str | None = None
) -> ChargerState:
    """Reduce observations (newest per state id wins) to the typed load-balancing view."""
    latest: dict[int, ChargerEvent] = {}
    for event in events:
        seen = latest.get(event.state_id)
        if seen is None or event.observed_at >= seen.observed_at:
            latest[event.state_id] = event
    invalid: list[int] = []

    def timed(obs: Observation, parse: Callable[[str], T]) -> Timed[T] | None:
        event = latest.get(obs)
        if event is None or event.value is None:
            return None
        try:
            return Timed[T](value=parse(event.value), observed_at=event.observed_at)
        except ValueError:
            invalid.append(int(obs))
            return None

    def three(first: Observation, second: Observation, third: Observation) -> Timed[PhaseValues] | None:
        parts = [timed(o, _float) for o in (first, second, third)]
        if parts[0] is None or parts[1] is None or parts[2] is None:
            return None
        observed_at: datetime = min(p.observed_at for p in (parts[0], parts[1], parts[2]))
        values = PhaseValues(l1=parts[0].value, l2=parts[1].value, l3=parts[2].value)
        return Timed[PhaseValues](value=values, observed_at=observed_at)

    capabilities = latest.get(Observation.Capabilities)
    model = charger_model(device_id, product_variant(capabilities.value if capabilities else None))
    # Keyword arguments evaluate left to right, so `invalid` is complete when read last.
    return ChargerState(
        charger_id=charger_id.lower(),
        model=model,
        is_online=timed(Observation.IsOnline, _bool),
        operation_mode=timed(Observation.ChargerOperationMode, _op_mode),
        set_phases=timed(Observation.SetPhases, lambda s: int(_float(s))),
        voltages_v=three(Observation.VoltagePhase1, Observation.VoltagePhase2, Observation.VoltagePhase3),
        currents_a=three(Observation.CurrentPhase1, Observation.CurrentPhase2, Observation.CurrentPhase3),
        total_charge_power_w=timed(Observation.TotalChargePower, _float),
        session_energy_kwh=timed(Observation.TotalChargePowerSession, _float),
        charge_current_set_a=timed(Observation.ChargeCurrentSet, _float),
        is_standalone=timed(Observation.IsStandAlone, _bool),
        final_stop_active=timed(Observation.FinalStopActive, _bool),
        session_id=timed(Observation.SessionIdentifier, str),
        invalid_state_ids=tuple(sorted(set(invalid))),
    )
