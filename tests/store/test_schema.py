"""The schema: upgrading step by step equals a fresh install, and the two dialects agree.

Schemas are compared as normalised dumps read from the database catalogs (SQLite's PRAGMAs,
PostgreSQL's pg_catalog): per table its columns (type, NOT NULL, default), primary key, unique
constraints, foreign keys (with ON DELETE), CHECK constraints of the ``col IN (...)`` kind and
plain indexes. Within one dialect the dumps must be identical; across dialects types are
compared by family (PostgreSQL BOOLEAN counts as SQLite's INTEGER 0/1).
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

import psycopg2
import pytest

from synctv.store import DatabaseURL
from synctv.store.migrate import available_migrations, migrate

Schema = dict[str, dict[str, Any]]

_FAMILIES = {
    "integer": "integer",
    "bigint": "integer",
    "smallint": "integer",
    "boolean": "integer",
    "text": "text",
    "double precision": "real",
    "real": "real",
}


def _default(value: str | None) -> str | None:
    """'{}'::text -> '{}'; 0 -> 0."""
    return None if value is None else re.sub(r"::[a-z ]+$", "", value.strip())


def _check(column: str, definition: str) -> tuple[str, frozenset[str]]:
    return column, frozenset(re.findall(r"'([^']*)'", definition))


def sqlite_schema(url: DatabaseURL) -> Schema:
    conn = sqlite3.connect(url.path)
    try:
        schema: Schema = {}
        tables = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
        for table, sql in tables:
            info = conn.execute(f"PRAGMA table_info({table})").fetchall()
            columns = {
                name: (kind.lower(), bool(notnull) or pk > 0, _default(default))
                for _, name, kind, notnull, default, pk in info
            }
            pk = tuple(name for *_, name, _, _, _, pk in sorted(info, key=lambda r: r[5]) if pk)
            unique, indexes = set(), set()
            for _, name, is_unique, origin, _ in conn.execute(f"PRAGMA index_list({table})").fetchall():
                cols = tuple(r[2] for r in conn.execute(f"PRAGMA index_info({name})").fetchall())
                if origin == "u":
                    unique.add(cols)
                elif origin == "c":
                    indexes.add((name, cols, bool(is_unique)))
            fks: dict[int, list[Any]] = {}
            for fk_id, _, ref, src, dst, _, on_delete, _ in conn.execute(f"PRAGMA foreign_key_list({table})"):
                fks.setdefault(fk_id, [ref, [], [], on_delete.upper()])
                fks[fk_id][1].append(src)
                fks[fk_id][2].append(dst)
            checks = {
                _check(m.group(1), m.group(2)) for m in re.finditer(r"CHECK \((\w+) IN \(([^)]*)\)\)", sql)
            }
            schema[table] = {
                "columns": columns,
                "pk": pk,
                "unique": unique,
                "indexes": indexes,
                "checks": checks,
                "fks": {(tuple(src), ref, tuple(dst), od) for ref, src, dst, od in fks.values()},
            }
        return schema
    finally:
        conn.close()


_PG_ON_DELETE = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


def postgres_schema(url: DatabaseURL) -> Schema:
    conn = psycopg2.connect(url.dsn)
    try:
        cur = conn.cursor()
        schema: Schema = {}
        cur.execute(
            "SELECT table_name, column_name, data_type, is_nullable, column_default "
            "FROM information_schema.columns WHERE table_schema = 'public'"
        )
        for table, column, kind, nullable, default in cur.fetchall():
            entry = schema.setdefault(
                table,
                {"columns": {}, "pk": (), "unique": set(), "indexes": set(), "checks": set(), "fks": set()},
            )
            entry["columns"][column] = (kind, nullable == "NO", _default(default))
        cur.execute(
            """
            SELECT c.conrelid::regclass::text, c.contype, c.confdeltype, c.confrelid::regclass::text,
                   ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
                         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i),
                   ARRAY(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(n, i)
                         JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i),
                   pg_get_constraintdef(c.oid)
            FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
            WHERE n.nspname = 'public'
            """
        )
        for table, kind, on_delete, ref, cols, ref_cols, definition in cur.fetchall():
            entry = schema[table]
            if kind == "p":
                entry["pk"] = tuple(cols)
            elif kind == "u":
                entry["unique"].add(tuple(cols))
            elif kind == "f":
                entry["fks"].add((tuple(cols), ref, tuple(ref_cols), _PG_ON_DELETE[on_delete]))
            elif kind == "c":
                entry["checks"].add(_check(cols[0], definition))
        cur.execute(
            """
            SELECT t.relname, i.relname, x.indisunique,
                   ARRAY(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY k(n, o)
                         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.n ORDER BY k.o)
            FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
            JOIN pg_namespace n ON n.oid = t.relnamespace
            WHERE n.nspname = 'public' AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid)
            """
        )
        for table, name, is_unique, cols in cur.fetchall():
            schema[table]["indexes"].add((name, tuple(cols), is_unique))
        return schema
    finally:
        conn.close()


def dump(url: DatabaseURL) -> Schema:
    return sqlite_schema(url) if url.dialect == "sqlite" else postgres_schema(url)


def by_family(schema: Schema) -> Schema:
    """Column types reduced to their family, for comparing across dialects."""
    out: Schema = {}
    for table, entry in schema.items():
        columns = {
            name: (_FAMILIES.get(kind, kind), notnull, default)
            for name, (kind, notnull, default) in entry["columns"].items()
        }
        out[table] = {**entry, "columns": columns}
    return out


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def two_empty_databases(request, tmp_path) -> tuple[DatabaseURL, DatabaseURL]:
    if request.param == "sqlite":
        return DatabaseURL.sqlite_file(tmp_path / "a.db"), DatabaseURL.sqlite_file(tmp_path / "b.db")
    create = request.getfixturevalue("fresh_postgres_database")
    return create(), create()


def test_upgrading_through_every_migration_equals_a_fresh_install(two_empty_databases):
    """Database A is upgraded one migration at a time; B gets all at once. Their schemas match."""
    stepwise, fresh = two_empty_databases
    migrations = available_migrations(stepwise.dialect)
    for migration in migrations:
        assert migrate(stepwise, target=migration.version) == [migration.name]
    assert migrate(fresh) == [m.name for m in migrations]
    assert dump(stepwise) == dump(fresh)


@pytest.mark.postgres
def test_sqlite_and_postgres_schemas_agree(tmp_path, fresh_postgres_database):
    """Both dialects end with the same tables, columns, keys, constraints and indexes."""
    sqlite_url, postgres_url = DatabaseURL.sqlite_file(tmp_path / "s.db"), fresh_postgres_database()
    migrate(sqlite_url)
    migrate(postgres_url)
    sqlite, postgres = by_family(dump(sqlite_url)), by_family(dump(postgres_url))
    assert sorted(sqlite) == sorted(postgres)
    for table in sqlite:
        assert sqlite[table] == postgres[table], table
    assert "users" in sqlite and ("name",) in sqlite["users"]["unique"]
    assert (("room_id",), "rooms", ("id",), "CASCADE") in sqlite["media_items"]["fks"]
    assert ("role", frozenset({"root", "admin", "user"})) in sqlite["users"]["checks"]
