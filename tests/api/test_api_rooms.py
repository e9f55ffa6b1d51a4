"""Rooms, joining (with a room password) and members (roles, permissions, removal)."""

from __future__ import annotations

import pytest
import pytest_twisted

from synctv.api import schema as s
from tests.api.api_support import check_shape


@pytest_twisted.ensureDeferred
async def test_create_room_makes_the_caller_its_creator(world):
    """POST /api/rooms answers 201 {room, member}; the creator holds every permission."""
    r = await world.client.post("/api/rooms", {"name": "Movie night", "settings": {"theme": "dark"}},
                                token=world.tokens["alice"])
    assert r.status == 201
    body = check_shape(s.ROOM_AND_MEMBER, r.json)
    room, member = body["room"], body["member"]
    assert (room["name"], room["kind"], room["has_password"], room["settings"]) == (
        "Movie night", "watch", False, {"theme": "dark"})
    assert room["creator_id"] == world.users["alice"].id
    assert (member["role"], member["user_name"]) == ("creator", "alice")
    assert set(member["permissions"]) == set(s.PERMISSION_NAMES)
    state = await world.client.get(f"/api/rooms/{room['id']}/playback-state", token=world.tokens["alice"])
    assert check_shape(s.PLAYBACK_STATE, state.json)["version"] == 0


@pytest_twisted.ensureDeferred
async def test_rooms_are_listed_and_addressed_by_id_or_name(world):
    """GET /api/rooms lists rooms; GET /api/rooms/{room} takes an id or a (URL-encoded) name."""
    room = await world.room(name="Movie night")
    r = await world.client.get("/api/rooms", token=world.tokens["bob"])
    assert [x["id"] for x in check_shape(s.ROOMS, r.json)["rooms"]] == [room["id"]]
    for ref in (room["id"], "Movie%20night"):
        r = await world.client.get(f"/api/rooms/{ref}", token=world.tokens["bob"])
        assert r.status == 200
        body = check_shape(s.ROOM_AND_MAYBE_MEMBER, r.json)
        assert (body["room"]["id"], body["member"]) == (room["id"], None)
    r = await world.client.get("/api/rooms/nowhere", token=world.tokens["bob"])
    assert (r.status, r.error()["code"]) == (404, "not_found")


@pytest_twisted.ensureDeferred
async def test_names_with_percent_signs_and_unicode_are_addressable(world):
    """A room name is found however it is URL-encoded: '%', spaces and non-ASCII included."""
    from urllib.parse import quote

    for name in ("100% fun", "电影 之夜", "a+b?c#d"):
        room = await world.room(name=name)
        r = await world.client.get(f"/api/rooms/{quote(name, safe='')}", token=world.tokens["alice"])
        assert (r.status, r.json["room"]["id"]) == (200, room["id"]), name


@pytest_twisted.ensureDeferred
async def test_room_name_taken_is_409(world):
    """A second room with the same name is a conflict."""
    await world.room(name="lounge")
    r = await world.client.post("/api/rooms", {"name": "lounge"}, token=world.tokens["bob"])
    assert (r.status, r.error()["code"]) == (409, "conflict")


@pytest.mark.parametrize("body, field", [
    ({}, "name"),
    ({"name": ""}, "name"),
    ({"name": " padded"}, "name"),
    ({"name": "a/b"}, "name"),
    ({"name": "ok", "kind": "cinema"}, "kind"),
    ({"name": "ok", "settings": []}, "settings"),
    ({"name": "ok", "settings": {"blob": "x" * 17000}}, "settings"),
    ({"name": "ok", "settings": {"wait_s": 0}}, "settings.wait_s"),
    ({"name": "ok", "settings": {"wait_for_all": "on"}}, "settings.wait_for_all"),
    ({"name": "ok", "password": 1234}, "password"),
    ({"name": "ok", "colour": "red"}, "colour"),
])
@pytest_twisted.ensureDeferred
async def test_bad_room_bodies_name_the_field(world, body, field):
    """Bad POST /api/rooms bodies are 400 with the field named; no room appears."""
    r = await world.client.post("/api/rooms", body, token=world.tokens["alice"])
    assert (r.status, r.error()["field"]) == (400, field)
    assert await world.store.list_rooms() == []


@pytest_twisted.ensureDeferred
async def test_patch_room_needs_manage_room(world):
    """The creator renames and sets a password; a member without manage_room gets 403."""
    room = await world.room()
    await world.join("bob", room)
    r = await world.client.patch(f"/api/rooms/{room['id']}", {"name": "hall"}, token=world.tokens["bob"])
    assert (r.status, r.error()["code"]) == (403, "forbidden")
    r = await world.client.patch(f"/api/rooms/{room['id']}", {"name": "hall", "password": "sesame"},
                                 token=world.tokens["alice"])
    assert r.status == 200
    assert check_shape(s.ONE_ROOM, r.json)["room"]["name"] == "hall"
    assert r.json["room"]["has_password"] is True
    r = await world.client.patch("/api/rooms/hall", {"password": None}, token=world.tokens["alice"])
    assert r.json["room"]["has_password"] is False
    # a non-member is told to join first; a site admin may act anyway
    r = await world.client.patch("/api/rooms/hall", {"settings": {"a": 1}}, token=world.tokens["carol"])
    assert r.status == 403 and "join" in r.error()["message"]
    r = await world.client.patch("/api/rooms/hall", {"settings": {"a": 1}}, token=world.tokens["admin"])
    assert (r.status, r.json["room"]["settings"]) == (200, {"a": 1})


@pytest_twisted.ensureDeferred
async def test_rename_onto_a_taken_name_is_409(world):
    """PATCH name to another room's name is a conflict and changes nothing."""
    a = await world.room(name="a")
    await world.room(name="b")
    r = await world.client.patch(f"/api/rooms/{a['id']}", {"name": "b"}, token=world.tokens["alice"])
    assert r.status == 409
    assert (await world.store.get_room(a["id"])).name == "a"


@pytest_twisted.ensureDeferred
async def test_delete_room(world):
    """DELETE by a member without manage_room is 403; by the creator it removes the room."""
    room = await world.room()
    await world.join("bob", room)
    assert (await world.client.delete(f"/api/rooms/{room['id']}", token=world.tokens["bob"])).status == 403
    r = await world.client.delete(f"/api/rooms/{room['id']}", token=world.tokens["alice"])
    assert (r.status, check_shape(s.DELETED, r.json)) == (200, {"deleted": room["id"]})
    assert (await world.client.get(f"/api/rooms/{room['id']}", token=world.tokens["alice"])).status == 404


@pytest_twisted.ensureDeferred
async def test_join_with_room_password(world):
    """A password room: none or a wrong one is 403 naming password; the right one joins; the
    creator and site admins need none."""
    room = await world.room(password="sesame")
    path = f"/api/rooms/{room['id']}/join"
    r = await world.client.post(path, {}, token=world.tokens["bob"])
    assert (r.status, r.error()["field"]) == (403, "password")
    r = await world.client.post(path, {"password": "wrong"}, token=world.tokens["bob"])
    assert (r.status, r.error()["message"]) == (403, "wrong room password")
    assert await world.store.get_member(room["id"], world.users["bob"].id) is None
    r = await world.client.post(path, {"password": "sesame"}, token=world.tokens["bob"])
    assert r.status == 200
    member = check_shape(s.ROOM_AND_MEMBER, r.json)["member"]
    assert (member["role"], member["user_name"]) == ("member", "bob")
    assert set(member["permissions"]) == {"control_playback", "manage_media", "chat"}
    r = await world.client.post(path, None, token=world.tokens["admin"])
    assert r.status == 200
    r = await world.client.post(path, {}, token=world.tokens["alice"])
    assert (r.status, r.json["member"]["role"]) == (200, "creator")


@pytest_twisted.ensureDeferred
async def test_joining_again_keeps_the_role(world):
    """A second join is idempotent: it answers the existing membership, role kept."""
    room = await world.room()
    await world.join("bob", room)
    r = await world.client.patch(f"/api/rooms/{room['id']}/members/bob", {"role": "guest"},
                                 token=world.tokens["alice"])
    assert r.status == 200
    member = await world.join("bob", room)
    assert (member["role"], member["permissions"]) == ("guest", ["chat"])


@pytest_twisted.ensureDeferred
async def test_members_list_needs_membership(world):
    """GET members: members see the list in join order; a non-member gets 403."""
    room = await world.room()
    world.clock.advance(1000)
    await world.join("bob", room)
    r = await world.client.get(f"/api/rooms/{room['id']}/members", token=world.tokens["bob"])
    members = check_shape(s.MEMBERS, r.json)["members"]
    assert [m["user_name"] for m in members] == ["alice", "bob"]
    r = await world.client.get(f"/api/rooms/{room['id']}/members", token=world.tokens["carol"])
    assert (r.status, r.error()["code"]) == (403, "forbidden")


@pytest_twisted.ensureDeferred
async def test_role_and_permission_changes(world):
    """manage_members holders change roles (permissions reset to the role's defaults) and
    permissions; the new permissions take effect at once."""
    room = await world.room()
    await world.join("bob", room)
    await world.join("carol", room)
    path = f"/api/rooms/{room['id']}/members"
    # bob, a member, lacks manage_members
    r = await world.client.patch(f"{path}/carol", {"role": "admin"}, token=world.tokens["bob"])
    assert r.status == 403
    r = await world.client.patch(f"{path}/bob", {"role": "admin"}, token=world.tokens["alice"])
    member = check_shape(s.ONE_MEMBER, r.json)["member"]
    assert (member["role"], set(member["permissions"])) == ("admin", set(s.PERMISSION_NAMES))
    # now bob may demote carol and trim her permissions
    r = await world.client.patch(f"{path}/carol", {"permissions": ["chat"]}, token=world.tokens["bob"])
    assert (r.status, r.json["member"]["role"], r.json["member"]["permissions"]) == (200, "member", ["chat"])
    r = await world.client.patch(f"/api/rooms/{room['id']}/playback-state",
                                 {"action": "pause", "version": 0}, token=world.tokens["carol"])
    assert (r.status, r.error()["code"]) == (403, "forbidden")
    assert "control_playback" in r.error()["message"]


@pytest.mark.parametrize("body, field", [
    ({"role": "creator"}, "role"),
    ({"role": "owner"}, "role"),
    ({"permissions": ["fly"]}, "permissions[0]"),
    ({"permissions": ["chat", "chat"]}, "permissions[1]"),
    ({"permissions": "chat"}, "permissions"),
])
@pytest_twisted.ensureDeferred
async def test_bad_member_changes_name_the_field(world, body, field):
    """Nobody can be made creator; unknown or repeated permissions are 400 with the field."""
    room = await world.room()
    await world.join("bob", room)
    r = await world.client.patch(f"/api/rooms/{room['id']}/members/bob", body, token=world.tokens["alice"])
    assert (r.status, r.error()["field"]) == (400, field)


@pytest_twisted.ensureDeferred
async def test_creator_cannot_be_demoted_or_removed(world):
    """The creator's membership is fixed, even for site admins."""
    room = await world.room()
    path = f"/api/rooms/{room['id']}/members/alice"
    for token in (world.tokens["alice"], world.tokens["admin"]):
        assert (await world.client.patch(path, {"role": "guest"}, token=token)).status == 403
        assert (await world.client.delete(path, token=token)).status == 403
    assert (await world.store.get_member(room["id"], world.users["alice"].id)).role == "creator"


@pytest_twisted.ensureDeferred
async def test_remove_member_and_leave(world):
    """A member may leave; removing others needs manage_members; unknown members are 404."""
    room = await world.room()
    await world.join("bob", room)
    await world.join("carol", room)
    path = f"/api/rooms/{room['id']}/members"
    assert (await world.client.delete(f"{path}/carol", token=world.tokens["bob"])).status == 403
    r = await world.client.delete(f"{path}/bob", token=world.tokens["bob"])
    assert (r.status, r.json) == (200, {"deleted": world.users["bob"].id})
    r = await world.client.delete(f"{path}/{world.users['carol'].id}", token=world.tokens["alice"])
    assert r.status == 200
    assert (await world.client.delete(f"{path}/carol", token=world.tokens["alice"])).status == 404
    assert (await world.client.delete(f"{path}/nobody", token=world.tokens["alice"])).status == 404
    members = await world.store.list_members(room["id"])
    assert [m.user_id for m in members] == [world.users["alice"].id]


@pytest_twisted.ensureDeferred
async def test_wait_settings_are_checked_and_other_settings_kept(world):
    """settings.wait_for_all and settings.wait_s (the room waits for its slowest viewer) are checked
    on PATCH too; keys other parts own (settings.playlist) are kept as given."""
    room = await world.room()
    settings = {"playlist": "loop", "wait_for_all": False, "wait_s": 4.5}
    r = await world.client.patch(f"/api/rooms/{room['id']}", {"settings": settings}, token=world.tokens["alice"])
    assert (r.status, r.json["room"]["settings"]) == (200, settings)
    r = await world.client.patch(f"/api/rooms/{room['id']}", {"settings": {"wait_s": 600}}, token=world.tokens["alice"])
    assert (r.status, r.error()["field"]) == (400, "settings.wait_s")
    r = await world.client.get(f"/api/rooms/{room['id']}", token=world.tokens["alice"])
    assert r.json["room"]["settings"] == settings
