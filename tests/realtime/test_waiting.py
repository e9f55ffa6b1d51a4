"""The room waits for its slowest viewer (docs/realtime.md, "Waiting for viewers"), through the
sans-IO sessions: readiness reports in, playback-state changes by compare-and-set and ``viewers``
frames out. Actions and SQLite are real; server time is a ManualClock, timers a task.Clock; two
runtimes on one bus stand for two nodes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted

from synctv.bus import InProcessBus
from synctv.core.models import User
from synctv.core.wait import RESUME_LEAD_MS
from synctv.realtime.auth import Principal
from tests.realtime.test_session import Env, MemorySink, Node, _env, _update, send


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = _env(tmp_path, InProcessBus())
    yield e
    pytest_twisted.blockon(e.actions.store.close())


async def playing(env: Env) -> dict[str, Any]:
    """The room plays its media from 0 (versions 1 and 2)."""
    alice = env.users["alice"]
    await env.actions.update_playback(alice, env.room_id, _update("media", 0, media_id=env.media_id))
    return (await env.actions.update_playback(alice, env.room_id, _update("play", 1))).to_json()


async def settle(node: Node) -> None:
    """Run the coalesced pushes and announcements, then wait for a start/end of a wait in flight."""
    node.timers.advance(0.06)
    for room in node.runtime.rooms.values():
        while room.viewers.pending is not None and not room.viewers.pending.called:
            await room.viewers.pending
    node.timers.advance(0.06)


async def observe_all(session: Any) -> None:
    for resource in ("playbackState", "viewers"):
        await send(session, {"type": "observe", "resource": resource})


@pytest_twisted.ensureDeferred
async def test_a_stall_makes_the_room_wait_and_everyone_ready_resumes_it_for_all(env: Env) -> None:
    """Bob stalls while the room plays: the state becomes a scheduled start where the room was, wait_s
    ahead, and every observer is told whom the room waits for; once bob (and alice) are ready the
    start moves to RESUME_LEAD_MS from now, one new version for everyone."""
    node = env.node("n1")
    a, a_sink = await env.connect(node, "alice")
    b, b_sink = await env.connect(node, "bob")
    for session in (a, b):
        await observe_all(session)
    state = await playing(env)
    await send(a, {"type": "readiness", "ready": True})
    await send(b, {"type": "readiness", "id": "r1", "ready": True})
    await settle(node)
    assert {"type": "ack", "id": "r1"} in b_sink.frames
    a_sink.take()
    env.clock.advance(2000)
    await send(b, {"type": "readiness", "ready": False})
    await settle(node)
    held = a_sink.of("playbackState")[-1]
    assert held["version"] == state["version"] + 1 and held["playing"] is True
    assert held["position"] == 2.0 and held["at_ms"] == env.clock() + 10_000
    wait = a_sink.of("viewers")[-1]["wait"]
    assert (wait["version"], wait["user_name"], wait["until_ms"]) == (held["version"], "bob", held["at_ms"])
    assert [w["user_name"] for w in wait["waiting_for"]] == ["bob"]
    a_sink.take()
    env.clock.advance(3000)
    await send(b, {"type": "readiness", "ready": True})
    await settle(node)
    resumed = a_sink.of("playbackState")[-1]
    assert resumed["version"] == held["version"] + 1
    assert resumed["position"] == 2.0 and resumed["at_ms"] == env.clock() + RESUME_LEAD_MS
    assert b_sink.of("playbackState")[-1] == resumed
    assert a_sink.of("viewers")[-1]["wait"] is None


@pytest_twisted.ensureDeferred
async def test_a_viewer_on_another_node_is_waited_for_and_resumes_the_room(env: Env) -> None:
    """Bob is on node 2: his stall starts the wait there; alice on node 1 sees it (the bus's
    ``viewers`` and ``wait``); his readiness on node 2 resumes it."""
    one, two = env.node("node-1"), env.node("node-2")
    a, a_sink = await env.connect(one, "alice")
    b, _ = await env.connect(two, "bob")
    await observe_all(a)
    await observe_all(b)
    await playing(env)
    await send(b, {"type": "readiness", "ready": True})
    await settle(two)
    await settle(one)
    env.clock.advance(1000)
    await send(b, {"type": "readiness", "ready": False})
    await settle(two)
    await settle(one)
    view = a_sink.of("viewers")[-1]
    assert [w["user_name"] for w in view["wait"]["waiting_for"]] == ["bob"]
    assert [(v["user_name"], v["ready"]) for v in view["viewers"]] == [("bob", False)]
    held = a_sink.of("playbackState")[-1]
    env.clock.advance(1000)
    await send(b, {"type": "readiness", "ready": True})
    await settle(two)
    await settle(one)
    assert a_sink.of("playbackState")[-1]["version"] == held["version"] + 1
    assert a_sink.of("viewers")[-1]["wait"] is None


@pytest_twisted.ensureDeferred
async def test_a_viewer_stuck_past_the_bound_is_dropped_and_starts_no_new_wait(env: Env) -> None:
    """Nobody resumes: at the deadline the state plays by itself and the wait is over; bob, still
    buffering, is dropped: he starts no new wait until he has been ready again, and then his
    budget (wait_s per 10 times wait_s) is spent, so his next stall is not waited for either."""
    node = env.node("n1")
    a, a_sink = await env.connect(node, "alice")
    b, _ = await env.connect(node, "bob")
    await observe_all(a)
    await observe_all(b)
    await playing(env)
    await send(b, {"type": "readiness", "ready": True})
    await settle(node)
    env.clock.advance(1000)
    await send(b, {"type": "readiness", "ready": False})
    await settle(node)
    held = a_sink.of("playbackState")[-1]
    env.clock.advance(10_001)
    node.timers.advance(10.01)  # the deadline's look
    await settle(node)
    assert a_sink.of("viewers")[-1]["wait"] is None
    assert a_sink.of("playbackState")[-1]["version"] == held["version"]  # it played on by itself
    await send(b, {"type": "telemetry", "drift_ms": 1.0})  # still not ready: nothing new
    await settle(node)
    assert a_sink.of("playbackState")[-1]["version"] == held["version"]
    env.clock.advance(2000)
    await send(b, {"type": "readiness", "ready": True})
    await send(b, {"type": "readiness", "ready": False})
    await settle(node)
    assert a_sink.of("playbackState")[-1]["version"] == held["version"]
    bob = next(v for v in a_sink.of("viewers")[-1]["viewers"] if v["user_name"] == "bob")
    assert bob["over_budget"] is True and bob["ready"] is False


@pytest_twisted.ensureDeferred
async def test_dont_wait_for_me_and_the_room_setting_turn_waiting_off(env: Env) -> None:
    """``wait: false`` ("don't wait for me") stalls without a wait; so does any stall once the room's
    settings.wait_for_all is false (announced on the bus as a ``room`` message)."""
    node = env.node("n1")
    a, a_sink = await env.connect(node, "alice")
    b, _ = await env.connect(node, "bob")
    await observe_all(a)
    state = await playing(env)
    await send(b, {"type": "readiness", "ready": False, "wait": False})
    await settle(node)
    assert a_sink.of("playbackState")[-1]["version"] == state["version"]
    assert a_sink.of("viewers")[-1]["viewers"][0]["wait"] is False
    await env.actions.update_room(env.users["alice"], env.room_id, settings={"wait_for_all": False, "x": 1})
    await send(b, {"type": "readiness", "ready": True, "wait": True})
    env.clock.advance(100)
    await send(b, {"type": "readiness", "ready": False})
    await settle(node)
    assert a_sink.of("playbackState")[-1]["version"] == state["version"]


@pytest_twisted.ensureDeferred
async def test_a_paused_room_or_a_countdown_does_not_wait_until_it_runs(env: Env) -> None:
    """A stall while paused is no wait; during a countdown (play with lead_ms) neither; when the
    countdown ends with bob still not ready, the room waits for him then."""
    node = env.node("n1")
    a, a_sink = await env.connect(node, "alice")
    b, _ = await env.connect(node, "bob")
    await observe_all(a)
    alice = env.users["alice"]
    await env.actions.update_playback(alice, env.room_id, _update("media", 0, media_id=env.media_id))
    await send(b, {"type": "readiness", "ready": False})
    await settle(node)
    assert a_sink.of("playbackState")[-1]["version"] == 1
    await send(a, {"type": "update", "action": "play", "version": 1, "lead_ms": 3000})
    await settle(node)
    countdown = a_sink.of("playbackState")[-1]
    assert countdown["version"] == 2 and countdown["at_ms"] == env.clock() + 3000
    env.clock.advance(3000)
    node.timers.advance(3.01)
    await settle(node)
    held = a_sink.of("playbackState")[-1]
    assert held["version"] == 3 and held["at_ms"] == env.clock() + 10_000
    assert a_sink.of("viewers")[-1]["wait"]["user_name"] == "bob"


@pytest_twisted.ensureDeferred
async def test_readiness_is_checked_and_refused_to_read_only_connections(env: Env) -> None:
    """A bad ``ready``/``wait`` is a bad_request naming the field; a display screen (read only) may not
    report readiness."""
    node = env.node("n1")
    a, a_sink = await env.connect(node, "alice")
    await send(a, {"type": "readiness", "id": 1, "ready": "yes"})
    await send(a, {"type": "readiness", "id": 2, "ready": True, "wait": 0})
    assert [(f["id"], f["code"], f["field"]) for f in a_sink.of("error")] == [
        (1, "bad_request", "ready"), (2, "bad_request", "wait")]
    view = await env.actions.get_room(env.users["alice"], env.room_id)
    stand_in = User(id="display:d1", name="screen", role="display", password_hash="")
    sink = MemorySink()
    screen = node.runtime.open(node.runtime.reserve(env.room_id, stand_in.id),
                               Principal(user=stand_in, room=view.room, member=None, read_only=True, display_id="d1"),
                               sink)
    await send(screen, {"type": "readiness", "id": 3, "ready": False})
    assert sink.of("error")[0]["code"] == "forbidden"


@pytest_twisted.ensureDeferred
async def test_telemetry_reaches_viewers_observers_at_most_once_a_second(env: Env) -> None:
    """Each viewer's newest telemetry is in ``viewers``; pushes for telemetry are coalesced to one per
    viewers_interval_s."""
    node = env.node("n1")
    a, a_sink = await env.connect(node, "alice")
    b, _ = await env.connect(node, "bob")
    await send(a, {"type": "observe", "resource": "viewers"})
    assert a_sink.take()[-1] == {"type": "viewers", "viewers": [], "count": 0, "wait": None}
    for drift in (1.0, 2.0, 3.0):
        await send(b, {"type": "telemetry", "drift_ms": drift, "rate": 1.0, "offset_ms": -3.5, "rtt_ms": 0.4})
    node.timers.advance(0.5)
    assert a_sink.of("viewers") == []
    node.timers.advance(0.6)
    pushed = a_sink.of("viewers")
    assert len(pushed) == 1
    [bob] = pushed[0]["viewers"]
    assert bob["user_name"] == "bob" and bob["ready"] is None
    assert bob["telemetry"]["drift_ms"] == 3.0 and bob["telemetry"]["offset_ms"] == -3.5


@pytest_twisted.ensureDeferred
async def test_playlist_observers_hear_that_the_playlist_changed(env: Env) -> None:
    """``observe playlist`` answers at once, then each add, edit, removal or reorder is one
    ``playlist`` frame (the page re-reads GET .../media)."""
    node = env.node("n1")
    a, a_sink = await env.connect(node, "alice")
    await send(a, {"type": "observe", "id": "p", "resource": "playlist"})
    assert a_sink.take() == [{"type": "playlist", "id": "p"}]
    alice = env.users["alice"]
    item = await env.actions.add_media(alice, env.room_id, url="https://cdn.example/b.mp4")
    await env.actions.update_media(alice, env.room_id, item.id, title="B")
    assert a_sink.take() == [{"type": "playlist"}, {"type": "playlist"}]
