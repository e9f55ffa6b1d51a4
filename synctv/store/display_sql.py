"""Store operations of LAN synchronized displays (schema 0004): displays, display events, videos.

Interactions in the style of ``synctv.store.sql`` (one generator per operation, both drivers run
them); kept in their own module so ``sql`` stays one job. ``claim_event_trigger`` is the
cooldown's compare-and-set: of two triggers racing on one event, exactly one claims it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from synctv.core.displays import Display, DisplayEvent, Video
from synctv.core.errors import Conflict, NotFound
from synctv.store.sql import _first, dump_json
from synctv.store.statements import Execute, IntegrityViolation, Interaction

DISPLAY_COLUMNS = "id, name, public_id, room_id, created_at"
EVENT_COLUMNS = (
    "id, name, room_id, media_id, udp_port, udp_payload, allowed_sources, cooldown_s, lead_ms, "
    "last_triggered_at, created_at"
)
VIDEO_COLUMNS = "id, title, file_name, size, content_type, format, duration, created_by, created_at"


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def display_from_row(row: tuple[Any, ...]) -> Display:
    return Display(id=row[0], name=row[1], public_id=row[2], room_id=row[3], created_at=int(row[4]))


def event_from_row(row: tuple[Any, ...]) -> DisplayEvent:
    return DisplayEvent(
        id=row[0],
        name=row[1],
        room_id=row[2],
        media_id=row[3],
        udp_port=_int_or_none(row[4]),
        udp_payload=row[5],
        allowed_sources=tuple(json.loads(row[6])),
        cooldown_s=float(row[7]),
        lead_ms=int(row[8]),
        last_triggered_at=_int_or_none(row[9]),
        created_at=int(row[10]),
    )


def video_from_row(row: tuple[Any, ...]) -> Video:
    return Video(
        id=row[0],
        title=row[1],
        file_name=row[2],
        size=int(row[3]),
        content_type=row[4],
        format=row[5],
        duration=None if row[6] is None else float(row[6]),
        created_by=row[7],
        created_at=int(row[8]),
    )


def _update(table: str, columns: dict[str, Callable[[Any], Any]], row_id: str,
            fields: dict[str, Any]) -> Execute | None:
    unknown = sorted(set(fields) - set(columns))
    if unknown:
        raise TypeError(f"unknown {table} fields {unknown}; known: {sorted(columns)}")
    if not fields:
        return None
    sets = ", ".join(f"{name} = ?" for name in fields)
    values = tuple(columns[name](value) for name, value in fields.items())
    return Execute(f"UPDATE {table} SET {sets} WHERE id = ?", (*values, row_id))


def _name_taken(e: IntegrityViolation, what: str, name: str) -> Conflict:
    if e.on("name"):
        return Conflict(f"{what} named {name!r} exists", field="name")
    return Conflict(f"that {what.split()[-1]} already exists")


# -- displays --------------------------------------------------------------------------------

DISPLAY_FIELDS: dict[str, Callable[[Any], Any]] = {"name": str, "room_id": str, "public_id": str}


def _select_display(where: str, value: str) -> Interaction[Display | None]:
    r = yield Execute(f"SELECT {DISPLAY_COLUMNS} FROM displays WHERE {where} = ?", (value,))
    return _first(r, display_from_row)


def create_display(display: Display) -> Interaction[Display]:
    try:
        yield Execute(
            f"INSERT INTO displays ({DISPLAY_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
            (display.id, display.name, display.public_id, display.room_id, display.created_at),
        )
    except IntegrityViolation as e:
        if e.kind == "foreign_key":
            raise NotFound(f"no room with id {display.room_id!r}", field="room") from None
        if e.kind == "unique":
            raise _name_taken(e, "a display", display.name) from None
        raise
    return display


def get_display(display_id: str) -> Interaction[Display | None]:
    return (yield from _select_display("id", display_id))


def get_display_by_name(name: str) -> Interaction[Display | None]:
    return (yield from _select_display("name", name))


def get_display_by_public_id(public_id: str) -> Interaction[Display | None]:
    return (yield from _select_display("public_id", public_id))


def list_displays() -> Interaction[list[Display]]:
    r = yield Execute(f"SELECT {DISPLAY_COLUMNS} FROM displays ORDER BY created_at, id")
    return [display_from_row(row) for row in r.rows]


def update_display(display_id: str, fields: dict[str, Any]) -> Interaction[Display | None]:
    statement = _update("displays", DISPLAY_FIELDS, display_id, fields)
    if statement is not None:
        try:
            yield statement
        except IntegrityViolation as e:
            if e.kind == "foreign_key":
                raise NotFound(f"no room with id {fields.get('room_id')!r}", field="room") from None
            if e.kind == "unique":
                raise _name_taken(e, "a display", str(fields.get("name"))) from None
            raise
    return (yield from _select_display("id", display_id))


def delete_display(display_id: str) -> Interaction[bool]:
    r = yield Execute("DELETE FROM displays WHERE id = ?", (display_id,))
    return r.rowcount > 0


# -- display events --------------------------------------------------------------------------

EVENT_FIELDS: dict[str, Callable[[Any], Any]] = {
    "name": str,
    "room_id": str,
    "media_id": lambda v: None if v is None else str(v),
    "udp_port": lambda v: None if v is None else int(v),
    "udp_payload": lambda v: None if v is None else str(v),
    "allowed_sources": lambda v: dump_json(list(v)),
    "cooldown_s": float,
    "lead_ms": int,
}


def _select_event(where: str, value: str) -> Interaction[DisplayEvent | None]:
    r = yield Execute(f"SELECT {EVENT_COLUMNS} FROM display_events WHERE {where} = ?", (value,))
    return _first(r, event_from_row)


def _event_violation(e: IntegrityViolation, name: str, fields: dict[str, Any]) -> Exception:
    if e.kind == "unique":
        return _name_taken(e, "an event", name)
    if e.kind == "foreign_key":
        if e.on("media"):
            return NotFound(f"no media item {fields.get('media_id')!r}", field="media")
        return NotFound("the event's room or media item does not exist", field="room")
    return e


def create_event(event: DisplayEvent) -> Interaction[DisplayEvent]:
    try:
        yield Execute(
            f"INSERT INTO display_events ({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event.id, event.name, event.room_id, event.media_id, event.udp_port, event.udp_payload,
                dump_json(list(event.allowed_sources)), float(event.cooldown_s), int(event.lead_ms),
                event.last_triggered_at, event.created_at,
            ),
        )
    except IntegrityViolation as e:
        raise _event_violation(e, event.name, {"media_id": event.media_id}) from None
    return event


def get_event(event_id: str) -> Interaction[DisplayEvent | None]:
    return (yield from _select_event("id", event_id))


def get_event_by_name(name: str) -> Interaction[DisplayEvent | None]:
    return (yield from _select_event("name", name))


def list_events() -> Interaction[list[DisplayEvent]]:
    r = yield Execute(f"SELECT {EVENT_COLUMNS} FROM display_events ORDER BY created_at, id")
    return [event_from_row(row) for row in r.rows]


def update_event(event_id: str, fields: dict[str, Any]) -> Interaction[DisplayEvent | None]:
    statement = _update("display_events", EVENT_FIELDS, event_id, fields)
    if statement is not None:
        try:
            yield statement
        except IntegrityViolation as e:
            raise _event_violation(e, str(fields.get("name")), fields) from None
    return (yield from _select_event("id", event_id))


def delete_event(event_id: str) -> Interaction[bool]:
    r = yield Execute("DELETE FROM display_events WHERE id = ?", (event_id,))
    return r.rowcount > 0


def claim_event_trigger(event_id: str, expected_last: int | None, now_ms: int) -> Interaction[bool]:
    """Set ``last_triggered_at = now_ms`` if it still is ``expected_last`` (what the caller checked
    the cooldown against); False when another trigger claimed the event first."""
    if expected_last is None:
        r = yield Execute(
            "UPDATE display_events SET last_triggered_at = ? WHERE id = ? AND last_triggered_at IS NULL",
            (int(now_ms), event_id),
        )
    else:
        r = yield Execute(
            "UPDATE display_events SET last_triggered_at = ? WHERE id = ? AND last_triggered_at = ?",
            (int(now_ms), event_id, int(expected_last)),
        )
    return r.rowcount > 0


# -- videos ----------------------------------------------------------------------------------

VIDEO_FIELDS: dict[str, Callable[[Any], Any]] = {
    "title": str,
    "duration": lambda v: None if v is None else float(v),
}


def _select_video(video_id: str) -> Interaction[Video | None]:
    r = yield Execute(f"SELECT {VIDEO_COLUMNS} FROM videos WHERE id = ?", (video_id,))
    return _first(r, video_from_row)


def create_video(video: Video) -> Interaction[Video]:
    try:
        yield Execute(
            f"INSERT INTO videos ({VIDEO_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                video.id, video.title, video.file_name, int(video.size), video.content_type, video.format,
                None if video.duration is None else float(video.duration), video.created_by,
                video.created_at,
            ),
        )
    except IntegrityViolation as e:
        if e.kind == "unique":
            raise Conflict(f"a video with id {video.id!r} exists", field="id") from None
        if e.kind == "foreign_key":
            raise NotFound(f"no user with id {video.created_by!r}") from None
        raise
    return video


def get_video(video_id: str) -> Interaction[Video | None]:
    return (yield from _select_video(video_id))


def list_videos() -> Interaction[list[Video]]:
    r = yield Execute(f"SELECT {VIDEO_COLUMNS} FROM videos ORDER BY created_at, id")
    return [video_from_row(row) for row in r.rows]


def update_video(video_id: str, fields: dict[str, Any]) -> Interaction[Video | None]:
    statement = _update("videos", VIDEO_FIELDS, video_id, fields)
    if statement is not None:
        yield statement
    return (yield from _select_video(video_id))


def delete_video(video_id: str) -> Interaction[bool]:
    r = yield Execute("DELETE FROM videos WHERE id = ?", (video_id,))
    return r.rowcount > 0


def list_upload_media() -> Interaction[list[tuple[str, str, str]]]:
    """``(room_id, media_id, url)`` of every media item with provider ``upload``."""
    r = yield Execute(
        "SELECT room_id, id, url FROM media_items WHERE provider = ? ORDER BY room_id, sort, id", ("upload",)
    )
    return [(row[0], row[1], row[2]) for row in r.rows]
