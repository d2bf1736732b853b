"""Wire models: Zaptec's JSON exactly as sent (PascalCase), unknown fields ignored.

These mirror the API and nothing else; `zapflow.zaptec.mapping` turns them into domain models in
one pure step. Field names are Zaptec's on purpose (hence the naming-rule exemption in ruff).
Timestamps that arrive without a zone are UTC (zaptec-api.md section 1).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, SecretStr

__all__ = [
    "BusObservation",
    "ChargerListItem",
    "ChargerStateItem",
    "CircuitNode",
    "ConnectionDetailsBody",
    "Constants",
    "HierarchyBody",
    "HierarchyCharger",
    "InstallationBody",
    "Paged",
    "TokenBody",
    "UtcDatetime",
]

T = TypeVar("T")


def _as_utc(value: datetime) -> datetime:
    """Zaptec timestamps carry no zone; they are UTC. Aware ones are converted."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class TokenBody(_Wire):
    """`POST /oauth/token` success body (OAuth2 names, not PascalCase)."""

    access_token: SecretStr
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: float


class Paged(_Wire, Generic[T]):
    """The `{Pages, Data, Message}` envelope of the list endpoints."""

    Pages: int
    Data: list[T]
    Message: str | None = None


class InstallationBody(_Wire):
    """`InstallationModel` (list items and `GET /api/installation/{id}`)."""

    Id: str
    Name: str | None = None
    InstallationType: int | None = None
    MaxCurrent: float | None = None
    AvailableCurrent: float | None = None
    AvailableCurrentPhase1: float | None = None
    AvailableCurrentPhase2: float | None = None
    AvailableCurrentPhase3: float | None = None
    AvailableCurrentMode: int | None = None
    ThreeToOnePhaseSwitchCurrent: float | None = None
    PropertySessionMaxStopCount: int | None = None
    NetworkType: int | None = None
    CurrentUserRoles: int | None = None
    ActiveChargerCount: int | None = None
    TimeZoneIanaName: str | None = None


class HierarchyCharger(_Wire):
    """A charger inside a hierarchy circuit."""

    Id: str
    DeviceId: str | None = None
    Name: str | None = None
    Active: bool | None = None
    DeviceType: int | None = None


class CircuitNode(_Wire):
    """A circuit of `GET /api/installation/{id}/hierarchy`."""

    Id: str
    Name: str | None = None
    MaxCurrent: float | None = None
    IsActive: bool | None = None
    Chargers: list[HierarchyCharger] = []


class HierarchyBody(_Wire):
    """`GET /api/installation/{id}/hierarchy`."""

    Id: str
    Name: str | None = None
    NetworkType: int | None = None
    Circuits: list[CircuitNode] = []


class ChargerListItem(_Wire):
    """`ChargerListModel` items of `GET /api/chargers`."""

    Id: str
    DeviceId: str | None = None
    Name: str | None = None
    CircuitId: str | None = None
    InstallationId: str | None = None
    Active: bool | None = None
    DeviceType: int | None = None
    IsOnline: bool | None = None
    OperatingMode: int | None = None


class ChargerStateItem(_Wire):
    """One `ChargerStateModel` of `GET /api/chargers/{id}/state` (ValueAsString absent for Pulse)."""

    ChargerId: str
    StateId: int
    StateName: str | None = None
    Timestamp: UtcDatetime
    ValueAsString: str | None = None


class BusObservation(_Wire):
    """One observation of a Service Bus message body (same ids as the state endpoint)."""

    DeviceId: str | None = None
    DeviceType: int | None = None
    ChargerId: str
    StateId: int
    Timestamp: UtcDatetime
    ValueAsString: str | None = None
    Value: str | None = None


class ConnectionDetailsBody(_Wire):
    """`ConnectionDescriptor` of the messagingConnectionDetails endpoints."""

    Type: int
    Host: str
    Port: int
    UseSSL: bool
    Username: str
    Password: SecretStr
    Topic: str
    Subscription: str


class Constants(_Wire):
    """The parts of `GET /api/constants` the client reads."""

    Version: str | None = None
    Observations: dict[str, int] = {}
    ErrorCodes: dict[str, int] = {}
