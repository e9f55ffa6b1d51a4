"""The other client messages over real sockets: time, chat, danmaku, presence, telemetry, webrtc,
and what happens to malformed input, room deletion and member removal."""

from __future__ import annotations

import pytest_twisted

from tests.realtime.conftest import RT


async def _room_with(rt: RT, *names: str) -> dict:
    room = await rt.world.room("alice", "lounge")
    for name in names:
        await rt.world.join(name, room)
    return room


@pytest_twisted.ensureDeferred
async def test_time_is_answered_with_server_receive_and_send_times(rt: RT) -> None:
    """``time {t0}`` -> ``{t0, t1, t2}`` in server ms, with the id."""
    room = await _room_with(rt)
    client = await rt.ws("alice", room["id"])
    reply = await client.request({"type": "time", "id": 1, "t0": 123.5})
    assert reply == {"type": "time", "id": 1, "t0": 123.5, "t1": rt.world.clock(), "t2": rt.world.clock()}


@pytest_twisted.ensureDeferred
async def test_chat_reaches_observers_and_the_backlog_keeps_the_last_fifty(rt_factory) -> None:
    """Chat goes to every chat observer with its sender; a late observer gets the last 50 messages."""
    rt: RT = await rt_factory()
    room = await _room_with(rt, "bob")
    a = await rt.ws("alice", room["id"])
    b = await rt.ws("bob", room["id"])
    assert (await rt.observe(b, "chat"))["messages"] == []
    for n in range(55):
        ack = await a.request({"type": "chat", "id": n, "text": f"hello {n}"})
        assert ack == {"type": "ack", "id": n}
        got = await b.next()
        assert got["type"] == "chat" and got["messages"][0]["text"] == f"hello {n}"
        assert got["messages"][0]["from"] == {"user_id": rt.world.users["alice"].id, "user_name": "alice"}
    late = await rt.ws("bob", room["id"])
    backlog = (await rt.observe(late, "chat"))["messages"]
    assert [m["text"] for m in backlog] == [f"hello {n}" for n in range(5, 55)]


@pytest_twisted.ensureDeferred
async def test_chat_and_danmaku_length_limits_and_the_chat_permission(rt: RT) -> None:
    """Text over 500 (chat) or 100 (danmaku) characters, or blank, is refused naming the field;
    a member without the chat permission gets forbidden."""
    room = await _room_with(rt, "bob")
    a = await rt.ws("alice", room["id"])
    long_chat = await a.request({"type": "chat", "id": 1, "text": "x" * 501})
    assert long_chat["code"] == "bad_request" and long_chat["field"] == "text"
    assert (await a.request({"type": "chat", "id": 2, "text": "x" * 500}))["type"] == "ack"
    blank = await a.request({"type": "chat", "id": 3, "text": "   "})
    assert blank["code"] == "bad_request"
    long_danmaku = await a.request({"type": "danmaku", "id": 4, "text": "y" * 101, "at": 1.0})
    assert long_danmaku["field"] == "text"
    no_at = await a.request({"type": "danmaku", "id": 5, "text": "hi"})
    assert no_at["field"] == "at"
    r = await rt.world.client.patch(f"/api/rooms/{room['id']}/members/bob", {"permissions": []},
                                    token=rt.world.tokens["alice"])
    assert r.status == 200, r.raw
    b = await rt.ws("bob", room["id"])
    muted = await b.request({"type": "chat", "id": 6, "text": "let me talk"})
    assert muted["type"] == "error" and muted["code"] == "forbidden"


@pytest_twisted.ensureDeferred
async def test_danmaku_goes_to_chat_observers(rt: RT) -> None:
    """A danmaku is delivered to chat observers with its media position and is not in the backlog."""
    room = await _room_with(rt, "bob")
    a = await rt.ws("alice", room["id"])
    b = await rt.ws("bob", room["id"])
    await rt.observe(b, "chat")
    await a.request({"type": "danmaku", "id": 1, "text": "wow", "at": 12.5})
    got = await b.next()
    assert got["type"] == "danmaku" and got["text"] == "wow" and got["at"] == 12.5
    assert got["from"]["user_name"] == "alice"
    assert (await rt.observe(b, "chat", rid="again"))["messages"] == []


@pytest_twisted.ensureDeferred
async def test_presence_follows_joins_and_leaves(rt: RT) -> None:
    """Presence observers see who is online with how many connections, on every join and leave."""
    room = await _room_with(rt, "bob")
    a = await rt.ws("alice", room["id"])
    first = await rt.observe(a, "presence")
    assert [(u["user_name"], u["connections"]) for u in first["online"]] == [("alice", 1)]
    assert first["online"][0]["connection_ids"] == [a.welcome["connection_id"]]
    b = await rt.ws("bob", room["id"])
    joined = await a.next_of("presence")
    assert [(u["user_name"], u["connections"]) for u in joined["online"]] == [("alice", 1), ("bob", 1)]
    b.close()
    await b.lost
    left = await a.next_of("presence")
    assert [u["user_name"] for u in left["online"]] == ["alice"]


@pytest_twisted.ensureDeferred
async def test_telemetry_is_kept_per_connection(rt: RT) -> None:
    """Telemetry is acknowledged and readable from the runtime; a non-number is refused."""
    room = await _room_with(rt)
    a = await rt.ws("alice", room["id"])
    ack = await a.request({"type": "telemetry", "id": 1, "drift_ms": 1.5, "rate": 1.0, "offset_ms": -3, "rtt_ms": 4})
    assert ack == {"type": "ack", "id": 1}
    [row] = rt.runtime.telemetry(room["id"])
    assert row["drift_ms"] == 1.5 and row["offset_ms"] == -3.0 and row["connection_id"] == a.welcome["connection_id"]
    bad = await a.request({"type": "telemetry", "id": 2, "drift_ms": "fast"})
    assert bad["field"] == "drift_ms"


@pytest_twisted.ensureDeferred
async def test_webrtc_reaches_only_the_named_connection_and_is_size_limited(rt: RT) -> None:
    """A signal goes to the named connection only, with the sender's connection id; an unknown
    target is not_found and a signal over 6 KiB is refused."""
    room = await _room_with(rt, "bob", "carol")
    a = await rt.ws("alice", room["id"])
    b = await rt.ws("bob", room["id"])
    c = await rt.ws("carol", room["id"])
    target = b.welcome["connection_id"]
    ack = await a.request({"type": "webrtc", "id": 1, "to": target, "signal": {"sdp": "offer"}})
    assert ack["type"] == "ack"
    got = await b.next()
    assert got == {"type": "webrtc", "from": a.welcome["connection_id"], "signal": {"sdp": "offer"}}
    assert (await c.request({"type": "time", "id": "t", "t0": 0}))["type"] == "time" and c.skipped == []
    unknown = await a.request({"type": "webrtc", "id": 2, "to": "nobody", "signal": {}})
    assert unknown["code"] == "not_found" and unknown["field"] == "to"
    big = await a.request({"type": "webrtc", "id": 3, "to": target, "signal": "s" * 7000})
    assert big["code"] == "payload_too_large" and big["field"] == "signal"


@pytest_twisted.ensureDeferred
async def test_malformed_input_gets_an_error_and_the_connection_stays(rt: RT) -> None:
    """Bad JSON, a non-object, an unknown type, a bad id and binary frames each answer ``error``;
    the connection keeps working."""
    room = await _room_with(rt)
    a = await rt.ws("alice", room["id"])
    for text in ("{not json", "[1, 2]", '"x"', "NaN", '{"type": "dance"}', '{"no": "type"}'):
        a.send_text(text)
        error = await a.next()
        assert error["type"] == "error" and error["code"] == "bad_request", (text, error)
    unknown = await a.request({"type": "dance", "id": "d"})
    assert unknown["field"] == "type" and unknown["id"] == "d"
    a.send_json({"type": "time", "id": {"nested": 1}, "t0": 1})
    assert (await a.next())["field"] == "id"
    a.send_frame(2, b"\x00\x01binary")
    binary = await a.next()
    assert binary["type"] == "error" and "binary" in binary["message"]
    assert (await a.request({"type": "time", "id": "still", "t0": 0}))["type"] == "time"


@pytest_twisted.ensureDeferred
async def test_message_rate_abuse_gets_errors_then_close_1008(rt_factory) -> None:
    """Past the burst each message answers ``rate_limited`` with its own id; a client that keeps
    going is closed 1008."""
    rt: RT = await rt_factory(messages_per_s=5.0, messages_burst=5)
    room = await _room_with(rt)
    a = await rt.ws("alice", room["id"])
    for n in range(40):
        a.send_json({"type": "time", "id": n, "t0": 0})
    code, _ = await a.closed
    assert code == 1008
    got = a.pending()
    assert [m["type"] for m in got[:5]] == ["time"] * 5
    assert got[5]["type"] == "error" and got[5]["code"] == "rate_limited"
    assert got[5]["id"] == 5  # the refused request's id, so the client settles that request


@pytest_twisted.ensureDeferred
async def test_an_oversize_frame_closes_with_1009(rt_factory) -> None:
    """A frame over max_frame_bytes closes that connection with 1009; others in the room carry on."""
    rt: RT = await rt_factory(max_frame_bytes=4096)
    room = await _room_with(rt, "bob")
    a = await rt.ws("alice", room["id"])
    b = await rt.ws("bob", room["id"])
    a.send_text('{"type": "chat", "text": "' + "x" * 5000 + '"}')
    code, _ = await a.closed
    assert code == 1009
    assert (await b.request({"type": "time", "id": 1, "t0": 0}))["type"] == "time"


@pytest_twisted.ensureDeferred
async def test_deleting_the_room_closes_4000_and_removing_a_member_closes_4001(rt: RT) -> None:
    """Removal from the room closes that member's connections with 4001; deleting the room closes all with 4000."""
    room = await _room_with(rt, "bob", "carol")
    b = await rt.ws("bob", room["id"])
    c = await rt.ws("carol", room["id"])
    r = await rt.world.client.delete(f"/api/rooms/{room['id']}/members/bob", token=rt.world.tokens["alice"])
    assert r.status == 200, r.raw
    assert (await b.closed)[0] == 4001
    r = await rt.world.client.delete(f"/api/rooms/{room['id']}", token=rt.world.tokens["alice"])
    assert r.status == 200, r.raw
    assert (await c.closed)[0] == 4000


@pytest_twisted.ensureDeferred
async def test_a_permission_change_applies_to_open_connections_at_once(rt: RT) -> None:
    """Taking the chat permission from a connected member refuses their very next chat message."""
    room = await _room_with(rt, "bob")
    b = await rt.ws("bob", room["id"])
    assert (await b.request({"type": "chat", "id": 1, "text": "before"}))["type"] == "ack"
    r = await rt.world.client.patch(f"/api/rooms/{room['id']}/members/bob", {"permissions": []},
                                    token=rt.world.tokens["alice"])
    assert r.status == 200, r.raw
    after = await b.request({"type": "chat", "id": 2, "text": "after"})
    assert after["type"] == "error" and after["code"] == "forbidden"
