"""Every store operation, written once, as a generator "interaction" both drivers run.

The protocol (``Execute`` in, ``Result`` back, ``IntegrityViolation`` thrown in) is in
``statements``; ``sqlite.SQLiteStore`` drives interactions synchronously in an adbapi thread,
``postgres.PostgresStore`` asynchronously on txpostgres. Row-to-model conversion lives here, in
one place for both dialects: booleans from SQLite integers, JSON from TEXT columns, numbers from
whatever numeric type the driver returns.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import attrs

from synctv.core.errors import BadRequest, Conflict, NotFound
from synctv.core.live import PublisherRecord, StreamKey
from synctv.core.models import MediaItem, Member, PlaybackState, Room, Subtitle, User
from synctv.core.permissions import Permission
from synctv.store.interface import UNSET
from synctv.store.statements import Execute, IntegrityViolation, Interaction, Result

T = TypeVar("T")


# -- encoding and row conversion ------------------------------------------------------------


def dump_json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise BadRequest(f"value cannot be stored as JSON: {e}") from None


def _subtitles_json(subtitles: Iterable[Subtitle | dict[str, Any]]) -> str:
    return dump_json([s.to_json() if isinstance(s, Subtitle) else dict(s) for s in subtitles])


def _subtitle(value: dict[str, Any]) -> Subtitle:
    return Subtitle(
        name=value["name"],
        url=value["url"],
        format=value.get("format", "vtt"),
        headers=dict(value.get("headers") or {}),
    )


USER_COLUMNS = "id, name, role, password_hash, token_generation, created_at"
ROOM_COLUMNS = "id, name, kind, password_hash, settings, creator_id, created_at"
MEMBER_SELECT = (
    "SELECT m.room_id, m.user_id, m.role, m.permissions, m.joined_at, u.name "
    "FROM room_members m JOIN users u ON u.id = m.user_id"
)
MEDIA_COLUMNS = (
    "id, room_id, sort, title, url, provider, provider_data, headers, subtitles, duration, "
    "created_by, created_at"
)
MEDIA_SELECT = MEDIA_COLUMNS + ", probe_error"  # what a read returns (the worker columns: docs/workers.md)
PLAYBACK_COLUMNS = "media_id, playing, ended, position, rate, at_ms, version, event_id"


def user_from_row(row: tuple[Any, ...]) -> User:
    return User(
        id=row[0],
        name=row[1],
        role=row[2],
        password_hash=row[3],
        token_generation=int(row[4]),
        created_at=int(row[5]),
    )


def room_from_row(row: tuple[Any, ...]) -> Room:
    return Room(
        id=row[0],
        name=row[1],
        kind=row[2],
        password_hash=row[3],
        settings=json.loads(row[4]),
        creator_id=row[5],
        created_at=int(row[6]),
    )


def member_from_row(row: tuple[Any, ...]) -> Member:
    return Member(
        room_id=row[0],
        user_id=row[1],
        role=row[2],
        permissions=Permission(int(row[3])),
        joined_at=int(row[4]),
        user_name=row[5],
    )


def media_from_row(row: tuple[Any, ...]) -> MediaItem:
    return MediaItem(
        id=row[0],
        room_id=row[1],
        sort=int(row[2]),
        title=row[3],
        url=row[4],
        provider=row[5],
        provider_data=json.loads(row[6]),
        headers=json.loads(row[7]),
        subtitles=tuple(_subtitle(s) for s in json.loads(row[8])),
        duration=None if row[9] is None else float(row[9]),
        created_by=row[10],
        created_at=int(row[11]),
        probe_error=row[12] if len(row) > 12 else None,
    )


def playback_from_row(row: tuple[Any, ...]) -> PlaybackState:
    return PlaybackState(
        media_id=row[0],
        playing=bool(row[1]),
        ended=bool(row[2]),
        position=float(row[3]),
        rate=float(row[4]),
        at_ms=int(row[5]),
        version=int(row[6]),
        event_id=row[7],
    )


def _playback_params(state: PlaybackState) -> tuple[Any, ...]:
    return (
        state.media_id,
        bool(state.playing),
        bool(state.ended),
        float(state.position),
        float(state.rate),
        int(state.at_ms),
        int(state.version),
        state.event_id,
    )


def _first(result: Result, convert: Callable[[tuple[Any, ...]], T]) -> T | None:
    return convert(result.rows[0]) if result.rows else None


def query(sql: str, params: tuple[Any, ...]) -> Interaction[list[tuple[Any, ...]]]:
    r = yield Execute(sql, params)
    return r.rows


# -- settings --------------------------------------------------------------------------------


def get_setting(key: str) -> Interaction[str | None]:
    r = yield Execute("SELECT value FROM settings WHERE key = ?", (key,))
    return r.rows[0][0] if r.rows else None


def put_setting_if_absent(key: str, value: str) -> Interaction[str]:
    yield Execute(
        "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", (key, value)
    )
    r = yield Execute("SELECT value FROM settings WHERE key = ?", (key,))
    return r.rows[0][0]


# -- users -----------------------------------------------------------------------------------


def _select_user(user_id: str) -> Interaction[User | None]:
    r = yield Execute(f"SELECT {USER_COLUMNS} FROM users WHERE id = ?", (user_id,))
    return _first(r, user_from_row)


def create_user(user: User) -> Interaction[User]:
    try:
        yield Execute(
            f"INSERT INTO users ({USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
            (user.id, user.name, user.role, user.password_hash, user.token_generation, user.created_at),
        )
    except IntegrityViolation as e:
        if e.kind == "unique" and e.on("name"):
            raise Conflict(f"a user named {user.name!r} exists", field="name") from None
        if e.kind == "unique":
            raise Conflict(f"a user with id {user.id!r} exists", field="id") from None
        raise
    return user


def get_user(user_id: str) -> Interaction[User | None]:
    return (yield from _select_user(user_id))


def get_user_by_name(name: str) -> Interaction[User | None]:
    r = yield Execute(f"SELECT {USER_COLUMNS} FROM users WHERE name = ?", (name,))
    return _first(r, user_from_row)


def list_users() -> Interaction[list[User]]:
    r = yield Execute(f"SELECT {USER_COLUMNS} FROM users ORDER BY created_at, id")
    return [user_from_row(row) for row in r.rows]


def count_users() -> Interaction[int]:
    r = yield Execute("SELECT COUNT(*) FROM users")
    return int(r.rows[0][0])


def update_user(
    user_id: str, role: str = UNSET, password_hash: str = UNSET, bump_generation: bool = False
) -> Interaction[User | None]:
    sets: list[str] = []
    params: list[Any] = []
    if role is not UNSET:
        sets.append("role = ?")
        params.append(role)
    if password_hash is not UNSET:
        sets.append("password_hash = ?")
        params.append(password_hash)
    if bump_generation:
        sets.append("token_generation = token_generation + 1")
    if sets:
        yield Execute(f"UPDATE users SET {', '.join(sets)} WHERE id = ?", (*params, user_id))
    return (yield from _select_user(user_id))


def delete_user(user_id: str) -> Interaction[bool]:
    r = yield Execute("DELETE FROM users WHERE id = ?", (user_id,))
    return r.rowcount > 0


# -- rooms -----------------------------------------------------------------------------------


def _select_room(room_id: str) -> Interaction[Room | None]:
    r = yield Execute(f"SELECT {ROOM_COLUMNS} FROM rooms WHERE id = ?", (room_id,))
    return _first(r, room_from_row)


def _room_name_taken(e: IntegrityViolation, name: str) -> Conflict:
    if e.on("name"):
        return Conflict(f"a room named {name!r} exists", field="name")
    return Conflict("that room already exists")


def create_room(room: Room, creator: Member, state: PlaybackState) -> Interaction[Room]:
    if creator.room_id != room.id:
        raise ValueError(f"creator {creator.user_id!r} is a member of {creator.room_id!r}, not {room.id!r}")
    try:
        yield Execute(
            f"INSERT INTO rooms ({ROOM_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                room.id,
                room.name,
                room.kind,
                room.password_hash,
                dump_json(room.settings),
                room.creator_id,
                room.created_at,
            ),
        )
        yield Execute(
            "INSERT INTO room_members (room_id, user_id, role, permissions, joined_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (room.id, creator.user_id, creator.role, int(creator.permissions), creator.joined_at),
        )
    except IntegrityViolation as e:
        if e.kind == "unique":
            raise _room_name_taken(e, room.name) from None
        if e.kind == "foreign_key":
            raise NotFound(f"no user with id {creator.user_id!r}") from None
        raise
    yield Execute(
        f"INSERT INTO playback_states (room_id, {PLAYBACK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (room.id, *_playback_params(state)),
    )
    return room


def get_room(room_id: str) -> Interaction[Room | None]:
    return (yield from _select_room(room_id))


def get_room_by_name(name: str) -> Interaction[Room | None]:
    r = yield Execute(f"SELECT {ROOM_COLUMNS} FROM rooms WHERE name = ?", (name,))
    return _first(r, room_from_row)


def list_rooms() -> Interaction[list[Room]]:
    r = yield Execute(f"SELECT {ROOM_COLUMNS} FROM rooms ORDER BY created_at, id")
    return [room_from_row(row) for row in r.rows]


def update_room(
    room_id: str, name: str = UNSET, password_hash: str | None = UNSET, settings: dict[str, Any] = UNSET
) -> Interaction[Room | None]:
    sets: list[str] = []
    params: list[Any] = []
    for column, value in (("name", name), ("password_hash", password_hash)):
        if value is not UNSET:
            sets.append(f"{column} = ?")
            params.append(value)
    if settings is not UNSET:
        sets.append("settings = ?")
        params.append(dump_json(settings))
    if sets:
        try:
            yield Execute(f"UPDATE rooms SET {', '.join(sets)} WHERE id = ?", (*params, room_id))
        except IntegrityViolation as e:
            if e.kind == "unique":
                raise _room_name_taken(e, name) from None
            raise
    return (yield from _select_room(room_id))


def delete_room(room_id: str) -> Interaction[bool]:
    r = yield Execute("DELETE FROM rooms WHERE id = ?", (room_id,))
    return r.rowcount > 0


def _lock_room(room_id: str) -> Interaction[bool]:
    """Take the room row's write lock (serialises playlist changes); False if no such room."""
    r = yield Execute("UPDATE rooms SET kind = kind WHERE id = ?", (room_id,))
    return r.rowcount > 0


# -- members ---------------------------------------------------------------------------------


def _select_member(room_id: str, user_id: str) -> Interaction[Member | None]:
    r = yield Execute(f"{MEMBER_SELECT} WHERE m.room_id = ? AND m.user_id = ?", (room_id, user_id))
    return _first(r, member_from_row)


def put_member(member: Member) -> Interaction[Member]:
    try:
        yield Execute(
            "INSERT INTO room_members (room_id, user_id, role, permissions, joined_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (room_id, user_id) "
            "DO UPDATE SET role = excluded.role, permissions = excluded.permissions",
            (member.room_id, member.user_id, member.role, int(member.permissions), member.joined_at),
        )
    except IntegrityViolation as e:
        if e.kind == "foreign_key":
            raise NotFound(f"no room {member.room_id!r} or no user {member.user_id!r}") from None
        raise
    stored = yield from _select_member(member.room_id, member.user_id)
    assert stored is not None
    return stored


def get_member(room_id: str, user_id: str) -> Interaction[Member | None]:
    return (yield from _select_member(room_id, user_id))


def list_members(room_id: str) -> Interaction[list[Member]]:
    r = yield Execute(f"{MEMBER_SELECT} WHERE m.room_id = ? ORDER BY m.joined_at, m.user_id", (room_id,))
    return [member_from_row(row) for row in r.rows]


def delete_member(room_id: str, user_id: str) -> Interaction[bool]:
    r = yield Execute("DELETE FROM room_members WHERE room_id = ? AND user_id = ?", (room_id, user_id))
    return r.rowcount > 0


# -- media -----------------------------------------------------------------------------------

MEDIA_FIELDS: dict[str, Callable[[Any], Any]] = {
    "title": str,
    "url": str,
    "provider": str,
    "provider_data": dump_json,
    "headers": dump_json,
    "subtitles": _subtitles_json,
    "duration": lambda v: None if v is None else float(v),
}


def _select_media(room_id: str, media_id: str) -> Interaction[MediaItem | None]:
    r = yield Execute(
        f"SELECT {MEDIA_SELECT} FROM media_items WHERE room_id = ? AND id = ?", (room_id, media_id)
    )
    return _first(r, media_from_row)


def _select_playlist(room_id: str) -> Interaction[list[MediaItem]]:
    r = yield Execute(
        f"SELECT {MEDIA_SELECT} FROM media_items WHERE room_id = ? ORDER BY sort, id", (room_id,)
    )
    return [media_from_row(row) for row in r.rows]


def add_media(item: MediaItem) -> Interaction[MediaItem]:
    if not (yield from _lock_room(item.room_id)):
        raise NotFound(f"no room with id {item.room_id!r}")
    r = yield Execute(
        "SELECT COALESCE(MAX(sort), -1) + 1 FROM media_items WHERE room_id = ?", (item.room_id,)
    )
    item = attrs.evolve(item, sort=int(r.rows[0][0]))
    try:
        yield Execute(
            f"INSERT INTO media_items ({MEDIA_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                item.id,
                item.room_id,
                item.sort,
                item.title,
                item.url,
                item.provider,
                dump_json(item.provider_data),
                dump_json(item.headers),
                _subtitles_json(item.subtitles),
                MEDIA_FIELDS["duration"](item.duration),
                item.created_by,
                item.created_at,
            ),
        )
    except IntegrityViolation as e:
        if e.kind == "unique":
            raise Conflict(f"a media item with id {item.id!r} exists", field="id") from None
        if e.kind == "foreign_key":
            raise NotFound(f"no user with id {item.created_by!r}") from None
        raise
    return item


def get_media(room_id: str, media_id: str) -> Interaction[MediaItem | None]:
    return (yield from _select_media(room_id, media_id))


def list_media(room_id: str) -> Interaction[list[MediaItem]]:
    return (yield from _select_playlist(room_id))


def update_media(room_id: str, media_id: str, fields: dict[str, Any]) -> Interaction[MediaItem | None]:
    unknown = sorted(set(fields) - set(MEDIA_FIELDS))
    if unknown:
        raise TypeError(f"update_media got unknown fields {unknown}; known: {sorted(MEDIA_FIELDS)}")
    if fields:
        sets = ", ".join(f"{name} = ?" for name in fields)
        if "url" in fields or "duration" in fields:  # a new source, or a duration given: probe afresh
            sets += ", probe_error = NULL, probe_attempts = 0, probe_after = 0"
        values = tuple(MEDIA_FIELDS[name](value) for name, value in fields.items())
        yield Execute(
            f"UPDATE media_items SET {sets} WHERE room_id = ? AND id = ?", (*values, room_id, media_id)
        )
    return (yield from _select_media(room_id, media_id))


def delete_media(room_id: str, media_id: str) -> Interaction[bool]:
    r = yield Execute("DELETE FROM media_items WHERE room_id = ? AND id = ?", (room_id, media_id))
    return r.rowcount > 0


def reorder_media(room_id: str, media_ids: list[str]) -> Interaction[list[MediaItem] | None]:
    if not (yield from _lock_room(room_id)):
        return None
    r = yield Execute("SELECT id, sort FROM media_items WHERE room_id = ?", (room_id,))
    current = {row[0]: int(row[1]) for row in r.rows}
    if len(media_ids) != len(current) or set(media_ids) != set(current):
        return None
    for sort, media_id in enumerate(media_ids):
        if current[media_id] != sort:
            yield Execute(
                "UPDATE media_items SET sort = ? WHERE room_id = ? AND id = ?", (sort, room_id, media_id)
            )
    return (yield from _select_playlist(room_id))


# -- playback --------------------------------------------------------------------------------


def get_playback(room_id: str) -> Interaction[PlaybackState | None]:
    r = yield Execute(f"SELECT {PLAYBACK_COLUMNS} FROM playback_states WHERE room_id = ?", (room_id,))
    return _first(r, playback_from_row)


def set_playback(room_id: str, state: PlaybackState, expected_version: int) -> Interaction[bool]:
    sets = ", ".join(f"{c.strip()} = ?" for c in PLAYBACK_COLUMNS.split(","))
    r = yield Execute(
        f"UPDATE playback_states SET {sets} WHERE room_id = ? AND version = ?",
        (*_playback_params(state), room_id, int(expected_version)),
    )
    return r.rowcount > 0


# -- live: stream keys and publisher records ---------------------------------------------------

STREAM_KEY_COLUMNS = "room_id, media_id, stream_key, created_at"
PUBLISHER_COLUMNS = "room_id, media_id, node_id, node_url, started_at, heartbeat_at"


def _stream_key(row: tuple[Any, ...]) -> StreamKey:
    return StreamKey(room_id=row[0], media_id=row[1], key=row[2], created_at=int(row[3]))


def _publisher(row: tuple[Any, ...]) -> PublisherRecord:
    return PublisherRecord(
        room_id=row[0], media_id=row[1], node_id=row[2], node_url=row[3],
        started_at=int(row[4]), heartbeat_at=int(row[5]),
    )


def put_stream_key(key: StreamKey) -> Interaction[StreamKey]:
    try:
        yield Execute(
            f"INSERT INTO stream_keys ({STREAM_KEY_COLUMNS}) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (room_id, media_id) DO UPDATE SET stream_key = excluded.stream_key, "
            "created_at = excluded.created_at",
            (key.room_id, key.media_id, key.key, key.created_at),
        )
    except IntegrityViolation as e:
        if e.kind == "foreign_key":
            raise NotFound(f"no media item {key.media_id!r} in room {key.room_id!r}") from None
        if e.kind == "unique":
            raise Conflict("that stream key is taken") from None
        raise
    return key


def get_stream_key(room_id: str, media_id: str) -> Interaction[StreamKey | None]:
    r = yield Execute(
        f"SELECT {STREAM_KEY_COLUMNS} FROM stream_keys WHERE room_id = ? AND media_id = ?", (room_id, media_id)
    )
    return _first(r, _stream_key)


def find_stream_key(key: str) -> Interaction[StreamKey | None]:
    r = yield Execute(f"SELECT {STREAM_KEY_COLUMNS} FROM stream_keys WHERE stream_key = ?", (key,))
    return _first(r, _stream_key)


def delete_stream_key(room_id: str, media_id: str) -> Interaction[bool]:
    r = yield Execute("DELETE FROM stream_keys WHERE room_id = ? AND media_id = ?", (room_id, media_id))
    return r.rowcount > 0


def claim_publisher(record: PublisherRecord, stale_before_ms: int) -> Interaction[PublisherRecord | None]:
    """Record ``record`` unless another node holds a fresh claim; fire with the holder now."""
    try:
        yield Execute(
            f"INSERT INTO live_publishers ({PUBLISHER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (room_id, media_id) DO UPDATE SET node_id = excluded.node_id, "
            "node_url = excluded.node_url, started_at = excluded.started_at, "
            "heartbeat_at = excluded.heartbeat_at "
            "WHERE live_publishers.node_id = excluded.node_id OR live_publishers.heartbeat_at < ?",
            (record.room_id, record.media_id, record.node_id, record.node_url, record.started_at,
             record.heartbeat_at, int(stale_before_ms)),
        )
    except IntegrityViolation as e:
        if e.kind == "foreign_key":
            raise NotFound(f"no media item {record.media_id!r} in room {record.room_id!r}") from None
        raise
    return (yield from get_publisher(record.room_id, record.media_id))


def get_publisher(room_id: str, media_id: str) -> Interaction[PublisherRecord | None]:
    r = yield Execute(
        f"SELECT {PUBLISHER_COLUMNS} FROM live_publishers WHERE room_id = ? AND media_id = ?", (room_id, media_id)
    )
    return _first(r, _publisher)


def release_publisher(room_id: str, media_id: str, node_id: str) -> Interaction[bool]:
    r = yield Execute(
        "DELETE FROM live_publishers WHERE room_id = ? AND media_id = ? AND node_id = ?",
        (room_id, media_id, node_id),
    )
    return r.rowcount > 0


def touch_publishers(node_id: str, now_ms: int) -> Interaction[int]:
    r = yield Execute("UPDATE live_publishers SET heartbeat_at = ? WHERE node_id = ?", (int(now_ms), node_id))
    return r.rowcount
