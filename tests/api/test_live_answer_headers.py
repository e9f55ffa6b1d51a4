"""Live answers are media, never pages: HTTP-FLV, the HLS playlist and its segments carry
``X-Content-Type-Options: nosniff`` and ``Content-Security-Policy: sandbox`` (their bytes come
from a publisher), on a real Site over real sockets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import pytest_twisted
import treq
from twisted.internet.defer import Deferred

from synctv.bus import InProcessBus
from synctv.core.clock import ManualClock
from synctv.live.hls import HLSStream, MemorySegmentStore
from synctv.live.live_urls import LiveLinks
from synctv.live.node import live_providers
from synctv.live.service import LiveHub
from synctv.live.streams import StreamRegistry
from synctv.providers import default_providers
from synctv.site import build_site
from tests.api.api_support import SECRET, WEB_DIR, Served, World, make_actions
from tests.live.live_support import StubPublisher, feed

SAFETY = {"x-content-type-options": "nosniff", "content-security-policy": "sandbox"}


@pytest.fixture
def live_world(store: Any) -> Iterator[World]:
    from twisted.internet import reactor

    clock = ManualClock()
    registry = StreamRegistry(
        clock=clock, scheduler=reactor,
        hls_factory=lambda r, m: HLSStream(MemorySegmentStore(), clock=clock, target_s=1.0, window=4,
                                           first_sequence=clock() // 100),
    )
    hub = LiveHub(store=store, clock=clock, scheduler=reactor, registry=registry, links=LiveLinks(SECRET),
                  node_id="node:1", node_url="http://node:1")
    actions = make_actions(store, clock, InProcessBus(), providers=default_providers(*live_providers(hub)),
                           signers={"live": hub.links})
    served = Served(build_site(actions, web_dir=WEB_DIR, live=hub))
    world = World(store=store, clock=clock, actions=actions, site=served.site, client=served.client,
                  bus=actions.bus)
    world.served = served
    world.extra["hub"] = hub
    pytest_twisted.blockon(Deferred.fromCoroutine(world.add_user("alice")))
    yield world
    pytest_twisted.blockon(Deferred.fromCoroutine(served.stop()))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest_twisted.ensureDeferred
async def test_flv_playlist_and_segments_carry_nosniff_and_the_sandbox(live_world):
    """Each live answer kind has its media type and both safety headers."""
    from twisted.internet import reactor

    world = live_world
    hub: LiveHub = world.extra["hub"]
    room = await world.room("alice", name="studio")
    r = await world.client.post(f"/api/rooms/{room['id']}/media", {"provider": "rtmp", "title": "Cam"},
                                token=world.tokens["alice"])
    item = r.json["media"]
    r = await world.client.get(f"/api/rooms/{room['id']}/media/{item['id']}/playback", token=world.tokens["alice"])
    urls = {info["mode"]: info["url"] for info in r.json["infos"]}
    publisher = StubPublisher()
    stream = hub.registry.begin_publish(room["id"], item["id"], publisher, "rtmp")
    feed(stream, 3.2)
    flv = await treq.get(world.served.base + urls["flv"], pool=world.served.pool, reactor=reactor)
    assert flv.code == 200
    hub.registry.end_publish(stream, publisher)
    await flv.content()
    answers = {"flv": (dict((k.decode().lower(), v[0].decode()) for k, v in flv.headers.getAllRawHeaders()),
                       "video/x-flv")}
    playlist = await world.client.get(urls["hls"])
    assert playlist.status == 200
    answers["playlist"] = ({k: playlist.header(k) for k in (*SAFETY, "content-type")}, "application/vnd.apple.mpegurl")
    segment_uri = [line for line in playlist.raw.decode().splitlines() if line and not line.startswith("#")][-1]
    segment = await world.client.get(f"{urls['hls'].rsplit('/', 1)[0]}/{segment_uri}")
    assert segment.status == 200
    answers["segment"] = ({k: segment.header(k) for k in (*SAFETY, "content-type")}, "video/mp2t")
    for kind, (headers, content_type) in answers.items():
        assert headers["content-type"] == content_type, kind
        assert {name: headers.get(name) for name in SAFETY} == SAFETY, kind
