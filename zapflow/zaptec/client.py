"""`ZaptecClient`: the typed, polite, safe way to talk to the Zaptec cloud.

Synchronous on purpose: Prefect runs sync tasks in worker threads, and a blocking client keeps the
per-account rate limiter and token cache plain thread-safe objects shared by every task, with no
event loop to own or cross. One installation tick costs ~1 read and at most 1 write, so
concurrency inside a tick buys nothing.

Every request passes, in order: token (login or re-login on 401, once), the account's rate
limiter, the transport (foreign errors translated), status mapping, and the retry layer:
- GET: retried on 429 (waiting at least Retry-After), every 5xx except Code 527, timeouts and
  connection errors; bounded by attempts and total time.
- POST: retried only when the request provably never reached Zaptec (connect failure, 429).
  Any other failure may have landed and raises `AmbiguousWrite` after exactly one POST: the
  caller reads the installation back before anything is sent again.
Never retried: 400/403/404, a 401 after one re-login, HTTP 500 with Code 527 (APM).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self, TypeVar

import httpx
import pydantic

from zapflow.clock import SYSTEM_CLOCK, Clock
from zapflow.domain.events import ChargerEvent
from zapflow.domain.models import (
    ChargerInfo,
    ConnectionDetails,
    Hierarchy,
    InstallationSettings,
)
from zapflow.settings import ZaptecSettings
from zapflow.zaptec import mapping, wire
from zapflow.zaptec.auth import PasswordGrant, TokenProvider
from zapflow.zaptec.errors import (
    AmbiguousWrite,
    AuthenticationFailed,
    ConfigurationError,
    RateLimited,
    ServerError,
    TransientError,
    TransportFailure,
    UnexpectedResponse,
    ZaptecError,
)
from zapflow.zaptec.ratelimit import LimiterRegistry, RateLimiter
from zapflow.zaptec.retry import RetryPolicy, call_with_retries
from zapflow.zaptec.transport import parse, raise_for_status, send
from zapflow.zaptec.update import InstallationUpdate

__all__ = ["DEFAULT_ACCOUNTS", "AccountRegistry", "ApiCall", "ZaptecClient"]

log = logging.getLogger("zapflow.zaptec")
T = TypeVar("T", bound=pydantic.BaseModel)
_MAX_PAGES = 1000  # a runaway `Pages` value must not loop forever


@dataclass(frozen=True)
class ApiCall:
    """One logical API call as the storage layer records it (no ids of secrets, no bodies)."""

    endpoint: str
    method: str
    path: str
    status: int | None
    attempts: int
    latency_s: float
    error: str | None


class AccountRegistry:
    """Process-wide state shared per Zaptec account: its rate limiter and its token provider."""

    def __init__(self) -> None:
        self.limiters = LimiterRegistry()
        self._providers: dict[str, TokenProvider] = {}

    def token_provider(self, key: str, factory: Callable[[], TokenProvider]) -> TokenProvider:
        """Return the account's token provider, creating it on first use."""
        provider = self._providers.get(key)
        if provider is None:
            provider = self._providers.setdefault(key, factory())
        return provider


DEFAULT_ACCOUNTS = AccountRegistry()


class ZaptecClient:
    """Zaptec REST API over an injected `httpx.Client` (base URL set on it)."""

    def __init__(  # noqa: PLR0913 - each argument is a seam tests and deployments replace
        self,
        http: httpx.Client,
        *,
        auth: TokenProvider,
        limiter: RateLimiter,
        retry: RetryPolicy | None = None,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
        user_agent: str,
        on_call: Callable[[ApiCall], None] | None = None,
        page_size: int = 100,
    ) -> None:
        self._http = http
        self._auth = auth
        self._limiter = limiter
        self._retry = retry or RetryPolicy()
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._user_agent = user_agent
        self._on_call = on_call
        self._page_size = page_size

    @classmethod
    def from_settings(  # noqa: PLR0913 - keyword-only seams with defaults
        cls,
        settings: ZaptecSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Clock = SYSTEM_CLOCK,
        accounts: AccountRegistry = DEFAULT_ACCOUNTS,
        retry: RetryPolicy | None = None,
        on_call: Callable[[ApiCall], None] | None = None,
    ) -> ZaptecClient:
        """Build a client for the configured account; fails fast without credentials."""
        if not settings.username or settings.password is None:
            msg = (
                f"no Zaptec credentials for {settings.base_url}: set ZAPFLOW_ZAPTEC_USERNAME and "
                "ZAPFLOW_ZAPTEC_PASSWORD (see .env.example)"
            )
            raise ConfigurationError(msg)
        timeout = httpx.Timeout(settings.timeout_s, connect=settings.connect_timeout_s)
        retry = retry or RetryPolicy(
            max_attempts=settings.retry_attempts, max_total_s=settings.retry_max_total_s
        )
        username, password = settings.username, settings.password

        def login_http() -> httpx.Client:
            return httpx.Client(base_url=settings.base_url, transport=transport, timeout=timeout)

        def make_provider() -> TokenProvider:
            return PasswordGrant(
                login_http,
                username=username,
                password=password,
                clock=clock,
                retry=retry,
                user_agent=settings.user_agent,
                refresh_margin_s=settings.token_refresh_margin_s,
                min_login_interval_s=settings.login_min_interval_s,
            )

        return cls(
            httpx.Client(base_url=settings.base_url, transport=transport, timeout=timeout),
            auth=accounts.token_provider(settings.account_key, make_provider),
            limiter=accounts.limiters.for_account(
                settings.account_key,
                rate_per_s=settings.rate_limit_per_s,
                burst=settings.rate_limit_burst,
                clock=clock,
            ),
            retry=retry,
            clock=clock,
            user_agent=settings.user_agent,
            on_call=on_call,
        )

    def __repr__(self) -> str:
        return f"ZaptecClient(base_url={str(self._http.base_url)!r})"

    def close(self) -> None:
        """Close this client's connection pool."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- endpoints -----------------------------------------------------------------------------

    def list_installations(self) -> list[InstallationSettings]:
        """`GET /api/installation`, every page."""
        items = self._get_all_pages("/api/installation", wire.InstallationBody, "GET /api/installation")
        return [mapping.installation_settings(i) for i in items]

    def get_installation(self, installation_id: str) -> InstallationSettings:
        """`GET /api/installation/{id}`: settings including AvailableCurrent* and the mode."""
        response = self._call("GET", f"/api/installation/{installation_id}", "GET /api/installation/{id}")
        return mapping.installation_settings(parse(wire.InstallationBody, response, endpoint="installation"))

    def get_hierarchy(self, installation_id: str) -> Hierarchy | None:
        """`GET /api/installation/{id}/hierarchy`; None on 204 (no access, or still provisioning)."""
        endpoint = "GET /api/installation/{id}/hierarchy"
        response = self._call("GET", f"/api/installation/{installation_id}/hierarchy", endpoint)
        if response.status_code == 204:  # noqa: PLR2004
            log.warning(
                "hierarchy of installation %s: 204 No Content (no access or provisioning)", installation_id
            )
            return None
        return mapping.hierarchy(parse(wire.HierarchyBody, response, endpoint=endpoint))

    def list_chargers(self) -> list[ChargerInfo]:
        """`GET /api/chargers`, every page."""
        items = self._get_all_pages("/api/chargers", wire.ChargerListItem, "GET /api/chargers")
        return [mapping.charger_info(i) for i in items]

    def get_charger_state(self, charger_id: str) -> list[ChargerEvent]:
        """`GET /api/chargers/{id}/state` (cached 15 s by Zaptec): every observation, raw."""
        endpoint = "GET /api/chargers/{id}/state"
        response = self._call("GET", f"/api/chargers/{charger_id}/state", endpoint)
        items = parse(_StateList, response, endpoint=endpoint).root
        return [mapping.event_from_state_item(i) for i in items]

    def update_installation(
        self, installation_id: str, update: InstallationUpdate, *, max_current_a: float | None
    ) -> None:
        """`POST /api/installation/{id}/update`, validated against 0..`max_current_a` first.

        Raises `AmbiguousWrite` when the write may have landed: read back before writing again.
        """
        update.validate(max_current_a=max_current_a)
        self._call(
            "POST",
            f"/api/installation/{installation_id}/update",
            "POST /api/installation/{id}/update",
            json=update.body(),
        )

    def get_constants(self) -> wire.Constants:
        """`GET /api/constants` (ids and enums; fetch once and cache)."""
        response = self._call("GET", "/api/constants", "GET /api/constants")
        return parse(wire.Constants, response, endpoint="GET /api/constants")

    def get_user_group_connection_details(self, user_group_id: str) -> ConnectionDetails:
        """`GET /api/userGroups/{id}/messagingConnectionDetails` (Service Bus, current model)."""
        endpoint = "GET /api/userGroups/{id}/messagingConnectionDetails"
        response = self._call("GET", f"/api/userGroups/{user_group_id}/messagingConnectionDetails", endpoint)
        return mapping.connection_details(parse(wire.ConnectionDetailsBody, response, endpoint=endpoint))

    def get_installation_connection_details(self, installation_id: str) -> ConnectionDetails:
        """`GET /api/installation/{id}/messagingConnectionDetails` (deprecated per-installation model)."""
        endpoint = "GET /api/installation/{id}/messagingConnectionDetails"
        response = self._call(
            "GET", f"/api/installation/{installation_id}/messagingConnectionDetails", endpoint
        )
        return mapping.connection_details(parse(wire.ConnectionDetailsBody, response, endpoint=endpoint))

    # -- plumbing ------------------------------------------------------------------------------

    def _get_all_pages(self, path: str, item: type[T], endpoint: str) -> list[T]:
        envelope = wire.Paged[item]  # type: ignore[valid-type]
        items: list[T] = []
        index = 0
        while True:
            params = {"PageSize": str(self._page_size), "PageIndex": str(index)}
            response = self._call("GET", path, endpoint, params=params)
            page = parse(envelope, response, endpoint=endpoint)
            items.extend(page.Data)
            index += 1
            if index >= page.Pages:
                return items
            if index >= _MAX_PAGES:
                msg = f"{endpoint}: more than {_MAX_PAGES} pages (Pages={page.Pages}); giving up"
                raise UnexpectedResponse(msg, status=response.status_code)

    def _call(
        self,
        method: str,
        path: str,
        endpoint: str,
        *,
        params: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """One logical call: retries per method, translated errors, one `ApiCall` recorded."""
        is_read = method == "GET"
        started_s = self._clock.monotonic()
        status: int | None = None
        attempts = 0
        error: str | None = None

        def attempt() -> httpx.Response:
            nonlocal status, attempts
            attempts += 1
            response = self._send_authorised(method, path, endpoint, params=params, json=json)
            status = response.status_code
            raise_for_status(response, endpoint=endpoint)
            return response

        try:
            response, _ = call_with_retries(
                attempt,
                should_retry=_retry_read if is_read else _retry_write,
                policy=self._retry,
                clock=self._clock,
                rng=self._rng,
                what=endpoint,
            )
        except (ServerError, TransportFailure) as exc:
            if not is_read and not (isinstance(exc, TransportFailure) and not exc.reached_server):
                error = "AmbiguousWrite"
                raise AmbiguousWrite(
                    f"{endpoint}: outcome unknown after {exc}; read back before writing again",
                    endpoint=endpoint,
                    payload=json or {},
                ) from None
            error = type(exc).__name__
            raise
        except ZaptecError as exc:
            error = type(exc).__name__
            raise
        finally:
            latency_s = self._clock.monotonic() - started_s
            log.debug("%s %s -> %s in %.3f s (%d attempt(s))", method, path, status, latency_s, attempts)
            if self._on_call is not None:
                self._on_call(ApiCall(endpoint, method, path, status, attempts, latency_s, error))
        return response

    def _send_authorised(
        self,
        method: str,
        path: str,
        endpoint: str,
        *,
        params: dict[str, str] | None,
        json: dict[str, Any] | None,
    ) -> httpx.Response:
        """Send once with a valid token; on 401 log in again and send once more (status unchecked)."""
        response = self._send_once(method, path, endpoint, params=params, json=json)
        if response.status_code == 401:  # noqa: PLR2004
            log.info("%s: 401, logging in again", endpoint)
            self._auth.invalidate(_bearer_of(response.request))
            response = self._send_once(method, path, endpoint, params=params, json=json)
            if response.status_code == 401:  # noqa: PLR2004
                msg = f"{endpoint}: HTTP 401 again after a fresh login (token not accepted)"
                raise AuthenticationFailed(msg)
        return response

    def _send_once(
        self,
        method: str,
        path: str,
        endpoint: str,
        *,
        params: dict[str, str] | None,
        json: dict[str, Any] | None,
    ) -> httpx.Response:
        token = self._auth.token()
        request = self._http.build_request(
            method,
            path,
            params=params,
            json=json,
            headers={
                "Authorization": f"Bearer {token.get_secret_value()}",
                "Accept": "application/json",
                "User-Agent": self._user_agent,
            },
        )
        self._limiter.acquire()
        return send(self._http, request, endpoint=endpoint)


class _StateList(pydantic.RootModel[list[wire.ChargerStateItem]]):
    """The state endpoint answers a bare JSON array."""


def _bearer_of(request: httpx.Request) -> pydantic.SecretStr:
    return pydantic.SecretStr(request.headers.get("Authorization", "").removeprefix("Bearer "))


def _retry_read(exc: BaseException) -> bool:
    return isinstance(exc, TransientError)


def _retry_write(exc: BaseException) -> bool:
    # Only what provably never reached Zaptec: a rejected rate-limit or a failed connect.
    return isinstance(exc, RateLimited) or (isinstance(exc, TransportFailure) and not exc.reached_server)
