"""Proxy answers are media, never pages: whatever type a hostile upstream claims (text/html with a
script, image/svg+xml, types with parameters and odd case), the proxy sends only audio, video,
image, subtitle and playlist types, anything else as application/octet-stream, and every answer
-- hit, miss, bypass, 206, 416, HEAD, playlist, subtitle, error, preflight -- carries
``X-Content-Type-Options: nosniff`` and ``Content-Security-Policy: sandbox``. Live answers
(HTTP-FLV, HLS) carry nosniff and the sandbox too."""

from __future__ import annotations

from urllib.parse import quote

import pytest
import pytest_twisted

from synctv.proxy.media_types import OCTET_STREAM, answer_type

from .upstreams import HOSTILE_PAGE, pattern

SAFETY = {"x-content-type-options": "nosniff", "content-security-policy": "sandbox"}


def assert_safe(r, content_type: str | None = None) -> None:
    """``r`` (a tests.api Response) carries the safety headers and, if given, exactly this type."""
    for name, value in SAFETY.items():
        assert r.header(name) == value, (name, r.status, r.raw[:200])
    if content_type is not None:
        assert r.header("Content-Type") == content_type, (r.status, r.raw[:200])


@pytest.mark.parametrize("upstream, url, sent", [
    ("text/html", "x.mp4", OCTET_STREAM),
    ("text/html; charset=utf-8", "x.html", OCTET_STREAM),
    ("TEXT/HTML", "x.vtt", OCTET_STREAM),
    ("application/xhtml+xml", "x.mp4", OCTET_STREAM),
    ("image/svg+xml", "x.svg", OCTET_STREAM),
    ("IMAGE/SVG+XML; charset=utf-8", "x.png", OCTET_STREAM),
    ("image/svg", "x.svg", OCTET_STREAM),
    ("application/javascript", "x.js", OCTET_STREAM),
    ("application/pdf", "x.pdf", OCTET_STREAM),
    ("text/xml", "x.xml", OCTET_STREAM),
    ("application/dash+xml", "x.mpd", OCTET_STREAM),
    ("multipart/x-mixed-replace; boundary=x", "x.mp4", OCTET_STREAM),
    ("text/html, video/mp4", "x.mp4", OCTET_STREAM),
    ("video/mp4, text/html", "x.mp4", OCTET_STREAM),
    ("video mp4", "x.mp4", OCTET_STREAM),
    ("VIDEO/MP4; codecs=\"avc1.64001f, mp4a.40.2\"", "x", "video/mp4"),
    (" video/webm ", "x", "video/webm"),
    ("audio/mpeg", "x", "audio/mpeg"),
    ("Image/PNG", "x", "image/png"),
    ("text/vtt; charset=utf-8", "x", "text/vtt"),
    ("application/x-subrip", "x", "application/x-subrip"),
    ("text/srt", "x", "application/x-subrip"),
    ("application/x-mpegURL", "x", "application/x-mpegurl"),
    ("application/vnd.apple.mpegurl", "x", "application/vnd.apple.mpegurl"),
    ("audio/mpegurl", "x", "audio/mpegurl"),
    ("video/MP2T", "x", "video/mp2t"),
    (None, "a/b/x.mp4", "video/mp4"),
    (None, "x.ts", "video/mp2t"),
    (None, "x.html", OCTET_STREAM),
    (None, "x.svg", OCTET_STREAM),
    ("", "x.m3u8", "application/vnd.apple.mpegurl"),
    ("text/plain", "sub/en.vtt", "text/vtt"),
    ("text/plain", "sub/en.srt", "application/x-subrip"),
    ("text/plain", "notes.txt", OCTET_STREAM),
    ("application/octet-stream", "x.webm", "video/webm"),
    ("binary/octet-stream", "x.bin", OCTET_STREAM),
])
def test_the_answer_type_is_a_media_type_or_octet_stream(upstream, url, sent):
    """The type rule on its own: pages, scripts, XML and SVG become octet-stream; media types pass
    lowercased without parameters; a missing or generic type is read from the URL's extension."""
    assert answer_type(upstream, f"http://up.example/{url}?q=1") == sent


HOSTILE_TYPES = [
    ("text/html", OCTET_STREAM),
    ("Text/HTML; Charset=UTF-8", OCTET_STREAM),
    ("image/svg+xml", OCTET_STREAM),
    ("VIDEO/MP4; codecs=avc1", "video/mp4"),
]


@pytest.mark.parametrize("upstream_type, sent", HOSTILE_TYPES)
@pytest_twisted.ensureDeferred
async def test_slice_answers_carry_only_safe_types_and_the_safety_headers(make_world, special, upstream_type,
                                                                         sent):
    """An upstream that honours Range: the miss, the hit, a 206, a HEAD and a 416 all say the safe
    type (or the JSON of the 416) with nosniff and the sandbox; the bytes are untouched."""
    world = await make_world()
    room, media = await world.item(special.url(f"/typed/range/page.html?type={quote(upstream_type)}"))
    url = await world.proxy_url(room, media)
    miss = await world.fetch(url)
    assert (miss.status, miss.raw, miss.header("X-Cache")) == (200, HOSTILE_PAGE, "MISS")
    assert_safe(miss, sent)
    hit = await world.fetch(url)
    assert (hit.status, hit.raw, hit.header("X-Cache")) == (200, HOSTILE_PAGE, "HIT")
    assert_safe(hit, sent)
    part = await world.fetch(url, headers={"Range": "bytes=10-19"})
    assert (part.status, part.raw) == (206, HOSTILE_PAGE[10:20])
    assert_safe(part, sent)
    head = await world.fetch(url, method="HEAD")
    assert (head.status, head.raw) == (200, b"")
    assert_safe(head, sent)
    outside = await world.fetch(url, headers={"Range": "bytes=100000-"})
    assert outside.status == 416
    assert_safe(outside, "application/json; charset=utf-8")


@pytest.mark.parametrize("upstream_type, sent", HOSTILE_TYPES)
@pytest_twisted.ensureDeferred
async def test_bypass_answers_carry_only_safe_types_and_the_safety_headers(make_world, special, upstream_type,
                                                                          sent):
    """An upstream without Range support is relayed (BYPASS), its type judged the same way, for
    GET and HEAD; every header really sent is checked (http.client)."""
    world = await make_world()
    room, media = await world.item(special.url(f"/typed/norange/page.html?type={quote(upstream_type)}"))
    url = await world.proxy_url(room, media)
    for method in ("GET", "HEAD", "GET"):
        status, headers, body = await world.raw(url, method=method)
        assert status == 200 and headers["x-cache"] == "BYPASS"
        assert body == (b"" if method == "HEAD" else HOSTILE_PAGE)
        assert headers["content-type"] == sent
        assert {name: headers.get(name) for name in SAFETY} == SAFETY


@pytest_twisted.ensureDeferred
async def test_an_upstream_without_a_type_is_typed_by_extension_even_from_the_cache(make_world, special, tmp_path):
    """With no upstream Content-Type the URL's extension decides (.mp4 video/mp4, .html
    octet-stream); after a restart with the file cache, the cached slices are answered (HIT) with
    the same safe type and headers, without asking the upstream again."""
    world = await make_world(cache="file")
    room, page = await world.item(special.url("/typed/range/page.html"))
    _, video = await world.item(special.url("/typed/range/clip.mp4"))
    page_url, video_url = await world.proxy_url(room, page), await world.proxy_url(room, video)
    for url, sent in ((page_url, OCTET_STREAM), (video_url, "video/mp4")):
        r = await world.fetch(url)
        assert (r.status, r.raw, r.header("X-Cache")) == (200, HOSTILE_PAGE, "MISS")
        assert_safe(r, sent)
    await make_world.stop(world)
    fetched = sum(special.resource.counts.values())
    again = await make_world(cache="file")
    for url, sent in ((page_url, OCTET_STREAM), (video_url, "video/mp4")):
        r = await again.fetch(url)
        assert (r.status, r.raw, r.header("X-Cache")) == (200, HOSTILE_PAGE, "HIT")
        assert_safe(r, sent)
    assert sum(special.resource.counts.values()) == fetched


@pytest_twisted.ensureDeferred
async def test_subtitles_playlists_errors_and_preflights_carry_the_safety_headers(make_world, special, nginx):
    """A subtitle whose upstream says text/html is octet-stream; a playlist is rewritten and typed as
    one, and a segment it names (text/html upstream) is octet-stream; a forged signature (403), an
    unknown item (404), an upstream error (502) and the CORS preflight carry the headers too."""
    world = await make_world()
    hostile_vtt = special.url("/typed/range/en.vtt?type=text/html")
    nginx.write("safe/list.m3u8", (
        "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n"
        f"#EXTINF:1.0,\n{special.url('/typed/range/seg0.ts?type=text/html')}\n"
        "#EXTINF:1.0,\nseg1.ts\n#EXT-X-ENDLIST\n").encode())
    nginx.write("safe/seg1.ts", pattern(188 * 4))
    room, media = await world.item(nginx.url("safe/list.m3u8"),
                                   subtitles=[{"name": "en", "url": hostile_vtt, "format": "vtt"}])
    r = await world.client.get(f"/api/rooms/{room['id']}/media/{media['id']}/playback?modes=proxy",
                               token=world.tokens["alice"])
    [info] = r.json["infos"]
    subtitle = await world.fetch(info["subtitles"][0]["url"])
    assert (subtitle.status, subtitle.raw) == (200, HOSTILE_PAGE)
    assert_safe(subtitle, OCTET_STREAM)

    playlist = await world.fetch(info["url"])
    assert playlist.status == 200 and playlist.raw.startswith(b"#EXTM3U")
    assert_safe(playlist, "application/vnd.apple.mpegurl")
    segment_urls = [line for line in playlist.raw.decode().splitlines() if line.startswith("/api/")]
    assert len(segment_urls) == 2
    hostile, safe = [await world.fetch(u) for u in segment_urls]
    assert (hostile.status, hostile.raw) == (200, HOSTILE_PAGE)
    assert_safe(hostile, OCTET_STREAM)
    assert (safe.status, safe.raw) == (200, pattern(188 * 4))
    assert_safe(safe, "video/mp2t")
    head = await world.fetch(info["url"], method="HEAD")
    assert head.status == 200
    assert_safe(head, "application/vnd.apple.mpegurl")

    forged = await world.fetch(info["url"].replace("s=", "s=AAAA"))
    assert forged.status == 403
    assert_safe(forged, "application/json; charset=utf-8")
    unknown = await world.fetch(info["url"].replace(media["id"], "nope"))
    assert unknown.status == 404
    assert_safe(unknown, "application/json; charset=utf-8")
    _, failing = await world.item(special.url("/status/500"))
    failed = await world.fetch(await world.proxy_url(room, failing))
    assert failed.status == 502
    assert_safe(failed, "application/json; charset=utf-8")
    bad_kind = await world.fetch(info["url"].replace("/proxy?", "/proxy/nonsense/0?"))
    assert bad_kind.status == 404
    assert_safe(bad_kind)
    preflight = await world.fetch(info["url"], method="OPTIONS")
    assert preflight.status == 204
    assert_safe(preflight)
