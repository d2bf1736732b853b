"""The ingest flow's body end to end: the real azure-servicebus client, the local broker, DuckDB."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.ingest import SUBSCRIPTION_PATH, ingest_rig, newest_per_key
from zapflow.clock import FakeClock
from zapflow.ingest import ingest_for, renew_subscription
from zapflow.servicebus import SourceRejected
from zapflow.simulator.broker import PublishFaults, encode_nbfx

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
        subs = rig.rows("SELECT last_activity_at, last_message_at, last_details_refresh_at FROM subscriptions")
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
