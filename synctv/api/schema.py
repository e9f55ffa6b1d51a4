"""A small declarative validator: one description per JSON shape serves both request parsing
(``Schema.parse`` raising BadRequest naming the first bad field) and the OpenAPI document
(``json_schema``). The second half of this module declares the shapes of synctv's HTTP API.

Rules every field follows: ``bool`` is never a number, strings are valid UTF-8 without NUL,
numbers are finite, sizes are capped, objects reject unknown fields. A field that is
``optional`` may be absent (then it is left out of the result, or ``default`` is filled in);
one that is ``nullable`` may be ``null``. "Absent" and ``null`` stay distinct so that PATCH
bodies can say "remove it" (``null``) apart from "leave it" (absent).
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Mapping
from typing import Any

import attrs

from synctv.core.errors import BadRequest


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()  # "no default"
MAX_SAFE_INT = 2**53 - 1

Refs = dict[str, dict[str, Any]]  # OpenAPI components being collected: name -> schema


def _bad(path: str, message: str) -> BadRequest:
    return BadRequest(f"{path} {message}" if path else message, field=path or None)


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    if isinstance(schema.get("type"), str):
        return {**schema, "type": [schema["type"], "null"]}
    if "enum" in schema:
        return {**schema, "enum": [*schema["enum"], None]}
    return {"anyOf": [schema, {"type": "null"}]}


@attrs.frozen(kw_only=True)
class Field:
    """Common options; subclasses say what a value must look like."""

    optional: bool = False
    nullable: bool = False
    default: Any = MISSING
    description: str = ""

    @property
    def may_be_absent(self) -> bool:
        return self.optional or self.default is not MISSING

    def check(self, value: Any, path: str) -> Any:
        """Validate a non-null value at ``path``; return the parsed value."""
        raise NotImplementedError

    def type_schema(self, refs: Refs | None) -> dict[str, Any]:
        raise NotImplementedError

    def parse_value(self, value: Any, path: str) -> Any:
        if value is None:
            if not self.nullable:
                raise _bad(path, "must not be null")
            return None
        return self.check(value, path)

    def json_schema(self, refs: Refs | None = None) -> dict[str, Any]:
        schema = self.type_schema(refs)
        if self.nullable:
            schema = _nullable(schema)
        if self.description:
            schema = {**schema, "description": self.description}
        if self.default is not MISSING:
            schema = {**schema, "default": self.default}
        return schema


def _check_text(value: str, path: str) -> None:
    if "\x00" in value:
        raise _bad(path, "must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _bad(path, "must be valid Unicode (no lone surrogates)") from None


@attrs.frozen(kw_only=True)
class Str(Field):
    min_len: int = 0
    max_len: int = 4096
    pattern: str | None = None  # anchored with ^...$; matched against the whole value
    pattern_hint: str = "has characters that are not allowed"

    def check(self, value: Any, path: str) -> str:
        if not isinstance(value, str):
            raise _bad(path, "must be a string")
        if len(value) < self.min_len:
            raise _bad(path, "must not be empty" if self.min_len == 1 else f"needs {self.min_len}+ characters")
        if len(value) > self.max_len:
            raise _bad(path, f"must be at most {self.max_len} characters")
        _check_text(value, path)
        if self.pattern is not None and re.fullmatch(self.pattern, value) is None:
            raise _bad(path, self.pattern_hint)
        return value

    def type_schema(self, refs: Refs | None) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "string", "maxLength": self.max_len}
        if self.min_len:
            schema["minLength"] = self.min_len
        if self.pattern is not None:
            schema["pattern"] = self.pattern
        return schema


@attrs.frozen(kw_only=True)
class Int(Field):
    minimum: int = -MAX_SAFE_INT
    maximum: int = MAX_SAFE_INT

    def check(self, value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(path, "must be an integer")
        if not self.minimum <= value <= self.maximum:
            raise _bad(path, f"must be within {self.minimum}..{self.maximum}")
        return value

    def type_schema(self, refs: Refs | None) -> dict[str, Any]:
        return {"type": "integer", "minimum": self.minimum, "maximum": self.maximum}


@attrs.frozen(kw_only=True)
class Num(Field):
    minimum: float = -float(MAX_SAFE_INT)
    maximum: float = float(MAX_SAFE_INT)

    def check(self, value: Any, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _bad(path, "must be a number")
        try:
            number = float(value)
        except OverflowError:
            raise _bad(path, "is too large") from None
        if not math.isfinite(number):
            raise _bad(path, "must be finite")
        if not self.minimum <= number <= self.maximum:
            raise _bad(path, f"must be within {self.minimum:g}..{self.maximum:g}")
        return number

    def type_schema(self, refs: Refs | None) -> dict[str, Any]:
        return {"type": "number", "minimum": self.minimum, "maximum": self.maximum}


@attrs.frozen(kw_only=True)
class Bool(Field):
    def check(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            raise _bad(path, "must be true or false")
        return value

    def type_schema(self, refs: Refs | None) -> dict[str, Any]:
        return {"type": "boolean"}


@attrs.frozen(kw_only=True)
class Enum(Field):
    values: tuple[str, ...]

    def check(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or value not in self.values:
            raise _bad(path, f"must be one of: {', '.join(self.values)}")
        return value

    def type_schema(self, refs: Refs | None) -> dict[str, Any]:
        return {"type": "string", "enum": list(self.values)}


@attrs.frozen(kw_only=True)
class StrMap(Field):
    """An object of string values, e.g. request headers: ``{"Referer": "https://..."}``."""

    key: Str
    value: Str
    max_items: int = 32

    def check(self, value: Any, path: str) -> dict[str, str]:
        if not isinstance(value, dict):
            raise _bad(path, "must be an object of strings")
        if len(value) > self.max_items:
            raise _bad(path, f"may hold at most {self.max_items} entries")
        out: dict[str, str] = {}
        for key, item in value.items():
            self.key.check(key, f"{path}.{key[:64]}")
            out[key] = self.value.parse_value(item, f"{path}.{key[:64]}")
        return out

    def type_schema(self, refs: Refs | None) -> dict[str, Any]:
        return {
            "type": "object",
            "maxProperties": self.max_items,
            "propertyNames": self.key.type_schema(refs),
            "additionalProperties": self.value.json_schema(refs),
        }


@attrs.frozen(kw_only=True)
class JsonObject(Field):
    """Any JSON object whose compact encoding is at most ``max_bytes`` (settings, provider data)."""

    max_bytes: int = 16 * 1024

    def check(self, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise _bad(path, "must be an object")
        try:
            encoded = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
            size = len(encoded.encode("utf-8"))
        except UnicodeEncodeError:
            raise _bad(path, "must be valid Unicode (no lone surrogates)") from None
        except (ValueError, TypeError, RecursionError):
            raise _bad(path, "must hold only finite numbers, strings, booleans, null, lists, objects") from None
        if size > self.max_bytes:
            raise _bad(path, f"must be at most {self.max_bytes} bytes as JSON")
        return value

    def type_schema(self, refs: Refs | None) -> dict[str, Any]:
        return {"type": "object", "description": f"any JSON object, at most {self.max_bytes} bytes encoded"}


@attrs.frozen(kw_only=True)
class List(Field):
    of: Field
    max_items: int = 32
    min_items: int = 0
    unique: bool = False

    def check(self, value: Any, path: str) -> list[Any]:
        if not isinstance(value, list):
            raise _bad(path, "must be a list")
        if len(value) > self.max_items:
            raise _bad(path, f"may hold at most {self.max_items} items")
        if len(value) < self.min_items:
            raise _bad(path, f"needs at least {self.min_items} items")
        out = [self.of.parse_value(item, f"{path}[{i}]") for i, item in enumerate(value)]
        if self.unique:
            seen: set[Any] = set()
            for i, item in enumerate(out):
                key = json.dumps(item, sort_keys=True)
                if key in seen:
                    raise _bad(f"{path}[{i}]", "repeats an earlier item")
                seen.add(key)
        return out

    def type_schema(self, refs: Refs | None) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "array", "items": self.of.json_schema(refs), "maxItems": self.max_items}
        if self.min_items:
            schema["minItems"] = self.min_items
        if self.unique:
            schema["uniqueItems"] = True
        return schema


@attrs.frozen(kw_only=True)
class Schema(Field):
    """A JSON object with known fields; a named schema becomes an OpenAPI component."""

    fields: Mapping[str, Field]
    name: str | None = None

    def parse(self, obj: Any) -> dict[str, Any]:
        """Validate a whole request body."""
        return self.check(obj, "")

    def check(self, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise _bad(path, "must be a JSON object")
        for key in value:
            if key not in self.fields:
                where = f"{path}.{key[:64]}" if path else key[:64]
                known = ", ".join(self.fields) or "none"
                raise BadRequest(f"unknown field {where!r} (known: {known})", field=where)
        out: dict[str, Any] = {}
        for name, field in self.fields.items():
            where = f"{path}.{name}" if path else name
            if name in value:
                out[name] = field.parse_value(value[name], where)
            elif field.default is not MISSING:
                out[name] = copy.deepcopy(field.default)
            elif not field.optional:
                raise BadRequest(f"{where} is required", field=where)
        return out

    def object_schema(self, refs: Refs | None) -> dict[str, Any]:
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {name: field.json_schema(refs) for name, field in self.fields.items()},
            "additionalProperties": False,
        }
        required = [name for name, field in self.fields.items() if not field.may_be_absent]
        if required:
            schema["required"] = required
        return schema

    def type_schema(self, refs: Refs | None) -> dict[str, Any]:
        if self.name is None or refs is None:
            return self.object_schema(refs)
        if self.name not in refs:
            refs[self.name] = {}  # reserve first: a schema may (indirectly) name itself
            refs[self.name] = self.object_schema(refs)
        return {"$ref": f"#/components/schemas/{self.name}"}


@attrs.frozen(kw_only=True)
class AnyJson(Field):
    """Any JSON value (documentation of ``detail`` fields; never used for request input)."""

    def check(self, value: Any, path: str) -> Any:
        return value

    def type_schema(self, refs: Refs | None) -> dict[str, Any]:
        return {}


# ---------------------------------------------------------------------------------------------
# synctv's shapes (docs/api.md, "Values"). Input and output share these descriptions.

_NO_CONTROL = r"\x00-\x1f\x7f"
USER_NAME = Str(
    min_len=1, max_len=64, pattern=rf"^[^\s/{_NO_CONTROL}]+$",
    pattern_hint="must not contain spaces, '/' or control characters",
)
ROOM_NAME = Str(
    min_len=1, max_len=64,
    pattern=rf"^[^\s/{_NO_CONTROL}](?:[^/{_NO_CONTROL}]*[^\s/{_NO_CONTROL}])?$",
    pattern_hint="must not contain '/' or control characters, nor start or end with a space",
)
USER_PASSWORD = Str(min_len=8, max_len=256, description="at least 8 characters")
ROOM_PASSWORD = Str(min_len=1, max_len=256)
URL = Str(min_len=1, max_len=4096)
HTTP_URL = Str(
    min_len=1, max_len=4096, pattern=r"^https?://[^\s/?#]+[^\s]*$", pattern_hint="must be an http(s) URL"
)
TITLE = Str(min_len=1, max_len=256, pattern=rf"^[^{_NO_CONTROL}]+$", pattern_hint="must not hold control characters")
ID = Str(min_len=1, max_len=64)
TIME_MS = Int(minimum=0)
HEADERS = StrMap(
    key=Str(min_len=1, max_len=128, pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$",
            pattern_hint="is not a valid header name"),
    value=Str(max_len=4096, pattern=r"^[^\r\n\x00]*$", pattern_hint="must not contain line breaks"),
    max_items=32,
)
SETTINGS = JsonObject(max_bytes=16 * 1024)
MAX_POSITION = 366 * 24 * 3600.0  # as synctv.core.playback.MAX_POSITION
POSITION = Num(minimum=0.0, maximum=MAX_POSITION)
RATE = Num(minimum=0.25, maximum=4.0)
PERMISSION_NAMES = (
    "control_playback", "manage_media", "chat", "manage_members", "manage_live", "manage_room",
)
MANY = 1_000_000  # list sizes in answers are not capped by the API

USER = Schema(name="User", fields={
    "id": ID, "name": Str(min_len=1, max_len=64), "role": Enum(values=("root", "admin", "user")),
    "created_at": TIME_MS,
})
ROOM = Schema(name="Room", fields={
    "id": ID, "name": Str(min_len=1, max_len=64), "kind": Enum(values=("watch", "display")),
    "has_password": Bool(), "settings": SETTINGS, "creator_id": Str(max_len=64, nullable=True),
    "created_at": TIME_MS,
})
MEMBER = Schema(name="Member", fields={
    "room_id": ID, "user_id": ID, "user_name": Str(max_len=64, nullable=True),
    "role": Enum(values=("creator", "admin", "member", "guest")),
    "permissions": List(of=Enum(values=PERMISSION_NAMES), max_items=len(PERMISSION_NAMES), unique=True),
    "joined_at": TIME_MS,
})
SUBTITLE = Schema(name="Subtitle", fields={
    "name": Str(min_len=1, max_len=64), "url": HTTP_URL,
    "format": Enum(values=("vtt", "srt", "ass"), default="vtt"),
    "headers": attrs.evolve(HEADERS, default={}),
})
MEDIA_ITEM = Schema(name="MediaItem", fields={
    "id": ID, "room_id": ID, "sort": Int(), "title": Str(max_len=256), "url": URL,
    "provider": Str(max_len=32), "provider_data": SETTINGS,
    "headers": attrs.evolve(HEADERS, description="header values; empty for members without manage_media"),
    "header_names": List(of=Str(max_len=256), max_items=32, description="the headers sent upstream"),
    "subtitles": List(of=SUBTITLE, max_items=32), "duration": attrs.evolve(POSITION, nullable=True),
    "probe_error": Str(max_len=500, nullable=True,
                       description="why the last duration probe failed (docs/workers.md); null otherwise"),
    "created_by": Str(max_len=64, nullable=True), "created_at": TIME_MS,
})
PLAYBACK_STATE = Schema(name="PlaybackState", fields={
    "media_id": Str(max_len=64, nullable=True), "playing": Bool(), "ended": Bool(),
    "position": Num(minimum=0.0), "rate": RATE, "at_ms": TIME_MS, "version": Int(minimum=0),
    "event_id": Str(max_len=64, optional=True, nullable=True),
})
PLAYBACK_INFO = Schema(name="PlaybackInfo", fields={
    "mode": Str(max_len=32), "url": URL, "format": Str(max_len=32), "headers": HEADERS,
    "subtitles": List(of=SUBTITLE, max_items=32), "expires_at": Int(nullable=True),
    "metadata": JsonObject(),
})
PLAYBACK_RESULT = Schema(name="PlaybackResult", fields={
    "media_id": ID, "provider": Str(max_len=32), "infos": List(of=PLAYBACK_INFO, max_items=MANY),
})
ERROR = Schema(name="Error", fields={"error": Schema(fields={
    "code": Str(max_len=64), "message": Str(max_len=4096),
    "field": Str(max_len=4096, optional=True), "detail": AnyJson(optional=True),
})})

# request bodies
LOGIN = Schema(name="LoginRequest", fields={"name": Str(min_len=1, max_len=64), "password": Str(min_len=1, max_len=1024)})
USER_CREATE = Schema(name="UserCreate", fields={
    "name": USER_NAME, "password": USER_PASSWORD, "role": Enum(values=("admin", "user"), default="user"),
})
USER_PATCH = Schema(name="UserPatch", fields={
    "role": Enum(values=("admin", "user"), optional=True), "password": attrs.evolve(USER_PASSWORD, optional=True),
})
ROOM_CREATE = Schema(name="RoomCreate", fields={
    "name": ROOM_NAME, "password": attrs.evolve(ROOM_PASSWORD, optional=True, nullable=True),
    "kind": Enum(values=("watch", "display"), default="watch"), "settings": attrs.evolve(SETTINGS, default={}),
})
ROOM_PATCH = Schema(name="RoomPatch", fields={
    "name": attrs.evolve(ROOM_NAME, optional=True),
    "password": attrs.evolve(ROOM_PASSWORD, optional=True, nullable=True, description="null removes it"),
    "settings": attrs.evolve(SETTINGS, optional=True),
})
JOIN = Schema(name="JoinRequest", fields={"password": attrs.evolve(ROOM_PASSWORD, optional=True, nullable=True)})
MEMBER_PATCH = Schema(name="MemberPatch", fields={
    "role": Enum(values=("admin", "member", "guest"), optional=True),
    "permissions": List(of=Enum(values=PERMISSION_NAMES), max_items=len(PERMISSION_NAMES), unique=True,
                        optional=True),
})
MEDIA_CREATE = Schema(name="MediaCreate", fields={
    "url": attrs.evolve(URL, optional=True, description="required by every provider but rtmp"),
    "title": attrs.evolve(TITLE, optional=True),
    "provider": Str(min_len=1, max_len=32, pattern=r"^[a-z][a-z0-9_]*$", default="direct"),
    "provider_data": attrs.evolve(SETTINGS, default={}), "headers": attrs.evolve(HEADERS, default={}),
    "subtitles": List(of=SUBTITLE, max_items=32, default=[]),
    "duration": attrs.evolve(POSITION, optional=True, nullable=True),
})
MEDIA_PATCH = Schema(name="MediaPatch", fields={
    "title": attrs.evolve(TITLE, optional=True), "url": attrs.evolve(URL, optional=True),
    "headers": attrs.evolve(HEADERS, optional=True),
    "subtitles": List(of=SUBTITLE, max_items=32, optional=True),
    "duration": attrs.evolve(POSITION, optional=True, nullable=True, description="null: unknown"),
})
MEDIA_ORDER = Schema(name="MediaOrder", fields={"order": List(of=ID, max_items=10_000, unique=True)})
PLAYBACK_UPDATE = Schema(name="PlaybackUpdate", fields={
    "action": Enum(values=("play", "pause", "seek", "rate", "media")),
    "position": attrs.evolve(POSITION, optional=True, nullable=True),
    "rate": attrs.evolve(RATE, optional=True, nullable=True),
    "media_id": Str(min_len=1, max_len=64, optional=True, nullable=True),
    "lead_ms": Int(minimum=0, maximum=60_000, optional=True, nullable=True,
                   description="play only: a countdown start this many ms from now"),
    "version": Int(minimum=0),
})

# answers
LOGIN_RESULT = Schema(fields={"token": Str(max_len=4096), "expires_at": TIME_MS, "user": USER})
ONE_USER = Schema(fields={"user": USER})
USERS = Schema(fields={"users": List(of=USER, max_items=MANY)})
REVOKED = Schema(fields={"revoked": Bool()})
DELETED = Schema(fields={"deleted": ID})
ROOMS = Schema(fields={"rooms": List(of=ROOM, max_items=MANY)})
ONE_ROOM = Schema(fields={"room": ROOM})
ROOM_AND_MEMBER = Schema(fields={"room": ROOM, "member": MEMBER})
ROOM_AND_MAYBE_MEMBER = Schema(fields={"room": ROOM, "member": attrs.evolve(MEMBER, nullable=True)})
MEMBERS = Schema(fields={"members": List(of=MEMBER, max_items=MANY)})
ONE_MEMBER = Schema(fields={"member": MEMBER})
MEDIA_LIST = Schema(fields={"media": List(of=MEDIA_ITEM, max_items=MANY)})
ONE_MEDIA = Schema(fields={"media": MEDIA_ITEM})
HEALTH = Schema(fields={"status": Str(max_len=32), "database": Str(max_len=32)})
ONLINE_USER = Schema(name="OnlineUser", fields={
    "user_id": ID, "user_name": Str(max_len=256), "connections": Int(minimum=0),
    "connection_ids": List(of=Str(max_len=64), max_items=MANY),
})
LOBBY_ROOM = Schema(name="LobbyRoom", fields={
    "room": ROOM, "member": attrs.evolve(MEMBER, nullable=True), "state": PLAYBACK_STATE,
    "title": Str(max_len=256, nullable=True), "online": List(of=ONLINE_USER, max_items=MANY),
})
LOBBY = Schema(fields={"rooms": List(of=LOBBY_ROOM, max_items=MANY)})
