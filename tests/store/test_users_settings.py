"""Settings and users, on every backend (the ``store`` fixture is parametrized)."""

from __future__ import annotations

import attrs
import pytest
import pytest_twisted
from twisted.internet.defer import gatherResults

from synctv.core.errors import BadRequest, Conflict


@pytest_twisted.ensureDeferred
async def test_missing_setting_is_none(store):
    """A key never stored reads as None, not an error."""
    assert await store.get_setting("token_secret") is None


@pytest_twisted.ensureDeferred
async def test_put_setting_if_absent_keeps_the_first_value(store):
    """The first value stored wins; later calls fire with it and do not overwrite it."""
    assert await store.put_setting_if_absent("token_secret", "first") == "first"
    assert await store.put_setting_if_absent("token_secret", "second") == "first"
    assert await store.get_setting("token_secret") == "first"


@pytest_twisted.ensureDeferred
async def test_put_setting_if_absent_concurrent_callers_agree(store):
    """Callers racing to set one key all end up with the same stored value (one of theirs)."""
    values = [f"secret-{i}" for i in range(6)]
    results = await gatherResults([store.put_setting_if_absent("race", v) for v in values])
    assert len(set(results)) == 1
    assert results[0] in values
    assert await store.get_setting("race") == results[0]


@pytest_twisted.ensureDeferred
async def test_create_and_read_user(store, make):
    """A created user reads back equal by id and by name, with every field intact."""
    user = attrs.evolve(make.user_value("alice", role="admin"), token_generation=3)
    assert await store.create_user(user) == user
    assert await store.get_user(user.id) == user
    assert await store.get_user_by_name("alice") == user
    stored = await store.get_user(user.id)
    assert stored.password_hash == user.password_hash
    assert isinstance(stored.created_at, int) and stored.created_at > 2**31


@pytest_twisted.ensureDeferred
async def test_missing_user_is_none(store):
    """Unknown ids and names read as None; deleting or updating them reports not there."""
    assert await store.get_user("nope") is None
    assert await store.get_user_by_name("nobody") is None
    assert await store.update_user("nope", role="admin") is None
    assert await store.delete_user("nope") is False


@pytest_twisted.ensureDeferred
async def test_duplicate_user_name_is_a_conflict(store, make):
    """A second user with a taken name is refused with Conflict naming it; the first is untouched."""
    first = await make.user("alice")
    with pytest.raises(Conflict) as caught:
        await store.create_user(make.user_value("alice"))
    assert caught.value.message == "a user named 'alice' exists"
    assert caught.value.field == "name"
    assert await store.count_users() == 1
    assert await store.get_user_by_name("alice") == first


@pytest_twisted.ensureDeferred
async def test_duplicate_user_id_is_a_conflict(store, make):
    """Reusing an id is also a Conflict (and not reported as a name clash)."""
    first = await make.user("alice")
    with pytest.raises(Conflict) as caught:
        await store.create_user(attrs.evolve(make.user_value("bob"), id=first.id))
    assert "id" in caught.value.message


@pytest_twisted.ensureDeferred
async def test_list_and_count_users(store, make):
    """Users are listed in creation order and counted."""
    assert await store.list_users() == []
    assert await store.count_users() == 0
    users = [await make.user() for _ in range(3)]
    assert await store.list_users() == users
    assert await store.count_users() == 3


@pytest_twisted.ensureDeferred
async def test_update_user_changes_only_given_fields(store, make):
    """role and password_hash change only when given; bump_generation adds one each time."""
    user = await make.user("alice")
    updated = await store.update_user(user.id, role="admin")
    assert updated == attrs.evolve(user, role="admin")
    updated = await store.update_user(user.id, password_hash="new-hash", bump_generation=True)
    assert updated == attrs.evolve(user, role="admin", password_hash="new-hash", token_generation=1)
    assert (await store.update_user(user.id, bump_generation=True)).token_generation == 2
    assert await store.update_user(user.id) == await store.get_user(user.id)
    assert (await store.get_user(user.id)).password_hash == "new-hash"


@pytest_twisted.ensureDeferred
async def test_delete_user_removes_memberships_and_keeps_their_rooms(store, make):
    """Deleting a user drops their memberships; rooms and media they created stay, unattributed."""
    alice, bob = await make.user("alice"), await make.user("bob")
    room = await make.room(creator=alice)
    item = await make.media(room)
    other = await make.room(creator=bob)
    assert await store.delete_user(alice.id) is True
    assert await store.delete_user(alice.id) is False
    assert await store.get_user(alice.id) is None
    assert await store.get_member(room.id, alice.id) is None
    assert (await store.get_room(room.id)).creator_id is None
    assert (await store.get_media(room.id, item.id)).created_by is None
    assert (await store.get_room(other.id)).creator_id == bob.id
    assert [m.user_id for m in await store.list_members(other.id)] == [bob.id]


@pytest_twisted.ensureDeferred
async def test_text_the_databases_cannot_hold_is_a_bad_request(store, make):
    """NUL characters and lone surrogates are refused the same way on every backend."""
    for name in ("nul\x00name", "surrogate\ud800"):
        with pytest.raises(BadRequest):
            await store.create_user(make.user_value(name))
    assert await store.count_users() == 0


@pytest_twisted.ensureDeferred
async def test_check_constraint_is_a_bad_request(store, make):
    """A role outside the schema's list is refused as BadRequest, not a database traceback."""
    with pytest.raises(BadRequest):
        await store.create_user(make.user_value("eve", role="emperor"))
