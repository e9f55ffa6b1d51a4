"""Values of the domain. Frozen: a change makes a new value.

``to_json`` gives the public shape used by the HTTP API, the WebSocket protocol and the CLI.
"""

from __future__ import annotations

from typing import Any

import attrs

from synctv.core.permissions import Permission


@attrs.frozen
class User:
    id: str
    name: str
    role: str  # root | admin | user
    password_hash: str = attrs.field(repr=False)
    token_generation: int = 0
    created_at: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "role": self.role, "created_at": self.created_at}


@attrs.frozen
class Room:
    id: str
    name: str
    kind: str  # watch | display
    password_hash: str | None = attrs.field(repr=False, default=None)
    settings: dict[str, Any] = attrs.field(factory=dict)
    creator_id: str | None = None
    created_at: int = 0

    @property
    def has_password(self) -> bool:
        return self.password_hash is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "has_password": self.has_password,
            "settings": self.settings,
            "creator_id": self.creator_id,
            "created_at": self.created_at,
        }


@attrs.frozen
class Member:
    room_id: str
    user_id: str
    role: str  # creator | admin | member | guest
    permissions: Permission
    joined_at: int = 0
    user_name: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "room_id": self.room_id,
            "user_id": self.user_id,
            "user_name": self.user_name,
            "role": self.role,
            "permissions": self.permissions.names(),
            "joined_at": self.joined_at,
        }


@attrs.frozen
class Subtitle:
    name: str
    url: str
    format: str = "vtt"  # vtt | srt | ass
    headers: dict[str, str] = attrs.field(factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "format": self.format, "headers": self.headers}


@attrs.frozen
class MediaItem:
    id: str
    room_id: str
    sort: int  # playlist order, ascending
    title: str
    url: str
    provider: str = "direct"
    provider_data: dict[str, Any] = attrs.field(factory=dict)
    headers: dict[str, str] = attrs.field(factory=dict)
    subtitles: tuple[Subtitle, ...] = ()
    duration: float | None = None
    created_by: str | None = None
    created_at: int = 0
    probe_error: str | None = None  # why the duration probe failed (docs/workers.md), else None

    def to_json(self, *, header_values: bool = True) -> dict[str, Any]:
        """The item as the API shows it. Header values (cookies, tokens) are an upstream's
        secrets: with ``header_values=False`` (a member without ``manage_media``) ``headers`` and
        each subtitle's ``headers`` are empty and only ``header_names`` tells what is sent."""
        return {
            "id": self.id,
            "room_id": self.room_id,
            "sort": self.sort,
            "title": self.title,
            "url": self.url,
            "provider": self.provider,
            "provider_data": self.provider_data,
            "headers": self.headers if header_values else {},
            "header_names": sorted(self.headers),
            "subtitles": [s.to_json() if header_values else {**s.to_json(), "headers": {}} for s in self.subtitles],
            "duration": self.duration,
            "probe_error": self.probe_error,
            "created_by": self.created_by,
            "created_at": self.created_at,
        }


@attrs.frozen
class PlaybackState:
    """The room's playback, authoritative on the server (DESIGN.md, "One sync model").

    ``position`` (seconds) was true at server time ``at_ms``; while ``playing`` the expected
    position at ``now`` is ``position + (now - at_ms) / 1000 * rate``. ``at_ms`` in the future with
    ``playing`` and ``position == 0`` is a scheduled start.
    """

    media_id: str | None = None
    playing: bool = False
    ended: bool = False
    position: float = 0.0
    rate: float = 1.0
    at_ms: int = 0
    version: int = 0
    event_id: str | None = None

    def expected_position(self, now_ms: int) -> float:
        if not self.playing or now_ms <= self.at_ms:
            return self.position
        return self.position + (now_ms - self.at_ms) / 1000.0 * self.rate

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "media_id": self.media_id,
            "playing": self.playing,
            "ended": self.ended,
            "position": self.position,
            "rate": self.rate,
            "at_ms": self.at_ms,
            "version": self.version,
        }
        if self.event_id is not None:
            body["event_id"] = self.event_id
        return body
