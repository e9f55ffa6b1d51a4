"""What one misbehaving client can do to the others: nothing. Slow consumers are closed 4008 while the
room keeps flowing, silent ones 4009, fuzzed frames close at most the sender, shutdown closes 1001."""

from __future__ import annotations

import json

import pytest_twisted
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.defer import Deferred
from twisted.internet.threads import blockingCallFromThread, deferToThread
from twisted.logger import globalLogPublisher

from tests.realtime.conftest import RT
from tests.realtime.wsclient import WSClient

SIGNAL = "s" * 6000  # just under the 6 KiB webrtc limit once encoded
MAX_SENDS = 20_000  # 120 MB: far more than any loopback socket buffers


@pytest_twisted.ensureDeferred
async def test_a_slow_consumer_is_closed_4008_while_the_room_keeps_flowing(rt_factory) -> None:
    """A client that stops reading is closed with 4008 once its unsent data passes
    send_buffer_bytes; meanwhile the sender and a third client are served without waiting."""
    rt: RT = await rt_factory(send_buffer_bytes=64 * 1024, messages_burst=MAX_SENDS + 10)
    room = await rt.world.room("alice", "lounge")
    for name in ("bob", "carol"):
        await rt.world.join(name, room)
    slow = await rt.ws("bob", room["id"])
    slow.transport.pauseProducing()  # stop reading: the server's buffer for it fills up
    sender = await rt.ws("alice", room["id"])
    watcher = await rt.ws("carol", room["id"])
    await rt.observe(watcher, "chat")
    target = slow.welcome["connection_id"]
    session = rt.runtime.sessions[target]
    sends = 0
    while not session.closed and sends < MAX_SENDS:
        reply = await sender.request({"type": "webrtc", "id": sends, "to": target, "signal": SIGNAL})
        assert reply["type"] == "ack", reply
        sends += 1
    assert session.closed and session.close_code == 4008, f"not closed after {sends} signals"
    # the others were never held up, and still are not
    await sender.request({"type": "chat", "id": "c", "text": "still here"})
    assert (await watcher.next_of("chat"))["messages"][0]["text"] == "still here"
    # reading again, the slow client finds its close frame after what was queued
    slow.transport.resumeProducing()
    code, _ = await slow.closed
    assert code == 4008


@pytest_twisted.ensureDeferred
async def test_a_silent_client_is_closed_4009_after_the_idle_timeout(rt_factory) -> None:
    """A client that sends nothing and answers no ping is closed with 4009 (idle)."""
    rt: RT = await rt_factory(idle_s=0.5, ping_s=0.2)
    room = await rt.world.room("alice", "lounge")
    client = await rt.ws("alice", room["id"])
    client.answer_pings = False
    code, _ = await client.closed
    assert code == 4009


@pytest_twisted.ensureDeferred
async def test_a_client_that_answers_pings_stays_open_and_is_pinged_every_ping_s(rt_factory) -> None:
    """The node's Keepalive pings each connection every ping_s; a client that only answers
    them is never idle: it outlives several idle_s windows, and the server's session with it
    stays open."""
    rt: RT = await rt_factory(idle_s=2.0, ping_s=0.25)
    room = await rt.world.room("alice", "lounge")
    client = await rt.ws("alice", room["id"])
    session = rt.runtime.sessions[client.welcome["connection_id"]]
    pinged = client.pinged(16)  # at least 16 x 0.25 s = 4 s: two idle windows
    pinged.addTimeout(60, rt.reactor)
    await pinged
    assert not client.closed.called and not session.closed
    await rt.observe(client, "chat")  # and it still answers


@pytest_twisted.ensureDeferred
async def test_shutdown_closes_every_connection_with_1001(rt: RT) -> None:
    """close_all (the service's shutdown) closes with 1001 and fires once every connection is gone;
    new upgrades are refused meanwhile."""
    room = await rt.world.room("alice", "lounge")
    await rt.world.join("bob", room)
    clients = [await rt.ws("alice", room["id"]), await rt.ws("bob", room["id"])]
    assert rt.runtime.active_room_ids() == {room["id"]}
    done = rt.runtime.close_all()
    for client in clients:
        assert (await client.closed)[0] == 1001
    assert await done is True
    assert rt.runtime.active_room_ids() == frozenset()
    refused = await rt.connect(room["id"], token=rt.world.tokens["alice"])
    assert not isinstance(refused, WSClient) and refused.status == 503


@pytest_twisted.ensureDeferred
async def test_active_room_ids_are_the_rooms_with_live_connections(rt: RT) -> None:
    """A room is active while at least one connection to it is open on this node."""
    one = await rt.world.room("alice", "one")
    two = await rt.world.room("alice", "two")
    assert rt.runtime.active_room_ids() == frozenset()
    a = await rt.ws("alice", one["id"])
    b = await rt.ws("alice", two["id"])
    assert rt.runtime.active_room_ids() == {one["id"], two["id"]}
    a.close()
    await a.lost
    assert rt.runtime.active_room_ids() == {two["id"]}
    b.close()
    await b.lost
    assert rt.runtime.active_room_ids() == frozenset()


_json_ish = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_message_ish = st.fixed_dictionaries(
    {"type": st.sampled_from(["time", "observe", "unobserve", "update", "chat", "danmaku", "telemetry",
                              "webrtc", "nope"])},
    optional={"id": _json_ish, "resource": st.sampled_from(["playbackState", "playback", "presence", "chat", "x"]),
              "t0": _json_ish, "text": _json_ish, "at": _json_ish, "version": _json_ish, "action": _json_ish,
              "position": _json_ish, "rate": _json_ish, "media_id": _json_ish, "to": _json_ish,
              "signal": _json_ish, "profile": _json_ish, "drift_ms": _json_ish},
)
_frames = st.one_of(
    st.tuples(st.just(1), _message_ish.map(lambda m: json.dumps(m).encode())),
    st.tuples(st.just(1), st.text(max_size=64).map(str.encode)),
    st.tuples(st.just(1), st.binary(max_size=64)),  # often invalid UTF-8: close 1007
    st.tuples(st.just(2), st.binary(max_size=64)),
    st.tuples(st.sampled_from([0, 3, 7, 11]), st.binary(max_size=16)),  # reserved or stray opcodes
)


@pytest_twisted.ensureDeferred
async def test_fuzzed_frames_close_at_most_the_sender(rt: RT) -> None:
    """Random frames (JSON-ish messages, text, bytes, binary, bad opcodes) never break the server:
    at most the fuzzing connection closes, and a bystander in the room keeps working."""
    room = await rt.world.room("alice", "lounge")
    await rt.world.join("bob", room)
    bystander = await rt.ws("bob", room["id"])
    await rt.observe(bystander, "playbackState")
    state: dict = {"fuzzer": None, "rounds": 0}

    async def fuzzer() -> WSClient:
        if state["fuzzer"] is None or state["fuzzer"].close_code is not None or not state["fuzzer"].transport.connected:
            state["fuzzer"] = await rt.ws("alice", room["id"])
            state["connections"] = state.get("connections", 0) + 1
        return state["fuzzer"]

    async def one_round(frames: list[tuple[int, bytes]]) -> None:
        client = await fuzzer()
        for opcode, payload in frames:
            if client.transport.connected:
                client.send_frame(opcode, payload)
        # a round trip tells whether the fuzzer is still open (if not, it was closed, not hung)
        if client.transport.connected and client.close_code is None:
            client.send_json({"type": "time", "id": "probe", "t0": 0})
            try:
                while (await client.next()).get("id") != "probe":
                    pass
            except ConnectionError:
                pass
        state["rounds"] += 1

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(frames=st.lists(_frames, min_size=1, max_size=6))
    def run(frames: list[tuple[int, bytes]]) -> None:
        blockingCallFromThread(rt.reactor, lambda: Deferred.fromCoroutine(one_round(frames)))

    # hypothesis drives a plain function: run it in a thread so the reactor keeps spinning
    failures: list = []
    observer = lambda event: failures.append(event) if "log_failure" in event else None  # noqa: E731
    globalLogPublisher.addObserver(observer)
    try:
        await deferToThread(run)
    finally:
        globalLogPublisher.removeObserver(observer)
    assert failures == [], [e["log_failure"].getTraceback() for e in failures]
    assert state["rounds"] >= 60 and state["connections"] > 1  # some rounds did get their sender closed
    reply = await bystander.request({"type": "time", "id": "alive", "t0": 0})
    assert reply["type"] == "time"
    assert rt.runtime.connection_count() >= 1
