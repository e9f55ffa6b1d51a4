"""Values of LAN synchronized displays: screens, events and uploaded videos (docs/displays.md).

A display group is a room of kind ``display``; a ``Display`` is one screen of it, reached at
``/display/{public_id}``. A ``DisplayEvent`` starts a media item of that room on every screen when
a UDP packet or an HTTP request triggers it. A ``Video`` is a file uploaded to this server; a
media item with provider ``upload`` and URL ``upload:{video id}`` plays it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

import attrs

from synctv.core.errors import BadRequest
from synctv.core.models import User
from synctv.core.schedule import DEFAULT_LEAD_MS

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
UPLOAD_URL_PREFIX = "upload:"
MAX_PAYLOAD_CHARS = 1024
MAX_SOURCES = 32
DEFAULT_COOLDOWN_S = 5.0  # as SyncPlayer: a trigger within 5 s of the last one is refused unless forced


def upload_url(video_id: str) -> str:
    """The media-item URL that names an uploaded video."""
    return UPLOAD_URL_PREFIX + video_id


def video_id_of(url: str) -> str | None:
    """The video id an ``upload:`` URL names, or None for any other URL."""
    if not url.startswith(UPLOAD_URL_PREFIX):
        return None
    video_id = url[len(UPLOAD_URL_PREFIX):]
    return video_id if video_id and video_id.isalnum() and len(video_id) <= 64 else None


def parse_networks(texts: Iterable[str], field: str = "allowed_sources") -> tuple[Network, ...]:
    """CIDR strings (``192.168.1.0/24``, ``10.0.0.7``, ``fd00::/8``) as networks; BadRequest otherwise."""
    networks: list[Network] = []
    for text in texts:
        try:
            networks.append(ipaddress.ip_network(text.strip(), strict=False))
        except (ValueError, TypeError, AttributeError):
            raise BadRequest(f"{str(text)[:60]!r} is not a network such as 192.168.1.0/24",
                             field=field) from None
    if len(networks) > MAX_SOURCES:
        raise BadRequest(f"at most {MAX_SOURCES} networks", field=field)
    return tuple(networks)


def check_payload(payload: str, field: str = "udp_payload") -> str:
    """A UDP payload as configured: 1-1024 characters, no NUL, not ending in CR or LF (received
    packets lose their trailing CR/LF before matching, so such a payload could never match)."""
    if not payload:
        raise BadRequest("the UDP payload must not be empty", field=field)
    if len(payload) > MAX_PAYLOAD_CHARS:
        raise BadRequest(f"the UDP payload must be at most {MAX_PAYLOAD_CHARS} characters", field=field)
    if "\x00" in payload:
        raise BadRequest("the UDP payload must not contain NUL characters", field=field)
    if payload.endswith(("\r", "\n")):
        raise BadRequest("the UDP payload must not end with a line break (they are stripped from "
                         "received packets before matching)", field=field)
    return payload


@attrs.frozen
class Display:
    id: str
    name: str
    public_id: str = attrs.field(repr=False)  # the unguessable part of /display/{public_id}
    room_id: str
    created_at: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "public_id": self.public_id,
            "room_id": self.room_id,
            "page": f"/display/{self.public_id}",
            "created_at": self.created_at,
        }


DISPLAY_USER_PREFIX = "display:"
DISPLAY_ROLE = "display"


def display_stand_in(display: Display) -> User:
    """The user a display's connection acts as: read-only, never a member, id ``display:ID``
    (signed playback URLs made for the display name it; ``Actions.access_as_grant`` checks it)."""
    return User(id=DISPLAY_USER_PREFIX + display.id, name=display.name, role=DISPLAY_ROLE, password_hash="")


@attrs.frozen
class DisplayEvent:
    id: str
    name: str
    room_id: str
    media_id: str | None  # None once the media item was removed: the event cannot fire
    udp_port: int | None = None
    udp_payload: str | None = None
    allowed_sources: tuple[str, ...] = ()  # CIDRs; empty: any source
    cooldown_s: float = DEFAULT_COOLDOWN_S  # 0: no cooldown
    lead_ms: int = DEFAULT_LEAD_MS
    last_triggered_at: int | None = None
    created_at: int = 0

    def networks(self) -> tuple[Network, ...]:
        return parse_networks(self.allowed_sources)

    @property
    def payload_bytes(self) -> bytes | None:
        return None if self.udp_payload is None else self.udp_payload.encode("utf-8")

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "room_id": self.room_id,
            "media_id": self.media_id,
            "udp_port": self.udp_port,
            "udp_payload": self.udp_payload,
            "allowed_sources": list(self.allowed_sources),
            "cooldown_s": self.cooldown_s,
            "lead_ms": self.lead_ms,
            "last_triggered_at": self.last_triggered_at,
            "created_at": self.created_at,
        }


@attrs.frozen
class Video:
    id: str
    title: str
    file_name: str  # under <data>/videos/
    size: int
    content_type: str
    format: str  # mp4, webm, mkv, mov, ts, ogg, ... (what PlaybackInfo.format says)
    duration: float | None = None
    created_by: str | None = None
    created_at: int = 0

    def to_json(self, url: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "size": self.size,
            "duration": self.duration,
            "content_type": self.content_type,
            "format": self.format,
            "url": url,
            "created_by": self.created_by,
            "created_at": self.created_at,
        }
