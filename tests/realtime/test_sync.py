"""Playback-state sync over real sockets: convergence, stale versions, reconnects, permissions,
changes made over HTTP, and the version-ordering rules (no duplicate, no reordering, gaps re-read)."""

from __future__ import annotations

from typing import Any

import attrs
import pytest_twisted

from synctv.bus import room_channel
from synctv.core.models import PlaybackState
from tests.realtime.conftest import RT
from tests.realtime.wsclient import WSClient

STATE_KEYS = {"media_id", "playing", "ended", "position", "rate", "at_ms", "version"}


def _state(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if k in STATE_KEYS}


async def _two_members(rt: RT) -> tuple[dict, dict, WSClient, WSClient]:
    room = await rt.world.room("alice", "lounge")
    media = await rt.world.media(room, duration=100.0)
    await rt.world.join("bob", room)
    a = await rt.ws("alice", room["id"])
    b = await rt.ws("bob", room["id"])
    for client in (a, b):
        first = await rt.observe(client, "playbackState")
        assert first["version"] == 0
    return room, media, a, b


@pytest_twisted.ensureDeferred
async def test_two_clients_converge_after_media_play_pause_seek_and_rate(rt: RT) -> None:
    """Each update by alice is answered to her (with its id) and reaches bob as the same state,
    versions one by one; position is clamped to the duration and rate is checked."""
    _, media, a, b = await _two_members(rt)
    steps = [
        {"action": "media", "media_id": media["id"]},
        {"action": "play"},
        {"action": "seek", "position": 42.5},
        {"action": "rate", "rate": 1.5},
        {"action": "pause"},
        {"action": "seek", "position": 1000.0},  # beyond the duration: clamped
    ]
    version = 0
    for n, step in enumerate(steps):
        rt.world.clock.advance(1000)
        reply = await a.request({"type": "update", "id": n, "version": version, **step})
        assert reply["type"] == "playbackState" and reply["version"] == version + 1, reply
        seen = await b.next()
        assert seen["type"] == "playbackState" and "id" not in seen
        assert _state(seen) == _state(reply)
        version = reply["version"]
    assert reply["position"] == 100.0 and reply["rate"] == 1.5 and reply["playing"] is False
    bad_rate = await a.request({"type": "update", "id": "r", "version": version, "action": "rate", "rate": 8})
    assert bad_rate["type"] == "error" and bad_rate["code"] == "bad_request" and bad_rate["field"] == "rate"
    assert a.skipped == []  # the sender got each state once: as the reply, not also as a broadcast


@pytest_twisted.ensureDeferred
async def test_a_stale_update_is_refused_with_the_current_state(rt: RT) -> None:
    """An update based on an old version gets ``stale_version`` carrying the current state; nothing changes."""
    _, media, a, b = await _two_members(rt)
    await a.request({"type": "update", "id": 1, "version": 0, "action": "media", "media_id": media["id"]})
    await b.next_of("playbackState")
    stale = await b.request({"type": "update", "id": "x", "version": 0, "action": "play"})
    assert stale["type"] == "error" and stale["code"] == "stale_version"
    assert stale["detail"]["version"] == 1 and stale["detail"]["media_id"] == media["id"]
    state = (await rt.world.client.get(f"/api/rooms/{media['room_id']}/playback-state",
                                       token=rt.world.tokens["alice"])).json
    assert state["version"] == 1 and state["playing"] is False


@pytest_twisted.ensureDeferred
async def test_a_reconnecting_client_gets_the_current_state_first(rt: RT) -> None:
    """Changes made while a client was away are not replayed: its first playbackState is the current one."""
    room, media, a, b = await _two_members(rt)
    b.close()
    await b.lost
    version = 0
    for step in ({"action": "media", "media_id": media["id"]}, {"action": "play"}, {"action": "seek", "position": 7}):
        version = (await a.request({"type": "update", "id": "u", "version": version, **step}))["version"]
    again = await rt.ws("bob", room["id"])
    first = await rt.observe(again, "playbackState")
    assert first["version"] == version == 3 and first["position"] == 7.0 and first["playing"] is True


@pytest_twisted.ensureDeferred
async def test_a_member_without_control_playback_gets_forbidden(rt: RT) -> None:
    """A guest (chat only) may watch but an update answers ``forbidden``; the state is unchanged."""
    room, media, _, b = await _two_members(rt)
    r = await rt.world.client.patch(f"/api/rooms/{room['id']}/members/bob", {"role": "guest"},
                                    token=rt.world.tokens["alice"])
    assert r.status == 200, r.raw
    refused = await b.request({"type": "update", "id": 9, "version": 0, "action": "media", "media_id": media["id"]})
    assert refused["type"] == "error" and refused["code"] == "forbidden" and refused["id"] == 9
    assert "control_playback" in refused["message"]


@pytest_twisted.ensureDeferred
async def test_a_change_made_over_http_reaches_websocket_observers(rt: RT) -> None:
    """PATCH .../playback-state is announced on the bus and pushed to every observer."""
    room, media, a, b = await _two_members(rt)
    r = await rt.world.client.patch(f"/api/rooms/{room['id']}/playback-state",
                                    {"action": "media", "media_id": media["id"], "version": 0},
                                    token=rt.world.tokens["alice"])
    assert r.status == 200
    for client in (a, b):
        pushed = await client.next_of("playbackState")
        assert pushed["version"] == 1 and pushed["media_id"] == media["id"]


@pytest_twisted.ensureDeferred
async def test_old_and_repeated_versions_are_never_sent(rt: RT) -> None:
    """A bus message carrying a version the client already has (or older) is dropped."""
    room, media, a, b = await _two_members(rt)
    reply = await a.request({"type": "update", "id": 1, "version": 0, "action": "media", "media_id": media["id"]})
    await b.next_of("playbackState")
    for version in (1, 0):
        rt.world.bus.publish(room_channel(room["id"]), {"type": "playbackState", "room_id": room["id"],
                                                       "state": {**_state(reply), "version": version}})
    pong = await b.request({"type": "time", "id": "after", "t0": 1})
    assert pong["type"] == "time" and b.skipped == []


@pytest_twisted.ensureDeferred
async def test_a_version_gap_makes_the_session_re_read_the_store(rt: RT) -> None:
    """When versions were skipped (2 and 3 never announced), the client gets the state read from
    the store, not the announced message."""
    room, media, a, b = await _two_members(rt)
    store = rt.world.store
    states = [PlaybackState(media_id=media["id"], at_ms=5, version=1),
              PlaybackState(media_id=media["id"], position=3.0, at_ms=6, version=2),
              PlaybackState(media_id=media["id"], position=9.0, at_ms=7, version=3)]
    for expected, state in enumerate(states):
        assert await store.set_playback(room["id"], state, expected)
    announced = attrs.evolve(states[-1], position=123.0)  # differs from the store: must not be sent
    rt.world.bus.publish(room_channel(room["id"]), {"type": "playbackState", "room_id": room["id"],
                                                   "state": announced.to_json()})
    for client in (a, b):
        got = await client.next_of("playbackState")
        assert got["version"] == 3 and got["position"] == 9.0


@pytest_twisted.ensureDeferred
async def test_observe_playback_answers_the_result_and_follows_media_changes(rt: RT) -> None:
    """``observe playback`` answers a PlaybackResult for the profile (null with nothing selected) and
    pushes a new one when the selected media changes."""
    _, media, a, b = await _two_members(rt)
    first = await rt.observe(b, "playback", profile={"modes": ["direct"], "headers": True})
    assert first["type"] == "playback" and first["result"] is None
    await a.request({"type": "update", "id": 1, "version": 0, "action": "media", "media_id": media["id"]})
    pushed = await b.next_of("playback")
    assert pushed["result"]["media_id"] == media["id"]
    assert [info["mode"] for info in pushed["result"]["infos"]] == ["direct"]
    bad = await b.request({"type": "observe", "id": "p", "resource": "playback", "profile": {"modes": ["warp"]}})
    assert bad["type"] == "error" and bad["field"] == "profile.modes"
