"""The SQLite store: ``sql`` interactions run on one adbapi connection in a worker thread.

One connection means writes are serialised, which is what SQLite wants anyway; the reactor
thread never blocks on the database. Each interaction is one ``BEGIN IMMEDIATE`` transaction
(the connection is in autocommit mode, so transactions are explicit), committed by adbapi
before the Deferred fires. The connection runs in WAL mode with foreign keys enforced.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.enterprise import adbapi
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorCore
from twisted.logger import Logger

from synctv.core.errors import BadRequest, Unavailable
from synctv.store.base import SQLStore
from synctv.store.statements import Execute, IntegrityViolation, Interaction, Result, run_sync

T = TypeVar("T")

log = Logger()

_INTEGRITY_KINDS = {
    "SQLITE_CONSTRAINT_UNIQUE": "unique",
    "SQLITE_CONSTRAINT_PRIMARYKEY": "unique",
    "SQLITE_CONSTRAINT_FOREIGNKEY": "foreign_key",
    "SQLITE_CONSTRAINT_CHECK": "check",
    "SQLITE_CONSTRAINT_NOTNULL": "not_null",
}
_UNAVAILABLE_PREFIXES = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_FULL")


def enable_wal(conn: sqlite3.Connection, patience_s: float = 5.0) -> None:
    """Switch the file to WAL. Switching needs an exclusive lock and SQLite does not call the busy
    handler for it, so when another connection holds the file we retry for up to ``patience_s``."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
                return
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def configure_connection(conn: sqlite3.Connection) -> None:
    """Per-connection settings of the store's connection."""
    conn.execute("PRAGMA busy_timeout = 5000")
    enable_wal(conn)
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")


def _execute(cursor: Any, statement: Execute) -> Result:
    try:
        cursor.execute(statement.sql, statement.params)
    except sqlite3.IntegrityError as e:
        kind = _INTEGRITY_KINDS.get(getattr(e, "sqlite_errorname", ""), "check")
        raise IntegrityViolation(kind, str(e)) from None
    except OverflowError:
        raise BadRequest("a number is too large to store") from None
    rows = cursor.fetchall() if cursor.description is not None else []
    return Result(rows=rows, rowcount=cursor.rowcount)


def _run_in_thread(cursor: Any, interaction: Interaction[T]) -> T:
    cursor.execute("BEGIN IMMEDIATE")
    return run_sync(interaction, lambda statement: _execute(cursor, statement))


def _unavailable(failure: Any) -> Any:
    error = failure.check(sqlite3.OperationalError)
    name = getattr(failure.value, "sqlite_errorname", "")
    if error is not None and name.startswith(_UNAVAILABLE_PREFIXES):
        log.warn("sqlite unavailable: {error}", error=str(failure.value))
        raise Unavailable(f"database unavailable: {failure.value}")
    return failure


class SQLiteStore(SQLStore):
    """A ``Store`` on one SQLite file (already migrated: see ``synctv.store.migrate``)."""

    dialect = "sqlite"

    def __init__(self, path: str, reactor: IReactorCore | None = None) -> None:
        self.path = path
        kwargs: dict[str, Any] = {}
        if reactor is not None:
            kwargs["cp_reactor"] = reactor
        self._pool = adbapi.ConnectionPool(
            "sqlite3",
            path,
            check_same_thread=False,
            isolation_level=None,
            cp_min=1,
            cp_max=1,
            cp_openfun=configure_connection,
            cp_noisy=False,
            **kwargs,
        )
        self._closed = False

    def _run(self, interaction: Callable[..., Interaction[T]], *args: Any) -> Deferred[T]:
        if self._closed:
            return fail(RuntimeError("the store is closed"))
        d = self._pool.runInteraction(_run_in_thread, interaction(*args))
        return d.addErrback(_unavailable)

    def close(self) -> Deferred[None]:
        if not self._closed:
            self._closed = True
            self._pool.close()
        return succeed(None)
