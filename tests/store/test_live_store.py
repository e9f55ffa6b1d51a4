"""Stream keys and publisher records (schema 0002), on every backend."""

from __future__ import annotations

import pytest
import pytest_twisted

from synctv.core.errors import Conflict, NotFound
from synctv.core.live import PublisherRecord, StreamKey, new_stream_key, redact_key
from tests.store.conftest import T0


def test_new_keys_are_distinct_and_redacted_in_repr():
    """Keys are random and long; the repr and redact_key never show a whole key."""
    keys = {new_stream_key() for _ in range(50)}
    assert len(keys) == 50
    key = next(iter(keys))
    assert key.startswith("live_") and len(key) >= 36
    assert key not in repr(StreamKey("r", "m", key)) and key not in redact_key(key)


@pytest_twisted.ensureDeferred
async def test_stream_key_put_find_rotate_revoke(store, make):
    """A key reads back by item and by value; putting again rotates it (the old value stops
    resolving); deleting revokes it."""
    room = await make.room()
    item = await make.media(room, provider="rtmp", url="")
    first = StreamKey(room.id, item.id, new_stream_key(), T0)
    assert await store.put_stream_key(first) == first
    assert await store.get_stream_key(room.id, item.id) == first
    assert await store.find_stream_key(first.key) == first
    second = StreamKey(room.id, item.id, new_stream_key(), T0 + 5)
    await store.put_stream_key(second)
    assert await store.find_stream_key(first.key) is None
    assert await store.find_stream_key(second.key) == second
    assert await store.delete_stream_key(room.id, item.id) is True
    assert await store.delete_stream_key(room.id, item.id) is False
    assert await store.get_stream_key(room.id, item.id) is None
    assert await store.find_stream_key(second.key) is None


@pytest_twisted.ensureDeferred
async def test_stream_key_needs_an_item_and_is_unique(store, make):
    """A key for a missing item is NotFound; one key value cannot serve two items."""
    room = await make.room()
    a = await make.media(room, provider="rtmp", url="")
    b = await make.media(room, provider="rtmp", url="")
    with pytest.raises(NotFound):
        await store.put_stream_key(StreamKey(room.id, "no-such-item", new_stream_key(), T0))
    key = new_stream_key()
    await store.put_stream_key(StreamKey(room.id, a.id, key, T0))
    with pytest.raises(Conflict):
        await store.put_stream_key(StreamKey(room.id, b.id, key, T0))


@pytest_twisted.ensureDeferred
async def test_deleting_the_item_or_room_removes_keys_and_records(store, make):
    """Stream keys and publisher records go with their media item and with their room."""
    room = await make.room()
    item = await make.media(room, provider="rtmp", url="")
    key = StreamKey(room.id, item.id, new_stream_key(), T0)
    await store.put_stream_key(key)
    await store.claim_publisher(PublisherRecord(room.id, item.id, "n1", "http://n1", T0, T0), T0)
    await store.delete_media(room.id, item.id)
    assert await store.find_stream_key(key.key) is None
    assert await store.get_publisher(room.id, item.id) is None
    other = await make.media(room, provider="rtmp", url="")
    key2 = StreamKey(room.id, other.id, new_stream_key(), T0)
    await store.put_stream_key(key2)
    await store.delete_room(room.id)
    assert await store.find_stream_key(key2.key) is None


@pytest_twisted.ensureDeferred
async def test_publisher_claims_take_over_only_stale_records(store, make):
    """One node holds a publisher; another node's claim fails while the heartbeat is fresh and
    succeeds once it is stale; the same node may claim again; release needs the holder."""
    room = await make.room()
    item = await make.media(room, provider="rtmp", url="")
    mine = PublisherRecord(room.id, item.id, "node-a", "http://a:8080", T0, T0)
    assert await store.claim_publisher(mine, T0 - 30_000) == mine
    theirs = PublisherRecord(room.id, item.id, "node-b", "http://b:8080", T0 + 10, T0 + 10)
    assert await store.claim_publisher(theirs, T0 - 20_000) == mine  # fresh: refused
    again = PublisherRecord(room.id, item.id, "node-a", "http://a:8080", T0 + 20, T0 + 20)
    assert await store.claim_publisher(again, T0 - 20_000) == again  # same node: renewed
    assert await store.release_publisher(room.id, item.id, "node-b") is False
    assert await store.claim_publisher(theirs, T0 + 21) == theirs  # stale: taken over
    assert await store.get_publisher(room.id, item.id) == theirs
    assert await store.release_publisher(room.id, item.id, "node-b") is True
    assert await store.get_publisher(room.id, item.id) is None


@pytest_twisted.ensureDeferred
async def test_touch_refreshes_only_that_nodes_records(store, make):
    """touch_publishers moves the heartbeat of the node's records and no other node's."""
    room = await make.room()
    a = await make.media(room, provider="rtmp", url="")
    b = await make.media(room, provider="rtmp", url="")
    await store.claim_publisher(PublisherRecord(room.id, a.id, "node-a", "http://a", T0, T0), T0)
    await store.claim_publisher(PublisherRecord(room.id, b.id, "node-b", "http://b", T0, T0), T0)
    assert await store.touch_publishers("node-a", T0 + 1000) == 1
    assert (await store.get_publisher(room.id, a.id)).heartbeat_at == T0 + 1000
    assert (await store.get_publisher(room.id, b.id)).heartbeat_at == T0
    assert (await store.get_publisher(room.id, a.id)).to_json()["node_url"] == "http://a"
