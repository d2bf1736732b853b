"""Deterministic rows for every outbox table, with unique keys per (writer, batch, index)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from storage.tables import TABLES, TableSpec

T0 = datetime(2026, 6, 17, 12, tzinfo=UTC)


_BY_TYPE: dict[str, Callable[[int], Any]] = {
    "TIMESTAMP WITH TIME ZONE": lambda n: T0 + timedelta(seconds=n),
    "INTEGER": lambda n: n,
    "BIGINT": lambda n: n,
    "DOUBLE": lambda n: n / 10,
    "BOOLEAN": lambda n: n % 2 == 0,
    "BLOB": lambda n: f"raw-{n}".encode(),
    "JSON": lambda n: {"serial": n},
}


def _value(table: TableSpec, column: str, sql_type: str, serial: int) -> Any:
    if sql_type == "UUID":
        return str(uuid.uuid5(uuid.NAMESPACE_OID, f"{table.name}:{column}:{serial}"))
    make = _BY_TYPE.get(sql_type)
    return make(serial) if make else f"{column}-{serial}"


def rows_for(table: str, writer: int, batch: int, count: int) -> list[dict[str, Any]]:
    """`count` rows for `table` whose keys never collide across writers and batches."""
    spec = TABLES[table]
    return [
        {
            c.name: _value(spec, c.name, c.sql_type, writer * 1_000_000 + batch * 1_000 + i)
            for c in spec.columns
        }
        for i in range(count)
    ]
