"""Short-lived DuckDB connections that wait politely for the file lock, and the migrations.

DuckDB lets one process hold a database file; even a read-only session blocks writers. Every
connection here is opened for one unit of work and closed, retrying the lock error with jitter
up to a bound; past it the caller gets `StorageBusy` (it can degrade), never a hang.
"""

from __future__ import annotations

import logging
import random
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from zapflow.clock import SYSTEM_CLOCK, Clock

__all__ = ["LockStats", "StorageBusy", "StorageError", "connect", "migrate", "schema_version"]

log = logging.getLogger("zapflow.storage")
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_migrate_lock = threading.Lock()


class StorageError(Exception):
    """Base of storage errors."""


class StorageBusy(StorageError):
    """The database file stayed locked by another process past the wait bound."""


@dataclass
class LockStats:
    """How long a connection waited for the file lock, and how many tries it took."""

    waited_s: float = 0.0
    attempts: int = 0


def _is_lock_error(exc: duckdb.Error) -> bool:
    text = str(exc)
    return "lock" in text.lower() and ("Conflicting lock" in text or "Could not set lock" in text)


@contextmanager
def connect(  # noqa: PLR0913 - keyword-only seams with defaults
    path: Path,
    *,
    read_only: bool,
    timeout_s: float,
    clock: Clock = SYSTEM_CLOCK,
    rng: random.Random | None = None,
    stats: LockStats | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open `path` for one unit of work, retrying the lock error with jitter for up to `timeout_s`."""
    rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
    stats = stats if stats is not None else LockStats()
    started_s = clock.monotonic()
    backoff_s = 0.02
    while True:
        stats.attempts += 1
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.IOException as exc:
            if not _is_lock_error(exc):
                raise
            waited_s = clock.monotonic() - started_s
            if waited_s >= timeout_s:
                stats.waited_s = waited_s
                holder = str(exc).split("Conflicting lock is held in", 1)[-1].strip()[:120]
                msg = f"{path} stayed locked for {waited_s:.1f} s (held by {holder}); try again later"
                raise StorageBusy(msg) from None
            clock.sleep(min(rng.uniform(backoff_s / 2, backoff_s), timeout_s - waited_s))
            backoff_s = min(backoff_s * 2, 0.5)
    # Opening takes a few ms even uncontended; only time spent retrying counts as waiting.
    stats.waited_s = clock.monotonic() - started_s if stats.attempts > 1 else 0.0
    try:
        yield con
    finally:
        con.close()


def migrations() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of every migration, in order; misnamed files are an error."""
    found = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if match is None:
            msg = f"migration file {path.name} is not named NNNN_name.sql"
            raise StorageError(msg)
        found.append((int(match.group(1)), path.name, path.read_text(encoding="utf-8")))
    versions = [v for v, _, _ in found]
    if len(set(versions)) != len(versions):
        msg = f"two migrations share a number: {versions}"
        raise StorageError(msg)
    return found


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    """The highest applied migration (0 for a fresh database)."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
    ).fetchone()
    if not exists or not exists[0]:
        return 0
    row = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def migrate(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Apply every migration not yet recorded, each in its own transaction; return those applied.

    Safe when two processes start at once: the file lock lets one in at a time, and the second
    finds the versions recorded. Threads of one process share the database instance, so a
    process-wide lock keeps them from racing.
    """
    applied: list[int] = []
    with _migrate_lock:
        con.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
            "name VARCHAR NOT NULL, applied_at TIMESTAMP WITH TIME ZONE NOT NULL)"
        )
        done = {int(v) for (v,) in con.execute("SELECT version FROM schema_version").fetchall()}
        for version, name, sql in migrations():
            if version in done:
                continue
            con.begin()
            try:
                con.execute(sql)
                con.execute("INSERT INTO schema_version VALUES (?, ?, now())", [version, name])
                con.commit()
            except BaseException:
                con.rollback()
                raise
            log.info("applied migration %s", name)
            applied.append(version)
    return applied
