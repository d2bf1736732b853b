"""Authentication: a `TokenProvider` seam, with Zaptec's password grant as the implementation.

Zaptec issues no refresh tokens (since Nov 2025): the provider runs the password grant again
shortly before `expires_in` runs out, and again when the API answers 401 (`invalidate`). One
provider per account is shared by all its clients, and logins are serialised and spaced
(the token endpoint reportedly allows about 1 request/s). Zaptec has announced that the password
grant will be replaced by other OAuth flows: those plug in behind `TokenProvider`.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from typing import Protocol

import httpx
from pydantic import SecretStr

from zapflow.clock import Clock
from zapflow.zaptec.errors import AuthenticationFailed, TransientError
from zapflow.zaptec.retry import RetryPolicy, call_with_retries
from zapflow.zaptec.transport import parse, raise_for_status, send
from zapflow.zaptec.wire import TokenBody

__all__ = ["PasswordGrant", "TokenProvider"]

log = logging.getLogger("zapflow.zaptec")
_ENDPOINT = "POST /oauth/token"


class TokenProvider(Protocol):
    """Hands out a valid bearer token and forgets one the API rejected."""

    def token(self) -> SecretStr:
        """Return a token that is valid now (logging in if needed)."""
        ...

    def invalidate(self, token: SecretStr) -> None:
        """Drop `token` after a 401 so the next `token()` logs in again."""
        ...


class PasswordGrant:
    """OAuth2 password grant against `/oauth/token` (form-encoded, no scope, no refresh token).

    `http` opens a client for one login and is closed after it: logins are rare (about daily)
    and the provider outlives the clients that share it, so it holds no connection pool.
    """

    def __init__(  # noqa: PLR0913 - every argument is an injected seam or a documented knob
        self,
        http: Callable[[], httpx.Client],
        *,
        username: str,
        password: SecretStr,
        clock: Clock,
        retry: RetryPolicy,
        rng: random.Random | None = None,
        user_agent: str,
        token_path: str = "/oauth/token",  # noqa: S107 - a URL path, not a secret
        refresh_margin_s: float = 300.0,
        min_login_interval_s: float = 1.1,
    ) -> None:
        self._open_http = http
        self._username = username
        self._password = password
        self._clock = clock
        self._retry = retry
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._user_agent = user_agent
        self._token_path = token_path
        self._refresh_margin_s = refresh_margin_s
        self._min_login_interval_s = min_login_interval_s
        self._token: SecretStr | None = None
        self._refresh_at_s = 0.0
        self._last_login_s: float | None = None
        self._lock = threading.Lock()
        self.logins = 0
        """Successful logins so far (observable in tests and health output)."""

    def __repr__(self) -> str:
        return f"PasswordGrant(username={self._username!r}, password=**********)"

    def token(self) -> SecretStr:
        """Return the cached token, logging in first when it is missing or about to expire."""
        with self._lock:
            if self._token is None or self._clock.monotonic() >= self._refresh_at_s:
                self._login()
            assert self._token is not None  # noqa: S101 - _login sets it or raises
            return self._token

    def invalidate(self, token: SecretStr) -> None:
        """Forget `token` unless another thread already replaced it."""
        with self._lock:
            if self._token is not None and self._token.get_secret_value() == token.get_secret_value():
                self._token = None

    def _login(self) -> None:
        if self._last_login_s is not None:
            wait_s = self._last_login_s + self._min_login_interval_s - self._clock.monotonic()
            if wait_s > 0:
                self._clock.sleep(wait_s)
        body, attempts = call_with_retries(
            self._post_token,
            should_retry=lambda exc: isinstance(exc, TransientError),
            policy=self._retry,
            clock=self._clock,
            rng=self._rng,
            what=_ENDPOINT,
        )
        now_s = self._clock.monotonic()
        self._last_login_s = now_s
        self._token = body.access_token
        # Renew ahead of expiry, but never sooner than half-way for short-lived tokens.
        margin_s = min(self._refresh_margin_s, body.expires_in / 2)
        self._refresh_at_s = now_s + body.expires_in - margin_s
        self.logins += 1
        log.info("logged in to Zaptec (token valid %.0f s, %d attempt(s))", body.expires_in, attempts)

    def _post_token(self) -> TokenBody:
        with self._open_http() as http:
            request = http.build_request(
                "POST",
                self._token_path,
                data={
                    "grant_type": "password",
                    "username": self._username,
                    "password": self._password.get_secret_value(),
                },
                headers={"User-Agent": self._user_agent, "Accept": "application/json"},
            )
            response = send(http, request, endpoint=_ENDPOINT)
        if response.status_code in (400, 401):
            # OpenIddict answers bad credentials with 400 invalid_grant; never echo the body
            # beyond its error code: some servers repeat the submitted form.
            raise AuthenticationFailed(
                f"{_ENDPOINT}: HTTP {response.status_code}: Zaptec refused the configured "
                "username/password (check ZAPFLOW_ZAPTEC_USERNAME / ZAPFLOW_ZAPTEC_PASSWORD)"
            )
        raise_for_status(response, endpoint=_ENDPOINT)
        return parse(TokenBody, response, endpoint=_ENDPOINT)
