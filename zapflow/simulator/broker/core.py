"""A local AMQP 1.0 broker with Azure Service Bus topic-subscription semantics.

One thread runs a selector loop over proton's protocol engine (no proton reactor: its handler
layers cost more per message than the broker's own work). Each loop turn reads every ready
socket and handles the protocol events, commits the queued SQLite writes once, *then* answers
the settlements and publishes those writes made durable, hands messages to receivers with
credit, and writes the sockets. Other threads talk to the loop through `_call` (publish, drop
connections, inspect), which runs a function inside the loop and returns after the commit.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, Self, cast

import cproton
from proton import (
    Array,
    Collector,
    Condition,
    Connection,
    Data,
    Delivery,
    Disposition,
    Link,
    Message,
    Session,
    Transport,
    timestamp,
)

from zapflow.clock import SYSTEM_CLOCK
from zapflow.simulator.broker import amqp
from zapflow.simulator.broker.sas import entity_path, verify_sas_token
from zapflow.simulator.broker.store import Store

__all__ = ["Broker", "BrokerConfig", "EntityStats"]

# proton's wrap() functions are untyped; bind them once as typed callables.
_wrap_delivery: Callable[[Any], Delivery] = Delivery.wrap
_wrap_link: Callable[[Any], Link] = Link.wrap
_wrap_session: Callable[[Any], Session] = Session.wrap

_log = logging.getLogger(__name__)

_SUBSCRIPTIONS = "/subscriptions/"
_DEAD_LETTER = "/$deadletterqueue"
_MANAGEMENT = "/$management"
_CBS = "$cbs"
_INCOMING_CREDIT = 500
_READ_SIZE = 1 << 16
_TOUCH_PERSIST_S = 60.0
_IDLE_POLL_S = 0.5
_OK = 200
_ACCEPTED = 202

_NOT_FOUND = "amqp:not-found"
_UNAUTHORIZED = "amqp:unauthorized-access"
_LOCK_LOST = "com.microsoft:message-lock-lost"


class NowClock(Protocol):
    """The only thing idle expiry needs from a clock (the simulator's clock or a `Clock`)."""

    def now(self) -> datetime:
        """The current (simulated) time, timezone-aware."""
        ...


@dataclass(frozen=True)
class BrokerConfig:
    """How the broker listens, whom it admits and which entities it holds."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    key_name: str = "zapflow-sim"
    key: str = field(default="zapflow-sim-sas-key", repr=False)
    topics: dict[str, tuple[str, ...]] = field(default_factory=lambda: {"zapflow-sim": ("default",)})
    lock_duration_s: float = 30.0
    """Peek-lock duration in real seconds (the client checks it against its own clock)."""
    max_delivery_count: int = 10
    idle_delete_after: timedelta = timedelta(days=14)
    """A subscription without a receive attempt for this long (simulated time) is deleted."""


@dataclass(frozen=True)
class EntityStats:
    """What an entity holds right now."""

    available: int
    locked: int
    deferred: int
    deleted: bool


class _Msg:
    __slots__ = ("bare", "deferred", "delivery_count", "enqueued_ms", "locked", "seq")

    def __init__(
        self, seq: int, enqueued_ms: int, delivery_count: int, bare: bytes, *, deferred: bool
    ) -> None:
        self.seq = seq
        self.enqueued_ms = enqueued_ms
        self.delivery_count = delivery_count
        self.bare = bare
        self.deferred = deferred
        self.locked = False


class _Entity:
    """A subscription or its dead-letter queue: messages in sequence order plus who reads them."""

    def __init__(self, path: str, topic: str, subscription: str, *, dead_letter: _Entity | None) -> None:
        self.path = path
        self.topic = topic
        self.subscription = subscription
        self.dead_letter = dead_letter
        self.messages: dict[int, _Msg] = {}
        self.ready: list[int] = []
        self.links: list[_LinkState] = []
        self.deleted = False
        self.last_active_s = 0.0
        self.persisted_active_s = 0.0

    def add(self, msg: _Msg) -> None:
        self.messages[msg.seq] = msg
        if not msg.deferred:
            heapq.heappush(self.ready, msg.seq)


class _LinkState:
    __slots__ = ("conn", "entity", "kind", "link", "locks", "path")

    def __init__(self, conn: _Conn, link: Link, kind: str, path: str, entity: _Entity | None) -> None:
        self.conn = conn
        self.link = link
        self.kind = kind
        self.path = path
        self.entity = entity
        self.locks: set[bytes] = set()


class _Lock:
    __slots__ = ("delivery", "entity", "expires_mono", "expires_ms", "link", "msg", "tag")

    def __init__(self, tag: bytes, entity: _Entity, msg: _Msg, link: _LinkState, delivery: Delivery) -> None:
        self.tag = tag
        self.entity = entity
        self.msg = msg
        self.link = link
        self.delivery = delivery
        self.expires_mono = 0.0
        self.expires_ms = 0


class _Conn:
    """One client socket with its proton transport, connection and collector."""

    def __init__(self, sock: socket.socket, peer: str) -> None:
        self.sock = sock
        self.peer = peer
        self.transport = Transport(Transport.SERVER)
        sasl = self.transport.sasl()
        sasl.allow_insecure_mechs = True
        sasl.allowed_mechs("ANONYMOUS PLAIN")
        self.connection = Connection()
        self.collector = Collector()
        self.connection.collect(self.collector)
        self.transport.bind(self.connection)
        self.links: list[_LinkState] = []
        self.reply_links: dict[str, Link] = {}
        self.audiences: set[str] = set()
        self.closed = False
        self.want_write = False


class Broker:
    """The broker: `start()` in a thread (tests, the simulator) or `run()` in the caller's thread."""

    def __init__(self, config: BrokerConfig, *, clock: NowClock = SYSTEM_CLOCK) -> None:
        self.config = config
        self._clock = clock
        self._store = Store(config.data_dir / "broker.sqlite3")
        self._keys = {config.key_name: config.key}
        self._lock_ms = int(config.lock_duration_s * 1000)
        self._entities: dict[str, _Entity] = {}
        self._subscriptions: list[_Entity] = []
        self._topics: dict[str, list[_Entity]] = {}
        self._next_seq: dict[str, int] = {}
        self._locks: dict[bytes, _Lock] = {}
        self._expiries: list[tuple[float, bytes]] = []
        self._hungry: set[_LinkState] = set()
        self._after_commit: list[Callable[[], None]] = []
        self._calls: list[tuple[Callable[[], Any], Future[Any]]] = []
        self._calls_lock = threading.Lock()
        self._conns: dict[socket.socket, _Conn] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._selector = selectors.DefaultSelector()
        self._load()
        self._listener = socket.create_server((config.host, config.port), backlog=64)
        self._listener.setblocking(False)  # noqa: FBT003 - the stdlib signature
        self.host, self.port = self._listener.getsockname()[:2]
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)  # noqa: FBT003 - the stdlib signature
        self._wake_w.setblocking(False)  # noqa: FBT003 - the stdlib signature
        self._selector.register(self._listener, selectors.EVENT_READ, self._accept)
        self._selector.register(self._wake_r, selectors.EVENT_READ, self._drain_wake)

    def __repr__(self) -> str:
        return f"Broker({self.host}:{self.port}, data={self.config.data_dir})"

    # -- start-up -------------------------------------------------------------------------------------

    def _load(self) -> None:
        now_s = self._clock.now().timestamp()
        for topic, subscriptions in self.config.topics.items():
            t = topic.lower()
            self._next_seq[t] = self._store.next_sequence(t)
            self._topics[t] = []
            for name in subscriptions:
                path = f"{t}{_SUBSCRIPTIONS}{name.lower()}"
                dlq = _Entity(path + _DEAD_LETTER, t, name.lower(), dead_letter=None)
                entity = _Entity(path, t, name.lower(), dead_letter=dlq)
                row = self._store.subscription(t, name.lower(), now_s=now_s)
                entity.deleted = dlq.deleted = row.deleted
                entity.last_active_s = entity.persisted_active_s = row.last_active_s
                for ent in (entity, dlq):
                    for stored in self._store.messages(ent.path):
                        ent.add(
                            _Msg(
                                stored.seq,
                                stored.enqueued_ms,
                                stored.delivery_count,
                                stored.bare,
                                deferred=stored.deferred,
                            )
                        )
                    self._entities[ent.path] = ent
                self._subscriptions.append(entity)
                self._topics[t].append(entity)
        _log.info("broker state loaded from %s", self._store.path)

    # -- public, thread-safe --------------------------------------------------------------------------

    def start(self) -> Broker:
        """Serve in a background thread; returns once listening."""
        self._thread = threading.Thread(target=self.run, name="zapflow-broker", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close every connection and the store."""
        self._stopping.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def publish(
        self, topic: str, bodies: Iterable[bytes], *, message_ids: Iterable[str | None] = ()
    ) -> list[int]:
        """Publish message bodies (one data section each) to `topic`; return their sequence numbers.

        Returns once the messages are durable.
        """
        ids = list(message_ids)
        bares = [
            amqp.encode_bare(b, message_id=ids[i] if i < len(ids) else None) for i, b in enumerate(bodies)
        ]
        result: list[int] = self._call(lambda: self._publish(topic.lower(), bares))
        return result

    def drop_connections(self) -> int:
        """Close every client socket abruptly (fault injection); returns how many were open."""
        result: int = self._call(self._drop_all)
        return result

    def stats(self, path: str) -> EntityStats:
        """Counts for an entity (`topic/Subscriptions/sub`, optionally with `/$DeadLetterQueue`)."""

        def read() -> EntityStats:
            self._check_idle()
            ent = self._entities[entity_path(path)]
            msgs = ent.messages.values()
            return EntityStats(
                available=sum(1 for m in msgs if not m.locked and not m.deferred),
                locked=sum(1 for m in msgs if m.locked),
                deferred=sum(1 for m in msgs if m.deferred),
                deleted=ent.deleted,
            )

        result: EntityStats = self._call(read)
        return result

    def _call(self, fn: Callable[[], Any], timeout: float = 30.0) -> Any:  # noqa: ANN401 - any result
        if self._thread is None:  # not started: nothing else touches the state yet
            result = fn()
            self._store.commit()
            return result
        future: Future[Any] = Future()
        if not self._thread.is_alive():
            msg = "the broker is not running"
            raise RuntimeError(msg)
        with self._calls_lock:
            self._calls.append((fn, future))
        self._wake()
        return future.result(timeout=timeout)

    def _wake(self) -> None:
        # A full pipe already wakes the loop; a closed one means it has stopped.
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    # -- the loop -------------------------------------------------------------------------------------

    def run(self) -> None:
        """Serve until `stop()`."""
        _log.info("broker listening on %s:%s", self.host, self.port)
        try:
            while not self._stopping.is_set():
                self._turn()
        finally:
            for conn in list(self._conns.values()):
                self._close_conn(conn)
            self._store.close()
            self._selector.close()
            self._listener.close()
            self._wake_r.close()
            self._wake_w.close()
            _log.info("broker stopped")

    def _turn(self) -> None:
        timeout = _IDLE_POLL_S
        if self._expiries:
            timeout = max(0.0, min(timeout, self._expiries[0][0] - time.monotonic()))
        for key, mask in self._selector.select(timeout):
            key.data(key.fileobj, mask)
        with self._calls_lock:
            calls, self._calls = self._calls, []
        results: list[tuple[Future[Any], Any, Exception | None]] = []
        for fn, future in calls:
            try:
                results.append((future, fn(), None))
            except Exception as exc:  # noqa: BLE001 - handed to the caller's thread
                results.append((future, None, exc))
        self._expire_locks()
        self._check_idle()
        self._store.commit()
        after, self._after_commit = self._after_commit, []
        for action in after:
            action()
        for future, value, error in results:
            if error is None:
                future.set_result(value)
            else:
                future.set_exception(error)
        self._pump()
        for conn in list(self._conns.values()):
            self._events(conn)  # local state changes made by the actions above
            self._flush(conn)

    def _accept(self, _sock: Any, _mask: int) -> None:  # noqa: ANN401
        try:
            sock, addr = self._listener.accept()
        except BlockingIOError:
            return
        sock.setblocking(False)  # noqa: FBT003 - the stdlib signature
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = _Conn(sock, f"{addr[0]}:{addr[1]}")
        self._conns[sock] = conn
        self._selector.register(sock, selectors.EVENT_READ, self._io)
        _log.debug("connection from %s", conn.peer)

    def _drain_wake(self, _sock: Any, _mask: int) -> None:  # noqa: ANN401
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass

    def _io(self, sock: socket.socket, mask: int) -> None:
        conn = self._conns.get(sock)
        if conn is None:
            return
        if mask & selectors.EVENT_READ:
            self._read(conn)
        if not conn.closed:
            self._events(conn)
        if not conn.closed and mask & selectors.EVENT_WRITE:
            self._flush(conn)

    def _read(self, conn: _Conn) -> None:
        transport = conn.transport
        capacity = transport.capacity()
        if capacity < 0:
            self._close_conn(conn)
            return
        try:
            data = conn.sock.recv(min(max(capacity, 1), _READ_SIZE))
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            transport.close_tail()
            self._close_conn(conn)
            return
        try:
            transport.push(data)
        except Exception:  # noqa: BLE001 - a protocol error ends this connection only
            _log.warning("protocol error from %s; closing", conn.peer, exc_info=True)
            self._close_conn(conn)

    def _flush(self, conn: _Conn) -> None:
        if conn.closed:
            return
        transport = conn.transport
        while True:
            pending = transport.pending()
            if pending < 0:
                self._close_conn(conn)
                return
            if pending == 0:
                break
            data = transport.peek(pending) or b""
            try:
                sent = conn.sock.send(data)
            except BlockingIOError:
                sent = 0
            except OSError:
                self._close_conn(conn)
                return
            if sent:
                transport.pop(sent)
            if sent < len(data):
                break
        want = transport.pending() > 0
        if want != conn.want_write:
            conn.want_write = want
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if want else 0)
            self._selector.modify(conn.sock, events, self._io)

    def _close_conn(self, conn: _Conn) -> None:
        """Forget a connection: every message it held locked is redelivered."""
        if conn.closed:
            return
        conn.closed = True
        for state in list(conn.links):
            self._forget_link(state)
        self._conns.pop(conn.sock, None)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(conn.sock)
        conn.sock.close()
        _log.debug("connection from %s closed", conn.peer)

    def _drop_all(self) -> int:
        conns = list(self._conns.values())
        for conn in conns:
            self._close_conn(conn)
        _log.info("dropped %d connection(s) (fault injection)", len(conns))
        return len(conns)

    # -- protocol events ------------------------------------------------------------------------------

    def _events(self, conn: _Conn) -> None:  # noqa: C901, PLR0912 - one dispatch over event kinds
        collector = conn.collector._impl  # noqa: SLF001 - the C handle avoids a wrapper per event
        while not conn.closed:
            event = cproton.pn_collector_peek(collector)
            if event is None or event == cproton.ffi.NULL:
                return
            kind = cproton.pn_event_type(event)
            try:
                if kind == cproton.PN_DELIVERY:
                    self._on_delivery(_wrap_delivery(cproton.pn_event_delivery(event)))
                elif kind == cproton.PN_LINK_FLOW:
                    state = _wrap_link(cproton.pn_event_link(event)).__dict__["_attrs"].get("zf_state")
                    if state is not None and state.entity is not None:
                        self._touch(state.entity)
                        self._hungry.add(state)
                elif kind == cproton.PN_CONNECTION_REMOTE_OPEN:
                    conn.connection.container = "zapflow-broker"
                    conn.connection.open()
                elif kind == cproton.PN_SESSION_REMOTE_OPEN:
                    _wrap_session(cproton.pn_event_session(event)).open()
                elif kind == cproton.PN_LINK_REMOTE_OPEN:
                    self._on_attach(conn, _wrap_link(cproton.pn_event_link(event)))
                elif kind in {cproton.PN_LINK_REMOTE_CLOSE, cproton.PN_LINK_REMOTE_DETACH}:
                    link = _wrap_link(cproton.pn_event_link(event))
                    state = link.__dict__["_attrs"].get("zf_state")
                    if state is not None:
                        self._forget_link(state)
                    link.close()
                elif kind == cproton.PN_SESSION_REMOTE_CLOSE:
                    _wrap_session(cproton.pn_event_session(event)).close()
                elif kind == cproton.PN_CONNECTION_REMOTE_CLOSE:
                    conn.connection.close()
            finally:
                cproton.pn_collector_pop(collector)

    def _refuse(self, link: Link, condition: str, description: str) -> None:
        _log.info("attach refused: %s", description)
        link.open()
        link.condition = Condition(condition, description)
        link.close()

    def _on_attach(self, conn: _Conn, link: Link) -> None:
        address = link.remote_source.address if link.is_sender else link.remote_target.address
        path = entity_path(address)
        if path == _CBS or path.endswith(_MANAGEMENT):
            kind = "reply" if link.is_sender else ("cbs" if path == _CBS else "management")
            entity = None
            if link.is_sender:
                conn.reply_links[path] = link
        elif link.is_sender:
            self._check_idle()
            entity = self._entities.get(path)
            if entity is None or entity.deleted:
                self._refuse(link, _NOT_FOUND, f"The messaging entity '{address}' could not be found.")
                return
            if not self._authorised(conn, path):
                self._refuse(link, _UNAUTHORIZED, f"Unauthorized access to '{address}': put a token first.")
                return
            kind = "receive"
            self._touch(entity)
        else:
            if path not in self._topics:
                self._refuse(link, _NOT_FOUND, f"The messaging entity '{address}' could not be found.")
                return
            if not self._authorised(conn, path):
                self._refuse(link, _UNAUTHORIZED, f"Unauthorized access to '{address}': put a token first.")
                return
            kind, entity = "publish", None
        link.source.address = cast("str", link.remote_source.address)
        link.target.address = cast("str", link.remote_target.address)
        link.snd_settle_mode = link.remote_snd_settle_mode
        link.rcv_settle_mode = link.remote_rcv_settle_mode
        state = _LinkState(conn, link, kind, path, entity)
        link.zf_state = state
        conn.links.append(state)
        if entity is not None:
            entity.links.append(state)
        link.open()
        if not link.is_sender:
            link.flow(_INCOMING_CREDIT)
        _log.debug("attached %s link %s to %s", kind, link.name, path)

    def _authorised(self, conn: _Conn, path: str) -> bool:
        return any(path == a or path.startswith(a + "/") or not a for a in conn.audiences)

    def _forget_link(self, state: _LinkState) -> None:
        """A link went away: its locked messages are redelivered (counted: the lock was lost)."""
        for tag in list(state.locks):
            lock = self._locks.pop(tag, None)
            if lock is not None:
                self._unlock(lock, count=True)
        state.locks.clear()
        self._hungry.discard(state)
        if state.entity is not None and state in state.entity.links:
            state.entity.links.remove(state)
        if state in state.conn.links:
            state.conn.links.remove(state)
        state.link.__dict__["_attrs"].pop("zf_state", None)

    # -- deliveries -----------------------------------------------------------------------------------

    def _on_delivery(self, delivery: Delivery) -> None:
        link = delivery.link
        state: _LinkState | None = link.__dict__["_attrs"].get("zf_state")
        if state is None:
            return
        if link.is_sender:
            self._on_disposition(delivery)
            return
        if delivery.partial or not delivery.readable:
            return
        data = link.recv(delivery.pending) or b""
        link.advance()
        if link.credit < _INCOMING_CREDIT // 2:
            link.flow(_INCOMING_CREDIT - link.credit)
        if state.kind == "cbs":
            self._on_put_token(state, delivery, bytes(data))
        elif state.kind == "management":
            self._on_management(state, delivery, bytes(data))
        else:
            self._on_publish(state, delivery, bytes(data))

    def _settle(self, delivery: Delivery, outcome: Any, condition: Condition | None = None) -> None:  # noqa: ANN401
        if condition is not None:
            delivery.local.condition = condition
        delivery.update(outcome)
        delivery.settle()

    def _reply(self, conn: _Conn, path: str, request: Message, properties: dict[str, Any], body: Any) -> None:  # noqa: ANN401
        link = conn.reply_links.get(path)
        if link is None:
            _log.warning("no reply link for %s on %s; request dropped", path, conn.peer)
            return
        reply = Message(correlation_id=request.id, properties=properties, body=body)
        delivery = link.delivery(os.urandom(16))  # type: ignore[arg-type]
        link.stream(reply.encode())
        link.advance()
        delivery.settle()

    def _on_put_token(self, state: _LinkState, delivery: Delivery, data: bytes) -> None:
        request = Message()
        request.decode(data)
        token = request.body.decode() if isinstance(request.body, bytes) else str(request.body)
        audience, reason = verify_sas_token(token, keys=self._keys, now_s=time.time())
        if reason:
            _log.warning("put-token refused on %s: %s", state.conn.peer, reason)
            status, description = 401, f"InvalidSignature: {reason}"
        else:
            state.conn.audiences.add(audience)
            status, description = _ACCEPTED, "Accepted"
        self._settle(delivery, Disposition.ACCEPTED)
        self._reply(
            state.conn, _CBS, request, {"status-code": status, "status-description": description}, None
        )

    def _on_management(self, state: _LinkState, delivery: Delivery, data: bytes) -> None:
        request = Message()
        request.decode(data)
        properties: dict[Any, Any] = request.properties or {}
        operation = str(properties.get("operation", ""))
        self._settle(delivery, Disposition.ACCEPTED)
        body: Any = None
        if operation == "com.microsoft:renew-lock":
            raw = request.body.get("lock-tokens", []) if isinstance(request.body, dict) else []
            tokens = list(getattr(raw, "elements", raw))
            locks = [self._locks.get(token.bytes_le) for token in tokens]
            if tokens and all(lock is not None for lock in locks):
                expirations = [self._renew(lock) for lock in locks if lock is not None]
                body = {"expirations": Array(None, Data.TIMESTAMP, *map(timestamp, expirations))}
                props: dict[str, Any] = {"statusCode": _OK, "statusDescription": "OK"}
            else:
                props = {
                    "statusCode": 410,
                    "statusDescription": "The lock is invalid: it expired or the message was settled.",
                    "errorCondition": _LOCK_LOST,
                }
        else:
            props = {
                "statusCode": 501,
                "statusDescription": f"The zapflow broker does not support {operation or 'this request'}.",
                "errorCondition": "amqp:not-implemented",
            }
        self._reply(state.conn, state.path, request, props, body)

    def _renew(self, lock: _Lock) -> int:
        lock.expires_ms = int(time.time() * 1000) + self._lock_ms
        lock.expires_mono = time.monotonic() + self.config.lock_duration_s
        heapq.heappush(self._expiries, (lock.expires_mono, lock.tag))
        return lock.expires_ms

    def _on_publish(self, state: _LinkState, delivery: Delivery, data: bytes) -> None:
        try:
            bares = amqp.split_batch(data)
        except (ValueError, IndexError) as exc:
            _log.warning("unreadable message on %s refused: %s", state.path, exc)
            self._settle(delivery, Disposition.REJECTED, Condition("amqp:decode-error", str(exc)))
            return
        self._publish(state.path, bares)
        self._after_commit.append(lambda: self._settle(delivery, Disposition.ACCEPTED))

    def _publish(self, topic: str, bares: list[bytes]) -> list[int]:
        if topic not in self._topics:
            msg = f"unknown topic {topic!r}"
            raise KeyError(msg)
        now_ms = int(time.time() * 1000)
        seq = self._next_seq[topic]
        seqs = list(range(seq, seq + len(bares)))
        self._next_seq[topic] = seq + len(bares)
        self._store.set_sequence(topic, self._next_seq[topic])
        for entity in self._topics[topic]:
            if entity.deleted:
                continue
            for number, bare in zip(seqs, bares, strict=True):
                entity.add(_Msg(number, now_ms, 0, bare, deferred=False))
                self._store.insert(entity.path, number, now_ms, 0, bare)
            self._hungry.update(entity.links)
        return seqs

    def _pump(self) -> None:
        """Hand ready messages to receiver links with credit."""
        if not self._hungry:
            return
        now_ms = int(time.time() * 1000)
        now_mono = time.monotonic()
        lock_ms = self._lock_ms
        expires_mono = now_mono + self.config.lock_duration_s
        for state in list(self._hungry):
            link = state.link
            entity = state.entity
            if entity is None or state.conn.closed:
                self._hungry.discard(state)
                continue
            ready = entity.ready
            messages = entity.messages
            presettled = link.snd_settle_mode == Link.SND_SETTLED
            while ready and link.credit > 0:
                msg = messages.get(heapq.heappop(ready))
                if msg is None or msg.locked or msg.deferred:
                    continue
                tag = os.urandom(16)
                delivery = link.delivery(tag)  # type: ignore[arg-type] # proton takes bytes tags
                link.stream(
                    amqp.delivery_prefix(
                        delivery_count=msg.delivery_count,
                        sequence_number=msg.seq,
                        enqueued_ms=msg.enqueued_ms,
                        locked_until_ms=now_ms + lock_ms,
                    )
                    + msg.bare
                )
                link.advance()
                if presettled:  # receive-and-delete
                    delivery.settle()
                    del messages[msg.seq]
                    self._store.delete(entity.path, msg.seq)
                    continue
                msg.locked = True
                lock = _Lock(tag, entity, msg, state, delivery)
                lock.expires_ms = now_ms + lock_ms
                lock.expires_mono = expires_mono
                delivery.__dict__["_attrs"]["zf_tag"] = tag
                self._locks[tag] = lock
                state.locks.add(tag)
                self._expiries.append((expires_mono, tag))  # appended in time order: still a heap
            if not ready or link.credit <= 0:
                self._hungry.discard(state)

    def _on_disposition(self, delivery: Delivery) -> None:  # noqa: C901 - one branch per outcome
        outcome = delivery.remote_state
        if not outcome:
            return
        attrs = delivery.__dict__["_attrs"]
        tag = attrs.pop("zf_tag", None)
        if tag is None:
            return  # answered already
        lock = self._locks.pop(tag, None)
        remote_settled = delivery.settled
        if lock is None:
            if not remote_settled:
                lost = Condition(_LOCK_LOST, "The lock supplied is invalid: it expired or was lost.")
                self._settle(delivery, Disposition.REJECTED, lost)
            return
        lock.link.locks.discard(tag)
        entity, msg = lock.entity, lock.msg
        remote = delivery.remote
        reply: Callable[[], None]
        if outcome == Disposition.ACCEPTED:
            del entity.messages[msg.seq]
            self._store.delete(entity.path, msg.seq)

            def reply() -> None:
                self._settle(delivery, Disposition.ACCEPTED)

        elif outcome == Disposition.MODIFIED:
            failed, undeliverable = remote.failed, remote.undeliverable
            if undeliverable:
                msg.locked = False
                msg.deferred = True
                self._store.defer(entity.path, msg.seq)
            else:
                self._unlock(lock, count=bool(failed))

            def reply() -> None:
                delivery.local.failed = failed
                delivery.local.undeliverable = undeliverable
                self._settle(delivery, Disposition.MODIFIED)

        elif outcome == Disposition.REJECTED:
            condition = remote.condition
            raw_info: Any = (condition.info if condition else None) or {}
            info = {str(k): str(v) for k, v in raw_info.items()}
            self._dead_letter(
                entity,
                msg,
                info.get("DeadLetterReason", condition.description if condition else "") or "",
                info.get("DeadLetterErrorDescription", ""),
            )

            def reply() -> None:
                self._settle(delivery, Disposition.REJECTED)  # no error: an error makes the SDK raise

        else:  # released
            self._unlock(lock, count=False)

            def reply() -> None:
                self._settle(delivery, Disposition.RELEASED)

        if remote_settled:
            self._after_commit.append(delivery.settle)
        else:
            self._after_commit.append(reply)

    def _unlock(self, lock: _Lock, *, count: bool) -> None:
        """Make a locked message available again (delivery count + 1 when the attempt counts)."""
        entity, msg = lock.entity, lock.msg
        msg.locked = False
        lock.link.locks.discard(lock.tag)
        if entity.messages.get(msg.seq) is not msg:
            return  # the subscription was deleted meanwhile
        if count:
            msg.delivery_count += 1
            if entity.dead_letter is not None and msg.delivery_count >= self.config.max_delivery_count:
                self._dead_letter(
                    entity,
                    msg,
                    "MaxDeliveryCountExceeded",
                    f"Not consumed after {self.config.max_delivery_count} delivery attempts.",
                )
                return
            self._store.set_delivery_count(entity.path, msg.seq, msg.delivery_count)
        heapq.heappush(entity.ready, msg.seq)
        self._hungry.update(entity.links)

    def _dead_letter(self, entity: _Entity, msg: _Msg, reason: str, description: str) -> None:
        target = entity.dead_letter
        entity.messages.pop(msg.seq, None)
        self._store.delete(entity.path, msg.seq)
        if target is None:  # dead-lettering from the dead-letter queue removes the message
            return
        bare = amqp.with_application_properties(
            msg.bare, {"DeadLetterReason": reason, "DeadLetterErrorDescription": description}
        )
        moved = _Msg(msg.seq, msg.enqueued_ms, msg.delivery_count, bare, deferred=False)
        target.add(moved)
        self._store.insert(target.path, msg.seq, msg.enqueued_ms, msg.delivery_count, bare)
        self._hungry.update(target.links)
        _log.info("message %d of %s dead-lettered: %s", msg.seq, entity.path, reason)

    def _expire_locks(self) -> None:
        now = time.monotonic()
        expiries = self._expiries
        while expiries and expiries[0][0] <= now:
            _, tag = heapq.heappop(expiries)
            lock = self._locks.get(tag)
            if lock is None or lock.expires_mono > now:
                continue  # settled, or renewed (a later entry exists)
            del self._locks[tag]
            _log.debug("lock on message %d of %s expired", lock.msg.seq, lock.entity.path)
            self._unlock(lock, count=True)

    # -- subscription idle expiry ----------------------------------------------------------------------

    def _touch(self, entity: _Entity) -> None:
        sub = self._entities.get(entity.path.removesuffix(_DEAD_LETTER), entity)
        now_s = self._clock.now().timestamp()
        sub.last_active_s = now_s
        if now_s - sub.persisted_active_s >= _TOUCH_PERSIST_S or now_s < sub.persisted_active_s:
            sub.persisted_active_s = now_s
            self._store.touch(sub.topic, sub.subscription, now_s)

    def _check_idle(self) -> None:
        now_s = self._clock.now().timestamp()
        idle_s = self.config.idle_delete_after.total_seconds()
        for sub in self._subscriptions:
            if not sub.deleted and now_s - sub.last_active_s >= idle_s:
                self._delete_subscription(sub)

    def _delete_subscription(self, sub: _Entity) -> None:
        _log.warning(
            "subscription %s deleted after %s without a receive attempt",
            sub.path,
            self.config.idle_delete_after,
        )
        for entity in (sub, sub.dead_letter):
            if entity is None:
                continue
            entity.deleted = True
            entity.messages.clear()
            entity.ready.clear()
            for state in list(entity.links):
                self._forget_link(state)
                state.link.condition = Condition(
                    _NOT_FOUND, f"The messaging entity '{entity.path}' was deleted."
                )
                state.link.close()
        dead_letter = sub.dead_letter.path if sub.dead_letter is not None else sub.path
        self._store.delete_subscription(sub.topic, sub.subscription, (sub.path, dead_letter))
