"""Checks applied to every route of the table: 401 without or with a bad token, 400 for a
malformed body, 404 for unknown path references, 413 for an oversized body."""

from __future__ import annotations

import re

import pytest
import pytest_twisted

from synctv.site import ROUTE_TABLES

ROUTES = [doc for table in ROUTE_TABLES for doc in table.docs]
AUTH_ROUTES = [r for r in ROUTES if r.auth]
BODY_ROUTES = [r for r in ROUTES if r.body is not None]
# the room page is the same HTML for every {room}: it looks nothing up (synctv.api.page_routes)
PAGES = {("GET", "/room/{room}")}
# the nodes' internal door refuses every caller without a node signature (401/403) before it looks
# anything up, so it never tells an unknown room from a known one (synctv.api.node_routes;
# tests/e2e/test_live_any_node.py checks it on real nodes)
NODE_DOORS = {("GET", "/api/internal/live/{room}/{media}/live.flv")}
REF_ROUTES = [r for r in ROUTES if r.parameters and (r.method, r.path) not in PAGES | NODE_DOORS]
UNKNOWN = {"room": "no-such-room", "user": "no-such-user", "media": "no-such-media",
           # display routes (synctv.api.display_routes)
           "display": "no-such-display", "public_id": "no-such-public-id", "event": "no-such-event",
           "event_id": "no-such-event", "name": "no-such-event", "video": "no-such-video",
           # proxy routes (synctv.api.proxy_routes)
           "kind": "no-such-kind", "index": "no-such-index",
           # provider accounts (synctv.api.account_routes)
           "account": "no-such-account"}
VALID_BODIES = {
    ("POST", "/api/auth/login"): {"name": "alice", "password": "x"},
    ("POST", "/api/users"): {"name": "dave", "password": "12345678"},
    ("PATCH", "/api/users/{user}"): {"role": "user"},
    ("POST", "/api/rooms"): {"name": "r"},
    ("PATCH", "/api/rooms/{room}"): {"name": "r2"},
    ("POST", "/api/rooms/{room}/join"): {},
    ("PATCH", "/api/rooms/{room}/members/{user}"): {"role": "guest"},
    ("POST", "/api/rooms/{room}/media"): {"url": "https://h/a.mp4"},
    ("PUT", "/api/rooms/{room}/media/order"): {"order": []},
    ("PATCH", "/api/rooms/{room}/media/{media}"): {"title": "t"},
    ("PATCH", "/api/rooms/{room}/playback-state"): {"action": "pause", "version": 0},
    ("POST", "/api/displays"): {"name": "screen", "room": "wall"},
    ("PATCH", "/api/displays/{display}"): {"name": "screen2"},
    ("POST", "/api/events"): {"name": "show", "room": "wall", "media": "m"},
    ("PATCH", "/api/events/{event}"): {"lead_ms": 1000},
    ("PATCH", "/api/videos/{video}"): {"title": "t"},
    ("POST", "/api/me/accounts"): {"kind": "alist", "server": "http://alist.example", "username": "u",
                                   "password": "p"},
    ("PATCH", "/api/me/accounts/{account}"): {"share_direct": True},
    ("POST", "/api/rooms/{room}/media/import"): {"provider": "bilibili", "url": "BV1y7411Q7Eq"},
}


def ident(route) -> str:
    return f"{route.method} {route.path}"


def concrete(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{([a-z_]+)\}", lambda m: values[m.group(1)], path)


def test_every_body_route_has_a_valid_example():
    """The table above covers every route with a body (so the 404 check below reaches them)."""
    assert {(r.method, r.path) for r in BODY_ROUTES} == set(VALID_BODIES)


@pytest.mark.parametrize("route", AUTH_ROUTES, ids=ident)
@pytest_twisted.ensureDeferred
async def test_no_token_or_a_bad_one_is_401(world, route):
    """Every authenticated route refuses a missing, garbage, expired or revoked token."""
    path = concrete(route.path, UNKNOWN)
    body = VALID_BODIES.get((route.method, route.path))
    expired = world.token_for(world.users["carol"], ttl_ms=1)
    world.clock.advance(1)
    await world.client.post("/api/auth/revoke", token=world.tokens["bob"])
    for token in (None, "garbage", expired, world.tokens["bob"]):
        r = await world.client.request(route.method, path, json_body=body, token=token)
        assert (r.status, r.error()["code"]) == (401, "unauthorized"), token


@pytest.mark.parametrize("route", BODY_ROUTES, ids=ident)
@pytest_twisted.ensureDeferred
async def test_malformed_json_is_400(world, route):
    """Every route with a body answers 400 to malformed JSON and to a non-object."""
    path = concrete(route.path, UNKNOWN)
    for raw in (b"{nope", b"[1, 2]"):
        r = await world.client.request(route.method, path, data=raw, token=world.tokens["admin"])
        assert (r.status, r.error()["code"]) == (400, "bad_request"), raw


@pytest.mark.parametrize("route", REF_ROUTES, ids=ident)
@pytest_twisted.ensureDeferred
async def test_unknown_references_are_404(world, route):
    """Every route naming a room, user or media item answers 404 when it does not exist."""
    room = await world.room(name="existing")
    item = await world.media(room)
    for missing in route.parameters:
        values = {**UNKNOWN, "room": room["id"], "user": "bob", "media": item["id"]}
        values[missing] = UNKNOWN[missing]
        await world.join("bob", room)
        body = VALID_BODIES.get((route.method, route.path))
        if missing != "media" and route.path.endswith("/media/order"):
            body = {"order": [item["id"]]}
        r = await world.client.request(route.method, concrete(route.path, values), json_body=body,
                                       token=world.tokens["admin"])
        assert (r.status, r.error()["code"]) == (404, "not_found"), (missing, r.raw)


@pytest.mark.parametrize("route", BODY_ROUTES, ids=ident)
@pytest_twisted.ensureDeferred
async def test_oversized_body_is_413(world, route):
    """Every route with a body refuses one over the limit, before any parsing."""
    world.site.max_body_bytes = 4096
    path = concrete(route.path, UNKNOWN)
    r = await world.client.request(route.method, path, data=b" " * 4097, token=world.tokens["admin"])
    assert (r.status, r.error()["code"]) == (413, "payload_too_large")
