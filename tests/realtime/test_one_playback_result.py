"""One PlaybackResult: the WebSocket ``playback`` message carries exactly what
``GET /api/rooms/{room}/media/{media}/playback`` answers for the same user and profile (issue 9,
part 4), and header values (an upstream's cookies and tokens) reach only members who manage
media and whose client can send headers (part 5)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest_twisted

SECRET_COOKIE = "session=hunter2"
PROFILES: list[dict[str, Any]] = [
    {}, {"headers": True}, {"headers": False}, {"modes": ["proxy"]}, {"modes": ["direct"], "headers": True},
    {"modes": ["flv", "hls"]}, {"formats": ["mp4"]},
]


def _query(profile: dict[str, Any]) -> str:
    query = {}
    for name in ("modes", "formats"):
        if name in profile:
            query[name] = ",".join(profile[name])
    if "headers" in profile:
        query["headers"] = "1" if profile["headers"] else "0"
    return "?" + urlencode(query) if query else ""


async def _room_with_items(rt: Any) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    world = rt.world
    room = await world.room("alice", name="cinema")
    await world.join("carol", room)
    r = await world.client.patch(f"/api/rooms/{room['id']}/members/carol", {"role": "guest"},
                                 token=world.tokens["alice"])
    assert r.status == 200, r.raw
    bodies = {
        "direct": {"url": "https://cdn.example/plain.mp4", "title": "plain"},
        "secret": {"url": "https://cdn.example/private.mp4", "title": "private",
                   "headers": {"Cookie": SECRET_COOKIE, "Referer": "https://cdn.example/"},
                   "subtitles": [{"name": "en", "url": "https://cdn.example/en.vtt",
                                  "headers": {"Cookie": SECRET_COOKIE}}]},
        "subtitled": {"url": "https://cdn.example/sub.mp4", "title": "sub",
                      "subtitles": [{"name": "fr", "url": "https://cdn.example/fr.vtt"},
                                    {"name": "de", "url": "https://cdn.example/de.vtt",
                                     "headers": {"Authorization": "Bearer upstream-token"}}]},
        "live": {"provider": "rtmp", "title": "cam"},
    }
    items = {}
    for name, body in bodies.items():
        r = await world.client.post(f"/api/rooms/{room['id']}/media", body, token=world.tokens["alice"])
        assert r.status == 201, r.raw
        items[name] = r.json["media"]
    return room, items


async def _select(rt: Any, room: dict[str, Any], media_id: str) -> None:
    world = rt.world
    state = (await world.client.get(f"/api/rooms/{room['id']}/playback-state", token=world.tokens["alice"])).json
    r = await world.client.patch(f"/api/rooms/{room['id']}/playback-state",
                                 {"action": "media", "media_id": media_id, "version": state["version"]},
                                 token=world.tokens["alice"])
    assert r.status == 200, r.raw


@pytest_twisted.ensureDeferred
async def test_websocket_playback_equals_the_http_answer_for_every_item_user_and_profile(rt):
    """For direct, proxy (headers needed), subtitled and live items, as the room's creator and as a
    guest, under every profile: the WebSocket ``playback`` result is the HTTP answer, byte for
    byte (signed, expiring URLs; the clock stands still, so the expiries match)."""
    room, items = await _room_with_items(rt)
    world = rt.world
    clients = {who: await rt.ws(who, room["id"]) for who in ("alice", "carol")}
    compared = 0
    for name, item in items.items():
        await _select(rt, room, item["id"])
        for who, client in clients.items():
            for i, profile in enumerate(PROFILES):
                http = await world.client.get(f"/api/rooms/{room['id']}/media/{item['id']}/playback"
                                              f"{_query(profile)}", token=world.tokens[who])
                assert http.status == 200, http.raw
                reply = await rt.observe(client, "playback", rid=f"{name}-{i}", profile=profile)
                assert reply["type"] == "playback", reply
                assert json.dumps(reply["result"], sort_keys=True) == json.dumps(http.json, sort_keys=True), \
                    (name, who, profile)
                compared += 1
                for info in http.json["infos"]:
                    if info["mode"] in ("proxy", "flv", "hls"):
                        assert info["expires_at"] is not None and ("sig=" in info["url"] or "s=" in info["url"])
                        assert info["headers"] == {}
                        assert "cdn.example" not in info["url"]
    assert compared == len(items) * 2 * len(PROFILES)


@pytest_twisted.ensureDeferred
async def test_header_values_reach_only_members_who_manage_media(rt):
    """A guest sees the header names of an item, never their values, in the playlist, the item,
    any PlaybackResult (any profile) and the WebSocket; the creator sees the values, and gets
    a direct entry with them only when the client says headers=1."""
    room, items = await _room_with_items(rt)
    world = rt.world
    base = f"/api/rooms/{room['id']}/media"
    guest_answers = [
        (await world.client.get(base, token=world.tokens["carol"])).raw,
        (await world.client.get(f"{base}/{items['secret']['id']}", token=world.tokens["carol"])).raw,
    ]
    await _select(rt, room, items["secret"]["id"])
    client = await rt.ws("carol", room["id"])
    for i, profile in enumerate(PROFILES):
        r = await world.client.get(f"{base}/{items['secret']['id']}/playback{_query(profile)}",
                                   token=world.tokens["carol"])
        guest_answers.append(r.raw)
        assert all(info["mode"] != "direct" for info in r.json["infos"]), profile
        guest_answers.append(json.dumps(await rt.observe(client, "playback", rid=f"p{i}", profile=profile)).encode())
    guest_answers.extend(json.dumps(m).encode() for m in client.skipped + client.pending())
    for raw in guest_answers:
        assert SECRET_COOKIE.encode() not in raw and b"upstream-token" not in raw
    listed = json.loads(guest_answers[0])["media"]
    secret = next(m for m in listed if m["id"] == items["secret"]["id"])
    assert secret["headers"] == {} and secret["header_names"] == ["Cookie", "Referer"]
    assert secret["subtitles"][0]["headers"] == {}

    owner = (await world.client.get(f"{base}/{items['secret']['id']}", token=world.tokens["alice"])).json["media"]
    assert owner["headers"]["Cookie"] == SECRET_COOKIE and owner["header_names"] == ["Cookie", "Referer"]
    direct = await world.client.get(f"{base}/{items['secret']['id']}/playback?headers=1", token=world.tokens["alice"])
    assert [i["mode"] for i in direct.json["infos"]] == ["direct", "proxy"]
    assert direct.json["infos"][0]["headers"]["Cookie"] == SECRET_COOKIE
    unsaid = await world.client.get(f"{base}/{items['secret']['id']}/playback", token=world.tokens["alice"])
    assert [i["mode"] for i in unsaid.json["infos"]] == ["proxy"]  # headers not declared: no values

    subtitled = await world.client.get(f"{base}/{items['subtitled']['id']}/playback?modes=direct",
                                       token=world.tokens["carol"])
    [info] = subtitled.json["infos"]
    assert [s["name"] for s in info["subtitles"]] == ["fr"]  # the one needing a token is left out
