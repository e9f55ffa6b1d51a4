"""Alist end to end over loopback: link an account (a wrong password is a 400 with Alist's reason),
browse (an empty folder's ``content: null`` is an empty list), add a file, import a folder, and
play through the proxy with Range, with the User-Agent the link was made for."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest_twisted


@pytest_twisted.ensureDeferred
async def test_link_browse_add_and_play_through_the_proxy(pw, media):
    account = await pw.link("alist")
    assert account["kind"] == "alist" and account["status"] == "ok" and "password" not in account
    r = await pw.call("GET", f"/api/me/accounts/{account['id']}/browse?path=/movies")
    assert r.status == 200, r.raw
    items = {i["title"]: i for i in r.json["items"]}
    assert set(items) == {"film.mp4", "second.mp4", "extras"}
    assert items["film.mp4"]["playable"] and items["film.mp4"]["kind"] == "video"
    assert items["extras"]["kind"] == "folder" and not items["extras"]["playable"]
    r = await pw.call("GET", f"/api/me/accounts/{account['id']}/browse?path=/empty")
    assert (r.status, r.json["items"]) == (200, [])

    room = await pw.room("alice")
    item = await pw.add(room, {"provider": "alist", "provider_data": {"account": account["id"],
                                                                      "item": "/movies/film.mp4"}})
    assert item["title"] == "film.mp4" and item["provider_data"]["item"] == "/movies/film.mp4"
    r = await pw.playback(room, item, query="?modes=proxy")
    assert r.status == 200, r.raw
    [info] = r.json["infos"]
    assert info["mode"] == "proxy" and info["format"] == "mp4" and info["headers"] == {}
    data = media["video.mp4"].read_bytes()
    got = await pw.client.request("GET", info["url"], headers={"Range": "bytes=100-1099"})
    assert got.status == 206 and got.raw == data[100:1100]
    # The fake refuses /d/ for any User-Agent but the one that asked fs/get for the link (a 403
    # would have failed the read above); the link was asked with synctv's own, not an empty one.
    assert pw.fakes.alist.link_agents["/movies/film.mp4"].startswith("synctv")
    [subtitle] = info["subtitles"]
    assert subtitle["format"] == "vtt" and urlsplit(subtitle["url"]).path.endswith("/subtitle/0.vtt")
    vtt = await pw.client.request("GET", subtitle["url"])
    assert vtt.status == 200 and vtt.raw.startswith(b"WEBVTT") and b"00:00:00.500 --> 00:00:01.500" in vtt.raw


@pytest_twisted.ensureDeferred
async def test_wrong_password_is_a_400_with_alists_reason(pw):
    r = await pw.call("POST", "/api/me/accounts", body={**pw.credentials("alist"), "kind": "alist",
                                                         "password": "wrong"})
    assert r.status == 400, r.raw
    assert "password is incorrect" in r.error()["message"] and r.error()["field"] == "password"


@pytest_twisted.ensureDeferred
async def test_thumbnails_come_through_this_server_only_as_images(pw):
    """Browse lists a thumbnail URL on this server; the item's image route takes ?token= for <img>;
    an upstream that answers something other than a raster image is a 502."""
    account = await pw.link("alist")
    r = await pw.call("GET", f"/api/me/accounts/{account['id']}/browse?path=/movies")
    film = next(i for i in r.json["items"] if i["title"] == "film.mp4")
    assert film["thumbnail"].startswith(f"/api/me/accounts/{account['id']}/thumbnail?item=")
    image = await pw.call("GET", film["thumbnail"])
    assert image.status == 200 and image.header("content-type") == "image/png"
    assert image.header("content-security-policy").startswith("default-src 'none'")
    assert (await pw.call("GET", film["thumbnail"], "bob")).status == 404  # not bob's account
    room = await pw.room("alice")
    item = await pw.add(room, {"provider": "alist", "provider_data": {"account": account["id"],
                                                                      "item": "/movies/film.mp4"}})
    path = f"/api/rooms/{room['id']}/media/{item['id']}/thumbnail"
    image = await pw.client.request("GET", f"{path}?token={pw.tokens['alice']}")
    assert image.status == 200 and image.raw.startswith(b"\x89PNG")
    assert (await pw.client.request("GET", path)).status == 401
    assert (await pw.call("GET", path, "bob")).status == 403  # not a member of the room
    pw.fakes.alist.thumb_type = "text/html"  # a hostile upstream would have this origin serve a page
    hostile = await pw.call("GET", path)
    assert hostile.status == 502 and "not a JPEG" in hostile.error()["message"]


@pytest_twisted.ensureDeferred
async def test_import_a_folder_adds_its_playable_files_in_order(pw):
    """``media/import`` of an Alist folder adds its video files in the folder's order; subfolders,
    subtitles and other files are left out; an empty folder is a clear 400, not an empty import."""
    account = await pw.link("alist")
    room = await pw.room("alice")
    path = f"/api/rooms/{room['id']}/media/import"
    r = await pw.call("POST", path, body={"provider": "alist", "provider_data": {"account": account["id"],
                                                                                "item": "/movies"}})
    assert r.status == 201, r.raw
    assert [(m["title"], m["provider"], m["provider_data"]["item"]) for m in r.json["media"]] == [
        ("film.mp4", "alist", "/movies/film.mp4"), ("second.mp4", "alist", "/movies/second.mp4")]
    playlist = (await pw.call("GET", f"/api/rooms/{room['id']}/media")).json["media"]
    assert [m["title"] for m in playlist] == ["film.mp4", "second.mp4"]
    r = await pw.call("POST", path, body={"provider": "alist", "provider_data": {"account": account["id"],
                                                                                "item": "/empty"}})
    assert r.status == 400 and "nothing playable" in r.error()["message"], r.raw
