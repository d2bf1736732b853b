"""Domain models of what zapflow knows about an installation, its chargers and their state.

Frozen pydantic models with units in the field names. Times are timezone-aware UTC and always
come from outside (observations carry the charger's own timestamp).
"""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum, IntFlag, StrEnum
from itertools import pairwise
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, SecretStr

__all__ = [
    "AvailableCurrentMode",
    "ChargerInfo",
    "ChargerModel",
    "ChargerOperationMode",
    "ChargerRef",
    "ChargerState",
    "Circuit",
    "ConnectionDetails",
    "Hierarchy",
    "InstallationSettings",
    "NetworkType",
    "PhaseValues",
    "Timed",
    "UserRole",
]

T = TypeVar("T")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AvailableCurrentMode(IntEnum):
    """Who controls the installation's available current; only DEFAULT accepts our writes."""

    DEFAULT = 0
    SCHEDULED = 1
    APM = 2


class NetworkType(IntEnum):
    """Zaptec `NetworkTypes`: earthing system and phase count of the supply."""

    UNKNOWN = 0
    IT_1_PHASE = 1
    IT_3_PHASE = 2
    TN_1_PHASE = 3
    TN_3_PHASE = 4


class ChargerOperationMode(IntEnum):
    """Zaptec `ChargerOperationModes` (observation 710); 4 is not defined by Zaptec."""

    UNKNOWN = 0
    DISCONNECTED = 1
    CONNECTED_REQUESTING = 2
    CONNECTED_CHARGING = 3
    CONNECTED_FINISHED = 5


class UserRole(IntFlag):
    """Zaptec `UserRoles` bit flags (CurrentUserRoles on an installation)."""

    NONE = 0
    USER = 1
    OWNER = 2
    MAINTAINER = 4
    ADMINISTRATOR = 8
    ONBOARDING = 16
    DEVICE_ADMINISTRATOR = 32
    PARTNER_ADMINISTRATOR = 64
    TECHNICAL = 128
    INTERNAL_DATA = 256


class ChargerModel(StrEnum):
    """Charger product, which decides how phases can be switched (zaptec-api.md section 7)."""

    PRO = "pro"
    GO = "go"
    GO2 = "go2"
    SENSE = "sense"
    UNKNOWN = "unknown"


class Timed(_Frozen, Generic[T]):
    """A value with the time the charger observed it."""

    value: T
    observed_at: datetime


class PhaseValues(_Frozen):
    """One value per phase (L1, L2, L3); the field holding it names the unit (`_a`, `_v`)."""

    l1: float
    l2: float
    l3: float

    def as_tuple(self) -> tuple[float, float, float]:
        """Return (L1, L2, L3)."""
        return (self.l1, self.l2, self.l3)


class InstallationSettings(_Frozen):
    """The settings of one installation as Zaptec reports them."""

    installation_id: str
    name: str | None
    max_current_a: float | None
    available_current_a: float | None
    available_current_phases_a: PhaseValues | None
    mode: AvailableCurrentMode | int
    three_to_one_phase_switch_current_a: float | None
    session_max_stop_count: int | None
    network_type: NetworkType
    user_roles: UserRole
    time_zone: str | None = None

    @property
    def can_write(self) -> bool:
        """True when the account holds Owner or Service (Maintainer) rights here."""
        return bool(self.user_roles & (UserRole.OWNER | UserRole.MAINTAINER))

    @property
    def is_controllable(self) -> bool:
        """True when Zaptec accepts available-current writes (mode Default)."""
        return self.mode == AvailableCurrentMode.DEFAULT


class ChargerRef(_Frozen):
    """A charger as listed in an installation hierarchy."""

    charger_id: str
    device_id: str | None
    name: str | None
    model: ChargerModel
    active: bool | None


class Circuit(_Frozen):
    """A circuit (with its own fuse) and the chargers on it."""

    circuit_id: str
    name: str | None
    max_current_a: float | None
    active: bool | None
    chargers: tuple[ChargerRef, ...]


class Hierarchy(_Frozen):
    """Installation -> circuits -> chargers."""

    installation_id: str
    name: str | None
    network_type: NetworkType
    circuits: tuple[Circuit, ...]


class ChargerInfo(_Frozen):
    """A charger as `GET /api/chargers` lists it."""

    charger_id: str
    device_id: str | None
    name: str | None
    model: ChargerModel
    installation_id: str | None
    circuit_id: str | None
    active: bool | None
    is_online: bool | None
    operation_mode: ChargerOperationMode | None


class ChargerState(_Frozen):
    """The load-balancing view of one charger's latest observations, each with its timestamp."""

    charger_id: str
    model: ChargerModel
    is_online: Timed[bool] | None = None
    operation_mode: Timed[ChargerOperationMode] | None = None
    set_phases: Timed[int] | None = None
    voltages_v: Timed[PhaseValues] | None = None
    currents_a: Timed[PhaseValues] | None = None
    total_charge_power_w: Timed[float] | None = None
    session_energy_kwh: Timed[float] | None = None
    charge_current_set_a: Timed[float] | None = None
    is_standalone: Timed[bool] | None = None
    final_stop_active: Timed[bool] | None = None
    session_id: Timed[str] | None = None
    invalid_state_ids: tuple[int, ...] = ()
    """State ids whose value did not parse (left out above; the raw events are kept)."""


class ConnectionDetails(_Frozen):
    """Service Bus connection details handed out by Zaptec; the password never prints."""

    connection_type: int
    host: str
    port: int
    use_ssl: bool
    username: str
    password: SecretStr
    topic: str
    subscription: str


class SiteReading(_Frozen):
    """One site-meter reading: import positive, per phase, plus PV (see the README's contract)."""

    measured_at: datetime
    grid_current_a: PhaseValues
    grid_power_w: PhaseValues
    pv_power_w: float


class SitePowerSample(_Frozen):
    """A point of history for the forecaster: household load per phase (EV excluded) and PV."""

    at: datetime
    household_w: PhaseValues
    pv_w: float

    @property
    def surplus_w(self) -> float:
        """PV left after the household: what an EV could take without importing."""
        return self.pv_w - sum(self.household_w.as_tuple())


class Quantiles(_Frozen):
    """Values at a few quantiles (keys 0..1) of one forecast quantity."""

    values: dict[float, float]

    def at(self, q: float) -> float:
        """The value at quantile `q`: linear between the known quantiles, the end value outside."""
        if q in self.values:
            return self.values[q]
        known = sorted(self.values.items())
        if q <= known[0][0]:
            return known[0][1]
        if q >= known[-1][0]:
            return known[-1][1]
        for (q0, v0), (q1, v1) in pairwise(known):
            if q0 <= q <= q1:
                return v0 + (v1 - v0) * (q - q0) / (q1 - q0)
        return known[-1][1]  # pragma: no cover - the loop covers every q between the ends


class Forecast(_Frozen):
    """What the next interval probably holds, as quantiles, with how it was made."""

    issued_at: datetime
    target_start: datetime
    horizon_s: float
    provider: str
    household_w: tuple[Quantiles, Quantiles, Quantiles]
    pv_w: Quantiles
    surplus_w: Quantiles
    cold_start: bool
    error_samples: int
    household_peak_w: tuple[Quantiles, Quantiles, Quantiles] | None = None
    """The interval's highest one-minute household load per phase (what a fuse sees); None when
    the history has no minute resolution."""
    """How many past forecast errors the quantiles come from (0 on a cold start)."""
