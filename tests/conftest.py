"""Shared fixtures; every test is marked with its tier from the folder it lives in."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from zapflow.clock import FakeClock
from zapflow.settings import ZaptecSettings
from zapflow.zaptec import AccountRegistry, ApiCall, RetryPolicy, ZaptecClient
from zapflow.zaptec.recorded import RecordedZaptec

_TIERS = {"unit": pytest.mark.unit, "integration": pytest.mark.integration, "flows": pytest.mark.flows}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by folder so `-m unit` / `-m integration` select tiers."""
    for item in items:
        tier = Path(str(item.fspath)).parent.name
        if tier in _TIERS:
            item.add_marker(_TIERS[tier])


@pytest.fixture
def clock() -> FakeClock:
    """A clock that only moves when the code under test sleeps or a test advances it."""
    return FakeClock()


@pytest.fixture
def cloud(clock: FakeClock) -> RecordedZaptec:
    """The recorded Zaptec cloud on the fake clock."""
    return RecordedZaptec(clock=clock)


@pytest.fixture
def settings(cloud: RecordedZaptec) -> ZaptecSettings:
    """Settings for the recorded cloud's account."""
    return ZaptecSettings(
        base_url="https://api.zaptec.test", username=cloud.username, password=cloud.password
    )


@pytest.fixture
def calls() -> list[ApiCall]:
    """Collects the `ApiCall` records the client reports."""
    return []


@pytest.fixture
def make_client(
    cloud: RecordedZaptec, clock: FakeClock, settings: ZaptecSettings, calls: list[ApiCall]
) -> Callable[..., ZaptecClient]:
    """Build clients on the recorded cloud; each test gets its own account registry."""
    accounts = AccountRegistry()

    def make(*, retry: RetryPolicy | None = None, page_size: int = 100) -> ZaptecClient:
        client = ZaptecClient.from_settings(
            settings,
            transport=cloud.transport(),
            clock=clock,
            accounts=accounts,
            retry=retry or RetryPolicy(),
            on_call=calls.append,
        )
        client._page_size = page_size
        client._rng = random.Random(7)  # noqa: S311 - deterministic jitter for tests
        return client

    return make


@pytest.fixture
def client(make_client: Callable[..., ZaptecClient]) -> ZaptecClient:
    """A client with default retries on the recorded cloud."""
    return make_client()
