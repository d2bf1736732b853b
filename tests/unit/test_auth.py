"""Password-grant login: one token per account, renewed before expiry, logins serialised and spaced."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from zapflow.clock import FakeClock
from zapflow.settings import ZaptecSettings
from zapflow.zaptec import AccountRegistry, AuthenticationFailed, ConfigurationError, ZaptecClient
from zapflow.zaptec.recorded import RECORDED_INSTALLATION_ID, RecordedZaptec


def test_one_login_serves_many_calls(client: ZaptecClient, cloud: RecordedZaptec) -> None:
    """The token is cached: ten calls, one login."""
    for _ in range(10):
        client.get_installation(RECORDED_INSTALLATION_ID)
    assert cloud.logins == 1
    assert cloud.count("POST", "/oauth/token") == 1


def test_login_is_form_encoded_password_grant(client: ZaptecClient, cloud: RecordedZaptec) -> None:
    """`/oauth/token` gets grant_type=password, username, password; no scope."""
    client.get_installation(RECORDED_INSTALLATION_ID)
    (login,) = [r for r in cloud.requests if r.url.path == "/oauth/token"]
    assert login.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert b"grant_type=password" in login.content
    assert b"scope" not in login.content


def test_token_is_renewed_before_it_expires(
    client: ZaptecClient, cloud: RecordedZaptec, clock: FakeClock
) -> None:
    """Within the refresh margin of `expires_in` the client logs in again before calling."""
    client.get_installation(RECORDED_INSTALLATION_ID)
    clock.advance(86399 - 300 - 1)
    client.get_installation(RECORDED_INSTALLATION_ID)
    assert cloud.logins == 1
    clock.advance(2)
    client.get_installation(RECORDED_INSTALLATION_ID)
    assert cloud.logins == 2
    assert cloud.count("GET", f"/api/installation/{RECORDED_INSTALLATION_ID}") == 3  # never a 401


def test_short_lived_tokens_renew_half_way(
    make_client: Callable[..., ZaptecClient], cloud: RecordedZaptec, clock: FakeClock
) -> None:
    """A token that lives less than twice the margin is renewed after half its life."""
    cloud.token_lifetime_s = 100
    client = make_client()
    client.get_installation(RECORDED_INSTALLATION_ID)
    clock.advance(49)
    client.get_installation(RECORDED_INSTALLATION_ID)
    assert cloud.logins == 1
    clock.advance(2)
    client.get_installation(RECORDED_INSTALLATION_ID)
    assert cloud.logins == 2


def test_logins_are_spaced(client: ZaptecClient, cloud: RecordedZaptec, clock: FakeClock) -> None:
    """Two logins in a row are at least 1.1 s apart (the token endpoint allows ~1/s)."""
    client.get_installation(RECORDED_INSTALLATION_ID)
    clock.sleeps.clear()
    cloud.expire_tokens()
    client.get_installation(RECORDED_INSTALLATION_ID)
    assert cloud.logins == 2
    assert clock.sleeps == [pytest.approx(1.1)]


def test_bad_credentials_fail_once_without_retry(
    cloud: RecordedZaptec, clock: FakeClock, settings: ZaptecSettings
) -> None:
    """400 invalid_grant is permanent: one login attempt and a clear message."""
    wrong = settings.model_copy(update={"password": settings.password.__class__("wrong")})
    client = ZaptecClient.from_settings(
        wrong, transport=cloud.transport(), clock=clock, accounts=AccountRegistry()
    )
    with pytest.raises(AuthenticationFailed, match="refused the configured username/password"):
        client.get_installation(RECORDED_INSTALLATION_ID)
    assert cloud.count("POST", "/oauth/token") == 1
    assert cloud.count("GET", ".*") == 0


def test_token_endpoint_5xx_is_retried(client: ZaptecClient, cloud: RecordedZaptec) -> None:
    """A 503 from the token endpoint (seen during Zaptec's auth change) is retried; logins are idempotent."""
    cloud.fail_next("POST", "/oauth/token", status=503, times=2)
    client.get_installation(RECORDED_INSTALLATION_ID)
    assert cloud.count("POST", "/oauth/token") == 3
    assert cloud.logins == 1


def test_clients_of_one_account_share_one_token(
    cloud: RecordedZaptec, clock: FakeClock, settings: ZaptecSettings
) -> None:
    """Two clients built from the same settings share the account's token (one login)."""
    accounts = AccountRegistry()
    first = ZaptecClient.from_settings(settings, transport=cloud.transport(), clock=clock, accounts=accounts)
    second = ZaptecClient.from_settings(settings, transport=cloud.transport(), clock=clock, accounts=accounts)
    first.get_installation(RECORDED_INSTALLATION_ID)
    second.get_installation(RECORDED_INSTALLATION_ID)
    assert cloud.logins == 1


def test_concurrent_callers_log_in_once(
    cloud: RecordedZaptec, clock: FakeClock, settings: ZaptecSettings
) -> None:
    """Logins are serialised: eight threads starting together cause one login."""
    client = ZaptecClient.from_settings(
        settings, transport=cloud.transport(), clock=clock, accounts=AccountRegistry()
    )
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def work() -> None:
        barrier.wait()
        try:
            client.get_installation(RECORDED_INSTALLATION_ID)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert cloud.logins == 1


def test_missing_credentials_fail_at_start_up() -> None:
    """Building a client without credentials names the variables to set."""
    with pytest.raises(ConfigurationError, match="ZAPFLOW_ZAPTEC_USERNAME and ZAPFLOW_ZAPTEC_PASSWORD"):
        ZaptecClient.from_settings(ZaptecSettings(_env_file=None, username=None, password=None))
