"""Scheduling rules for display events: a trigger is a scheduled start, cooldowns, the end of a video.

Pure: callers pass the time (server milliseconds) and the durations. DESIGN.md, "One sync model":
a state with ``playing``, ``position == 0`` and ``at_ms`` in the future is a scheduled start, so a
display event needs no state of its own -- it is one more playback-state change.
"""

from __future__ import annotations

import math

import attrs

from synctv.core.models import PlaybackState

DEFAULT_LEAD_MS = 5000
MAX_LEAD_MS = 10 * 60 * 1000
MAX_COOLDOWN_S = 24 * 3600.0


def scheduled_start(
    state: PlaybackState, media_id: str, now_ms: int, lead_ms: int, event_id: str | None
) -> PlaybackState:
    """The state after an event fires at ``now_ms``: ``media_id`` plays from 0 at ``now_ms + lead_ms``.

    The rate is 1.0 (a show runs at normal speed, whatever the room did before) and the version
    follows ``state``'s, so the write is a compare-and-set on ``state.version``.
    """
    if lead_ms < 0:
        raise ValueError(f"lead_ms must not be negative, not {lead_ms}")
    return PlaybackState(
        media_id=media_id,
        playing=True,
        ended=False,
        position=0.0,
        rate=1.0,
        at_ms=now_ms + lead_ms,
        version=state.version + 1,
        event_id=event_id,
    )


def cooldown_remaining(last_triggered_ms: int | None, cooldown_s: float, now_ms: int) -> int:
    """Milliseconds until an event may fire again; 0 when it may fire now.

    An event never triggered, or with no cooldown, may always fire. A clock that reads earlier
    than the last trigger (another node's clock, say) counts from the last trigger.
    """
    if last_triggered_ms is None or cooldown_s <= 0:
        return 0
    ready_ms = last_triggered_ms + math.ceil(cooldown_s * 1000)
    return max(0, ready_ms - now_ms)


def retry_after_s(remaining_ms: int) -> int:
    """A ``Retry-After`` value in whole seconds: rounded up, at least 1 while anything remains."""
    if remaining_ms <= 0:
        return 0
    return max(1, math.ceil(remaining_ms / 1000))


def expected_end_ms(state: PlaybackState, duration: float | None) -> int | None:
    """Server time at which ``state`` reaches the end of its media, or None if it never will
    (paused, ended, nothing selected, or the duration is unknown)."""
    if not state.playing or state.ended or state.media_id is None:
        return None
    if duration is None or not math.isfinite(duration) or duration <= 0 or state.rate <= 0:
        return None
    remaining_s = max(0.0, duration - state.position)
    return state.at_ms + math.ceil(remaining_s / state.rate * 1000)


def ended_state(state: PlaybackState, duration: float, end_ms: int) -> PlaybackState:
    """The state once the media has played to its end at ``end_ms``: stopped at ``duration``.

    ``event_id`` stays, so screens can tell the end of an event's show from any other stop.
    """
    return attrs.evolve(
        state,
        playing=False,
        ended=True,
        position=float(duration),
        at_ms=end_ms,
        version=state.version + 1,
    )
