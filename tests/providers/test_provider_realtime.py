"""Provider items over the WebSocket: the ``playback`` message equals the HTTP answer for every
provider, user and profile; Bilibili's danmaku arrive as the room plays, at their positions."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest_twisted

PROFILES: list[dict[str, Any]] = [{}, {"headers": True}, {"headers": False}, {"modes": ["proxy"]},
                                  {"modes": ["proxy", "hls"], "formats": ["mp4", "hls"], "headers": False}]


def _query(profile: dict[str, Any]) -> str:
    query = {name: ",".join(profile[name]) for name in ("modes", "formats") if name in profile}
    if "headers" in profile:
        query["headers"] = "1" if profile["headers"] else "0"
    return "?" + urlencode(query) if query else ""


def _steady(result: Any) -> str:
    """The result without what moves with the clock: a signed URL's expiry and signature."""

    def url(value: str) -> str:
        parts = urlsplit(value)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("e", "s")]
        return urlunsplit(parts._replace(query=urlencode(query)))

    infos = []
    for info in result["infos"]:
        infos.append({**info, "url": url(info["url"]), "expires_at": info["expires_at"] is not None,
                      "subtitles": [{**s, "url": url(s["url"])} for s in info["subtitles"]]})
    return json.dumps({**result, "infos": infos}, sort_keys=True)


async def _select(pw, room, media_id, who="alice"):
    state = (await pw.call("GET", f"/api/rooms/{room['id']}/playback-state", who)).json
    r = await pw.call("PATCH", f"/api/rooms/{room['id']}/playback-state", who,
                      {"action": "media", "media_id": media_id, "version": state["version"]})
    assert r.status == 200, r.raw
    return r.json


@pytest_twisted.ensureDeferred
async def test_websocket_playback_equals_http_for_every_provider(pw):
    """Alice (who added the items, manage_media) and Bob (a member) get over the WebSocket what
    HTTP answers, for items of every provider and every profile."""
    room = await pw.room("alice")
    await pw.join("bob", room)
    items = []
    for kind in ("alist", "emby", "jellyfin"):
        account = await pw.link(kind, share_direct=True)
        ref = "/movies/film.mp4" if kind == "alist" else getattr(pw.fakes, kind).ids["film"]
        items.append(await pw.add(room, {"provider": kind, "provider_data": {"account": account["id"], "item": ref}}))
    items.append(await pw.add(room, {"provider": "bilibili", "url": "BV1y7411Q7Eq"}))
    clients = {who: await pw.ws(who, room["id"]) for who in ("alice", "bob")}
    compared = 0
    for item in items:
        await _select(pw, room, item["id"])
        for who, client in clients.items():
            for i, profile in enumerate(PROFILES):
                http = await pw.playback(room, item, who, _query(profile))
                assert http.status == 200, http.raw
                reply = await client.request({"type": "observe", "id": f"{item['id']}-{i}", "resource": "playback",
                                              "profile": profile})
                assert reply["type"] == "playback", reply
                assert _steady(reply["result"]) == _steady(http.json), (item["provider"], who, profile)
                compared += 1
    assert compared == len(items) * 2 * len(PROFILES)


@pytest_twisted.ensureDeferred
async def test_bilibili_danmaku_arrive_as_the_video_plays(pw):
    """Observers of ``chat`` get each danmaku once the room's position reaches it (never before),
    in order; a seek back does not replay those before the seek point."""
    room = await pw.room("alice")
    item = await pw.add(room, {"provider": "bilibili", "url": "BV1y7411Q7Eq"})
    client = await pw.ws("alice", room["id"])
    await client.request({"type": "observe", "id": "c", "resource": "chat"})
    state = await _select(pw, room, item["id"])
    r = await pw.call("PATCH", f"/api/rooms/{room['id']}/playback-state", "alice",
                      {"action": "play", "position": 0, "version": state["version"]})
    assert r.status == 200, r.raw
    played = r.json
    seen = []
    for _ in range(4):
        message = await client.next_of("danmaku")
        now = pw.clock()
        position = played["position"] + (now - played["at_ms"]) / 1000 * played["rate"]
        assert message["at"] <= position + 0.001, (message, position)  # never early
        assert message["from"] == {"user_id": "", "user_name": "bilibili"} and message["source"] == "bilibili"
        seen.append((message["at"], message["text"]))
    assert seen == [(0.2, "first!"), (0.6, "at 0.6"), (1.1, "<b>& one</b>"), (1.7, "late one")]
    r = await pw.call("PATCH", f"/api/rooms/{room['id']}/playback-state", "alice",
                      {"action": "seek", "position": 1.0, "version": r.json["version"]})
    assert r.status == 200, r.raw
    message = await client.next_of("danmaku")
    assert (message["at"], message["text"]) == (1.1, "<b>& one</b>")
    assert pw.fakes.bilibili.calls["GET /x/v1/dm/list.so"] == 1  # read once, kept for the item
