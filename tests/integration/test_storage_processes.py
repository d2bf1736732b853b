"""Storage across processes: nothing stalls or is lost whoever holds the file, and crashes are safe."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from storage import TABLES, Storage, StorageBusy
from storage.db import migrations
from tests.support.processes import holding, worker
from tests.support.rows import rows_for


def _counts(store: Storage) -> dict[str, int]:
    return {
        t: int(store.read(f"SELECT count(*) AS n FROM {t}", include_pending=False)["n"][0].as_py())  # noqa: S608
        for t in TABLES
    }


def test_writers_never_fail_while_a_reader_holds_the_file(tmp_path: Path) -> None:
    """Two writer processes keep writing while a third holds the file read-only; nothing is lost."""
    data = tmp_path / "data"
    store = Storage.at(data)
    store.ensure_ready()
    batches, rows = 4, 3
    with holding(data, "hold-read"):
        writers = [worker("write", data, w, batches, rows, 0.2) for w in (1, 2)]
        results = []
        for writer in writers:
            out, err = writer.communicate(timeout=120)
            assert writer.returncode == 0, err
            results.append(json.loads(out.splitlines()[-1]))
        # Every write call returned; every merge waited its bound and left the files in the outbox.
        assert results == [{"skipped": batches, "merged": 0}] * 2
        pending = store.outbox.pending()
        assert sum(len(f) for f in pending.values()) == 2 * batches * len(TABLES)
    result = store.merge()  # the reader left: merging resumes
    assert not result.skipped_busy
    assert store.outbox.pending() == {}
    assert _counts(store) == dict.fromkeys(TABLES, 2 * batches * rows)


@pytest.mark.parametrize("point", ["crash-after-rename", "crash-after-commit"])
def test_a_killed_writer_loses_and_duplicates_nothing(tmp_path: Path, point: str) -> None:
    """SIGKILL after the outbox rename, or between commit and file deletion: each row exactly once."""
    data = tmp_path / "data"
    store = Storage.at(data)
    store.ensure_ready()
    writer = worker(point, data, 7)
    _, err = writer.communicate(timeout=120)
    assert writer.returncode == -signal.SIGKILL, err
    assert store.outbox.pending(), "the killed writer's batches are durable in the outbox"
    before = _counts(store)
    expected_before = 4 if point == "crash-after-commit" else 0
    assert before == dict.fromkeys(TABLES, expected_before)
    store.merge()
    assert store.outbox.pending() == {}
    assert _counts(store) == dict.fromkeys(TABLES, 4)
    store.write_batch("charger_events", rows_for("charger_events", 7, 0, 4))  # the same rows once more
    store.merge()
    assert _counts(store)["charger_events"] == 4


def test_two_processes_migrating_at_once(tmp_path: Path) -> None:
    """Two processes opening a fresh database together: each migration applied exactly once."""
    data = tmp_path / "data"
    data.mkdir()
    runs = [worker("migrate", data) for _ in range(2)]
    applied = []
    for run in runs:
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
        applied += json.loads(out.splitlines()[-1])["applied"]
    everything = [v for v, _, _ in migrations()]
    assert sorted(applied) == everything
    store = Storage.at(data)
    assert store.read("SELECT version FROM schema_version ORDER BY 1")["version"].to_pylist() == everything


def test_a_held_file_is_a_typed_error_for_readers(tmp_path: Path) -> None:
    """A reader that cannot get the lock in time gets StorageBusy naming the holder, never a hang."""
    data = tmp_path / "data"
    Storage.at(data).ensure_ready()
    impatient = Storage.at(data, read_lock_timeout_s=0.3)
    with holding(data, "hold-write"), pytest.raises(StorageBusy, match="stayed locked"):
        impatient.read("SELECT 1")
    assert impatient.read("SELECT 1 AS one")["one"].to_pylist() == [1]
