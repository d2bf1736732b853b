"""The request body of `POST /api/installation/{id}/update`, validated before anything is sent.

Zaptec takes either `availableCurrent` (all phases) or all three `availableCurrentPhaseN` (a
phase left out is reset to its default, so they always go together), and optionally
`threeToOnePhaseSwitchCurrent` (0 forces 3-phase, 32 forces 1-phase, 6-31 is the Go 2 threshold).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from zapflow.zaptec.errors import ValidationFailed

__all__ = ["MAX_SWITCH_CURRENT_A", "InstallationUpdate"]

MAX_SWITCH_CURRENT_A = 32.0
MIN_SWITCH_THRESHOLD_A = 6.0
MAX_SWITCH_THRESHOLD_A = 31.0


def _valid_switch_current(value: float) -> bool:
    """0 forces 3-phase, 32 forces 1-phase, 6..31 is a threshold (the portal's range)."""
    return value in (0.0, MAX_SWITCH_CURRENT_A) or MIN_SWITCH_THRESHOLD_A <= value <= MAX_SWITCH_THRESHOLD_A


@dataclass(frozen=True)
class InstallationUpdate:
    """What to write: one current for all phases, or one per phase; and/or the switch current."""

    available_current_a: float | None = None
    phases_a: tuple[float, float, float] | None = None
    three_to_one_phase_switch_current_a: float | None = None

    def validate(self, *, max_current_a: float | None) -> None:
        """Raise `ValidationFailed` unless the update is well-formed and within 0..MaxCurrent."""
        if self.available_current_a is not None and self.phases_a is not None:
            msg = "send either available_current_a or phases_a, not both"
            raise ValidationFailed(msg)
        if (
            self.available_current_a is None
            and self.phases_a is None
            and self.three_to_one_phase_switch_current_a is None
        ):
            msg = "an installation update must change something"
            raise ValidationFailed(msg)
        currents = (
            [self.available_current_a] if self.available_current_a is not None else list(self.phases_a or ())
        )
        if currents:
            if max_current_a is None or not math.isfinite(max_current_a) or max_current_a <= 0:
                msg = f"installation MaxCurrent unknown ({max_current_a}); refusing to write a current"
                raise ValidationFailed(msg)
            for value in currents:
                if not math.isfinite(value) or not 0 <= value <= max_current_a:
                    msg = f"available current {value} A is outside 0..{max_current_a} A (MaxCurrent)"
                    raise ValidationFailed(msg)
        switch = self.three_to_one_phase_switch_current_a
        if switch is not None and not _valid_switch_current(switch):
            msg = (
                f"threeToOnePhaseSwitchCurrent {switch} A is not 0 (force 3-phase), "
                f"{MIN_SWITCH_THRESHOLD_A:g}..{MAX_SWITCH_THRESHOLD_A:g} (threshold) or "
                f"{MAX_SWITCH_CURRENT_A:g} (force 1-phase)"
            )
            raise ValidationFailed(msg)

    def body(self) -> dict[str, float]:
        """The camelCase JSON body Zaptec's integrators send."""
        body: dict[str, float] = {}
        if self.available_current_a is not None:
            body["availableCurrent"] = self.available_current_a
        if self.phases_a is not None:
            body["availableCurrentPhase1"] = self.phases_a[0]
            body["availableCurrentPhase2"] = self.phases_a[1]
            body["availableCurrentPhase3"] = self.phases_a[2]
        if self.three_to_one_phase_switch_current_a is not None:
            body["threeToOnePhaseSwitchCurrent"] = self.three_to_one_phase_switch_current_a
        return body
