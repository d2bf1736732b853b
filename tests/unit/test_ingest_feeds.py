"""Where the ingest run reads from (user group or legacy feeds), and how feeds add up and renew."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from storage import Storage
from tests.unit.test_consumer import DETAILS
from zapflow.clock import FakeClock
from zapflow.domain.models import ConnectionDetails
from zapflow.ingest.run import IngestReport, feeds_for, plan_feeds, renewal_due
from zapflow.servicebus import ConsumerOptions, ConsumerStats, SourceRejected, SourceUnavailable
from zapflow.settings import IngestSettings
from zapflow.zaptec.errors import Forbidden, NotFound, ServerError


def _details(subscription: str) -> ConnectionDetails:
    return DETAILS.model_copy(update={"subscription": subscription})


@dataclass
class Zaptec:
    """The two details endpoints: the user group's answers come from a script, then repeat the last."""

    group_answers: list[Exception | ConnectionDetails] = field(default_factory=list)
    group_calls: int = 0
    installation_calls: list[str] = field(default_factory=list)

    def get_user_group_connection_details(self, _user_group_id: str) -> ConnectionDetails:
        """The next scripted answer."""
        self.group_calls += 1
        answer = self.group_answers.pop(0) if len(self.group_answers) > 1 else self.group_answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def get_installation_connection_details(self, installation_id: str) -> ConnectionDetails:
        """A legacy subscription named after the installation."""
        self.installation_calls.append(installation_id)
        return _details(f"legacy-{installation_id}")


def _plan(zaptec: Zaptec, clock: FakeClock, *, deadline: float = 3600.0, installations: list[str]) -> Any:
    return plan_feeds(
        zaptec,  # type: ignore[arg-type]
        user_group_id="group",
        installation_ids=installations,
        options=ConsumerOptions(backoff_initial_s=1.0, backoff_max_s=8.0),
        clock=clock,
        stop=threading.Event(),
        deadline=deadline,
    )


def test_a_blip_at_start_is_asked_again_before_choosing_legacy() -> None:
    """503 then 404 on the user group: the run still falls back to legacy (a guess would have stuck)."""
    zaptec = Zaptec(
        [ServerError("busy", status=503), ServerError("busy", status=503), NotFound("no messaging")]
    )
    clock = FakeClock()
    feeds = _plan(zaptec, clock, installations=["A", "b", "a"])
    assert [f.label for f in feeds] == ["installation a", "installation b"]  # one feed per installation
    assert clock.monotonic() == pytest.approx(3.0)  # waited 1 s, then 2 s
    assert feeds[1].details().subscription == "legacy-b"


def test_no_clear_answer_within_the_run_is_returned_not_raised() -> None:
    """The user group stays unreachable past the deadline: the run ends without guessing."""
    zaptec = Zaptec([ServerError("down", status=503)])
    clock = FakeClock()
    outcome = _plan(zaptec, clock, deadline=10.0, installations=["a"])
    assert isinstance(outcome, SourceUnavailable)
    assert clock.monotonic() == pytest.approx(10.0)  # kept asking until the deadline, not short of it
    assert "user group group" in str(outcome)


def test_the_probe_answer_serves_the_first_connect_and_later_connects_ask_again() -> None:
    """One details call fewer per run; every reconnect still fetches fresh details."""
    zaptec = Zaptec([_details("group-sub")])
    (feed,) = feeds_for(zaptec, user_group_id="group", installation_ids=["a"])  # type: ignore[arg-type]
    assert zaptec.group_calls == 1
    assert feed.details().subscription == "group-sub"
    assert zaptec.group_calls == 1
    feed.details()
    assert zaptec.group_calls == 2


def test_a_user_group_losing_messaging_mid_run_ends_the_run_for_a_new_choice() -> None:
    """404 after a good start: the feed asks for a re-plan and backs off; it does not fail the run."""
    zaptec = Zaptec([_details("group-sub"), NotFound("no messaging")])
    replans: list[bool] = []
    (feed,) = feeds_for(
        zaptec, user_group_id="group", installation_ids=["a"], replan=lambda: replans.append(True)
    )  # type: ignore[arg-type]
    feed.details()
    with pytest.raises(SourceUnavailable, match="the next run reads the legacy subscriptions"):
        feed.details()
    assert replans == [True]
    (alone,) = feeds_for(
        Zaptec([_details("g"), NotFound("gone")]), user_group_id="group", installation_ids=[]
    )  # type: ignore[arg-type]
    alone.details()
    with pytest.raises(SourceRejected, match="NotFound"):  # nothing to fall back to: permanent
        alone.details()


def test_refusals_are_permanent() -> None:
    """403 on the user group, or nothing to ask: `SourceRejected` with the reason."""
    with pytest.raises(SourceRejected, match="Forbidden"):
        feeds_for(Zaptec([Forbidden("no")]), user_group_id="group", installation_ids=["a"])  # type: ignore[arg-type]
    with pytest.raises(SourceRejected, match="no installation is set"):
        feeds_for(Zaptec([NotFound("none")]), user_group_id="group", installation_ids=[])  # type: ignore[arg-type]
    with pytest.raises(SourceRejected, match="no user group id"):
        feeds_for(Zaptec(), user_group_id=None, installation_ids=[])  # type: ignore[arg-type]


def test_feeds_add_up_and_the_failed_one_is_named() -> None:
    """Counts summed; a feed that never received is listed with its own error, and leads last_error."""
    ok = ConsumerStats(messages=5, stored=4, quarantined=1, connects=1, renewals=1, keys=["h/t/a"])
    ok.last_error = "a blip it recovered from"
    bad = ConsumerStats(failures=3, waited_s=7.0, last_error="connect refused")
    report = IngestReport.combined([("installation a", ok), ("installation b", bad)])
    assert (report.messages, report.stored, report.quarantined, report.failures) == (5, 4, 1, 3)
    assert (report.feeds, report.feeds_renewed) == (2, 1)
    assert report.feeds_failed == ["installation b: connect refused"]
    assert report.last_error == "connect refused"
    assert report.keys == ["h/t/a"]


def test_renewal_is_due_when_any_live_subscription_went_idle(tmp_path: Path) -> None:
    """The least recently used subscription decides; one gone for 14 days no longer does."""
    clock = FakeClock()
    storage = Storage.at(tmp_path)
    storage.ensure_ready()
    now = clock.now()
    settings = IngestSettings(_env_file=None)  # type: ignore[call-arg]

    def used(key: str, hours_ago: float) -> None:
        at = now - timedelta(hours=hours_ago)
        storage.write_batch(
            "subscriptions",
            [{"subscription_key": key, "updated_at": at, "last_activity_at": at}],
        )

    used("h/t/busy", 1)
    used("h/t/gone", 20 * 24)  # deleted at Zaptec long ago
    assert not renewal_due(storage, settings, now=now).due
    used("h/t/idle", 13)
    check = renewal_due(storage, settings, now=now)
    assert check.due
    assert check.last_activity_at == now - timedelta(hours=13)
    assert check.alert is None
    used("h/t/idle", 8 * 24)  # an older row for the same key does not win: the newest per key does
    assert renewal_due(storage, settings, now=now).last_activity_at == now - timedelta(hours=13)
    used("h/t/stale", 8 * 24)
    check = renewal_due(storage, settings, now=now)
    assert check.alert is not None
    assert "h/t/stale" in check.alert
    assert "8.0 days" in check.alert
