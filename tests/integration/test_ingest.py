"""The ingest flow's body end to end: the real azure-servicebus client, the local broker, DuckDB."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from azure.servicebus import ServiceBusMessage

from storage import Storage
from tests.support.broker import SUBSCRIPTION_PATH, TOPIC, BrokerProcess, client_for
from tests.support.ingest import IngestRig, ingest_rig, newest_per_key
from tests.support.ingest_worker import local_details
from tests.support.processes import ROOT
from zapflow.balance.tick import TickReport, TickRequest, run_tick
from zapflow.balance.wiring import services_for
from zapflow.clock import FakeClock
from zapflow.domain.models import ConnectionDetails
from zapflow.ingest import OutboxSink, ingest_for, renew_subscription
from zapflow.servicebus import Consumer, ConsumerOptions, ReceivedMessage, SourceRejected, SourceUnavailable
from zapflow.servicebus.azure import AzureEventSource
from zapflow.simulator.broker import PublishFaults, encode_nbfx
from zapflow.simulator.devices import Model
from zapflow.simulator.scenarios import Scenario, scenario
from zapflow.simulator.world import ChargerSpec

DAY_S = 86_400.0
FOREIGN = {
    "DeviceId": "ZAP999999",
    "DeviceType": 4,
    "ChargerId": "0f0f0f0f-1111-2222-3333-444444444444",
    "StateId": 710,
    "Timestamp": "2026-06-21T10:00:00",
    "ValueAsString": "3",
}

FAULTS = PublishFaults(duplicate_every=5, malformed_every=7, out_of_order_every=11)


def test_everything_published_is_stored_or_quarantined_once(tmp_path: Path) -> None:
    """Duplicates, out-of-order and malformed bodies: every message settled, nothing lost or doubled."""
    with ingest_rig(tmp_path, faults=FAULTS) as rig:
        rig.cloud.step(1800)
        foreign = FOREIGN
        rig.broker.publish("zapflow-sim", [encode_nbfx(foreign)], message_ids=["foreign-1"])
        published = rig.pending()
        observations = len(rig.recorder.events)
        malformed = observations // FAULTS.malformed_every
        assert published == observations + observations // FAULTS.duplicate_every + malformed + 1

        report = ingest_for([rig.site], rig.settings, duration_s=600, drain=True, clock=rig.clock)

        assert report.messages == published
        assert report.stored + report.quarantined == published
        assert report.quarantined == malformed
        assert rig.pending() == 0
        assert rig.dead_letters() == 0
        distinct = {(e["ChargerId"], e["StateId"], e["Timestamp"]) for e in rig.recorder.events}
        stored = rig.rows("SELECT count(*) AS n FROM charger_events WHERE source = 'servicebus'")[0]["n"]
        assert stored == len(distinct) + 1
        quarantined = rig.rows("SELECT error, raw FROM event_quarantine")
        assert len(quarantined) == malformed
        assert all(q["raw"] and "xmlns" in q["error"] for q in quarantined)
        latest = {
            (r["charger_id"], r["state_id"]): r["value"]
            for r in rig.rows("SELECT charger_id, state_id, value FROM charger_state_latest")
        }
        assert latest == {**newest_per_key(rig.recorder.events), (foreign["ChargerId"], 710): "3"}
        flagged = rig.rows("SELECT DISTINCT charger_id FROM charger_events WHERE NOT known_installation")
        assert flagged == [{"charger_id": foreign["ChargerId"]}]
        assert report.unknown_chargers == 1
        renewals = rig.rows("SELECT reason, outcome FROM subscription_renewals")
        assert renewals == [{"reason": "start", "outcome": "ok"}]
        subs = rig.rows(
            "SELECT last_activity_at, last_message_at, last_details_refresh_at FROM subscriptions"
        )
        assert len(subs) == 1
        assert all(subs[0][k] is not None for k in subs[0]), subs


def test_idle_subscription_is_deleted_at_14_days_without_renewal(tmp_path: Path) -> None:
    """No receive for 14 simulated days: the subscription is gone and ingest fails permanently, saying so."""
    clock = FakeClock()
    with ingest_rig(tmp_path, broker_clock=clock) as rig:
        settings = rig.settings
        ingest_for([rig.site], settings, duration_s=60, drain=True, clock=clock)
        clock.advance(7 * DAY_S)
        check = renew_subscription([rig.site], settings, ingest_active=True, clock=clock)
        assert check.outcome == "skipped-ingest-active"
        assert check.alert is not None
        assert "7.0 days" in check.alert
        clock.advance(7 * DAY_S)
        with pytest.raises(SourceRejected, match="14 days without use"):
            ingest_for([rig.site], settings, duration_s=60, drain=True, clock=clock)


def test_daily_renewal_keeps_the_subscription_for_60_days(tmp_path: Path) -> None:
    """The daily renewal (a bounded drain) on each of 60 simulated days: alive, every renewal recorded."""
    clock = FakeClock()
    alerts: list[tuple[str, str, str]] = []
    with ingest_rig(tmp_path, broker_clock=clock) as rig:
        rig.ingest = {"max_wait_s": 0.1}
        settings = rig.settings
        outcomes = []
        for _ in range(60):
            clock.advance(DAY_S)
            report = renew_subscription(
                [rig.site], settings, ingest_active=False, clock=clock, on_alert=lambda *a: alerts.append(a)
            )
            outcomes.append(report.outcome)
        assert outcomes == ["renewed"] * 60
        assert not rig.broker.stats(SUBSCRIPTION_PATH).deleted
        rig.broker.publish("zapflow-sim", [encode_nbfx(FOREIGN)], message_ids=["after-60-days"])
        report = ingest_for([rig.site], settings, duration_s=60, drain=True, clock=clock)
        assert report.stored == 1
        renewals = rig.rows("SELECT reason, count(*) AS n FROM subscription_renewals GROUP BY 1")
        assert sorted((r["reason"], r["n"]) for r in renewals) == [("renew", 60), ("start", 1)]
    assert alerts == []


def _published_observations(rig: IngestRig, seconds: float) -> int:
    rig.cloud.step(seconds)
    return rig.pending()


def _stored_once(rig: IngestRig) -> None:
    distinct = {(e["ChargerId"], e["StateId"], e["Timestamp"]) for e in rig.recorder.events}
    rows = rig.rows(
        "SELECT count(*) AS n, count(DISTINCT (charger_id, state_id, observed_at)) AS d FROM charger_events"
    )
    assert rows == [{"n": len(distinct), "d": len(distinct)}]
    assert rig.pending() == 0


class _FailOnceSink(OutboxSink):
    """Makes its first batch durable, then fails as a full disk would: the batch must come back."""

    failed = False

    def land(self, key: str, messages: Sequence[ReceivedMessage], *, received_at: datetime) -> int:
        quarantined = super().land(key, messages, received_at=received_at)
        if not self.failed:
            self.failed = True
            raise OSError(28, "No space left on device")
        return quarantined


def test_abandoned_batch_is_redelivered_and_stored_once(tmp_path: Path) -> None:
    """A batch the sink could not finish is abandoned, redelivered (delivery count 1) and stored once."""
    with ingest_rig(tmp_path) as rig:
        published = _published_observations(rig, 600)
        storage = rig.storage
        storage.ensure_ready()
        sink = _FailOnceSink(storage, chargers={}, clock=rig.clock)
        consumer = Consumer(
            lambda: local_details(rig.broker.port),
            AzureEventSource,
            sink,
            clock=rig.clock,
            options=ConsumerOptions(batch_size=20, max_wait_s=1.0),
        )
        stats = consumer.run(duration_s=600, drain=True)
        assert stats.failures == 1
        assert "No space left" in (stats.last_error or "")
        assert stats.messages == published  # the failed batch was not counted as done
        _stored_once(rig)
        assert rig.dead_letters() == 0


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_consumer_killed_after_the_outbox_write_loses_nothing_and_stores_once(tmp_path: Path) -> None:
    """SIGKILL between the durable write and complete: the batch is redelivered and stored once."""
    with ingest_rig(tmp_path) as rig:
        _published_observations(rig, 600)
        rig.storage.ensure_ready()
        worker = subprocess.run(  # noqa: S603 - our own test module
            [sys.executable, "-m", "tests.support.ingest_worker", str(rig.data_dir), str(rig.broker.port)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert worker.returncode == -signal.SIGKILL, worker.stderr
        assert worker.stdout.startswith("landed ")
        assert rig.storage.outbox.pending()["charger_events"]  # durable, not yet merged
        report = ingest_for([rig.site], rig.settings, duration_s=600, drain=True, clock=rig.clock)
        assert report.messages == len(rig.recorder.events)  # the killed batch came back with the rest
        _stored_once(rig)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_broker_killed_mid_stream_the_consumer_reconnects_and_nothing_is_lost(tmp_path: Path) -> None:
    """SIGKILL the broker while the consumer drains it, restart it: every message stored exactly once."""
    process = BrokerProcess(tmp_path / "broker")
    port = process.start()
    bodies = [
        encode_nbfx({**FOREIGN, "StateId": 700 + i % 50, "Timestamp": f"2026-06-21T10:{i // 50:02d}:00"})
        for i in range(400)
    ]
    try:
        with client_for(port) as client, client.get_topic_sender(TOPIC) as sender:
            for start in range(0, len(bodies), 100):
                batch = sender.create_message_batch()
                for body in bodies[start : start + 100]:
                    batch.add_message(ServiceBusMessage(body))
                sender.send_messages(batch)
        storage = Storage.at(tmp_path / "data")
        storage.ensure_ready()
        clock = FakeClock()
        sink = OutboxSink(storage, chargers={}, clock=clock)
        consumer = Consumer(
            lambda: local_details(process.port),
            AzureEventSource,
            sink,
            clock=clock,
            options=ConsumerOptions(batch_size=10, max_wait_s=1.0),
        )
        stop = threading.Event()
        thread = threading.Thread(target=lambda: consumer.run(duration_s=1e9, stop=stop))
        thread.start()
        try:
            _until(lambda: consumer.stats.messages >= 100)
            process.kill()
            _until(lambda: consumer.stats.failures >= 1)
            process.start()
            _until(lambda: _count(storage) == len(bodies))
        finally:
            stop.set()
            thread.join(timeout=60)
        assert consumer.stats.connects >= 2
        assert _count(storage) == len(bodies)
    finally:
        process.stop()
    gc.collect()


def _count(storage: Storage) -> int:
    return int(storage.read("SELECT count(*) AS n FROM charger_events").to_pylist()[0]["n"])


def _until(condition: Callable[[], bool], timeout_s: float = 120.0) -> None:
    """Poll a condition of real processes (the broker and the SDK run on real time)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


class _OnEmpty:
    """The real source, calling `on_empty(self)` at every receive that comes back empty."""

    def __init__(self, inner: AzureEventSource, on_empty: Callable[[_OnEmpty], None]) -> None:
        self.inner = inner
        self.on_empty = on_empty

    def receive(self, max_messages: int, max_wait_s: float) -> list[ReceivedMessage]:
        got = self.inner.receive(max_messages, max_wait_s)
        if not got:
            self.on_empty(self)
        return got

    def complete(self, messages: Sequence[ReceivedMessage]) -> None:
        self.inner.complete(messages)

    def abandon(self, messages: Sequence[ReceivedMessage]) -> None:
        self.inner.abandon(messages)

    def close(self) -> None:
        self.inner.close()


def _sigterm_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)  # as `prefect` or systemd stopping the run would


def test_sigterm_ends_a_stream_run_cleanly_with_everything_stored_and_merged(tmp_path: Path) -> None:
    """A run without end (no drain, an hour on a clock that does not move) stops on SIGTERM.

    The report comes back, every message is completed and merged, and the process's own SIGTERM
    handler is back in place.
    """
    with ingest_rig(tmp_path, faults=FAULTS) as rig:
        rig.cloud.step(900)
        published = rig.pending()
        sources: list[AzureEventSource] = []
        signalled: list[_OnEmpty] = []

        def once_drained(source: _OnEmpty) -> None:
            if not signalled:
                signalled.append(source)
                _sigterm_self()

        def connect(details: ConnectionDetails) -> _OnEmpty:
            sources.append(AzureEventSource(details))
            return _OnEmpty(sources[-1], once_drained)

        before = signal.getsignal(signal.SIGTERM)
        report = ingest_for([rig.site], rig.settings, duration_s=3600, clock=rig.clock, connect=connect)

        assert [s.inner for s in signalled] == sources  # one connection, ended by the signal
        assert signal.getsignal(signal.SIGTERM) is before
        assert report.messages == published
        assert report.failures == 0
        _stored_once(rig)
        assert not rig.storage.outbox.pending().get("charger_events")  # the final flush merged


def test_the_tick_reads_ingested_state_while_ingest_is_live_and_polls_otherwise(tmp_path: Path) -> None:
    """Poll before ingest ran; events (no state polls) while it is live; poll again once it is not."""
    with ingest_rig(tmp_path) as rig, httpx.Client() as http:
        rig.cloud.step(300)
        settings = rig.settings
        services = services_for(rig.site, settings, http=http, clock=rig.clock)

        def tick(minute: int) -> TickReport:
            at = rig.clock.now().replace(second=0, microsecond=0) + timedelta(minutes=minute)
            return run_tick(
                TickRequest(rig.site.installation_id, scheduled_at=at, dry_run=True), rig.site, services
            )

        def state_polls(report: TickReport) -> int:
            return sum(1 for c in report.api_calls if c["endpoint"] == "GET /api/chargers/{id}/state")

        before = tick(0)
        ingest_for([rig.site], settings, duration_s=600, drain=True, clock=rig.clock)
        live = tick(1)
        rig.clock.advance(settings.ingest.live_within_s + 1)
        stale = tick(2)

    assert (before.state_source, live.state_source, stale.state_source) == ("poll", "events", "poll")
    assert state_polls(before) == state_polls(stale) == 1
    assert state_polls(live) == 0
    assert len(live.api_calls) < len(before.api_calls)
    recorded = (
        Storage.at(rig.data_dir).read("SELECT state_source FROM ticks ORDER BY scheduled_at").to_pylist()
    )
    assert [r["state_source"] for r in recorded] == ["poll", "events", "poll"]


def _home_and_cabin() -> Scenario:
    """sunny-day plus a second installation (same sun and fuse) with a charger of its own."""
    base = scenario("sunny-day")
    cabin = replace(
        base.installations[0], name="Cabin", chargers=(ChargerSpec(name="Cabin Go", model=Model.GO),)
    )
    return replace(
        base, installations=(base.installations[0], cabin), sites={**base.sites, "Cabin": base.sites["Home"]}
    )


def test_legacy_fallback_drains_one_subscription_per_installation(tmp_path: Path) -> None:
    """User group without messaging: each installation's legacy subscription gets a consumer of its own."""
    with ingest_rig(tmp_path, chosen=_home_and_cabin(), legacy=True) as rig:
        rig.cloud.step(900)
        legacy = [rig.cloud.legacy_subscription(s.installation_id) for s in rig.sites]
        assert len(set(legacy)) == 2
        published = rig.pending(legacy[0])
        assert published > 0
        assert rig.pending(legacy[1]) == published  # the local broker fans every event out

        report = ingest_for(rig.sites, rig.settings, duration_s=600, drain=True, clock=rig.clock)

        assert (report.feeds, report.feeds_renewed) == (2, 2)
        assert sorted(report.keys) == sorted(f"127.0.0.1/zapflow-sim/{name}" for name in legacy)
        assert report.messages == 2 * published
        assert [rig.pending(name) for name in legacy] == [0, 0]
        installations = rig.rows(
            "SELECT installation_id, bool_and(known_installation) AS known FROM charger_events "
            "GROUP BY ALL ORDER BY installation_id"
        )
        ids = sorted(s.installation_id for s in rig.sites)
        assert installations == [{"installation_id": i, "known": True} for i in ids]
        distinct = {(e["ChargerId"], e["StateId"], e["Timestamp"]) for e in rig.recorder.events}
        assert rig.rows("SELECT count(*) AS n FROM charger_events") == [{"n": len(distinct)}]
        keys = rig.rows("SELECT subscription_key FROM subscriptions ORDER BY ALL")
        assert keys == [{"subscription_key": k} for k in sorted(report.keys)]


def test_legacy_feed_refused_for_one_installation_ends_the_whole_run(tmp_path: Path) -> None:
    """403 on one installation's legacy details: the run stops every feed and fails with the reason."""
    chosen = _home_and_cabin()
    cabin = replace(chosen.installations[1], user_roles=1)  # a plain user: no messaging details
    with ingest_rig(
        tmp_path, chosen=replace(chosen, installations=(chosen.installations[0], cabin)), legacy=True
    ) as rig:
        rig.cloud.step(300)
        # An hour on a clock that does not move: only the refusal stopping every feed ends the run.
        with pytest.raises(SourceRejected, match=f"installation {rig.sites[1].installation_id}: Forbidden"):
            ingest_for(rig.sites, rig.settings, duration_s=3600, clock=rig.clock)
        assert not [t.name for t in threading.enumerate() if t.name.startswith("zapflow-ingest")]


def test_renewal_fails_when_one_legacy_subscription_cannot_be_reached(tmp_path: Path) -> None:
    """Two legacy feeds, one unreachable: the renewal is `failed`, and the alert names that one."""
    with ingest_rig(tmp_path, chosen=_home_and_cabin(), legacy=True) as rig:
        rig.cloud.step(300)
        home, cabin = (rig.cloud.legacy_subscription(s.installation_id) for s in rig.sites)
        drained = threading.Event()

        def connect(details: ConnectionDetails) -> _OnEmpty:
            if details.subscription == cabin:
                # Fail only once the home feed is done: the feeds share one fake clock, and this
                # feed's backoff would otherwise run the clock past the home feed's deadline.
                assert drained.wait(60)
                raise SourceUnavailable("connection refused")
            return _OnEmpty(AzureEventSource(details), lambda _source: drained.set())

        alerts: list[tuple[str, str, str]] = []
        report = renew_subscription(
            rig.sites,
            rig.settings,
            ingest_active=False,
            clock=rig.clock,
            connect=connect,
            on_alert=lambda *alert: alerts.append(alert),
        )

        assert report.outcome == "failed"
        assert report.ingest is not None
        assert (report.ingest.feeds, report.ingest.feeds_renewed) == (2, 1)
        assert [kind for kind, _key, _message in alerts] == ["renewal-failed"]
        cabin_id = rig.sites[1].installation_id
        assert f"1 of 2 subscription(s): installation {cabin_id}: connection refused" in alerts[0][2]
        assert rig.pending(home) == 0
        assert rig.pending(cabin) > 0


def test_sigterm_ends_a_run_of_several_legacy_feeds_cleanly(tmp_path: Path) -> None:
    """Two feeds in threads, no end in sight: SIGTERM stops both; everything completed and merged."""
    with ingest_rig(tmp_path, chosen=_home_and_cabin(), legacy=True) as rig:
        rig.cloud.step(600)
        subscriptions = [rig.cloud.legacy_subscription(s.installation_id) for s in rig.sites]
        published = rig.pending(subscriptions[0])
        drained: set[int] = set()
        lock = threading.Lock()

        def last_one_drained(source: _OnEmpty) -> None:
            with lock:  # the feeds run in threads; the signal goes out once, from the last one
                if id(source) not in drained:
                    drained.add(id(source))
                    if len(drained) == len(subscriptions):
                        _sigterm_self()  # from a feed's thread: handled by the main one

        def connect(details: ConnectionDetails) -> _OnEmpty:
            return _OnEmpty(AzureEventSource(details), last_one_drained)

        before = signal.getsignal(signal.SIGTERM)
        report = ingest_for(rig.sites, rig.settings, duration_s=3600, clock=rig.clock, connect=connect)

        assert signal.getsignal(signal.SIGTERM) is before
        assert len(drained) == 2
        assert (report.feeds, report.feeds_renewed, report.failures) == (2, 2, 0)
        assert report.messages == 2 * published
        assert [rig.pending(name) for name in subscriptions] == [0, 0]
        assert not rig.storage.outbox.pending().get("charger_events")  # the final flushes merged
