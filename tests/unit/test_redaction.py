"""No password, token or SAS key in logs, reprs, exception messages or pickled exceptions."""

from __future__ import annotations

import logging
import pickle

import httpx
import pytest
from pydantic import SecretStr

from zapflow.clock import FakeClock
from zapflow.settings import AppSettings, ZaptecSettings
from zapflow.zaptec import (
    AccountRegistry,
    InstallationUpdate,
    RetryPolicy,
    ZaptecClient,
    ZaptecError,
)
from zapflow.zaptec.errors import redact
from zapflow.zaptec.recorded import RECORDED_INSTALLATION_ID, RecordedZaptec

PASSWORD = "hunter2-Very-Secret-Pw"  # noqa: S105 - a canary the test hunts for
INSTALLATION = f"/api/installation/{RECORDED_INSTALLATION_ID}"


def _read_timeout(request: httpx.Request) -> Exception:
    return httpx.ReadTimeout("timed out", request=request)


def _run_scenario(cloud: RecordedZaptec, clock: FakeClock) -> tuple[list[object], list[ZaptecError]]:
    """Drive logins, re-logins and every failure kind; return the objects and errors produced."""
    settings = ZaptecSettings(base_url="https://api.zaptec.test", username=cloud.username, password=PASSWORD)
    accounts = AccountRegistry()
    client = ZaptecClient.from_settings(
        settings,
        transport=cloud.transport(),
        clock=clock,
        accounts=accounts,
        retry=RetryPolicy(max_attempts=2),
    )
    errors: list[ZaptecError] = []

    def expect_error(call: object) -> None:
        try:
            call()  # type: ignore[operator]
        except ZaptecError as exc:
            errors.append(exc)
        else:
            pytest.fail("expected a ZaptecError")

    client.get_installation(RECORDED_INSTALLATION_ID)
    cloud.expire_tokens()
    client.get_installation(RECORDED_INSTALLATION_ID)  # 401 -> re-login with a second token
    cloud.fail_next("GET", INSTALLATION, status=429, headers={"Retry-After": "1"})
    client.get_installation(RECORDED_INSTALLATION_ID)
    cloud.fail_next("GET", INSTALLATION, error=_read_timeout, times=2)
    expect_error(lambda: client.get_installation(RECORDED_INSTALLATION_ID))
    # A server that echoes the bearer token or the password in an error body.
    echo = {"Code": 500, "Details": f"Bearer recorded-token-2 password={PASSWORD}"}
    cloud.fail_next("GET", INSTALLATION, status=503, body=echo, times=2)
    expect_error(lambda: client.get_installation(RECORDED_INSTALLATION_ID))
    cloud.fail_next("POST", f"{INSTALLATION}/update", status=502, body=echo)
    expect_error(
        lambda: client.update_installation(
            RECORDED_INSTALLATION_ID, InstallationUpdate(available_current_a=8), max_current_a=25
        )
    )
    cloud.fail_next("GET", INSTALLATION, status=403, body=echo)
    expect_error(lambda: client.get_installation(RECORDED_INSTALLATION_ID))
    details = client.get_user_group_connection_details("group")
    # A token response that does not validate: its preview must not carry the token.
    cloud.expire_tokens()
    cloud.fail_next(
        "POST", "/oauth/token", status=200, body={"access_token": "recorded-token-9", "expires_in": "soon"}
    )
    expect_error(lambda: client.get_installation(RECORDED_INSTALLATION_ID))
    wrong = settings.model_copy(update={"password": SecretStr(PASSWORD + "-wrong")})
    other = ZaptecClient.from_settings(
        wrong, transport=cloud.transport(), clock=clock, accounts=AccountRegistry()
    )
    expect_error(lambda: other.get_installation(RECORDED_INSTALLATION_ID))
    provider = accounts.token_provider(settings.account_key, lambda: pytest.fail("provider exists"))
    return [client, settings, wrong, provider, details, AppSettings(zaptec=settings)], errors


def test_secrets_never_leak(caplog: pytest.LogCaptureFixture, clock: FakeClock) -> None:
    """Every log line (httpx's included), repr, message and pickle is free of secrets."""
    caplog.set_level(logging.DEBUG)
    cloud = RecordedZaptec(clock=clock, password=PASSWORD)
    objects, errors = _run_scenario(cloud, clock)
    assert len(errors) == 6
    tokens = [f"recorded-token-{n}" for n in range(1, cloud.logins + 1)] + ["recorded-token-9"]
    sas_key = cloud.connection_details["Password"]
    # The scenario really used these secrets on the wire (so the checks below can fail).
    sent = b" ".join(r.headers.get("Authorization", "").encode() + r.content for r in cloud.requests)
    assert PASSWORD.encode() in sent
    assert tokens[0].encode() in sent
    assert tokens[1].encode() in sent
    haystacks: list[bytes] = [caplog.text.encode()]
    haystacks += [repr(o).encode() for o in objects] + [str(o).encode() for o in objects]
    for exc in errors:
        haystacks += [str(exc).encode(), repr(exc).encode(), pickle.dumps(exc), repr(vars(exc)).encode()]
    for secret in (PASSWORD, sas_key, *tokens):
        for haystack in haystacks:
            assert secret.encode() not in haystack


def test_pickled_errors_keep_their_meaning() -> None:
    """An unpickled error is the same class with the same message and attributes."""
    from zapflow.zaptec import AmbiguousWrite, RateLimited  # noqa: PLC0415 - local to this check

    for original in (
        RateLimited("slow down", retry_after_s=2.0),
        AmbiguousWrite("maybe", endpoint="POST /x", payload={"availableCurrent": 6.0}),
    ):
        copy = pickle.loads(pickle.dumps(original))  # noqa: S301 - our own bytes
        assert type(copy) is type(original)
        assert str(copy) == str(original)
        assert vars(copy) == vars(original)


def test_the_httpx_error_would_have_leaked_the_token() -> None:
    """Why errors drop their httpx cause: a pickled httpx error carries the Authorization header."""
    request = httpx.Request("GET", "https://api.zaptec.test/x", headers={"Authorization": "Bearer tok-123"})
    leaked = pickle.dumps(httpx.ReadTimeout("timed out", request=request).request)
    assert b"tok-123" in leaked


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ('{"access_token":"abc.def","expires_in":1}', "abc.def"),
        ('{"Password": "sas-key=="}', "sas-key=="),
        ("Authorization: Bearer eyJhbGciOi.x-y_z", "eyJhbGciOi"),
        ("Endpoint=sb://h/;SharedAccessKeyName=n;SharedAccessKey=k3y==", "k3y=="),
        ("grant_type=password&username=u&password=p%40ss", "p%40ss"),
    ],
    ids=["token-json", "password-json", "bearer", "connection-string", "form"],
)
def test_redact_masks_secret_shapes(text: str, secret: str) -> None:
    """Secret-looking pairs are masked even when the value is not known in advance."""
    assert secret not in redact(text)


def test_redact_masks_known_values_and_caps_length() -> None:
    """Known secret values are replaced anywhere, and long previews are cut."""
    assert "s3cr3t" not in redact("prefix s3cr3t suffix", "s3cr3t")
    assert len(redact("x" * 10_000)) < 400
