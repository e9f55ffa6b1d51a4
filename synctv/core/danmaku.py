"""Provider danmaku (Bilibili's comments), timed by the room's playback. Pure.

A :class:`DanmakuTrack` holds one media item's danmaku sorted by position. :func:`feed_step`
says, for a playback state and the time now, which of them are due since the last step (the
``cursor``: the media position up to which the room has had them), where the cursor moves, and
how long until the next one falls due. The caller (``synctv.providers.danmaku``) keeps the
cursor and a timer; this module only decides.

Rules: while playing, danmaku whose position lies in ``(cursor, position]`` are due, at most
``max_batch`` per step (the earliest; a seek past thousands sends none of the skipped ones);
paused or stopped, none are. A playback change that moves the position back, or forward by
more than ``JUMP_S`` from the cursor (a seek, another item), restarts the cursor just before
the new position: after a seek the danmaku from there on come (again), those skipped do not,
and nothing at the seek point is lost; a small step forward (a rate change) keeps the cursor.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

import attrs

from synctv.core.models import PlaybackState

JUMP_S = 1.0
MAX_BATCH = 100
MIN_WAKE_S = 0.05
MAX_WAKE_S = 30.0  # look again at least this often (cheap), whatever the next danmaku's position
_EPSILON = 1e-6


@attrs.frozen
class Danmaku:
    """One comment: shown when the media reaches ``at`` seconds. ``mode``: 1-3 scroll, 4 bottom,
    5 top (Bilibili's numbers); ``color``: 0xRRGGBB."""

    id: str
    at: float
    text: str
    mode: int = 1
    color: int = 0xFFFFFF
    size: int = 25

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "at": self.at, "text": self.text, "mode": self.mode, "color": self.color,
                "size": self.size}


class DanmakuTrack:
    """One item's danmaku, sorted by ``at`` (ties keep their source order)."""

    def __init__(self, items: Iterable[Danmaku]) -> None:
        self.items: tuple[Danmaku, ...] = tuple(sorted(items, key=lambda d: d.at))
        self._positions = [d.at for d in self.items]

    def __len__(self) -> int:
        return len(self.items)

    def between(self, after: float, upto: float) -> tuple[Danmaku, ...]:
        """Danmaku with ``after < at <= upto``."""
        lo = bisect.bisect_right(self._positions, after)
        hi = bisect.bisect_right(self._positions, upto)
        return self.items[lo:hi]

    def next_after(self, position: float) -> float | None:
        """The position of the first danmaku after ``position``, or None."""
        i = bisect.bisect_right(self._positions, position)
        return self._positions[i] if i < len(self._positions) else None


@attrs.frozen
class FeedStep:
    due: tuple[Danmaku, ...]
    cursor: float
    wake_in_s: float | None  # None: nothing will fall due until the playback changes


def restart_cursor(cursor: float | None, state: PlaybackState, now_ms: int) -> float:
    """The cursor after a playback change (see the module docstring)."""
    position = max(0.0, state.expected_position(now_ms))
    if cursor is None or position < cursor or position - cursor > JUMP_S:
        return position - _EPSILON
    return cursor


def feed_step(track: DanmakuTrack, state: PlaybackState, cursor: float, now_ms: int,
              max_batch: int = MAX_BATCH) -> FeedStep:
    """What is due now, the new cursor and when to step next (see the module docstring)."""
    if not state.playing or state.ended or state.rate <= 0:
        return FeedStep((), cursor, None)
    position = max(0.0, state.expected_position(now_ms))
    due: tuple[Danmaku, ...] = ()
    if position > cursor:
        due = track.between(cursor, position)[:max_batch]
        cursor = position
    following = track.next_after(cursor)
    if following is None:
        return FeedStep(due, cursor, None)
    wait = (following - cursor) / state.rate
    if now_ms < state.at_ms:  # a scheduled start: nothing moves until at_ms
        wait += (state.at_ms - now_ms) / 1000.0
    return FeedStep(due, cursor, min(MAX_WAKE_S, max(MIN_WAKE_S, wait)))
