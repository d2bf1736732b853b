"""The simulated Zaptec cloud: one request handler serving the REST surface, the meter and control.

`SimulatedCloud.handle(request) -> response` is the whole server. In-process it is an
`httpx.MockTransport` handler; `server.py` serves the very same handler over real HTTP. Before
answering, the world is advanced to the simulated clock's `now()`, so time moves exactly as the
clock says (explicit steps in tests, accelerated in the demo, real time when served).
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

import httpx

from zapflow.clock import SYSTEM_CLOCK, Clock
from zapflow.simulator import routes
from zapflow.simulator.devices import MAX_SWITCH_CURRENT_A, MIN_CHARGE_CURRENT_A, Mode
from zapflow.simulator.events import EventSink, InMemoryEventSink
from zapflow.simulator.faults import Faults
from zapflow.simulator.simclock import SimClock
from zapflow.simulator.world import InstallationSim, World

__all__ = ["Account", "BrokerEndpoint", "Ledger", "SimulatedCloud", "WriteTimedOut"]

_CONSTANTS = resources.files("zapflow") / "data" / "zaptec-constants.json"
_STATE_CACHE = timedelta(seconds=15)
_RATE_PER_S = 10.0
_BURST = 15
_ALL_PHASES = -1
_SWITCH = 3
# Request members (bound case-insensitively, as ASP.NET does) -> phase index, all, or switch.
_UPDATE_FIELDS: dict[str, int] = {
    "availablecurrent": _ALL_PHASES,
    "availablecurrentphase1": 0,
    "availablecurrentphase2": 1,
    "availablecurrentphase3": 2,
    "threetoonephaseswitchcurrent": _SWITCH,
}


@dataclass(frozen=True)
class Account:
    """The simulated Zaptec account: what `/oauth/token` accepts."""

    username: str = "demo@zapflow.local"
    password: str = "zapflow-demo"  # noqa: S105 - the simulator's published demo credential
    user_group_id: str = "4f6c3b1e-9a2d-4e57-8b10-5a1d2c3e4f50"
    token_lifetime_s: float = 86399.0


@dataclass(frozen=True)
class BrokerEndpoint:
    """What the messagingConnectionDetails endpoints hand out (the local broker's address)."""

    host: str = "127.0.0.1"
    port: int = 5672
    use_ssl: bool = False
    username: str = "zapflow-sim"
    password: str = "zapflow-sim-sas-key"  # noqa: S105 - the local broker's demo SAS key
    topic: str = "zapflow-sim"
    subscription: str = "default"

    def descriptor(self, subscription: str | None = None) -> dict[str, Any]:
        """The `ConnectionDescriptor` JSON the endpoints answer (for `subscription`, default ours)."""
        return {
            "Type": 0,
            "Host": self.host,
            "Port": self.port,
            "UseSSL": self.use_ssl,
            "Username": self.username,
            "Password": self.password,
            "Topic": self.topic,
            "Subscription": subscription or self.subscription,
        }


@dataclass(frozen=True)
class RequestRecord:
    """One request as the cloud saw it."""

    method: str
    path: str
    status: int
    sim_at: datetime


@dataclass(frozen=True)
class PostAttempt:
    """One POST to an installation's update endpoint, whatever its outcome."""

    installation_id: str
    body: dict[str, Any]
    sim_at: datetime
    status: int


@dataclass(frozen=True)
class AcceptedWrite:
    """A write the cloud applied, and when Zaptec's balancer acted on it."""

    installation_id: str
    body: dict[str, Any]
    received_at: datetime
    effective_at: datetime


@dataclass
class Ledger:
    """What tests read: every request, every POST attempt, every accepted write."""

    requests: list[RequestRecord] = field(default_factory=list)
    post_attempts: list[PostAttempt] = field(default_factory=list)
    accepted_writes: list[AcceptedWrite] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """JSON-able copy for the control endpoint."""
        return {
            "requests": [
                {"method": r.method, "path": r.path, "status": r.status, "sim_at": r.sim_at.isoformat()}
                for r in self.requests
            ],
            "post_attempts": [
                {
                    "installation_id": p.installation_id,
                    "body": p.body,
                    "sim_at": p.sim_at.isoformat(),
                    "status": p.status,
                }
                for p in self.post_attempts
            ],
            "accepted_writes": [
                {
                    "installation_id": w.installation_id,
                    "body": w.body,
                    "received_at": w.received_at.isoformat(),
                    "effective_at": w.effective_at.isoformat(),
                }
                for w in self.accepted_writes
            ],
        }


class WriteTimedOut(Exception):
    """Raised by `handle` after applying a write whose response the fault says never arrives.

    In-process this becomes `httpx.ReadTimeout`; the HTTP server holds the response back instead.
    """

    def __init__(self, request: httpx.Request, hold_s: float) -> None:
        super().__init__("write applied; response withheld")
        self.request = request
        self.hold_s = hold_s


class _RejectingBucket:
    """Zaptec's limiter: 10/s, burst 15, nginx `nodelay` (excess rejected at once, never queued)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._tat_s: float | None = None

    def allow(self) -> bool:
        now = self._clock.monotonic()
        tat = now if self._tat_s is None else max(self._tat_s, now)
        if tat - now > (_BURST - 1) / _RATE_PER_S + 1e-9:
            return False
        self._tat_s = tat + 1 / _RATE_PER_S
        return True


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:  # noqa: ANN401
    return httpx.Response(
        status,
        content=json.dumps(body).encode(),
        headers={"Content-Type": "application/json; charset=utf-8", **(headers or {})},
    )


class SimulatedCloud:
    """The whole simulated service for one world; thread-safe (one lock around every request)."""

    def __init__(  # noqa: PLR0913 - the service's parts, all explicit
        self,
        world: World,
        *,
        clock: SimClock,
        wall: Clock = SYSTEM_CLOCK,
        account: Account | None = None,
        broker: BrokerEndpoint | None = None,
        faults: Faults | None = None,
        hierarchy_204: frozenset[str] = frozenset(),
    ) -> None:
        self.world = world
        self.clock = clock
        self.account = account or Account()
        self.broker = broker or BrokerEndpoint()
        self.faults = faults or Faults()
        self.hierarchy_204 = hierarchy_204
        self.user_group_messaging = True
        """False: the user group has no Service Bus messaging (its details endpoint answers 404)."""
        self.legacy_subscription_per_installation = False
        """True: each installation's legacy details name its own subscription (`<sub>-<id[:8]>`)."""
        self.ledger = Ledger()
        self.lock = threading.RLock()
        self._tokens: dict[str, datetime] = {}
        self._limiter = _RejectingBucket(wall)
        self._state_cache: dict[str, tuple[datetime, list[dict[str, Any]]]] = {}
        self.faults.install(world, revoke_tokens=self._tokens.clear)
        self.logins = 0
        self.scenario_name = ""
        self.loader: Callable[[str, int], SimulatedCloud] | None = None
        """Builds another named scenario (set by `scenarios.build`); used by POST /_sim/scenario."""

    def adopt(self, other: SimulatedCloud) -> None:
        """Take over another cloud's world, clock, account and faults (loading a scenario in place)."""
        with self.lock:
            self.world, self.clock, self.account = other.world, other.clock, other.account
            self.faults, self.hierarchy_204, self.scenario_name = (
                other.faults,
                other.hierarchy_204,
                other.scenario_name,
            )
            self.ledger = Ledger()
            self._tokens = other._tokens
            self._state_cache.clear()
            self.logins = 0

    @property
    def sink(self) -> EventSink:
        """Where observations go."""
        return self.world.sink

    def transport(self) -> httpx.MockTransport:
        """This cloud as an in-process transport; a withheld write response becomes ReadTimeout."""

        def handler(request: httpx.Request) -> httpx.Response:
            try:
                return self.handle(request)
            except WriteTimedOut as exc:
                raise httpx.ReadTimeout(
                    "simulated read timeout after the write", request=exc.request
                ) from None

        return httpx.MockTransport(handler)

    def step(self, seconds: float) -> None:
        """Move simulated time and the world forward by `seconds`."""
        with self.lock:
            self.world.advance_to(self.clock.step(seconds))

    def events(self) -> list[dict[str, Any]]:
        """Events published so far, when the sink keeps them (tests)."""
        sink = self.world.sink
        return list(sink.events) if isinstance(sink, InMemoryEventSink) else []

    # -- the handler -------------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request (advancing the world to now first)."""
        with self.lock:
            now = self.clock.now()
            if now > self.world.now:
                self.world.advance_to(now)
            response = self._route(request)
            self.ledger.requests.append(
                RequestRecord(request.method, request.url.path, response.status_code, now)
            )
            return response

    def _route(self, request: httpx.Request) -> httpx.Response:  # noqa: PLR0911 - a router
        path = request.url.path
        if path.startswith("/_sim/"):
            return self._control(request, path)
        if path.startswith("/sites/") and path.endswith("/meter") and request.method == "GET":
            return self._meter(path.split("/")[2])
        if request.method == "POST" and path == "/oauth/token":
            return self._token(request)
        if not path.startswith("/api/"):
            return httpx.Response(404)
        if self.faults.in_rate_limit_storm(self.world.now) or not self._limiter.allow():
            return httpx.Response(429, headers={"Retry-After": "1"})
        burst = self.faults.server_error_for(request.method, path, self.world.now)
        if burst is not None:
            headers = {"Retry-After": "1"} if burst.status == 429 else {}  # noqa: PLR2004 - as Zaptec does
            return httpx.Response(burst.status, content=burst.body.encode(), headers=headers)
        if path == "/api/constants":
            return httpx.Response(
                200, content=_CONSTANTS.read_bytes(), headers={"Content-Type": "application/json"}
            )
        if not self._authorised(request):
            return httpx.Response(401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return self._api(request, path.rstrip("/").split("/")[2:])

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode(errors="replace")).items()}
        if (
            form.get("grant_type") != "password"
            or form.get("username") != self.account.username
            or form.get("password") != self.account.password
        ):
            return _json(
                400,
                {
                    "error": "invalid_grant",
                    "error_description": "The username/password couple is invalid.",
                    "error_uri": "https://documentation.openiddict.com/errors/ID2024",
                },
            )
        token = secrets.token_urlsafe(32)
        self._tokens[token] = self.world.now + timedelta(seconds=self.account.token_lifetime_s)
        self.logins += 1
        return _json(
            200,
            {"access_token": token, "token_type": "Bearer", "expires_in": int(self.account.token_lifetime_s)},
        )

    def _authorised(self, request: httpx.Request) -> bool:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        expires_at = self._tokens.get(token)
        return expires_at is not None and self.world.now < expires_at

    def _api(self, request: httpx.Request, parts: list[str]) -> httpx.Response:  # noqa: PLR0911 - a router
        method = request.method
        if method == "GET" and parts == ["installation"]:
            items = [routes.installation_list_item(i, self.world) for i in self.world.installations.values()]
            return self._paged(request, items)
        if method == "GET" and parts == ["chargers"]:
            items = [
                routes.charger_list_item(c, self.world.installations[c.installation_id])
                for c in self.world.chargers.values()
            ]
            return self._paged(request, items)
        if len(parts) >= 2 and parts[0] == "installation":  # noqa: PLR2004
            inst = self.world.installations.get(parts[1].lower())
            return httpx.Response(404) if inst is None else self._installation(request, inst, parts[2:])
        if len(parts) == 3 and parts[0] == "chargers" and parts[2] == "state" and method == "GET":  # noqa: PLR2004
            return self._state(parts[1].lower())
        if len(parts) == 3 and parts[0] == "userGroups" and parts[2] == "messagingConnectionDetails":  # noqa: PLR2004
            if parts[1].lower() != self.account.user_group_id:
                return httpx.Response(403)
            if not self.user_group_messaging:
                return httpx.Response(404)
            return _json(200, self.broker.descriptor())
        return httpx.Response(404)

    def _installation(self, request: httpx.Request, inst: InstallationSim, tail: list[str]) -> httpx.Response:
        allowed = bool(inst.user_roles & (2 | 4))  # Owner or Maintainer ("Service")
        if request.method == "GET" and not tail:
            return _json(200, routes.installation(inst, self.world))
        if request.method == "GET" and tail == ["hierarchy"]:
            if not allowed or inst.installation_id in self.hierarchy_204:
                return httpx.Response(204)  # Zaptec answers no-access with 204 since 2025-09
            return _json(200, routes.hierarchy(inst, self.world))
        if tail == ["messagingConnectionDetails"] and request.method == "GET":
            details = self.broker.descriptor(self.legacy_subscription(inst.installation_id))
            return _json(200, details) if allowed else httpx.Response(403)
        if tail == ["update"] and request.method == "POST":
            return self._update(request, inst, allowed=allowed)
        return httpx.Response(404)

    def _state(self, charger_id: str) -> httpx.Response:
        charger = self.world.chargers.get(charger_id)
        if charger is None:
            return httpx.Response(404)
        if not self.world.installations[charger.installation_id].user_roles & (2 | 4):
            return httpx.Response(403)
        cached = self._state_cache.get(charger_id)
        if cached is None or self.world.now - cached[0] >= _STATE_CACHE:
            cached = (self.world.now, routes.state(charger))
            self._state_cache[charger_id] = cached
        return _json(200, cached[1])

    def _paged(self, request: httpx.Request, items: list[dict[str, Any]]) -> httpx.Response:
        try:
            size = max(1, int(request.url.params.get("PageSize", "10")))
            index = max(0, int(request.url.params.get("PageIndex", "0")))
        except ValueError:
            return _json(400, {"title": "PageSize and PageIndex must be integers", "status": 400})
        pages = max(1, -(-len(items) // size))
        return _json(200, {"Pages": pages, "Data": items[index * size : (index + 1) * size]})

    def _update(self, request: httpx.Request, inst: InstallationSim, *, allowed: bool) -> httpx.Response:
        try:
            body = json.loads(request.content or b"null")
        except ValueError:
            body = None
        record_body = body if isinstance(body, dict) else {"_raw": request.content.decode(errors="replace")}
        response = self._apply_update(inst, body, allowed=allowed)
        self.ledger.post_attempts.append(
            PostAttempt(inst.installation_id, record_body, self.world.now, response.status_code)
        )
        if response.status_code == 200 and self.faults.take_write_timeout():  # noqa: PLR2004
            raise WriteTimedOut(request, self.faults.write_timeout_hold_s)
        return response

    def _apply_update(self, inst: InstallationSim, body: object, *, allowed: bool) -> httpx.Response:  # noqa: C901, PLR0911
        if not allowed:
            return httpx.Response(403)
        if inst.mode != Mode.DEFAULT:
            return _json(500, routes.mode_refusal(inst.mode))
        if not isinstance(body, dict):
            return _json(400, {"title": "A non-empty request body is required.", "status": 400})
        phases: list[float | None] = [None, None, None]
        switch: float | None = None
        for key, value in body.items():
            target = _UPDATE_FIELDS.get(str(key).lower())
            if target is None or value is None:
                continue  # ASP.NET binding ignores unknown and null members
            if not isinstance(value, int | float) or isinstance(value, bool):
                return _json(400, {"title": f"The value for {key} is invalid.", "status": 400})
            limit = MAX_SWITCH_CURRENT_A if target == _SWITCH else inst.max_current_a
            if not 0 <= value <= limit or (target == _SWITCH and 0 < value < MIN_CHARGE_CURRENT_A):
                return _json(400, {"title": f"{key} must be between 0 and {limit:g}.", "status": 400})
            if target == _SWITCH:
                switch = float(value)
            elif target == _ALL_PHASES:
                phases = [float(value)] * 3
            else:
                phases[target] = float(value)
        new_phases: tuple[float, float, float] | None = None
        if any(p is not None for p in phases):
            # A phase left out is reset to its default (MaxCurrent): the pitfall Zaptec documents.
            filled = [inst.max_current_a if p is None else p for p in phases]
            new_phases = (filled[0], filled[1], filled[2])
        if new_phases is None and switch is None:
            return _json(400, {"title": "Nothing to update.", "status": 400})
        effective_at = self.world.write_available_current(
            inst.installation_id, phases_a=new_phases, switch_current_a=switch
        )
        self.ledger.accepted_writes.append(
            AcceptedWrite(inst.installation_id, body, self.world.now, effective_at)
        )
        return httpx.Response(200)

    def legacy_subscription(self, installation_id: str) -> str:
        """The subscription the installation's legacy details name."""
        if self.legacy_subscription_per_installation:
            return f"{self.broker.subscription}-{installation_id[:8]}"
        return self.broker.subscription

    def subscriptions(self) -> tuple[str, ...]:
        """Every subscription the details endpoints can name (the broker must hold them all)."""
        legacy = sorted({self.legacy_subscription(i) for i in self.world.installations})
        return (self.broker.subscription, *(n for n in legacy if n != self.broker.subscription))

    def _meter(self, installation_id: str) -> httpx.Response:
        if installation_id.lower() not in self.world.installations:
            return _json(404, {"error": f"unknown site {installation_id}"})
        return _json(200, routes.meter_reading(self.world.meter_reading(installation_id.lower())))

    # -- control ---------------------------------------------------------------------------------

    def _load_scenario(self, body: object) -> httpx.Response:
        name = body.get("name") if isinstance(body, dict) else None
        seed = body.get("seed", 1) if isinstance(body, dict) else 1
        if not isinstance(name, str) or not isinstance(seed, int) or self.loader is None:
            return _json(400, {"error": "scenario takes {'name': str, 'seed': int}"})
        try:
            loaded = self.loader(name, seed)
        except ValueError as exc:
            return _json(404, {"error": str(exc)})
        self.adopt(loaded)
        return _json(200, {"scenario": name, "seed": seed, "now": self.world.now.isoformat()})

    def _control(self, request: httpx.Request, path: str) -> httpx.Response:  # noqa: PLR0911 - a router
        try:
            body = json.loads(request.content) if request.content else {}
        except ValueError:
            return _json(400, {"error": "control requests take a JSON object"})
        if request.method == "GET" and path == "/_sim/state":
            return _json(
                200, {**self.world.summary(), "scale": self.clock.scale, "scenario": self.scenario_name}
            )
        if request.method == "GET" and path == "/_sim/ledger":
            return _json(200, self.ledger.as_json())
        if request.method == "POST" and path == "/_sim/step":
            seconds = body.get("seconds") if isinstance(body, dict) else None
            if not isinstance(seconds, int | float) or seconds < 0:
                return _json(400, {"error": "step takes {'seconds': number >= 0}"})
            self.world.advance_to(self.clock.step(float(seconds)))
            return _json(200, {"now": self.world.now.isoformat()})
        if request.method == "POST" and path == "/_sim/scenario":
            return self._load_scenario(body)
        if request.method == "POST" and path == "/_sim/clock":
            scale = body.get("scale") if isinstance(body, dict) else None
            if not isinstance(scale, int | float) or scale < 0:
                return _json(400, {"error": "clock takes {'scale': number >= 0}"})
            self.clock.set_scale(float(scale))
            return _json(200, {"scale": self.clock.scale, "now": self.clock.now().isoformat()})
        if re.fullmatch(r"/_sim/.*", path):
            return _json(404, {"error": f"no control endpoint {request.method} {path}"})
        return httpx.Response(404)  # pragma: no cover - _route only sends /_sim/ paths here
