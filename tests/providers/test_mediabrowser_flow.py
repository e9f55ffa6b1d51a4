"""Emby and Jellyfin end to end over loopback: link, browse the libraries, add a film, import a season
and a series, and play: the direct stream through the proxy with Range, the HLS transcode through
the proxy's playlist rewriting (no token in any URL handed out), subtitles as WebVTT."""

from __future__ import annotations

import pytest
import pytest_twisted

KINDS = ["emby", "jellyfin"]


async def _film(pw, kind):
    account = await pw.link(kind)
    room = await pw.room("alice")
    fake = getattr(pw.fakes, kind)
    item = await pw.add(room, {"provider": kind, "provider_data": {"account": account["id"], "item": fake.ids["film"]}})
    return account, room, item, fake


@pytest.mark.parametrize("kind", KINDS)
@pytest_twisted.ensureDeferred
async def test_browse_libraries_then_a_series(pw, kind):
    account = await pw.link(kind)
    fake = getattr(pw.fakes, kind)
    r = await pw.call("GET", f"/api/me/accounts/{account['id']}/browse")
    assert r.status == 200, r.raw
    assert [(i["title"], i["kind"], i["playable"]) for i in r.json["items"]] == [
        ("Movies", "folder", False), ("Shows", "folder", False)]
    r = await pw.call("GET", f"/api/me/accounts/{account['id']}/browse?path={fake.ids['movies']}")
    [film] = r.json["items"]
    assert (film["title"], film["kind"], film["playable"], film["duration"]) == ("A Film", "video", True, 2.0)
    assert film["thumbnail"].startswith(f"/api/me/accounts/{account['id']}/thumbnail?item=")
    image = await pw.call("GET", film["thumbnail"])
    assert image.status == 200 and image.header("content-type") == "image/png"
    assert image.header("x-content-type-options") == "nosniff"
    r = await pw.call("GET", f"/api/me/accounts/{account['id']}/browse?path={fake.ids['series']}")
    assert [(i["title"], i["kind"]) for i in r.json["items"]] == [("Season 1", "season"), ("Season 2", "season")]


@pytest.mark.parametrize("kind", KINDS)
@pytest_twisted.ensureDeferred
async def test_import_a_season_and_a_series_in_order(pw, kind):
    account = await pw.link(kind)
    fake = getattr(pw.fakes, kind)
    room = await pw.room("alice")
    path = f"/api/rooms/{room['id']}/media/import"
    r = await pw.call("POST", path, body={"provider": kind, "provider_data": {"account": account["id"],
                                                                            "item": fake.ids["season1"]}})
    assert r.status == 201, r.raw
    assert [m["title"] for m in r.json["media"]] == ["A Show S01E01 Pilot", "A Show S01E02 Second"]
    assert all(m["duration"] == 2.0 and m["provider"] == kind for m in r.json["media"])
    r = await pw.call("POST", path, body={"provider": kind, "provider_data": {"account": account["id"],
                                                                            "item": fake.ids["series"]}})
    assert [m["title"] for m in r.json["media"]] == ["A Show S01E01 Pilot", "A Show S01E02 Second",
                                                     "A Show S02E01 Third"]
    playlist = (await pw.call("GET", f"/api/rooms/{room['id']}/media")).json["media"]
    assert len(playlist) == 5


@pytest.mark.parametrize("kind", KINDS)
@pytest_twisted.ensureDeferred
async def test_direct_stream_and_hls_transcode_through_the_proxy(pw, media, kind):
    _account, room, item, fake = await _film(pw, kind)
    assert (item["title"], item["duration"]) == ("A Film", 2.0)
    r = await pw.playback(room, item)
    modes = [(i["mode"], i["format"]) for i in r.json["infos"]]
    assert modes == [("proxy", "mkv"), ("hls", "hls")], r.raw  # no direct: share_direct is off
    browser = await pw.playback(room, item, query="?modes=proxy,hls&formats=mp4,hls&headers=0")
    [hls] = browser.json["infos"]
    assert hls["mode"] == "hls" and hls["headers"] == {}
    proxy = r.json["infos"][0]
    data = media["video.mkv"].read_bytes()
    got = await pw.client.request("GET", proxy["url"], headers={"Range": "bytes=10-2009"})
    assert got.status == 206 and got.raw == data[10:2010]

    master = await pw.client.request("GET", hls["url"])
    assert master.status == 200, master.raw
    variant = next(line for line in master.raw.decode().splitlines() if line and not line.startswith("#"))
    playlist = await pw.client.request("GET", variant)
    assert playlist.status == 200, playlist.raw
    segments = [line for line in playlist.raw.decode().splitlines() if line and not line.startswith("#")]
    first = await pw.client.request("GET", segments[0], headers={"Range": "bytes=0-187"})
    assert first.status == 206 and first.raw == (media["hls"] / "seg0.ts").read_bytes()[:188]
    tokens = [t for t in fake.tokens]
    assert tokens and fake.playlist_tokens
    for text in (master.raw, playlist.raw, r.raw, browser.raw):
        for token in tokens:
            assert token.encode() not in text
    [subtitle] = hls["subtitles"]
    assert subtitle["format"] == "vtt" and "api_key" not in subtitle["url"].lower()
    vtt = await pw.client.request("GET", subtitle["url"])
    assert vtt.status == 200 and vtt.raw.startswith(b"WEBVTT")
