"""Values of the live side that the store keeps: stream keys and publisher records.

A ``StreamKey`` lets one RTMP publisher push to one live media item ``(room_id, media_id)``; an
item has at most one key, which can be rotated (replaced) or revoked (deleted). Keys are
random, high-entropy strings, shown again to whoever holds ``manage_live`` (OBS needs them
pasted), and never logged in full: ``redact_key`` is what a log line carries.

A ``PublisherRecord`` says which node holds the publisher of an item, so that another node can
send viewers there; ``heartbeat_at`` is refreshed while the publish lasts, and a record whose
heartbeat is older than the staleness bound may be taken over (its node died).
"""

from __future__ import annotations

import secrets
from typing import Any

import attrs

KEY_PREFIX = "live_"
KEY_BYTES = 24


def new_stream_key() -> str:
    """A fresh stream key: ``live_`` and 32 URL-safe characters (192 random bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)


def redact_key(key: str) -> str:
    """What a log line may show of a key: its first characters only."""
    return key[: len(KEY_PREFIX) + 4] + "..." if len(key) > len(KEY_PREFIX) + 4 else "..."


@attrs.frozen
class StreamKey:
    room_id: str
    media_id: str
    key: str = attrs.field(repr=redact_key)
    created_at: int = 0


@attrs.frozen
class PublisherRecord:
    room_id: str
    media_id: str
    node_id: str
    node_url: str
    started_at: int
    heartbeat_at: int

    def to_json(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "node_url": self.node_url,
            "started_at": self.started_at,
            "heartbeat_at": self.heartbeat_at,
        }
