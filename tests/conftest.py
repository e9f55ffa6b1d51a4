"""Fixtures every test directory may use: migrated databases and open stores on both backends.

- ``database_url``: a migrated, empty ``DatabaseURL``; parametrized ``sqlite`` / ``postgres``.
- ``store``: an open ``Store`` on ``database_url``, closed at teardown.
- ``postgres_server_url``: one migrated PostgreSQL database for the whole session,
  ``synctv_test_<hex>``, dropped at the end. The server comes from ``SYNCTV_TEST_POSTGRES``
  (default ``postgresql://postgres@127.0.0.1:5432/postgres``); when it cannot be reached the
  postgres tests are skipped, or fail if ``SYNCTV_REQUIRE_POSTGRES=1``.
- the ``tools`` marker (``@pytest.mark.tools("ffmpeg")``): tests/tools.py skips a test whose
  external tools are missing, or fails it if ``SYNCTV_REQUIRE_TOOLS=1``.
- ``fresh_postgres_database``: a factory of empty PostgreSQL databases (dropped at session end).

The reactor is never imported here; Deferreds are waited for with ``pytest_twisted.blockon``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import pytest_twisted

from synctv.store import DatabaseURL, open_store, parse_database_url
from synctv.store.interface import Store
from synctv.store.migrate import migrate
from tests.tools import pytest_runtest_setup  # the ``tools`` marker's hook

__all__ = ["pytest_runtest_setup"]

POSTGRES_ENV = "SYNCTV_TEST_POSTGRES"
REQUIRE_POSTGRES_ENV = "SYNCTV_REQUIRE_POSTGRES"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"

BACKENDS = [pytest.param("sqlite"), pytest.param("postgres", marks=pytest.mark.postgres)]


def _admin(url: DatabaseURL) -> Any:
    conn = psycopg2.connect(url.dsn, connect_timeout=5)
    conn.autocommit = True
    return conn


@pytest.fixture(scope="session")
def postgres_admin_url() -> DatabaseURL:
    """The PostgreSQL server's maintenance database (skips or fails when unreachable)."""
    url = parse_database_url(os.environ.get(POSTGRES_ENV, DEFAULT_POSTGRES))
    try:
        _admin(url).close()
    except psycopg2.Error as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        message = f"PostgreSQL at {url.redacted()} is unreachable ({reason}); set {POSTGRES_ENV}"
        if os.environ.get(REQUIRE_POSTGRES_ENV) == "1":
            pytest.fail(f"{message} ({REQUIRE_POSTGRES_ENV}=1)", pytrace=False)
        pytest.skip(message)
    return url


@pytest.fixture(scope="session")
def fresh_postgres_database(postgres_admin_url: DatabaseURL) -> Iterator[Callable[[], DatabaseURL]]:
    """Call it to get a new empty database; all of them are dropped at the end of the session."""
    created: list[str] = []

    def create() -> DatabaseURL:
        name = f"synctv_test_{secrets.token_hex(6)}"
        conn = _admin(postgres_admin_url)
        try:
            conn.cursor().execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        created.append(name)
        return postgres_admin_url.with_database(name)

    yield create
    conn = _admin(postgres_admin_url)
    try:
        for name in created:
            conn.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        conn.close()


@pytest.fixture(scope="session")
def postgres_server_url(fresh_postgres_database: Callable[[], DatabaseURL]) -> DatabaseURL:
    """One migrated database shared by the session's postgres tests (emptied per test)."""
    url = fresh_postgres_database()
    migrate(url)
    return url


def empty_postgres_database(url: DatabaseURL) -> None:
    """Delete every row except the migration records; cheaper than a database per test."""
    conn = _admin(url)
    try:
        cur = conn.cursor()
        cur.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name <> 'schema_migrations'"
        )
        tables = [row[0] for row in cur.fetchall()]
        cur.execute("SET lock_timeout = '10s'")
        cur.execute("".join(f'DELETE FROM "{table}";' for table in tables))
    finally:
        conn.close()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> DatabaseURL:
    """A migrated database with no rows, on each backend in turn."""
    if request.param == "sqlite":
        url = DatabaseURL.sqlite_file(tmp_path / "synctv.db")
        migrate(url)
        return url
    url = request.getfixturevalue("postgres_server_url")
    empty_postgres_database(url)
    return url


@pytest.fixture
def store(database_url: DatabaseURL) -> Iterator[Store]:
    """An open store on ``database_url``; closed at teardown."""
    opened = pytest_twisted.blockon(open_store(database_url))
    yield opened
    pytest_twisted.blockon(opened.close())


@pytest.fixture(autouse=True)
def _restore_hypothesis_inner_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """Work around pytest-twisted 1.14: its ``pytest_pyfunc_call`` replaces a @given test's
    ``hypothesis.inner_test`` with a wrapper bound to the running item and never puts it back,
    so the next parametrization of that test calls into the finished item (``funcargs`` None).
    """
    hypothesis = getattr(request.function, "hypothesis", None)
    original = getattr(hypothesis, "inner_test", None)
    yield
    if original is not None:
        hypothesis.inner_test = original
