"""Fault injection as scenario settings: the same code path as production, with trouble in it.

Time-scheduled faults change the world through a tick hook (`install`); request-level faults
(5xx bursts, 429 storms, a write that times out after it was applied) are consulted by the cloud
for every request. All times are simulated time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from zapflow.simulator.devices import Mode
from zapflow.simulator.world import World

__all__ = ["ChargerOffline", "Faults", "ServerErrorBurst", "Window"]


@dataclass(frozen=True)
class Window:
    """[start, end) in simulated time."""

    start: datetime
    end: datetime

    def __contains__(self, at: object) -> bool:
        return isinstance(at, datetime) and self.start <= at < self.end


@dataclass
class ServerErrorBurst:
    """The next `count` matching requests (from `start`) answer `status`."""

    status: int = 503
    count: int = 3
    method: str = "GET"
    path: str = "/api/.*"
    start: datetime | None = None
    body: str = ""

    def matches(self, method: str, path: str, at: datetime) -> bool:
        """True when this burst takes the request (and consumes one of its count)."""
        if self.count <= 0 or method != self.method or not re.fullmatch(self.path, path):
            return False
        if self.start is not None and at < self.start:
            return False
        self.count -= 1
        return True


@dataclass(frozen=True)
class ChargerOffline:
    """A charger (by scenario name) loses its cloud connection during `window`."""

    charger: str
    window: Window


@dataclass
class Faults:
    """Everything that can go wrong, each off by default."""

    server_errors: list[ServerErrorBurst] = field(default_factory=list)
    write_timeouts: int = 0
    """The next N accepted writes are applied, then their response times out."""
    write_timeout_hold_s: float = 15.0
    """Over HTTP: how long the response is held back (longer than the client's read timeout)."""
    rate_limit_storms: list[Window] = field(default_factory=list)
    token_expiry_at: list[datetime] = field(default_factory=list)
    """All issued tokens are revoked at these times."""
    apm_on_at: datetime | None = None
    """Every installation switches to AvailableCurrentMode 2 (APM) at this time."""
    chargers_offline: list[ChargerOffline] = field(default_factory=list)
    meter_stale_from: datetime | None = None
    cloud_reset_at: list[datetime] = field(default_factory=list)
    """AvailableCurrent is reset to MaxCurrent by the cloud at these times."""

    def in_rate_limit_storm(self, at: datetime) -> bool:
        """True while a 429 storm is on."""
        return any(at in w for w in self.rate_limit_storms)

    def server_error_for(self, method: str, path: str, at: datetime) -> ServerErrorBurst | None:
        """The burst that takes this request, if any."""
        return next((b for b in self.server_errors if b.matches(method, path, at)), None)

    def take_write_timeout(self) -> bool:
        """Consume one scripted write timeout."""
        if self.write_timeouts <= 0:
            return False
        self.write_timeouts -= 1
        return True

    def install(self, world: World, *, revoke_tokens: Callable[[], None]) -> None:
        """Register the time-scheduled faults as a world tick hook."""
        resets = sorted(self.cloud_reset_at)
        expiries = sorted(self.token_expiry_at)

        def hook(w: World) -> None:
            self._apm(w)
            while resets and w.now >= resets[0]:
                resets.pop(0)
                for inst in w.installations.values():
                    w.reset_available_current(inst.installation_id)
            while expiries and w.now >= expiries[0]:
                expiries.pop(0)
                revoke_tokens()
            self._offline(w)
            self._stale_meter(w)

        world.add_hook(hook)

    def _apm(self, w: World) -> None:
        if self.apm_on_at is not None and w.now >= self.apm_on_at:
            for inst in w.installations.values():
                inst.mode = Mode.APM

    def _offline(self, w: World) -> None:
        for off in self.chargers_offline:
            w.set_online(w.charger_by_name(off.charger).charger_id, online=w.now not in off.window)

    def _stale_meter(self, w: World) -> None:
        if self.meter_stale_from is not None and w.now >= self.meter_stale_from:
            for inst in w.installations.values():
                if inst.meter_frozen is None:
                    w.freeze_meter(inst.installation_id)
