"""What the proxy refuses: private upstreams (unless allowlisted), unsigned, forged or expired URLs,
users who may not see the item; upstream failures become 502/504 with the JSON envelope; the
upstream headers come from the item, never from the client."""

from __future__ import annotations

import ipaddress
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import pytest_twisted

from synctv.proxy.addresses import refusal

from .upstreams import pattern


def test_allow_networks_admit_an_address():
    """An address inside allow_networks passes whatever it is."""
    allow = [ipaddress.ip_network("192.168.0.0/16"), ipaddress.ip_network("::1/128")]
    assert refusal(ipaddress.ip_address("192.168.7.7"), allow) is None
    assert refusal(ipaddress.ip_address("::1"), allow) is None
    assert refusal(ipaddress.ip_address("10.0.0.1"), allow) == "private"


@pytest_twisted.ensureDeferred
async def test_a_loopback_upstream_is_refused_unless_allowlisted(make_world, nginx):
    """Without allow_networks a loopback upstream (given by IP or by the name localhost) is 403 and
    nothing is fetched; the same item plays once 127.0.0.0/8 is allowlisted."""
    nginx.write("lan.mp4", pattern(1000))
    world = await make_world(allow_networks=())
    for host in ("127.0.0.1", "localhost"):
        room, media = await world.item(f"http://{host}:{nginx.port}/lan.mp4")
        r = await world.fetch(await world.proxy_url(room, media))
        assert r.status == 403, r.raw
        assert r.error()["code"] == "forbidden" and "allow_networks" in r.error()["message"]
        assert r.header("Access-Control-Allow-Origin") == "*"
    assert world.proxy.client.in_use == 0
    await make_world.stop(world)
    allowed = await make_world()
    r = await allowed.fetch(await allowed.proxy_url(room, media))
    assert (r.status, r.raw) == (200, pattern(1000))


def _tamper(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(changes)
    return f"{parts.path}?{urlencode({k: v for k, v in query.items() if v != ''})}"


@pytest_twisted.ensureDeferred
async def test_unsigned_forged_expired_or_foreign_urls_are_403(make_world, nginx):
    """No signature, a changed user or expiry, an expired URL, or a user who left the room: 403.
    Unknown rooms or items are 404 first."""
    nginx.write("guarded.mp4", pattern(100))
    world = await make_world()
    room, media = await world.item(nginx.url("guarded.mp4"))
    url = await world.proxy_url(room, media)
    assert (await world.fetch(url)).status == 200
    bob = world.users["bob"].id
    for bad in (urlsplit(url).path, _tamper(url, s=""), _tamper(url, u=bob), _tamper(url, e="99999999999999"),
                _tamper(url, s="A" * 43)):
        r = await world.fetch(bad)
        assert (r.status, r.error()["code"]) == (403, "forbidden"), bad
    base = f"/api/rooms/{room['id']}/media/{media['id']}/proxy"
    assert (await world.fetch(url.replace(base, f"/api/rooms/nope/media/{media['id']}/proxy"))).status == 404
    assert (await world.fetch(url.replace(base, f"/api/rooms/{room['id']}/media/nope/proxy"))).status == 404

    await world.join("bob", room)
    bob_url = await world.proxy_url(room, media, who="bob")
    assert (await world.fetch(bob_url)).status == 200
    r = await world.client.delete(f"/api/rooms/{room['id']}/members/bob", token=world.tokens["bob"])
    assert r.status == 200
    world.proxy.access.forget()  # the resolution memo lives ttl_s seconds
    assert (await world.fetch(bob_url)).status == 403

    world.clock.advance(world.proxy.links.ttl_ms + 1)
    r = await world.fetch(url)
    assert r.status == 403 and "expired" in r.error()["message"]


@pytest.mark.parametrize("path, status, code", [
    ("/status/500", 502, "bad_gateway"), ("/status/404", 502, "bad_gateway"),
    ("/bigheaders", 502, "bad_gateway"), ("/hang", 504, "gateway_timeout"),
])
@pytest_twisted.ensureDeferred
async def test_upstream_failures_are_502_or_504_with_the_json_envelope(make_world, special, path, status, code):
    """An upstream error status, an oversized header section or a body that stops coming become
    502/504 with the error envelope (never a hang or a traceback)."""
    world = await make_world()
    world.proxy.client.idle_timeout_s = 0.3
    room, media = await world.item(special.url(path))
    r = await world.fetch(await world.proxy_url(room, media), headers={"Range": "bytes=0-9"})
    assert (r.status, r.error()["code"]) == (status, code), r.raw


@pytest_twisted.ensureDeferred
async def test_an_unreachable_upstream_is_502_and_a_slow_one_504(make_world, special, nginx):
    """Connection refused is 502; an upstream that never answers is 504."""
    from .upstreams import free_port

    world = await make_world()
    room, media = await world.item(f"http://127.0.0.1:{free_port()}/gone.mp4")
    r = await world.fetch(await world.proxy_url(room, media))
    assert (r.status, r.error()["code"]) == (502, "bad_gateway")
    world.proxy.client.answer_timeout_s = 0.3
    room, media = await world.item(special.url("/gated/100"))
    r = await world.fetch(await world.proxy_url(room, media))
    assert (r.status, r.error()["code"]) == (504, "gateway_timeout")


@pytest_twisted.ensureDeferred
async def test_upstream_headers_come_from_the_item_never_from_the_client(make_world, nginx, special):
    """nginx's /private/ wants a Referer: the item's header gets through; a client's own Referer,
    Cookie or Authorization never reaches the upstream."""
    nginx.write("private/film.mp4", pattern(500))
    world = await make_world()
    room, good = await world.item(nginx.url("private/film.mp4"), headers={"Referer": "https://allowed.example/"})
    _, bare = await world.item(nginx.url("private/film.mp4"))
    r = await world.fetch(await world.proxy_url(room, good))
    assert (r.status, r.raw) == (200, pattern(500))
    r = await world.fetch(await world.proxy_url(room, bare), headers={"Referer": "https://allowed.example/"})
    assert (r.status, r.error()["code"]) == (502, "bad_gateway")

    _, echo = await world.item(special.url("/norange/10"), headers={"X-Item": "yes"})
    await world.fetch(await world.proxy_url(room, echo), headers={"Cookie": "c=1", "Authorization": "Bearer x",
                                                                   "X-Item": "client"})
    sent = {k.decode().lower(): [v.decode() for v in vs] for k, vs in special.resource.requests[-1]["headers"].items()}
    assert sent["x-item"] == ["yes"]
    assert "cookie" not in sent and "authorization" not in sent
    assert sent["accept-encoding"] == ["identity"]
