"""The workers survive a database restart (docs/workers.md, "Failure cases"), with a real server
on PostgreSQL: every session of the node is terminated (as a restart does) while an item plays;
the node reconnects and the item still advances, once, and the WebSocket client sees it."""

from __future__ import annotations

from pathlib import Path

import psycopg2
import pytest
import pytest_twisted

from tests.e2e.harness import User, until

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


@pytest_twisted.ensureDeferred
async def test_an_advance_happens_once_after_the_database_dropped_every_session(
        start_node, fresh_postgres_database, media_url, tmp_path: Path):
    url = fresh_postgres_database()
    server = start_node("node", url.dsn)
    root = User(tmp_path / "home", server)
    await root.login("root", (server.data / "root-password").read_text().strip())
    room = (await root.cli("room", "create", "restart"))["id"]
    first = (await root.post(f"/api/rooms/{room}/media", {"url": f"{media_url}/one.mp4", "duration": 3.0}))
    second = (await root.post(f"/api/rooms/{room}/media", {"url": f"{media_url}/two.mp4", "duration": 60.0}))
    watcher = await root.watch(room)
    try:
        played = await root.cli("playback", "set", room, "--media", first["media"]["id"], "--play")
        conn = psycopg2.connect(url.dsn)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()")
            assert cur.fetchone()[0] >= 3  # the store's pool, the bus, the leader
        conn.close()
        advanced = await until(
            lambda: watcher.saw(lambda s: s["media_id"] == second["media"]["id"]), "the advance after the restart")
        assert [s["version"] for s in advanced] == [played["version"] + 1]
        state = await until(lambda: _state(root, room), "the state reads back")
        assert (state["media_id"], state["version"]) == (second["media"]["id"], played["version"] + 1)
    finally:
        await watcher.client.close()


async def _state(user: User, room: str):
    try:
        return await user.get(f"/api/rooms/{room}/playback-state")
    except AssertionError:
        return None  # a 503 while the node reconnects
