"""`Storage`: the one object flows and the CLI use: start-up checks, writes, merges, reads."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from storage.db import StorageError, connect, migrate, schema_version
from storage.outbox import MergeResult, Outbox
from storage.read import read
from zapflow.clock import SYSTEM_CLOCK, Clock
from zapflow.settings import StorageSettings

__all__ = ["Storage"]


class Storage:
    """DuckDB system of record with a Parquet outbox in front of it."""

    def __init__(self, settings: StorageSettings, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.settings = settings
        self.clock = clock
        self.outbox = Outbox(
            settings.outbox_dir, settings.db_path, clock=clock, lock_timeout_s=settings.merge_lock_timeout_s
        )

    @classmethod
    def at(cls, data_dir: Path | str, **overrides: Any) -> Storage:  # noqa: ANN401
        """Storage in `data_dir` (tests, tools)."""
        return cls(StorageSettings(_env_file=None, data_dir=Path(data_dir), **overrides))

    def ensure_ready(self) -> list[int]:
        """Check the data directory (clear errors), create it, apply pending migrations."""
        data_dir = self.settings.data_dir
        if data_dir.exists() and not data_dir.is_dir():
            msg = f"data directory {data_dir} is not a directory"
            raise StorageError(msg)
        if not data_dir.exists() and not data_dir.parent.exists():
            msg = f"data directory {data_dir} cannot be created: {data_dir.parent} does not exist"
            raise StorageError(msg)
        try:
            self.settings.outbox_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            what = "is not writable by this user" if data_dir.is_dir() else "cannot be created"
            msg = f"data directory {data_dir} {what}: {exc.strerror}"
            raise StorageError(msg) from None
        # Probe by writing: permission bits lie for root and on some mounts.
        probe = self.settings.outbox_dir / f".probe-{os.getpid()}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            msg = f"data directory {data_dir} is not writable by this user: {exc.strerror}"
            raise StorageError(msg) from None
        with connect(
            self.settings.db_path,
            read_only=False,
            timeout_s=self.settings.merge_lock_timeout_s,
            clock=self.clock,
        ) as con:
            return migrate(con)

    def schema_version(self) -> int:
        """The applied migration level."""
        with connect(
            self.settings.db_path, read_only=True, timeout_s=self.settings.read_lock_timeout_s
        ) as con:
            return schema_version(con)

    def write_batch(self, table: str, rows: Sequence[Mapping[str, Any]]) -> Path | None:
        """Durably queue rows for `table` (see `Outbox.write_batch`)."""
        return self.outbox.write_batch(table, rows)

    def merge(self, *, on_committed: Callable[[], None] | None = None) -> MergeResult:
        """Merge pending batches into the database (see `Outbox.merge`)."""
        if not self.settings.db_path.exists():
            self.ensure_ready()
        return self.outbox.merge(on_committed=on_committed)

    def read(
        self,
        sql: str,
        params: dict[str, Any] | list[Any] | None = None,
        *,
        include_pending: bool = True,
        locked_down: bool = False,
    ) -> pa.Table:
        """One query, pending outbox rows included (see `storage.read.read`)."""
        if not self.settings.db_path.exists():
            self.ensure_ready()
        return read(
            self.outbox,
            sql,
            params,
            include_pending=include_pending,
            locked_down=locked_down,
            timeout_s=self.settings.read_lock_timeout_s,
        )
