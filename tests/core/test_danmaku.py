"""When provider danmaku fall due as a room plays (synctv.core.danmaku), pure."""

from __future__ import annotations

from synctv.core.danmaku import MAX_WAKE_S, Danmaku, DanmakuTrack, feed_step, restart_cursor
from synctv.core.models import PlaybackState

T0 = 1_000_000
TRACK = DanmakuTrack([Danmaku(id=str(i), at=at, text=f"d{at}") for i, at in enumerate([5.0, 1.0, 2.0, 2.0, 9.0])])


def _playing(position: float = 0.0, rate: float = 1.0, at_ms: int = T0) -> PlaybackState:
    return PlaybackState(media_id="m", playing=True, position=position, rate=rate, at_ms=at_ms, version=1)


def test_due_between_the_cursor_and_the_position_in_order():
    state = _playing()
    cursor = restart_cursor(None, state, T0)
    step = feed_step(TRACK, state, cursor, T0)
    assert step.due == () and step.wake_in_s == 1.0
    step = feed_step(TRACK, state, step.cursor, T0 + 2000)
    assert [d.at for d in step.due] == [1.0, 2.0, 2.0] and step.wake_in_s == 3.0
    step = feed_step(TRACK, state, step.cursor, T0 + 2000)
    assert step.due == ()  # nothing twice


def test_rate_scheduled_start_pause_and_end():
    fast = _playing(rate=2.0)
    assert feed_step(TRACK, fast, restart_cursor(None, fast, T0), T0).wake_in_s == 0.5
    later = _playing(at_ms=T0 + 3000)  # a scheduled start 3 s from now
    assert feed_step(TRACK, later, restart_cursor(None, later, T0), T0).wake_in_s == 4.0
    paused = PlaybackState(media_id="m", playing=False, position=4.0, at_ms=T0)
    assert feed_step(TRACK, paused, 0.0, T0 + 10_000) == feed_step(TRACK, paused, 0.0, T0)
    assert feed_step(TRACK, paused, 0.0, T0).due == () and feed_step(TRACK, paused, 0.0, T0).wake_in_s is None
    done = feed_step(TRACK, _playing(), 9.5, T0 + 10_000)
    assert done.due == () and done.wake_in_s is None
    far = DanmakuTrack([Danmaku(id="x", at=1000.0, text="far")])
    assert feed_step(far, _playing(), 0.0, T0).wake_in_s == MAX_WAKE_S


def test_seeks_restart_the_cursor_small_steps_keep_it():
    state = _playing(position=1.5)
    assert restart_cursor(4.0, state, T0) < 1.5  # back: from the new position on, again
    assert restart_cursor(0.2, state, T0) < 1.5  # far forward: the skipped ones are not sent
    assert restart_cursor(1.2, state, T0) == 1.2  # a small step forward keeps what is owed
    assert restart_cursor(None, state, T0) < 1.5
    step = feed_step(TRACK, state, restart_cursor(0.2, state, T0), T0)
    assert [d.at for d in step.due] == []  # 1.0 was skipped by the seek
    step = feed_step(TRACK, _playing(position=2.0), restart_cursor(None, _playing(position=2.0), T0), T0)
    assert [d.at for d in step.due] == [2.0, 2.0]  # those exactly at the seek point come


def test_a_batch_is_bounded():
    track = DanmakuTrack([Danmaku(id=str(i), at=0.5, text="x") for i in range(500)])
    step = feed_step(track, _playing(), 0.0, T0 + 1000, max_batch=100)
    assert len(step.due) == 100
