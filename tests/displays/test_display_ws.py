"""Screens on the WebSocket: display tokens open their room read-only, and every connected screen
receives the same scheduled start when an event fires (UDP or HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted

from synctv.core.realtime import RealtimeLimits
from synctv.realtime.resource import build_realtime
from tests.displays.support import free_udp_port, send_udp
from tests.realtime.wsclient import Refused, WSClient, connect, room_path


@pytest.fixture
def screens(show, tmp_path: Path) -> Iterator[Any]:
    """The show's site with the WebSocket endpoint mounted, display tokens accepted."""
    from twisted.internet import reactor

    runtime, ws = build_realtime(show.world.actions, RealtimeLimits(messages_per_s=1000.0, messages_burst=1000),
                                 reactor=reactor, display_authenticator=show.runtime.display_authenticator,
                                 close_handshake_timeout_s=3.0)
    show.world.site.mount_ws(ws)
    runtime.start()
    clients: list[WSClient] = []
    show.world.extra["ws_clients"] = clients
    yield show
    pytest_twisted.blockon(runtime.close_all(timeout_s=2.0))
    for client in clients:
        if client.transport is not None and client.transport.connected:
            client.transport.abortConnection()


async def add_screen(show, name: str) -> dict[str, Any]:
    r = await show.world.client.post("/api/displays", {"name": name, "room": "wall"},
                                     token=show.world.tokens["alice"])
    assert r.status == 201, r.raw
    r = await show.world.client.post(f"/api/displays/{r.json['display']['public_id']}/session")
    assert r.status == 200, r.raw
    return r.json


async def open_ws(show, session: dict[str, Any], room: str | None = None) -> WSClient | Refused:
    from twisted.internet import reactor

    port = show.world.served.port.getHost().port
    result = await connect(reactor, port, room_path(room or session["room_id"]),
                           protocols=["synctv.v1", f"bearer.{session['token']}"])
    if isinstance(result, WSClient):
        show.world.extra["ws_clients"].append(result)
    return result


async def observing_screen(show, name: str) -> tuple[WSClient, dict[str, Any]]:
    session = await add_screen(show, name)
    client = await open_ws(show, session)
    assert isinstance(client, WSClient), client
    welcome = await client.next_of("welcome")
    assert welcome["user"]["name"] == name and welcome["member"] is None
    state = await client.request({"type": "observe", "id": "o", "resource": "playbackState"})
    assert state["type"] == "playbackState"
    return client, state


@pytest_twisted.ensureDeferred
async def test_every_screen_gets_the_same_scheduled_start(screens):
    """Two screens observe the room; one UDP packet: both receive the same at_ms and event id."""
    show = screens
    port = free_udp_port()
    event = await show.event(udp_port=port, udp_payload="SHOW_START", lead_ms=5000)
    left, _ = await observing_screen(show, "left")
    right, _ = await observing_screen(show, "right")
    send_udp(port, b"SHOW_START\n")
    a, b = await left.next_of("playbackState"), await right.next_of("playbackState")
    assert a == b
    assert (a["playing"], a["position"], a["event_id"]) == (True, 0.0, event["id"])
    assert a["at_ms"] == show.world.clock() + 5000
    # a screen that joins late gets the same state, and can compute its offset from at_ms
    _, state = await observing_screen(show, "late")
    assert {k: state[k] for k in a if k not in ("type", "id")} == {k: v for k, v in a.items() if k != "type"}


@pytest_twisted.ensureDeferred
async def test_screens_are_read_only_and_stay_in_their_room(screens):
    """A display token cannot change the playback, and opens no other room."""
    show = screens
    session = await add_screen(show, "left")
    client = await open_ws(show, session)
    await client.next_of("welcome")
    reply = await client.request({"type": "update", "id": "u", "action": "play", "version": 0})
    assert (reply["type"], reply["code"]) == ("error", "forbidden")
    reply = await client.request({"type": "telemetry", "id": "t", "drift_ms": 1.5, "rate": 1.0,
                                  "offset_ms": 3.0, "rtt_ms": 2.0})
    assert reply["type"] == "ack"
    await show.world.room(name="elsewhere", kind="display")
    refused = await open_ws(show, session, room="elsewhere")
    assert isinstance(refused, Refused) and refused.status == 403
    bad = await open_ws(show, {**session, "token": session["token"][:-3] + "AAA"})
    assert isinstance(bad, Refused) and bad.status == 401


@pytest_twisted.ensureDeferred
async def test_a_screen_learns_what_to_play(screens):
    """observe playback answers the selected item's PlaybackResult once a trigger selected it."""
    show = screens
    await show.event(lead_ms=1000)
    client, _ = await observing_screen(show, "left")
    await show.world.client.get("/trigger_by_name/show")
    await client.next_of("playbackState")
    reply = await client.request({"type": "observe", "id": "p", "resource": "playback",
                                  "profile": {"modes": ["direct"]}})
    assert reply["type"] == "playback" and reply["result"]["media_id"] == show.media["id"]
    assert reply["result"]["infos"][0]["url"] == show.media["url"]
