"""The broker's durable state in one SQLite file: messages, sequence numbers, subscriptions.

Writes are queued during a reactor turn and committed together by `commit()` (group commit);
the broker answers a settlement or a publish only after the commit that made it durable, so a
process killed with SIGKILL loses nothing it acknowledged. WAL with `synchronous=NORMAL`
survives a process crash (not a power cut), which is what a local broker needs.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Store", "StoredMessage", "SubscriptionRow"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS topics (name TEXT PRIMARY KEY, next_seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS subscriptions (
    topic TEXT NOT NULL, name TEXT NOT NULL,
    last_active_s REAL NOT NULL, deleted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (topic, name)
);
CREATE TABLE IF NOT EXISTS messages (
    entity TEXT NOT NULL, seq INTEGER NOT NULL, enqueued_ms INTEGER NOT NULL,
    delivery_count INTEGER NOT NULL, deferred INTEGER NOT NULL, bare BLOB NOT NULL,
    PRIMARY KEY (entity, seq)
) WITHOUT ROWID;
"""

_INSERT = (
    "INSERT OR REPLACE INTO messages (entity, seq, enqueued_ms, delivery_count, deferred, bare)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
_DELETE = "DELETE FROM messages WHERE entity = ? AND seq = ?"
_COUNT = "UPDATE messages SET delivery_count = ? WHERE entity = ? AND seq = ?"
_DEFER = "UPDATE messages SET deferred = 1 WHERE entity = ? AND seq = ?"
_SEQ = "INSERT OR REPLACE INTO topics (name, next_seq) VALUES (?, ?)"
_ACTIVE = "UPDATE subscriptions SET last_active_s = ? WHERE topic = ? AND name = ?"
_DELETE_SUB = "UPDATE subscriptions SET deleted = 1 WHERE topic = ? AND name = ?"
_DELETE_ENTITY = "DELETE FROM messages WHERE entity = ? OR entity = ?"


@dataclass(frozen=True)
class StoredMessage:
    """One message row."""

    entity: str
    seq: int
    enqueued_ms: int
    delivery_count: int
    deferred: bool
    bare: bytes


@dataclass(frozen=True)
class SubscriptionRow:
    """One subscription row."""

    topic: str
    name: str
    last_active_s: float
    deleted: bool


class Store:
    """SQLite-backed state; used only from the broker's loop thread."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._pending: dict[str, list[tuple[object, ...]]] = defaultdict(list)
        # Statement order within a commit: inserts before the updates and deletes that may follow.
        self._order = [_SEQ, _INSERT, _COUNT, _DEFER, _DELETE, _ACTIVE, _DELETE_SUB, _DELETE_ENTITY]

    def close(self) -> None:
        """Close the file (pending writes are committed first)."""
        self.commit()
        self._db.close()

    # -- reads at start-up --------------------------------------------------------------------------

    def next_sequence(self, topic: str) -> int:
        """The next sequence number of `topic` (1 for a new topic)."""
        row = self._db.execute("SELECT next_seq FROM topics WHERE name = ?", (topic,)).fetchone()
        return 1 if row is None else int(row[0])

    def subscription(self, topic: str, name: str, *, now_s: float) -> SubscriptionRow:
        """The stored subscription, created active at `now_s` when new."""
        self._db.execute(
            "INSERT OR IGNORE INTO subscriptions (topic, name, last_active_s) VALUES (?, ?, ?)",
            (topic, name, now_s),
        )
        row = self._db.execute(
            "SELECT last_active_s, deleted FROM subscriptions WHERE topic = ? AND name = ?", (topic, name)
        ).fetchone()
        return SubscriptionRow(topic, name, float(row[0]), bool(row[1]))

    def messages(self, entity: str) -> list[StoredMessage]:
        """Every stored message of `entity` in sequence order."""
        rows = self._db.execute(
            "SELECT seq, enqueued_ms, delivery_count, deferred, bare FROM messages"
            " WHERE entity = ? ORDER BY seq",
            (entity,),
        ).fetchall()
        return [StoredMessage(entity, r[0], r[1], r[2], bool(r[3]), bytes(r[4])) for r in rows]

    # -- queued writes --------------------------------------------------------------------------------

    def insert(self, entity: str, seq: int, enqueued_ms: int, delivery_count: int, bare: bytes) -> None:
        """Queue a new (or moved) message."""
        self._pending[_INSERT].append((entity, seq, enqueued_ms, delivery_count, 0, bare))

    def delete(self, entity: str, seq: int) -> None:
        """Queue a removal."""
        self._pending[_DELETE].append((entity, seq))

    def set_delivery_count(self, entity: str, seq: int, count: int) -> None:
        """Queue a delivery-count change."""
        self._pending[_COUNT].append((count, entity, seq))

    def defer(self, entity: str, seq: int) -> None:
        """Queue setting a message aside."""
        self._pending[_DEFER].append((entity, seq))

    def set_sequence(self, topic: str, next_seq: int) -> None:
        """Queue the topic's next sequence number."""
        self._pending[_SEQ].append((topic, next_seq))

    def touch(self, topic: str, name: str, now_s: float) -> None:
        """Queue a subscription's last activity."""
        self._pending[_ACTIVE].append((now_s, topic, name))

    def delete_subscription(self, topic: str, name: str, entities: tuple[str, str]) -> None:
        """Queue deleting a subscription and its messages (dead letters included)."""
        self._pending[_DELETE_SUB].append((topic, name))
        self._pending[_DELETE_ENTITY].append(entities)

    @property
    def dirty(self) -> bool:
        """True when writes are queued."""
        return bool(self._pending)

    def commit(self) -> None:
        """Write every queued change in one transaction."""
        if not self._pending:
            return
        pending, self._pending = self._pending, defaultdict(list)
        self._db.execute("BEGIN")
        try:
            for statement in self._order:
                rows = pending.get(statement)
                if rows:
                    self._db.executemany(statement, rows)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
