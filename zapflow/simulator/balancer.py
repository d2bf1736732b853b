"""Zaptec's own load balancer, as the simulated cloud runs it: pure functions, no state.

Given the installation's effective available current per phase, the circuit fuse and the chargers
that want current, it decides each charger's phase mode (the 3-to-1 rules per model) and its
allocated current (equal shares, water-filled, nobody below 6 A: the newest session is paused
first). Units: amperes per conductor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from zapflow.simulator.devices import MAX_SWITCH_CURRENT_A, MIN_CHARGE_CURRENT_A, Model, Network

__all__ = ["Demand", "PhaseDecision", "allocate", "conductors_for", "decide_phases"]

_EPS = 1e-9


@dataclass(frozen=True)
class PhaseDecision:
    """The phase count a session uses now, and its updated return-to-3p count."""

    phases: int
    returns_to_3p: int


def decide_phases(  # noqa: PLR0911, PLR0913 - the rule table reads best as early returns
    *,
    model: Model,
    wired_phases: int,
    car_phases: int,
    current_phases: int,
    available_a: tuple[float, float, float],
    switch_current_a: float,
    returns_to_3p: int,
    max_returns: int,
    allow_return: bool = True,
    car_can_switch_up: bool = True,
) -> PhaseDecision:
    """Apply the 3-to-1 phase rules (zaptec-api.md section 7) for one session.

    Go: fixed by wiring and car. Go 2 and Pro: threshold on the installation's available current
    (0 forces 3-phase, 32 forces 1-phase); at session start 3-phase only if every phase exceeds
    the threshold; a running 3-phase session drops to 1-phase when any phase falls below it and
    returns only when all rise above it, at most `max_returns` times per session.
    """
    fixed = 3 if wired_phases == 3 and car_phases == 3 else 1  # noqa: PLR2004
    if model is Model.GO or fixed == 1:
        return PhaseDecision(fixed, returns_to_3p)
    if switch_current_a <= 0:
        return PhaseDecision(3, returns_to_3p)
    if switch_current_a >= MAX_SWITCH_CURRENT_A:
        return PhaseDecision(1, returns_to_3p)
    all_above = min(available_a) > switch_current_a
    any_below = min(available_a) < switch_current_a
    if current_phases == 0:  # session start
        return PhaseDecision(3 if all_above else 1, returns_to_3p)
    if current_phases == 3 and any_below:  # noqa: PLR2004
        return PhaseDecision(1, returns_to_3p)
    can_return = allow_return and car_can_switch_up and returns_to_3p < max_returns
    if current_phases == 1 and all_above and can_return:
        return PhaseDecision(3, returns_to_3p + 1)
    return PhaseDecision(current_phases, returns_to_3p)


def conductors_for(phases: int, rotation: int, network: Network) -> tuple[int, ...]:
    """Installation conductors (0-based) a session loads: all three, or the charger's L1.

    `rotation` maps the charger's L1 onto installation phase `rotation`. On IT a single-phase
    load sits between two conductors, so it loads both.
    """
    if phases == 3:  # noqa: PLR2004
        return (0, 1, 2)
    first = rotation % 3
    if network is Network.IT:
        return tuple(sorted((first, (first + 1) % 3)))
    return (first,)


@dataclass(frozen=True)
class Demand:
    """A charger that wants current: the conductors it loads and the most it can take."""

    charger_id: str
    conductors: tuple[int, ...]
    max_a: float
    circuit_id: str


def allocate(
    demands: list[Demand],
    available_a: tuple[float, float, float],
    circuit_limits_a: dict[str, float],
) -> dict[str, float]:
    """Water-fill the available current over `demands` (listed oldest session first).

    Every conductor's total stays within the installation's available current and the circuit
    fuse. A charger that would get less than 6 A gets nothing; the newest such session yields
    first and the rest is filled again. Results are rounded down to 0.1 A.
    """
    active = list(demands)
    while True:
        shares = _water_fill(active, available_a, circuit_limits_a)
        starved = [d for d in active if shares[d.charger_id] < MIN_CHARGE_CURRENT_A - _EPS]
        if not starved:
            result = {d.charger_id: 0.0 for d in demands}
            result.update({cid: math.floor(a * 10 + _EPS) / 10 for cid, a in shares.items()})
            return result
        active.remove(starved[-1])


def _water_fill(
    demands: list[Demand], available_a: tuple[float, float, float], circuit_limits_a: dict[str, float]
) -> dict[str, float]:
    # Capacity per (circuit, conductor) and per installation conductor, filled in equal steps.
    slack: dict[tuple[str, int], float] = {}
    for p in range(3):
        slack[("", p)] = max(0.0, available_a[p])
    for d in demands:
        for p in d.conductors:
            slack.setdefault((d.circuit_id, p), circuit_limits_a.get(d.circuit_id, math.inf))
    alloc = {d.charger_id: 0.0 for d in demands}
    open_ = [d for d in demands if d.max_a > _EPS]
    while open_:
        users: dict[tuple[str, int], int] = {}
        for d in open_:
            for p in d.conductors:
                users[("", p)] = users.get(("", p), 0) + 1
                users[(d.circuit_id, p)] = users.get((d.circuit_id, p), 0) + 1
        step = min(slack[key] / n for key, n in users.items())
        step = min([step, *(d.max_a - alloc[d.charger_id] for d in open_)])
        for d in open_:
            alloc[d.charger_id] += step
        for key, n in users.items():
            slack[key] -= step * n
        open_ = [
            d
            for d in open_
            if d.max_a - alloc[d.charger_id] > _EPS
            and all(slack[("", p)] > _EPS and slack[(d.circuit_id, p)] > _EPS for p in d.conductors)
        ]
    return alloc
