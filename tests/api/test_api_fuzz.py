"""Random and near-valid bodies at the write routes: never a 5xx, always the error envelope when
refused, and nothing stored changes when a request is refused."""

from __future__ import annotations

import json
from typing import Any

import pytest_twisted
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synctv.api import schema as s

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

any_text = st.text(st.characters(exclude_categories=()), max_size=24)  # lone surrogates and NUL too
scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | any_text)
json_values = st.recursive(
    scalars, lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=12,
)


@st.composite
def near(draw: Any, fields: dict[str, st.SearchStrategy]) -> dict[str, Any]:
    """Objects with some of ``fields``, each mostly a plausible value, sometimes any JSON; now and
    then a stray key."""
    body = {}
    for name, strategy in fields.items():
        # hypothesis favours small integers, so the rare branches test for a large one
        if draw(st.integers(0, 4)) < 4:
            body[name] = draw(json_values if draw(st.integers(0, 4)) == 4 else strategy)
    if draw(st.integers(0, 9)) == 9:
        body[draw(any_text)] = draw(json_values)
    return body


def bodies(fields: dict[str, st.SearchStrategy]) -> st.SearchStrategy:
    return st.one_of(near(fields), near(fields), near(fields), json_values)


names = (st.from_regex(r"[a-z][a-z0-9 ]{0,10}[a-z0-9]", fullmatch=True)
         | st.text(st.characters(min_codepoint=32, max_codepoint=0x2FFF), min_size=0, max_size=70))
good_urls = st.sampled_from(["https://cdn.example/a.mp4", "http://h/x.m3u8", "https://h:8443/v?x=1"])
urls = st.one_of(good_urls, good_urls, st.sampled_from(["ftp://h/a", "https://", "/rel", "", "http://h:99999/"]))
headers = st.dictionaries(st.sampled_from(["Referer", "X-A", "User-Agent"]), st.text(max_size=8), max_size=2) | \
    st.dictionaries(st.sampled_from(["bad name", "", "X-B"]), any_text, max_size=3)


async def snapshot(world) -> Any:
    store = world.store
    rooms = await store.list_rooms()
    per_room = {
        room.id: (await store.list_media(room.id), await store.get_playback(room.id),
                  await store.list_members(room.id))
        for room in rooms
    }
    return rooms, per_room, await store.list_users()


async def check_answer(world, method: str, path: str, body: Any, token: str) -> int:
    """Send ``body``; assert no 5xx and, if refused, the envelope and an unchanged store."""
    before = await snapshot(world)
    r = await world.client.request(method, path, data=json.dumps(body).encode("utf-8"), token=token)
    assert r.status < 500, (r.status, r.raw)
    if r.status >= 400:
        s.ERROR.parse(r.json)
        assert await snapshot(world) == before, (body, r.raw)
    return r.status


async def fuzz_room(world) -> tuple[dict[str, Any], dict[str, Any]]:
    """One room with one item per test, made by the first example that needs it."""
    if world.extra.get("fuzz") is None:
        room = await world.room(name="fuzz")
        world.extra["fuzz"] = (room, await world.media(room, duration=120))
    return world.extra["fuzz"]


@FUZZ
@given(body=bodies({"name": names, "password": names | st.none(), "kind": st.sampled_from(["watch", "display"]),
                    "settings": st.dictionaries(any_text, json_values, max_size=3)}))
@pytest_twisted.ensureDeferred
async def test_fuzz_create_room(world, body):
    """POST /api/rooms with random bodies."""
    await check_answer(world, "POST", "/api/rooms", body, world.tokens["alice"])


@FUZZ
@given(body=bodies({"name": names, "password": names | st.none(),
                    "settings": st.dictionaries(any_text, json_values, max_size=3)}))
@pytest_twisted.ensureDeferred
async def test_fuzz_patch_room(world, body):
    """PATCH /api/rooms/{room} with random bodies."""
    room, _ = await fuzz_room(world)
    await check_answer(world, "PATCH", f"/api/rooms/{room['id']}", body, world.tokens["alice"])


@FUZZ
@given(body=bodies({
    "url": urls, "title": names, "provider": st.sampled_from(["direct", "direct", "nope"]),
    "provider_data": st.dictionaries(st.text(max_size=5), json_values, max_size=2),
    "headers": headers, "duration": st.floats(min_value=0, max_value=1e5) | st.floats(min_value=-10, max_value=1e9) | st.none(),
    "subtitles": st.lists(near({"name": names, "url": urls, "format": st.sampled_from(["vtt", "srt", "x"]),
                                "headers": headers}), max_size=2),
}))
@pytest_twisted.ensureDeferred
async def test_fuzz_add_media(world, body):
    """POST /api/rooms/{room}/media with random bodies."""
    room, _ = await fuzz_room(world)
    await check_answer(world, "POST", f"/api/rooms/{room['id']}/media", body, world.tokens["alice"])


@FUZZ
@given(data=st.data())
@pytest_twisted.ensureDeferred
async def test_fuzz_playback_update(world, data):
    """PATCH /api/rooms/{room}/playback-state with random bodies, some of them valid."""
    room, item = await fuzz_room(world)
    body = data.draw(bodies({
        "action": st.sampled_from(["play", "pause", "seek", "rate", "media", "media", "media", "stop"]),
        "version": st.integers(min_value=0, max_value=3) | st.integers(min_value=-1, max_value=40),
        "position": st.floats(min_value=-5, max_value=1e9) | st.none(),
        "rate": st.floats(min_value=0, max_value=10) | st.none(),
        "media_id": st.sampled_from([item["id"], "nope"]) | st.none(),
    }))
    await check_answer(world, "PATCH", f"/api/rooms/{room['id']}/playback-state", body, world.tokens["alice"])


@FUZZ
@given(body=bodies({"name": names, "password": st.from_regex(r"[a-z]{8,12}", fullmatch=True) | names, "role": st.sampled_from(["user", "admin", "root"])}))
@pytest_twisted.ensureDeferred
async def test_fuzz_create_user(world, body):
    """POST /api/users (as a site admin) with random bodies."""
    await check_answer(world, "POST", "/api/users", body, world.tokens["admin"])
