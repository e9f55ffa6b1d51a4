"""Bilibili end to end over loopback: add a video part by URL (WBI-signed view and playurl, buvid
cookies), import every part, play the MP4 through the proxy (the CDN wants a Referer and a browser
User-Agent, which the proxy sends), a DASH-only answer as an MPD, a live room, and the errors
(``code: -404``, an offline room, a short link)."""

from __future__ import annotations

import html

import pytest_twisted


@pytest_twisted.ensureDeferred
async def test_add_a_part_by_url_and_play_it_through_the_proxy(pw, media):
    room = await pw.room("alice")
    item = await pw.add(room, {"provider": "bilibili", "url": "https://www.bilibili.com/video/BV1xx411c7mD?p=2"})
    assert (item["title"], item["duration"]) == ("Two Parts P2 Ending", 2.0)
    assert item["url"] == "https://www.bilibili.com/video/BV1xx411c7mD?p=2"
    assert item["provider_data"]["cid"] == 3002
    r = await pw.playback(room, item, query="?headers=0")
    [info] = r.json["infos"]
    assert info["mode"] == "proxy" and info["format"] == "mp4"
    got = await pw.client.request("GET", info["url"], headers={"Range": "bytes=0-99"})
    assert got.status == 206 and got.raw == media["video.mp4"].read_bytes()[:100]
    direct = await pw.playback(room, item, query="?headers=1&modes=direct")
    [d] = direct.json["infos"]
    assert d["headers"]["Referer"].startswith("https://www.bilibili.com") and "Mozilla" in d["headers"]["User-Agent"]
    assert d["expires_at"] is not None


@pytest_twisted.ensureDeferred
async def test_import_adds_every_part_in_order(pw):
    room = await pw.room("alice")
    r = await pw.call("POST", f"/api/rooms/{room['id']}/media/import",
                      body={"provider": "bilibili", "url": "BV1xx411c7mD"})
    assert r.status == 201, r.raw
    assert [m["title"] for m in r.json["media"]] == ["Two Parts P1 Opening", "Two Parts P2 Ending"]


@pytest_twisted.ensureDeferred
async def test_a_dash_only_answer_plays_as_an_mpd_through_the_proxy(pw, media):
    pw.fakes.bilibili.dash_only.add("BV1y7411Q7Eq")
    room = await pw.room("alice")
    item = await pw.add(room, {"provider": "bilibili", "url": "BV1y7411Q7Eq"})
    r = await pw.playback(room, item)
    [info] = r.json["infos"]
    assert (info["mode"], info["format"]) == ("proxy", "dash")
    mpd = await pw.client.request("GET", info["url"])
    assert mpd.status == 200 and mpd.header("content-type") == "application/dash+xml"
    text = mpd.raw.decode()
    assert 'indexRange="1000-1099"' in text and 'range="0-799"' in text
    bases = [html.unescape(part.split("</BaseURL>")[0]) for part in text.split("<BaseURL>")[1:]]
    assert len(bases) == 2 and all(b.startswith(f"/api/rooms/{room['id']}/media/{item['id']}/proxy/") for b in bases)
    assert all("cdn" not in b.split("?")[0] for b in bases)  # the upstream is named only inside the signed query
    track = await pw.client.request("GET", bases[0], headers={"Range": "bytes=0-999"})
    assert track.status == 206 and track.raw == media["video.mp4"].read_bytes()[:1000]


@pytest_twisted.ensureDeferred
async def test_a_live_room_plays_as_live_flv(pw, media):
    room = await pw.room("alice")
    item = await pw.add(room, {"provider": "bilibili", "url": "https://live.bilibili.com/21"})
    assert item["title"] == "A live room" and item["duration"] is None
    r = await pw.playback(room, item, query="?modes=proxy")
    [info] = r.json["infos"]
    assert info["format"] == "flv" and info["metadata"]["live"] is True
    got = await pw.client.request("GET", info["url"], headers={"Range": "bytes=0-12"})
    assert got.raw[:3] == b"FLV"
    offline = await pw.add(room, {"provider": "bilibili", "url": "https://live.bilibili.com/22"})
    r = await pw.playback(room, offline)
    assert r.status == 503 and "not on the air" in r.error()["message"]


@pytest_twisted.ensureDeferred
async def test_errors_are_clear(pw):
    room = await pw.room("alice")
    path = f"/api/rooms/{room['id']}/media"
    r = await pw.call("POST", path, body={"provider": "bilibili", "url": "BV1zz411c7zz"})
    assert r.status == 404 and "bilibili has no such video" in r.error()["message"]
    r = await pw.call("POST", path, body={"provider": "bilibili", "url": "https://b23.tv/abcdef"})
    assert r.status == 400 and "short" in r.error()["message"]
    r = await pw.call("POST", path, body={"provider": "bilibili", "url": "https://www.bilibili.com/video/BV1xx411c7mD?p=9"})
    assert r.status == 400 and "no part 9" in r.error()["message"]
