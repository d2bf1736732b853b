"""The outbox: every write lands as an immutable Parquet file first, merged into DuckDB later.

`write_batch` returns once the batch is durable (written to `.tmp`, fsynced, renamed, directory
fsynced), whoever holds the database. `merge` moves every pending file of every table into the
database in one transaction with set-based, idempotent inserts (`ON CONFLICT DO NOTHING` on the
natural key; latest-state tables keep the newest row per key), then deletes the merged files
while still holding the file lock. A crash between commit and deletion re-merges harmlessly.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from storage.db import LockStats, StorageBusy, StorageError, connect, migrate
from storage.tables import TABLES, TableSpec, feeding_files, spec
from zapflow.clock import SYSTEM_CLOCK, Clock

__all__ = ["MergeResult", "Outbox", "merge_sql", "written_at_s"]

log = logging.getLogger("zapflow.storage")
_STALE_TMP_S = 3600.0


@dataclass
class MergeResult:
    """What one merge did."""

    files: int = 0
    rows_read: int = 0
    rows_inserted: dict[str, int] = field(default_factory=dict)
    lock: LockStats = field(default_factory=LockStats)
    skipped_busy: bool = False
    """True when the database stayed locked: the files wait for the next merge."""


def merge_sql(table: TableSpec) -> str:
    """The set-based insert of one table from a list of Parquet files (parameter `$files`)."""
    cols = ", ".join(table.column_names)
    key = ", ".join(table.key)
    source = f"SELECT {cols} FROM read_parquet($files, union_by_name = true)"
    if not table.latest_by:
        # Duplicates inside one batch set (a re-delivered message in two files) collapse first.
        return (
            f"INSERT INTO {table.name} ({cols}) {source} "
            f"QUALIFY row_number() OVER (PARTITION BY {key}) = 1 "
            "ON CONFLICT DO NOTHING"
        )
    order = ", ".join(f"{c} DESC NULLS LAST" for c in table.latest_by)
    updates = ", ".join(f"{c} = excluded.{c}" for c in table.column_names if c not in table.key)
    newer = " OR ".join(
        f"(excluded.{c} > {table.name}.{c}"
        + "".join(f" AND excluded.{p} = {table.name}.{p}" for p in table.latest_by[:i])
        + ")"
        for i, c in enumerate(table.latest_by)
    )
    # DuckDB's upsert keeps the first of several rows for one key in one statement: reduce the
    # batch to the newest row per key first, and never let an older row overwrite a newer one.
    return (
        f"INSERT INTO {table.name} ({cols}) {source} "
        f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY {order}) = 1 "
        f"ON CONFLICT ({key}) DO UPDATE SET {updates} WHERE {newer}"
    )


class Outbox:
    """Pending Parquet batches under `<data_dir>/outbox/<table>/`, and their merge into `db_path`."""

    def __init__(
        self,
        outbox_dir: Path,
        db_path: Path,
        *,
        clock: Clock = SYSTEM_CLOCK,
        lock_timeout_s: float = 10.0,
    ) -> None:
        self.outbox_dir = outbox_dir
        self.db_path = db_path
        self._clock = clock
        self._lock_timeout_s = lock_timeout_s
        self._merge_lock = threading.Lock()

    # -- writing ---------------------------------------------------------------------------------

    def write_batch(self, table: str, rows: Sequence[Mapping[str, Any]]) -> Path | None:
        """Durably queue `rows` for `table`; returns the file (None for no rows).

        Generated keys are filled in here (UUIDs), so re-merging a file can never duplicate it.
        """
        table_spec = spec(table)
        if not rows:
            return None
        arrow = self._to_arrow(table_spec, rows)
        folder = self.outbox_dir / table
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex}.parquet"
        final = folder / name
        tmp = folder / f"{name}.tmp"
        with tmp.open("wb") as handle:
            pq.write_table(arrow, handle)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(final)
        _fsync_dir(folder)
        return final

    def _to_arrow(self, table: TableSpec, rows: Sequence[Mapping[str, Any]]) -> pa.Table:
        known = set(table.column_names)
        prepared = []
        for index, row in enumerate(rows):
            unknown = set(row) - known
            if unknown:
                msg = f"{table.name} row {index}: unknown columns {sorted(unknown)}"
                raise StorageError(msg)
            record = dict(row)
            if table.generated_key and record.get(table.generated_key) is None:
                record[table.generated_key] = str(uuid.uuid4())
            missing = [k for k in table.key if record.get(k) is None]
            if missing:
                msg = f"{table.name} row {index}: key column(s) {missing} missing"
                raise StorageError(msg)
            for column in table.json_columns & record.keys():
                if record[column] is not None and not isinstance(record[column], str):
                    record[column] = json.dumps(record[column], default=str, separators=(",", ":"))
            for column, value in record.items():
                if isinstance(value, datetime) and value.tzinfo is None:
                    msg = f"{table.name} row {index}: {column} is a naive datetime (use UTC-aware times)"
                    raise StorageError(msg)
            prepared.append(record)
        try:
            return pa.Table.from_pylist(prepared, schema=table.arrow_schema())
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            msg = f"{table.name}: rows do not fit the table's columns: {exc}"
            raise StorageError(msg) from None

    # -- reading the queue -----------------------------------------------------------------------

    def pending(self) -> dict[str, list[Path]]:
        """Pending files per table, oldest first (in-flight `.tmp` files are not pending)."""
        found: dict[str, list[Path]] = {}
        for table in TABLES:
            folder = self.outbox_dir / table
            if folder.is_dir():
                files = sorted(folder.glob("*.parquet"))
                if files:
                    found[table] = files
        return found

    # -- merging ---------------------------------------------------------------------------------

    def merge(self, *, on_committed: Callable[[], None] | None = None) -> MergeResult:
        """Merge every pending file into the database in one transaction, then delete the files.

        Waits a bounded time for the file lock; when another process holds it past the bound the
        files simply stay for the next merge (`skipped_busy`). `on_committed` runs between commit
        and deletion (crash tests use it).
        """
        result = MergeResult()
        with self._merge_lock:
            started = self._clock.now()
            try:
                with connect(
                    self.db_path,
                    read_only=False,
                    timeout_s=self._lock_timeout_s,
                    clock=self._clock,
                    stats=result.lock,
                ) as con:
                    migrate(con)  # a fresh or older database gets its tables first
                    # List under the lock: no other process can merge and delete meanwhile.
                    pending = self.pending()
                    if not pending:
                        return result
                    self._merge_locked(con, pending, result, started)
                    if on_committed is not None:
                        on_committed()
                    for files in pending.values():
                        for path in files:
                            path.unlink(missing_ok=True)
            except StorageBusy as exc:
                log.warning("merge skipped, files stay in the outbox: %s", exc)
                result.skipped_busy = True
            self._sweep_stale_tmp()
        return result

    def _merge_locked(
        self,
        con: duckdb.DuckDBPyConnection,
        pending: dict[str, list[Path]],
        result: MergeResult,
        started: datetime,
    ) -> None:
        con.begin()
        try:
            for files in pending.values():
                result.files += len(files)
                result.rows_read += sum(pq.ParquetFile(p).metadata.num_rows for p in files)
            for table, files in feeding_files(pending).items():
                names = [str(p) for p in files]
                row = con.execute(merge_sql(TABLES[table]), {"files": names}).fetchone()
                result.rows_inserted[table] = int(row[0]) if row else 0
            con.execute(
                "INSERT INTO storage_merges VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    str(uuid.uuid4()),
                    started,
                    self._clock.now(),
                    result.files,
                    result.rows_read,
                    sum(result.rows_inserted.values()),
                    result.lock.waited_s,
                    result.lock.attempts,
                ],
            )
            con.commit()
        except BaseException:
            con.rollback()
            raise

    def _sweep_stale_tmp(self) -> None:
        """Remove `.tmp` files a crashed writer left behind (never renamed, so never durable)."""
        cutoff = time.time() - _STALE_TMP_S
        for tmp in self.outbox_dir.glob("*/*.parquet.tmp"):
            try:
                if tmp.stat().st_mtime < cutoff:
                    tmp.unlink(missing_ok=True)
            except FileNotFoundError:
                continue


def written_at_s(path: Path) -> float:
    """When a batch file was written (epoch seconds), from the nanosecond stamp in its name."""
    return int(path.name.split("-", 1)[0]) / 1e9


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
