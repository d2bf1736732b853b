"""A recorded Zaptec cloud for `httpx.MockTransport`: literal JSON, real status codes, faults.

It answers every endpoint `ZaptecClient` uses from the recorded files in `data/recorded/`, and
keeps just enough state to be honest: issued tokens expire on the injected clock, list endpoints
page by `PageSize`/`PageIndex`, `update` changes the installation (mode 2 refuses with HTTP 500
Code 527). Tests script failures with `fail_next()`. The simulated cloud (`zapflow.simulator`)
replaces it for end-to-end runs; this one stays for fast, deterministic client tests and demos.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

import httpx

from zapflow.clock import SYSTEM_CLOCK, Clock

__all__ = ["RECORDED_INSTALLATION_ID", "RecordedZaptec", "ScriptedFault"]

RECORDED_INSTALLATION_ID = "b30adfd3-3442-432e-88ea-8782b7e69b2f"
_DATA = resources.files("zapflow.zaptec") / "data" / "recorded"
_CONSTANTS = resources.files("zapflow") / "data" / "zaptec-constants.json"
_UPDATE_FIELDS = {
    "availablecurrent": "AvailableCurrent",
    "availablecurrentphase1": "AvailableCurrentPhase1",
    "availablecurrentphase2": "AvailableCurrentPhase2",
    "availablecurrentphase3": "AvailableCurrentPhase3",
    "threetoonephaseswitchcurrent": "ThreeToOnePhaseSwitchCurrent",
}


def _load(name: str) -> Any:  # noqa: ANN401 - arbitrary recorded JSON
    return json.loads((_DATA / name).read_text(encoding="utf-8"))


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:  # noqa: ANN401
    return httpx.Response(
        status,
        content=json.dumps(body).encode(),
        headers={"Content-Type": "application/json; charset=utf-8", **(headers or {})},
    )


@dataclass
class ScriptedFault:
    """Answer the next `times` matching requests with `response`, or raise `error` instead."""

    method: str
    path_pattern: str
    times: int = 1
    response: httpx.Response | None = None
    error: Callable[[httpx.Request], Exception] | None = None


@dataclass
class RecordedZaptec:
    """The fake cloud; call it with a request (it is a `MockTransport` handler)."""

    username: str = "demo@zapflow.invalid"
    password: str = "demo-password"  # noqa: S105 - the fake's own test credential
    clock: Clock = SYSTEM_CLOCK
    token_lifetime_s: float = 86399.0
    requests: list[httpx.Request] = field(default_factory=list)
    logins: int = 0
    faults: list[ScriptedFault] = field(default_factory=list)
    hierarchy_204: set[str] = field(default_factory=set)
    """Installation ids whose hierarchy answers 204 (no access / still provisioning)."""

    def __post_init__(self) -> None:
        """Load the recorded state."""
        self.installation_items: list[dict[str, Any]] = _load("installation-list-items.json")
        self.installations: dict[str, dict[str, Any]] = {
            item["Id"]: _load(f"installation-{item['Id']}.json")
            for item in self.installation_items
            if (_DATA / f"installation-{item['Id']}.json").is_file()
        }
        self.charger_items: list[dict[str, Any]] = _load("charger-list-items.json")
        self.states: dict[str, list[dict[str, Any]]] = {
            c["Id"]: _load(f"state-{c['Id']}.json") for c in self.charger_items
        }
        self.connection_details: dict[str, Any] = _load("messaging-connection-details.json")
        self._tokens: dict[str, float] = {}

    def transport(self) -> httpx.MockTransport:
        """A `MockTransport` serving this fake."""
        return httpx.MockTransport(self)

    def fail_next(  # noqa: PLR0913 - a small scripting DSL for tests
        self,
        method: str,
        path_pattern: str,
        *,
        status: int | None = None,
        body: Any = None,  # noqa: ANN401
        headers: dict[str, str] | None = None,
        error: Callable[[httpx.Request], Exception] | None = None,
        times: int = 1,
    ) -> None:
        """Script the next `times` requests matching `method` and the regex `path_pattern`."""
        response = None
        if status is not None:
            content = (
                b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
            )
            response = httpx.Response(status, content=content, headers=headers or {})
        self.faults.append(ScriptedFault(method, path_pattern, times, response, error))

    def expire_tokens(self) -> None:
        """Make every issued token invalid (as after a cloud-side revocation)."""
        self._tokens.clear()

    def count(self, method: str, path_pattern: str) -> int:
        """How many requests matched `method` and the regex `path_pattern`."""
        return sum(1 for r in self.requests if r.method == method and re.fullmatch(path_pattern, r.url.path))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        """Answer one request."""
        self.requests.append(request)
        for fault in self.faults:
            if (
                fault.times > 0
                and request.method == fault.method
                and re.fullmatch(fault.path_pattern, request.url.path)
            ):
                fault.times -= 1
                if fault.error is not None:
                    raise fault.error(request)
                assert fault.response is not None  # noqa: S101 - fail_next sets one of the two
                return fault.response
        path = request.url.path
        if request.method == "POST" and path == "/oauth/token":
            return self._token(request)
        if not path.startswith("/api/"):
            return httpx.Response(404)
        if path == "/api/constants":
            return httpx.Response(200, content=_CONSTANTS.read_bytes())
        if not self._authorised(request):
            return httpx.Response(401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return self._api(request, path)

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        if (
            form.get("grant_type") != "password"
            or form.get("username") != self.username
            or form.get("password") != self.password
        ):
            return _json(400, _load("token-invalid-grant.json"))
        self.logins += 1
        token = f"recorded-token-{self.logins}"
        self._tokens[token] = self.clock.monotonic() + self.token_lifetime_s
        body = _load("token.json")
        body.update(access_token=token, expires_in=int(self.token_lifetime_s))
        return _json(200, body)

    def _authorised(self, request: httpx.Request) -> bool:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ")
        expires_at = self._tokens.get(token)
        return expires_at is not None and self.clock.monotonic() < expires_at

    def _api(self, request: httpx.Request, path: str) -> httpx.Response:  # noqa: C901, PLR0911 - a router
        parts = path.strip("/").split("/")[1:]
        if request.method == "GET" and parts == ["installation"]:
            return self._paged(request, self.installation_items)
        if request.method == "GET" and parts == ["chargers"]:
            return self._paged(request, self.charger_items)
        if len(parts) >= 2 and parts[0] == "installation":  # noqa: PLR2004
            installation = self.installations.get(parts[1].lower())
            if installation is None:
                return httpx.Response(404)
            tail = parts[2:]
            if request.method == "GET" and not tail:
                return _json(200, installation)
            if request.method == "GET" and tail == ["hierarchy"]:
                if parts[1] in self.hierarchy_204:
                    return httpx.Response(204)
                return _json(200, _load(f"hierarchy-{parts[1]}.json"))
            if request.method == "POST" and tail == ["update"]:
                return self._update(installation, request)
            if request.method == "GET" and tail == ["messagingConnectionDetails"]:
                return _json(200, self.connection_details)
        if request.method == "GET" and len(parts) == 3 and parts[0] == "chargers" and parts[2] == "state":  # noqa: PLR2004
            state = self.states.get(parts[1].lower())
            return httpx.Response(404) if state is None else _json(200, state)
        if request.method == "GET" and len(parts) == 3 and parts[0] == "userGroups":  # noqa: PLR2004
            return _json(200, self.connection_details)
        return httpx.Response(404)

    def _paged(self, request: httpx.Request, items: list[dict[str, Any]]) -> httpx.Response:
        size = int(request.url.params.get("PageSize", "100"))
        index = int(request.url.params.get("PageIndex", "0"))
        pages = max(1, math.ceil(len(items) / size))
        return _json(200, {"Pages": pages, "Data": items[index * size : (index + 1) * size]})

    def _update(self, installation: dict[str, Any], request: httpx.Request) -> httpx.Response:
        if installation.get("AvailableCurrentMode", 0) != 0:
            return _json(500, _load("error-apm-527.json"))
        try:
            body = json.loads(request.content)
        except ValueError:
            return _json(400, {"title": "One or more validation errors occurred.", "status": 400})
        updated = copy.deepcopy(installation)
        for key, value in body.items():
            target = _UPDATE_FIELDS.get(key.lower())
            if target is None or not isinstance(value, int | float):
                return _json(400, {"title": f"Unknown or invalid field {key}", "status": 400})
            updated[target] = float(value)
        if "AvailableCurrent" in updated and any(k.lower() == "availablecurrent" for k in body):
            for n in (1, 2, 3):
                updated[f"AvailableCurrentPhase{n}"] = updated["AvailableCurrent"]
        else:
            phases = [updated.get(f"AvailableCurrentPhase{n}") for n in (1, 2, 3)]
            if all(isinstance(p, float) for p in phases):
                updated["AvailableCurrent"] = min(p for p in phases if p is not None)
        installation.clear()
        installation.update(updated)
        return httpx.Response(200)
