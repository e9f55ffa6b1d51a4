"""JSON shapes of the display routes (docs/displays.md), in the validator of ``synctv.api.schema``:
one description per shape serves request parsing and the OpenAPI document."""

from __future__ import annotations

import attrs

from synctv.api.schema import (
    ID,
    MANY,
    PLAYBACK_STATE,
    ROOM,
    ROOM_NAME,
    TIME_MS,
    TITLE,
    Bool,
    Int,
    JsonObject,
    List,
    Num,
    Schema,
    Str,
)
from synctv.core.displays import DEFAULT_COOLDOWN_S, MAX_PAYLOAD_CHARS, MAX_SOURCES
from synctv.core.schedule import DEFAULT_LEAD_MS, MAX_COOLDOWN_S, MAX_LEAD_MS

NAME = attrs.evolve(ROOM_NAME, description="unique; no '/' or control characters")
REF = Str(min_len=1, max_len=64)
PORT = Int(minimum=1, maximum=65535,
           description="site admins only; inside [triggers] udp_ports (default 5000-5999)")
PAYLOAD = Str(min_len=1, max_len=MAX_PAYLOAD_CHARS,
              description="matched exactly against a packet with its trailing CR/LF removed")
SOURCES = List(of=Str(min_len=1, max_len=64), max_items=MAX_SOURCES,
               description="CIDRs allowed to trigger (UDP and HTTP); empty: any source")
COOLDOWN = Num(minimum=0.0, maximum=MAX_COOLDOWN_S,
               description=f"seconds between triggers (default {DEFAULT_COOLDOWN_S:g}; 0: none)")
LEAD = Int(minimum=0, maximum=MAX_LEAD_MS, description="ms from the trigger to the start")
STATUS = JsonObject(optional=True, description="runtime status on this node")

DISPLAY = Schema(name="Display", fields={
    "id": ID, "name": Str(min_len=1, max_len=64), "public_id": Str(max_len=64), "room_id": ID,
    "page": Str(max_len=128), "created_at": TIME_MS, "status": STATUS,
})
EVENT = Schema(name="DisplayEvent", fields={
    "id": ID, "name": Str(min_len=1, max_len=64), "room_id": ID, "media_id": Str(max_len=64, nullable=True),
    "udp_port": attrs.evolve(PORT, nullable=True),
    "udp_payload": Str(max_len=MAX_PAYLOAD_CHARS, nullable=True),
    "allowed_sources": SOURCES, "cooldown_s": COOLDOWN, "lead_ms": LEAD,
    "last_triggered_at": Int(minimum=0, nullable=True), "created_at": TIME_MS, "status": STATUS,
})
VIDEO = Schema(name="Video", fields={
    "id": ID, "title": Str(max_len=256), "size": Int(minimum=0), "duration": Num(minimum=0.0, nullable=True),
    "content_type": Str(max_len=128), "format": Str(max_len=32), "url": Str(max_len=4096),
    "created_by": Str(max_len=64, nullable=True), "created_at": TIME_MS,
    "media_ids": List(of=ID, max_items=MANY, optional=True,
                      description="media items playing this video (in the caller's display room)"),
})

# request bodies
DISPLAY_CREATE = Schema(name="DisplayCreate", fields={
    "name": NAME, "room": attrs.evolve(REF, description="a display room's id or name"),
})
DISPLAY_PATCH = Schema(name="DisplayPatch", fields={
    "name": attrs.evolve(NAME, optional=True), "room": attrs.evolve(REF, optional=True),
    "new_public_id": Bool(optional=True, description="true: a new page address; the old one stops working"),
})
EVENT_CREATE = Schema(name="DisplayEventCreate", fields={
    "name": NAME, "room": attrs.evolve(REF, description="a display room's id or name"),
    "media": attrs.evolve(REF, description="a media item of the room, or an uploaded video's id"),
    "udp_port": attrs.evolve(PORT, optional=True, nullable=True),
    "udp_payload": attrs.evolve(PAYLOAD, optional=True, nullable=True),
    "allowed_sources": attrs.evolve(SOURCES, default=[]),
    "cooldown_s": attrs.evolve(COOLDOWN, default=DEFAULT_COOLDOWN_S), "lead_ms": attrs.evolve(LEAD, default=DEFAULT_LEAD_MS),
})
EVENT_PATCH = Schema(name="DisplayEventPatch", fields={
    "name": attrs.evolve(NAME, optional=True), "room": attrs.evolve(REF, optional=True),
    "media": attrs.evolve(REF, optional=True),
    "udp_port": attrs.evolve(PORT, optional=True, nullable=True),
    "udp_payload": attrs.evolve(PAYLOAD, optional=True, nullable=True),
    "allowed_sources": attrs.evolve(SOURCES, optional=True),
    "cooldown_s": attrs.evolve(COOLDOWN, optional=True), "lead_ms": attrs.evolve(LEAD, optional=True),
})
VIDEO_PATCH = Schema(name="VideoPatch", fields={"title": TITLE})

# answers
DISPLAYS = Schema(fields={"displays": List(of=DISPLAY, max_items=MANY)})
ONE_DISPLAY = Schema(fields={"display": DISPLAY})
EVENTS = Schema(fields={"events": List(of=EVENT, max_items=MANY)})
ONE_EVENT = Schema(fields={"event": EVENT})
VIDEOS = Schema(fields={"videos": List(of=VIDEO, max_items=MANY)})
ONE_VIDEO = Schema(fields={"video": VIDEO})
SESSION = Schema(name="DisplaySession", fields={
    "token": Str(max_len=4096), "expires_at": TIME_MS, "room_id": ID, "room": ROOM, "display": DISPLAY,
    "ws_url": Str(max_len=4096), "idle_image_url": Str(max_len=4096), "videos_url": Str(max_len=4096),
    "state": PLAYBACK_STATE, "server_time_ms": TIME_MS,
})
TRIGGERED = Schema(name="TriggerResult", fields={
    "event": EVENT, "state": PLAYBACK_STATE, "at_ms": TIME_MS, "starts_in_ms": Int(minimum=0),
})
IDLE_IMAGE = Schema(name="IdleImage", fields={
    "content_type": Str(max_len=64), "size": Int(minimum=0), "updated_at": TIME_MS,
})
