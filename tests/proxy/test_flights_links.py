"""Pure parts of the proxy route: the shared slice fetch (tee, holding, cancellation) and signed
links. No reactor."""

from __future__ import annotations

import pytest
from twisted.internet import defer
from twisted.python.failure import Failure

from synctv.core.errors import Forbidden, NotFound
from synctv.core.models import Subtitle
from synctv.providers.base import PlaybackInfo, PlaybackResult
from synctv.proxy.cache import Validators
from synctv.proxy.flights import Holds, Once, SliceFlight, SliceHead
from synctv.proxy.proxy_urls import ProxyGrant, ProxyLinks, check_resource, extension
from synctv.proxy.slices import slice_key

from ._support import resolved

KEY = slice_key("https://h/a.mp4", {}, 0, 100)
HEAD = SliceHead(1000, Validators(etag='"e"', total_length=1000))


def test_a_late_reader_gets_the_earlier_bytes_then_the_rest():
    """Readers joining at any time get exactly their cut of the slice, as it arrives."""
    flight = SliceFlight(KEY, 0)
    flight.started(HEAD, 100)
    early, late = [], []
    d1 = flight.read(10, 90, early.append)
    flight.data(bytes(range(40)))
    d2 = flight.read(0, 50, late.append)
    assert b"".join(late) == bytes(range(40)) and not d2.called
    flight.data(bytes(range(40, 100)))
    assert resolved(d1) is None and resolved(d2) is None
    assert b"".join(early) == bytes(range(10, 90)) and b"".join(late) == bytes(range(50))
    assert flight.finished() == bytes(range(100))
    done = []
    assert resolved(flight.read(95, 100, done.append)) is None and done == [bytes(range(95, 100))]


def test_a_short_or_long_body_fails_the_flight():
    """More bytes than announced raise; fewer make finished() raise; readers then fail."""
    flight = SliceFlight(KEY, 0)
    flight.started(HEAD, 10)
    with pytest.raises(ValueError):
        flight.data(bytes(11))
    short = SliceFlight(KEY, 0)
    short.started(HEAD, 10)
    reader = short.read(0, 10, lambda b: None)
    short.data(bytes(5))
    with pytest.raises(ValueError):
        short.finished()
    short.failed(Failure(ValueError("short")))
    with pytest.raises(ValueError):
        resolved(reader)


def test_the_fetch_is_cancelled_only_when_every_holder_left_without_using_it():
    """Two holders leaving (clients gone) cancel the task; one finishing normally keeps it."""
    for keep_one, cancelled in ((False, True), (True, False)):
        flight = SliceFlight(KEY, 0)
        flight.task = defer.Deferred()
        flight.task.addErrback(lambda f: f.trap(defer.CancelledError))
        a, b = Holds(), Holds()
        a.add(flight), b.add(flight), b.add(flight)
        assert flight.holders == 2
        a.release(keep=keep_one)
        b.release(keep=False)
        assert flight.task.called is cancelled


def test_once_wakes_every_waiter_and_a_cancelled_waiter_alone():
    """Once fires every waiter with the value; a cancelled waiter does not affect the others."""
    once: Once[int] = Once()
    a, b = once.wait(), once.wait()
    b.addErrback(lambda f: f.trap(defer.CancelledError))
    b.cancel()
    once.fire(7)
    assert resolved(a) == 7 and resolved(once.wait()) == 7


LINKS = ProxyLinks("s" * 32, ttl_ms=1000)


def _args(path: str) -> dict[bytes, list[bytes]]:
    from urllib.parse import parse_qs, urlsplit

    return {k.encode(): [v.encode() for v in vs] for k, vs in parse_qs(urlsplit(path).query).items()}


def test_links_verify_only_what_they_were_signed_for():
    """A signed URL verifies for its room, item, kind and index until it expires; any change or
    a missing field is Forbidden; an unknown kind is NotFound."""
    grant = ProxyGrant("r1", "m1", "u1", 5000, "segment", 3, "https://cdn/x/3.ts")
    path = LINKS.path_for(grant, ".ts")
    assert "/api/rooms/r1/media/m1/proxy/segment/3.ts?" in path
    assert LINKS.verify("r1", "m1", "segment", 3, _args(path), 4999) == grant
    for room, media, kind, index, now in (("r2", "m1", "segment", 3, 0), ("r1", "m1", "segment", 4, 0),
                                          ("r1", "m1", "key", 3, 0), ("r1", "m1", "segment", 3, 5000)):
        with pytest.raises(Forbidden):
            LINKS.verify(room, media, kind, index, _args(path), now)
    forged = _args(path)
    forged[b"r"] = [b"https://evil/x"]
    with pytest.raises(Forbidden):
        LINKS.verify("r1", "m1", "segment", 3, forged, 0)
    with pytest.raises(Forbidden):
        LINKS.verify("r1", "m1", "segment", 3, {}, 0)
    with pytest.raises(NotFound):
        check_resource("nope", "1")
    with pytest.raises(NotFound):
        check_resource("segment", "1.ts.ts")
    assert check_resource("segment", "12.ts") == 12
    assert (extension("https://h/a/b.m3u8?x=1"), extension("https://h/a/b"), extension("https://h/a.b@d")) == (
        ".m3u8", "", "")


def test_sign_result_rewrites_proxy_infos_only():
    """Direct infos stay; a proxy info gets a signed URL, no headers, an expiry and proxied
    subtitles."""
    sub = Subtitle("en", "https://h/en.vtt", headers={"Referer": "x"})
    result = PlaybackResult("m1", "direct", (
        PlaybackInfo("direct", "https://h/a.mp4", "mp4", {"Referer": "x"}),
        PlaybackInfo("proxy", "https://h/a.mp4", "mp4", {"Referer": "x"}, (sub,)),
    ))
    direct, proxy = ProxyLinks("s" * 32, public_url="https://tv.example/").sign_result(
        result, room_id="r1", user_id="u1", now_ms=100).infos
    assert direct == result.infos[0]
    assert proxy.url.startswith("https://tv.example/api/rooms/r1/media/m1/proxy?u=u1&e=")
    assert proxy.headers == {} and proxy.expires_at == 100 + LINKS_TTL
    assert proxy.subtitles[0].headers == {} and "/proxy/subtitle/0.vtt?" in proxy.subtitles[0].url


LINKS_TTL = ProxyLinks("x").ttl_ms
