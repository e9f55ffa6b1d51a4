"""The sans-IO sessions and the runtime without sockets: frames go to in-memory sinks, time is a
ManualClock, timers a task.Clock; Actions and the SQLite store are real. Two runtimes on one bus
stand for two nodes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import pytest_twisted
from twisted.internet.task import Clock

from synctv.actions import Actions
from synctv.bus import InProcessBus, Message, room_channel
from synctv.core.clock import ManualClock
from synctv.core.errors import RateLimited
from synctv.core.models import User
from synctv.core.realtime import RealtimeLimits
from synctv.realtime.auth import Principal
from synctv.realtime.connections import ConnectionRuntime
from synctv.store import DatabaseURL, open_store
from synctv.store.migrate import migrate
from tests.api.api_support import make_actions

LIMITS = RealtimeLimits(messages_per_s=1000.0, messages_burst=1000)


class MemorySink:
    """Collects what a session writes, decoded."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.closed: tuple[int, str] | None = None

    def send(self, payload: bytes) -> None:
        self.frames.append(json.loads(payload))

    def send_shared(self, frame: Any) -> None:
        self.frames.append(json.loads(frame))

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["type"] == kind]

    def take(self) -> list[dict[str, Any]]:
        frames, self.frames = self.frames, []
        return frames


class LaterBus(InProcessBus):
    """A bus whose messages arrive later, as through PostgreSQL (``deliver()`` hands them over)."""

    def __init__(self) -> None:
        super().__init__()
        self.queue: list[tuple[str, Message]] = []

    def publish(self, channel: str, message: Message) -> None:
        self.queue.append((channel, message))

    def deliver(self) -> None:
        queue, self.queue = self.queue, []
        for channel, message in queue:
            super().publish(channel, message)


@attrs.define
class Node:
    runtime: ConnectionRuntime
    timers: Clock


@attrs.define
class Env:
    actions: Actions
    clock: ManualClock
    bus: InProcessBus
    users: dict[str, User]
    room_id: str
    media_id: str

    def node(self, node_id: str, limits: RealtimeLimits = LIMITS) -> Node:
        timers = Clock()
        runtime = ConnectionRuntime(actions=self.actions, limits=limits, scheduler=timers, bus=self.bus,
                                    node_id=node_id)
        return Node(runtime, timers)

    async def principal(self, name: str) -> Principal:
        user = self.users[name]
        view = await self.actions.get_room(user, self.room_id)
        return Principal(user=user, room=view.room, member=view.member)

    async def connect(self, node: Node, name: str) -> tuple[Any, MemorySink]:
        sink = MemorySink()
        slot = node.runtime.reserve(self.room_id, self.users[name].id)
        session = node.runtime.open(slot, await self.principal(name), sink)
        session.slot = slot
        return session, sink


async def send(session: Any, message: dict[str, Any]) -> None:
    d = session.receive(json.dumps(message).encode())
    if d is not None:
        await d


def _env(tmp_path: Path, bus: InProcessBus) -> Env:
    url = DatabaseURL.sqlite_file(tmp_path / "synctv.db")
    migrate(url)
    store = pytest_twisted.blockon(open_store(url))
    clock = ManualClock()
    actions = make_actions(store, clock, bus)

    async def setup() -> Env:
        from synctv.core import auth

        users = {}
        for name in ("alice", "bob"):
            users[name] = await store.create_user(User(id=auth.new_id(), name=name, role="user", password_hash="x"))
        view = await actions.create_room(users["alice"], "lounge")
        await actions.join(users["bob"], view.room.id)
        media = await actions.add_media(users["alice"], view.room.id, url="https://cdn.example/a.mp4", duration=60.0)
        return Env(actions, clock, bus, users, view.room.id, media.id)

    from twisted.internet.defer import Deferred

    env = pytest_twisted.blockon(Deferred.fromCoroutine(setup()))
    return env


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = _env(tmp_path, InProcessBus())
    yield e
    pytest_twisted.blockon(e.actions.store.close())


@pytest.fixture
def later_env(tmp_path: Path) -> Iterator[Env]:
    e = _env(tmp_path, LaterBus())
    yield e
    pytest_twisted.blockon(e.actions.store.close())


@pytest_twisted.ensureDeferred
async def test_the_sender_gets_its_version_once_when_the_bus_is_synchronous(env: Env) -> None:
    """With the in-process bus the broadcast of an update happens before its reply; the sender still
    gets exactly one frame for that version: the reply with its id."""
    node = env.node("n1")
    a, a_sink = await env.connect(node, "alice")
    b, b_sink = await env.connect(node, "bob")
    for session in (a, b):
        await send(session, {"type": "observe", "resource": "playbackState"})
    a_sink.take()
    b_sink.take()
    await send(a, {"type": "update", "id": 7, "version": 0, "action": "media", "media_id": env.media_id})
    assert [(f["type"], f.get("id"), f["version"]) for f in a_sink.take()] == [("playbackState", 7, 1)]
    assert [(f["type"], f.get("id"), f["version"]) for f in b_sink.take()] == [("playbackState", None, 1)]


@pytest_twisted.ensureDeferred
async def test_the_sender_gets_its_version_once_when_the_bus_echo_comes_later(later_env: Env) -> None:
    """Through a bus that delivers later (as PostgreSQL does), the reply goes first and the echo of
    the same version is dropped for the sender, delivered to the others."""
    env = later_env
    node = env.node("n1")
    a, a_sink = await env.connect(node, "alice")
    b, b_sink = await env.connect(node, "bob")
    for session in (a, b):
        await send(session, {"type": "observe", "resource": "playbackState"})
    a_sink.take()
    b_sink.take()
    await send(a, {"type": "update", "id": 7, "version": 0, "action": "media", "media_id": env.media_id})
    assert [f.get("id") for f in a_sink.take()] == [7]
    env.bus.deliver()
    assert a_sink.take() == []
    assert [f["version"] for f in b_sink.of("playbackState")] == [1]


@pytest_twisted.ensureDeferred
async def test_states_relayed_during_the_first_read_are_held_behind_its_reply(later_env: Env) -> None:
    """States announced while ``observe`` reads the store wait for its reply (the current state,
    with the id) and are then dropped as not newer: nothing repeats, nothing goes backwards."""
    env = later_env
    node = env.node("n1")
    b, b_sink = await env.connect(node, "bob")
    await env.actions.update_playback(env.users["alice"], env.room_id, _update("media", 0, media_id=env.media_id))
    await env.actions.update_playback(env.users["alice"], env.room_id, _update("play", 1))
    pending = b.receive(json.dumps({"type": "observe", "id": "o", "resource": "playbackState"}).encode())
    env.bus.deliver()  # versions 1 and 2 arrive while the read is in flight
    assert b_sink.of("playbackState") == []
    await pending
    assert [(f.get("id"), f["version"]) for f in b_sink.of("playbackState")] == [("o", 2)]


def _update(action: str, version: int, **kw: Any) -> Any:
    from synctv.core.playback import Update

    return Update(action=action, version=version, **kw)


@pytest_twisted.ensureDeferred
async def test_two_nodes_on_one_bus_share_state_chat_presence_and_webrtc(env: Env) -> None:
    """Connections on different nodes see each other's state changes, chat, presence (merged per
    node) and can exchange webrtc signals through the bus."""
    one, two = env.node("node-1"), env.node("node-2")
    a, _ = await env.connect(one, "alice")
    b, b_sink = await env.connect(two, "bob")
    for timers in (one.timers, two.timers):
        timers.advance(1)  # the coalesced presence announcements
    one.timers.advance(1)  # node-1 answers node-2's first announcement
    for session in (a, b):
        for resource in ("playbackState", "presence", "chat"):
            await send(session, {"type": "observe", "resource": resource})
    online = b_sink.of("presence")[-1]["online"]
    assert [(u["user_name"], u["connection_ids"]) for u in online] == [
        ("alice", [a.connection_id]), ("bob", [b.connection_id])]
    b_sink.take()
    await send(a, {"type": "update", "id": 1, "version": 0, "action": "media", "media_id": env.media_id})
    await send(a, {"type": "chat", "text": "hi from node 1"})
    await send(a, {"type": "webrtc", "to": b.connection_id, "signal": {"candidate": 1}})
    got = b_sink.take()
    assert [f["type"] for f in got] == ["playbackState", "chat", "webrtc"]
    assert got[2] == {"type": "webrtc", "from": a.connection_id, "signal": {"candidate": 1}}
    assert [m["text"] for m in two.runtime.rooms[env.room_id].chat] == ["hi from node 1"]


@pytest_twisted.ensureDeferred
async def test_a_silent_node_expires_from_presence(env: Env) -> None:
    """A node that stops announcing is dropped from the merged presence after presence_expire_s."""
    one, two = env.node("node-1"), env.node("node-2")
    a, a_sink = await env.connect(one, "alice")
    await env.connect(two, "bob")
    for timers in (one.timers, two.timers, one.timers):
        timers.advance(1)
    await send(a, {"type": "observe", "resource": "presence"})
    assert len(a_sink.of("presence")[-1]["online"]) == 2
    two.runtime.rooms[env.room_id].stop = lambda: None  # node-2 dies silently
    env.bus._subscribers[room_channel(env.room_id)].pop()  # ... and hears nothing any more
    env.clock.advance(31_000)
    one.runtime._tick()
    assert [u["user_name"] for u in a_sink.of("presence")[-1]["online"]] == ["alice"]


@pytest_twisted.ensureDeferred
async def test_a_bus_gap_makes_the_room_re_read_the_state(later_env: Env) -> None:
    """After ``busGap`` (messages may be lost), observers get the current state from the store."""
    env = later_env
    node = env.node("n1")
    b, b_sink = await env.connect(node, "bob")
    await send(b, {"type": "observe", "resource": "playbackState"})
    await env.actions.update_playback(env.users["alice"], env.room_id, _update("media", 0, media_id=env.media_id))
    env.bus.queue.clear()  # the announcement is lost
    b_sink.take()
    room = node.runtime.rooms[env.room_id]
    room.on_bus({"type": "busGap", "room_id": env.room_id, "channel": room_channel(env.room_id), "reason": "test"})
    assert room.rereading is not None
    await room.rereading
    assert [f["version"] for f in b_sink.of("playbackState")] == [1]


@pytest_twisted.ensureDeferred
async def test_caps_and_active_rooms(env: Env) -> None:
    """reserve() refuses past the per-user and per-room caps; active_room_ids() follows open sessions."""
    node = env.node("n1", attrs.evolve(LIMITS, max_connections_per_user=1, max_connections_per_room=2))
    a, _ = await env.connect(node, "alice")
    with pytest.raises(RateLimited):
        node.runtime.reserve(env.room_id, env.users["alice"].id)
    b, _ = await env.connect(node, "bob")
    assert node.runtime.active_room_ids() == {env.room_id}
    with pytest.raises(RateLimited):
        node.runtime.reserve(env.room_id, "someone-else")
    node.runtime.release(a.slot)
    node.runtime.release(a.slot)  # idempotent
    assert node.runtime.active_room_ids() == {env.room_id}
    node.runtime.release(b.slot)
    assert node.runtime.active_room_ids() == frozenset()
    assert env.bus.subscriber_count(room_channel(env.room_id)) == 0


@pytest_twisted.ensureDeferred
async def test_a_read_only_display_principal_watches_but_cannot_act(env: Env) -> None:
    """A display's Principal (read only) may observe and send telemetry, which display_status reports;
    update, chat, danmaku and webrtc are forbidden."""
    node = env.node("n1")
    view = await env.actions.get_room(env.users["alice"], env.room_id)
    stand_in = User(id="display:d1", name="screen 1", role="display", password_hash="")
    principal = Principal(user=stand_in, room=view.room, member=None, read_only=True, display_id="d1")
    sink = MemorySink()
    session = node.runtime.open(node.runtime.reserve(env.room_id, stand_in.id), principal, sink)
    assert node.runtime.display_status("d1") == {"online": True, "connections": 1, "telemetry": None}
    await send(session, {"type": "observe", "id": 1, "resource": "playbackState"})
    await send(session, {"type": "telemetry", "drift_ms": 2.0})
    for message in ({"type": "update", "action": "play", "version": 0}, {"type": "chat", "text": "hi"},
                    {"type": "danmaku", "text": "hi", "at": 1}, {"type": "webrtc", "to": "x", "signal": 1}):
        await send(session, {**message, "id": message["type"]})
    errors = {f["id"]: f["code"] for f in sink.of("error")}
    assert errors == {"update": "forbidden", "chat": "forbidden", "danmaku": "forbidden", "webrtc": "forbidden"}
    assert sink.of("playbackState")[0]["id"] == 1
    assert node.runtime.display_status("d1")["telemetry"]["drift_ms"] == 2.0
    assert node.runtime.display_status("other") is None
