"""settings.playlist (synctv.core.playlist): what follows an item's end, in each mode."""

from __future__ import annotations

import pytest

from synctv.core.errors import BadRequest
from synctv.core.models import PlaybackState
from synctv.core.playlist import advanced, check_settings, due_ms, mode_of

ORDER = ["a", "b", "c"]
END = 10_000


def playing(media: str, version: int = 7) -> PlaybackState:
    return PlaybackState(media_id=media, playing=True, position=0.0, rate=1.0, at_ms=0, version=version)


@pytest.mark.parametrize(("mode", "media", "following"), [
    ("next", "a", "b"), ("next", "b", "c"), ("loop", "c", "a"), ("loop", "a", "b"), ("one", "b", "b"),
])
def test_modes_that_play_on(mode: str, media: str, following: str):
    """The following item plays from 0, one version later, from the end (or now when later)."""
    new = advanced(playing(media), ORDER, mode, 10.0, END, END + 40)
    assert new == PlaybackState(media_id=following, playing=True, ended=False, position=0.0, rate=1.0,
                                at_ms=END + 40, version=8)


@pytest.mark.parametrize(("mode", "media"), [("next", "c"), ("stop", "a"), ("stop", "c"), ("next", "gone")])
def test_modes_that_end(mode: str, media: str):
    """After the last item in "next", after any in "stop" (and for an item removed meanwhile):
    stopped at the end, ended, one version later."""
    new = advanced(playing(media), ORDER, mode, 10.0, END, END + 40)
    assert (new.media_id, new.playing, new.ended, new.position, new.at_ms, new.version) == (
        media, False, True, 10.0, END, 8)


def test_live_items_and_unknown_durations_never_come_due():
    state = playing("a")
    assert due_ms(state, 10.0, "direct") == 10_000
    assert due_ms(state, 10.0, "rtmp") is None and due_ms(state, 10.0, "live") is None
    assert due_ms(state, None, "direct") is None


def test_settings_are_checked_and_unknown_values_read_as_the_default():
    assert check_settings({"playlist": "loop", "wait_s": 3}) == {"playlist": "loop", "wait_s": 3}
    with pytest.raises(BadRequest) as e:
        check_settings({"playlist": "shuffle"})
    assert e.value.field == "settings.playlist"
    assert mode_of({}) == "next" and mode_of({"playlist": "bogus"}) == "next" and mode_of({"playlist": "one"}) == "one"
