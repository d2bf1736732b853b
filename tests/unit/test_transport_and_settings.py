"""Status-code mapping, Retry-After parsing, and typed settings."""

from __future__ import annotations

import httpx
import pytest

from zapflow.settings import AppSettings, ZaptecSettings
from zapflow.zaptec import (
    BadRequest,
    Forbidden,
    ModeNotControllable,
    NotFound,
    RateLimited,
    RetryPolicy,
    ServerError,
    UnexpectedResponse,
    ZaptecError,
)
from zapflow.zaptec.transport import raise_for_status, retry_after_s


@pytest.mark.parametrize(
    ("status", "body", "error", "retryable"),
    [
        (400, b'{"error_description":"nope"}', BadRequest, False),
        (403, b"", Forbidden, False),
        (404, b"", NotFound, False),
        (409, b"", BadRequest, False),
        (429, b"", RateLimited, True),
        (500, b"", ServerError, True),
        (500, b'{"Code":520,"Details":null,"StackTrace":null}', ServerError, True),
        (
            500,
            b'{"Code":527,"Details":"Cannot update installation when using APM"}',
            ModeNotControllable,
            False,
        ),
        (502, b"<html><center>nginx</center></html>", ServerError, True),
        (504, b"[1, 2]", ServerError, True),
        (302, b"", UnexpectedResponse, False),
    ],
    ids=[
        "400",
        "403",
        "404",
        "409",
        "429",
        "500-empty",
        "500-520",
        "500-527",
        "502-html",
        "504-array",
        "302",
    ],
)
def test_status_mapping(status: int, body: bytes, error: type[ZaptecError], retryable: bool) -> None:
    """Each status maps to one error class that says whether a later retry can help."""
    with pytest.raises(error) as info:
        raise_for_status(httpx.Response(status, content=body), endpoint="GET /x")
    assert info.value.retryable is retryable
    assert "GET /x" in str(info.value)


def test_success_does_not_raise() -> None:
    """2xx passes through."""
    raise_for_status(httpx.Response(204), endpoint="GET /x")


def test_error_codes_are_kept() -> None:
    """Zaptec's business Code survives on ServerError for the record."""
    with pytest.raises(ServerError) as info:
        raise_for_status(httpx.Response(500, content=b'{"Code":520}'), endpoint="e")
    assert info.value.code == 520


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("1", 1.0), ("2.5", 2.5), (None, None), ("Wed, 21 Oct 2026 07:28:00 GMT", None), ("-3", None)],
    ids=["int", "float", "absent", "http-date", "negative"],
)
def test_retry_after(header: str | None, seconds: float | None) -> None:
    """Retry-After in seconds is used; anything else falls back to backoff."""
    headers = {"Retry-After": header} if header is not None else {}
    assert retry_after_s(httpx.Response(429, headers=headers)) == seconds


def test_settings_read_prefixed_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """ZAPFLOW_ZAPTEC_* variables configure the client; the password stays secret."""
    monkeypatch.setenv("ZAPFLOW_ZAPTEC_USERNAME", "me@example.com")
    monkeypatch.setenv("ZAPFLOW_ZAPTEC_PASSWORD", "pw-123")
    monkeypatch.setenv("ZAPFLOW_ZAPTEC_BASE_URL", "http://127.0.0.1:8080/")
    settings = AppSettings(_env_file=None).zaptec
    assert settings.username == "me@example.com"
    assert settings.base_url == "http://127.0.0.1:8080"
    assert settings.password is not None
    assert "pw-123" not in repr(settings)
    assert settings.user_agent.startswith("zapflow/")


def test_empty_env_values_fall_back_to_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """A copied .env.example with empty values means defaults, not errors."""
    monkeypatch.setenv("ZAPFLOW_ZAPTEC_BASE_URL", "")
    assert ZaptecSettings(_env_file=None).base_url == "https://api.zaptec.com"


@pytest.mark.parametrize("url", ["api.zaptec.com", "ftp://x"], ids=["no-scheme", "ftp"])
def test_bad_base_url_is_a_clear_error(url: str) -> None:
    """A base URL without http(s) is refused at start-up with the reason."""
    with pytest.raises(ValueError, match="must start with http"):
        ZaptecSettings(_env_file=None, base_url=url)


def test_invalid_retry_policy_is_refused() -> None:
    """Nonsensical retry bounds fail fast."""
    with pytest.raises(ValueError, match="invalid retry policy"):
        RetryPolicy(max_attempts=0)
