"""Persistence: database URLs and ``open_store``, the one way to get a ``Store``.

URL forms (``parse_database_url``):

- ``sqlite:///relative/path.db`` -- relative to the current directory (resolved at parse time);
- ``sqlite:////absolute/path.db`` -- the text after ``sqlite:///`` is the path, so an absolute
  path gives four slashes (as in SQLAlchemy and ``sqlite:///<data>/synctv.db`` with any data dir);
- ``postgresql://user[:password]@host[:port]/dbname[?libpq-params]`` (also ``postgres://``).

The schema is created and upgraded by ``synctv.store.migrate``, not here: ``open_store`` refuses
a database whose schema is older than this code's migrations.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

import attrs
import psycopg2
import psycopg2.extensions
from twisted.internet.defer import Deferred, fail, inlineCallbacks, succeed

from synctv.store.interface import UNSET, Store

__all__ = ["UNSET", "DatabaseURL", "SchemaOutdated", "Store", "open_store", "parse_database_url"]

ACCEPTED_FORMS = (
    "sqlite:///relative/path.db, sqlite:////absolute/path.db or "
    "postgresql://user[:password]@host[:port]/dbname"
)


@attrs.frozen
class DatabaseURL:
    """Where the data lives. ``path`` (absolute) for SQLite, ``dsn`` (a libpq URI) for PostgreSQL."""

    dialect: str  # "sqlite" | "postgres"
    path: str | None = None
    dsn: str | None = attrs.field(default=None, repr=False)

    @classmethod
    def sqlite_file(cls, path: str | os.PathLike[str]) -> DatabaseURL:
        return cls("sqlite", path=os.path.abspath(os.fspath(path)))

    def redacted(self) -> str:
        """The URL without any password, fit for logs and error messages."""
        if self.dialect == "sqlite":
            return f"sqlite:///{self.path}"
        parts = urlsplit(self.dsn or "")
        netloc = parts.hostname or ""
        if ":" in netloc:
            netloc = f"[{netloc}]"
        if parts.port is not None:
            netloc = f"{netloc}:{parts.port}"
        if parts.username:
            netloc = f"{parts.username}@{netloc}"
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))

    def with_database(self, name: str) -> DatabaseURL:
        """The same PostgreSQL server and credentials, another database."""
        if self.dialect != "postgres":
            raise ValueError("only a PostgreSQL URL names a database")
        parts = urlsplit(self.dsn or "")
        return attrs.evolve(self, dsn=urlunsplit(parts._replace(path="/" + name)))

    def __str__(self) -> str:
        return self.redacted()


def _bad(why: str) -> ValueError:
    return ValueError(f"{why}; accepted forms: {ACCEPTED_FORMS}")


def parse_database_url(text: str) -> DatabaseURL:
    """Parse a ``--db`` value; ``ValueError`` with one line naming the accepted forms if bad."""
    text = text.strip()
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme == "sqlite":
        if not text.startswith("sqlite:///") or len(text) == len("sqlite:///"):
            raise _bad("a SQLite URL is sqlite:/// followed by a file path")
        path = text[len("sqlite:///") :]
        if path.endswith("/"):
            raise _bad(f"the SQLite path {path!r} names a directory, not a file")
        return DatabaseURL.sqlite_file(path)
    if scheme in ("postgresql", "postgres"):
        dsn = "postgresql://" + text.split("://", 1)[1]
        try:
            parts: SplitResult = urlsplit(dsn)
            parts.port  # noqa: B018 -- raises ValueError for a bad port
            psycopg2.extensions.parse_dsn(dsn)
        except (ValueError, psycopg2.ProgrammingError) as e:
            raise _bad(f"bad PostgreSQL URL ({str(e).splitlines()[0]})") from None
        if not parts.path.strip("/"):
            raise _bad("the PostgreSQL URL names no database")
        return DatabaseURL("postgres", dsn=dsn)
    if scheme:
        raise _bad(f"unsupported database URL scheme {scheme!r}")
    raise _bad(f"{text[:80]!r} is not a database URL")


class SchemaOutdated(Exception):
    """The database has not been migrated to the schema this code needs; ``message`` says the fix."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@inlineCallbacks
def _check_schema(store: Any, url: DatabaseURL) -> Any:
    from synctv.store.migrate import latest_version

    needed = latest_version(url.dialect)
    try:
        try:
            rows = yield store.run_query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            have = int(rows[0][0])
        except (sqlite3.OperationalError, psycopg2.ProgrammingError):  # no schema_migrations table
            have = 0
        if have < needed:
            raise SchemaOutdated(
                f"the database {url.redacted()} is at schema version {have}, this synctv needs "
                f"{needed}: run `synctv db migrate --db {url.redacted()}`"
            )
    except BaseException:
        yield store.close()
        raise
    return store


def open_store(url: DatabaseURL, reactor: Any = None) -> Deferred[Store]:
    """Open a store on a migrated database; fails with ``Unavailable`` or ``SchemaOutdated``."""
    if url.dialect == "sqlite":
        from synctv.store.sqlite import SQLiteStore

        assert url.path is not None
        if not os.path.exists(url.path):
            return fail(
                SchemaOutdated(f"no database at {url.path}: run `synctv db migrate --db {url.redacted()}`")
            )
        d: Deferred[Any] = succeed(SQLiteStore(url.path, reactor=reactor))
    elif url.dialect == "postgres":
        from synctv.store.postgres import PostgresStore

        assert url.dsn is not None
        d = PostgresStore.open(url.dsn, url.redacted(), reactor=reactor)
    else:
        return fail(ValueError(f"unknown dialect {url.dialect!r}"))
    return d.addCallback(_check_schema, url)
