"""A separate process for storage tests: hold the file, write and merge, or die at a chosen point.

Run as `python -m tests.support.storage_worker COMMAND DATA_DIR [ARGS]`; prints one JSON line.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import duckdb

from storage import TABLES, Storage
from tests.support.rows import rows_for


def _hold(data_dir: Path, *, read_only: bool) -> None:
    """Hold the database file until a line arrives on stdin (a user's DuckDB session)."""
    con = duckdb.connect(str(Storage.at(data_dir).settings.db_path), read_only=read_only)
    print(json.dumps({"held": True}), flush=True)  # noqa: T201 - the protocol with the test
    sys.stdin.readline()
    con.close()
    print(json.dumps({"released": True}), flush=True)  # noqa: T201


def _write(data_dir: Path, writer: int, batches: int, rows: int, lock_timeout_s: float) -> None:
    """Write `batches` batches to every table, trying a merge after each; count what happened."""
    store = Storage.at(data_dir, merge_lock_timeout_s=lock_timeout_s)
    skipped = merged = 0
    for batch in range(batches):
        for table in TABLES:
            store.write_batch(table, rows_for(table, writer, batch, rows))
        result = store.merge()
        skipped += result.skipped_busy
        merged += not result.skipped_busy
    print(json.dumps({"skipped": skipped, "merged": merged}), flush=True)  # noqa: T201


def _write_all(store: Storage, writer: int) -> None:
    for table in TABLES:
        store.write_batch(table, rows_for(table, writer, 0, 4))


def main() -> None:
    """Dispatch on the command."""
    command, data_dir = sys.argv[1], Path(sys.argv[2])
    args = sys.argv[3:]
    if command in ("hold-read", "hold-write"):
        _hold(data_dir, read_only=command == "hold-read")
    elif command == "write":
        _write(data_dir, int(args[0]), int(args[1]), int(args[2]), float(args[3]))
    elif command == "crash-after-rename":
        store = Storage.at(data_dir)
        _write_all(store, int(args[0]))
        os.kill(os.getpid(), signal.SIGKILL)
    elif command == "crash-after-commit":
        store = Storage.at(data_dir)
        _write_all(store, int(args[0]))
        store.merge(on_committed=lambda: os.kill(os.getpid(), signal.SIGKILL))
    elif command == "migrate":
        print(json.dumps({"applied": Storage.at(data_dir).ensure_ready()}), flush=True)  # noqa: T201
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
