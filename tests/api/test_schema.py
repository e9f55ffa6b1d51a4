"""synctv.api.schema: the validator behind request parsing and the OpenAPI schemas. Pure."""

from __future__ import annotations

import pytest

from synctv.api import schema as s
from synctv.core.errors import BadRequest

PERSON = s.Schema(name="Person", fields={
    "name": s.Str(min_len=1, max_len=5),
    "age": s.Int(minimum=0, maximum=150, optional=True),
    "height": s.Num(minimum=0, maximum=3, nullable=True, optional=True),
    "tags": s.List(of=s.Enum(values=("a", "b")), max_items=2, default=[]),
    "extra": s.Schema(fields={"ok": s.Bool()}, optional=True),
})


def field_of(schema: s.Schema, body):
    with pytest.raises(BadRequest) as caught:
        schema.parse(body)
    return caught.value.field


def test_valid_body_parses_with_defaults_and_absent_fields_left_out():
    """Optional fields that are absent stay absent; defaults are filled; ints become floats for Num."""
    assert PERSON.parse({"name": "ann", "height": 2}) == {"name": "ann", "height": 2.0, "tags": []}
    assert PERSON.parse({"name": "ann", "height": None}) == {"name": "ann", "height": None, "tags": []}


def test_defaults_are_fresh_copies():
    """Mutating a parsed default does not leak into the next parse."""
    first = PERSON.parse({"name": "ann"})
    first["tags"].append("a")
    assert PERSON.parse({"name": "bob"})["tags"] == []


@pytest.mark.parametrize("body, field", [
    ({}, "name"),
    ({"name": ""}, "name"),
    ({"name": "toolong"}, "name"),
    ({"name": 1}, "name"),
    ({"name": None}, "name"),
    ({"name": "a\x00"}, "name"),
    ({"name": "\ud800"}, "name"),
    ({"name": "ann", "age": True}, "age"),
    ({"name": "ann", "age": 1.0}, "age"),
    ({"name": "ann", "age": 151}, "age"),
    ({"name": "ann", "height": False}, "height"),
    ({"name": "ann", "height": float("inf")}, "height"),
    ({"name": "ann", "height": 10**400}, "height"),
    ({"name": "ann", "tags": ["a", "c"]}, "tags[1]"),
    ({"name": "ann", "tags": ["a", "a", "b"]}, "tags"),
    ({"name": "ann", "tags": "a"}, "tags"),
    ({"name": "ann", "extra": {"ok": 1}}, "extra.ok"),
    ({"name": "ann", "extra": {"ok": True, "more": 1}}, "extra.more"),
    ({"name": "ann", "surname": "x"}, "surname"),
])
def test_the_first_bad_field_is_named(body, field):
    """Each refusal names the field (with its path for nested values)."""
    assert field_of(PERSON, body) == field


@pytest.mark.parametrize("body", [[], "x", 1, None, True])
def test_a_non_object_is_refused_without_a_field(body):
    """The whole body must be an object."""
    assert field_of(PERSON, body) is None


def test_unknown_fields_are_checked_before_declared_ones():
    """A stray key is reported even when declared fields are also wrong."""
    assert field_of(PERSON, {"bogus": 1}) == "bogus"


def test_headers_map_limits():
    """Header maps: token names, no line breaks in values, at most 32 entries."""
    headers = s.Schema(fields={"headers": s.HEADERS})
    assert headers.parse({"headers": {"Referer": "https://x/"}}) == {"headers": {"Referer": "https://x/"}}
    assert field_of(headers, {"headers": {"Bad Name": "x"}}) == "headers.Bad Name"
    assert field_of(headers, {"headers": {"X": "a\nb"}}) == "headers.X"
    assert field_of(headers, {"headers": {"X": 1}}) == "headers.X"
    assert field_of(headers, {"headers": {f"X{i}": "v" for i in range(33)}}) == "headers"


def test_json_object_size_cap():
    """settings: any object up to 16 KiB encoded; not a list; no lone surrogates."""
    settings = s.Schema(fields={"settings": s.SETTINGS})
    assert settings.parse({"settings": {"a": [1, {"b": None}]}})["settings"] == {"a": [1, {"b": None}]}
    assert field_of(settings, {"settings": {"blob": "x" * (16 * 1024)}}) == "settings"
    assert field_of(settings, {"settings": ["a"]}) == "settings"
    assert field_of(settings, {"settings": {"k": "\udc00"}}) == "settings"


def test_room_and_user_name_rules():
    """Names: 1-64 characters, no '/' or control characters; room names may hold inner spaces."""
    room = s.Schema(fields={"name": s.ROOM_NAME})
    user = s.Schema(fields={"name": s.USER_NAME})
    assert room.parse({"name": "Movie night 电影"})["name"] == "Movie night 电影"
    for bad in ("", " x", "x ", "a/b", "a\tb", "x" * 65):
        assert field_of(room, {"name": bad}) == "name", bad
    assert user.parse({"name": "alice.b-c_d@e"})["name"] == "alice.b-c_d@e"
    assert field_of(user, {"name": "a b"}) == "name"
    assert field_of(user, {"name": "a\nb"}) == "name"  # $ must not match before a final newline


def test_json_schema_output():
    """OpenAPI output: named schemas become $refs collected as components; nullable is a type
    list (3.1); required lists fields without default or optional."""
    refs: dict = {}
    assert PERSON.json_schema(refs) == {"$ref": "#/components/schemas/Person"}
    component = refs["Person"]
    assert component["required"] == ["name"]
    assert component["additionalProperties"] is False
    assert component["properties"]["height"]["type"] == ["number", "null"]
    assert component["properties"]["tags"]["default"] == []
    assert component["properties"]["tags"]["items"] == {"type": "string", "enum": ["a", "b"]}
    nullable_ref = s.Schema(fields={"p": PERSON.__class__(name="Person", fields=PERSON.fields, nullable=True)})
    assert nullable_ref.json_schema(refs)["properties"]["p"] == {
        "anyOf": [{"$ref": "#/components/schemas/Person"}, {"type": "null"}]}


def test_answer_schemas_accept_what_the_models_produce():
    """The documented answer shapes accept the JSON of real model values."""
    from synctv.core.models import MediaItem, Member, PlaybackState, Room, Subtitle, User
    from synctv.core.permissions import DEFAULT_PERMISSIONS

    s.USER.parse(User("u", "ann", "user", "h", created_at=5).to_json())
    s.ROOM.parse(Room("r", "lounge", "watch", settings={"a": 1}, creator_id=None).to_json())
    s.MEMBER.parse(Member("r", "u", "guest", DEFAULT_PERMISSIONS["guest"], user_name="ann").to_json())
    s.MEDIA_ITEM.parse(MediaItem("m", "r", 0, "t", "https://h/a", subtitles=(Subtitle("en", "https://h/s"),)).to_json())
    s.PLAYBACK_STATE.parse(PlaybackState(event_id="e").to_json())
    s.PLAYBACK_STATE.parse(PlaybackState().to_json())
