"""Zaptec's load balancer in the simulator: phase rules per model, distribution, 6 A minimum, power."""

from __future__ import annotations

import math

import pytest

from zapflow.simulator.balancer import Demand, PhaseDecision, allocate, conductors_for, decide_phases
from zapflow.simulator.devices import Model, Network
from zapflow.simulator.world import ev_power_w

ALL = (0, 1, 2)


def _decide(  # noqa: PLR0913 - a table row
    model: Model,
    *,
    current: int = 0,
    available: float | tuple[float, float, float] = 25.0,
    switch: float = 8.0,
    returns: int = 0,
    budget: int = 5,
    car_phases: int = 3,
    wired: int = 3,
    can_switch_up: bool = True,
    allow_return: bool = True,
) -> PhaseDecision:
    avail = available if isinstance(available, tuple) else (available, available, available)
    return decide_phases(
        model=model,
        wired_phases=wired,
        car_phases=car_phases,
        current_phases=current,
        available_a=avail,
        switch_current_a=switch,
        returns_to_3p=returns,
        max_returns=budget,
        allow_return=allow_return,
        car_can_switch_up=can_switch_up,
    )


@pytest.mark.parametrize(
    ("model", "kwargs", "phases", "returns"),
    [
        (Model.GO2, {"available": 16.0}, 3, 0),
        (Model.GO2, {"available": 7.0}, 1, 0),
        (Model.GO2, {"available": 8.0}, 1, 0),
        (Model.GO2, {"available": (16.0, 16.0, 7.0)}, 1, 0),
        (Model.GO2, {"available": 6.0, "switch": 0.0}, 3, 0),
        (Model.GO2, {"available": 25.0, "switch": 32.0}, 1, 0),
        (Model.GO2, {"current": 3, "available": (16.0, 7.0, 16.0)}, 1, 0),
        (Model.GO2, {"current": 3, "available": 8.0}, 3, 0),
        (Model.GO2, {"current": 1, "available": 16.0}, 3, 1),
        (Model.GO2, {"current": 1, "available": 16.0, "returns": 4}, 3, 5),
        (Model.GO2, {"current": 1, "available": 16.0, "returns": 5}, 1, 5),
        (Model.GO2, {"current": 1, "available": 16.0, "allow_return": False}, 1, 0),
        (Model.GO2, {"current": 1, "available": 16.0, "can_switch_up": False}, 1, 0),
        (Model.GO2, {"current": 3, "available": 16.0, "switch": 32.0}, 1, 0),
        (Model.GO2, {"car_phases": 1, "available": 25.0}, 1, 0),
        (Model.GO2, {"wired": 1, "available": 25.0}, 1, 0),
        (Model.PRO, {"available": 16.0, "switch": 15.0}, 3, 0),
        (Model.PRO, {"available": 12.0, "switch": 15.0}, 1, 0),
        (Model.PRO, {"current": 3, "available": 12.0, "switch": 15.0}, 1, 0),
        (Model.GO, {"available": 6.0, "switch": 32.0}, 3, 0),
        (Model.GO, {"available": 25.0, "switch": 32.0, "car_phases": 1}, 1, 0),
        (Model.GO, {"current": 3, "available": 6.0}, 3, 0),
    ],
    ids=[
        "go2-start-above-threshold-3p",
        "go2-start-below-threshold-1p",
        "go2-start-equal-threshold-1p",
        "go2-start-one-phase-low-1p",
        "go2-switch-0-forces-3p",
        "go2-switch-32-forces-1p",
        "go2-running-3p-drops-when-any-phase-low",
        "go2-running-3p-stays-at-threshold",
        "go2-running-1p-returns-when-all-above",
        "go2-last-allowed-return",
        "go2-budget-spent-locks-1p",
        "go2-return-disabled",
        "go2-car-cannot-switch-up",
        "go2-force-1p-mid-session",
        "go2-1p-car",
        "go2-wired-1p",
        "pro-start-above-switch-current",
        "pro-start-below-switch-current",
        "pro-running-drops",
        "go-fixed-3p-ignores-force-1p",
        "go-1p-car",
        "go-running-3p-never-switches",
    ],
)
def test_phase_rules(model: Model, kwargs: dict[str, object], phases: int, returns: int) -> None:
    """Each row: the phase count Zaptec picks and the return-to-3p count after the decision."""
    assert _decide(model, **kwargs) == PhaseDecision(phases, returns)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("phases", "rotation", "network", "conductors"),
    [
        (3, 1, Network.TN, ALL),
        (1, 0, Network.TN, (0,)),
        (1, 2, Network.TN, (2,)),
        (1, 0, Network.IT, (0, 1)),
        (1, 2, Network.IT, (0, 2)),
        (3, 0, Network.IT, ALL),
    ],
    ids=["tn-3p", "tn-1p-l1", "tn-1p-rotated-l3", "it-1p-l1l2", "it-1p-rotated-l3l1", "it-3p"],
)
def test_conductors(phases: int, rotation: int, network: Network, conductors: tuple[int, ...]) -> None:
    """Phase rotation picks the conductor; IT single-phase loads two conductors."""
    assert conductors_for(phases, rotation, network) == conductors


@pytest.mark.parametrize(
    ("network", "conductors", "current_a", "power_w"),
    [
        (Network.TN, ALL, 16.0, 3 * 230 * 16),
        (Network.IT, ALL, 16.0, math.sqrt(3) * 230 * 16),
        (Network.TN, (0,), 16.0, 230 * 16),
        (Network.IT, (0, 1), 16.0, 230 * 16),
        (Network.TN, ALL, 0.0, 0.0),
    ],
    ids=["tn-3p", "it-3p", "tn-1p", "it-1p", "idle"],
)
def test_ev_power(network: Network, conductors: tuple[int, ...], current_a: float, power_w: float) -> None:
    """TN: 3 x 230 x I; IT: sqrt(3) x 230 x I for three phases, 230 x I for one."""
    assert ev_power_w(network, 230.0, conductors, current_a) == pytest.approx(power_w)


def _d(charger_id: str, conductors: tuple[int, ...] = ALL, max_a: float = 32.0, circuit: str = "c") -> Demand:
    return Demand(charger_id, conductors, max_a, circuit)


@pytest.mark.parametrize(
    ("demands", "available", "circuit_a", "expected"),
    [
        ([_d("a")], (25.0, 25.0, 25.0), 25.0, {"a": 25.0}),
        ([_d("a"), _d("b")], (25.0, 25.0, 25.0), 25.0, {"a": 12.5, "b": 12.5}),
        ([_d("a", max_a=16.0), _d("b")], (40.0, 40.0, 40.0), 40.0, {"a": 16.0, "b": 24.0}),
        ([_d("a"), _d("b")], (10.0, 10.0, 10.0), 25.0, {"a": 10.0, "b": 0.0}),
        ([_d("a"), _d("b"), _d("c")], (16.0, 16.0, 16.0), 25.0, {"a": 8.0, "b": 8.0, "c": 0.0}),
        ([_d("a")], (5.9, 5.9, 5.9), 25.0, {"a": 0.0}),
        ([_d("a", (0,)), _d("b", (1,))], (10.0, 10.0, 10.0), 25.0, {"a": 10.0, "b": 10.0}),
        ([_d("a", (0,)), _d("b")], (16.0, 10.0, 10.0), 25.0, {"a": 8.0, "b": 8.0}),
        ([_d("a"), _d("b")], (32.0, 32.0, 32.0), 20.0, {"a": 10.0, "b": 10.0}),
        ([_d("a")], (10.0, 16.0, 16.0), 25.0, {"a": 10.0}),
        ([_d("a")], (0.0, 0.0, 0.0), 25.0, {"a": 0.0}),
        ([_d("a")], (16.05, 16.05, 16.05), 25.0, {"a": 16.0}),
    ],
    ids=[
        "one-charger-takes-all",
        "equal-shares",
        "capped-charger-leaves-rest",
        "newest-paused-below-6a",
        "third-paused-two-get-8a",
        "below-minimum-nothing",
        "1p-chargers-on-different-phases",
        "1p-and-3p-share-phase-1",
        "circuit-fuse-binds",
        "lowest-phase-binds-3p",
        "zero-available",
        "rounded-down-to-0.1a",
    ],
)
def test_allocation(
    demands: list[Demand], available: tuple[float, float, float], circuit_a: float, expected: dict[str, float]
) -> None:
    """Water-filling within phase and circuit limits; no charger between 0 and 6 A."""
    result = allocate(demands, available, {"c": circuit_a})
    assert result == pytest.approx(expected)
    for p in range(3):
        assert (
            sum(a for d in demands for a in [result[d.charger_id]] if p in d.conductors)
            <= available[p] + 1e-9
        )
