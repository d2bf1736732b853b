"""The one exception tree of the Zaptec adapter.

Every failure the client can raise is a `ZaptecError`. Callers branch on the class (or on
`retryable`), never on messages. Foreign exceptions (httpx, pydantic, json) are translated in
exactly one place (`zapflow.zaptec.transport`) and never leak with request headers attached.

Messages and attributes carry no secrets: payload previews pass through `redact()` first, and
every class pickles to the same safe state (Prefect pickles the exceptions of failed runs).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "AmbiguousWrite",
    "AuthenticationFailed",
    "BadRequest",
    "ConfigurationError",
    "Forbidden",
    "MessageDecodeError",
    "ModeNotControllable",
    "NotFound",
    "PermanentError",
    "RateLimited",
    "ResponseDecodeError",
    "ServerError",
    "TransientError",
    "TransportFailure",
    "UnexpectedResponse",
    "ValidationFailed",
    "ZaptecError",
    "redact",
]

_PREVIEW_CHARS = 300
_SECRET_KEYS = re.compile(
    r"(?i)(\"?(?:password|access_token|refresh_token|token|sharedaccesskey|secret|authorization)\"?"
    r"\s*[:=]\s*)(\"[^\"]*\"|[^\s,;&}\]]+)"
)
_BEARER = re.compile(r"(?i)\bbearer\s+[A-Za-z0-9\-._~+/]+=*")


def redact(text: str, *secrets: str) -> str:
    """Mask known secret values and secret-looking `key: value` pairs, then cap the length."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    # Bearer first: the key pattern below would otherwise take "Bearer" as the value.
    text = _BEARER.sub("Bearer ***", text)
    text = _SECRET_KEYS.sub(r"\1***", text)
    if len(text) > _PREVIEW_CHARS:
        text = text[:_PREVIEW_CHARS] + f"... ({len(text)} chars)"
    return text


class ZaptecError(Exception):
    """Base of every error the Zaptec adapter raises.

    `retryable` tells a caller (a Prefect task's retry condition, the ingest supervisor) whether
    repeating the whole step later can help. The client has already done its own bounded retries.
    """

    retryable: bool = False

    def __init__(self, message: str, **context: Any) -> None:  # noqa: ANN401 - free-form context
        super().__init__(message)
        self.message = message
        self.context = context

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle only the message and the explicit context (never __cause__, which may be an
        # httpx error carrying the request and its Authorization header).
        return (_rebuild, (type(self), self.message, self.context))

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


def _rebuild(cls: type[ZaptecError], message: str, context: dict[str, Any]) -> ZaptecError:
    err = cls.__new__(cls)
    ZaptecError.__init__(err, message, **context)
    for key, value in context.items():
        setattr(err, key, value)
    return err


class TransientError(ZaptecError):
    """A failure that may go away by itself (rate limit, 5xx, network). Safe to retry reads."""

    retryable = True


class PermanentError(ZaptecError):
    """A failure that repeating the same request will not fix."""


class RateLimited(TransientError):
    """HTTP 429: over 10 req/s (burst 15) for this account; wait `retry_after_s` seconds."""

    def __init__(self, message: str, *, retry_after_s: float | None) -> None:
        super().__init__(message, retry_after_s=retry_after_s)
        self.retry_after_s = retry_after_s


class ServerError(TransientError):
    """HTTP 5xx other than APM's 527 (Zaptec outages: 500/502/503/504/524)."""

    def __init__(self, message: str, *, status: int, code: int | None = None) -> None:
        super().__init__(message, status=status, code=code)
        self.status = status
        self.code = code


class TransportFailure(TransientError):
    """No HTTP response: connect error, timeout or a broken connection.

    `reached_server` is False only when the request provably never left (connect failure,
    connect timeout, pool timeout): the one case in which a POST may be sent again.
    """

    def __init__(self, message: str, *, reached_server: bool) -> None:
        super().__init__(message, reached_server=reached_server)
        self.reached_server = reached_server


class AmbiguousWrite(ZaptecError):
    """A write may or may not have landed (read timeout or 5xx after sending the POST).

    The client never sends the POST again by itself. Read the installation back and compare
    before deciding whether to write again: a write must never land twice.
    """

    def __init__(self, message: str, *, endpoint: str, payload: dict[str, Any]) -> None:
        super().__init__(message, endpoint=endpoint, payload=payload)
        self.endpoint = endpoint
        self.payload = payload


class AuthenticationFailed(PermanentError):
    """Credentials rejected by `/oauth/token`, or a 401 that survived one re-login."""


class Forbidden(PermanentError):
    """HTTP 403: the account lacks the Owner or Service role, or the charger is externally managed."""


class NotFound(PermanentError):
    """HTTP 404: unknown installation, charger or user group (check the configured ids)."""


class BadRequest(PermanentError):
    """HTTP 400 (or another 4xx): Zaptec refused the request as sent."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message, status=status)
        self.status = status


class ModeNotControllable(PermanentError):
    """HTTP 500 with `Code 527`: the installation is in APM/Sense mode and refuses updates."""


class UnexpectedResponse(PermanentError):
    """A status code this client does not know how to handle."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message, status=status)
        self.status = status


class ValidationFailed(PermanentError):
    """A request rejected by the client before anything was sent (out-of-range current, ...)."""


class ConfigurationError(PermanentError):
    """The client was configured wrongly (missing credentials, bad base URL)."""


class ResponseDecodeError(PermanentError):
    """A response body that is not the JSON shape Zaptec documents; carries a redacted preview."""

    def __init__(self, message: str, *, endpoint: str, preview: str) -> None:
        super().__init__(message, endpoint=endpoint, preview=preview)
        self.endpoint = endpoint
        self.preview = preview


class MessageDecodeError(PermanentError):
    """A Service Bus body that is neither NBFX-wrapped JSON nor plain JSON.

    `raw` holds the offending bytes (for the quarantine table); the message holds a short,
    redacted description only.
    """

    def __init__(self, message: str, *, raw: bytes = b"", offset: int | None = None) -> None:
        super().__init__(message, raw=raw, offset=offset)
        self.raw = raw
        self.offset = offset
