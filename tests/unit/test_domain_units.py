"""A <-> W per phase count and earthing system."""

from __future__ import annotations

import math

import pytest

from zapflow.domain.models import NetworkType
from zapflow.domain.units import Earthing, current_for_power_a, earthing, power_for_current_w


@pytest.mark.parametrize(
    ("current_a", "phases", "system", "power_w"),
    [
        (16.0, 3, Earthing.TN, 11040.0),
        (16.0, 1, Earthing.TN, 3680.0),
        (6.0, 3, Earthing.TN, 4140.0),
        (16.0, 3, Earthing.IT, math.sqrt(3) * 230 * 16),
        (16.0, 1, Earthing.IT, 3680.0),
        (0.0, 3, Earthing.TN, 0.0),
    ],
    ids=["tn-3p-16a", "tn-1p-16a", "tn-3p-minimum", "it-3p", "it-1p", "zero"],
)
def test_power_and_back(current_a: float, phases: int, system: Earthing, power_w: float) -> None:
    """TN: 3 x 230 x I; IT: sqrt(3) x 230 x I; the inverse gives the current back."""
    assert power_for_current_w(current_a, phases, system) == pytest.approx(power_w)
    assert current_for_power_a(power_w, phases, system) == pytest.approx(current_a)


@pytest.mark.parametrize(
    ("network", "system"),
    [
        (NetworkType.TN_3_PHASE, Earthing.TN),
        (NetworkType.TN_1_PHASE, Earthing.TN),
        (NetworkType.IT_3_PHASE, Earthing.IT),
        (NetworkType.IT_1_PHASE, Earthing.IT),
        (NetworkType.UNKNOWN, Earthing.TN),
    ],
    ids=str,
)
def test_earthing_from_network_type(network: NetworkType, system: Earthing) -> None:
    """Zaptec's NetworkType maps to the earthing family."""
    assert earthing(network) is system


def test_other_phase_counts_are_refused() -> None:
    """Two phases is not a charging mode."""
    with pytest.raises(ValueError, match="1 or 3"):
        power_for_current_w(10, 2)
