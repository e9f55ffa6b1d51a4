"""Display scheduling rules: a trigger is a scheduled start, cooldowns, the end of a video."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synctv.core.models import PlaybackState
from synctv.core.schedule import (
    cooldown_remaining,
    ended_state,
    expected_end_ms,
    retry_after_s,
    scheduled_start,
)

NOW = 1_700_000_000_000


def test_a_trigger_is_a_scheduled_start_at_now_plus_lead():
    """The new state plays the media from 0 at now + lead, next version, rate 1, with the event id."""
    before = PlaybackState(media_id="old", playing=True, position=42.0, rate=2.0, at_ms=NOW - 5000, version=7)
    after = scheduled_start(before, "show", NOW, 5000, "ev1")
    assert after == PlaybackState(media_id="show", playing=True, ended=False, position=0.0, rate=1.0,
                                  at_ms=NOW + 5000, version=8, event_id="ev1")
    # until at_ms everyone waits at 0; then the position runs from 0
    assert after.expected_position(NOW + 4999) == 0.0
    assert after.expected_position(NOW + 6500) == pytest.approx(1.5)


def test_a_scheduled_start_clears_an_ended_state():
    """Triggering after a show ended starts it again (ended false, position 0)."""
    ended = PlaybackState(media_id="show", ended=True, position=30.0, at_ms=NOW - 1, version=3, event_id="ev1")
    after = scheduled_start(ended, "show", NOW, 0, "ev1")
    assert (after.playing, after.ended, after.position, after.at_ms) == (True, False, 0.0, NOW)


def test_a_negative_lead_is_a_programming_error():
    """lead_ms is validated at the edge; a negative one here is a bug."""
    with pytest.raises(ValueError):
        scheduled_start(PlaybackState(), "m", NOW, -1, None)


@pytest.mark.parametrize(("last", "cooldown", "now", "remaining"), [
    (None, 10.0, NOW, 0),  # never triggered
    (NOW, 0.0, NOW, 0),  # no cooldown
    (NOW - 3000, 10.0, NOW, 7000),
    (NOW - 10_000, 10.0, NOW, 0),  # exactly over
    (NOW - 9999, 10.0, NOW, 1),
    (NOW + 500, 1.0, NOW, 1500),  # another node's clock a little ahead: counted from its trigger
    (NOW - 100, 0.25, NOW, 150),
])
def test_cooldown_remaining(last, cooldown, now, remaining):
    """Milliseconds until the next trigger may fire."""
    assert cooldown_remaining(last, cooldown, now) == remaining


@pytest.mark.parametrize(("remaining", "seconds"), [(0, 0), (1, 1), (999, 1), (1000, 1), (1001, 2), (7000, 7)])
def test_retry_after_rounds_up_to_whole_seconds(remaining, seconds):
    """Retry-After never tells a client to come back before the cooldown is over."""
    assert retry_after_s(remaining) == seconds


@settings(max_examples=200, deadline=None)
@given(last=st.integers(0, 2**41), cooldown=st.floats(0.001, 86400), elapsed=st.integers(0, 10**8))
def test_cooldown_is_over_exactly_when_retry_after_says(last, cooldown, elapsed):
    """Waiting retry_after seconds is always enough, and the remaining time only shrinks."""
    now = last + elapsed
    remaining = cooldown_remaining(last, cooldown, now)
    assert remaining >= 0
    assert cooldown_remaining(last, cooldown, now + retry_after_s(remaining) * 1000) == 0
    assert cooldown_remaining(last, cooldown, now + 1) <= remaining


def test_expected_end_of_a_scheduled_start():
    """A 30 s video scheduled at T ends at T + 30 s; at rate 2 from 10 s it ends 10 s later."""
    state = scheduled_start(PlaybackState(), "m", NOW, 5000, "e")
    assert expected_end_ms(state, 30.0) == NOW + 5000 + 30_000
    fast = PlaybackState(media_id="m", playing=True, position=10.0, rate=2.0, at_ms=NOW)
    assert expected_end_ms(fast, 30.0) == NOW + 10_000


@pytest.mark.parametrize("state", [
    PlaybackState(media_id="m", playing=False, at_ms=NOW),
    PlaybackState(media_id="m", playing=True, ended=True, at_ms=NOW),
    PlaybackState(media_id=None, playing=True, at_ms=NOW),
])
def test_no_end_when_nothing_plays(state):
    """Paused, ended or empty states never end."""
    assert expected_end_ms(state, 30.0) is None


@pytest.mark.parametrize("duration", [None, 0.0, -1.0, float("nan"), float("inf")])
def test_no_end_without_a_usable_duration(duration):
    """An unknown or absurd duration plans nothing."""
    assert expected_end_ms(PlaybackState(media_id="m", playing=True, at_ms=NOW), duration) is None


def test_a_position_past_the_duration_ends_at_once():
    """A state already past its end is due at its at_ms."""
    state = PlaybackState(media_id="m", playing=True, position=40.0, at_ms=NOW)
    assert expected_end_ms(state, 30.0) == NOW


def test_the_ended_state_stops_at_the_duration():
    """Ended: not playing, at the end, one version later, the event id kept."""
    state = scheduled_start(PlaybackState(version=4), "m", NOW, 5000, "ev")
    end = expected_end_ms(state, 12.5)
    assert end is not None
    ended = ended_state(state, 12.5, end)
    assert (ended.playing, ended.ended, ended.position, ended.at_ms) == (False, True, 12.5, end)
    assert (ended.version, ended.event_id, ended.media_id) == (state.version + 1, "ev", "m")
