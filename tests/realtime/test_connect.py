"""Connecting to /ws/rooms/{room} over real sockets: the three ways to send a token, the welcome
frame, and every refusal answered before the upgrade with the JSON error body."""

from __future__ import annotations

import pytest
import pytest_twisted

from tests.realtime.conftest import RT
from tests.realtime.wsclient import Refused, WSClient


@pytest_twisted.ensureDeferred
async def test_welcome_is_the_first_frame_and_names_user_room_member_and_limits(rt: RT) -> None:
    """A member connecting gets ``welcome`` first, with its connection id, the server time and limits."""
    room = await rt.world.room("alice", "lounge")
    client = await rt.ws("alice", room["id"])
    welcome = client.welcome
    assert isinstance(welcome["connection_id"], str) and welcome["connection_id"]
    assert welcome["server_time_ms"] == rt.world.clock()
    assert welcome["user"] == {"id": rt.world.users["alice"].id, "name": "alice", "role": "user"}
    assert welcome["room"]["id"] == room["id"] and welcome["room"]["name"] == "lounge"
    assert welcome["member"]["role"] == "creator"
    assert welcome["limits"]["chat_max_chars"] == 500 and welcome["limits"]["max_frame_bytes"] == 64 * 1024


@pytest.mark.parametrize("how", ["header", "protocol", "query"])
@pytest_twisted.ensureDeferred
async def test_the_token_is_accepted_in_header_subprotocol_or_query(rt: RT, how: str) -> None:
    """Authorization header, ``bearer.TOKEN`` subprotocol and ``?token=`` all authenticate; the room
    may be named by its name too."""
    await rt.world.room("alice", "lounge")
    client = await rt.ws("alice", "lounge", how=how)
    assert client.welcome["user"]["name"] == "alice"
    if how == "protocol":
        # the server selects synctv.v1 and never echoes the bearer entry
        assert client.response_headers["sec-websocket-protocol"] == "synctv.v1"


@pytest_twisted.ensureDeferred
async def test_synctv_v1_is_selected_when_offered_with_a_header_token(rt: RT) -> None:
    """A client offering ``synctv.v1`` gets it selected."""
    room = await rt.world.room("alice", "lounge")
    client = await rt.ws("alice", room["id"], protocols=["synctv.v1"])
    assert client.response_headers.get("sec-websocket-protocol") == "synctv.v1"


async def _refused(rt: RT, room: str, **kw) -> Refused:
    result = await rt.connect(room, **kw)
    assert isinstance(result, Refused), "the upgrade should have been refused"
    return result


@pytest_twisted.ensureDeferred
async def test_refusals_before_the_upgrade_are_json_errors(rt: RT) -> None:
    """No token or a bad one -> 401, unknown room -> 404, non-member -> 403; each with the error body."""
    room = await rt.world.room("alice", "lounge")
    no_token = await _refused(rt, room["id"])
    assert no_token.status == 401 and no_token.body["error"]["code"] == "unauthorized"
    assert no_token.headers["content-type"].startswith("application/json")
    assert "www-authenticate" in no_token.headers
    bad = await _refused(rt, room["id"], token="nonsense.token")
    assert bad.status == 401 and bad.body["error"]["code"] == "unauthorized"
    missing = await _refused(rt, "no-such-room", token=rt.world.tokens["alice"])
    assert missing.status == 404 and missing.body["error"]["code"] == "not_found"
    outsider = await _refused(rt, room["id"], token=rt.world.tokens["bob"])
    assert outsider.status == 403 and outsider.body["error"]["code"] == "forbidden"
    assert "join" in outsider.body["error"]["message"]


@pytest_twisted.ensureDeferred
async def test_room_password_is_enforced_through_membership(rt: RT) -> None:
    """A wrong room password keeps bob out of the room, so out of its WebSocket; the right one lets him in."""
    room = await rt.world.room("alice", "vault", password="sesame")
    wrong = await rt.world.client.post(f"/api/rooms/{room['id']}/join", {"password": "guess"},
                                       token=rt.world.tokens["bob"])
    assert wrong.status == 403
    refused = await _refused(rt, room["id"], token=rt.world.tokens["bob"])
    assert refused.status == 403
    await rt.world.join("bob", room, password="sesame")
    client = await rt.ws("bob", room["id"])
    assert client.welcome["member"]["role"] == "member"


@pytest_twisted.ensureDeferred
async def test_site_admins_connect_without_joining(rt: RT) -> None:
    """A site admin needs no membership; ``member`` is then null."""
    room = await rt.world.room("alice", "lounge")
    client = await rt.ws("admin", room["id"])
    assert client.welcome["member"] is None and client.welcome["user"]["role"] == "admin"


@pytest_twisted.ensureDeferred
async def test_revoked_token_is_refused(rt: RT) -> None:
    """A token revoked over HTTP no longer opens a WebSocket."""
    room = await rt.world.room("alice", "lounge")
    r = await rt.world.client.post("/api/auth/revoke", token=rt.world.tokens["alice"])
    assert r.status == 200
    refused = await _refused(rt, room["id"], token=rt.world.tokens["alice"])
    assert refused.status == 401


@pytest_twisted.ensureDeferred
async def test_connection_caps_per_user_and_per_room_answer_429(rt_factory) -> None:
    """Past max_connections_per_user (or per room) the upgrade is refused with 429; closing one
    frees its slot."""
    rt: RT = await rt_factory(max_connections_per_user=2, max_connections_per_room=3)
    room = await rt.world.room("alice", "lounge")
    await rt.world.join("bob", room)
    first = await rt.ws("alice", room["id"])
    await rt.ws("alice", room["id"])
    over = await _refused(rt, room["id"], token=rt.world.tokens["alice"])
    assert over.status == 429 and over.body["error"]["code"] == "rate_limited"
    await rt.ws("bob", room["id"])
    full = await _refused(rt, room["id"], token=rt.world.tokens["bob"])
    assert full.status == 429 and "room" in full.body["error"]["message"]
    first.close()
    await first.lost
    again = await rt.ws("bob", room["id"])
    assert again.welcome["user"]["name"] == "bob"


@pytest_twisted.ensureDeferred
async def test_plain_http_on_the_endpoint_and_unknown_ws_paths_get_json_errors(rt: RT) -> None:
    """A GET without Upgrade is a 400, another /ws path a 404, both JSON."""
    room = await rt.world.room("alice", "lounge")
    plain = await rt.world.client.get(f"/ws/rooms/{room['id']}", token=rt.world.tokens["alice"])
    assert plain.status == 400 and plain.error()["code"] == "bad_request"
    other = await rt.world.client.get("/ws/elsewhere", token=rt.world.tokens["alice"])
    assert other.status == 404 and other.error()["code"] == "not_found"


@pytest_twisted.ensureDeferred
async def test_upgraded_requests_do_not_count_as_in_flight_http(rt: RT) -> None:
    """Once upgraded (or refused) the HTTP request is finished for the Site: shutdown's drain and the
    in-flight gauge do not wait for WebSockets."""
    room = await rt.world.room("alice", "lounge")
    client = await rt.ws("alice", room["id"])
    await _refused(rt, room["id"], token=rt.world.tokens["bob"])
    assert isinstance(client, WSClient)
    assert rt.world.site.active_requests == set()
    assert await rt.world.site.wait_idle(rt.reactor, 0.5) is True


@pytest_twisted.ensureDeferred
async def test_an_upgraded_request_and_its_http_channel_are_freed_without_the_collector(rt: RT) -> None:
    """Once the handshake is decided the HTTP request and its channel are let go of as plain
    garbage, not as a cycle left for the collector's next full pass (with thousands connecting,
    those passes stopped the reactor for hundreds of milliseconds each)."""
    import gc
    import weakref

    from synctv.realtime.resource import RoomsWebSocketResource

    room = await rt.world.room("alice", "lounge")
    seen: list[weakref.ref] = []
    original = RoomsWebSocketResource.render

    def render(self, request):
        seen.extend((weakref.ref(request), weakref.ref(request.channel)))
        return original(self, request)

    gc.collect()
    gc.disable()
    try:
        RoomsWebSocketResource.render = render
        try:
            client = await rt.ws("alice", room["id"])
        finally:
            RoomsWebSocketResource.render = original
        assert client.welcome["room"]["id"] == room["id"]
        assert len(seen) == 2
        assert [ref() for ref in seen] == [None, None]
    finally:
        gc.enable()
