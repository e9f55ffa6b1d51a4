"""The watch-together pages' server side: /room/{room} serves web/room.html for any reference, and
GET /api/lobby lists the home page's rooms (yours first, then those without a password)."""

from __future__ import annotations

import pytest_twisted

from synctv.api import schema as s
from tests.api.api_support import check_shape


@pytest_twisted.ensureDeferred
async def test_the_room_page_is_the_same_html_for_any_room(world):
    """/room/{room} answers web/room.html (uncached) without an account and whether or not the room
    exists: the page signs in by itself (inputs name, password, room_password), and the address
    reveals nothing."""
    await world.room(name="movie night")
    answers = [await world.client.get(path) for path in ("/room/movie%20night", "/room/no-such-room")]
    for r in answers:
        assert r.status == 200
        assert r.header("Content-Type").startswith("text/html")
        assert r.header("Cache-Control") == "no-cache"
        for needle in (b'name="name"', b'name="password"', b'name="room_password"', b"/js/room.js"):
            assert needle in r.raw
    assert answers[0].raw == answers[1].raw
    home = await world.client.get("/")
    assert b"/js/home.js" in home.raw and b'href="/admin/"' in home.raw


@pytest_twisted.ensureDeferred
async def test_the_lobby_lists_my_rooms_then_public_ones_with_what_plays(world):
    """alice sees her room first, then bob's public room, never bob's room with a password nor a
    display room; each with her membership, the state and the playing item's title. A site admin
    sees every watch room."""
    mine = await world.room(owner="alice", name="alice-room")
    public = await world.room(owner="bob", name="bob-public")
    await world.room(owner="bob", name="bob-secret", password="sesame")
    await world.room(owner="admin", name="wall", kind="display")
    item = await world.media(public, who="bob", title="Big Buck Bunny")
    r = await world.client.patch(f"/api/rooms/{public['id']}/playback-state",
                                 {"action": "media", "media_id": item["id"], "version": 0}, token=world.tokens["bob"])
    assert r.status == 200
    body = check_shape(s.LOBBY, (await world.client.get("/api/lobby", token=world.tokens["alice"])).json)
    rows = [(x["room"]["name"], x["member"]["role"] if x["member"] else None, x["title"]) for x in body["rooms"]]
    assert rows == [("alice-room", "creator", None), ("bob-public", None, "Big Buck Bunny")]
    assert body["rooms"][1]["state"]["media_id"] == item["id"]
    assert all(x["online"] == [] for x in body["rooms"])  # nobody is connected
    admin = (await world.client.get("/api/lobby", token=world.tokens["admin"])).json
    assert sorted(x["room"]["name"] for x in admin["rooms"]) == ["alice-room", "bob-public", "bob-secret"]
    assert mine["id"] in {x["room"]["id"] for x in admin["rooms"]}
