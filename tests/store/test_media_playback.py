"""Media items (the playlist) and playback state, on every backend."""

from __future__ import annotations

import attrs
import pytest
import pytest_twisted
from twisted.internet.defer import gatherResults

from synctv.core.errors import NotFound
from synctv.core.models import PlaybackState, Subtitle
from synctv.store import open_store


@pytest_twisted.ensureDeferred
async def test_add_media_round_trips_every_field(store, make):
    """An added item reads back equal, JSON fields and subtitles included; sort is assigned."""
    room = await make.room()
    item = make.media_value(
        room,
        sort=99,
        title="Ĉapelo 🎩",
        provider="alist",
        provider_data={"path": "/电影/a.mkv", "nested": {"list": [1, 2.5, None, True]}},
        headers={"Authorization": "Bearer x", "X-Ünïcode": "✓"},
        subtitles=(
            Subtitle("中文", "https://e/zh.ass", "ass", {"Cookie": "a=b"}),
            Subtitle("en", "https://e/en.vtt"),
        ),
        duration=None,
    )
    stored = await store.add_media(item)
    assert stored == attrs.evolve(item, sort=0)
    assert await store.get_media(room.id, item.id) == stored
    assert await store.list_media(room.id) == [stored]


@pytest_twisted.ensureDeferred
async def test_new_items_go_after_every_existing_item(store, make):
    """sort of a new item is past the largest one, also after reorders and deletions."""
    room = await make.room()
    a, b, c = [await make.media(room) for _ in range(3)]
    assert [a.sort, b.sort, c.sort] == [0, 1, 2]
    await store.reorder_media(room.id, [c.id, a.id, b.id])
    await store.delete_media(room.id, b.id)
    d = await make.media(room)
    assert [i.id for i in await store.list_media(room.id)] == [c.id, a.id, d.id]


@pytest_twisted.ensureDeferred
async def test_concurrent_adds_get_distinct_places(store, make):
    """Items added at the same time still get strictly increasing, distinct sort values."""
    room = await make.room()
    items = await gatherResults([store.add_media(make.media_value(room)) for _ in range(6)])
    listed = await store.list_media(room.id)
    assert sorted(i.sort for i in items) == list(range(6))
    assert [i.sort for i in listed] == list(range(6))


@pytest_twisted.ensureDeferred
async def test_add_media_to_unknown_room_is_not_found(store, make):
    """A media item needs an existing room."""
    room = await make.room()
    with pytest.raises(NotFound):
        await store.add_media(attrs.evolve(make.media_value(room), room_id="nope"))
    assert await store.list_media("nope") == []


@pytest_twisted.ensureDeferred
async def test_missing_media_is_none(store, make):
    """Unknown items, and items asked for under another room, read as None."""
    room, other = await make.room(), await make.room()
    item = await make.media(room)
    assert await store.get_media(room.id, "nope") is None
    assert await store.get_media(other.id, item.id) is None
    assert await store.update_media(other.id, item.id, title="x") is None
    assert await store.delete_media(other.id, item.id) is False
    assert await store.get_media(room.id, item.id) == item


@pytest_twisted.ensureDeferred
async def test_update_media_fields(store, make):
    """Each updatable field changes when given; others keep their values."""
    room = await make.room()
    item = await make.media(room)
    subs = (Subtitle("fr", "https://e/fr.srt", "srt"),)
    updated = await store.update_media(
        room.id,
        item.id,
        title="new",
        url="https://e/new.m3u8",
        provider="emby",
        provider_data={"id": "42"},
        headers={},
        subtitles=subs,
        duration=3600.25,
    )
    expected = attrs.evolve(
        item,
        title="new",
        url="https://e/new.m3u8",
        provider="emby",
        provider_data={"id": "42"},
        headers={},
        subtitles=subs,
        duration=3600.25,
    )
    assert updated == expected
    assert await store.update_media(room.id, item.id, duration=None) == attrs.evolve(expected, duration=None)
    assert await store.update_media(room.id, item.id) == attrs.evolve(expected, duration=None)


@pytest_twisted.ensureDeferred
async def test_update_media_refuses_unknown_fields(store, make):
    """Only the documented fields can be updated; anything else is a programming error."""
    room = await make.room()
    item = await make.media(room)
    with pytest.raises(TypeError):
        await store.update_media(room.id, item.id, sort=5)
    assert await store.get_media(room.id, item.id) == item


@pytest_twisted.ensureDeferred
async def test_delete_media(store, make):
    """delete_media removes one item and reports whether it existed."""
    room = await make.room()
    a, b = await make.media(room), await make.media(room)
    assert await store.delete_media(room.id, a.id) is True
    assert await store.delete_media(room.id, a.id) is False
    assert await store.list_media(room.id) == [b]


@pytest_twisted.ensureDeferred
async def test_reorder_media(store, make):
    """A permutation of the playlist becomes its order, and the new list is returned."""
    room = await make.room()
    a, b, c = [await make.media(room) for _ in range(3)]
    result = await store.reorder_media(room.id, [b.id, c.id, a.id])
    assert [i.id for i in result] == [b.id, c.id, a.id]
    assert [i.sort for i in result] == [0, 1, 2]
    assert await store.list_media(room.id) == result


@pytest_twisted.ensureDeferred
async def test_reorder_with_a_non_permutation_changes_nothing(store, make):
    """A list that misses, repeats or adds an id gives None and leaves the order alone."""
    room, other = await make.room(), await make.room()
    a, b, c = [await make.media(room) for _ in range(3)]
    foreign = await make.media(other)
    before = await store.list_media(room.id)
    for ids in (
        [a.id, b.id],
        [a.id, b.id, c.id, c.id],
        [a.id, b.id, b.id],
        [c.id, b.id, a.id, "x"],
        [c.id, b.id, foreign.id],
        [],
    ):
        assert await store.reorder_media(room.id, ids) is None, ids
        assert await store.list_media(room.id) == before
    assert await store.list_media(other.id) == [foreign]


@pytest_twisted.ensureDeferred
async def test_reorder_empty_and_unknown_rooms(store, make):
    """An empty playlist reorders to []; an unknown room gives None."""
    room = await make.room()
    assert await store.reorder_media(room.id, []) == []
    assert await store.reorder_media("nope", []) is None


@pytest_twisted.ensureDeferred
async def test_playback_state_round_trips(store, make):
    """Every playback field reads back equal with its type (bool, float, int, optional str)."""
    room = await make.room()
    item = await make.media(room)
    state = PlaybackState(
        media_id=item.id,
        playing=True,
        ended=False,
        position=12.345,
        rate=1.25,
        at_ms=make.tick(),
        version=1,
        event_id="evt-1",
    )
    assert await store.set_playback(room.id, state, expected_version=0) is True
    stored = await store.get_playback(room.id)
    assert stored == state
    assert type(stored.playing) is bool and type(stored.position) is float and type(stored.version) is int
    ended = PlaybackState(ended=True, position=0.0, rate=1.0, at_ms=make.tick(), version=2)
    assert await store.set_playback(room.id, ended, expected_version=1) is True
    assert await store.get_playback(room.id) == ended


@pytest_twisted.ensureDeferred
async def test_set_playback_with_a_stale_version_changes_nothing(store, make):
    """Compare-and-set: a wrong expected version fires False and leaves the state as it was."""
    room = await make.room()
    initial = await store.get_playback(room.id)
    state = PlaybackState(playing=True, position=5.0, version=1)
    assert await store.set_playback(room.id, state, expected_version=7) is False
    assert await store.get_playback(room.id) == initial
    assert await store.set_playback(room.id, state, expected_version=0) is True
    assert await store.set_playback(room.id, attrs.evolve(state, version=2), expected_version=0) is False
    assert await store.get_playback(room.id) == state


@pytest_twisted.ensureDeferred
async def test_missing_playback_is_none_and_not_settable(store):
    """A room that does not exist has no playback state and cannot get one."""
    assert await store.get_playback("nope") is None
    assert await store.set_playback("nope", PlaybackState(version=1), expected_version=0) is False


@pytest_twisted.ensureDeferred
async def test_concurrent_set_playback_has_exactly_one_winner(store, make, database_url):
    """Two callers (also on two store instances, like two nodes) with one expected version: one wins."""
    room = await make.room()
    second = await open_store(database_url)
    try:
        for version in range(0, 6):
            a = PlaybackState(position=float(version), playing=True, version=version + 1, event_id="a")
            b = PlaybackState(position=-1.0, playing=False, version=version + 1, event_id="b")
            writer_b = second if version % 2 else store
            results = await gatherResults(
                [store.set_playback(room.id, a, version), writer_b.set_playback(room.id, b, version)]
            )
            assert sorted(results) == [False, True]
            winner = a if results[0] else b
            assert await store.get_playback(room.id) == winner
            assert await second.get_playback(room.id) == winner
    finally:
        await second.close()
