"""synctv.realtime.client against the real server (``twistd -n synctv`` on SQLite).

One server for the module; each test connects real WebSocket clients and waits for the frames it
expects (events, not time). Bounds are generous sanity limits, never performance assertions.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
import pytest_twisted
from twisted.internet.defer import Deferred

from synctv.realtime.client import ConnectionLost, RealtimeClient, RealtimeError, Refused, connect
from tests.integration.processes import ServerProcess, running_server

pytestmark = pytest.mark.integration

BOUND_S = 20


@attrs.frozen
class Room:
    server: Any
    token: str
    room: str
    media: str


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real server for the module (each test makes its own room)."""
    with running_server(tmp_path_factory.mktemp("client-server")) as server:
        yield server


@pytest.fixture
def room(server: ServerProcess) -> Room:
    """Root's token and a new room with one media item (not selected yet)."""
    password = (server.data / "root-password").read_text().strip()
    _, login = server.request("POST", "/api/auth/login", {"name": "root", "password": password})
    token = login["token"]
    _, created = server.request(
        "POST", "/api/rooms", {"name": f"client-{uuid.uuid4().hex[:12]}"}, token=token
    )
    room_id = created["room"]["id"]
    _, media = server.request(
        "POST",
        f"/api/rooms/{room_id}/media",
        {"url": "http://media.example/a.mp4", "title": "A"},
        token=token,
    )
    return Room(server, token, room_id, media["media"]["id"])


def next_message(client: RealtimeClient, kind: str, where: Any = lambda m: True) -> Deferred[dict[str, Any]]:
    """Fires with the next frame of type ``kind`` matching ``where``."""
    from twisted.internet import reactor

    d: Deferred[dict[str, Any]] = Deferred()

    def check(message: dict[str, Any]) -> None:
        if not d.called and message.get("type") == kind and where(message):
            remove()
            d.callback(message)

    remove = client.on_message(check)
    return d.addTimeout(BOUND_S, reactor)


@pytest_twisted.ensureDeferred
async def test_connect_reports_welcome_and_syncs_the_clock(room: Room):
    """connect fires after welcome and a clock sync: the offset against a server on this machine
    is small, the round trip not negative, and server_now() agrees with the server's time."""
    client = await connect(room.server.url, room.room, room.token)
    try:
        assert client.welcome["type"] == "welcome" and client.connection_id
        assert client.welcome["user"]["name"] == "root"
        assert abs(client.offset_ms) < 1000 and client.rtt_ms >= 0
        reply = await client.request("time", t0=client.local_now())
        assert abs(client.server_now() - reply["t2"]) < 1000
    finally:
        await client.close()


@pytest_twisted.ensureDeferred
async def test_update_is_answered_by_id_and_reaches_other_observers(room: Room):
    """An update's Deferred fires with the new state (the reply carrying its id); another client
    observing playbackState receives the same version; a stale update fails with stale_version
    carrying the current state."""
    a = await connect(room.server.url, room.room, room.token)
    b = await connect(room.server.url, room.room, room.token)
    try:
        first = await a.observe("playbackState")
        assert first["type"] == "playbackState"
        await b.observe("playbackState")
        seen_by_b = next_message(b, "playbackState", lambda m: m["version"] == first["version"] + 1)
        state = await a.update("media", media_id=room.media, version=first["version"])
        assert state["version"] == first["version"] + 1 and state["media_id"] == room.media
        assert (await seen_by_b)["media_id"] == room.media
        with pytest.raises(RealtimeError) as refused:
            await b.update("play", version=first["version"])
        assert refused.value.code == "stale_version"
        assert refused.value.detail["version"] == state["version"]
    finally:
        await a.close()
        await b.close()


@pytest_twisted.ensureDeferred
async def test_chat_is_acknowledged_and_delivered(room: Room):
    """chat() fires on the ack; a client observing chat receives the text."""
    a = await connect(room.server.url, room.room, room.token)
    b = await connect(room.server.url, room.room, room.token)
    try:
        await b.observe("chat")
        arrived = next_message(b, "chat", lambda m: any(x["text"] == "hello" for x in m["messages"]))
        ack = await a.chat("hello")
        assert ack["type"] == "ack"
        await arrived
    finally:
        await a.close()
        await b.close()


@pytest_twisted.ensureDeferred
async def test_refused_upgrades_fail_connect_with_the_http_status(room: Room):
    """A bad token fails connect with Refused(401); an unknown room with Refused(404, not_found)."""
    with pytest.raises(Refused) as bad_token:
        await connect(room.server.url, room.room, "not-a-token")
    assert bad_token.value.status == 401
    with pytest.raises(Refused) as no_room:
        await connect(room.server.url, "no-such-room", room.token)
    assert no_room.value.status == 404 and no_room.value.code == "not_found"


@pytest_twisted.ensureDeferred
async def test_reconnects_after_a_dropped_connection_and_observes_again(room: Room):
    """With reconnect=True, a connection dropped abnormally is reopened: pending requests fail
    with ConnectionLost, on_reconnect fires, and changes made afterwards arrive again."""
    client = await connect(room.server.url, room.room, room.token, reconnect=True)
    try:
        state = await client.observe("playbackState")
        reconnected: Deferred[RealtimeClient] = Deferred()
        client.on_reconnect(reconnected.callback)
        old_connection = client.connection_id
        pending = client.request("time", t0=0)
        client._protocol.transport.abortConnection()
        with pytest.raises(ConnectionLost):
            await pending
        await reconnected
        assert client.connection_id != old_connection
        changed = next_message(client, "playbackState", lambda m: m["version"] == state["version"] + 1)
        status, body = room.server.request(
            "PATCH",
            f"/api/rooms/{room.room}/playback-state",
            {"action": "media", "media_id": room.media, "version": state["version"]},
            token=room.token,
        )
        assert status == 200, body
        assert (await changed)["media_id"] == room.media
    finally:
        await client.close()
