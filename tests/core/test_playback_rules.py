"""synctv.core.playback: parsing updates and turning one PlaybackState into the next. Pure."""

from __future__ import annotations

import pytest

from synctv.core.errors import BadRequest, StaleVersion
from synctv.core.models import PlaybackState
from synctv.core.playback import Update, apply_update, cleared, parse_update

T0 = 1_700_000_000_000
PLAYING = PlaybackState(media_id="m1", playing=True, position=10.0, rate=1.0, at_ms=T0, version=4)


def test_expected_position_advances_with_rate_only_while_playing():
    """position + elapsed * rate while playing; frozen when paused or before a scheduled start."""
    state = PlaybackState(media_id="m", playing=True, position=10.0, rate=2.0, at_ms=T0)
    assert state.expected_position(T0 + 1500) == 13.0
    assert state.expected_position(T0 - 500) == 10.0  # at_ms in the future: not started yet
    assert PlaybackState(media_id="m", position=10.0, at_ms=T0).expected_position(T0 + 9999) == 10.0


@pytest.mark.parametrize("body, expected", [
    ({"action": "play", "version": 3}, Update("play", 3)),
    ({"action": "seek", "version": 0, "position": 12}, Update("seek", 0, position=12.0)),
    ({"action": "rate", "version": 1, "rate": 0.25}, Update("rate", 1, rate=0.25)),
    ({"action": "media", "version": 2, "media_id": "x", "position": None}, Update("media", 2, media_id="x")),
])
def test_parse_update_accepts_valid_bodies(body, expected):
    """Valid bodies parse into Update values; numbers become floats; null means absent."""
    assert parse_update(body) == expected


@pytest.mark.parametrize("body, field", [
    ([], None),
    ({"version": 1}, "action"),
    ({"action": "play"}, "version"),
    ({"action": "play", "version": True}, "version"),
    ({"action": "play", "version": -1}, "version"),
    ({"action": "play", "version": 1.5}, "version"),
    ({"action": "seek", "version": 1}, "position"),
    ({"action": "seek", "version": 1, "position": -0.1}, "position"),
    ({"action": "seek", "version": 1, "position": float("inf")}, "position"),
    ({"action": "seek", "version": 1, "position": True}, "position"),
    ({"action": "rate", "version": 1}, "rate"),
    ({"action": "rate", "version": 1, "rate": 4.01}, "rate"),
    ({"action": "rate", "version": 1, "rate": 0.2}, "rate"),
    ({"action": "media", "version": 1}, "media_id"),
    ({"action": "media", "version": 1, "media_id": ""}, "media_id"),
    ({"action": "media", "version": 1, "media_id": 5}, "media_id"),
])
def test_parse_update_names_the_bad_field(body, field):
    """Each malformed update raises BadRequest naming the offending field."""
    with pytest.raises(BadRequest) as caught:
        parse_update(body)
    assert caught.value.field == field


def test_stale_version_carries_the_current_state():
    """An update naming an old version raises StaleVersion with the current state as detail."""
    with pytest.raises(StaleVersion) as caught:
        apply_update(PLAYING, Update("pause", 3), T0 + 1000)
    assert caught.value.detail == PLAYING.to_json()


def test_pause_freezes_the_expected_position_and_bumps_the_version():
    """pause without a position keeps where playback is now; version +1, at_ms = now."""
    new = apply_update(PLAYING, Update("pause", 4), T0 + 2500)
    assert new == PlaybackState(media_id="m1", playing=False, position=12.5, rate=1.0, at_ms=T0 + 2500, version=5)


def test_play_after_the_end_restarts_from_zero():
    """play on an ended state without a position starts over; with one, starts there."""
    ended = PlaybackState(media_id="m1", ended=True, position=100.0, at_ms=T0, version=1)
    assert apply_update(ended, Update("play", 1), T0 + 10).position == 0.0
    resumed = apply_update(ended, Update("play", 1, position=42.0), T0 + 10)
    assert (resumed.playing, resumed.ended, resumed.position) == (True, False, 42.0)


def test_seek_keeps_playing_and_clamps_to_the_duration():
    """seek keeps play/pause, clears ended, and clamps into [0, duration] when it is known."""
    new = apply_update(PLAYING, Update("seek", 4, position=500.0), T0 + 1, duration=120.0)
    assert (new.playing, new.position) == (True, 120.0)
    assert apply_update(PLAYING, Update("seek", 4, position=500.0), T0 + 1).position == 500.0


def test_rate_changes_from_the_current_position():
    """rate re-anchors at the position reached so far, then plays at the new rate."""
    new = apply_update(PLAYING, Update("rate", 4, rate=2.0), T0 + 4000)
    assert (new.rate, new.position, new.at_ms) == (2.0, 14.0, T0 + 4000)
    assert new.expected_position(T0 + 5000) == 16.0


def test_media_starts_paused_and_keeps_the_rate():
    """media switches item, paused at the given (clamped) position or 0, rate kept."""
    state = PlaybackState(rate=1.5, version=0)
    new = apply_update(state, Update("media", 0, media_id="m2", position=30.0), T0, duration=20.0)
    assert new == PlaybackState(media_id="m2", playing=False, position=20.0, rate=1.5, at_ms=T0, version=1)


def test_actions_other_than_media_need_a_selection():
    """play/pause/seek/rate with no media chosen is a BadRequest."""
    for update in (Update("play", 0), Update("pause", 0), Update("seek", 0, position=1.0), Update("rate", 0, rate=2.0)):
        with pytest.raises(BadRequest):
            apply_update(PlaybackState(), update, T0)


def test_event_id_is_dropped_by_a_manual_change():
    """A state from a display event loses its event_id at the next manual change."""
    scheduled = PlaybackState(media_id="m", playing=True, at_ms=T0 + 500, version=7, event_id="ev1")
    assert scheduled.to_json()["event_id"] == "ev1"
    new = apply_update(scheduled, Update("pause", 7), T0)
    assert new.event_id is None and "event_id" not in new.to_json()
    assert new.position == 0.0  # paused before the scheduled start: still at 0


def test_cleared_keeps_only_the_rate_and_makes_a_new_version():
    """After the playing item is removed: no media, paused at 0, same rate, next version."""
    assert cleared(PLAYING, T0 + 9) == PlaybackState(rate=1.0, at_ms=T0 + 9, version=5)
