"""Users: site admins manage them; a user sees and changes (password only) themselves; root is
protected."""

from __future__ import annotations

import pytest
import pytest_twisted

from synctv.api import schema as s
from tests.api.api_support import PASSWORD, check_shape


@pytest_twisted.ensureDeferred
async def test_admin_lists_and_creates_users(world):
    """GET/POST /api/users for a site admin; the new user can log in with the given password."""
    r = await world.client.get("/api/users", token=world.tokens["admin"])
    assert r.status == 200
    names = {u["name"] for u in check_shape(s.USERS, r.json)["users"]}
    assert names == {"root", "admin", "alice", "bob", "carol"}
    r = await world.client.post("/api/users", {"name": "dave", "password": "dave-secret"},
                                token=world.tokens["admin"])
    assert r.status == 201
    user = check_shape(s.ONE_USER, r.json)["user"]
    assert (user["name"], user["role"], user["created_at"]) == ("dave", "user", world.clock())
    login = await world.client.post("/api/auth/login", {"name": "dave", "password": "dave-secret"})
    assert login.status == 200


@pytest_twisted.ensureDeferred
async def test_admins_may_create_admins_but_nobody_a_second_root(world):
    """role admin is accepted from an admin; role root is a 400 naming the field."""
    r = await world.client.post("/api/users", {"name": "eve", "password": "eve-secret", "role": "admin"},
                                token=world.tokens["admin"])
    assert (r.status, r.json["user"]["role"]) == (201, "admin")
    r = await world.client.post("/api/users", {"name": "mallory", "password": "12345678", "role": "root"},
                                token=world.tokens["root"])
    assert (r.status, r.error()["field"]) == (400, "role")


@pytest_twisted.ensureDeferred
async def test_plain_users_cannot_manage_users(world):
    """A non-admin gets 403 for listing, creating and deleting users."""
    token = world.tokens["alice"]
    assert (await world.client.get("/api/users", token=token)).status == 403
    r = await world.client.post("/api/users", {"name": "x", "password": "12345678"}, token=token)
    assert (r.status, r.error()["code"]) == (403, "forbidden")
    assert (await world.client.delete("/api/users/bob", token=token)).status == 403


@pytest_twisted.ensureDeferred
async def test_taken_name_is_a_conflict(world):
    """Creating a user with an existing name answers 409 conflict."""
    r = await world.client.post("/api/users", {"name": "alice", "password": "12345678"},
                                token=world.tokens["admin"])
    assert (r.status, r.error()["code"]) == (409, "conflict")


@pytest.mark.parametrize("body, field", [
    ({"name": "a b", "password": "12345678"}, "name"),
    ({"name": "a/b", "password": "12345678"}, "name"),
    ({"name": "x" * 65, "password": "12345678"}, "name"),
    ({"name": "dave", "password": "short"}, "password"),
    ({"name": "dave"}, "password"),
    ({"name": 5, "password": "12345678"}, "name"),
    ({"name": "dave", "password": "12345678", "role": True}, "role"),
    ({"name": "dave", "password": "12345678", "admin": True}, "admin"),
])
@pytest_twisted.ensureDeferred
async def test_bad_user_bodies_name_the_field(world, body, field):
    """Each bad user body is a 400 whose ``field`` names what is wrong; nothing is created."""
    r = await world.client.post("/api/users", body, token=world.tokens["admin"])
    assert (r.status, r.error()["field"]) == (400, field)
    assert len(await world.store.list_users()) == 5


@pytest_twisted.ensureDeferred
async def test_users_are_addressed_by_id_or_name(world):
    """GET /api/users/{user} finds a user by id and by name; unknown is 404."""
    bob = world.users["bob"]
    for ref in (bob.id, "bob"):
        r = await world.client.get(f"/api/users/{ref}", token=world.tokens["admin"])
        assert (r.status, r.json["user"]["id"]) == (200, bob.id)
    r = await world.client.get("/api/users/nobody", token=world.tokens["admin"])
    assert (r.status, r.error()["code"]) == (404, "not_found")


@pytest_twisted.ensureDeferred
async def test_a_user_sees_only_themselves(world):
    """A plain user may GET their own record (by id or name) but not another's (403)."""
    alice = world.users["alice"]
    for ref in (alice.id, "alice"):
        assert (await world.client.get(f"/api/users/{ref}", token=world.tokens["alice"])).status == 200
    assert (await world.client.get("/api/users/bob", token=world.tokens["alice"])).status == 403


@pytest_twisted.ensureDeferred
async def test_a_user_changes_their_password_which_revokes_old_tokens(world):
    """PATCH own password: old tokens stop working, the new password logs in, the old does not."""
    r = await world.client.patch("/api/users/alice", {"password": "new-password"}, token=world.tokens["alice"])
    assert r.status == 200
    check_shape(s.ONE_USER, r.json)
    assert (await world.client.get("/api/auth/me", token=world.tokens["alice"])).status == 401
    old = await world.client.post("/api/auth/login", {"name": "alice", "password": PASSWORD})
    assert old.status == 401
    new = await world.client.post("/api/auth/login", {"name": "alice", "password": "new-password"})
    assert new.status == 200


@pytest_twisted.ensureDeferred
async def test_a_user_cannot_change_roles_or_others(world):
    """A plain user may not promote themselves nor touch another user."""
    r = await world.client.patch("/api/users/alice", {"role": "admin"}, token=world.tokens["alice"])
    assert (r.status, r.error()["field"]) == (403, "role")
    r = await world.client.patch("/api/users/bob", {"password": "12345678"}, token=world.tokens["alice"])
    assert r.status == 403
    assert (await world.store.get_user(world.users["alice"].id)).role == "user"


@pytest_twisted.ensureDeferred
async def test_admin_promotes_and_demotes(world):
    """A site admin changes a user's role both ways; the change shows in the next request."""
    r = await world.client.patch("/api/users/bob", {"role": "admin"}, token=world.tokens["admin"])
    assert (r.status, r.json["user"]["role"]) == (200, "admin")
    assert (await world.client.get("/api/users", token=world.tokens["bob"])).status == 200
    r = await world.client.patch("/api/users/bob", {"role": "user"}, token=world.tokens["admin"])
    assert r.json["user"]["role"] == "user"
    assert (await world.client.get("/api/users", token=world.tokens["bob"])).status == 403


@pytest_twisted.ensureDeferred
async def test_root_is_protected(world):
    """Nobody deletes or demotes root; only root changes root's password."""
    token = world.tokens["admin"]
    assert (await world.client.delete("/api/users/root", token=token)).status == 403
    assert (await world.client.delete("/api/users/root", token=world.tokens["root"])).status == 403
    r = await world.client.patch("/api/users/root", {"role": "user"}, token=world.tokens["root"])
    assert r.status == 403
    r = await world.client.patch("/api/users/root", {"password": "hijacked!"}, token=token)
    assert (r.status, r.error()["field"]) == (403, "password")
    r = await world.client.patch("/api/users/root", {"password": "rotated-pw"}, token=world.tokens["root"])
    assert r.status == 200
    assert (await world.store.get_user(world.users["root"].id)).role == "root"


@pytest_twisted.ensureDeferred
async def test_delete_user(world):
    """An admin deletes a user (answer names the id) but not themselves; a second delete is 404."""
    bob = world.users["bob"]
    r = await world.client.delete("/api/users/bob", token=world.tokens["admin"])
    assert (r.status, check_shape(s.DELETED, r.json)) == (200, {"deleted": bob.id})
    assert await world.store.get_user(bob.id) is None
    assert (await world.client.delete(f"/api/users/{bob.id}", token=world.tokens["admin"])).status == 404
    r = await world.client.delete("/api/users/admin", token=world.tokens["admin"])
    assert (r.status, r.error()["code"]) == (403, "forbidden")
