"""Login, the caller, token revocation, and every way a token can be refused (401)."""

from __future__ import annotations

import pytest
import pytest_twisted

from synctv.api import schema as s
from synctv.core import auth
from tests.api.api_support import PASSWORD, check_shape


@pytest_twisted.ensureDeferred
async def test_login_answers_a_working_token(world):
    """POST /api/auth/login with the right password gives a token that /api/auth/me accepts."""
    r = await world.client.post("/api/auth/login", {"name": "alice", "password": PASSWORD})
    assert r.status == 200
    assert r.header("Content-Type") == "application/json; charset=utf-8"
    body = check_shape(s.LOGIN_RESULT, r.json)
    assert body["user"]["name"] == "alice" and body["user"]["role"] == "user"
    assert body["expires_at"] == world.clock() + auth.TOKEN_TTL_MS
    me = await world.client.get("/api/auth/me", token=body["token"])
    assert me.status == 200
    assert check_shape(s.ONE_USER, me.json)["user"]["id"] == world.users["alice"].id


@pytest.mark.parametrize("name, password", [("alice", "wrong password"), ("nobody", PASSWORD)])
@pytest_twisted.ensureDeferred
async def test_login_refuses_wrong_credentials_alike(world, name, password):
    """A wrong password and an unknown name give the same 401, so names cannot be probed."""
    r = await world.client.post("/api/auth/login", {"name": name, "password": password})
    assert r.status == 401
    assert r.error() == {"code": "unauthorized", "message": "wrong name or password"}
    assert r.header("WWW-Authenticate") == 'Bearer realm="synctv"'


@pytest_twisted.ensureDeferred
async def test_login_body_is_validated(world):
    """A login without a password is a 400 naming the field, not a 401 or a 500."""
    r = await world.client.post("/api/auth/login", {"name": "alice"})
    assert r.status == 400
    assert r.error()["field"] == "password"
    r = await world.client.post("/api/auth/login", {"name": "alice", "password": 12345678})
    assert (r.status, r.error()["field"]) == (400, "password")


@pytest_twisted.ensureDeferred
async def test_missing_token_says_how_to_log_in(world):
    """No Authorization header: 401 whose message explains the login route and header."""
    r = await world.client.get("/api/rooms")
    assert r.status == 401
    error = r.error()
    assert error["code"] == "unauthorized"
    assert "POST /api/auth/login" in error["message"] and "Bearer" in error["message"]


@pytest.mark.parametrize("header", ["Basic YWxpY2U6cHc=", "Bearer", "Bearer    ", "token abc"])
@pytest_twisted.ensureDeferred
async def test_malformed_authorization_header_is_401(world, header):
    """An Authorization header that is not 'Bearer TOKEN' is refused with 401."""
    r = await world.client.get("/api/rooms", headers={"Authorization": header})
    assert r.status == 401
    assert r.error()["code"] == "unauthorized"


@pytest_twisted.ensureDeferred
async def test_forged_and_garbage_tokens_are_401(world):
    """A token signed with another secret, or not a token at all, is refused."""
    alice = world.users["alice"]
    forged, _ = auth.issue_token("another-secret", alice.id, 0, world.clock())
    for token in (forged, "garbage", "a.b.c", "é"):
        r = await world.client.get("/api/auth/me", token=token)
        assert r.status == 401, token
        assert r.error()["code"] == "unauthorized"


@pytest_twisted.ensureDeferred
async def test_expired_token_is_401(world):
    """A token stops working once the clock passes its expiry."""
    token = world.token_for(world.users["alice"], ttl_ms=60_000)
    assert (await world.client.get("/api/auth/me", token=token)).status == 200
    world.clock.advance(60_000)
    r = await world.client.get("/api/auth/me", token=token)
    assert r.status == 401
    assert "expired" in r.error()["message"]


@pytest_twisted.ensureDeferred
async def test_revoke_ends_every_token_of_the_caller_only(world):
    """POST /api/auth/revoke: the caller's tokens (all of them) stop working; others' do not."""
    second = world.token_for(world.users["alice"])
    r = await world.client.post("/api/auth/revoke", token=world.tokens["alice"])
    assert (r.status, check_shape(s.REVOKED, r.json)) == (200, {"revoked": True})
    for token in (world.tokens["alice"], second):
        r = await world.client.get("/api/auth/me", token=token)
        assert r.status == 401
        assert "revoked" in r.error()["message"]
    assert (await world.client.get("/api/auth/me", token=world.tokens["bob"])).status == 200
    login = await world.client.post("/api/auth/login", {"name": "alice", "password": PASSWORD})
    assert (await world.client.get("/api/auth/me", token=login.json["token"])).status == 200


@pytest_twisted.ensureDeferred
async def test_token_of_a_deleted_user_is_401(world):
    """Once a user is deleted their still-unexpired token is refused."""
    r = await world.client.delete(f"/api/users/{world.users['bob'].id}", token=world.tokens["admin"])
    assert r.status == 200
    r = await world.client.get("/api/auth/me", token=world.tokens["bob"])
    assert r.status == 401
