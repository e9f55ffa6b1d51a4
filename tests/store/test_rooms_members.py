"""Rooms and room members, on every backend."""

from __future__ import annotations

import attrs
import pytest
import pytest_twisted

from synctv.core.errors import Conflict, NotFound
from synctv.core.models import Member
from synctv.core.permissions import Permission

NESTED = {
    "title": "Ciné-club 🎬 映画",
    "limits": {"max_members": 12, "ratio": 0.75, "flags": [True, False, None]},
    "tags": ["naïve", "Ελληνικά", {"deep": {"deeper": ["∞", ""]}}],
    "empty": {},
}


@pytest_twisted.ensureDeferred
async def test_create_room_makes_creator_member_and_playback(store, make):
    """Creating a room stores it, makes the creator a member and stores its initial playback state."""
    alice = await make.user("alice")
    room, creator, state = make.room_value(alice, "movies", settings={"autoplay": True})
    assert await store.create_room(room, creator, state) == room
    assert await store.get_room(room.id) == room
    assert await store.get_room_by_name("movies") == room
    assert await store.get_member(room.id, alice.id) == attrs.evolve(creator, user_name="alice")
    assert await store.get_playback(room.id) == state


@pytest_twisted.ensureDeferred
async def test_missing_room_is_none(store):
    """Unknown rooms read as None; update and delete report not there."""
    assert await store.get_room("nope") is None
    assert await store.get_room_by_name("nothing") is None
    assert await store.update_room("nope", name="x") is None
    assert await store.delete_room("nope") is False
    assert await store.list_members("nope") == []
    assert await store.get_member("nope", "nobody") is None


@pytest_twisted.ensureDeferred
async def test_duplicate_room_name_is_a_conflict_and_leaves_nothing_behind(store, make):
    """A taken room name is a Conflict; the refused room leaves no member or playback row."""
    alice = await make.user("alice")
    await make.room(creator=alice, name="x")
    room, creator, state = make.room_value(alice, "x")
    with pytest.raises(Conflict) as caught:
        await store.create_room(room, creator, state)
    assert caught.value.message == "a room named 'x' exists"
    assert len(await store.list_rooms()) == 1
    assert await store.get_playback(room.id) is None
    assert await store.get_member(room.id, alice.id) is None


@pytest_twisted.ensureDeferred
async def test_create_room_for_unknown_creator_is_not_found_and_atomic(store, make):
    """A creator who is not a user makes create_room fail with NotFound and store nothing."""
    ghost = make.user_value("ghost")  # never stored
    room, creator, state = make.room_value(ghost, "haunted")
    room = attrs.evolve(room, creator_id=None)
    with pytest.raises(NotFound):
        await store.create_room(room, creator, state)
    assert await store.get_room(room.id) is None
    assert await store.list_rooms() == []


@pytest_twisted.ensureDeferred
async def test_list_rooms_in_creation_order(store, make):
    """Rooms are listed oldest first."""
    rooms = [await make.room() for _ in range(3)]
    assert await store.list_rooms() == rooms


@pytest_twisted.ensureDeferred
async def test_update_room_fields(store, make):
    """Name, password hash (set and cleared with None) and settings change when given."""
    room = await make.room(name="before", settings={"a": 1})
    updated = await store.update_room(room.id, name="after", password_hash="pw-hash")
    assert updated == attrs.evolve(room, name="after", password_hash="pw-hash")
    assert updated.has_password
    updated = await store.update_room(room.id, password_hash=None, settings=NESTED)
    assert updated == attrs.evolve(room, name="after", password_hash=None, settings=NESTED)
    assert await store.update_room(room.id) == updated
    assert await store.get_room_by_name("before") is None


@pytest_twisted.ensureDeferred
async def test_renaming_a_room_to_a_taken_name_is_a_conflict(store, make):
    """update_room refuses a name another room has, and changes nothing."""
    await make.room(name="taken")
    room = await make.room(name="mine")
    with pytest.raises(Conflict) as caught:
        await store.update_room(room.id, name="taken", settings={"changed": True})
    assert caught.value.message == "a room named 'taken' exists"
    assert await store.get_room(room.id) == room


@pytest_twisted.ensureDeferred
async def test_json_settings_round_trip(store, make):
    """Room settings come back equal: unicode, nesting, floats, booleans and nulls."""
    room = await make.room(settings=NESTED)
    assert (await store.get_room(room.id)).settings == NESTED
    assert (await store.list_rooms())[0].settings == NESTED


@pytest_twisted.ensureDeferred
async def test_delete_room_cascades(store, make):
    """Deleting a room deletes its members, media and playback state, and nothing of other rooms."""
    room, other = await make.room(), await make.room()
    bob = await make.user("bob")
    await store.put_member(Member(room.id, bob.id, "member", Permission.chat, make.tick()))
    await make.media(room)
    await make.media(room)
    kept = await make.media(other)
    assert await store.delete_room(room.id) is True
    assert await store.get_room(room.id) is None
    for table in ("room_members", "media_items", "playback_states"):
        rows = await store.run_query(f"SELECT COUNT(*) FROM {table} WHERE room_id = ?", (room.id,))
        assert int(rows[0][0]) == 0, table
    assert await store.list_media(other.id) == [kept]
    assert await store.get_playback(other.id) is not None
    assert len(await store.list_members(other.id)) == 1
    assert await store.get_user(bob.id) is not None


@pytest_twisted.ensureDeferred
async def test_put_member_inserts_then_replaces_keeping_joined_at(store, make):
    """put_member adds a member, and on a second call replaces role and permissions only."""
    room = await make.room()
    bob = await make.user("bob")
    joined = make.tick()
    first = await store.put_member(Member(room.id, bob.id, "guest", Permission.chat, joined))
    assert first == Member(room.id, bob.id, "guest", Permission.chat, joined, user_name="bob")
    perms = Permission.chat | Permission.manage_media
    second = await store.put_member(Member(room.id, bob.id, "admin", perms, joined + 5000))
    assert second == Member(room.id, bob.id, "admin", perms, joined, user_name="bob")
    assert await store.get_member(room.id, bob.id) == second
    assert isinstance(second.permissions, Permission)


@pytest_twisted.ensureDeferred
async def test_list_members_in_join_order_with_names(store, make):
    """Members come in join order with user_name filled in."""
    alice = await make.user("alice")
    room = await make.room(creator=alice)
    later = [await make.user(name) for name in ("carol", "bob")]
    for user in later:
        await store.put_member(Member(room.id, user.id, "member", Permission.chat, make.tick()))
    members = await store.list_members(room.id)
    assert [m.user_name for m in members] == ["alice", "carol", "bob"]
    assert [m.role for m in members] == ["creator", "member", "member"]


@pytest_twisted.ensureDeferred
async def test_delete_member(store, make):
    """delete_member removes one membership and reports whether there was one."""
    room = await make.room()
    bob = await make.user("bob")
    await store.put_member(Member(room.id, bob.id, "member", Permission.chat, make.tick()))
    assert await store.delete_member(room.id, bob.id) is True
    assert await store.delete_member(room.id, bob.id) is False
    assert await store.get_member(room.id, bob.id) is None
    assert await store.get_user(bob.id) is not None


@pytest_twisted.ensureDeferred
async def test_put_member_of_unknown_room_or_user_is_not_found(store, make):
    """A membership must name an existing room and user."""
    room = await make.room()
    bob = await make.user("bob")
    with pytest.raises(NotFound):
        await store.put_member(Member("no-room", bob.id, "member", Permission.chat, make.tick()))
    with pytest.raises(NotFound):
        await store.put_member(Member(room.id, "no-user", "member", Permission.chat, make.tick()))
    assert len(await store.list_members(room.id)) == 1
