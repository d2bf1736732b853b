"""The balance tick against the simulated cloud (in process) and a real DuckDB in a temp dir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.balance import rig
from tests.support.processes import holding
from zapflow.domain.policy import PolicyMode
from zapflow.simulator.faults import ServerErrorBurst
from zapflow.simulator.scenarios import scenario
from zapflow.zaptec.errors import RateLimited


def _count(r, table: str) -> int:  # noqa: ANN001 - a Rig
    return int(r.rows(f"SELECT count(*) AS n FROM {table}")[0]["n"])  # noqa: S608 - our own table names


def test_a_tick_records_every_part_and_writes_once(tmp_path: Path) -> None:
    """Snapshot, forecast, decision, intent, result, API calls and the tick row all land."""
    r = rig(scenario("sunny-day"), tmp_path)
    r.sample_meter(60)
    report = r.tick()
    assert report.status == "done"
    assert report.reason == "fuse_headroom"
    assert report.write_outcome == "accepted"
    assert r.accepted() == 1
    for table in ("ticks", "snapshots", "decisions", "write_intents", "write_results", "verifications"):
        expected = 0 if table == "verifications" else 1
        assert _count(r, table) == expected, table
    assert _count(r, "forecasts") == 3 * (3 + 3 + 1 + 1)  # household, peak per phase; pv; surplus
    calls = r.rows("SELECT endpoint, method, status FROM api_calls ORDER BY called_at")
    assert [c["method"] for c in calls].count("POST") == 1
    assert all(c["status"] == 200 for c in calls)
    first = r.rows("SELECT settings FROM installation_settings_seen")[0]["settings"]
    assert json.loads(first)["checks"]["role_can_write"] is True


def test_rerunning_the_same_tick_sends_nothing_and_adds_no_rows(tmp_path: Path) -> None:
    """A second run of the same slot finds the completed tick: no POST, no new rows."""
    r = rig(scenario("sunny-day"), tmp_path)
    r.sample_meter(30)
    first = r.tick()
    r.storage.merge()
    counts = {t: _count(r, t) for t in ("ticks", "decisions", "api_calls", "write_intents", "forecasts")}
    again = r.tick(scheduled_at=first.scheduled_at)
    assert again.status == "already_done"
    assert r.posts() == 1
    assert {t: _count(r, t) for t in counts} == counts


def test_next_tick_verifies_the_write_and_reasserts_a_cloud_reset(tmp_path: Path) -> None:
    """The next snapshot shows the write (match); after a cloud-side reset it is re-asserted."""
    r = rig(scenario("sunny-day"), tmp_path)
    r.sample_meter(30)
    r.tick()
    r.sample_meter(15)
    assert r.tick().verification == "match"
    inst = r.site.installation_id
    r.cloud.world.reset_available_current(inst)
    r.sample_meter(15)
    report = r.tick()
    assert report.verification == "cloud_reset"
    assert report.write_outcome == "accepted"


def test_apm_stands_down_with_zero_posts(tmp_path: Path) -> None:
    """Mode APM: reason mode_not_default, no write attempted at all."""
    chosen = scenario("apm-on")
    r = rig(chosen, tmp_path)
    r.step(4 * 3600 + 60)  # past 08:00 local
    r.sample_meter(15)
    report = r.tick()
    assert report.reason == "mode_not_default"
    assert report.hold == "stand_down"
    assert r.posts() == 0


def test_dry_run_records_the_payload_and_never_posts(tmp_path: Path) -> None:
    """Dry run (asked for, or writes not enabled for the site): the would-be payload is recorded."""
    r = rig(scenario("sunny-day"), tmp_path, site_changes={"writes_enabled": False})
    r.sample_meter(30)
    report = r.tick()
    assert report.dry_run
    assert report.write_outcome == "dry_run"
    assert r.posts() == 0
    intent = r.rows("SELECT i.payload, r.outcome FROM write_intents i JOIN write_results r USING (intent_id)")
    assert intent[0]["outcome"] == "dry_run"
    assert json.loads(intent[0]["payload"])["available_current_a"] == report.setpoint_a[0]


def test_a_post_that_timed_out_after_landing_is_not_sent_again(tmp_path: Path) -> None:
    """The response is lost, the read-back shows the write: one POST, outcome landed."""
    r = rig(scenario("sunny-day"), tmp_path, on_cloud=lambda c: setattr(c.faults, "write_timeouts", 1))
    r.sample_meter(30)
    report = r.tick()
    assert report.write_outcome == "landed"
    assert r.posts() == 1
    assert r.accepted() == 1


def test_a_429_and_503_burst_on_the_post_ends_in_exactly_one_accepted_write(tmp_path: Path) -> None:
    """The client's retries absorb the burst; attempts are bounded and recorded."""

    def burst(cloud: object) -> None:
        cloud.faults.server_errors.extend(  # type: ignore[attr-defined]
            [
                ServerErrorBurst(status=429, count=2, method="POST", path=".*/update"),
                ServerErrorBurst(status=503, count=1, method="POST", path=".*/update"),
            ]
        )

    r = rig(scenario("sunny-day"), tmp_path, on_cloud=burst)
    r.sample_meter(30)
    report = r.tick()
    assert report.write_outcome == "accepted"
    assert r.accepted() == 1
    updates = [q.status for q in r.cloud.ledger.requests if q.path.endswith("/update")]
    assert updates == [429, 429, 503, 200]
    posts = r.rows(
        "SELECT attempts, status, error FROM api_calls WHERE method = 'POST' ORDER BY attempts DESC"
    )
    # 429s never reached Zaptec and are retried; a 503 on a POST might have: read back, then resend once.
    assert posts == [
        {"attempts": 3, "status": 503, "error": "AmbiguousWrite"},
        {"attempts": 1, "status": 200, "error": None},
    ]
    outcomes = r.rows("SELECT outcome FROM write_results")
    assert sorted(o["outcome"] for o in outcomes) == ["accepted", "not_landed"]


def test_a_429_storm_fails_the_tick_with_bounded_attempts_and_the_next_tick_writes_once(
    tmp_path: Path,
) -> None:
    """In the storm the tick fails (recorded, retried by Prefect); after it one write lands."""
    r = rig(scenario("429-storm"), tmp_path)
    r.sample_meter(3 * 60)  # to 07:00 local, the storm's start
    before = len(r.cloud.ledger.requests)
    with pytest.raises(RateLimited):
        r.tick()
    api = [q for q in r.cloud.ledger.requests[before:] if q.path.startswith("/api/")]
    assert len(api) == 6  # the client's attempt bound, then the tick gives up
    assert {q.status for q in api} == {429}
    assert r.posts() == 0
    failed = r.rows("SELECT status, error FROM ticks")
    assert failed[0]["status"] == "failed"
    assert "RateLimited" in failed[0]["error"]
    r.sample_meter(15)
    assert r.tick().write_outcome == "accepted"
    assert r.accepted() == 1


def test_stale_meter_writes_the_fallback_formula(tmp_path: Path) -> None:
    """A frozen meter: fuse minus margin minus the highest household load per phase in the window."""
    r = rig(scenario("sunny-day"), tmp_path)
    r.sample_meter(60)
    r.cloud.world.freeze_meter(r.site.installation_id)
    r.step(600)
    report = r.tick()
    assert report.reason == "stale_inputs"
    assert report.binding_constraint == "household_peak"
    peak = r.rows(
        "SELECT max(grid_power_l1_w + pv_power_w / 3) AS l1, max(grid_power_l2_w + pv_power_w / 3) AS l2, "
        "max(grid_power_l3_w + pv_power_w / 3) AS l3 FROM meter_readings"
    )[0]
    expected = [max(0.0, float(int(25 - 1 - peak[k] / 230 + 1e-9))) for k in ("l1", "l2", "l3")]
    assert list(report.setpoint_a) == expected
    assert report.write_outcome == "accepted"


def test_a_reader_holding_the_database_does_not_fail_the_tick(tmp_path: Path) -> None:
    """Rows wait in the outbox while a reader holds the file and arrive after it leaves."""
    r = rig(scenario("sunny-day"), tmp_path, storage_overrides={"merge_lock_timeout_s": 0.2})
    r.sample_meter(30)
    r.storage.merge()
    with holding(tmp_path, "hold-read"):
        report = r.tick()
    assert report.status == "done"
    assert r.storage.outbox.pending()
    r.storage.merge()
    assert not r.storage.outbox.pending()
    assert _count(r, "decisions") == 1


def test_a_writer_holding_the_database_gives_history_unavailable(tmp_path: Path) -> None:
    """Reads time out: the tick runs on what it fetched itself and records history_unavailable."""
    r = rig(
        scenario("sunny-day"),
        tmp_path,
        storage_overrides={"merge_lock_timeout_s": 0.2, "read_lock_timeout_s": 0.2},
    )
    r.sample_meter(30)
    r.storage.merge()
    with holding(tmp_path, "hold-write"):
        report = r.tick()
    assert report.status == "done"
    assert report.history_unavailable
    assert report.cold_start
    r.storage.merge()
    assert r.rows("SELECT history_unavailable FROM ticks") == [{"history_unavailable": True}]


def test_solar_mode_pauses_at_night_and_charges_at_noon(tmp_path: Path) -> None:
    """The policy's solar path end to end: 0 A before sunrise, a 1- or 3-phase current at noon."""
    r = rig(scenario("sunny-day"), tmp_path, mode=PolicyMode.SOLAR)
    r.sample_meter(60, every_s=30)
    assert r.tick().reason in ("solar_pause", "stale_inputs")
    for _ in range(4 * 8):
        r.sample_meter(15, every_s=30)
        report = r.tick()
    assert report.reason == "solar_surplus"
    assert report.setpoint_a is not None
    assert report.setpoint_a[0] >= 6
