"""What a room does when its item ends: the ``settings.playlist`` rule and the advanced state.

Pure: the caller passes the state, the playlist order, the duration and the time.

``settings.playlist`` (docs/rooms.md):

- ``"next"`` (default): the next item plays from 0; after the last item the room stays at the
  end of it, ``playing: false, ended: true``;
- ``"loop"``: the next item, and after the last the first;
- ``"one"``: the same item again from 0;
- ``"stop"``: end after each item (``playing: false, ended: true`` at its end).

``advanced`` makes a new state whose version follows the one it was computed from, so writing it
is a compare-and-set on that version (``Actions.auto_advance``): of several nodes that compute
it for the same end, one writes it and the others find the version gone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from synctv.core.errors import BadRequest
from synctv.core.models import PlaybackState
from synctv.core.schedule import ended_state, expected_end_ms

MODES = ("next", "loop", "one", "stop")
DEFAULT_MODE = "next"
#: providers whose items are live: they have no end and never advance
LIVE_PROVIDERS = frozenset({"rtmp", "live"})


def mode_of(settings: Mapping[str, Any] | None) -> str:
    """The room's mode as stored (a value stored before validation counts as the default)."""
    value = (settings or {}).get("playlist", DEFAULT_MODE)
    return value if value in MODES else DEFAULT_MODE


def check_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` with ``playlist`` checked (BadRequest naming the field); other keys kept."""
    checked = dict(settings)
    if "playlist" in checked and checked["playlist"] not in MODES:
        raise BadRequest(f"settings.playlist must be one of {', '.join(MODES)}", field="settings.playlist")
    return checked


def due_ms(state: PlaybackState, duration: float | None, provider: str | None) -> int | None:
    """Server time at which ``state``'s item ends and the room should advance, or None (paused,
    ended, unknown duration, a live item)."""
    if provider in LIVE_PROVIDERS:
        return None
    return expected_end_ms(state, duration)


def advanced(
    state: PlaybackState, order: Sequence[str], mode: str, duration: float, end_ms: int, now_ms: int,
) -> PlaybackState:
    """The state after ``state``'s item ended at ``end_ms`` (see the module docstring). ``order``
    is the playlist's media ids in order; an item no longer in it counts as the last."""
    following: str | None = None
    if mode == "one":
        following = state.media_id
    elif mode in ("next", "loop") and order:
        index = order.index(state.media_id) if state.media_id in order else len(order) - 1
        if index + 1 < len(order):
            following = order[index + 1]
        elif mode == "loop":
            following = order[0]
    if following is None:
        return ended_state(state, duration, end_ms)
    return PlaybackState(
        media_id=following, playing=True, ended=False, position=0.0, rate=state.rate,
        at_ms=max(now_ms, end_ms), version=state.version + 1,
    )
