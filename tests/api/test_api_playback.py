"""The room's playback state over HTTP: updates by version, stale versions, the bus, and
clearing when the playing item is removed."""

from __future__ import annotations

import pytest
import pytest_twisted

from synctv.api import schema as s
from synctv.bus import room_channel
from tests.api.api_support import check_shape


async def _playing_room(world, duration=100):
    room = await world.room()
    item = await world.media(room, duration=duration)
    path = f"/api/rooms/{room['id']}/playback-state"
    r = await world.client.patch(path, {"action": "media", "media_id": item["id"], "version": 0},
                                 token=world.tokens["alice"])
    assert r.status == 200, r.raw
    return room, item, path, r.json


@pytest_twisted.ensureDeferred
async def test_media_play_pause_seek_rate(world):
    """Each action makes the next version, following core.playback's rules with server time."""
    _room, item, path, state = await _playing_room(world)
    assert check_shape(s.PLAYBACK_STATE, state) == {
        "media_id": item["id"], "playing": False, "ended": False, "position": 0.0, "rate": 1.0,
        "at_ms": world.clock(), "version": 1}
    r = await world.client.patch(path, {"action": "play", "version": 1}, token=world.tokens["alice"])
    assert (r.json["playing"], r.json["version"]) == (True, 2)
    world.clock.advance(10_000)
    r = await world.client.patch(path, {"action": "pause", "version": 2}, token=world.tokens["alice"])
    assert (r.json["playing"], r.json["position"], r.json["at_ms"]) == (False, 10.0, world.clock())
    r = await world.client.patch(path, {"action": "seek", "position": 500, "version": 3}, token=world.tokens["alice"])
    assert r.json["position"] == 100.0  # clamped to the duration
    r = await world.client.patch(path, {"action": "rate", "rate": 1.5, "version": 4}, token=world.tokens["alice"])
    assert (r.json["rate"], r.json["version"]) == (1.5, 5)
    got = await world.client.get(path, token=world.tokens["alice"])
    assert got.json == r.json


@pytest_twisted.ensureDeferred
async def test_stale_version_is_409_with_the_current_state(world):
    """An update based on an old version is refused; detail carries the current state."""
    room, _item, path, state = await _playing_room(world)
    r = await world.client.patch(path, {"action": "play", "version": 0}, token=world.tokens["alice"])
    assert r.status == 409
    error = r.error()
    assert error["code"] == "stale_version"
    assert check_shape(s.PLAYBACK_STATE, error["detail"]) == state
    stored = await world.store.get_playback(room["id"])
    assert stored.to_json() == state


@pytest_twisted.ensureDeferred
async def test_concurrent_updates_on_one_version_let_exactly_one_win(world):
    """Two updates based on the same version race: one is applied, the other gets 409."""
    room, _item, path, _state = await _playing_room(world)
    from twisted.internet.defer import gatherResults

    results = await gatherResults([
        world.client.patch(path, {"action": "seek", "position": p, "version": 1}, token=world.tokens["alice"])
        for p in (10, 20)
    ])
    assert sorted(r.status for r in results) == [200, 409]
    winner = next(r for r in results if r.status == 200).json
    loser = next(r for r in results if r.status == 409)
    assert loser.error()["detail"] == winner
    assert (await world.store.get_playback(room["id"])).to_json() == winner


@pytest.mark.parametrize("body, field", [
    ({"action": "jump", "version": 1}, "action"),
    ({"action": "play"}, "version"),
    ({"action": "play", "version": -1}, "version"),
    ({"action": "play", "version": 1.0}, "version"),
    ({"action": "play", "version": True}, "version"),
    ({"action": "seek", "version": 1}, "position"),
    ({"action": "rate", "rate": 8, "version": 1}, "rate"),
    ({"action": "rate", "version": 1}, "rate"),
    ({"action": "media", "version": 1}, "media_id"),
    ({"action": "seek", "position": "10", "version": 1}, "position"),
    ({"action": "play", "version": 1, "speed": 2}, "speed"),
])
@pytest_twisted.ensureDeferred
async def test_bad_updates_name_the_field_and_change_nothing(world, body, field):
    """A bad update body is a 400 naming the field; the stored state is unchanged."""
    room, _item, path, state = await _playing_room(world)
    r = await world.client.patch(path, body, token=world.tokens["alice"])
    assert (r.status, r.error()["field"]) == (400, field)
    assert (await world.store.get_playback(room["id"])).to_json() == state


@pytest_twisted.ensureDeferred
async def test_media_action_needs_an_item_of_this_room(world):
    """action media naming an item of another room is 404 (field media_id)."""
    _room, _item, path, _state = await _playing_room(world)
    other = await world.room(name="other")
    foreign = await world.media(other)
    r = await world.client.patch(path, {"action": "media", "media_id": foreign["id"], "version": 1},
                                 token=world.tokens["alice"])
    assert (r.status, r.error()["field"]) == (404, "media_id")


@pytest_twisted.ensureDeferred
async def test_play_before_choosing_media_is_400(world):
    """play on a room with nothing selected is a 400, not a new version."""
    room = await world.room()
    path = f"/api/rooms/{room['id']}/playback-state"
    r = await world.client.patch(path, {"action": "play", "version": 0}, token=world.tokens["alice"])
    assert r.status == 400
    assert (await world.store.get_playback(room["id"])).version == 0


@pytest_twisted.ensureDeferred
async def test_playback_permissions(world):
    """Reading needs membership; updating needs control_playback (site admins hold it anyway)."""
    _room, _item, path, _state = await _playing_room(world)
    assert (await world.client.get(path, token=world.tokens["bob"])).status == 403
    r = await world.client.patch(path, {"action": "play", "version": 1}, token=world.tokens["bob"])
    assert (r.status, r.error()["code"]) == (403, "forbidden")
    r = await world.client.patch(path, {"action": "play", "version": 1}, token=world.tokens["admin"])
    assert r.status == 200


@pytest_twisted.ensureDeferred
async def test_updates_are_published_on_the_room_channel(world):
    """Every new state is announced once on room:{id}; refused updates announce nothing."""
    room = await world.room()
    item = await world.media(room)
    seen = []
    world.bus.subscribe(room_channel(room["id"]), seen.append)
    path = f"/api/rooms/{room['id']}/playback-state"
    r = await world.client.patch(path, {"action": "media", "media_id": item["id"], "version": 0},
                                 token=world.tokens["alice"])
    await world.client.patch(path, {"action": "play", "version": 0}, token=world.tokens["alice"])
    assert seen == [{"type": "playbackState", "room_id": room["id"], "state": r.json}]


@pytest_twisted.ensureDeferred
async def test_deleting_the_playing_item_clears_the_state(world):
    """DELETE of the playing item empties the state in a new version and announces it;
    deleting another item leaves the state alone."""
    room, item, path, state = await _playing_room(world)
    other = await world.media(room, url="https://cdn.example/two.mp4")
    seen = []
    world.bus.subscribe(room_channel(room["id"]), seen.append)
    r = await world.client.delete(f"/api/rooms/{room['id']}/media/{other['id']}", token=world.tokens["alice"])
    assert r.status == 200
    assert (await world.client.get(path, token=world.tokens["alice"])).json == state
    world.clock.advance(5000)
    r = await world.client.delete(f"/api/rooms/{room['id']}/media/{item['id']}", token=world.tokens["alice"])
    assert (r.status, r.json) == (200, {"deleted": item["id"]})
    cleared = (await world.client.get(path, token=world.tokens["alice"])).json
    assert cleared == {"media_id": None, "playing": False, "ended": False, "position": 0.0, "rate": 1.0,
                       "at_ms": world.clock(), "version": 2}
    assert [m["type"] for m in seen] == ["playlist", "playlist", "playbackState"]
    assert seen[-1]["state"] == cleared


@pytest_twisted.ensureDeferred
async def test_play_with_a_lead_is_a_countdown_start(world):
    """``play`` with ``lead_ms`` schedules the start that far ahead ("start together"); a lead with
    another action, or over a minute, is a 400 naming lead_ms."""
    _room, _item, path, _state = await _playing_room(world)
    r = await world.client.patch(path, {"action": "play", "version": 1, "lead_ms": 3000}, token=world.tokens["alice"])
    assert (r.status, r.json["playing"], r.json["at_ms"], r.json["position"]) == (200, True, world.clock() + 3000, 0.0)
    for body in ({"action": "pause", "version": 2, "lead_ms": 100}, {"action": "play", "version": 2, "lead_ms": 60_001}):
        r = await world.client.patch(path, body, token=world.tokens["alice"])
        assert (r.status, r.error()["field"]) == (400, "lead_ms")
