"""The bus across nodes: PostgreSQL LISTEN/NOTIFY through txpostgres (``PostgresBus``).

Each node holds two dedicated connections to the shared database: a *listener* that has run
``LISTEN synctv`` and a *publisher* that sends ``pg_notify('synctv', payload)``. Every logical
channel (``room:{id}``, ...) rides the one PostgreSQL channel; the payload is JSON::

    {"c": logical channel, "n": node id, "s": per-node sequence, "m": message}
    {"c": ..., "n": ..., "s": ..., "x": spill row id}   -- a message too large for NOTIFY

Contract (the same ``Bus`` protocol as ``synctv.bus.InProcessBus``, plus gaps):

- **One path.** A node's own messages come back through PostgreSQL like everyone else's; nothing is
  delivered locally at ``publish`` time. So every node sees every message in one order, the order
  PostgreSQL committed the NOTIFYs (the same on every node), and ``publish`` returns before any
  subscriber runs. The price is one database round trip (well under a millisecond on a LAN).
- **Order.** Publishes of one node are sent in call order (batched: while one batch is in flight,
  later messages queue and go in the next, one transaction of several ``pg_notify`` in order), so
  subscribers see one node's messages in the order it published them.
- **Large messages.** An envelope over ``SPILL_ABOVE_BYTES`` (PostgreSQL refuses NOTIFY payloads
  of 8000 bytes or more) is written to ``bus_spill`` in the same transaction as its NOTIFY, which
  then carries only the row id; receivers read the row (keeping order: later messages wait).
  Rows older than ``SPILL_TTL_MS`` are deleted by the cluster's leader (``synctv.workers.leader``).
- **Gaps.** A subscriber may miss messages when the listener's connection dies (the node
  reconnects with backoff and runs ``LISTEN`` again), when a node's sequence jumps (a publish it
  gave up on after ``PUBLISH_GIVE_UP_S`` of failures) or when a spill row cannot be read. Then
  every channel with local subscribers gets ``{"type": "busGap", "channel": ..., "reason": ...}``
  (plus ``"room_id"`` for ``room:{id}`` channels), in order with the other messages, and every
  ``on_gap`` observer is called. A subscriber that keeps derived state must re-read it from the
  database on ``busGap`` (realtime sessions re-read and resend the playback state and presence).
- **Duplicates** from a publish retried after its connection died are dropped by ``(n, s)``.
- A subscriber that raises is logged and the others still get the message.

Lifecycle: ``start()`` connects both connections and fails if the database cannot be reached;
``stop()`` sends what is queued (for up to ``STOP_FLUSH_S``) and closes them.
"""

from __future__ import annotations

import collections
import json
import secrets
import time
from collections.abc import Callable
from typing import Any

import attrs
import psycopg2
import psycopg2.extensions
from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from txpostgres.txpostgres import Connection

from synctv.bus import InProcessBus, Message, Subscriber
from synctv.compat.txpostgres import connection_open, psycopg_connection

PG_CHANNEL = "synctv"
SPILL_ABOVE_BYTES = 7000
SPILL_TTL_MS = 60_000
MAINTENANCE_S = 20.0
PING_TIMEOUT_S = 10.0
MAX_BATCH = 200
PUBLISH_GIVE_UP_S = 10.0
STOP_FLUSH_S = 2.0
BACKOFF = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
GAP_TYPE = "busGap"

_CONNECT_KWARGS = {
    "connect_timeout": "10",
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
}

log = Logger()


def _first_line(f: Failure) -> str:
    text = str(f.value).strip()
    return text.splitlines()[0] if text else f.type.__name__


class _LocalBus(InProcessBus):
    """The local fan-out, able to list the channels that have subscribers (for gap messages)."""

    def channels(self) -> tuple[str, ...]:
        return tuple(self._subscribers)


class PGConnection(Connection):
    """A txpostgres connection that hands NOTIFYs to ``on_notify`` synchronously, in arrival order
    (txpostgres' own observers run on a Cooperator, which may interleave batches), is quiet about
    losing the server, and reports the loss once through ``on_lost``."""

    def __init__(
        self, reactor: Any, on_notify: Callable[[str], None] | None, on_lost: Callable[[PGConnection], None]
    ) -> None:
        super().__init__(reactor=reactor)
        self._on_notify = on_notify
        self._on_lost = on_lost
        self.closing = False
        self.lost = False

    def checkForNotifies(self) -> None:
        notifies = psycopg_connection(self).notifies
        if notifies:
            batch = notifies[:]
            del notifies[:]
            if self._on_notify is not None:
                for notify in batch:
                    self._on_notify(notify.payload)

    def doRead(self) -> Any:
        try:
            return super().doRead()
        except psycopg2.Error as e:
            return e  # the reactor then calls connectionLost with it

    def connectionLost(self, reason: Any) -> None:
        super().connectionLost(reason)
        self.report_lost()

    def report_lost(self) -> None:
        if not self.closing and not self.lost:
            self.lost = True
            self._on_lost(self)

    def is_closed(self) -> bool:
        return not connection_open(self)

    def shut(self) -> None:
        self.closing = True
        if psycopg_connection(self) is not None:
            self.close()


@attrs.define
class _Outgoing:
    """One queued publish: its SQL (one or two statements) and when it was queued."""

    sql: str
    params: tuple[Any, ...]
    queued_at: float


@attrs.define
class _Inbound:
    """A received message waiting for its turn: resolved (``message`` set), a gap, or pending."""

    channel: str | None
    message: Message | None = None
    gap_reason: str | None = None
    spill_id: str | None = None
    pending: bool = False


class PostgresBus:
    """``Bus`` over PostgreSQL LISTEN/NOTIFY; see the module docstring for the contract."""

    def __init__(
        self,
        dsn: str,
        *,
        reactor: Any = None,
        node_id: str | None = None,
        wall_ms: Callable[[], float] = lambda: time.time() * 1000.0,
        spill_above_bytes: int = SPILL_ABOVE_BYTES,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor
        self.dsn = dsn
        self.node_id = node_id or secrets.token_hex(6)
        self._node_json = json.dumps(self.node_id)
        self._wall_ms = wall_ms
        self._spill_above = spill_above_bytes
        self._local = _LocalBus()
        self._gap_observers: list[Callable[[str], None]] = []
        self._seq = 0
        self._last_seq: dict[str, int] = {}
        self._outbox: collections.deque[_Outgoing] = collections.deque()
        self._in_flight = False
        self._flushed: list[Deferred[None]] = []
        self._raw: collections.deque[str] = collections.deque()
        self._inbox: collections.deque[_Inbound] = collections.deque()
        self._drain_call: IDelayedCall | None = None
        self._listener: PGConnection | None = None
        self._publisher: PGConnection | None = None
        self._retry: dict[str, IDelayedCall] = {}
        self._attempts: dict[str, int] = {"listener": 0, "publisher": 0}
        self._maintenance: IDelayedCall | None = None
        self._running = False
        self.gaps = 0
        self.spilled = 0

    # -- Bus ------------------------------------------------------------------------------------

    def publish(self, channel: str, message: Message) -> None:
        """Queue ``message`` for every node's subscribers of ``channel`` (this node's too).
        Raises ``TypeError``/``ValueError`` at once if the message is not JSON-serialisable."""
        body = json.dumps(message, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        channel_json = json.dumps(channel, ensure_ascii=False)
        # encoding raises for lone surrogates: before a sequence number is taken (no false gap)
        size = len(body.encode("utf-8")) + len(channel_json.encode("utf-8")) + len(self._node_json) + 48
        self._seq += 1
        head = f'{{"c":{channel_json},"n":{self._node_json},"s":{self._seq}'
        if size <= self._spill_above:
            envelope = f'{head},"m":{body}}}'
            item = _Outgoing("SELECT pg_notify(%s, %s)", (PG_CHANNEL, envelope), time.monotonic())
        else:
            spill_id = f"{self.node_id}-{self._seq}"
            self.spilled += 1
            item = _Outgoing(
                "INSERT INTO bus_spill (id, payload, created_at) VALUES (%s, %s, %s); SELECT pg_notify(%s, %s)",
                (spill_id, body, int(self._wall_ms()), PG_CHANNEL, f'{head},"x":"{spill_id}"}}'),
                time.monotonic(),
            )
        self._outbox.append(item)
        self._flush()

    def subscribe(self, channel: str, callback: Subscriber) -> Callable[[], None]:
        return self._local.subscribe(channel, callback)

    def subscriber_count(self, channel: str) -> int:
        return self._local.subscriber_count(channel)

    def on_gap(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call ``callback(reason)`` whenever messages may have been missed; returns the remover."""
        self._gap_observers.append(callback)

        def remove() -> None:
            if callback in self._gap_observers:
                self._gap_observers.remove(callback)

        return remove

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Deferred[None]:
        """Connect the listener (and ``LISTEN``) and the publisher; fails if either cannot connect."""
        self._running = True
        d = DeferredList(
            [self._connect("listener"), self._connect("publisher")], fireOnOneErrback=True, consumeErrors=True
        )

        def started(_: object) -> None:
            self._schedule_maintenance()
            log.info("postgres bus started (node {node})", node=self.node_id)

        def failed(f: Failure) -> Failure:
            self._running = False
            self._close_connections()
            return getattr(f.value, "subFailure", f)

        return d.addCallbacks(started, failed)

    def stop(self) -> Deferred[None]:
        """Send what is queued (bounded by ``STOP_FLUSH_S``), then close both connections."""
        if not self._running:
            return succeed(None)
        waiting: Deferred[None] = Deferred()
        if self._outbox or self._in_flight:
            self._flushed.append(waiting)
            waiting.addTimeout(STOP_FLUSH_S, self.reactor, onTimeoutCancel=lambda *_: None)
        else:
            waiting.callback(None)

        def close(_: object) -> None:
            self._running = False
            for call in (*self._retry.values(), self._maintenance, self._drain_call):
                if call is not None and call.active():
                    call.cancel()
            self._retry.clear()
            self._close_connections()
            log.info("postgres bus stopped (node {node})", node=self.node_id)

        return waiting.addBoth(close)

    def _close_connections(self) -> None:
        for conn in (self._listener, self._publisher):
            if conn is not None:
                conn.shut()
        self._listener = self._publisher = None

    # -- connections ----------------------------------------------------------------------------

    def _connect(self, role: str) -> Deferred[None]:
        on_notify = self._on_notify if role == "listener" else None
        conn = PGConnection(self.reactor, on_notify, lambda c: self._lost(role, c))
        given = psycopg2.extensions.parse_dsn(self.dsn)
        kwargs = {k: v for k, v in _CONNECT_KWARGS.items() if k not in given}
        kwargs.setdefault("application_name", f"synctv-bus-{role}-{self.node_id}"[:63])
        d = conn.connect(self.dsn, **kwargs)
        if role == "listener":
            d.addCallback(lambda _: conn.runOperation(f"LISTEN {PG_CHANNEL}"))

        def connected(_: object) -> None:
            if not self._running:
                conn.shut()
                return
            self._attempts[role] = 0
            if role == "listener":
                self._listener = conn
            else:
                self._publisher = conn
                self._flush()

        def failed(f: Failure) -> Failure:
            conn.closing = True
            if connection_open(conn):
                conn.close()
            return f

        return d.addCallbacks(connected, failed)

    def _lost(self, role: str, conn: PGConnection) -> None:
        current = self._listener if role == "listener" else self._publisher
        if conn is not current:
            return
        if role == "listener":
            self._listener = None
        else:
            self._publisher = None
        if not conn.closing and connection_open(conn):
            conn.closing = True
            conn.close()
        if self._running:
            log.warn("postgres bus {role} connection lost; reconnecting", role=role)
            self._reconnect_later(role)

    def _reconnect_later(self, role: str) -> None:
        if role in self._retry or not self._running:
            return
        attempt = self._attempts[role]
        self._attempts[role] = attempt + 1
        delay = BACKOFF[min(attempt, len(BACKOFF) - 1)]
        self._retry[role] = self.reactor.callLater(delay, self._reconnect, role)

    def _reconnect(self, role: str) -> None:
        self._retry.pop(role, None)
        if not self._running:
            return
        d = self._connect(role)

        def connected(_: object) -> None:
            log.info("postgres bus {role} connection restored", role=role)
            if role == "listener" and self._listener is not None:
                self._last_seq.clear()
                self._inbox.append(_Inbound(None, gap_reason="reconnected"))
                self._schedule_drain()

        def failed(f: Failure) -> None:
            log.info("postgres bus {role} reconnect failed: {reason}", role=role, reason=_first_line(f))
            self._reconnect_later(role)

        d.addCallbacks(connected, failed)

    def _query_failed(self, role: str, conn: PGConnection, f: Failure) -> None:
        """A query on ``conn`` failed: if the connection is gone, treat it as lost."""
        if conn.is_closed() or f.check(psycopg2.OperationalError, psycopg2.InterfaceError):
            conn.report_lost()

    # -- publishing -----------------------------------------------------------------------------

    def _flush(self) -> None:
        if not self._in_flight:
            self._drop_stale()
        if self._in_flight or not self._outbox:
            if not self._outbox and not self._in_flight:
                self._notify_flushed()
            return
        conn = self._publisher
        if conn is None:
            return
        batch = [self._outbox[i] for i in range(min(MAX_BATCH, len(self._outbox)))]
        sql = "; ".join(item.sql for item in batch)
        params = tuple(p for item in batch for p in item.params)
        self._in_flight = True
        d = conn.runOperation(sql, params)

        def sent(_: object) -> None:
            for _item in batch:
                self._outbox.popleft()

        def failed(f: Failure) -> None:
            self._query_failed("publisher", conn, f)
            if self._publisher is conn:  # not a connection problem: these messages cannot be sent
                log.failure("postgres bus could not publish {count} message(s); dropped", f, count=len(batch))
                for _item in batch:
                    self._outbox.popleft()

        def done(_: object) -> None:
            self._in_flight = False
            self._flush()

        d.addCallbacks(sent, failed).addBoth(done)

    def _drop_stale(self) -> None:
        """While the publisher is down, drop messages queued longer than ``PUBLISH_GIVE_UP_S``
        (receivers see the sequence jump and signal a gap)."""
        limit = time.monotonic() - PUBLISH_GIVE_UP_S
        dropped = 0
        while self._outbox and self._outbox[0].queued_at < limit:
            self._outbox.popleft()
            dropped += 1
        if dropped:
            log.warn("postgres bus dropped {count} message(s) it could not send", count=dropped)
        if not self._outbox:
            self._notify_flushed()

    def _notify_flushed(self) -> None:
        waiting, self._flushed = self._flushed, []
        for d in waiting:
            if not d.called:
                d.callback(None)

    # -- receiving ------------------------------------------------------------------------------

    def _on_notify(self, payload: str) -> None:
        # called inside the listener's doRead: only queue here, work in the next reactor turn
        self._raw.append(payload)
        self._schedule_drain()

    def _schedule_drain(self) -> None:
        if self._drain_call is None and self._running:
            self._drain_call = self.reactor.callLater(0, self._drain)

    def _drain(self) -> None:
        self._drain_call = None
        while self._raw:
            self._accept(self._raw.popleft())
        while self._inbox and not self._inbox[0].pending:
            entry = self._inbox.popleft()
            if entry.gap_reason is not None:
                self._deliver_gap(entry.gap_reason)
            elif entry.channel is not None and entry.message is not None:
                self._local.publish(entry.channel, entry.message)

    def _accept(self, payload: str) -> None:
        try:
            envelope = json.loads(payload)
            channel, node, seq = envelope["c"], envelope["n"], envelope["s"]
            if not isinstance(channel, str) or not isinstance(node, str) or not isinstance(seq, int):
                raise TypeError("bad envelope fields")
        except (ValueError, KeyError, TypeError):
            log.warn("postgres bus ignored a malformed notification ({size} bytes)", size=len(payload))
            return
        last = self._last_seq.get(node)
        if last is not None and seq <= last:
            return  # a duplicate from a retried publish
        self._last_seq[node] = seq
        if last is not None and seq > last + 1:
            self._inbox.append(_Inbound(None, gap_reason="missed"))
        if "m" in envelope:
            if isinstance(envelope["m"], dict):
                self._inbox.append(_Inbound(channel, envelope["m"]))
        elif isinstance(envelope.get("x"), str) and self._local.subscriber_count(channel):
            entry = _Inbound(channel, spill_id=envelope["x"], pending=True)
            self._inbox.append(entry)
            self._fetch_spill(entry)

    def _fetch_spill(self, entry: _Inbound) -> None:
        conn = self._listener
        if conn is None:
            self._spill_failed(entry, "no listener")
            return
        d = conn.runQuery("SELECT payload FROM bus_spill WHERE id = %s", (entry.spill_id,))

        def got(rows: list[tuple[str]]) -> None:
            try:
                message = json.loads(rows[0][0]) if rows else None
            except ValueError:
                message = None
            if not isinstance(message, dict):
                self._spill_failed(entry, "missing" if not rows else "malformed")
                return
            entry.message, entry.pending = message, False
            self._schedule_drain()

        def failed(f: Failure) -> None:
            self._query_failed("listener", conn, f)
            self._spill_failed(entry, _first_line(f))

        d.addCallbacks(got, failed)

    def _spill_failed(self, entry: _Inbound, why: str) -> None:
        log.warn("postgres bus could not read spilled message {id}: {why}", id=entry.spill_id, why=why)
        entry.gap_reason, entry.pending = "spill_lost", False
        self._schedule_drain()

    def _deliver_gap(self, reason: str) -> None:
        self.gaps += 1
        log.info("postgres bus gap ({reason}); telling subscribers to re-read", reason=reason)
        for callback in tuple(self._gap_observers):
            try:
                callback(reason)
            except Exception:
                log.failure("bus gap observer failed")
        for channel in self._local.channels():
            message: Message = {"type": GAP_TYPE, "channel": channel, "reason": reason}
            if channel.startswith("room:"):
                message["room_id"] = channel[len("room:") :]
            self._local.publish(channel, message)

    # -- maintenance ----------------------------------------------------------------------------

    def _schedule_maintenance(self) -> None:
        if self._running:
            self._maintenance = self.reactor.callLater(MAINTENANCE_S, self._maintain)

    def _maintain(self) -> None:
        """Ping the listener so a silently dead connection is noticed. (Old spill rows are
        deleted once per cluster by the leader: ``synctv.workers.leader``.)"""
        self._maintenance = None
        try:
            listener = self._listener
            if listener is not None:
                self._ping(listener)
        except Exception:
            log.failure("postgres bus maintenance failed")
        self._schedule_maintenance()

    def purge_spill(self) -> Deferred[None]:
        """Delete spill rows older than ``SPILL_TTL_MS`` (by this node's wall clock)."""
        if self._publisher is None:
            return succeed(None)
        cutoff = int(self._wall_ms()) - SPILL_TTL_MS
        return self._publisher.runOperation("DELETE FROM bus_spill WHERE created_at < %s", (cutoff,))

    def _ping(self, conn: PGConnection) -> None:
        """``SELECT 1`` on ``conn``; no answer within ``PING_TIMEOUT_S`` counts as a lost connection."""
        timer = self.reactor.callLater(PING_TIMEOUT_S, conn.report_lost)

        def answered(_: object) -> None:
            if timer.active():
                timer.cancel()

        d = conn.runQuery("SELECT 1")
        d.addCallback(answered)
        d.addErrback(lambda f: (answered(None), self._query_failed("listener", conn, f)))
