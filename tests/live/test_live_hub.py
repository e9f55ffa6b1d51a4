"""RTMP publishing through RTMPProtocol and LiveHub on a real store (both backends): stream-key
checks, one publisher per stream, key rotation and revocation, and the publisher record."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs

from synctv.core.clock import ManualClock
from synctv.core.live import PublisherRecord
from synctv.live.live_urls import LiveLinks
from synctv.live.rtmp.protocol import RTMPProtocol
from synctv.live.rtmp.session import RTMPLimits
from synctv.live.service import STALE_MS, LiveHub
from synctv.live.streams import StreamRegistry
from tests.live.live_support import AUDIO_HEADER, METADATA, VIDEO_HEADER, audio_frame, video_frame
from tests.live.rtmp_client import RTMPTestClient, commands
from tests.store.conftest import Builders

NODE = "node-a:8080"


@pytest.fixture
def make(store: Any) -> Builders:
    return Builders(store)


def make_hub(store: Any, limits: RTMPLimits = RTMPLimits()) -> LiveHub:
    clock = ManualClock()
    registry = StreamRegistry(clock=clock, scheduler=Clock())
    return LiveHub(store=store, clock=clock, scheduler=Clock(), registry=registry,
                   links=LiveLinks("s" * 32), node_id=NODE, node_url="http://a:8080", rtmp_limits=limits)


class Publisher:
    """A scripted RTMP client on an in-memory transport, against a real RTMPProtocol whose timers
    run on ``timers`` (a fresh Clock by default)."""

    def __init__(self, hub: LiveHub, timers: Clock | None = None) -> None:
        self.timers = timers if timers is not None else Clock()
        self.protocol = RTMPProtocol(hub, hub.rtmp_limits, self.timers)
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)
        self.client = RTMPTestClient(chunk_size=4096)
        self.replies: list[Any] = []

    def send(self, data: bytes) -> None:
        self.protocol.dataReceived(data)

    def answers(self) -> list[Any]:
        data = self.transport.value()
        self.transport.clear()
        self.replies += commands(self.client.receive(data)) if data else []
        return self.replies

    async def publish(self, key: str, app: str = "live") -> list[Any]:
        self.send(self.client.c0c1())
        self.send(self.client.c2(self.transport.value()))
        self.transport.clear()
        c = self.client
        self.send(c.set_chunk_size() + c.connect(app) + c.command("createStream", None) + c.publish(key))
        if self.protocol.authorizing is not None:
            await self.protocol.authorizing
        return self.statuses()

    def statuses(self) -> list[str]:
        return [m[3]["code"] for m in self.answers() if m[0] == "onStatus"]

    def media(self, start_ms: int = 0, seconds: float = 1.0) -> None:
        c = self.client
        data = [c.metadata(dict(METADATA)), c.video(start_ms, VIDEO_HEADER), c.audio(start_ms, AUDIO_HEADER)]
        for n in range(int(seconds * 30)):
            data.append(c.video(start_ms + n * 33, video_frame(n % 30 == 0)))
            data.append(c.audio(start_ms + n * 33, audio_frame()))
        self.send(b"".join(data))


async def rtmp_item(store: Any, make: Any, provider: str = "rtmp") -> Any:
    room = await make.room()
    return await make.media(room, provider=provider, url="" if provider == "rtmp" else "http://up/x.flv")


@pytest_twisted.ensureDeferred
async def test_a_valid_key_publishes_and_a_wrong_key_is_refused(store, make):
    """The key from stream_key publishes into its item's stream (media reaches the registry, the
    store records this node); an unknown key gets an onStatus error and the connection closes."""
    hub = make_hub(store)
    item = await rtmp_item(store, make)
    key, issued = await hub.stream_key(item)
    assert issued and key.key.startswith("live_")
    again, issued_again = await hub.stream_key(item)
    assert again == key and not issued_again

    good = Publisher(hub)
    assert await good.publish(key.key) == ["NetStream.Publish.Start"]
    good.media(seconds=1.0)
    stream = hub.registry.get(item.room_id, item.id)
    assert stream is not None and stream.publishing and stream.ready
    assert stream.info()["video"]["width"] == 320
    record = await store.get_publisher(item.room_id, item.id)
    assert (record.node_id, record.node_url) == (NODE, "http://a:8080")

    bad = Publisher(hub)
    assert await bad.publish("live_not-a-key") == ["NetStream.Publish.Denied"]
    assert bad.transport.disconnecting

    good.send(good.client.command("deleteStream", None, 1.0))
    assert not stream.publishing and stream.info()["state"] == "ended"
    await hub.last_release
    assert await store.get_publisher(item.room_id, item.id) is None


@pytest_twisted.ensureDeferred
async def test_a_second_publisher_and_a_wrong_app_are_refused(store, make):
    """While a key publishes, another publish with it is refused (BadName) and the first goes on;
    publishing to an app other than "live" is refused."""
    hub = make_hub(store)
    item = await rtmp_item(store, make)
    key, _ = await hub.stream_key(item)
    first = Publisher(hub)
    assert await first.publish(key.key) == ["NetStream.Publish.Start"]
    second = Publisher(hub)
    assert await second.publish(key.key) == ["NetStream.Publish.BadName"]
    assert second.transport.disconnecting and not first.transport.disconnecting
    assert hub.registry.get(item.room_id, item.id).publisher is first.protocol
    other = Publisher(hub)
    assert await other.publish(key.key, app="elsewhere") == ["NetStream.Publish.Denied"]


@pytest_twisted.ensureDeferred
async def test_rotating_or_revoking_the_key_stops_the_publish(store, make):
    """Rotation stops a publish using the old key and the old key no longer works; revocation
    stops a publish with the current key, which then no longer works either."""
    hub = make_hub(store)
    item = await rtmp_item(store, make)
    old, _ = await hub.stream_key(item)
    live = Publisher(hub)
    await live.publish(old.key)
    new, issued = await hub.stream_key(item, rotate=True)
    assert issued and new.key != old.key
    assert "NetStream.Publish.Denied" in live.statuses() and live.transport.disconnecting
    assert not hub.registry.get(item.room_id, item.id).publishing
    assert await Publisher(hub).publish(old.key) == ["NetStream.Publish.Denied"]

    again = Publisher(hub)
    assert await again.publish(new.key) == ["NetStream.Publish.Start"]
    assert await hub.revoke_key(item) is True
    assert again.transport.disconnecting
    assert await Publisher(hub).publish(new.key) == ["NetStream.Publish.Denied"]
    assert await hub.revoke_key(item) is False


@pytest_twisted.ensureDeferred
async def test_a_fresh_claim_by_another_node_refuses_the_publish(store, make):
    """When another node's publisher record is fresh, this node refuses; once stale, it publishes."""
    hub = make_hub(store)
    item = await rtmp_item(store, make)
    key, _ = await hub.stream_key(item)
    now = hub.clock()
    await store.claim_publisher(PublisherRecord(item.room_id, item.id, "node-b", "http://b", now, now), now)
    assert await Publisher(hub).publish(key.key) == ["NetStream.Publish.BadName"]
    hub.clock.advance(STALE_MS + 1)
    assert await Publisher(hub).publish(key.key) == ["NetStream.Publish.Start"]
    assert (await store.get_publisher(item.room_id, item.id)).node_id == NODE


@pytest_twisted.ensureDeferred
async def test_only_rtmp_items_take_keys_and_info_reports_offline(store, make):
    """A live-proxy item has no stream key; an item with no stream on this node is offline."""
    hub = make_hub(store)
    pulled = await rtmp_item(store, make, provider="live")
    try:
        await hub.stream_key(pulled)
    except Exception as e:
        assert getattr(e, "code", None) == "conflict"
    else:
        raise AssertionError("a live item got a stream key")
    info = await hub.info(pulled)
    assert info["state"] == "offline" and info["provider"] == "live" and info["publisher"] is None


@pytest_twisted.ensureDeferred
async def test_an_authorized_publish_outlives_the_deadline_an_idle_connection_does_not(store, make):
    """publish_timeout_s after they connected, a connection that only connected is closed while
    the one whose key was checked and accepted keeps publishing; a refused key is logged redacted."""
    hub = make_hub(store, RTMPLimits(publish_timeout_s=10))
    item = await rtmp_item(store, make)
    key, _ = await hub.stream_key(item)
    timers = Clock()
    with capturedLogs() as events:
        live = Publisher(hub, timers)
        idle = Publisher(hub, timers)
        idle.send(idle.client.c0c1())
        assert await live.publish(key.key) == ["NetStream.Publish.Start"]
        timers.advance(10)
        assert idle.transport.disconnecting and not live.transport.disconnecting
        live.media(seconds=1.0)
        stream = hub.registry.get(item.room_id, item.id)
        assert stream.publishing and stream.ready
        wrong = key.key[:-1] + ("x" if key.key[-1] != "x" else "y")  # never the key itself
        assert await Publisher(hub).publish(wrong) == ["NetStream.Publish.Denied"]
    closing = [e for e in events if e.get("limit") == "publish_timeout_s"]
    assert [e["stage"] for e in closing] == ["handshake"]
    assert not any(key.key in repr(e) or key.key[:-1] in repr(e) for e in events)


class _Silent:
    """An opener whose requests never answer (a relay that is connecting, as long as we like)."""

    def __init__(self) -> None:
        self.opened: list[tuple[str, dict[str, str]]] = []

    def open(self, method: str, url: str, headers: Any) -> Any:
        from twisted.internet.defer import Deferred

        self.opened.append((url, dict(headers)))
        return Deferred()


@pytest_twisted.ensureDeferred
async def test_a_relay_reads_the_publisher_node_signed_and_stops_when_that_node_goes_away(store, make):
    """An item published on node A is relayed by this node from A's internal door, with a node
    signature; one relay however many viewers ask; when A's record goes stale (A died), the
    heartbeat stops the relay and the stream ends here."""
    from synctv.core import node_auth
    from synctv.live.fanout import FLVViewer
    from synctv.live.live_urls import relay_path
    from synctv.live.service import HEARTBEAT_S
    from tests.live.live_support import MemorySink

    clock, timers, opener = ManualClock(), Clock(), _Silent()
    registry = StreamRegistry(clock=clock, scheduler=timers)
    key = node_auth.derive_key("s" * 32)
    hub = LiveHub(store=store, clock=clock, scheduler=timers, registry=registry, links=LiveLinks("s" * 32),
                  node_id="node-b:8080", node_url="http://b:8080", node_key=key, relay_opener=opener)
    hub.start()
    item = await rtmp_item(store, make)
    now = clock()
    await store.claim_publisher(PublisherRecord(item.room_id, item.id, NODE, "http://a:8080/", now, now), now - STALE_MS)
    stream = await hub.stream_for_viewing(item)
    assert await hub.stream_for_viewing(item) is stream and stream.source == "relay" and len(opener.opened) == 1
    url, headers = opener.opened[0]
    path = relay_path(item.room_id, item.id)
    assert url == "http://a:8080" + path
    assert node_auth.verify(key, headers["Authorization"], "GET", path, clock()) == "node-b:8080"
    viewer = FLVViewer(MemorySink(), max_buffer=1 << 20, max_skips=3)  # a viewer: the relay never idles
    stream.attach(viewer)

    timers.advance(HEARTBEAT_S)  # A's record is fresh: the relay goes on
    await hub.last_relay_check
    assert stream.publishing
    clock.advance(STALE_MS + 1)
    timers.advance(HEARTBEAT_S)
    await hub.last_relay_check
    assert not stream.publishing and hub.pulls == {} and viewer.finished == "ended"
    hub.stop()
