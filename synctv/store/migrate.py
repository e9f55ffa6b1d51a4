"""Schema migrations: numbered SQL files per dialect, applied in order, synchronously.

``synctv/store/migrations/<dialect>/NNNN_name.sql`` holds the migrations; ``schema_migrations
(version, name, applied_at)`` records the ones applied. Each migration runs in its own
transaction. On PostgreSQL every transaction first takes an advisory lock, so several nodes
starting at once apply each migration exactly once; on SQLite ``BEGIN IMMEDIATE`` does the same.
SQLite migrations run with foreign keys off (so a migration may rebuild a table) and are checked
with ``PRAGMA foreign_key_check`` before they commit.

Blocking by design: used at server start (before the reactor serves) and by
``synctv db migrate``.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from importlib import resources
from typing import Any

import attrs
import psycopg2

from synctv.store import DatabaseURL
from synctv.store.sqlite import enable_wal

ADVISORY_LOCK_KEY = 0x73796E6374760001  # "synctv" + 1: the migration lock
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_COMMENTS = re.compile(r"/\*.*?\*/|--[^\n]*", re.DOTALL)
_CREATE_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)"
)


class MigrationError(Exception):
    """The database cannot be reached or a migration failed; ``message`` is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@attrs.frozen
class Migration:
    version: int
    name: str  # e.g. "0001_initial"
    sql: str = attrs.field(repr=False)


def available_migrations(dialect: str) -> list[Migration]:
    """The migration files of ``dialect`` in version order; gaps and duplicates are errors."""
    folder = resources.files("synctv.store").joinpath("migrations", dialect)
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name[:-4], entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise MigrationError(
                f"{dialect} migrations must be numbered 0001, 0002, ... without gaps; "
                f"found {migration.name} where {expected:04d} belongs"
            )
    return found


def latest_version(dialect: str) -> int:
    migrations = available_migrations(dialect)
    return migrations[-1].version if migrations else 0


def _has_code(text: str) -> bool:
    return bool(_COMMENTS.sub("", text).strip(" \t\r\n;"))


def sqlite_statements(script: str) -> Iterator[str]:
    """Split a script into complete statements (semicolons in strings or comments are kept)."""
    pieces = script.split(";")
    buffer = ""
    for piece in pieces[:-1]:
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if _has_code(buffer):
                yield buffer.strip()
            buffer = ""
    buffer += pieces[-1]
    if _has_code(buffer):
        yield buffer.strip()


def _reason(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    reason = lines[0] if lines else type(error).__name__
    if "failed: " in reason:
        reason = reason.split("failed: ", 1)[1]
    reason = reason.replace("FATAL:  ", "").replace("ERROR:  ", "")
    return reason[:1].lower() + reason[1:]


def _now_ms() -> int:
    return int(time.time() * 1000)


# -- SQLite ---------------------------------------------------------------------------------


def _sqlite_connect(url: DatabaseURL, create: bool) -> sqlite3.Connection:
    assert url.path is not None
    if not create and not os.path.exists(url.path):
        raise MigrationError(f"no database at {url.path}")
    try:
        if create:
            os.makedirs(os.path.dirname(url.path) or ".", exist_ok=True)
        conn = sqlite3.connect(url.path, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 5000")
        if create:
            enable_wal(conn)
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    except (OSError, sqlite3.Error) as e:
        raise MigrationError(f"cannot open {url.redacted()}: {_reason(e)}") from None
    return conn


def _sqlite_applied(conn: sqlite3.Connection) -> set[int]:
    conn.execute(_CREATE_TABLE)
    return {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}


def _sqlite_apply(conn: sqlite3.Connection, migration: Migration) -> bool:
    """Apply one migration in one transaction unless it is applied already; True if applied."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        if migration.version in _sqlite_applied(conn):
            conn.execute("ROLLBACK")
            return False
        for statement in sqlite_statements(migration.sql):
            conn.execute(statement)
        broken = conn.execute("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise sqlite3.IntegrityError(f"foreign key check failed in table {broken[0][0]}")
        conn.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            (migration.version, migration.name, _now_ms()),
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return True


# -- PostgreSQL ------------------------------------------------------------------------------


def _pg_connect(url: DatabaseURL) -> Any:
    try:
        return psycopg2.connect(url.dsn, connect_timeout=10)
    except psycopg2.Error as e:
        raise MigrationError(f"cannot connect to {url.redacted()}: {_reason(e)}") from None


def _pg_applied(cur: Any) -> set[int]:
    cur.execute(_CREATE_TABLE)
    cur.execute("SELECT version FROM schema_migrations")
    return {row[0] for row in cur.fetchall()}


def _pg_apply(conn: Any, migration: Migration) -> bool:
    with conn:  # one transaction: commit on success, roll back on error
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_KEY,))
            if migration.version in _pg_applied(cur):
                return False
            cur.execute(migration.sql)
            cur.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                (migration.version, migration.name, _now_ms()),
            )
    return True


# -- entry points ----------------------------------------------------------------------------


def migrate(
    url: DatabaseURL,
    progress: Callable[[str], None] | None = None,
    *,
    target: int | None = None,
    migrations: Sequence[Migration] | None = None,
) -> list[str]:
    """Apply every migration not applied yet, in order; return the names applied.

    ``target`` stops after that version; ``migrations`` replaces the packaged files (for tests).
    """
    if migrations is None:
        migrations = available_migrations(url.dialect)
    migrations = [m for m in migrations if target is None or m.version <= target]
    applied: list[str] = []
    conn: Any = _sqlite_connect(url, create=True) if url.dialect == "sqlite" else _pg_connect(url)
    apply = _sqlite_apply if url.dialect == "sqlite" else _pg_apply
    try:
        for migration in migrations:
            try:
                done = apply(conn, migration)
            except (sqlite3.Error, psycopg2.Error) as e:
                raise MigrationError(
                    f"migration {migration.name} failed on {url.redacted()}: {_reason(e)}"
                ) from None
            if done:
                applied.append(migration.name)
                if progress is not None:
                    progress(f"applied {migration.name}")
    finally:
        conn.close()
    if progress is not None and not applied:
        progress(f"{url.redacted()} is up to date (schema version {current_version(url)})")
    return applied


def current_version(url: DatabaseURL) -> int:
    """The highest applied migration, 0 for a database never migrated."""
    if url.dialect == "sqlite":
        assert url.path is not None
        if not os.path.exists(url.path):
            return 0
        conn = _sqlite_connect(url, create=False)
        try:
            exists = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
            ).fetchone()
            if not exists:
                return 0
            return int(conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0])
        finally:
            conn.close()
    conn = _pg_connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
            if not cur.fetchone()[0]:
                return 0
            cur.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            return int(cur.fetchone()[0])
    except psycopg2.Error as e:
        raise MigrationError(f"cannot read the schema version of {url.redacted()}: {_reason(e)}") from None
    finally:
        conn.close()
