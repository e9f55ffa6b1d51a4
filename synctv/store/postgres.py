"""The PostgreSQL store: ``sql`` interactions driven asynchronously on a txpostgres pool.

No threads: each interaction runs in one transaction on one pooled txpostgres connection, the
generator advancing as each statement's Deferred fires. Every connection has a
``DeadConnectionDetector``: when a connection dies (server restart, ``pg_terminate_backend``)
the call that hit it fails with ``Unavailable`` and the connection reconnects in the
background with backoff; later calls use the connections that are alive.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator
from typing import Any, TypeVar

import psycopg2
import psycopg2.errors
import psycopg2.extensions
from twisted.internet.defer import Deferred, fail, inlineCallbacks, maybeDeferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from txpostgres.reconnection import ConnectionDead, DeadConnectionDetector
from txpostgres.retrying import simpleBackoffIterator
from txpostgres.txpostgres import AlreadyConnected, Connection, RollbackFailed

from synctv.compat.txpostgres import (
    TransactionConnection,
    TransactionPool,
    connection_open,
    psycopg_connection,
)
from synctv.core.errors import BadRequest, Unavailable
from synctv.store.base import SQLStore
from synctv.store.statements import IntegrityViolation, Interaction, Result

T = TypeVar("T")

log = Logger()

_INTEGRITY_KINDS: tuple[tuple[type[Exception], str], ...] = (
    (psycopg2.errors.UniqueViolation, "unique"),
    (psycopg2.errors.ForeignKeyViolation, "foreign_key"),
    (psycopg2.errors.NotNullViolation, "not_null"),
)
_CONNECTION_ERRORS = (
    psycopg2.OperationalError,
    psycopg2.InterfaceError,
    ConnectionDead,
    RollbackFailed,
    AlreadyConnected,
)
# libpq parameters added to the DSN unless it sets them: fail fast, notice dead peers.
_CONNECT_DEFAULTS = {
    "connect_timeout": "10",
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
}


@functools.lru_cache(maxsize=512)
def to_pyformat(sql: str) -> str:
    """``?`` placeholders to psycopg2's ``%s`` (literal ``%`` escaped first)."""
    return sql.replace("%", "%%").replace("?", "%s")


def first_line(error: BaseException) -> str:
    """One clean line about ``error`` (a rollback failure is described by its cause)."""
    if isinstance(error, RollbackFailed):
        error = error.originalFailure.value
    text = str(error).strip().splitlines()
    line = text[0].strip() if text else type(error).__name__
    return line.replace("FATAL:  ", "").replace("ERROR:  ", "")


@inlineCallbacks
def _drive(cursor: Any, interaction: Interaction[T]) -> Generator[Deferred[Any], Any, T]:
    """Run ``interaction`` on a txpostgres cursor whose ``execute`` returns a Deferred."""
    try:
        reply: Result | None = None
        error: IntegrityViolation | None = None
        while True:
            try:
                statement = interaction.throw(error) if error is not None else interaction.send(reply)
            except StopIteration as stop:
                return stop.value
            except IntegrityViolation as violation:
                raise violation.to_domain() from None
            try:
                yield cursor.execute(to_pyformat(statement.sql), statement.params)
            except psycopg2.IntegrityError as e:
                kind = next((k for cls, k in _INTEGRITY_KINDS if isinstance(e, cls)), "check")
                reply, error = None, IntegrityViolation(kind, f"{e.diag.constraint_name}: {first_line(e)}")
                continue
            except psycopg2.DataError as e:
                raise BadRequest(f"invalid value: {first_line(e)}") from None
            rows = cursor.fetchall() if cursor.description is not None else []
            reply, error = Result(rows=rows, rowcount=cursor.rowcount), None
    finally:
        interaction.close()


class _Detector(DeadConnectionDetector):
    """Reconnects one connection with backoff until it succeeds or the store closes."""

    def __init__(self, reactor: IReactorTime) -> None:
        super().__init__(deathChecker=self._is_dead, reactor=reactor)
        self.stopped = False
        self._pending: IDelayedCall | None = None
        self._delays = iter(())

    def _is_dead(self, f: Failure) -> bool:
        if f.check(psycopg2.InterfaceError, RollbackFailed, ConnectionDead):
            return True
        if f.check(psycopg2.OperationalError):
            conn = psycopg_connection(self.reconnectable)
            code = getattr(f.value, "pgcode", None)
            return conn is None or bool(conn.closed) or code is None or code.startswith(("08", "57P"))
        return False

    def startReconnecting(self, f: Failure) -> None:
        if self.stopped:
            return
        log.warn("postgres connection lost ({reason}); reconnecting", reason=first_line(f.value))
        self._delays = simpleBackoffIterator(
            initialDelay=0.5, maxDelay=5.0, factor=1.7, maxRetries=0, now=True
        )
        self._schedule()

    def _schedule(self) -> None:
        if not self.stopped:
            self._pending = self.reactor.callLater(next(self._delays), self._attempt)

    def _attempt(self) -> None:
        self._pending = None
        if self.stopped:
            return
        d = maybeDeferred(self.reconnect)
        d.addCallbacks(self._reconnected, self._failed)

    def _reconnected(self, _: object) -> Deferred[Any] | None:
        if self.stopped:
            self.reconnectable.close()
            return None
        log.info("postgres connection restored")
        return self.connectionRecovered()

    def _failed(self, f: Failure) -> None:
        log.info("postgres reconnect failed: {reason}", reason=first_line(f.value))
        self._schedule()

    def stop(self) -> None:
        self.stopped = True
        if self._pending is not None and self._pending.active():
            self._pending.cancel()
        self._pending = None


class _Connection(TransactionConnection):
    """txpostgres' connection, made quiet about losing the server: a broken socket is reported to
    the detector as a connection loss instead of being logged as an unhandled error."""

    def doRead(self) -> Any:
        try:
            return super().doRead()
        except psycopg2.Error as e:
            return e  # the reactor then calls connectionLost(Failure(e)), which the detector sees

    def run_transaction(self, interaction: Any, *args: Any, **kwargs: Any) -> Deferred[Any]:
        cursor = self.cursor()
        d = cursor.execute("begin")
        d.addCallback(interaction, *args, **kwargs)

        def commit(result: object) -> Deferred[object]:
            return cursor.execute("commit").addCallback(lambda _: result)

        def rollback(f: Failure) -> Any:
            if not connection_open(self):  # the server is gone, and the transaction with it
                return Failure(RollbackFailed(self, f))
            done = maybeDeferred(cursor.execute, "rollback")
            done.addErrback(lambda _: Failure(RollbackFailed(self, f)))
            return done.addCallback(lambda _: f)

        d.addCallback(commit)
        d.addErrback(rollback)
        return d


class _Pool(TransactionPool):
    """txpostgres' pool with a detector per connection; hands out live connections first."""

    def __init__(self, reactor: Any, dsn: str, size: int, on_recovered: Callable[[], None]) -> None:
        self.reactor = reactor
        self._on_recovered = on_recovered
        super().__init__(None, dsn, min=size)
        self.every_connection = list(self.connections)

    def connectionFactory(self, reactor: Any, cooperator: Any) -> Connection:
        detector = _Detector(reactor)
        detector.addRecoveryHandler(self._on_recovered)
        return _Connection(reactor, cooperator, detector=detector)

    def run_pooled_transaction(self, interaction: Any, *args: Any, **kwargs: Any) -> Deferred[Any]:
        live = [c for c in self.connections if not c.detector.connectionIsDead]
        connection = live[0] if live else next(iter(self.connections))
        self.connections.remove(connection)
        d = connection.runInteraction(interaction, *args, **kwargs)
        return d.addBoth(self.put_back, connection)

    def dead_count(self) -> int:
        return sum(1 for c in self.every_connection if c.detector.connectionIsDead)

    def close(self) -> None:
        for connection in self.every_connection:
            connection.detector.stop()
            if psycopg_connection(connection) is not None:
                connection.close()


def _connection_kwargs(dsn: str) -> dict[str, str]:
    given = psycopg2.extensions.parse_dsn(dsn)
    return {k: v for k, v in _CONNECT_DEFAULTS.items() if k not in given}


def _unavailable(failure: Failure) -> Failure:
    if failure.check(*_CONNECTION_ERRORS):
        raise Unavailable(f"database unavailable: {first_line(failure.value)}")
    return failure


class PostgresStore(SQLStore):
    """A ``Store`` on a PostgreSQL database (already migrated). Build it with ``open``."""

    dialect = "postgres"

    def __init__(self, pool: _Pool) -> None:
        self._pool = pool
        self._closed = False
        self._waiters: list[Deferred[None]] = []

    @classmethod
    def open(cls, dsn: str, label: str, reactor: Any = None, size: int = 3) -> Deferred[PostgresStore]:
        """Connect ``size`` connections; fails with ``Unavailable`` naming ``label`` (a redacted URL)."""
        if reactor is None:
            from twisted.internet import reactor
        store: PostgresStore

        def recovered() -> None:
            store._recovered()

        pool = _Pool(reactor, dsn, size, recovered)
        pool.connkw.update(_connection_kwargs(dsn))
        store = cls(pool)

        def failed(f: Failure) -> Failure:
            pool.close()
            error = getattr(f.value, "subFailure", f).value
            reason = first_line(error).replace("FATAL:  ", "")
            if "failed: " in reason:
                reason = reason.split("failed: ", 1)[1]
            raise Unavailable(f"cannot connect to {label}: {reason[:1].lower()}{reason[1:]}")

        d = pool.start()
        d.addCallbacks(lambda _: store, failed)
        return d

    def _run(self, interaction: Callable[..., Interaction[T]], *args: Any) -> Deferred[T]:
        if self._closed:
            return fail(RuntimeError("the store is closed"))
        generator = interaction(*args)
        d = self._pool.runInteraction(_drive, generator)
        return d.addErrback(_unavailable)

    def when_connected(self) -> Deferred[None]:
        """Fires once no pooled connection is known to be dead (at once if none is)."""
        if self._pool.dead_count() == 0:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._waiters.append(d)
        return d

    def _recovered(self) -> None:
        if self._pool.dead_count() == 0:
            waiters, self._waiters = self._waiters, []
            for d in waiters:
                d.callback(None)

    def close(self) -> Deferred[None]:
        if not self._closed:
            self._closed = True
            self._pool.close()
        return succeed(None)
