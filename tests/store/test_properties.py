"""Property tests on every backend: playlist order under random edits, names and JSON round-trips.

Each example works in rooms and names of its own, so examples can share one store. pytest-twisted
runs each example's coroutine on the reactor (the test function carries its ``ensureDeferred`` mark).
"""

from __future__ import annotations

import pytest_twisted
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synctv.core.errors import Conflict

SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# What both databases can hold: any Unicode but NUL and lone surrogates (the store refuses those).
storable_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=40
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | storable_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(storable_text, inner, max_size=4),
    max_leaves=20,
)

playlist_ops = st.lists(
    st.one_of(
        st.tuples(st.just("add")),
        st.tuples(st.just("delete"), st.integers(0, 20)),
        st.tuples(st.just("reorder"), st.randoms(use_true_random=False)),
        st.tuples(st.just("bad_reorder"), st.integers(0, 20)),
    ),
    min_size=1,
    max_size=12,
)


@SETTINGS
@given(ops=playlist_ops)
@pytest_twisted.ensureDeferred
async def test_playlist_order_stays_strict_under_random_edits(store, make, ops):
    """After any sequence of add/delete/reorder, sort values are distinct and the list matches a model."""
    room = await make.room()
    model: list[str] = []
    for op in ops:
        if op[0] == "add":
            item = await store.add_media(make.media_value(room))
            model.append(item.id)
        elif op[0] == "delete" and model:
            victim = model.pop(op[1] % len(model))
            assert await store.delete_media(room.id, victim) is True
        elif op[0] == "reorder":
            op[1].shuffle(model)
            assert [i.id for i in await store.reorder_media(room.id, list(model))] == model
        elif op[0] == "bad_reorder" and model:
            broken = model[:-1] if op[1] % 2 else [*model, model[op[1] % len(model)]]
            assert await store.reorder_media(room.id, broken) is None
        listed = await store.list_media(room.id)
        sorts = [i.sort for i in listed]
        assert sorts == sorted(set(sorts)), sorts
        assert [i.id for i in listed] == model


@SETTINGS
@given(name=storable_text)
@pytest_twisted.ensureDeferred
async def test_any_storable_name_round_trips(store, make, name):
    """User and room names come back exactly as given, and are found by name (or clash as Conflict)."""
    user_name, room_name = f"u:{name}", f"r:{name}"
    existing = await store.get_user_by_name(user_name)
    if existing is not None:  # hypothesis repeats examples; a second create must clash
        try:
            await store.create_user(make.user_value(user_name))
        except Conflict:
            return
        raise AssertionError("duplicate user name was accepted")
    user = await store.create_user(make.user_value(user_name))
    assert await store.get_user_by_name(user_name) == user
    room = await make.room(creator=user, name=room_name)
    assert await store.get_room_by_name(room_name) == room
    assert (await store.get_room(room.id)).name == room_name


@SETTINGS
@given(
    value=st.dictionaries(storable_text, json_values, max_size=5),
    headers=st.dictionaries(storable_text, storable_text, max_size=3),
)
@pytest_twisted.ensureDeferred
async def test_json_fields_round_trip(store, make, value, headers):
    """Room settings and media provider_data/headers of any JSON shape come back equal."""
    room = await make.room(settings=value)
    assert (await store.get_room(room.id)).settings == value
    item = await store.add_media(make.media_value(room, provider_data=value, headers=headers))
    stored = await store.get_media(room.id, item.id)
    assert stored.provider_data == value and stored.headers == headers
