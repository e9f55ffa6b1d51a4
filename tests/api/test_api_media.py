"""The playlist: add, read, change, reorder, remove, and how a client plays an item."""

from __future__ import annotations

import pytest
import pytest_twisted

from synctv.api import schema as s
from tests.api.api_support import check_shape


@pytest_twisted.ensureDeferred
async def test_add_media_with_every_field(world):
    """POST media answers 201 with the stored item; omitted fields get their defaults."""
    room = await world.room()
    body = {
        "url": "https://cdn.example/show/ep%201.m3u8", "title": "Episode 1", "duration": 1440.5,
        "headers": {"Referer": "https://cdn.example/"},
        "subtitles": [{"name": "English", "url": "https://cdn.example/ep1.en.vtt"}],
    }
    r = await world.client.post(f"/api/rooms/{room['id']}/media", body, token=world.tokens["alice"])
    assert r.status == 201
    item = check_shape(s.ONE_MEDIA, r.json)["media"]
    assert (item["title"], item["provider"], item["duration"], item["sort"]) == ("Episode 1", "direct", 1440.5, 0)
    assert item["subtitles"] == [{"name": "English", "url": "https://cdn.example/ep1.en.vtt", "format": "vtt",
                                  "headers": {}}]
    assert item["created_by"] == world.users["alice"].id
    r = await world.client.get(f"/api/rooms/{room['id']}/media/{item['id']}", token=world.tokens["alice"])
    assert check_shape(s.ONE_MEDIA, r.json)["media"] == item


@pytest_twisted.ensureDeferred
async def test_title_defaults_to_the_file_name(world):
    """Without a title the item is named after the URL's last path segment."""
    room = await world.room()
    item = await world.media(room, url="https://cdn.example/films/The%20Movie.mkv?token=abc")
    assert item["title"] == "The Movie.mkv"


@pytest.mark.parametrize("body, field", [
    ({}, "url"),
    ({"url": "ftp://example.com/a.mp4"}, "url"),
    ({"url": "https:///no-host.mp4"}, "url"),
    ({"url": "https://exa mple.com/a.mp4"}, "url"),
    ({"url": "https://e.com/a.mp4", "provider": "nope"}, "provider"),
    ({"url": "https://e.com/a.mp4", "duration": -1}, "duration"),
    ({"url": "https://e.com/a.mp4", "duration": "60"}, "duration"),
    ({"url": "https://e.com/a.mp4", "headers": {"Bad Name": "x"}}, "headers.Bad Name"),
    ({"url": "https://e.com/a.mp4", "headers": {"X-A": "a\r\nInjected: yes"}}, "headers.X-A"),
    ({"url": "https://e.com/a.mp4", "headers": {f"X-{i}": "v" for i in range(33)}}, "headers"),
    ({"url": "https://e.com/a.mp4", "subtitles": [{"name": "en"}]}, "subtitles[0].url"),
    ({"url": "https://e.com/a.mp4", "subtitles": [{"name": "en", "url": "https://e.com/s", "format": "x"}]},
     "subtitles[0].format"),
    ({"url": "https://e.com/a.mp4", "title": ""}, "title"),
    ({"url": "https://e.com/" + "a" * 4100}, "url"),
])
@pytest_twisted.ensureDeferred
async def test_bad_media_bodies_name_the_field(world, body, field):
    """Each bad media body is a 400 naming the field; the playlist stays empty."""
    room = await world.room()
    r = await world.client.post(f"/api/rooms/{room['id']}/media", body, token=world.tokens["alice"])
    assert (r.status, r.error()["field"]) == (400, field)
    assert await world.store.list_media(room["id"]) == []


@pytest_twisted.ensureDeferred
async def test_media_permissions(world):
    """Non-members cannot read the playlist; guests read it but cannot add (manage_media)."""
    room = await world.room()
    await world.media(room)
    path = f"/api/rooms/{room['id']}/media"
    assert (await world.client.get(path, token=world.tokens["bob"])).status == 403
    await world.join("bob", room)
    await world.client.patch(f"/api/rooms/{room['id']}/members/bob", {"role": "guest"}, token=world.tokens["alice"])
    r = await world.client.get(path, token=world.tokens["bob"])
    assert (r.status, len(check_shape(s.MEDIA_LIST, r.json)["media"])) == (200, 1)
    r = await world.client.post(path, {"url": "https://e.com/b.mp4"}, token=world.tokens["bob"])
    assert (r.status, r.error()["code"]) == (403, "forbidden")
    assert "manage_media" in r.error()["message"]


@pytest_twisted.ensureDeferred
async def test_unknown_media_is_404(world):
    """GET/PATCH/DELETE of an unknown item, or one of another room, is 404."""
    room = await world.room()
    other = await world.room(name="other")
    item = await world.media(other)
    for ref in ("nope", item["id"]):
        path = f"/api/rooms/{room['id']}/media/{ref}"
        assert (await world.client.get(path, token=world.tokens["alice"])).status == 404
        assert (await world.client.patch(path, {"title": "x"}, token=world.tokens["alice"])).status == 404
        assert (await world.client.delete(path, token=world.tokens["alice"])).status == 404


@pytest_twisted.ensureDeferred
async def test_patch_media(world):
    """PATCH changes the named fields only; duration null makes it unknown; a bad url is 400."""
    room = await world.room()
    item = await world.media(room, duration=60)
    path = f"/api/rooms/{room['id']}/media/{item['id']}"
    r = await world.client.patch(path, {"title": "Renamed", "duration": None}, token=world.tokens["alice"])
    changed = check_shape(s.ONE_MEDIA, r.json)["media"]
    assert (changed["title"], changed["duration"], changed["url"]) == ("Renamed", None, item["url"])
    r = await world.client.patch(path, {"url": "javascript:alert(1)"}, token=world.tokens["alice"])
    assert (r.status, r.error()["field"]) == (400, "url")
    r = await world.client.patch(path, {"sort": 3}, token=world.tokens["alice"])
    assert (r.status, r.error()["field"]) == (400, "sort")


@pytest_twisted.ensureDeferred
async def test_reorder_media(world):
    """PUT order with every id once reorders; a partial or repeated list is 400 naming order."""
    room = await world.room()
    a, b, c = [await world.media(room, title=t) for t in "abc"]
    path = f"/api/rooms/{room['id']}/media/order"
    r = await world.client.put(path, {"order": [c["id"], a["id"], b["id"]]}, token=world.tokens["alice"])
    assert r.status == 200
    assert [m["title"] for m in check_shape(s.MEDIA_LIST, r.json)["media"]] == ["c", "a", "b"]
    r = await world.client.get(f"/api/rooms/{room['id']}/media", token=world.tokens["alice"])
    assert [m["title"] for m in r.json["media"]] == ["c", "a", "b"]
    for order, field in (([a["id"], b["id"]], "order"), ([a["id"], a["id"], b["id"]], "order[1]"),
                         ([a["id"], b["id"], "zzz"], "order")):
        r = await world.client.put(path, {"order": order}, token=world.tokens["alice"])
        assert (r.status, r.error()["field"]) == (400, field)


@pytest_twisted.ensureDeferred
async def test_playback_result_follows_the_client_profile(world):
    """GET .../playback lists the direct mode unless the profile rules it out."""
    room = await world.room()
    plain = await world.media(room, url="https://cdn.example/a.mp4")
    needs_headers = await world.media(room, url="https://cdn.example/b.m3u8", headers={"Referer": "https://x/"})
    base = f"/api/rooms/{room['id']}/media"
    r = await world.client.get(f"{base}/{plain['id']}/playback", token=world.tokens["alice"])
    result = check_shape(s.PLAYBACK_RESULT, r.json)
    assert (result["media_id"], result["provider"]) == (plain["id"], "direct")
    assert [(i["mode"], i["url"], i["format"]) for i in result["infos"]] == [
        ("direct", "https://cdn.example/a.mp4", "mp4")]
    r = await world.client.get(f"{base}/{plain['id']}/playback?formats=hls", token=world.tokens["alice"])
    assert r.json["infos"] == []
    r = await world.client.get(f"{base}/{needs_headers['id']}/playback?headers=0", token=world.tokens["alice"])
    assert r.json["infos"] == []
    r = await world.client.get(f"{base}/{needs_headers['id']}/playback?headers=1&formats=hls,mp4",
                               token=world.tokens["alice"])
    assert [i["headers"] for i in r.json["infos"]] == [{"Referer": "https://x/"}]


@pytest.mark.parametrize("query, field", [("modes=teleport", "modes"), ("headers=yes", "headers"),
                                          ("formats=", "formats"), ("modes=direct,,proxy", "modes")])
@pytest_twisted.ensureDeferred
async def test_bad_client_profile_is_400(world, query, field):
    """A bad profile parameter is a 400 naming the parameter."""
    room = await world.room()
    item = await world.media(room)
    r = await world.client.get(f"/api/rooms/{room['id']}/media/{item['id']}/playback?{query}",
                               token=world.tokens["alice"])
    assert (r.status, r.error()["field"]) == (400, field)


@pytest_twisted.ensureDeferred
async def test_playback_needs_membership(world):
    """A non-member cannot ask how to play a room's media."""
    room = await world.room()
    item = await world.media(room)
    r = await world.client.get(f"/api/rooms/{room['id']}/media/{item['id']}/playback", token=world.tokens["bob"])
    assert r.status == 403
