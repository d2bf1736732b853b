"""The ingest flow's body end to end: the real azure-servicebus client, the local broker, DuckDB."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.ingest import ingest_rig, newest_per_key
from zapflow.ingest import ingest_for
from zapflow.simulator.broker import PublishFaults, encode_nbfx

FAULTS = PublishFaults(duplicate_every=5, malformed_every=7, out_of_order_every=11)


def test_everything_published_is_stored_or_quarantined_once(tmp_path: Path) -> None:
    """Duplicates, out-of-order and malformed bodies: every message settled, nothing lost or doubled."""
    with ingest_rig(tmp_path, faults=FAULTS) as rig:
        rig.cloud.step(1800)
        foreign = {
            "DeviceId": "ZAP999999",
            "DeviceType": 4,
            "ChargerId": "0f0f0f0f-1111-2222-3333-444444444444",
            "StateId": 710,
            "Timestamp": "2026-06-21T10:00:00",
            "ValueAsString": "3",
        }
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
