"""Where upstream connections may go, checked at connect time (after DNS) by the one guard that the
media proxy and the live pull share: IPv6 literals of every IPv4-carrying form, zone ids, the
decimal, octal and hex IPv4 spellings the C library accepts, DNS names that resolve to special
addresses, and redirects to any of them. Real upstream servers on loopback; a refused upstream
never sees a request."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred, succeed

from synctv.config import Config, ProxyConfig
from synctv.core.clock import ManualClock
from synctv.live.node import build_live_hub
from synctv.proxy.addresses import AddressGuard, AddressRefused
from synctv.proxy.upstream import UpstreamClient, UpstreamError, request_uri
from tests.store.conftest import Builders

from .upstreams import HOSTILE_PAGE

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)
PATH = "/typed/norange/clip.mp4?type=video/mp4"


def loopback_spellings(port: int) -> dict[str, str]:
    """URLs that all name 127.0.0.1 (or ::1), and the reason the guard gives for them."""
    return {
        f"http://2130706433:{port}{PATH}": "loopback",  # decimal
        f"http://0x7f.1:{port}{PATH}": "loopback",  # hex, two parts
        f"http://017700000001:{port}{PATH}": "loopback",  # octal
        f"http://127.1:{port}{PATH}": "loopback",  # short form
        f"http://[::1]:{port}{PATH}": "loopback",
        f"http://[::ffff:127.0.0.1]:{port}{PATH}": "loopback (IPv4-mapped form of 127.0.0.1)",
        f"http://[::ffff:7f00:1]:{port}{PATH}": "loopback (IPv4-mapped form of 127.0.0.1)",
        f"http://[64:ff9b::7f00:1]:{port}{PATH}": "loopback (NAT64 form of 127.0.0.1)",
        f"http://[64:ff9b::127.0.0.1]:{port}{PATH}": "loopback (NAT64 form of 127.0.0.1)",
        f"http://[64:ff9b:1::7f00:1]:{port}{PATH}": "loopback (local-use NAT64 form of 127.0.0.1)",
        f"http://[2002:7f00:1::1]:{port}{PATH}": "loopback (6to4 form of 127.0.0.1)",
        f"http://[::127.0.0.1]:{port}{PATH}": "IPv4-compatible (deprecated)",
        f"http://[fe80::1%25lo]:{port}{PATH}": "link-local",
    }


@pytest_twisted.ensureDeferred
async def test_every_spelling_of_a_loopback_upstream_is_refused_before_any_request(make_world, special):
    """Through the proxy with no allow_networks: each spelling is 403 naming the reason (the IPv4
    address inside IPv6 forms), with the safety headers, and the upstream sees nothing."""
    world = await make_world(allow_networks=())
    port = int(special.url("/").rsplit(":", 1)[1].split("/")[0])
    for url, reason in loopback_spellings(port).items():
        room, media = await world.item(url)
        r = await world.fetch(await world.proxy_url(room, media))
        assert (r.status, r.error()["code"]) == (403, "forbidden"), (url, r.raw)
        assert r.error()["detail"]["reason"] == reason, url
        assert "allow_networks" in r.error()["message"]
        assert r.header("X-Content-Type-Options") == "nosniff"
    assert sum(special.resource.counts.values()) == 0
    assert world.proxy.client.in_use == 0


@pytest_twisted.ensureDeferred
async def test_numeric_spellings_are_judged_by_the_address_they_resolve_to(make_world, special):
    """With 127.0.0.0/8 allowed, the decimal, hex, octal and short spellings reach the loopback
    upstream: the guard judged the address getaddrinfo gave, not the URL text. An IPv6 literal
    (the IPv4-mapped form, admitted by its IPv4 address) is requested too, non-ASCII path and all."""
    world = await make_world(allow_networks=LOOPBACK)
    port = int(special.url("/").rsplit(":", 1)[1].split("/")[0])
    for host in ("2130706433", "0x7f.1", "017700000001", "127.1", "[::ffff:127.0.0.1]"):
        room, media = await world.item(f"http://{host}:{port}{PATH}")
        r = await world.fetch(await world.proxy_url(room, media))
        assert (r.status, r.raw, r.header("Content-Type")) == (200, HOSTILE_PAGE, "video/mp4"), host
    assert special.resource.counts["/typed/norange/clip.mp4"] == 5
    room, media = await world.item(f"http://[::ffff:127.0.0.1]:{port}/typed/norange/片%201.mp4?type=video/mp4")
    r = await world.fetch(await world.proxy_url(room, media))
    assert (r.status, r.raw) == (200, HOSTILE_PAGE)
    assert special.resource.counts["/typed/norange/%E7%89%87%201.mp4"] == 1, special.resource.counts


class NameServer:
    """The guard's resolver seam: names this test owns, answering what a hostile DNS would."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> Deferred[list[str]]:
        self.asked.append(host)
        return succeed(self.answers[host])


@pytest_twisted.ensureDeferred
async def test_names_resolving_to_special_addresses_are_refused_at_connect_time(special):
    """A name whose only addresses are NAT64, 6to4, mapped or private forms is refused; a name with
    one good address among bad ones connects to that one, the very address that was checked (the
    name exists nowhere else, so nothing could have looked it up again)."""
    from twisted.internet import reactor

    port = int(special.url("/").rsplit(":", 1)[1].split("/")[0])
    names = NameServer({
        "nat64.rebind.test": ["64:ff9b::a00:1"],
        "sixtofour.rebind.test": ["2002:c0a8:101::1"],
        "mapped.rebind.test": ["::ffff:169.254.169.254"],
        "mixed.rebind.test": ["10.0.0.1", "fd00::1", "64:ff9b::7f00:1", "127.0.0.1"],
    })
    client = UpstreamClient(reactor, allow_networks=[ipaddress.ip_network("127.0.0.1/32")], resolver=names)
    try:
        for name in ("nat64", "sixtofour", "mapped"):
            with pytest.raises(AddressRefused) as refused:
                await client.open("GET", f"http://{name}.rebind.test:{port}{PATH}", {})
            assert "form of" in refused.value.detail["reason"]
        response = await client.open("GET", f"http://mixed.rebind.test:{port}{PATH}", {})
        assert response.code == 200 and await response.read(1 << 20) == HOSTILE_PAGE
        assert names.asked == ["nat64.rebind.test", "sixtofour.rebind.test", "mapped.rebind.test",
                               "mixed.rebind.test"]
        guard = AddressGuard([], names)
        with pytest.raises(AddressRefused):
            await guard.addresses(reactor, "mixed.rebind.test", port)
    finally:
        await client.close()
    assert special.resource.counts["/typed/norange/clip.mp4"] == 1


@pytest_twisted.ensureDeferred
async def test_a_redirect_to_another_spelling_of_a_refused_address_is_refused(make_world, special):
    """Each redirect hop goes through the guard: with only 127.0.0.1 allowed, a redirect to
    127.0.0.2 spelled in decimal, or to ::1, is 403 and never followed."""
    world = await make_world(allow_networks=[ipaddress.ip_network("127.0.0.1/32")])
    port = int(special.url("/").rsplit(":", 1)[1].split("/")[0])
    for target in (f"http://2130706434:{port}{PATH}", f"http://[::1]:{port}{PATH}"):
        room, media = await world.item(special.url(f"/redirect/x.mp4?to={target}"))
        r = await world.fetch(await world.proxy_url(room, media))
        assert (r.status, r.error()["code"]) == (403, "forbidden"), (target, r.raw)
    assert special.resource.counts["/redirect/x.mp4"] == 2
    assert special.resource.counts["/typed/norange/clip.mp4"] == 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest_twisted.ensureDeferred
async def test_the_live_pull_uses_the_same_guard(store, special, tmp_path: Path):
    """The live hub the server builds pulls through the same address guard: a NAT64, mapped or
    decimal spelling of a loopback upstream is refused (the stream info says why, the upstream sees
    nothing); once 127.0.0.0/8 is allowed, the decimal spelling reaches the upstream."""
    from twisted.internet import reactor

    port = int(special.url("/").rsplit(":", 1)[1].split("/")[0])
    build = Builders(store)
    room = await build.room()

    async def pull(allow: tuple[Any, ...], url: str) -> dict[str, Any]:
        config = Config(data=tmp_path, proxy=ProxyConfig(allow_networks=allow))
        hub = build_live_hub(config, store=store, clock=ManualClock(), secret="s" * 32, reactor=reactor,
                             node="n", node_url="http://n")
        opened: list[Deferred[Any]] = []
        opener = hub.opener

        class Recording:
            def open(self, method: str, url: str, headers: Any) -> Deferred[Any]:
                d = opener.open(method, url, headers)
                opened.append(d)
                return d

        hub.opener = Recording()
        item = await build.media(room, provider="live", url=url, headers={})
        try:
            stream = await hub.stream_for_viewing(item)
            settled: Deferred[None] = Deferred()
            opened[0].addBoth(lambda r: (settled.callback(None), r)[1])
            await settled
            return dict(stream.extra_info["upstream"])
        finally:
            hub.stop()
            await opener.close()

    for spelling in (f"[64:ff9b::7f00:1]:{port}", f"[::ffff:127.0.0.1]:{port}", f"2130706433:{port}"):
        info = await pull((), f"http://{spelling}/live.flv")
        assert info["state"] == "retrying" and "AddressRefused" in info["last_error"], info
        assert "loopback" in info["last_error"]
    assert sum(special.resource.counts.values()) == 0
    await pull(LOOPBACK, f"http://2130706433:{port}/typed/norange/live.flv")
    assert special.resource.counts["/typed/norange/live.flv"] == 1


@pytest.mark.parametrize("url, uri", [
    ("http://[::1]:8080/a b/片?x=ä&y=1#frag", b"http://[::1]:8080/a%20b/%E7%89%87?x=%C3%A4&y=1"),
    ("http://[fe80::1%25lo]:81/x", b"http://[fe80::1%25lo]:81/x"),
    ("http://[64:ff9b::127.0.0.1]/", b"http://[64:ff9b::127.0.0.1]/"),
    ("http://bücher.example/片?q=1", b"http://xn--bcher-kva.example/%E7%89%87?q=1"),
    ("http://0x7f.1:8080/x", b"http://0x7f.1:8080/x"),
])
def test_request_uris_keep_ipv6_literals_and_encode_the_rest(url, uri):
    """IPv6 literals (zone ids included) stay as written while path and query are percent-encoded;
    names are IDNA-encoded as before (hyperlink would fail on an IPv6 literal)."""
    assert request_uri(url) == uri


@pytest.mark.parametrize("url", ["http://a..b/x", "http://[::1/x", "http://" + "a" * 70 + ".com/"])
def test_a_url_that_cannot_be_requested_is_an_upstream_error(url):
    """An unencodable URL is a 502 domain error, never a traceback."""
    with pytest.raises(UpstreamError):
        request_uri(url)
