"""The fan-out's direct write (``protocol.send_many``): a shared frame never jumps ahead of bytes
already queued for a connection, and every observer gets each version once, in order."""

from __future__ import annotations

import pytest_twisted

from synctv.compat.twisted import write_buffer_empty
from tests.realtime.conftest import RT

SIGNAL = "s" * 6000
MAX_SENDS = 5_000  # 30 MB: far more than a loopback socket buffers


@pytest_twisted.ensureDeferred
async def test_a_state_change_queues_behind_what_a_slow_reader_has_not_taken(rt_factory) -> None:
    """While bytes wait in Twisted's buffer for a client that stopped reading, a state change
    (which takes send_many's one-pass path: the client is in step) is queued behind them: reading
    again, the client gets every signal first, then the new version."""
    rt: RT = await rt_factory(send_buffer_bytes=256 << 20, messages_burst=MAX_SENDS + 10)
    room = await rt.world.room("alice", "lounge")
    await rt.world.join("bob", room)
    alice = await rt.ws("alice", room["id"])
    bob = await rt.ws("bob", room["id"])
    media = await rt.world.media(room, duration=100.0)
    state = await rt.observe(bob, "playbackState")
    state = await alice.request({"type": "update", "id": "m", "action": "media", "media_id": media["id"],
                                 "version": state["version"]})
    assert (await bob.next_of("playbackState"))["version"] == state["version"]
    target = bob.welcome["connection_id"]
    transport = rt.runtime.sessions[target].sink.protocol.transport
    bob.transport.pauseProducing()
    sent = 0
    while write_buffer_empty(transport) and sent < MAX_SENDS:
        reply = await alice.request({"type": "webrtc", "id": sent, "to": target, "signal": SIGNAL})
        assert reply["type"] == "ack", reply
        sent += 1
    assert not write_buffer_empty(transport), f"nothing queued after {sent} signals"
    reply = await alice.request({"type": "update", "id": "u", "action": "play", "version": state["version"]})
    assert reply["type"] == "playbackState" and reply["version"] == state["version"] + 1, reply
    bob.transport.resumeProducing()
    signals = 0
    while True:
        message = await bob.next()
        if message["type"] != "webrtc":
            break
        signals += 1
    assert signals == sent
    assert message["type"] == "playbackState" and message["version"] == state["version"] + 1


@pytest_twisted.ensureDeferred
async def test_every_observer_gets_each_version_once_and_in_order(rt: RT) -> None:
    """Several changes in a row reach every observer, each version once, in order; an observer
    that joined late (out of step until its first state) is served as well."""
    room = await rt.world.room("alice", "lounge")
    for name in ("bob", "carol"):
        await rt.world.join(name, room)
    alice = await rt.ws("alice", room["id"])
    watchers = [await rt.ws(name, room["id"]) for name in ("bob", "carol")]
    media = await rt.world.media(room, duration=100.0)
    version = (await rt.observe(alice, "playbackState"))["version"]
    version = (await alice.request({"type": "update", "id": "m", "action": "media", "media_id": media["id"],
                                    "version": version}))["version"]
    first = (await rt.observe(watchers[0], "playbackState"))["version"]  # in step from now on
    late = None
    for i in range(5):
        if i == 2:  # out of step until its observe is answered
            late = (await rt.observe(watchers[1], "playbackState"))["version"]
        reply = await alice.request({"type": "update", "id": i, "action": "seek", "position": float(i),
                                     "version": version})
        version = reply["version"]
    assert late is not None
    for watcher, after in ((watchers[0], first), (watchers[1], late)):
        seen = []
        while not seen or seen[-1] < version:
            seen.append((await watcher.next_of("playbackState"))["version"])
        assert seen == list(range(after + 1, version + 1)), seen
