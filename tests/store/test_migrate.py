"""Migrations: idempotent, one transaction each, safe to run from two nodes at once, clear errors."""

from __future__ import annotations

import socket
import threading

import pytest
import pytest_twisted

from synctv.store import DatabaseURL, SchemaOutdated, open_store, parse_database_url
from synctv.store.migrate import (
    Migration,
    MigrationError,
    available_migrations,
    current_version,
    latest_version,
    migrate,
    sqlite_statements,
)

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def empty_url(request, tmp_path) -> DatabaseURL:
    """A database that exists but has never been migrated (SQLite: not even created)."""
    if request.param == "sqlite":
        return DatabaseURL.sqlite_file(tmp_path / "new" / "dir" / "synctv.db")
    return request.getfixturevalue("fresh_postgres_database")()


def table_names(url: DatabaseURL) -> set[str]:
    if url.dialect == "sqlite":
        import sqlite3

        with sqlite3.connect(url.path) as conn:
            return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    import psycopg2

    conn = psycopg2.connect(url.dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
            return {r[0] for r in cur.fetchall()}
    finally:
        conn.close()


def test_migrate_twice_applies_nothing_the_second_time(empty_url):
    """The first run applies every migration in order and reports it; the second applies none."""
    messages: list[str] = []
    names = [m.name for m in available_migrations(empty_url.dialect)]
    assert current_version(empty_url) == 0
    assert migrate(empty_url, messages.append) == names
    assert messages[: len(names)] == [f"applied {n}" for n in names]
    assert current_version(empty_url) == latest_version(empty_url.dialect) == len(names)
    assert migrate(empty_url) == []
    assert current_version(empty_url) == len(names)
    assert {
        "users",
        "rooms",
        "room_members",
        "media_items",
        "playback_states",
        "settings",
        "schema_migrations",
    } <= table_names(empty_url)


def test_target_stops_at_a_version(empty_url):
    """migrate(target=N) applies migrations up to N only; a later run continues from there."""
    assert migrate(empty_url, target=0) == []
    assert current_version(empty_url) == 0
    assert migrate(empty_url, target=1) == [available_migrations(empty_url.dialect)[0].name]
    assert current_version(empty_url) == 1


def test_a_failing_migration_is_rolled_back_and_reported(empty_url):
    """A migration that fails leaves no trace (its own transaction), earlier ones stay applied."""
    good = Migration(1, "0001_good", "CREATE TABLE good (id TEXT PRIMARY KEY);")
    bad = Migration(
        2, "0002_bad", "CREATE TABLE half (id TEXT PRIMARY KEY);\nINSERT INTO nowhere VALUES (1);"
    )
    with pytest.raises(MigrationError) as caught:
        migrate(empty_url, migrations=[good, bad])
    message = caught.value.message
    assert message.startswith(f"migration 0002_bad failed on {empty_url.redacted()}: ")
    assert "nowhere" in message and "\n" not in message
    assert current_version(empty_url) == 1
    tables = table_names(empty_url)
    assert "good" in tables and "half" not in tables


def test_two_nodes_migrating_at_once_apply_each_migration_once(empty_url):
    """Concurrent migrate() calls (two nodes starting together) both succeed; each migration runs once."""
    migrations = [
        Migration(1, "0001_a", "CREATE TABLE a (id TEXT PRIMARY KEY);"),
        Migration(2, "0002_b", "CREATE TABLE b (id TEXT PRIMARY KEY);"),
    ]
    results: list[list[str]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def node() -> None:
        try:
            start.wait()
            results.append(migrate(empty_url, migrations=migrations))
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=node) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert sorted(name for names in results for name in names) == ["0001_a", "0002_b"]
    assert current_version(empty_url) == 2


def test_sqlite_migrate_creates_the_parent_directory(tmp_path):
    """A SQLite file in a directory that does not exist yet is created with its directory."""
    url = DatabaseURL.sqlite_file(tmp_path / "a" / "b" / "synctv.db")
    migrate(url)
    assert (tmp_path / "a" / "b" / "synctv.db").is_file()


def test_unreachable_postgres_is_a_one_line_error():
    """A server that refuses connections gives MigrationError naming the URL, without the password."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before use: nothing listens there
    url = parse_database_url(f"postgresql://postgres:s3cret@127.0.0.1:{port}/x")
    with pytest.raises(MigrationError) as caught:
        migrate(url)
    assert (
        caught.value.message
        == f"cannot connect to postgresql://postgres@127.0.0.1:{port}/x: connection refused"
    )
    with pytest.raises(MigrationError):
        current_version(url)


@pytest.mark.postgres
def test_missing_postgres_database_is_a_one_line_error(postgres_admin_url):
    """A database that does not exist is named in the error."""
    url = postgres_admin_url.with_database("synctv_no_such_database")
    with pytest.raises(MigrationError) as caught:
        migrate(url)
    assert caught.value.message.endswith('database "synctv_no_such_database" does not exist')


def test_a_file_that_is_not_a_database_is_a_migration_error(tmp_path):
    """Pointing SQLite at some other file fails cleanly."""
    path = tmp_path / "notes.txt"
    path.write_text("hello, this is not SQLite" * 100)
    with pytest.raises(MigrationError) as caught:
        migrate(DatabaseURL.sqlite_file(path))
    assert "not a database" in caught.value.message


@pytest_twisted.ensureDeferred
async def test_open_store_refuses_an_unmigrated_database(empty_url):
    """open_store on a database behind this code's migrations fails with SchemaOutdated naming the fix."""
    with pytest.raises(SchemaOutdated) as caught:
        await open_store(empty_url)
    assert "synctv db migrate" in caught.value.message
    migrate(empty_url, target=latest_version(empty_url.dialect) - 1)
    with pytest.raises(SchemaOutdated):
        await open_store(empty_url)
    migrate(empty_url)
    store = await open_store(empty_url)
    assert await store.count_users() == 0
    await store.close()


def test_sqlite_statement_splitting_keeps_semicolons_in_strings_and_comments():
    """The SQLite runner splits scripts at statement ends only."""
    script = (
        "-- a comment; with a semicolon\nCREATE TABLE t (v TEXT DEFAULT 'a;b');\n"
        "INSERT INTO t VALUES ('x;y'); /* block; comment */\n-- trailing comment\n"
    )
    assert list(sqlite_statements(script)) == [
        "-- a comment; with a semicolon\nCREATE TABLE t (v TEXT DEFAULT 'a;b');",
        "INSERT INTO t VALUES ('x;y');",
    ]
    assert list(sqlite_statements("SELECT 1")) == ["SELECT 1"]


def test_both_dialects_have_the_same_migrations():
    """Every migration exists for SQLite and PostgreSQL under the same number and name."""
    sqlite = [m.name for m in available_migrations("sqlite")]
    postgres = [m.name for m in available_migrations("postgres")]
    assert sqlite == postgres
    assert sqlite[0] == "0001_initial"
