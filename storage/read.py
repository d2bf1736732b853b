"""Reading: hold the file only for one query, include rows still waiting in the outbox.

A read opens the database read-only (waiting a bounded time for the lock; `StorageBusy` past
it), loads each table's pending outbox rows into a temporary table, and shadows the table with a
temporary view over both (deduplicated on the key; newest row per key for latest-state tables).
For untrusted SQL (`zapflow sql`) DuckDB's own lock-down then refuses every file access,
ATTACH, INSTALL/LOAD and SET, and only one SELECT statement is accepted.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from storage.db import StorageError, connect
from storage.outbox import Outbox, written_at_s
from storage.tables import TABLES, TableSpec, feeding_files

__all__ = ["QueryRefused", "check_single_select", "read"]

_VANISHED_RETRIES = 3
_PATH_LIKE = re.compile(r"Table with name (\S*[/.]\S*) does not exist")


class QueryRefused(StorageError):
    """The SQL is not a single read-only SELECT, or tried something the lock-down forbids."""


def check_single_select(sql: str) -> None:
    """Refuse anything but exactly one SELECT (WITH ... SELECT counts as a SELECT)."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        msg = f"could not parse the query: {exc}"
        raise QueryRefused(msg) from None
    if len(statements) != 1:
        msg = f"one statement per call, got {len(statements)}"
        raise QueryRefused(msg)
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        msg = f"only a read-only SELECT is allowed here, got {kind.name}"
        raise QueryRefused(msg)


def _shadow_with_pending(
    con: duckdb.DuckDBPyConnection, catalog: str, table: TableSpec, files: list[Path]
) -> None:
    cols = ", ".join(table.column_names)
    key = ", ".join(table.key)
    pending = f"_pending_{table.name}"
    con.execute(
        f"CREATE TEMP TABLE {pending} AS SELECT {cols} FROM read_parquet($files, union_by_name = true)",
        {"files": [str(p) for p in files]},
    )
    stored = f'"{catalog}".main.{table.name}'
    if table.latest_by:
        order = ", ".join(f"{c} DESC NULLS LAST" for c in table.latest_by)
        body = (
            f"SELECT {cols} FROM (SELECT {cols} FROM {stored} UNION ALL SELECT {cols} FROM {pending}) "
            f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY {order}) = 1"
        )
    else:
        on = " AND ".join(f"s.{k} IS NOT DISTINCT FROM p.{k}" for k in table.key)
        body = (
            f"SELECT {cols} FROM {stored} UNION ALL "
            f"SELECT {cols} FROM (SELECT * FROM {pending} "
            f"QUALIFY row_number() OVER (PARTITION BY {key}) = 1) p "
            f"WHERE NOT EXISTS (SELECT 1 FROM {stored} s WHERE {on})"
        )
    con.execute(f"CREATE TEMP VIEW {table.name} AS {body}")


def _storage_health_view(
    con: duckdb.DuckDBPyConnection, catalog: str, pending: dict[str, list[Path]]
) -> None:
    now_s = time.time()
    rows = [
        (table, path.name, max(0.0, now_s - written_at_s(path)))
        for table, files in pending.items()
        for path in files
    ]
    con.execute("CREATE TEMP TABLE _outbox_pending (table_name VARCHAR, file VARCHAR, age_s DOUBLE)")
    if rows:
        con.executemany("INSERT INTO _outbox_pending VALUES (?, ?, ?)", rows)
    con.execute(
        "CREATE TEMP VIEW storage_health AS SELECT "
        "(SELECT count(*) FROM _outbox_pending) AS pending_files, "
        "(SELECT max(age_s) FROM _outbox_pending) AS oldest_pending_age_s, "
        f'* EXCLUDE (pending_files, oldest_pending_age_s) FROM "{catalog}".main.storage_health'
    )


def _run(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    params: dict[str, Any] | list[Any] | None,
    *,
    locked_down: bool,
) -> pa.Table:
    """Run the query itself, under DuckDB's lock-down for untrusted SQL."""
    if not locked_down:
        return con.sql(sql, params=params).to_arrow_table()
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    try:
        return con.sql(sql, params=params).to_arrow_table()
    except (duckdb.PermissionException, duckdb.InvalidInputException) as exc:
        msg = f"refused by the read-only lock-down: {str(exc).splitlines()[0]}"
        raise QueryRefused(msg) from None
    except duckdb.CatalogException as exc:
        # With file access off, `FROM '/etc/passwd'` is looked up as a table name.
        missing = _PATH_LIKE.search(str(exc))
        if missing is None:
            raise
        msg = f"reading files is not allowed here ({missing.group(1)}); query zapflow's tables"
        raise QueryRefused(msg) from None


def read(  # noqa: PLR0913 - keyword-only options of one read
    outbox: Outbox,
    sql: str,
    params: dict[str, Any] | list[Any] | None = None,
    *,
    include_pending: bool = True,
    locked_down: bool = False,
    timeout_s: float = 10.0,
) -> pa.Table:
    """Run one query against the database (plus pending outbox rows) and return an Arrow table."""
    if locked_down:
        check_single_select(sql)
    for attempt in range(_VANISHED_RETRIES):
        pending = outbox.pending() if include_pending else {}
        with connect(outbox.db_path, read_only=True, timeout_s=timeout_s) as con:
            catalog = str(con.execute("SELECT current_database()").fetchone()[0])  # type: ignore[index]
            try:
                for table, files in feeding_files(pending).items():
                    _shadow_with_pending(con, catalog, TABLES[table], files)
                _storage_health_view(con, catalog, pending)
            except duckdb.IOException:
                if attempt + 1 < _VANISHED_RETRIES:
                    continue  # a file was merged away between listing and reading: list again
                raise
            return _run(con, sql, params, locked_down=locked_down)
    msg = "outbox files kept vanishing during the read"  # pragma: no cover - bounded by the loop
    raise StorageError(msg)  # pragma: no cover
