"""Zaptec facts the simulated world speaks in: products, serial prefixes, ids and codes.

Numbers are written out here on purpose instead of importing the client's enums: the simulator
is the independent witness the client is tested against, so a wrong id on either side shows up
as a failing integration test rather than a mistake mirrored on both sides.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = [
    "DEVICE_PREFIX",
    "DEVICE_TYPE",
    "MAX_SWITCH_CURRENT_A",
    "MIN_CHARGE_CURRENT_A",
    "Mode",
    "Model",
    "Network",
    "Obs",
    "OpMode",
    "set_phases_id",
]

MIN_CHARGE_CURRENT_A: Final = 6.0
"""Below this a charger gets nothing (IEC 61851 minimum)."""
MAX_SWITCH_CURRENT_A: Final = 32.0
"""`ThreeToOnePhaseSwitchCurrent` of 32 forces 1-phase; 0 forces 3-phase."""


class Model(StrEnum):
    """Charger products with different phase behaviour."""

    PRO = "pro"
    GO = "go"
    GO2 = "go2"


DEVICE_PREFIX: Final = {Model.PRO: "ZPR", Model.GO: "ZAP", Model.GO2: "GPN"}
DEVICE_TYPE: Final = {Model.PRO: 1, Model.GO: 4, Model.GO2: 4}  # Smart = 1, Apollo = 4


class Network(StrEnum):
    """Earthing system: decides how phase current becomes power."""

    TN = "TN"  # 230 V phase-to-neutral: P = n * 230 * I
    IT = "IT"  # 230 V phase-to-phase: 3p P = sqrt(3) * 230 * I, 1p uses two conductors


class Mode:
    """`AvailableCurrentMode`."""

    DEFAULT: Final = 0
    SCHEDULED: Final = 1
    APM: Final = 2


class OpMode:
    """`ChargerOperationModes` (observation 710)."""

    DISCONNECTED: Final = 1
    REQUESTING: Final = 2
    CHARGING: Final = 3
    FINISHED: Final = 5


class Obs:
    """Observation (state) ids from /api/constants 6.5.8."""

    IS_ONLINE: Final = -2
    CAPABILITIES: Final = 100
    VOLTAGE: Final = (501, 502, 503)
    CURRENT: Final = (507, 508, 509)
    CHARGER_MAX_CURRENT: Final = 510
    CHARGER_MIN_CURRENT: Final = 511
    TOTAL_CHARGE_POWER: Final = 513
    SET_PHASES: Final = 519
    MAX_PHASES: Final = 520
    OFFLINE_CURRENT: Final = 523
    SESSION_ENERGY: Final = 553
    CHARGE_CURRENT_SET: Final = 708
    OPERATION_MODE: Final = 710
    IS_STANDALONE: Final = 712
    FINAL_STOP_ACTIVE: Final = 718
    SESSION_ID: Final = 721
    INSTALLATION_ID: Final = 800


# PhaseIdMap of /api/constants: SetPhases id -> phases (bit 1 = L1, 2 = L2, 4 = L3, 7 = all).
_SET_PHASES: Final = {
    (Network.TN, 1): 1,
    (Network.TN, 2): 2,
    (Network.TN, 4): 3,
    (Network.TN, 7): 4,
    (Network.IT, 1): 8,
    (Network.IT, 2): 6,
    (Network.IT, 4): 5,
    (Network.IT, 7): 9,
}


def set_phases_id(network: Network, conductors: tuple[int, ...]) -> int:
    """The SetPhases (519) value for a charger drawing on `conductors` (0-based), 0 when idle."""
    if not conductors:
        return 0
    if len(conductors) == 3:  # noqa: PLR2004 - all three phases
        return _SET_PHASES[(network, 7)]
    # A single-phase charger on IT straddles two conductors; Zaptec names it by the first.
    return _SET_PHASES[(network, 1 << conductors[0])]
