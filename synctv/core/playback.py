"""Playback-state rules: how an ``update`` turns one PlaybackState into the next.

Pure: the caller passes the current time and, when known, the duration of the media. The same
rules serve the HTTP PATCH, the WebSocket ``update`` and (later) display triggers.

``play`` with ``lead_ms`` is a countdown start ("start together"): the state plays from the
position at ``now + lead_ms``, a scheduled start every client shows counting down.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs

from synctv.core.errors import BadRequest, StaleVersion
from synctv.core.models import PlaybackState

ACTIONS = ("play", "pause", "seek", "rate", "media")
MIN_RATE = 0.25
MAX_RATE = 4.0
MAX_POSITION = 366 * 24 * 3600.0  # a year of media is more than anyone needs
MAX_LEAD_MS = 60_000  # a countdown start ("play" with lead_ms) is at most a minute ahead


@attrs.frozen
class Update:
    """A requested change, based on ``version``."""

    action: str
    version: int
    position: float | None = None
    rate: float | None = None
    media_id: str | None = None
    lead_ms: int = 0  # "play" only: start this long from now (a countdown start), 0 = at once


def number_field(body: Mapping[str, Any], name: str, *, required: bool = False) -> float | None:
    """``body[name]`` as a finite float, None when absent and not ``required``; a bool, a
    non-number or an infinity is a BadRequest naming the field."""
    value = body.get(name)
    if value is None:
        if required:
            raise BadRequest(f"{name} is required", field=name)
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRequest(f"{name} must be a number", field=name)
    value = float(value)
    if not math.isfinite(value):
        raise BadRequest(f"{name} must be finite", field=name)
    return value


def parse_update(body: Any) -> Update:
    """Validate an ``update`` body (HTTP PATCH or WebSocket) into an Update."""
    if not isinstance(body, dict):
        raise BadRequest("the update must be a JSON object")
    action = body.get("action")
    if action not in ACTIONS:
        raise BadRequest(f"action must be one of {', '.join(ACTIONS)}", field="action")
    version = body.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise BadRequest("version must be the non-negative integer you based this on", field="version")
    position = number_field(body, "position")
    if position is not None and not 0 <= position <= MAX_POSITION:
        raise BadRequest("position must be between 0 and one year of seconds", field="position")
    rate = number_field(body, "rate")
    if rate is not None and not MIN_RATE <= rate <= MAX_RATE:
        raise BadRequest(f"rate must be within {MIN_RATE}-{MAX_RATE}", field="rate")
    media_id = body.get("media_id")
    if media_id is not None and (not isinstance(media_id, str) or not media_id):
        raise BadRequest("media_id must be a non-empty string", field="media_id")
    if action == "seek" and position is None:
        raise BadRequest("seek needs a position", field="position")
    if action == "rate" and rate is None:
        raise BadRequest("rate needs a rate", field="rate")
    if action == "media" and media_id is None:
        raise BadRequest("media needs a media_id", field="media_id")
    lead = number_field(body, "lead_ms")
    if lead is not None and (action != "play" or not 0 <= lead <= MAX_LEAD_MS):
        raise BadRequest(f"lead_ms goes with play only, from 0 to {MAX_LEAD_MS} ms", field="lead_ms")
    return Update(action=action, version=version, position=position, rate=rate, media_id=media_id,
                  lead_ms=int(lead or 0))


def _clamp(position: float, duration: float | None) -> float:
    position = max(0.0, position)
    if duration is not None and duration > 0:
        position = min(position, duration)
    return position


def apply_update(
    state: PlaybackState, update: Update, now_ms: int, duration: float | None = None
) -> PlaybackState:
    """Return the state after ``update`` at ``now_ms``.

    ``duration`` is that of the media playing after the update (the new one for ``media``).
    Raises StaleVersion, carrying the current state, when ``update.version`` is not current.
    """
    if update.version != state.version:
        raise StaleVersion(
            f"version {update.version} is stale; the current version is {state.version}",
            detail=state.to_json(),
        )
    here = state.expected_position(now_ms)
    nxt = {"version": state.version + 1, "at_ms": now_ms, "event_id": None}
    if update.action == "media":
        nxt.update(media_id=update.media_id, playing=False, ended=False, rate=state.rate)
        nxt["position"] = _clamp(update.position or 0.0, duration)
    else:
        if state.media_id is None:
            raise BadRequest("nothing is selected to play; choose media first", field="action")
        if update.action == "play":
            position = here if update.position is None else update.position
            if state.ended and update.position is None:
                position = 0.0
            nxt.update(playing=True, ended=False, position=_clamp(position, duration), at_ms=now_ms + update.lead_ms)
        elif update.action == "pause":
            position = here if update.position is None else update.position
            nxt.update(playing=False, position=_clamp(position, duration))
        elif update.action == "seek":
            assert update.position is not None
            nxt.update(ended=False, position=_clamp(update.position, duration))
        elif update.action == "rate":
            assert update.rate is not None
            position = here if update.position is None else update.position
            nxt.update(rate=update.rate, position=_clamp(position, duration))
    return attrs.evolve(state, **nxt)


def cleared(state: PlaybackState, now_ms: int) -> PlaybackState:
    """The state after the playing media was removed from the room."""
    return PlaybackState(rate=state.rate, at_ms=now_ms, version=state.version + 1)
