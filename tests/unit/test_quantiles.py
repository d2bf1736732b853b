"""Quantiles of a forecast: any level can be read."""

from __future__ import annotations

import pytest

from zapflow.domain.models import Quantiles


def test_quantiles_interpolate_between_known_levels_and_clamp_outside() -> None:
    """A policy may ask for a level the forecaster did not compute (0.3): interpolated, never a KeyError."""
    q = Quantiles(values={0.1: 100.0, 0.5: 300.0, 0.9: 700.0})
    assert q.at(0.5) == 300.0
    assert q.at(0.3) == pytest.approx(200.0)
    assert q.at(0.7) == pytest.approx(500.0)
    assert q.at(0.01) == 100.0
    assert q.at(0.99) == 700.0
