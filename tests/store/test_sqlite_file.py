"""The SQLite store on a file: durable across reopen, in WAL mode, with foreign keys enforced."""

from __future__ import annotations

import pytest_twisted

from synctv.core.models import MediaItem, Member, PlaybackState, Room, User
from synctv.core.permissions import Permission
from synctv.store import DatabaseURL, open_store
from synctv.store.migrate import migrate


@pytest_twisted.ensureDeferred
async def test_reopened_store_sees_committed_data(tmp_path):
    """Everything a closed store wrote is there when the file is opened again."""
    url = DatabaseURL.sqlite_file(tmp_path / "data" / "synctv.db")
    migrate(url)
    store = await open_store(url)
    user = await store.create_user(User("u1", "alice", "root", "hash", created_at=1))
    room = await store.create_room(
        Room("r1", "movies", "watch", settings={"k": "v"}, creator_id="u1"),
        Member("r1", "u1", "creator", Permission.all(), 2),
        PlaybackState(),
    )
    item = await store.add_media(MediaItem("m1", "r1", 0, "film", "https://e/f.mp4", duration=90.0))
    state = PlaybackState(media_id="m1", playing=True, position=3.5, at_ms=10, version=1)
    assert await store.set_playback("r1", state, 0)
    await store.put_setting_if_absent("token_secret", "s")
    await store.close()

    again = await open_store(url)
    try:
        assert await again.get_user("u1") == user
        assert await again.get_room("r1") == room
        assert await again.list_media("r1") == [item]
        assert await again.get_playback("r1") == state
        assert await again.get_setting("token_secret") == "s"
        assert [m.user_name for m in await again.list_members("r1")] == ["alice"]
    finally:
        await again.close()


@pytest_twisted.ensureDeferred
async def test_connection_settings(tmp_path):
    """The store's connection runs in WAL mode with foreign keys on and a busy timeout."""
    url = DatabaseURL.sqlite_file(tmp_path / "synctv.db")
    migrate(url)
    store = await open_store(url)
    try:
        assert (await store.run_query("PRAGMA journal_mode"))[0][0] == "wal"
        assert (await store.run_query("PRAGMA foreign_keys"))[0][0] == 1
        assert (await store.run_query("PRAGMA busy_timeout"))[0][0] == 5000
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_closed_store_refuses_calls(tmp_path):
    """A call after close fails (it does not reopen the file or hang)."""
    url = DatabaseURL.sqlite_file(tmp_path / "synctv.db")
    migrate(url)
    store = await open_store(url)
    await store.close()
    try:
        await store.count_users()
    except RuntimeError as e:
        assert "closed" in str(e)
    else:
        raise AssertionError("a closed store answered")
