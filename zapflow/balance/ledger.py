"""What earlier ticks and the meter flow recorded, read back for the next tick (with fallbacks).

Every read goes through `Storage.read` (pending outbox rows included) and waits only the storage
settings' bounded time. When the database stays locked or broken, the read returns nothing and
`unavailable` is set: the tick then runs on what it fetched itself (a fresh meter reading, polled
charger states, the forecaster's cold-start band) and records `history_unavailable`.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import duckdb

from storage import Storage, StorageError
from zapflow.domain.forecast import household_from_meter
from zapflow.domain.models import PhaseValues, SitePowerSample
from zapflow.domain.phases import PhaseState
from zapflow.domain.policy import Setpoint
from zapflow.zaptec.observations import Observation

__all__ = ["EV_CURRENT_STATE_IDS", "LastWrite", "Ledger", "TickRecord", "household_history"]

log = logging.getLogger(__name__)

EV_CURRENT_STATE_IDS = (
    int(Observation.CurrentPhase1),
    int(Observation.CurrentPhase2),
    int(Observation.CurrentPhase3),
)
ACCEPTED_OUTCOMES = ("accepted", "landed")


@dataclass(frozen=True)
class LastWrite:
    """The newest write that reached the installation (or was refused), as the ledger has it."""

    intent_id: str
    tick_id: str
    payload: dict[str, Any]
    outcome: str
    finished_at: datetime

    @property
    def setpoint(self) -> Setpoint | None:
        """The per-phase currents the write asked for (None when it set only the switch current)."""
        currents = self.payload.get("phases_a")
        if currents is None and self.payload.get("available_current_a") is not None:
            currents = [self.payload["available_current_a"]] * 3
        if currents is None:
            return None
        return Setpoint(
            currents_a=PhaseValues(l1=currents[0], l2=currents[1], l3=currents[2]),
            switch_current_a=self.payload.get("switch_current_a"),
        )


@dataclass(frozen=True)
class TickRecord:
    """What the ledger knows about one tick id (for reruns)."""

    status: str | None
    intents: tuple[tuple[str, dict[str, Any], str | None], ...]
    """(intent_id, payload, outcome or None when the result never got recorded)."""


class Ledger:
    """Reads for one installation; `unavailable` turns true at the first failed read."""

    def __init__(self, storage: Storage, installation_id: str) -> None:
        self.storage = storage
        self.installation_id = installation_id
        self.unavailable = False
        self.errors: list[str] = []

    def _rows(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]] | None:
        if self.unavailable:
            return None  # one bounded wait per tick is enough
        try:
            given = {"installation_id": self.installation_id, **params}
            used = {k: v for k, v in given.items() if f"${k}" in sql}  # DuckDB refuses extras
            rows: list[dict[str, Any]] = self.storage.read(sql, used).to_pylist()
        except (StorageError, duckdb.Error, OSError) as exc:
            self.unavailable = True
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.errors.append(first_line)
            log.warning("history unavailable for %s: %s", self.installation_id, first_line)
            return None
        return rows

    def tick(self, tick_id: str) -> TickRecord:
        """The tick's recorded status and its write intents with their outcomes."""
        status_rows = self._rows(
            "SELECT status FROM ticks WHERE tick_id = $tick_id AND installation_id = $installation_id",
            {"tick_id": tick_id},
        )
        intent_rows = self._rows(
            "SELECT CAST(i.intent_id AS VARCHAR) AS intent_id, i.payload, r.outcome "
            "FROM write_intents i LEFT JOIN write_results r USING (intent_id) "
            "WHERE i.tick_id = $tick_id AND i.installation_id = $installation_id ORDER BY i.created_at",
            {"tick_id": tick_id},
        )
        status = status_rows[0]["status"] if status_rows else None
        intents = tuple((r["intent_id"], json.loads(r["payload"]), r["outcome"]) for r in (intent_rows or ()))
        return TickRecord(status=status, intents=intents)

    def first_seen(self) -> dict[str, Any] | None:
        """The first-contact record (original settings, checks, chargers), if any."""
        rows = self._rows(
            "SELECT settings FROM installation_settings_seen WHERE installation_id = $installation_id", {}
        )
        return json.loads(rows[0]["settings"]) if rows else None

    def last_write(self, before: datetime, *, landed: bool = False) -> LastWrite | None:
        """The newest write with a recorded result before `before` (dry runs never count).

        With `landed`, the newest one that reached the installation.
        """
        rows = self._rows(
            "SELECT CAST(i.intent_id AS VARCHAR) AS intent_id, CAST(i.tick_id AS VARCHAR) AS tick_id, "
            "i.payload, r.outcome, r.finished_at FROM write_intents i JOIN write_results r USING (intent_id) "
            "WHERE i.installation_id = $installation_id AND r.outcome <> 'dry_run' "
            "AND (NOT $landed OR list_contains($accepted, r.outcome)) "
            "AND r.finished_at < $before ORDER BY r.finished_at DESC LIMIT 1",
            {"before": before, "landed": landed, "accepted": list(ACCEPTED_OUTCOMES)},
        )
        if not rows:
            return None
        r = rows[0]
        return LastWrite(
            r["intent_id"], r["tick_id"], json.loads(r["payload"]), r["outcome"], r["finished_at"]
        )

    def phase_state(self, before: datetime) -> PhaseState:
        """The phase state the newest decision carried on."""
        rows = self._rows(
            "SELECT phase_state FROM decisions WHERE installation_id = $installation_id "
            "AND decided_at < $before AND phase_state IS NOT NULL ORDER BY decided_at DESC LIMIT 1",
            {"before": before},
        )
        return PhaseState.model_validate_json(rows[0]["phase_state"]) if rows else PhaseState()

    def meter_minutes(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Per-minute means of the meter readings in [start, end)."""
        rows = self._rows(
            "SELECT time_bucket(INTERVAL 1 minute, measured_at) AS minute, "
            "avg(grid_power_l1_w) AS g1, avg(grid_power_l2_w) AS g2, avg(grid_power_l3_w) AS g3, "
            "avg(pv_power_w) AS pv FROM meter_readings WHERE installation_id = $installation_id "
            "AND measured_at >= $start AND measured_at < $end GROUP BY 1 ORDER BY 1",
            {"start": start, "end": end},
        )
        return rows or []

    def sampled_since(self, since: datetime) -> bool:
        """True when the meter flow stored a sample at or after `since` (its fuse guard is running)."""
        rows = self._rows(
            "SELECT count(*) AS n FROM meter_readings WHERE installation_id = $installation_id "
            "AND source = 'meter' AND received_at >= $since",
            {"since": since},
        )
        return rows is not None and bool(rows) and rows[0]["n"] > 0

    def streamed_chargers(
        self, charger_ids: Sequence[str], *, live_since: datetime, seen_since: datetime
    ) -> set[str]:
        """Of these chargers, those seen since `seen_since` on a subscription active since `live_since`.

        Their ingested state is current: events arrive only when a value changes.
        """
        rows = self._rows(
            "SELECT DISTINCT c.charger_id FROM subscription_chargers c "
            "JOIN subscriptions s USING (subscription_key) "
            "WHERE s.last_activity_at >= $live AND c.last_seen_at >= $seen "
            "AND list_contains($chargers, c.charger_id)",
            {"live": live_since, "seen": seen_since, "chargers": list(charger_ids)},
        )
        return {r["charger_id"] for r in rows or []}

    def ev_currents(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Observed EV phase currents (507-509) of this installation's chargers in [start, end)."""
        rows = self._rows(
            "SELECT charger_id, state_id, observed_at, value FROM charger_events "
            "WHERE installation_id = $installation_id AND state_id IN (507, 508, 509) "
            "AND observed_at >= $start AND observed_at < $end ORDER BY observed_at",
            {"start": start, "end": end},
        )
        return rows or []

    def latest_states(self, charger_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The locally kept latest observation per (charger, state id)."""
        if not charger_ids:
            return []
        rows = self._rows(
            "SELECT charger_id, state_id, observed_at, value, source, received_at FROM charger_state_latest "
            "WHERE list_contains($chargers, charger_id)",
            {"chargers": list(charger_ids)},
        )
        return rows or []


def _float(value: object) -> float | None:
    try:
        result = float(str(value))
    except ValueError:
        return None
    return result if math.isfinite(result) else None


def household_history(
    meter_minutes: Sequence[dict[str, Any]],
    ev_observations: Sequence[dict[str, Any]],
    *,
    voltage_v: float,
) -> list[SitePowerSample]:
    """Household load per phase per minute = grid import + PV - EV.

    EV is a step function of its observed phase currents, summed over chargers; PV is split
    evenly over three phases.
    """
    current: dict[tuple[str, int], float] = {}
    observations = sorted(ev_observations, key=lambda r: r["observed_at"])
    index = 0
    samples = []
    for row in meter_minutes:
        minute = row["minute"]
        # A minute's EV current is what was last observed before the minute ended.
        while index < len(observations) and observations[index]["observed_at"] < minute + timedelta(
            minutes=1
        ):
            obs = observations[index]
            value = _float(obs["value"])
            if value is not None:
                current[(obs["charger_id"], int(obs["state_id"]))] = value
            index += 1
        ev_w = [
            sum(a for (_, sid), a in current.items() if sid == state_id) * voltage_v
            for state_id in EV_CURRENT_STATE_IDS
        ]
        pv = row["pv"] or 0.0
        grid = PhaseValues(l1=row["g1"] or 0.0, l2=row["g2"] or 0.0, l3=row["g3"] or 0.0)
        household = household_from_meter(grid, pv, PhaseValues(l1=ev_w[0], l2=ev_w[1], l3=ev_w[2]))
        samples.append(SitePowerSample(at=minute, household_w=household, pv_w=pv))
    return samples
