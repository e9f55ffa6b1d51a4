"""The live HTTP routes on a real Site and store: stream keys, access by token or signature,
PlaybackInfo of live items, HTTP-FLV and HLS over real sockets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import pytest_twisted
import treq
from twisted.internet.defer import Deferred

from synctv.bus import InProcessBus
from synctv.core.clock import ManualClock
from synctv.live import flv
from synctv.live.hls import HLSStream, MemorySegmentStore
from synctv.live.live_urls import LiveLinks
from synctv.live.node import live_providers
from synctv.live.service import LiveHub
from synctv.live.streams import StreamRegistry
from synctv.providers import default_providers
from synctv.site import build_site
from tests.api.api_support import SECRET, WEB_DIR, Served, World, make_actions
from tests.live.live_support import VIDEO_HEADER, StubPublisher, feed, tags_of


@pytest.fixture
def world(store: Any) -> Iterator[World]:
    from twisted.internet import reactor

    clock = ManualClock()
    bus = InProcessBus()
    registry = StreamRegistry(
        clock=clock, scheduler=reactor,
        hls_factory=lambda r, m: HLSStream(MemorySegmentStore(), clock=clock, target_s=1.0, window=4,
                                           first_sequence=clock() // 100),
    )
    hub = LiveHub(store=store, clock=clock, scheduler=reactor, registry=registry, links=LiveLinks(SECRET),
                  node_id="node:1", node_url="http://node:1")
    actions = make_actions(store, clock, bus, providers=default_providers(*live_providers(hub)),
                           signers={"live": hub.links})
    served = Served(build_site(actions, web_dir=WEB_DIR, live=hub))
    w = World(store=store, clock=clock, actions=actions, site=served.site, client=served.client, bus=bus)
    w.served = served
    w.extra["hub"] = hub

    async def populate() -> None:
        for name, role in (("root", "root"), ("alice", "user"), ("bob", "user"), ("carol", "user")):
            await w.add_user(name, role)

    pytest_twisted.blockon(Deferred.fromCoroutine(populate()))
    yield w
    pytest_twisted.blockon(Deferred.fromCoroutine(served.stop()))


async def live_item(world: World) -> tuple[dict[str, Any], dict[str, Any]]:
    room = await world.room("alice", name="studio")
    r = await world.client.post(f"/api/rooms/{room['id']}/media", {"provider": "rtmp", "title": "Cam"},
                                token=world.tokens["alice"])
    assert r.status == 201, r.raw
    return room, r.json["media"]


async def signed_urls(world: World, room: dict[str, Any], item: dict[str, Any], query: str = "",
                      token: str = "alice") -> dict[str, str]:
    r = await world.client.get(f"/api/rooms/{room['id']}/media/{item['id']}/playback{query}",
                               token=world.tokens[token])
    assert r.status == 200, r.raw
    return {info["mode"]: info["url"] for info in r.json["infos"]}


@pytest_twisted.ensureDeferred
async def test_stream_key_route_needs_manage_live_rotates_and_revokes(world):
    """The creator gets {rtmp_url, stream_key}; again the same key; rotate=1 a new one; a plain
    member is refused; a direct item has no key; DELETE revokes."""
    room, item = await live_item(world)
    path = f"/api/rooms/{room['id']}/media/{item['id']}/stream-key"
    first = await world.client.post(path, token=world.tokens["alice"])
    assert first.status == 200, first.raw
    body = first.json
    assert body["rtmp_url"] == "rtmp://127.0.0.1:1935/live" and body["issued"] is True
    assert body["publish_url"] == f"{body['rtmp_url']}/{body['stream_key']}"
    again = await world.client.post(path, token=world.tokens["alice"])
    assert again.json["stream_key"] == body["stream_key"] and again.json["issued"] is False
    rotated = await world.client.post(path + "?rotate=1", token=world.tokens["alice"])
    assert rotated.json["stream_key"] != body["stream_key"]
    await world.join("bob", room)
    assert (await world.client.post(path, token=world.tokens["bob"])).status == 403
    direct = await world.media(room)
    r = await world.client.post(f"/api/rooms/{room['id']}/media/{direct['id']}/stream-key", token=world.tokens["alice"])
    assert r.status == 404 and r.error()["code"] == "not_found"
    revoked = await world.client.delete(path, token=world.tokens["alice"])
    assert revoked.json == {"revoked": True}
    assert (await world.client.delete(path, token=world.tokens["alice"])).json == {"revoked": False}


@pytest_twisted.ensureDeferred
async def test_media_add_url_is_optional_only_for_rtmp(world):
    """An rtmp item needs no url (and refuses one); a direct item still needs one."""
    room = await world.room("alice", name="urls")
    base = f"/api/rooms/{room['id']}/media"
    r = await world.client.post(base, {"provider": "rtmp", "url": "http://h/x"}, token=world.tokens["alice"])
    assert r.status == 400 and r.error()["field"] == "url"
    r = await world.client.post(base, {"title": "no url"}, token=world.tokens["alice"])
    assert r.status == 400 and r.error()["field"] == "url"
    r = await world.client.post(base, {"provider": "live", "url": "http://up.example/live.flv"},
                                token=world.tokens["alice"])
    assert r.status == 201 and r.json["media"]["provider"] == "live"


@pytest_twisted.ensureDeferred
async def test_playback_offers_signed_expiring_flv_and_hls(world):
    """A live item plays as flv then hls, from signed URLs that need no headers; the client
    profile filters the modes."""
    room, item = await live_item(world)
    r = await world.client.get(f"/api/rooms/{room['id']}/media/{item['id']}/playback", token=world.tokens["alice"])
    infos = r.json["infos"]
    assert [i["mode"] for i in infos] == ["flv", "hls"] and [i["format"] for i in infos] == ["flv", "hls"]
    for info in infos:
        query = parse_qs(urlsplit(info["url"]).query)
        assert set(query) == {"u", "exp", "sig"} and int(query["exp"][0]) == info["expires_at"]
        assert query["u"] == [world.users["alice"].id]  # bound to the viewer
        assert info["headers"] == {} and info["metadata"] == {"live": True, "state": "offline"}
    assert list(await signed_urls(world, room, item, "?modes=hls")) == ["hls"]
    assert list(await signed_urls(world, room, item, "?formats=flv&headers=0")) == ["flv"]


@pytest_twisted.ensureDeferred
async def test_viewer_routes_need_a_member_token_or_a_valid_signature(world):
    """Without a token or a signature, with a wrong or expired signature, or as a non-member, the
    viewer routes refuse; a valid signature of a stream that is not live answers 404."""
    room, item = await live_item(world)
    urls = await signed_urls(world, room, item)
    base = f"/api/rooms/{room['id']}/media/{item['id']}"
    for tail in ("live.flv", "hls/index.m3u8", "hls/segment.ts?seq=1"):
        r = await world.client.get(f"{base}/{tail}")
        assert r.status == 401 and r.error()["code"] == "unauthorized", tail
    flv_url = urls["flv"]
    tampered = flv_url.replace("sig=", "sig=x")
    assert (await world.client.get(tampered)).status == 401
    other = await live_item_in(world, "bob", "bobs")
    stolen = flv_url.replace(f"/rooms/{room['id']}/", f"/rooms/{other[0]['id']}/").replace(item["id"], other[1]["id"])
    assert (await world.client.get(stolen)).status == 401  # a signature names its item
    assert (await world.client.get(f"{base}/live.flv", token=world.tokens["carol"])).status == 403
    assert (await world.client.get(flv_url)).status == 404  # valid, but nothing is published
    forged = flv_url.replace(f"u={world.users['alice'].id}", f"u={world.users['bob'].id}")
    assert (await world.client.get(forged)).status == 401  # a signature names its viewer
    world.clock.advance(world.extra["hub"].links.ttl_ms)
    assert (await world.client.get(flv_url)).status == 401  # expired


@pytest_twisted.ensureDeferred
async def test_a_signed_live_url_stops_working_when_its_viewer_leaves_the_room(world):
    """A live URL is bound to the member it was made for: once they are removed from the room
    (or deleted), the same unexpired URL answers 403, as every door of the room does."""
    room, item = await live_item(world)
    r = await world.client.post(f"/api/rooms/{room['id']}/join", {}, token=world.tokens["bob"])
    assert r.status == 200
    urls = await signed_urls(world, room, item, token="bob")
    assert (await world.client.get(urls["flv"])).status == 404  # allowed: nothing is published
    r = await world.client.delete(f"/api/rooms/{room['id']}/members/bob", token=world.tokens["alice"])
    assert r.status == 200
    for url in urls.values():
        r = await world.client.get(url)
        assert r.status == 403 and r.error()["code"] == "forbidden", url


async def live_item_in(world: World, owner: str, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    room = await world.room(owner, name=name)
    r = await world.client.post(f"/api/rooms/{room['id']}/media", {"provider": "rtmp"}, token=world.tokens[owner])
    return room, r.json["media"]


@pytest_twisted.ensureDeferred
async def test_flv_and_hls_are_served_from_the_stream(world):
    """A signed live.flv starts at a keyframe after the headers and ends cleanly when the publish
    ends; the HLS playlist names segments with the same signature, ends with ENDLIST, and both
    carry the right Cache-Control; stream info counts the viewer."""
    from twisted.internet import reactor

    hub: LiveHub = world.extra["hub"]
    room, item = await live_item(world)
    urls = await signed_urls(world, room, item)
    publisher = StubPublisher()
    stream = hub.registry.begin_publish(room["id"], item["id"], publisher, "rtmp")
    feed(stream, 3.2)
    response = await treq.get(world.served.base + urls["flv"], pool=world.served.pool, reactor=reactor)
    assert response.code == 200
    assert response.headers.getRawHeaders("content-type") == ["video/x-flv"]
    assert response.headers.getRawHeaders("cache-control") == ["no-store"]
    info = await world.client.get(f"/api/rooms/{room['id']}/media/{item['id']}/stream", token=world.tokens["alice"])
    assert info.json["state"] == "live" and info.json["viewers"]["flv"] == 1
    feed(stream, 0.5, headers=False, start_ms=3300)
    hub.registry.end_publish(stream, publisher)
    body = await response.content()
    tags = tags_of(body)
    assert tags[1].payload == VIDEO_HEADER
    first_frame = next(t for t in tags[3:] if t.tag_type == flv.TAG_VIDEO)
    assert flv.is_keyframe(first_frame.payload) and first_frame.timestamp == 3000
    assert tags[-1].timestamp >= 3700

    playlist = await world.client.get(urls["hls"])
    assert playlist.status == 200 and playlist.header("Cache-Control") == "no-cache"
    assert playlist.header("Content-Type") == "application/vnd.apple.mpegurl"
    text = playlist.raw.decode()
    assert text.startswith("#EXTM3U") and text.rstrip().endswith("#EXT-X-ENDLIST")
    query = urlsplit(urls["hls"]).query
    uris = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert len(uris) == 4 and all(uri.endswith("&" + query) for uri in uris)
    hls_base = urls["hls"].rsplit("/", 1)[0]
    segment = await world.client.get(f"{hls_base}/{uris[-1]}")
    assert segment.status == 200 and segment.header("Content-Type") == "video/mp2t"
    assert segment.header("Cache-Control") == "max-age=3600, immutable" and len(segment.raw) % 188 == 0
    gone = await world.client.get(f"{hls_base}/segment.ts?seq=1&{query}")
    assert gone.status == 404
