"""The display routes over real HTTP: screens, sessions, events, HTTP triggers with cooldowns and
force, the display page and the end of a show."""

from __future__ import annotations

from pathlib import Path

import pytest_twisted
from twisted.internet.defer import DeferredList

from synctv.core.displays import parse_networks
from tests.displays.support import next_message


async def add_display(show, name: str = "screen-1", who: str = "alice") -> dict:
    r = await show.world.client.post("/api/displays", {"name": name, "room": "wall"}, token=show.world.tokens[who])
    assert r.status == 201, r.raw
    return r.json["display"]


# -- screens --------------------------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_displays_are_managed_by_the_rooms_managers(show):
    """The room's creator and site admins manage its screens; other users neither see nor change them."""
    client, tokens = show.world.client, show.world.tokens
    display = await add_display(show)
    assert display["room_id"] == show.room["id"] and display["page"] == f"/display/{display['public_id']}"
    assert len(display["public_id"]) >= 20 and display["status"] == {"online": None}
    for who, count in (("alice", 1), ("admin", 1), ("bob", 0)):
        r = await client.get("/api/displays", token=tokens[who])
        assert len(r.json["displays"]) == count, who
    r = await client.get(f"/api/displays/{display['id']}", token=tokens["bob"])
    assert (r.status, r.error()["code"]) == (403, "forbidden")
    r = await client.post("/api/displays", {"name": "b", "room": "wall"}, token=tokens["bob"])
    assert r.status == 403
    r = await client.patch("/api/displays/screen-1", {"name": "lobby", "new_public_id": True}, token=tokens["alice"])
    assert r.status == 200 and r.json["display"]["name"] == "lobby"
    assert r.json["display"]["public_id"] != display["public_id"]
    r = await client.post(f"/api/displays/{display['public_id']}/session")
    assert r.status == 404  # the old address stopped working
    r = await client.delete("/api/displays/lobby", token=tokens["admin"])
    assert (r.status, r.json) == (200, {"deleted": display["id"]})


@pytest_twisted.ensureDeferred
async def test_screens_and_events_need_a_display_room(show):
    """A watch room cannot hold screens or events (400 naming the field)."""
    watch = await show.world.room(name="lounge")
    client, token = show.world.client, show.world.tokens["alice"]
    r = await client.post("/api/displays", {"name": "s", "room": watch["id"]}, token=token)
    assert (r.status, r.error()["field"]) == (400, "room")
    r = await client.post("/api/events", {"name": "e", "room": "lounge", "media": "x"}, token=token)
    assert (r.status, r.error()["field"]) == (400, "room")
    r = await client.post("/api/displays", {"name": "s", "room": "nowhere"}, token=token)
    assert r.status == 404


@pytest_twisted.ensureDeferred
async def test_a_session_gives_a_display_token_for_its_room(show):
    """The page's session: a display token, the room, where to listen, the idle image, the state."""
    display = await add_display(show)
    r = await show.world.client.post(f"/api/displays/{display['public_id']}/session")
    assert r.status == 200, r.raw
    session = r.json
    assert session["token"].startswith("dsp.") and session["room_id"] == show.room["id"]
    assert session["ws_url"] == f"/ws/rooms/{show.room['id']}"
    assert session["idle_image_url"] == "/admin/idle-image" and session["videos_url"] == "/api/videos"
    assert session["display"]["id"] == display["id"] and session["state"]["media_id"] is None
    assert session["server_time_ms"] == show.world.clock()
    r = await show.world.client.get("/api/videos", token=session["token"])
    assert (r.status, r.json) == (200, {"videos": []})
    # a display token is no user token
    r = await show.world.client.get("/api/rooms", token=session["token"])
    assert r.status == 401
    await show.world.client.delete(f"/api/displays/{display['id']}", token=show.world.tokens["alice"])
    r = await show.world.client.get("/api/videos", token=session["token"])
    assert (r.status, r.error()["code"]) == (401, "unauthorized")


@pytest_twisted.ensureDeferred
async def test_the_display_page_is_served_for_known_addresses(show, tmp_path: Path):
    """/display/{public_id} serves web/display.html (uncached); unknown addresses are 404."""
    (tmp_path / "display.html").write_text("<!doctype html><title>screen</title>")
    show.runtime.web_dir = tmp_path
    display = await add_display(show)
    r = await show.world.client.get(f"/display/{display['public_id']}")
    assert r.status == 200 and b"<title>screen</title>" in r.raw
    assert r.header("Content-Type").startswith("text/html") and r.header("Cache-Control") == "no-cache"
    r = await show.world.client.get("/display/not-a-display")
    assert (r.status, r.error()["code"]) == (404, "not_found")
    (tmp_path / "display.html").unlink()
    r = await show.world.client.get(f"/display/{display['public_id']}")
    assert r.status == 503


# -- events ---------------------------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_event_fields_are_checked(show):
    """Port and payload come together; payloads and networks are checked; names are unique."""
    client, token = show.world.client, show.world.tokens["alice"]
    base = {"name": "e", "room": "wall", "media": show.media["id"]}
    for extra, field in (({"udp_port": 7000}, "udp_payload"), ({"udp_payload": "GO"}, "udp_port"),
                         ({"udp_port": 7000, "udp_payload": "GO\n"}, "udp_payload"),
                         ({"allowed_sources": ["lan"]}, "allowed_sources"),
                         ({"udp_port": 70000, "udp_payload": "GO"}, "udp_port"),
                         ({"lead_ms": -1}, "lead_ms"), ({"cooldown_s": -1}, "cooldown_s")):
        r = await client.post("/api/events", {**base, **extra}, token=token)
        assert (r.status, r.error()["field"]) == (400, field), extra
    event = await show.event("e")
    assert (event["lead_ms"], event["cooldown_s"], event["udp_port"], event["status"]) == (5000, 5.0, None,
                                                                                          {"udp": "off"})
    r = await client.post("/api/events", base, token=token)
    assert (r.status, r.error()["code"]) == (409, "conflict")
    other = await show.world.room(name="other-wall", kind="display")
    foreign = await show.world.media(other)
    r = await client.post("/api/events", {**base, "name": "f", "media": foreign["id"]}, token=token)
    assert (r.status, r.error()["field"]) == (404, "media")
    r = await client.patch("/api/events/e", {"room": "other-wall"}, token=token)
    assert (r.status, r.error()["field"]) == (400, "media")
    r = await client.patch("/api/events/e", {"room": "other-wall", "media": foreign["id"]}, token=token)
    assert r.status == 200 and r.json["event"]["room_id"] == other["id"]
    r = await client.get("/api/events/e", token=show.world.tokens["bob"])
    assert r.status == 403


@pytest_twisted.ensureDeferred
async def test_an_event_may_name_an_uploaded_video(show, tmp_path: Path):
    """media = a video id: the room gets one upload item for it, reused by later events."""
    store = show.world.store
    from synctv.core.displays import Video

    video = await store.create_video(Video(id="v1", title="Intro", file_name="v1", size=10,
                                           content_type="video/mp4", format="mp4", duration=12.0))
    first = await show.event("one", media=video.id)
    second = await show.event("two", media=video.id)
    assert first["media_id"] == second["media_id"]
    item = await store.get_media(show.room["id"], first["media_id"])
    assert (item.provider, item.url, item.duration, item.title) == ("upload", "upload:v1", 12.0, "Intro")
    r = await show.world.client.get("/api/videos", token=show.world.tokens["bob"])
    assert r.json["videos"][0]["media_ids"] == [item.id]
    r = await show.world.client.delete("/api/videos/v1", token=show.world.tokens["admin"])
    assert (r.status, r.error()["code"]) == (409, "conflict")  # still played by the room


# -- HTTP triggers --------------------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_http_triggers_schedule_the_start(show):
    """GET and POST, by id and by name, need no account and answer the scheduled start."""
    event = await show.event(lead_ms=3000, cooldown_s=0)  # 0 turns the cooldown off
    client = show.world.client
    for method, path in (("GET", f"/trigger/{event['id']}"), ("POST", f"/trigger/{event['id']}"),
                         ("GET", "/trigger_by_name/show"), ("POST", "/trigger_by_name/show")):
        r = await client.request(method, path)
        assert r.status == 200, (method, path, r.raw)
        now = show.world.clock()
        assert r.json["at_ms"] == now + 3000 and r.json["starts_in_ms"] == 3000
        assert r.json["state"]["event_id"] == event["id"] and r.json["state"]["playing"] is True
        assert r.json["event"]["last_triggered_at"] == now
        show.world.clock.advance(1)
    r = await client.get("/trigger_by_name/nope")
    assert (r.status, r.error()["code"]) == (404, "not_found")
    r = await client.get("/trigger_by_name/show?force=maybe")
    assert (r.status, r.error()["field"]) == (400, "force")
    text = show.world.site.api.metrics.exposition().decode()
    assert 'synctv_triggers_total{result="started",source="http"} 4.0' in text


@pytest_twisted.ensureDeferred
async def test_the_cooldown_answers_429_with_retry_after(show):
    """Within the cooldown: 429, Retry-After in whole seconds; after it, the trigger passes."""
    await show.event(cooldown_s=10)
    client = show.world.client
    assert (await client.post("/trigger_by_name/show")).status == 200
    show.world.clock.advance(3500)
    r = await client.post("/trigger_by_name/show")
    assert (r.status, r.error()["code"], r.header("Retry-After")) == (429, "rate_limited", "7")
    assert r.error()["detail"] == {"retry_after": 7, "retry_after_ms": 6500}
    show.world.clock.advance(6500)
    assert (await client.post("/trigger_by_name/show")).status == 200


@pytest_twisted.ensureDeferred
async def test_force_needs_an_admin_or_a_lan_source(show):
    """force=1 is refused to anonymous and ordinary callers outside lan_networks, and passes for site
    admins and for sources inside lan_networks; without force the cooldown still holds."""
    await show.event(cooldown_s=60)
    client, tokens = show.world.client, show.world.tokens
    assert (await client.post("/trigger_by_name/show")).status == 200
    r = await client.post("/trigger_by_name/show?force=1")
    assert (r.status, r.error()["code"]) == (403, "forbidden")
    r = await client.post("/trigger_by_name/show?force=1", token=tokens["alice"])
    assert r.status == 403  # the room's creator, but not a site admin
    r = await client.post("/trigger_by_name/show?force=1", token=tokens["admin"])
    assert r.status == 200
    show.runtime.displays.lan_networks = parse_networks(["127.0.0.0/8"])
    r = await client.post("/trigger_by_name/show?force=1")
    assert r.status == 200
    r = await client.post("/trigger_by_name/show")
    assert r.status == 429


@pytest_twisted.ensureDeferred
async def test_allowed_sources_apply_to_http_triggers(show):
    """An event limited to 10.0.0.0/8 refuses 127.0.0.1, except for site admins."""
    await show.event(allowed_sources=["10.0.0.0/8"])
    r = await show.world.client.get("/trigger_by_name/show")
    assert (r.status, r.error()["code"]) == (403, "forbidden")
    r = await show.world.client.get("/trigger_by_name/show", token=show.world.tokens["admin"])
    assert r.status == 200


@pytest_twisted.ensureDeferred
async def test_racing_triggers_have_one_winner(show):
    """Eight triggers at once within one cooldown: one starts the show, seven get 429."""
    await show.event(cooldown_s=60)
    before = await show.state()
    answers = await DeferredList([show.world.client.post("/trigger_by_name/show") for _ in range(8)])
    statuses = sorted(r.status for _, r in answers)
    assert statuses == [200] + [429] * 7
    assert (await show.state())["version"] == before["version"] + 1


@pytest_twisted.ensureDeferred
async def test_an_event_whose_media_was_removed_cannot_fire(show):
    """Removing the media item leaves the event without media: triggers answer 409 naming media."""
    await show.event()
    await show.world.client.delete(f"/api/rooms/wall/media/{show.media['id']}", token=show.world.tokens["alice"])
    r = await show.world.client.get("/trigger_by_name/show")
    assert (r.status, r.error()["field"]) == (409, "media")
    r = await show.world.client.get("/api/events/show", token=show.world.tokens["alice"])
    assert r.json["event"]["media_id"] is None


@pytest_twisted.ensureDeferred
async def test_the_show_ends_and_the_state_says_ended(show):
    """When the media's duration has played, the state becomes ended at the end (screens go idle)."""
    item = await show.world.media(show.room, title="Short", duration=0.05)
    await show.event("short", media=item["id"], lead_ms=0)
    started = show.state_change()
    r = await show.world.client.get("/trigger_by_name/short")
    state = await started
    ended = await show.state_change()
    assert (ended["ended"], ended["playing"], ended["position"]) == (True, False, 0.05)
    assert ended["version"] == state["version"] + 1 and ended["at_ms"] == r.json["at_ms"] + 50
    assert ended["event_id"] == state["event_id"]
    assert await show.state() == ended


@pytest_twisted.ensureDeferred
async def test_events_changes_are_announced_to_other_nodes(show):
    """Creating an event publishes eventsChanged on the displays channel (other nodes rebind)."""
    message = next_message(show.world.bus, "displays", "eventsChanged")
    await show.event()
    assert (await message) == {"type": "eventsChanged"}
