"""The one place where httpx and pydantic failures become `ZaptecError`s.

`send()` turns transport exceptions into `TransportFailure` (noting whether the request can have
reached Zaptec), `raise_for_status()` maps status codes to the error tree, and `parse()` turns
a body that does not match its wire model into `ResponseDecodeError`. The httpx exception is
dropped (`from None`): it carries the request, Authorization header included.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import httpx
import pydantic

from zapflow.zaptec.errors import (
    BadRequest,
    Forbidden,
    ModeNotControllable,
    NotFound,
    RateLimited,
    ResponseDecodeError,
    ServerError,
    TransportFailure,
    UnexpectedResponse,
    redact,
)

__all__ = ["APM_ERROR_CODE", "parse", "raise_for_status", "retry_after_s", "send"]

M = TypeVar("M", bound=pydantic.BaseModel)

APM_ERROR_CODE = 527
"""Zaptec `ErrorCodes.NotSupported`: "Cannot update installation when using APM"."""

# Failures that happen before a single byte of the request can have been processed by Zaptec.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def send(http: httpx.Client, request: httpx.Request, *, endpoint: str) -> httpx.Response:
    """Send `request`, translating every httpx exception; the body is read before returning."""
    try:
        response = http.send(request)
        response.read()
    except _NEVER_SENT as exc:
        raise TransportFailure(
            f"{endpoint}: could not connect ({type(exc).__name__})", reached_server=False
        ) from None
    except httpx.TimeoutException as exc:
        raise TransportFailure(f"{endpoint}: timed out ({type(exc).__name__})", reached_server=True) from None
    except httpx.HTTPError as exc:
        raise TransportFailure(
            f"{endpoint}: connection failed ({type(exc).__name__})", reached_server=True
        ) from None
    return response


def retry_after_s(response: httpx.Response) -> float | None:
    """Parse a `Retry-After` header given in seconds (Zaptec sends `1`); None when absent/odd."""
    raw = response.headers.get("Retry-After")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if value >= 0 else None


def _error_code(response: httpx.Response) -> tuple[int | None, str]:
    """Zaptec's error body `{"Code": int, "Details": str|null, ...}`, tolerating anything else."""
    try:
        body: Any = json.loads(response.content)
    except ValueError:
        return None, redact(response.text)
    if isinstance(body, dict):
        code = body.get("Code")
        details = body.get("Details") or body.get("error_description") or body.get("Message") or ""
        return (code if isinstance(code, int) else None), redact(str(details))
    return None, redact(response.text)


def raise_for_status(response: httpx.Response, *, endpoint: str) -> None:
    """Raise the matching `ZaptecError` for a non-2xx response (401 is the caller's business)."""
    status = response.status_code
    if status < 300:  # noqa: PLR2004 - HTTP success range
        return
    code, details = _error_code(response)
    where = f"{endpoint}: HTTP {status}" + (f" (Code {code})" if code is not None else "")
    suffix = f": {details}" if details else ""
    if status == 429:  # noqa: PLR2004
        wait_s = retry_after_s(response)
        raise RateLimited(f"{where}: rate limited, Retry-After {wait_s}", retry_after_s=wait_s)
    if status >= 500 and code == APM_ERROR_CODE:  # noqa: PLR2004
        raise ModeNotControllable(
            f"{where}: installation refuses updates while its AvailableCurrentMode is not Default "
            f"(APM/Sense or schedule); switch it to Default in the Zaptec portal{suffix}"
        )
    if status >= 500:  # noqa: PLR2004
        raise ServerError(where + suffix, status=status, code=code)
    if status == 403:  # noqa: PLR2004
        raise Forbidden(f"{where}: the account needs the Owner or Service role here{suffix}")
    if status == 404:  # noqa: PLR2004
        raise NotFound(where + suffix)
    if 400 <= status < 500:  # noqa: PLR2004
        raise BadRequest(where + suffix, status=status)
    raise UnexpectedResponse(where + suffix, status=status)


def parse(model: type[M], response: httpx.Response, *, endpoint: str) -> M:
    """Validate a JSON body against a wire model; unknown fields are ignored by the models."""
    try:
        return model.model_validate_json(response.content)
    except pydantic.ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[:3]
        raise ResponseDecodeError(
            f"{endpoint}: response does not match {model.__name__}: {first}",
            endpoint=endpoint,
            preview=redact(response.text),
        ) from None
