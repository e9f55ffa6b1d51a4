"""The live proxy against a real local HTTP-FLV upstream: it pulls only while viewed, demuxes into
the same stream, stops when idle, and retries a failing upstream with backoff."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.web import resource, server

from synctv.core.clock import ManualClock
from synctv.live import flv
from synctv.live.fanout import FLVViewer
from synctv.live.live_urls import LiveLinks
from synctv.live.service import LiveHub, PullSettings
from synctv.live.streams import StreamRegistry
from synctv.proxy.upstream import UpstreamClient
from tests.live.live_support import AUDIO_HEADER, METADATA, VIDEO_HEADER, MemorySink, media, tags_of
from tests.store.conftest import Builders


class Upstream(resource.Resource):
    """A live HTTP-FLV source: headers and 2 s of media at once, then the connection stays open."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.requests = 0
        self.status = 200
        self.open: list[Any] = []
        self.closed: Deferred[None] = Deferred()

    def render_GET(self, request: Any) -> Any:
        self.requests += 1
        if self.status != 200:
            request.setResponseCode(self.status)
            return b"unavailable"
        request.setHeader(b"Content-Type", b"video/x-flv")
        parts = [flv.flv_header(), flv.metadata_tag(METADATA).encode(),
                 flv.encode_tag(flv.TAG_VIDEO, 0, VIDEO_HEADER), flv.encode_tag(flv.TAG_AUDIO, 0, AUDIO_HEADER)]
        for kind, ts, payload in media(2.0, start_ms=50_000):
            parts.append(flv.encode_tag(flv.TAG_VIDEO if kind == "video" else flv.TAG_AUDIO, ts, payload))
        request.write(b"".join(parts))
        self.open.append(request)
        request.notifyFinish().addBoth(lambda _: None if self.closed.called else self.closed.callback(None))
        return server.NOT_DONE_YET


@pytest.fixture
def upstream() -> Any:
    from twisted.internet import reactor

    source = Upstream()
    port = reactor.listenTCP(0, server.Site(source), interface="127.0.0.1")
    source.url = f"http://127.0.0.1:{port.getHost().port}/live.flv"
    yield source
    for request in source.open:
        if not request.finished and not request._disconnected:
            request.finish()
    pytest_twisted.blockon(port.stopListening())


class Recording:
    """The real UpstreamClient, remembering each request it opened."""

    def __init__(self, client: UpstreamClient) -> None:
        self.client = client
        self.opened: list[Deferred[Any]] = []

    def open(self, method: str, url: str, headers: Any) -> Deferred[Any]:
        d = self.client.open(method, url, headers)
        self.opened.append(d)
        return d


def settled(d: Deferred[Any]) -> Deferred[None]:
    """Fires once ``d`` and the callbacks the pull added have run, whatever the outcome."""
    done: Deferred[None] = Deferred()
    d.addBoth(lambda r: (done.callback(None), r)[1])
    return done


def make_hub(store: Any, timers: Clock) -> tuple[LiveHub, Recording]:
    from twisted.internet import reactor

    clock = ManualClock()
    opener = Recording(UpstreamClient(reactor, allow_networks=(ipaddress.ip_network("127.0.0.0/8"),)))
    registry = StreamRegistry(clock=clock, scheduler=timers)
    hub = LiveHub(store=store, clock=clock, scheduler=timers, registry=registry, links=LiveLinks("k" * 32),
                  node_id="n", opener=opener, pull=PullSettings(idle_s=5.0, backoff_s=1.0, max_backoff_s=4.0))
    return hub, opener


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest_twisted.ensureDeferred
async def test_pulls_only_while_viewed_and_stops_when_idle(store, upstream):
    """Nothing is requested until a viewer comes; the upstream's tags then reach the viewer from
    a keyframe; once no viewer is left for idle_s the upstream connection is closed and the
    stream ends."""
    timers = Clock()
    hub, _ = make_hub(store, timers)
    room = await Builders(store).room()
    item = await Builders(store).media(room, provider="live", url=upstream.url, headers={})
    assert upstream.requests == 0 and hub.registry.get(room.id, item.id) is None
    stream = await hub.stream_for_viewing(item)
    assert await stream.wait_ready() is True
    assert upstream.requests == 1 and stream.source == "pull"
    sink = MemorySink()
    viewer = FLVViewer(sink, max_buffer=1 << 20, max_skips=3)
    stream.attach(viewer)
    tags = tags_of(sink.data)
    first = next(t for t in tags if t.tag_type == flv.TAG_VIDEO and t.payload != VIDEO_HEADER)
    assert flv.is_keyframe(first.payload) and first.timestamp >= 50_000
    info = (await hub.info(item))["upstream"]
    assert info["state"] == "pulling" and info["url"] == upstream.url and info["last_error"] is None
    assert await hub.stream_for_viewing(item) is stream and upstream.requests == 1  # one pull per item

    timers.advance(10)  # a viewer is watching: no stop
    assert stream.publishing
    viewer.stopProducing()  # the viewer leaves
    for _ in range(7):
        timers.advance(1)
    await upstream.closed
    assert not stream.publishing and stream.info()["state"] == "ended" and hub.pulls == {}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest_twisted.ensureDeferred
async def test_a_failing_upstream_is_retried_with_backoff_and_reported(store, upstream):
    """An upstream answering 503 is retried after 1 s, then 2 s; the stream info shows the state
    and the error; when the upstream recovers the pull resumes and the retries reset."""
    timers = Clock()
    hub, opener = make_hub(store, timers)
    room = await Builders(store).room()
    item = await Builders(store).media(room, provider="live", url=upstream.url, headers={})
    upstream.status = 503
    stream = await hub.stream_for_viewing(item)
    await settled(opener.opened[-1])
    info = (await hub.info(item))["upstream"]
    assert info["state"] == "retrying" and "503" in info["last_error"] and info["retries"] == 1
    assert info["next_retry_s"] == 1.0
    timers.advance(1)
    await settled(opener.opened[-1])
    assert upstream.requests == 2 and stream.extra_info["upstream"]["next_retry_s"] == 2.0
    upstream.status = 200
    timers.advance(1.5)
    assert upstream.requests == 2  # the backoff is 2 s now
    timers.advance(0.5)
    assert await stream.wait_ready() is True
    info = stream.extra_info["upstream"]
    assert info["state"] == "pulling" and info["retries"] == 0 and info["failures"] == 2
    hub.stop()
    await upstream.closed
