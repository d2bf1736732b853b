"""The tables both flows write through the outbox: columns, keys and merge rules, in one place.

Migrations (`migrations/*.sql`) create the tables; these specs let a writer build its Parquet
batch without touching the database, and tell `merge()` each table's natural key and whether it
is a latest-state table (one row per key, the newest `latest_by` wins). A test checks that the
specs and the migrated schema agree column for column.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

__all__ = ["TABLES", "Column", "TableSpec", "feeding_files", "spec"]

_TS = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Column:
    """A column: name, DuckDB type (as DESCRIBE prints it) and Arrow type for the outbox."""

    name: str
    sql_type: str
    arrow_type: pa.DataType


def _c(name: str, sql_type: str) -> Column:
    arrow = {
        "VARCHAR": pa.string(),
        "UUID": pa.string(),
        "JSON": pa.string(),
        "INTEGER": pa.int32(),
        "BIGINT": pa.int64(),
        "DOUBLE": pa.float64(),
        "BOOLEAN": pa.bool_(),
        "BLOB": pa.binary(),
        "TIMESTAMP WITH TIME ZONE": _TS,
    }[sql_type]
    return Column(name, sql_type, arrow)


@dataclass(frozen=True)
class TableSpec:
    """A table's columns, its natural key, and how its rows merge."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    latest_by: tuple[str, ...] = ()
    """Non-empty for latest-state tables: order columns, newest first wins."""
    generated_key: str | None = None
    """A UUID key filled in by `write_batch` when a row has none (never by a database sequence)."""
    fed_by: tuple[str, ...] = ()
    """Tables whose pending rows also feed this one (they carry all its columns): one file per batch."""

    @property
    def column_names(self) -> tuple[str, ...]:
        """Column names in table order."""
        return tuple(c.name for c in self.columns)

    @property
    def json_columns(self) -> frozenset[str]:
        """Columns stored as JSON text."""
        return frozenset(c.name for c in self.columns if c.sql_type == "JSON")

    def arrow_schema(self) -> pa.Schema:
        """The outbox file schema."""
        return pa.schema([pa.field(c.name, c.arrow_type) for c in self.columns])


def _phase_cols(prefix: str, unit: str) -> tuple[Column, ...]:
    return tuple(_c(f"{prefix}_l{n}_{unit}", "DOUBLE") for n in (1, 2, 3))


TABLES: dict[str, TableSpec] = {
    t.name: t
    for t in (
        TableSpec(
            "ticks",
            (
                _c("tick_id", "UUID"),
                _c("installation_id", "VARCHAR"),
                _c("scheduled_at", "TIMESTAMP WITH TIME ZONE"),
                _c("started_at", "TIMESTAMP WITH TIME ZONE"),
                _c("finished_at", "TIMESTAMP WITH TIME ZONE"),
                _c("flow_run_id", "VARCHAR"),
                _c("status", "VARCHAR"),
                _c("dry_run", "BOOLEAN"),
                _c("policy_version", "VARCHAR"),
                _c("requested_by", "VARCHAR"),
                _c("run_reason", "VARCHAR"),
                _c("state_source", "VARCHAR"),
                _c("history_unavailable", "BOOLEAN"),
                _c("error", "VARCHAR"),
            ),
            key=("tick_id",),
            generated_key="tick_id",
        ),
        TableSpec(
            "snapshots",
            (
                _c("tick_id", "UUID"),
                _c("installation_id", "VARCHAR"),
                _c("taken_at", "TIMESTAMP WITH TIME ZONE"),
                _c("mode", "INTEGER"),
                _c("max_current_a", "DOUBLE"),
                *_phase_cols("available_current", "a"),
                _c("switch_current_a", "DOUBLE"),
                _c("meter_at", "TIMESTAMP WITH TIME ZONE"),
                *_phase_cols("grid_current", "a"),
                _c("pv_power_w", "DOUBLE"),
                _c("ev_power_w", "DOUBLE"),
                _c("oldest_input_age_s", "DOUBLE"),
                _c("payload", "JSON"),
            ),
            key=("tick_id",),
        ),
        TableSpec(
            "forecasts",
            (
                _c("tick_id", "UUID"),
                _c("installation_id", "VARCHAR"),
                _c("issued_at", "TIMESTAMP WITH TIME ZONE"),
                _c("target_start", "TIMESTAMP WITH TIME ZONE"),
                _c("horizon_s", "DOUBLE"),
                _c("provider", "VARCHAR"),
                _c("quantity", "VARCHAR"),
                _c("phase", "INTEGER"),
                _c("quantile", "DOUBLE"),
                _c("value", "DOUBLE"),
                _c("cold_start", "BOOLEAN"),
            ),
            key=("tick_id", "provider", "quantity", "phase", "quantile", "target_start"),
        ),
        TableSpec(
            "decisions",
            (
                _c("tick_id", "UUID"),
                _c("installation_id", "VARCHAR"),
                _c("decided_at", "TIMESTAMP WITH TIME ZONE"),
                _c("policy_mode", "VARCHAR"),
                _c("reason", "VARCHAR"),
                _c("binding_constraint", "VARCHAR"),
                *_phase_cols("setpoint", "a"),
                _c("phases", "INTEGER"),
                _c("switch_current_a", "DOUBLE"),
                _c("write_needed", "BOOLEAN"),
                _c("safety_reduction", "BOOLEAN"),
                _c("dry_run", "BOOLEAN"),
                _c("policy_version", "VARCHAR"),
                _c("candidates", "JSON"),
                _c("hold", "VARCHAR"),
                _c("reassert", "BOOLEAN"),
                _c("phase_state", "JSON"),
                _c("notes", "JSON"),
            ),
            key=("tick_id",),
        ),
        TableSpec(
            "write_intents",
            (
                _c("intent_id", "UUID"),
                _c("tick_id", "UUID"),
                _c("installation_id", "VARCHAR"),
                _c("created_at", "TIMESTAMP WITH TIME ZONE"),
                _c("payload", "JSON"),
                _c("outcome", "VARCHAR"),
            ),
            key=("intent_id",),
            generated_key="intent_id",
        ),
        TableSpec(
            "write_results",
            (
                _c("intent_id", "UUID"),
                _c("tick_id", "UUID"),
                _c("installation_id", "VARCHAR"),
                _c("finished_at", "TIMESTAMP WITH TIME ZONE"),
                _c("outcome", "VARCHAR"),
                _c("status", "INTEGER"),
                _c("attempts", "INTEGER"),
                _c("error", "VARCHAR"),
            ),
            key=("intent_id",),
        ),
        TableSpec(
            "api_calls",
            (
                _c("call_id", "UUID"),
                _c("tick_id", "UUID"),
                _c("installation_id", "VARCHAR"),
                _c("called_at", "TIMESTAMP WITH TIME ZONE"),
                _c("endpoint", "VARCHAR"),
                _c("method", "VARCHAR"),
                _c("status", "INTEGER"),
                _c("attempts", "INTEGER"),
                _c("latency_ms", "DOUBLE"),
                _c("error", "VARCHAR"),
            ),
            key=("call_id",),
            generated_key="call_id",
        ),
        TableSpec(
            "verifications",
            (
                _c("tick_id", "UUID"),
                _c("installation_id", "VARCHAR"),
                _c("verified_at", "TIMESTAMP WITH TIME ZONE"),
                _c("outcome", "VARCHAR"),
                _c("expected", "JSON"),
                _c("observed", "JSON"),
            ),
            key=("tick_id",),
        ),
        TableSpec(
            "installation_settings_seen",
            (
                _c("installation_id", "VARCHAR"),
                _c("first_seen_at", "TIMESTAMP WITH TIME ZONE"),
                _c("settings", "JSON"),
            ),
            key=("installation_id",),
        ),
        TableSpec(
            "charger_events",
            (
                _c("charger_id", "VARCHAR"),
                _c("state_id", "INTEGER"),
                _c("observed_at", "TIMESTAMP WITH TIME ZONE"),
                _c("value", "VARCHAR"),
                _c("device_id", "VARCHAR"),
                _c("device_type", "INTEGER"),
                _c("installation_id", "VARCHAR"),
                _c("known_installation", "BOOLEAN"),
                _c("source", "VARCHAR"),
                _c("received_at", "TIMESTAMP WITH TIME ZONE"),
                _c("sequence_number", "BIGINT"),
            ),
            key=("charger_id", "state_id", "observed_at"),
        ),
        TableSpec(
            "charger_state_latest",
            (
                _c("charger_id", "VARCHAR"),
                _c("state_id", "INTEGER"),
                _c("observed_at", "TIMESTAMP WITH TIME ZONE"),
                _c("value", "VARCHAR"),
                _c("source", "VARCHAR"),
                _c("received_at", "TIMESTAMP WITH TIME ZONE"),
            ),
            key=("charger_id", "state_id"),
            latest_by=("observed_at", "received_at"),
            fed_by=("charger_events",),
        ),
        TableSpec(
            "event_quarantine",
            (
                _c("quarantine_id", "UUID"),
                _c("received_at", "TIMESTAMP WITH TIME ZONE"),
                _c("source", "VARCHAR"),
                _c("sequence_number", "BIGINT"),
                _c("message_id", "VARCHAR"),
                _c("error", "VARCHAR"),
                _c("raw", "BLOB"),
            ),
            key=("quarantine_id",),
            generated_key="quarantine_id",
        ),
        TableSpec(
            "meter_readings",
            (
                _c("installation_id", "VARCHAR"),
                _c("measured_at", "TIMESTAMP WITH TIME ZONE"),
                *_phase_cols("grid_current", "a"),
                *_phase_cols("grid_power", "w"),
                _c("pv_power_w", "DOUBLE"),
                _c("source", "VARCHAR"),
                _c("received_at", "TIMESTAMP WITH TIME ZONE"),
            ),
            key=("installation_id", "measured_at"),
        ),
        TableSpec(
            "subscriptions",
            (
                _c("subscription_key", "VARCHAR"),
                _c("updated_at", "TIMESTAMP WITH TIME ZONE"),
                _c("last_activity_at", "TIMESTAMP WITH TIME ZONE"),
                _c("last_details_refresh_at", "TIMESTAMP WITH TIME ZONE"),
                _c("last_message_at", "TIMESTAMP WITH TIME ZONE"),
            ),
            key=("subscription_key",),
            latest_by=("updated_at",),
        ),
        TableSpec(
            "subscription_chargers",
            (
                _c("subscription_key", "VARCHAR"),
                _c("charger_id", "VARCHAR"),
                _c("last_seen_at", "TIMESTAMP WITH TIME ZONE"),
            ),
            key=("subscription_key", "charger_id"),
            latest_by=("last_seen_at",),
        ),
        TableSpec(
            "subscription_renewals",
            (
                _c("renewal_id", "UUID"),
                _c("subscription_key", "VARCHAR"),
                _c("renewed_at", "TIMESTAMP WITH TIME ZONE"),
                _c("reason", "VARCHAR"),
                _c("outcome", "VARCHAR"),
                _c("messages_received", "INTEGER"),
            ),
            key=("renewal_id",),
            generated_key="renewal_id",
        ),
        TableSpec(
            "bench_results",
            (
                _c("result_id", "UUID"),
                _c("measured_at", "TIMESTAMP WITH TIME ZONE"),
                _c("version", "VARCHAR"),
                _c("benchmark", "VARCHAR"),
                _c("metric", "VARCHAR"),
                _c("value", "DOUBLE"),
                _c("baseline", "VARCHAR"),
            ),
            key=("result_id",),
            generated_key="result_id",
        ),
    )
}


def feeding_files(pending: dict[str, list[Path]]) -> dict[str, list[Path]]:
    """Per table, the pending files to merge or read into it: its own plus those of `fed_by` tables."""
    result = {}
    for name, table in TABLES.items():
        files = list(pending.get(name, []))
        for source in table.fed_by:
            files.extend(pending.get(source, []))
        if files:
            result[name] = files
    return result


def spec(table: str) -> TableSpec:
    """The spec of `table`; unknown names list the known ones."""
    try:
        return TABLES[table]
    except KeyError:
        msg = f"unknown table {table!r}; outbox tables: {', '.join(sorted(TABLES))}"
        raise ValueError(msg) from None
