"""Meter sources behind one seam: `read(now) -> SiteReading`.

`HttpMeter` GETs the JSON contract in the README from any gateway (the simulator serves it at
`/sites/{installation_id}/meter`). `ReplayMeter` replays a JSON-lines file of the same objects,
returning the newest reading at or before `now` (simulated or real). Bad data is a typed error the
caller turns into a recorded fallback; staleness is judged by the caller from `measured_at`.
"""

from __future__ import annotations

import json
import math
from bisect import bisect_right
from datetime import datetime
from pathlib import Path
from typing import Annotated, Protocol

import httpx
import pydantic
from pydantic import AfterValidator, BaseModel, ConfigDict

from zapflow.domain.models import PhaseValues, SiteReading

__all__ = ["HttpMeter", "MeterDataInvalid", "MeterError", "MeterSource", "MeterUnavailable", "ReplayMeter"]


class MeterError(Exception):
    """Base of meter errors."""


class MeterUnavailable(MeterError):
    """The meter could not be reached (network, HTTP status)."""


class MeterDataInvalid(MeterError):
    """The meter answered, but not with the documented contract."""


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        msg = "timestamp must carry a zone (UTC, e.g. 2026-06-17T12:00:00Z)"
        raise ValueError(msg)
    return value


def _finite(values: list[float]) -> list[float]:
    if len(values) != 3 or not all(math.isfinite(v) for v in values):  # noqa: PLR2004
        msg = "expected three finite numbers, one per phase"
        raise ValueError(msg)
    return values


class _Contract(BaseModel):
    """The meter JSON contract (README: "Site meter contract")."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    timestamp: Annotated[datetime, AfterValidator(_aware)]
    grid_current_a: Annotated[list[float], AfterValidator(_finite)]
    grid_power_w: Annotated[list[float], AfterValidator(_finite)]
    pv_power_w: Annotated[float, pydantic.Field(ge=0, allow_inf_nan=False)]

    def reading(self) -> SiteReading:
        c, p = self.grid_current_a, self.grid_power_w
        return SiteReading(
            measured_at=self.timestamp,
            grid_current_a=PhaseValues(l1=c[0], l2=c[1], l3=c[2]),
            grid_power_w=PhaseValues(l1=p[0], l2=p[1], l3=p[2]),
            pv_power_w=self.pv_power_w,
        )


def _parse(raw: bytes | str, where: str) -> SiteReading:
    try:
        return _Contract.model_validate_json(raw).reading()
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        msg = f"{where}: not a meter reading ({problems})"
        raise MeterDataInvalid(msg) from None


class MeterSource(Protocol):
    """Anything that can say what the meter reads now."""

    def read(self, now: datetime) -> SiteReading:
        """The current reading (its own `measured_at` says how fresh it is)."""
        ...


class HttpMeter:
    """The JSON contract over HTTP, from an injected `httpx.Client`."""

    def __init__(self, http: httpx.Client, url: str) -> None:
        self._http = http
        self.url = url

    def read(self, now: datetime) -> SiteReading:  # noqa: ARG002 - a live meter knows its own time
        """GET the reading."""
        try:
            response = self._http.get(self.url)
        except httpx.HTTPError as exc:
            msg = f"meter {self.url}: {type(exc).__name__}"
            raise MeterUnavailable(msg) from None
        if response.status_code != 200:  # noqa: PLR2004
            msg = f"meter {self.url}: HTTP {response.status_code}"
            raise MeterUnavailable(msg)
        return _parse(response.content, f"meter {self.url}")


class ReplayMeter:
    """A JSON-lines file of contract objects, replayed by time."""

    def __init__(self, path: Path) -> None:
        readings = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                readings.append(_parse(line, f"{path}:{number}"))
        if not readings:
            msg = f"{path}: no readings"
            raise MeterDataInvalid(msg)
        self._readings = sorted(readings, key=lambda r: r.measured_at)
        self._times = [r.measured_at for r in self._readings]

    def read(self, now: datetime) -> SiteReading:
        """The newest reading at or before `now`."""
        index = bisect_right(self._times, now)
        if index == 0:
            msg = f"no reading at or before {now.isoformat()} (first is {self._times[0].isoformat()})"
            raise MeterUnavailable(msg)
        return self._readings[index - 1]

    @staticmethod
    def line(reading: SiteReading) -> str:
        """One JSON line in the contract's shape (to record a replay file)."""
        return json.dumps(
            {
                "timestamp": reading.measured_at.isoformat().replace("+00:00", "Z"),
                "grid_current_a": list(reading.grid_current_a.as_tuple()),
                "grid_power_w": list(reading.grid_power_w.as_tuple()),
                "pv_power_w": reading.pv_power_w,
            }
        )
