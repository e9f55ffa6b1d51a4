"""Who may open a UDP port through an event, and the trigger defaults that follow SyncPlayer: a
cooldown of 5 s unless the event turns it off (schema 5 keeps the cooldown of existing events)."""

from __future__ import annotations

import sqlite3

import pytest
import pytest_twisted

from synctv.store import DatabaseURL
from synctv.store.migrate import latest_version, migrate
from tests.displays.support import free_udp_port, udp_port_in_use


@pytest_twisted.ensureDeferred
async def test_only_site_admins_give_an_event_a_udp_port(show):
    """The room's creator (manage_room) gets 403 naming udp_port, on create and update, and no port
    is bound; a site admin's port binds; the creator may still edit the rest, keep the port, or
    drop it (as deleting the event would)."""
    client, tokens = show.world.client, show.world.tokens
    port, other = free_udp_port(), free_udp_port()
    base = {"room": "wall", "media": show.media["id"], "udp_port": port, "udp_payload": "GO"}
    r = await client.post("/api/events", {"name": "mine", **base}, token=tokens["alice"])
    assert (r.status, r.error()["code"], r.error()["field"]) == (403, "forbidden", "udp_port")
    assert "only site admins" in r.error()["message"]
    assert (await client.get("/api/events/mine", token=tokens["admin"])).status == 404
    assert not udp_port_in_use(port)

    r = await client.post("/api/events", {"name": "show", **base}, token=tokens["admin"])
    assert r.status == 201 and r.json["event"]["status"] == {"udp": "listening", "port": port}
    for change in ({"udp_port": other}, {"udp_port": other, "udp_payload": "GO2"}):
        r = await client.patch("/api/events/show", change, token=tokens["alice"])
        assert (r.status, r.error()["field"]) == (403, "udp_port"), change
    assert not udp_port_in_use(other)
    r = await client.patch("/api/events/show", {"lead_ms": 1000, "udp_port": port, "udp_payload": "GO!"},
                           token=tokens["alice"])
    assert r.status == 200 and (r.json["event"]["udp_port"], r.json["event"]["udp_payload"]) == (port, "GO!")
    r = await client.patch("/api/events/show", {"udp_port": None, "udp_payload": None}, token=tokens["alice"])
    assert r.status == 200 and r.json["event"]["status"] == {"udp": "off"}
    assert not udp_port_in_use(port)


@pytest_twisted.ensureDeferred
async def test_ports_outside_udp_ports_are_refused_even_to_admins(show):
    """[triggers] udp_ports (default 5000-5999) bounds every port an event may get: 400 naming the
    field and the allowed ranges."""
    client, token = show.world.client, show.world.tokens["admin"]
    base = {"room": "wall", "media": show.media["id"], "udp_payload": "GO"}
    for port in (80, 4999, 6000, 7777):
        r = await client.post("/api/events", {"name": "e", "udp_port": port, **base}, token=token)
        assert (r.status, r.error()["field"]) == (400, "udp_port"), port
        assert "5000-5999" in r.error()["message"]
    r = await client.post("/api/events", {"name": "e", **base, "udp_port": free_udp_port(), "udp_payload": "GO"},
                          token=token)
    assert r.status == 201
    r = await client.patch("/api/events/e", {"udp_port": 7777}, token=token)
    assert (r.status, r.error()["field"]) == (400, "udp_port")


@pytest_twisted.ensureDeferred
async def test_the_cooldown_defaults_to_5_s_and_0_turns_it_off(show):
    """A new event without cooldown_s refuses a second trigger for 5 s; cooldown_s 0 never does."""
    client = show.world.client
    guarded = await show.event("guarded")
    assert guarded["cooldown_s"] == 5.0
    assert (await client.post("/trigger_by_name/guarded")).status == 200
    r = await client.post("/trigger_by_name/guarded")
    assert (r.status, r.header("Retry-After")) == (429, "5")
    show.world.clock.advance(5000)
    assert (await client.post("/trigger_by_name/guarded")).status == 200

    free = await show.event("free", cooldown_s=0)
    assert free["cooldown_s"] == 0.0
    for _ in range(3):
        assert (await client.post("/trigger_by_name/free")).status == 200


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def empty_url(request, tmp_path) -> DatabaseURL:
    if request.param == "sqlite":
        return DatabaseURL.sqlite_file(tmp_path / "synctv.db")
    return request.getfixturevalue("fresh_postgres_database")()


def _execute(url: DatabaseURL, statements: list[str]) -> list[tuple]:
    """Run statements (``?`` placeholders become ``%s`` on PostgreSQL); the last one's rows."""
    if url.dialect == "sqlite":
        with sqlite3.connect(url.path) as conn:
            rows: list[tuple] = []
            for statement in statements:
                rows = conn.execute(statement).fetchall()
            return rows
    import psycopg2

    conn = psycopg2.connect(url.dsn)
    try:
        with conn, conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


SEED = [
    "INSERT INTO users (id, name, role, password_hash, token_generation, created_at) "
    "VALUES ('u', 'root', 'admin', 'x', 0, 1)",
    "INSERT INTO rooms (id, name, kind, creator_id, created_at) VALUES ('r', 'wall', 'display', 'u', 1)",
    "INSERT INTO display_events (id, name, room_id, cooldown_s, created_at) VALUES ('old', 'old', 'r', 0, 1)",
    "INSERT INTO display_events (id, name, room_id, cooldown_s, created_at) VALUES ('set', 'set', 'r', 12.5, 1)",
]


def test_schema_5_keeps_existing_cooldowns_and_defaults_new_rows_to_5(empty_url):
    """Events made before schema 5 keep the cooldown they had (0 stays off: it may have been
    chosen); a row written without one, after the migration, gets 5."""
    migrate(empty_url, target=4)
    _execute(empty_url, SEED)
    migrate(empty_url)
    assert latest_version(empty_url.dialect) >= 5
    rows = _execute(empty_url, [
        "INSERT INTO display_events (id, name, room_id, created_at) VALUES ('new', 'new', 'r', 2)",
        "SELECT id, cooldown_s, lead_ms, allowed_sources FROM display_events ORDER BY id",
    ])
    assert [(i, float(c), lead, src) for i, c, lead, src in rows] == [
        ("new", 5.0, 5000, "[]"), ("old", 0.0, 5000, "[]"), ("set", 12.5, 5000, "[]")]
