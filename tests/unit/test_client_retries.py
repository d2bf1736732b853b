"""Retry and failure semantics: what is retried, what never is, and that a write never lands twice."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from zapflow.clock import FakeClock
from zapflow.zaptec import (
    AmbiguousWrite,
    ApiCall,
    AuthenticationFailed,
    BadRequest,
    Forbidden,
    InstallationUpdate,
    ModeNotControllable,
    NotFound,
    RateLimited,
    RetryPolicy,
    ServerError,
    TransportFailure,
    ZaptecClient,
)
from zapflow.zaptec.recorded import RECORDED_INSTALLATION_ID, RecordedZaptec

INSTALLATION = f"/api/installation/{RECORDED_INSTALLATION_ID}"
UPDATE = f"{INSTALLATION}/update"
APM_ID = "6f1c4d4e-7a55-4f0e-9a1e-2c9f0e1d3a77"


def _read_timeout(request: httpx.Request) -> Exception:
    return httpx.ReadTimeout("read timed out", request=request)


def _connect_error(request: httpx.Request) -> Exception:
    return httpx.ConnectError("connection refused", request=request)


def _remote_protocol_error(request: httpx.Request) -> Exception:
    return httpx.RemoteProtocolError("server disconnected", request=request)


def _write(client: ZaptecClient) -> None:
    client.update_installation(
        RECORDED_INSTALLATION_ID, InstallationUpdate(available_current_a=10.0), max_current_a=25.0
    )


def test_401_triggers_one_relogin_then_succeeds(client: ZaptecClient, cloud: RecordedZaptec) -> None:
    """A revoked token costs one re-login and one repeated request."""
    client.get_installation(RECORDED_INSTALLATION_ID)
    cloud.expire_tokens()
    client.get_installation(RECORDED_INSTALLATION_ID)
    assert cloud.logins == 2
    assert cloud.count("GET", INSTALLATION) == 3


def test_401_after_relogin_is_authentication_failed(client: ZaptecClient, cloud: RecordedZaptec) -> None:
    """A token refused twice in a row is not retried further."""
    cloud.fail_next("GET", INSTALLATION, status=401, times=2)
    with pytest.raises(AuthenticationFailed, match="401 again"):
        client.get_installation(RECORDED_INSTALLATION_ID)
    assert cloud.count("GET", INSTALLATION) == 2
    assert cloud.logins == 2


def test_429_waits_retry_after_on_the_clock(
    client: ZaptecClient, cloud: RecordedZaptec, clock: FakeClock
) -> None:
    """Retry-After: 7 makes the client wait exactly 7 s (fake clock) before trying again."""
    client.get_installation(RECORDED_INSTALLATION_ID)  # log in first: only the 429 wait remains
    clock.sleeps.clear()
    cloud.fail_next("GET", INSTALLATION, status=429, headers={"Retry-After": "7"})
    client.get_installation(RECORDED_INSTALLATION_ID)
    assert clock.sleeps == [7.0]
    assert cloud.count("GET", INSTALLATION) == 3


@pytest.mark.parametrize("status", [500, 502, 503, 504, 524], ids=lambda s: f"http-{s}")
def test_get_retries_5xx(
    client: ZaptecClient, cloud: RecordedZaptec, calls: list[ApiCall], status: int
) -> None:
    """Every 5xx on a read (empty body or nginx HTML) is retried until it succeeds."""
    cloud.fail_next("GET", INSTALLATION, status=status, body=b"<html>nginx</html>", times=2)
    assert client.get_installation(RECORDED_INSTALLATION_ID).name == "Home"
    assert cloud.count("GET", INSTALLATION) == 3
    assert calls[-1].attempts == 3


@pytest.mark.parametrize(
    "error",
    [_read_timeout, _connect_error, _remote_protocol_error],
    ids=["read-timeout", "connect", "protocol"],
)
def test_get_retries_network_failures(
    client: ZaptecClient, cloud: RecordedZaptec, error: Callable[[httpx.Request], Exception]
) -> None:
    """Timeouts and connection errors on a read are retried."""
    cloud.fail_next("GET", INSTALLATION, error=error, times=2)
    assert client.get_installation(RECORDED_INSTALLATION_ID).name == "Home"
    assert cloud.count("GET", INSTALLATION) == 3


def test_get_gives_up_after_max_attempts(
    make_client: Callable[..., ZaptecClient], cloud: RecordedZaptec
) -> None:
    """Retries are bounded by the attempt count, and the last error surfaces."""
    client = make_client(retry=RetryPolicy(max_attempts=4, max_total_s=3600))
    cloud.fail_next("GET", INSTALLATION, status=503, times=100)
    with pytest.raises(ServerError) as info:
        client.get_installation(RECORDED_INSTALLATION_ID)
    assert info.value.status == 503
    assert cloud.count("GET", INSTALLATION) == 4


def test_get_gives_up_when_the_time_budget_is_spent(
    make_client: Callable[..., ZaptecClient], cloud: RecordedZaptec, clock: FakeClock
) -> None:
    """A retry whose wait would pass the total-time budget is not started."""
    client = make_client(retry=RetryPolicy(max_attempts=100, max_total_s=20))
    client.get_installation(RECORDED_INSTALLATION_ID)
    started = clock.monotonic()
    cloud.fail_next("GET", INSTALLATION, status=429, headers={"Retry-After": "8"}, times=100)
    with pytest.raises(RateLimited):
        client.get_installation(RECORDED_INSTALLATION_ID)
    assert cloud.count("GET", INSTALLATION) == 1 + 3  # waits 8 + 8 fit in 20 s, a third would not
    assert clock.monotonic() - started <= 20


def test_retries_off_means_one_attempt(
    make_client: Callable[..., ZaptecClient], cloud: RecordedZaptec
) -> None:
    """`RetryPolicy.off()` sends each request once."""
    client = make_client(retry=RetryPolicy.off())
    cloud.fail_next("GET", INSTALLATION, status=503)
    with pytest.raises(ServerError):
        client.get_installation(RECORDED_INSTALLATION_ID)
    assert cloud.count("GET", INSTALLATION) == 1


def test_backoff_is_jittered_and_growing(
    client: ZaptecClient, cloud: RecordedZaptec, clock: FakeClock
) -> None:
    """Waits between 5xx retries grow exponentially within their jitter band."""
    client.get_installation(RECORDED_INSTALLATION_ID)
    clock.sleeps.clear()
    cloud.fail_next("GET", INSTALLATION, status=503, times=4)
    client.get_installation(RECORDED_INSTALLATION_ID)
    policy = RetryPolicy()
    for attempt, wait in enumerate(clock.sleeps, start=1):
        ceiling = policy.initial_backoff_s * 2 ** (attempt - 1)
        assert (1 - policy.jitter) * ceiling <= wait <= ceiling


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (400, {"title": "bad"}, BadRequest),
        (403, None, Forbidden),
        (404, None, NotFound),
        (500, {"Code": 527, "Details": "Cannot update installation when using APM"}, ModeNotControllable),
    ],
    ids=["400", "403", "404", "500-code-527"],
)
def test_permanent_errors_are_never_retried(
    client: ZaptecClient, cloud: RecordedZaptec, status: int, body: object, error: type[Exception]
) -> None:
    """400/403/404 and APM's 527 fail after exactly one request."""
    cloud.fail_next("GET", INSTALLATION, status=status, body=body)
    with pytest.raises(error):
        client.get_installation(RECORDED_INSTALLATION_ID)
    assert cloud.count("GET", INSTALLATION) == 1


def test_apm_installation_refuses_write_once(client: ZaptecClient, cloud: RecordedZaptec) -> None:
    """A write to an installation in APM mode raises ModeNotControllable after one POST."""
    with pytest.raises(ModeNotControllable, match="Code 527"):
        client.update_installation(APM_ID, InstallationUpdate(available_current_a=10.0), max_current_a=32.0)
    assert cloud.count("POST", f"/api/installation/{APM_ID}/update") == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504], ids=lambda s: f"http-{s}")
def test_post_5xx_is_ambiguous_after_one_post(
    client: ZaptecClient, cloud: RecordedZaptec, calls: list[ApiCall], status: int
) -> None:
    """A 5xx on the write may have landed: AmbiguousWrite, and no second POST."""
    cloud.fail_next("POST", UPDATE, status=status, body={"Code": 520, "Details": None, "StackTrace": None})
    with pytest.raises(AmbiguousWrite) as info:
        _write(client)
    assert cloud.count("POST", UPDATE) == 1
    assert info.value.payload == {"availableCurrent": 10.0}
    assert calls[-1].error == "AmbiguousWrite"
    assert calls[-1].status == status


@pytest.mark.parametrize(
    "error", [_read_timeout, _remote_protocol_error], ids=["read-timeout", "server-disconnected"]
)
def test_post_failure_after_sending_is_ambiguous(
    client: ZaptecClient, cloud: RecordedZaptec, error: Callable[[httpx.Request], Exception]
) -> None:
    """A read timeout or a dropped connection after sending may have landed: one POST only."""
    cloud.fail_next("POST", UPDATE, error=error, times=5)
    with pytest.raises(AmbiguousWrite):
        _write(client)
    assert cloud.count("POST", UPDATE) == 1


def test_post_connect_error_is_retried(client: ZaptecClient, cloud: RecordedZaptec) -> None:
    """A POST that never reached Zaptec (connect error) is sent again and lands once."""
    cloud.fail_next("POST", UPDATE, error=_connect_error, times=2)
    _write(client)
    assert cloud.count("POST", UPDATE) == 3
    assert client.get_installation(RECORDED_INSTALLATION_ID).available_current_a == 10.0


def test_post_connect_error_exhausted_is_not_ambiguous(
    make_client: Callable[..., ZaptecClient], cloud: RecordedZaptec
) -> None:
    """When every attempt failed to connect, nothing can have landed: TransportFailure, not ambiguous."""
    client = make_client(retry=RetryPolicy(max_attempts=3))
    cloud.fail_next("POST", UPDATE, error=_connect_error, times=10)
    with pytest.raises(TransportFailure) as info:
        _write(client)
    assert not info.value.reached_server
    assert cloud.count("POST", UPDATE) == 3


def test_post_429_is_retried_after_retry_after(
    client: ZaptecClient, cloud: RecordedZaptec, clock: FakeClock
) -> None:
    """A rate-limited POST was rejected unprocessed, so it is sent again after Retry-After."""
    client.get_installation(RECORDED_INSTALLATION_ID)
    clock.sleeps.clear()
    cloud.fail_next("POST", UPDATE, status=429, headers={"Retry-After": "1"})
    _write(client)
    assert cloud.count("POST", UPDATE) == 2
    assert clock.sleeps == [1.0]


def test_post_401_relogs_in_and_sends_once_more(client: ZaptecClient, cloud: RecordedZaptec) -> None:
    """A 401 on the write means it was refused unprocessed: re-login, then one more POST."""
    client.get_installation(RECORDED_INSTALLATION_ID)
    cloud.expire_tokens()
    _write(client)
    assert cloud.count("POST", UPDATE) == 2
    assert cloud.logins == 2
