"""One balance tick for one installation: snapshot -> forecast -> decide -> apply -> record.

The tick id is derived from (installation, scheduled slot), so a rerun of the same tick finds its
own records: a completed tick is not run twice, and a write that already landed is never sent
again. The write intent is durable in the outbox before the POST; an ambiguous POST is resolved
by reading the installation back. Everything the tick learns goes through the storage outbox, so
a locked database never fails a tick (its rows arrive with the next merge).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from storage import Storage, StorageError
from zapflow.balance.ledger import ACCEPTED_OUTCOMES, LastWrite, Ledger, TickRecord, household_history
from zapflow.balance.records import (
    api_call_rows,
    decision_row,
    event_rows,
    forecast_rows,
    meter_row,
    snapshot_row,
)
from zapflow.clock import Clock
from zapflow.domain.events import ChargerEvent
from zapflow.domain.forecast import PROVIDER, ForecastSettings, forecast_next_interval, household_from_meter
from zapflow.domain.models import (
    ChargerInfo,
    ChargerModel,
    ChargerRef,
    ChargerState,
    Forecast,
    InstallationSettings,
    PhaseValues,
    SitePowerSample,
    SiteReading,
)
from zapflow.domain.policy import Decision, PolicyMode, PreviousDecision, Snapshot, decide
from zapflow.meter.sources import MeterError, MeterSource
from zapflow.sites import SiteConfig
from zapflow.zaptec import AmbiguousWrite, ApiCall, InstallationUpdate, ZaptecClient
from zapflow.zaptec.errors import PermanentError, TransientError, redact
from zapflow.zaptec.mapping import charger_state

__all__ = [
    "POLICY_VERSION",
    "TickReport",
    "TickRequest",
    "TickServices",
    "run_tick",
    "slot_start",
    "tick_id_for",
]

log = logging.getLogger(__name__)

POLICY_VERSION = f"policy/v1 {PROVIDER}"
_TICK_NAMESPACE = uuid.UUID("6a0f3c52-2d4b-4a7e-9a51-3f1d8e2b7c90")
_MATCH_TOLERANCE_A = 0.5
_STREAMED_WITHIN_DAYS = 14
"""A charger the subscription carried within this long is one it still carries (Zaptec's idle expiry)."""
ClientFactory = Callable[[Callable[[ApiCall], None]], ZaptecClient]


def slot_start(at: datetime, interval_s: float = 900.0) -> datetime:
    """The start of the scheduling slot holding `at` (UTC)."""
    seconds = at.timestamp()
    return datetime.fromtimestamp(seconds - seconds % interval_s, tz=UTC)


def tick_id_for(installation_id: str, scheduled_at: datetime, trigger: str = "schedule") -> str:
    """Deterministic tick id: the same slot (and trigger) always maps to the same id."""
    key = f"{installation_id}|{scheduled_at.astimezone(UTC).isoformat()}"
    if trigger != "schedule":  # a guard tick never takes the identity of the slot's regular tick
        key += f"|{trigger}"
    return str(uuid.uuid5(_TICK_NAMESPACE, key))


@dataclass(frozen=True)
class TickRequest:
    """What one run asks for (flow parameters end up here)."""

    installation_id: str
    scheduled_at: datetime | None = None
    """The slot this tick belongs to (None: the current 15-minute slot)."""
    dry_run: bool = False
    mode: PolicyMode | None = None
    overrides: dict[str, float] = field(default_factory=dict)
    requested_by: str | None = None
    reason: str | None = None
    flow_run_id: str | None = None
    trigger: str = "schedule"
    """"schedule" for the 15-minute tick; "fuse_guard" for the meter flow's out-of-cycle one."""

    @classmethod
    def fuse_guard(
        cls,
        installation_id: str,
        at: datetime,
        seen: str,
        *,
        dry_run: bool = False,
        overrides: dict[str, float] | None = None,
    ) -> TickRequest:
        """The out-of-cycle tick the fuse guard asks for: its own id, and what was seen as the reason."""
        return cls(
            installation_id,
            scheduled_at=at,
            dry_run=dry_run,
            overrides=overrides or {},
            requested_by="fuse-guard",
            reason=seen,
            trigger="fuse_guard",
        )


@dataclass
class TickServices:
    """The adapters one tick uses; built once per process by the composition root."""

    storage: Storage
    client_factory: ClientFactory
    clock: Clock
    meter: MeterSource | None = None
    clear_sky: Callable[[datetime], float] = field(default=lambda _at: 0.0)
    forecast: ForecastSettings = field(default_factory=ForecastSettings)
    state_max_age_s: float = 120.0
    """Locally kept charger state younger than this is used instead of polling the API."""
    guard_fresh_s: float = 180.0
    """Meter-flow samples this recent mean its fuse guard runs: the tick may plan closer to the fuse."""
    ingest_live_s: float = 180.0
    """Service Bus ingest active this recently: its charger state is current (events are changes only)."""
    merge: bool = True


class TickReport(BaseModel):
    """What a tick did, for the flow's artifact and the caller (no secrets in here)."""

    model_config = ConfigDict(frozen=True)

    tick_id: str
    installation_id: str
    scheduled_at: datetime
    status: str
    """done | already_done | failed"""
    dry_run: bool
    policy_mode: str | None = None
    reason: str | None = None
    binding_constraint: str | None = None
    hold: str | None = None
    setpoint_a: tuple[float, float, float] | None = None
    phases: int | None = None
    switch_current_a: float | None = None
    write_outcome: str | None = None
    """accepted | landed | rejected | failed | dry_run | already_written | None (no write needed)"""
    payload: dict[str, float] | None = None
    verification: str | None = None
    state_source: str | None = None
    history_unavailable: bool = False
    cold_start: bool | None = None
    forecast: dict[str, float] = {}
    api_calls: list[dict[str, Any]] = []
    notes: list[str] = []
    error: str | None = None


class _Rows:
    """Rows of one tick, written table by table at the end (the intent goes out early on its own)."""

    def __init__(self) -> None:
        self.tables: dict[str, list[dict[str, Any]]] = {}

    def add(self, table: str, *rows: dict[str, Any]) -> None:
        self.tables.setdefault(table, []).extend(rows)


def _update_for(decision: Decision) -> InstallationUpdate:
    assert decision.setpoint is not None  # noqa: S101 - only called for writes
    currents = decision.setpoint.currents_a.as_tuple()
    switch = decision.setpoint.switch_current_a
    if len(set(currents)) == 1:
        return InstallationUpdate(available_current_a=currents[0], three_to_one_phase_switch_current_a=switch)
    return InstallationUpdate(phases_a=currents, three_to_one_phase_switch_current_a=switch)


def _payload(update: InstallationUpdate) -> dict[str, Any]:
    return {
        "available_current_a": update.available_current_a,
        "phases_a": list(update.phases_a) if update.phases_a else None,
        "switch_current_a": update.three_to_one_phase_switch_current_a,
    }


def _currents(inst: InstallationSettings) -> tuple[float, float, float] | None:
    if inst.available_current_phases_a is not None:
        return inst.available_current_phases_a.as_tuple()
    if inst.available_current_a is not None:
        return (inst.available_current_a,) * 3
    return None


def _matches(inst: InstallationSettings, payload: dict[str, Any]) -> bool:
    """True when the installation shows what `payload` asked for."""
    wanted = payload.get("phases_a") or (
        [payload["available_current_a"]] * 3 if payload.get("available_current_a") is not None else None
    )
    seen = _currents(inst)
    if wanted is not None and (
        seen is None or any(abs(a - b) > _MATCH_TOLERANCE_A for a, b in zip(wanted, seen, strict=True))
    ):
        return False
    switch = payload.get("switch_current_a")
    return switch is None or inst.three_to_one_phase_switch_current_a == switch


def _verify(last: LastWrite | None, inst: InstallationSettings) -> tuple[str, dict[str, Any]] | None:
    """Does the installation still show the last write? (outcome, observed) or None without one."""
    if last is None:
        return None
    observed = {"currents_a": _currents(inst), "switch_current_a": inst.three_to_one_phase_switch_current_a}
    if last.outcome not in ACCEPTED_OUTCOMES:
        return "rejected", observed
    if _matches(inst, last.payload):
        return "match", observed
    seen = _currents(inst)
    at_max = (
        seen is not None
        and inst.max_current_a is not None
        and all(abs(v - inst.max_current_a) <= _MATCH_TOLERANCE_A for v in seen)
    )
    return ("cloud_reset" if at_max else "changed_by_other"), observed


@contextmanager
def _recorded_client(services: TickServices, calls: list[tuple[datetime, ApiCall]]) -> Iterator[ZaptecClient]:
    clock = services.clock
    with services.client_factory(lambda call: calls.append((clock.now(), call))) as client:
        yield client


class _Tick:
    """The working state of one tick (kept small: each step is a method)."""

    def __init__(self, request: TickRequest, site: SiteConfig, services: TickServices) -> None:
        self.request = request
        self.site = site
        self.services = services
        self.clock = services.clock
        self.now = self.clock.now()
        self.scheduled_at = request.scheduled_at or slot_start(self.now, services.forecast.horizon_s)
        self.tick_id = tick_id_for(site.installation_id, self.scheduled_at, request.trigger)
        self.dry_run = request.dry_run or not site.writes_enabled
        self.ledger = Ledger(services.storage, site.installation_id)
        self.rows = _Rows()
        self.calls: list[tuple[datetime, ApiCall]] = []
        self.notes: list[str] = []
        self.state_source: str | None = None
        self.report: dict[str, Any] = {}
        self.record = TickRecord(status=None, intents=())
        if not site.writes_enabled and not request.dry_run:
            self.notes.append("writes are not enabled for this site (writes_enabled = false): dry run")

    @property
    def installation_id(self) -> str:
        return self.site.installation_id

    # -- steps ---------------------------------------------------------------------------------

    def first_contact(self, client: ZaptecClient, inst: InstallationSettings) -> list[dict[str, Any]]:
        """Chargers of the installation; on first contact also checks and the original settings."""
        seen = self.ledger.first_seen()
        if seen is not None and seen.get("chargers") is not None:
            chargers: list[dict[str, Any]] = seen["chargers"]
            return chargers
        hierarchy = client.get_hierarchy(self.installation_id)
        listed: list[ChargerRef | ChargerInfo] = (
            [r for circuit in hierarchy.circuits for r in circuit.chargers]
            if hierarchy is not None
            else [c for c in client.list_chargers() if c.installation_id == self.installation_id]
        )
        chargers = [
            {"charger_id": c.charger_id, "device_id": c.device_id, "name": c.name, "model": c.model.value}
            for c in listed
        ]
        checks = {
            "mode_default": inst.is_controllable,
            "role_can_write": inst.can_write,
            "phase_switching": sorted(
                {
                    c["model"]
                    for c in chargers
                    if c["model"] in (ChargerModel.GO2.value, ChargerModel.PRO.value)
                }
            ),
            "models": sorted({c["model"] for c in chargers}),
        }
        self.rows.add(
            "installation_settings_seen",
            {
                "installation_id": self.installation_id,
                "first_seen_at": self.now,
                "settings": {
                    "original": inst.model_dump(mode="json"),
                    "checks": checks,
                    "chargers": chargers,
                },
            },
        )
        self.notes.append(f"first contact: {checks}")
        return chargers

    def charger_states(self, client: ZaptecClient, chargers: list[dict[str, Any]]) -> list[ChargerState]:
        """Ingested events while ingest is live (`events`), fresh meter-flow polls (`local`), or a poll."""
        ids = [c["charger_id"] for c in chargers]
        local = self.ledger.latest_states(ids)
        freshest: dict[str, datetime] = {}
        for row in local:
            at = row["received_at"]
            if at is not None and (row["charger_id"] not in freshest or at > freshest[row["charger_id"]]):
                freshest[row["charger_id"]] = at
        limit = self.now - timedelta(seconds=self.services.state_max_age_s)
        models = {c["charger_id"]: c for c in chargers}
        # Events arrive only when a value changes, so their age says nothing; a live ingest run
        # whose subscription carries every one of these chargers does.
        streaming = bool(ids) and self.ledger.streamed_chargers(
            ids,
            live_since=self.now - timedelta(seconds=self.services.ingest_live_s),
            seen_since=self.now - timedelta(days=_STREAMED_WITHIN_DAYS),
        ) >= set(ids)
        fresh_polls = all(cid in freshest and freshest[cid] >= limit for cid in ids)
        if ids and (streaming or fresh_polls):
            self.state_source = "events" if streaming else "local"
            events: dict[str, list[ChargerEvent]] = {cid: [] for cid in ids}
            for row in local:
                events[row["charger_id"]].append(
                    ChargerEvent(
                        charger_id=row["charger_id"],
                        state_id=row["state_id"],
                        observed_at=row["observed_at"],
                        value=row["value"],
                    )
                )
            return [charger_state(cid, events[cid], device_id=models[cid].get("device_id")) for cid in ids]
        self.state_source = "poll"
        states = []
        for cid in ids:
            polled = client.get_charger_state(cid)
            received = self.clock.now()
            rows = event_rows(
                polled, installation_id=self.installation_id, source="poll", received_at=received
            )
            self.rows.add("charger_events", *rows)
            states.append(charger_state(cid, polled, device_id=models[cid].get("device_id")))
        return states

    def history(
        self, ev_now_w: PhaseValues, reading: SiteReading | None
    ) -> tuple[list[SitePowerSample], PhaseValues | None]:
        """Household/PV history per minute for the forecaster, and the fallback's peak load."""
        horizon = timedelta(seconds=self.services.forecast.horizon_s)
        start = self.now - horizon * (self.services.forecast.error_window + 1)
        minutes = self.ledger.meter_minutes(start, self.now)
        ev = self.ledger.ev_currents(start - timedelta(days=1), self.now)
        samples = household_history(minutes, ev, voltage_v=self.site.voltage_v)
        if reading is not None and (not samples or reading.measured_at > samples[-1].at):
            # The fresh reading joins the history with the EV power the chargers report now.
            household = household_from_meter(reading.grid_power_w, reading.pv_power_w, ev_now_w)
            samples.append(
                SitePowerSample(at=reading.measured_at, household_w=household, pv_w=reading.pv_power_w)
            )
        window_start = self.now - timedelta(seconds=self.site.household_peak_window_s)
        recent = [s.household_w.as_tuple() for s in samples if s.at >= window_start]
        peak = (
            PhaseValues(
                l1=max(r[0] for r in recent), l2=max(r[1] for r in recent), l3=max(r[2] for r in recent)
            )
            if recent
            else None
        )
        return samples, peak

    def apply(self, client: ZaptecClient, inst: InstallationSettings, decision: Decision) -> dict[str, Any]:
        """Write the decision (or record what a dry run would have sent); never twice per tick."""
        if not decision.write or decision.setpoint is None:
            return {}
        update = _update_for(decision)
        payload = _payload(update)
        record = self.record  # read at the start of the tick; only this tick writes its intents
        if any(outcome in ACCEPTED_OUTCOMES for _, _, outcome in record.intents):
            self.notes.append("this tick's write already landed: not sent again")
            return {"write_outcome": "already_written", "payload": payload}
        for intent_id, earlier, outcome in record.intents:
            if outcome is None:
                # A crash between intent and result: this tick's fresh GET is the read-back.
                landed = _matches(inst, earlier)
                self._result(intent_id, "landed" if landed else "not_landed", None, None, None)
                if landed:
                    self.notes.append("an earlier attempt of this tick had landed: not sent again")
                    return {"write_outcome": "already_written", "payload": earlier}
        attempt = len(record.intents)
        if self.dry_run:
            intent_id = self._intent(payload, attempt, outcome="dry_run")
            self._result(intent_id, "dry_run", None, 0, None)
            return {"write_outcome": "dry_run", "payload": payload}
        return self._post(client, inst, update, payload, attempt)

    def _intent(self, payload: dict[str, Any], attempt: int, *, outcome: str) -> str:
        intent_id = str(uuid.uuid5(uuid.UUID(self.tick_id), f"intent-{attempt}"))
        row = {
            "intent_id": intent_id,
            "tick_id": self.tick_id,
            "installation_id": self.installation_id,
            "created_at": self.clock.now(),
            "payload": payload,
            "outcome": outcome,
        }
        # Durable before the POST: a crash after this line leaves a trace the rerun resolves.
        self.services.storage.write_batch("write_intents", [row])
        return intent_id

    def _result(
        self, intent_id: str, outcome: str, status: int | None, attempts: int | None, error: str | None
    ) -> None:
        self.rows.add(
            "write_results",
            {
                "intent_id": intent_id,
                "tick_id": self.tick_id,
                "installation_id": self.installation_id,
                "finished_at": self.clock.now(),
                "outcome": outcome,
                "status": status,
                "attempts": attempts,
                "error": error,
            },
        )

    def _post(
        self,
        client: ZaptecClient,
        inst: InstallationSettings,
        update: InstallationUpdate,
        payload: dict[str, Any],
        attempt: int,
    ) -> dict[str, Any]:
        for round_ in range(2):  # one resend at most, and only after a read-back showed nothing landed
            intent_id = self._intent(payload, attempt + round_, outcome="intended")
            calls_before = len(self.calls)
            try:
                client.update_installation(self.installation_id, update, max_current_a=inst.max_current_a)
            except AmbiguousWrite as exc:
                attempts, error = self._attempts(calls_before), redact(str(exc))
                landed = _matches(client.get_installation(self.installation_id), payload)
                self._result(intent_id, "landed" if landed else "not_landed", None, attempts, error)
                if landed:
                    self.notes.append("the POST's response was lost; the read-back shows it landed")
                    return {"write_outcome": "landed", "payload": payload}
                self.notes.append("the POST's response was lost and the read-back shows it did not land")
                continue
            except TransientError as exc:
                self._result(
                    intent_id,
                    "failed",
                    getattr(exc, "status", None),
                    self._attempts(calls_before),
                    redact(str(exc)),
                )
                raise
            except PermanentError as exc:
                self._result(
                    intent_id,
                    "rejected",
                    getattr(exc, "status", None),
                    self._attempts(calls_before),
                    redact(str(exc)),
                )
                self.notes.append(f"write rejected: {type(exc).__name__}")
                return {"write_outcome": "rejected", "payload": payload}
            self._result(intent_id, "accepted", 200, self._attempts(calls_before), None)
            return {"write_outcome": "accepted", "payload": payload}
        return {"write_outcome": "not_landed", "payload": payload}

    def _attempts(self, since: int) -> int:
        posts = [c for _, c in self.calls[since:] if c.method == "POST"]
        return posts[-1].attempts if posts else 0

    # -- the whole tick ------------------------------------------------------------------------

    def run(self) -> TickReport:
        self.record = self.ledger.tick(self.tick_id)
        if self.record.status == "done":
            return TickReport(
                tick_id=self.tick_id,
                installation_id=self.installation_id,
                scheduled_at=self.scheduled_at,
                status="already_done",
                dry_run=self.dry_run,
                notes=["this tick already completed: nothing done again"],
            )
        status, error = "done", None
        try:
            with _recorded_client(self.services, self.calls) as client:
                self._body(client)
        except Exception as exc:
            status, error = "failed", f"{type(exc).__name__}: {redact(str(exc))}"
            raise
        finally:
            self._finish(status, error)
        return self._report(status, error)

    def _body(self, client: ZaptecClient) -> None:
        inst = client.get_installation(self.installation_id)
        read_at = self.clock.now()
        chargers = self.first_contact(client, inst)
        if not inst.can_write and not self.dry_run:
            self.dry_run = True
            self.notes.append("the account lacks Owner/Service rights here: dry run")
        states = self.charger_states(client, chargers)
        reading = None
        meter = self.services.meter
        if meter is not None:
            try:
                reading = meter.read(self.now)
            except MeterError as exc:
                self.notes.append(f"meter: {exc}")
            else:
                self.rows.add(
                    "meter_readings",
                    meter_row(self.installation_id, reading, source="tick", received_at=self.now),
                )
        ev_now = self._ev_now(states)
        samples, peak = self.history(ev_now, reading)
        # Without a meter reading there is nothing to forecast from: the policy's stale fallback.
        forecast: Forecast | None = (
            forecast_next_interval(
                samples, now=self.now, clear_sky=self.services.clear_sky, settings=self.services.forecast
            )
            if reading is not None
            else None
        )
        last = self.ledger.last_write(self.now)
        verification = _verify(last, inst)
        if verification is not None:
            self.rows.add(
                "verifications",
                {
                    "tick_id": self.tick_id,
                    "installation_id": self.installation_id,
                    "verified_at": self.now,
                    "outcome": verification[0],
                    "expected": last.payload if last else None,
                    "observed": verification[1],
                },
            )
            self.report["verification"] = verification[0]
        # The newest write is also the newest landed one when it landed; else ask the ledger.
        landed = last is not None and last.outcome in ACCEPTED_OUTCOMES
        last_ok = last if landed else self.ledger.last_write(self.now, landed=True)
        previous = PreviousDecision(
            written=last_ok.setpoint if last_ok else None,
            written_at=last_ok.finished_at if last_ok else None,
            phase_state=self.ledger.phase_state(self.now),
        )
        policy = self.site.policy_settings(mode=self.request.mode, **self.request.overrides)
        snapshot = Snapshot(
            taken_at=self.now,
            installation=inst,
            installation_read_at=read_at,
            chargers=tuple(states),
            meter=reading,
            household_peak_w=peak,
            fuse_guarded=self.ledger.sampled_since(self.now - timedelta(seconds=self.services.guard_fresh_s)),
        )
        decision = decide(snapshot, forecast, previous, policy, self.now)
        ages = [(self.now - read_at).total_seconds()]
        if reading is not None:
            ages.append((self.now - reading.measured_at).total_seconds())
        self.rows.add(
            "snapshots",
            snapshot_row(self.tick_id, snapshot, ev_power_w=sum(ev_now.as_tuple()), oldest_age_s=max(ages)),
        )
        if forecast is not None:
            self.rows.add("forecasts", *forecast_rows(self.tick_id, self.installation_id, forecast))
            self.report["cold_start"] = forecast.cold_start
            self.report["forecast"] = {
                "surplus_q10_w": forecast.surplus_w.at(0.1),
                "surplus_q50_w": forecast.surplus_w.at(0.5),
                "pv_q50_w": forecast.pv_w.at(0.5),
                "household_q90_w": sum(h.at(0.9) for h in forecast.household_w),
            }
        self.notes.extend(decision.notes)
        self.report.update(self.apply(client, inst, decision))
        self.rows.add(
            "decisions",
            decision_row(
                self.tick_id,
                self.installation_id,
                decision,
                dry_run=self.dry_run,
                policy_version=POLICY_VERSION,
            ),
        )
        self.report["decision"] = decision

    def _ev_now(self, states: list[ChargerState]) -> PhaseValues:
        totals = [0.0, 0.0, 0.0]
        for s in states:
            if s.currents_a is not None:
                for p, amps in enumerate(s.currents_a.value.as_tuple()):
                    totals[p] += amps * self.site.voltage_v
        return PhaseValues(l1=totals[0], l2=totals[1], l3=totals[2])

    def _finish(self, status: str, error: str | None) -> None:
        storage = self.services.storage
        self.rows.add("api_calls", *api_call_rows(self.tick_id, self.installation_id, self.calls))
        self.rows.add(
            "ticks",
            {
                "tick_id": self.tick_id,
                "installation_id": self.installation_id,
                "scheduled_at": self.scheduled_at,
                "started_at": self.now,
                "finished_at": self.clock.now(),
                "flow_run_id": self.request.flow_run_id,
                "status": status,
                "dry_run": self.dry_run,
                "policy_version": POLICY_VERSION,
                "requested_by": self.request.requested_by,
                "run_reason": self.request.reason,
                "state_source": self.state_source,
                "history_unavailable": self.ledger.unavailable,
                "error": error,
            },
        )
        # Failed ticks keep their id free for a retry: their rows are evidence, not the tick's result.
        if status != "done":
            self.rows.tables["ticks"][0]["tick_id"] = str(uuid.uuid4())
            self.rows.tables["ticks"][0]["status"] = "failed"
            for table in ("snapshots", "decisions", "verifications", "forecasts"):
                self.rows.tables.pop(table, None)
        for table, rows in self.rows.tables.items():
            storage.write_batch(table, rows)
        if self.services.merge:
            try:
                storage.merge()
            except StorageError as exc:
                log.warning("merge deferred (rows stay in the outbox): %s", exc)

    def _report(self, status: str, error: str | None) -> TickReport:
        decision: Decision | None = self.report.get("decision")
        payload = self.report.get("payload")
        return TickReport(
            tick_id=self.tick_id,
            installation_id=self.installation_id,
            scheduled_at=self.scheduled_at,
            status=status,
            dry_run=self.dry_run,
            policy_mode=decision.policy_mode.value if decision else None,
            reason=decision.reason.value if decision else None,
            binding_constraint=decision.binding_constraint if decision else None,
            hold=decision.hold.value if decision and decision.hold else None,
            setpoint_a=decision.setpoint.currents_a.as_tuple() if decision and decision.setpoint else None,
            phases=decision.phases if decision else None,
            switch_current_a=decision.setpoint.switch_current_a if decision and decision.setpoint else None,
            write_outcome=self.report.get("write_outcome"),
            payload={k: v for k, v in payload.items() if isinstance(v, float | int)} if payload else None,
            verification=self.report.get("verification"),
            state_source=self.state_source,
            history_unavailable=self.ledger.unavailable,
            cold_start=self.report.get("cold_start"),
            forecast=self.report.get("forecast", {}),
            api_calls=[
                {
                    "endpoint": c.endpoint,
                    "method": c.method,
                    "status": c.status,
                    "attempts": c.attempts,
                    "error": c.error,
                }
                for _, c in self.calls
            ],
            notes=self.notes,
            error=error,
        )


def run_tick(request: TickRequest, site: SiteConfig, services: TickServices) -> TickReport:
    """Run one tick (see the module docstring); Zaptec errors are recorded, then raised."""
    if request.installation_id != site.installation_id:
        msg = f"request for {request.installation_id} given the site of {site.installation_id}"
        raise ValueError(msg)
    return _Tick(request, site, services).run()
