"""Amperes <-> watts for one or three phases, TN or IT, at the installation's voltage.

TN (230 V phase to neutral): P = n x V x I. IT (230 V between phases): three-phase P = sqrt(3) x V x I;
a single-phase load sits between two conductors, P = V x I. Pure functions, no state.
"""

from __future__ import annotations

import math
from enum import StrEnum

from zapflow.domain.models import NetworkType

__all__ = [
    "MIN_CHARGE_CURRENT_A",
    "NOMINAL_VOLTAGE_V",
    "Earthing",
    "current_for_power_a",
    "earthing",
    "power_for_current_w",
]

NOMINAL_VOLTAGE_V = 230.0
MIN_CHARGE_CURRENT_A = 6.0
"""IEC 61851: a charger cannot charge below 6 A per phase."""
_SQRT3 = math.sqrt(3)


class Earthing(StrEnum):
    """How phase current becomes power."""

    TN = "TN"
    IT = "IT"


def earthing(network: NetworkType) -> Earthing:
    """TN or IT from Zaptec's NetworkType (Unknown is treated as TN, the common case)."""
    return Earthing.IT if network in (NetworkType.IT_1_PHASE, NetworkType.IT_3_PHASE) else Earthing.TN


def _factor(phases: int, system: Earthing) -> float:
    if phases not in (1, 3):
        msg = f"phases must be 1 or 3, got {phases}"
        raise ValueError(msg)
    if system is Earthing.IT:
        return _SQRT3 if phases == 3 else 1.0  # noqa: PLR2004
    return float(phases)


def power_for_current_w(
    current_a: float, phases: int, system: Earthing = Earthing.TN, voltage_v: float = NOMINAL_VOLTAGE_V
) -> float:
    """Charging power of `current_a` per phase on `phases` phases."""
    return _factor(phases, system) * voltage_v * current_a


def current_for_power_a(
    power_w: float, phases: int, system: Earthing = Earthing.TN, voltage_v: float = NOMINAL_VOLTAGE_V
) -> float:
    """Per-phase current that draws `power_w` on `phases` phases."""
    return power_w / (_factor(phases, system) * voltage_v)
