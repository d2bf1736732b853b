"""Storage in one process: outbox batches, idempotent merges, latest state, migrations, safe reads."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from storage import TABLES, QueryRefused, Storage, StorageError
from storage.db import migrations
from storage.outbox import merge_sql
from tests.support.rows import T0, rows_for


@pytest.fixture
def store(tmp_path: Path) -> Storage:
    """A migrated storage in a temp dir."""
    s = Storage.at(tmp_path / "data")
    s.ensure_ready()
    return s


def _count(store: Storage, table: str, *, include_pending: bool = False) -> int:
    sql = f"SELECT count(*) AS n FROM {table}"  # noqa: S608 - table names from the fixed registry
    return int(store.read(sql, include_pending=include_pending)["n"][0].as_py())


def _latest(charger: str, seconds: int, value: str, received: int = 0) -> dict[str, object]:
    return {
        "charger_id": charger,
        "state_id": 513,
        "observed_at": T0 + timedelta(seconds=seconds),
        "value": value,
        "source": "test",
        "received_at": T0 + timedelta(seconds=received),
    }


def test_write_batch_is_an_immutable_parquet_file(store: Storage) -> None:
    """A batch lands as one renamed .parquet file with the table's schema; no .tmp is left."""
    path = store.write_batch("meter_readings", rows_for("meter_readings", 1, 1, 5))
    assert path is not None
    assert path.suffix == ".parquet"
    assert path.parent.name == "meter_readings"
    assert pq.read_table(path).schema.names == list(TABLES["meter_readings"].column_names)
    assert not list(path.parent.glob("*.tmp"))
    assert store.write_batch("meter_readings", []) is None


def test_generated_keys_are_filled_before_writing(store: Storage) -> None:
    """A UUID key missing from a row is assigned in the file, never by the database."""
    path = store.write_batch("api_calls", [{"endpoint": "GET /x", "called_at": T0}, {"endpoint": "GET /y"}])
    assert path is not None
    ids = pq.read_table(path)["call_id"].to_pylist()
    assert len(set(ids)) == 2
    assert all(ids)


@pytest.mark.parametrize(
    ("table", "row", "match"),
    [
        ("nope", {}, "unknown table 'nope'; outbox tables:"),
        ("ticks", {"tick_id": "t", "colour": "red"}, r"unknown columns \['colour'\]"),
        ("meter_readings", {"installation_id": "i"}, r"key column\(s\) \['measured_at'\] missing"),
        ("ticks", {"started_at": T0.replace(tzinfo=None)}, "naive datetime"),
        ("ticks", {"dry_run": "maybe"}, "do not fit the table's columns"),
    ],
    ids=["unknown-table", "unknown-column", "missing-key", "naive-time", "wrong-type"],
)
def test_bad_rows_are_refused_before_anything_is_written(
    store: Storage, table: str, row: dict[str, object], match: str
) -> None:
    """Bad input gets a clear error and leaves no file behind."""
    with pytest.raises((StorageError, ValueError), match=match):
        store.write_batch(table, [row])
    assert store.outbox.pending() == {}


def test_merge_moves_every_table_in_one_go(store: Storage) -> None:
    """One merge takes every pending file of every table and deletes them."""
    for table in TABLES:
        store.write_batch(table, rows_for(table, 1, 1, 3))
    result = store.merge()
    assert result.files == len(TABLES)
    assert result.rows_inserted == dict.fromkeys(TABLES, 3)
    assert store.outbox.pending() == {}
    for table in TABLES:
        assert _count(store, table) == 3


def test_re_merging_the_same_file_never_duplicates(store: Storage, tmp_path: Path) -> None:
    """A file merged twice (a crash between commit and delete) leaves every row once."""
    saved: dict[Path, Path] = {}
    for table in TABLES:
        path = store.write_batch(table, rows_for(table, 1, 1, 4))
        assert path is not None
        saved[path] = tmp_path / f"{table}.parquet"
        shutil.copy(path, saved[path])
    store.merge()
    for original, copy in saved.items():
        shutil.copy(copy, original)
    second = store.merge()
    assert second.files == len(TABLES)
    assert sum(second.rows_inserted.values()) == 0
    for table in TABLES:
        assert _count(store, table) == 4


def test_failure_after_commit_keeps_files_and_remerges_once(store: Storage) -> None:
    """If the writer dies after commit but before deleting, the next merge is harmless."""
    store.write_batch("charger_events", rows_for("charger_events", 1, 1, 7))

    def die() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.merge(on_committed=die)
    assert store.outbox.pending()
    assert _count(store, "charger_events") == 7
    store.merge()
    assert store.outbox.pending() == {}
    assert _count(store, "charger_events") == 7


def test_duplicates_within_one_merge_collapse(store: Storage) -> None:
    """The same event in two files of one merge is stored once."""
    rows = rows_for("charger_events", 1, 1, 5)
    store.write_batch("charger_events", rows)
    store.write_batch("charger_events", rows[2:])
    assert store.merge().rows_inserted["charger_events"] == 5


@pytest.mark.parametrize(
    ("batches", "expected"),
    [
        ([[_latest("c", 1, "a"), _latest("c", 3, "c"), _latest("c", 2, "b")]], "c"),
        ([[_latest("c", 3, "c")], [_latest("c", 1, "a")]], "c"),
        ([[_latest("c", 1, "a")], [_latest("c", 3, "c")], [_latest("c", 2, "b")]], "c"),
        ([[_latest("c", 5, "first", received=1), _latest("c", 5, "second", received=2)]], "second"),
    ],
    ids=["one-merge-out-of-order", "older-later-merge", "three-merges-mixed", "same-time-later-receipt"],
)
def test_latest_state_keeps_the_newest(
    store: Storage, batches: list[list[dict[str, object]]], expected: str
) -> None:
    """In one merge and across merges, in and out of order: the newest observation wins."""
    for batch in batches:
        store.write_batch("charger_state_latest", batch)
        # Pending rows are already visible, newest first, before any merge.
        pending_view = store.read("SELECT value FROM charger_state_latest")["value"].to_pylist()
        assert len(pending_view) == 1
        store.merge()
    assert store.read("SELECT value FROM charger_state_latest")["value"].to_pylist() == [expected]


def test_reads_include_pending_rows_once(store: Storage) -> None:
    """Pending rows are part of every read, deduplicated against merged ones."""
    rows = rows_for("meter_readings", 1, 1, 4)
    store.write_batch("meter_readings", rows[:2])
    store.merge()
    store.write_batch("meter_readings", rows)  # two already merged, two new
    assert _count(store, "meter_readings", include_pending=True) == 4
    assert _count(store, "meter_readings", include_pending=False) == 2
    health = store.read("SELECT pending_files, merges FROM storage_health").to_pylist()[0]
    assert health["pending_files"] == 1
    assert health["merges"] == 1


def test_fresh_database_is_created_on_first_read(tmp_path: Path) -> None:
    """Reading before anything was merged creates and migrates the database."""
    fresh = Storage.at(tmp_path / "new")
    assert _count(fresh, "ticks") == 0
    assert fresh.schema_version() == max(v for v, _, _ in migrations())


def test_migrations_apply_once(tmp_path: Path) -> None:
    """A fresh database gets every migration; an up-to-date one none."""
    s = Storage.at(tmp_path / "data")
    assert s.ensure_ready() == [v for v, _, _ in migrations()]
    assert s.ensure_ready() == []
    versions = s.read("SELECT version FROM schema_version ORDER BY version")["version"].to_pylist()
    assert versions == [v for v, _, _ in migrations()]


def test_specs_match_the_migrated_schema(store: Storage) -> None:
    """Every outbox spec agrees with the table the migrations create, column for column."""
    for table in TABLES.values():
        described = store.read(f"DESCRIBE {table.name}", include_pending=False).to_pylist()
        assert [(d["column_name"], d["column_type"]) for d in described] == [
            (c.name, c.sql_type) for c in table.columns
        ]
        keys = [d["column_name"] for d in described if d["key"] == "PRI"]
        assert sorted(keys) == sorted(table.key)


def test_merge_sql_is_set_based() -> None:
    """Every merge is one INSERT ... SELECT from read_parquet with ON CONFLICT, never row by row."""
    for table in TABLES.values():
        sql = merge_sql(table)
        assert sql.startswith(f"INSERT INTO {table.name}")
        assert "read_parquet($files" in sql
        assert "ON CONFLICT" in sql


@pytest.mark.parametrize(
    ("sql", "match"),
    [
        ("INSERT INTO ticks (tick_id) VALUES ('x')", "got INSERT"),
        ("UPDATE ticks SET status = 'x'", "got UPDATE"),
        ("DELETE FROM ticks", "got DELETE"),
        ("CREATE TABLE x (a INT)", "got CREATE"),
        ("DROP TABLE ticks", "got DROP"),
        ("COPY ticks TO '/tmp/zapflow-copy.csv'", "got COPY"),
        ("EXPORT DATABASE '/tmp/zapflow-export'", "got EXPORT"),
        ("ATTACH '/tmp/zapflow-other.duckdb' AS other", "got ATTACH"),
        ("INSTALL httpfs", "got LOAD"),
        ("LOAD httpfs", "got LOAD"),
        ("SET threads = 1", "got SET"),
        ("SELECT * FROM read_text('/etc/hostname')", "file system operations are disabled"),
        ("SELECT * FROM read_csv('/etc/passwd')", "file system operations are disabled"),
        ("SELECT * FROM glob('/*')", "file system operations are disabled"),
        ("SELECT * FROM '/etc/passwd'", "reading files is not allowed"),
        ("SELECT 1; SELECT 2", "one statement per call, got 2"),
        ("SELECT 1; DROP TABLE ticks", "one statement per call, got 2"),
        ("SELEC nonsense", "could not parse"),
    ],
    ids=[
        "insert",
        "update",
        "delete",
        "create",
        "drop",
        "copy-to",
        "export-database",
        "attach",
        "install",
        "load",
        "set",
        "read_text",
        "read_csv",
        "glob",
        "from-path",
        "two-selects",
        "select-then-drop",
        "syntax-error",
    ],
)
def test_locked_down_sql_is_refused(store: Storage, sql: str, match: str) -> None:
    """Untrusted SQL gets one read-only SELECT over zapflow's tables and nothing else."""
    with pytest.raises(QueryRefused, match=match):
        store.read(sql, locked_down=True)
    assert not Path("/tmp/zapflow-copy.csv").exists()  # noqa: S108 - where the refused COPY would write


def test_locked_down_select_still_sees_pending_rows(store: Storage) -> None:
    """The lock-down comes after pending rows are loaded, so they are still there."""
    store.write_batch("ticks", rows_for("ticks", 1, 1, 3))
    table = store.read("WITH t AS (SELECT * FROM ticks) SELECT count(*) AS n FROM t", locked_down=True)
    assert table["n"].to_pylist() == [3]


@pytest.mark.parametrize(
    ("make_path", "match"),
    [
        (lambda tmp: tmp / "missing-parent" / "data", "does not exist"),
        (lambda tmp: tmp / "a-file", "is not a directory"),
        (lambda _tmp: Path("/proc/zapflow-data"), "cannot be created"),
        (lambda _tmp: Path("/sys/kernel"), "not writable"),
    ],
    ids=["missing-parent", "a-file", "cannot-create", "unwritable"],
)
def test_bad_data_directory_is_a_clear_error(tmp_path: Path, make_path: object, match: str) -> None:
    """A data directory that cannot work is reported at start-up, naming the path."""
    (tmp_path / "a-file").write_text("x")
    path = make_path(tmp_path)  # type: ignore[operator]
    with pytest.raises(StorageError, match=match):
        Storage.at(path).ensure_ready()


def test_duckdb_cli_sees_the_tables(store: Storage) -> None:
    """A plain DuckDB session on the file (what users run) sees merged rows and the health view."""
    store.write_batch("ticks", rows_for("ticks", 1, 1, 2))
    store.merge()
    with duckdb.connect(str(store.settings.db_path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM ticks").fetchone() == (2,)
        assert con.execute("SELECT pending_files, merges FROM storage_health").fetchone() == (None, 1)


def test_a_file_merged_away_mid_read_is_not_an_error(store: Storage, tmp_path: Path) -> None:
    """If a listed pending file is gone by the time it is read, the read lists again and succeeds."""
    from storage.outbox import Outbox  # noqa: PLC0415 - only this test subclasses it
    from storage.read import read  # noqa: PLC0415

    store.write_batch("ticks", rows_for("ticks", 1, 1, 2))
    store.merge()
    store.write_batch("ticks", rows_for("ticks", 1, 2, 1))

    class StaleFirstListing(Outbox):
        """The first listing names a file another process has just merged and deleted."""

        calls = 0

        def pending(self) -> dict[str, list[Path]]:
            self.calls += 1
            real = super().pending()
            if self.calls == 1:
                return {"ticks": [*real["ticks"], tmp_path / "gone.parquet"]}
            return real

    outbox = StaleFirstListing(store.settings.outbox_dir, store.settings.db_path)
    assert read(outbox, "SELECT count(*) AS n FROM ticks")["n"].to_pylist() == [3]
    assert outbox.calls == 2
