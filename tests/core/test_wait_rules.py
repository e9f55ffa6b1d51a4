"""synctv.core.wait: the room waits for its slowest viewer, within bounds. Pure, no browser."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synctv.core.errors import BadRequest
from synctv.core.models import PlaybackState
from synctv.core.playback import apply_update, parse_update
from synctv.core.wait import (
    BUDGET_WINDOW_FACTOR,
    RESUME_LEAD_MS,
    VIEWERS_SHOWN,
    ViewerEntry,
    Wait,
    WaitBudget,
    WaitSettings,
    WaitTracker,
    announced,
    check_settings,
    may_start,
    resumed_state,
    waited_for,
    waiting_state,
)

T0 = 1_700_000_000_000
PLAYING = PlaybackState(media_id="m", playing=True, position=10.0, rate=2.0, at_ms=T0, version=4)
DEFAULTS = WaitSettings()


def viewer(cid: str, ready: bool | None, *, user: str | None = None, wait: bool = True, since: int = T0,
           over: bool = False) -> ViewerEntry:
    return ViewerEntry(cid, user or f"u-{cid}", user or cid, ready=ready, wait=wait, since_ms=since, over_budget=over)


# -- settings -------------------------------------------------------------------------------------


def test_settings_default_to_waiting_ten_seconds_and_keep_other_keys():
    """Unset settings read as wait_for_all on and 10 s; check_settings keeps keys it does not own
    (settings.playlist belongs to another part) and returns them unchanged."""
    assert WaitSettings.of({}) == WaitSettings(True, 10.0)
    assert WaitSettings.of(None).wait_ms == 10_000
    mixed = {"playlist": "loop", "wait_s": 3, "wait_for_all": False, "theme": {"x": 1}}
    assert check_settings(mixed) == mixed
    assert WaitSettings.of(mixed) == WaitSettings(False, 3.0)


@pytest.mark.parametrize("settings, field", [
    ({"wait_for_all": "yes"}, "settings.wait_for_all"),
    ({"wait_for_all": 1}, "settings.wait_for_all"),
    ({"wait_s": 0.5}, "settings.wait_s"),
    ({"wait_s": 121}, "settings.wait_s"),
    ({"wait_s": True}, "settings.wait_s"),
    ({"wait_s": "10"}, "settings.wait_s"),
    ({"wait_s": float("nan")}, "settings.wait_s"),
])
def test_bad_settings_name_their_field(settings, field):
    """A wrong type or a wait outside 1-120 s is a BadRequest naming the setting."""
    with pytest.raises(BadRequest) as caught:
        check_settings(settings)
    assert caught.value.field == field


def test_stored_settings_out_of_shape_read_as_defaults():
    """A value stored before validation existed cannot break the rules: it reads as the default."""
    assert WaitSettings.of({"wait_for_all": "no", "wait_s": 1e9}) == DEFAULTS


# -- the state changes ----------------------------------------------------------------------------


def test_a_wait_holds_the_room_where_it_is_until_wait_s_from_now():
    """The waiting state is a scheduled start at the position reached now, wait_s ahead, with the
    next version: every page pauses there and plays at at_ms even if nobody resumes it."""
    now = T0 + 1500
    held = waiting_state(PLAYING, DEFAULTS, "watch", now)
    assert held == PlaybackState(media_id="m", playing=True, position=13.0, rate=2.0, at_ms=now + 10_000, version=5)
    assert held.expected_position(now + 9_999) == 13.0  # holds until the deadline
    assert held.expected_position(now + 10_500) == 14.0  # then plays on by itself


@pytest.mark.parametrize("state, settings, kind", [
    (PlaybackState(media_id="m", playing=False, at_ms=T0, version=1), DEFAULTS, "watch"),
    (PlaybackState(media_id="m", playing=True, ended=True, at_ms=T0, version=1), DEFAULTS, "watch"),
    (PlaybackState(media_id=None, playing=True, at_ms=T0, version=1), DEFAULTS, "watch"),
    (PlaybackState(media_id="m", playing=True, at_ms=T0 + 5000, version=1), DEFAULTS, "watch"),
    (PLAYING, WaitSettings(wait_for_all=False), "watch"),
    (PLAYING, DEFAULTS, "display"),
])
def test_nothing_to_wait_for(state, settings, kind):
    """Paused, ended, nothing selected, a scheduled start (a countdown or a wait already), the
    setting off, or a display room: no wait."""
    assert waiting_state(state, settings, kind, T0 + 1000) is None


def test_resume_starts_everyone_a_little_later_unless_the_state_moved_on():
    """All ready: the wait's state starts RESUME_LEAD_MS from now (same instant everywhere); a
    user's change in between (another version) or a deadline that near anyway wins."""
    held = waiting_state(PLAYING, DEFAULTS, "watch", T0 + 1000)
    assert held is not None
    resumed = resumed_state(held, held.version, T0 + 3000)
    assert resumed == PlaybackState(media_id="m", playing=True, position=held.position, rate=2.0,
                                    at_ms=T0 + 3000 + RESUME_LEAD_MS, version=held.version + 1)
    assert resumed_state(held, held.version - 1, T0 + 3000) is None
    paused = apply_update(held, parse_update({"action": "pause", "version": held.version}), T0 + 2000)
    assert resumed_state(paused, paused.version, T0 + 3000) is None
    assert resumed_state(held, held.version, held.at_ms - RESUME_LEAD_MS) is None


def test_a_user_can_start_without_waiting_or_pause_a_wait():
    """A play during a wait starts at once from the held position; a pause stays where it is held."""
    held = waiting_state(PLAYING, DEFAULTS, "watch", T0 + 1000)
    assert held is not None
    play = apply_update(held, parse_update({"action": "play", "version": held.version}), T0 + 2000)
    assert (play.playing, play.position, play.at_ms) == (True, held.position, T0 + 2000)
    pause = apply_update(held, parse_update({"action": "pause", "version": held.version}), T0 + 2000)
    assert (pause.playing, pause.position) == (False, held.position)


def test_countdown_start_is_a_play_with_a_lead():
    """play with lead_ms schedules the start lead_ms from now at the current position; the lead
    goes with play only and is at most a minute."""
    paused = PlaybackState(media_id="m", position=7.0, at_ms=T0, version=2)
    start = apply_update(paused, parse_update({"action": "play", "version": 2, "lead_ms": 3000}), T0 + 100)
    assert (start.playing, start.position, start.at_ms) == (True, 7.0, T0 + 3100)
    for body in ({"action": "pause", "version": 2, "lead_ms": 10}, {"action": "play", "version": 2, "lead_ms": 60_001},
                 {"action": "play", "version": 2, "lead_ms": -1}):
        with pytest.raises(BadRequest) as caught:
            parse_update(body)
        assert caught.value.field == "lead_ms"


# -- who is waited for ----------------------------------------------------------------------------


def test_waited_for_are_those_not_ready_who_want_to_be_waited_for():
    """Not ready, "wait for me" on, within budget; unknown readiness (a client that never
    reported, such as the CLI) is never waited for."""
    viewers = [viewer("a", False), viewer("b", True), viewer("c", None), viewer("d", False, wait=False),
               viewer("e", False, over=True)]
    assert [v.connection_id for v in waited_for(viewers)] == ["a"]


def test_a_dropped_viewer_starts_no_wait_until_it_was_ready_again():
    """Not ready since before the last wait ended: it was dropped and catches up alone; once it
    reports ready and stalls again later, it may start a wait."""
    assert may_start(viewer("a", False, since=T0), None)
    assert not may_start(viewer("a", False, since=T0), last_wait_end_ms=T0 + 10_000)
    assert may_start(viewer("a", False, since=T0 + 10_001), last_wait_end_ms=T0 + 10_000)
    assert not may_start(viewer("a", True), None)
    assert not may_start(viewer("a", False, wait=False), None)


def test_announcements_put_the_viewers_not_ready_first_and_are_bounded():
    """One node announces at most the limit, those not ready first (they matter to a wait)."""
    viewers = [viewer(f"r{i}", True) for i in range(5)] + [viewer("z", False)]
    assert [v.connection_id for v in announced(viewers, limit=3)] == ["z", "r0", "r1"]


def test_viewer_entries_round_trip_and_bad_ones_are_refused():
    entry = ViewerEntry("c1", "u1", "alice", ready=False, wait=True, since_ms=5, over_budget=True,
                        telemetry={"drift_ms": 1.5})
    assert ViewerEntry.from_json(entry.to_json()) == entry
    with pytest.raises(BadRequest):
        ViewerEntry.from_json({"user_id": "x"})
    wait = Wait(5, 13.0, T0, T0 + 10_000, "u1", "alice")
    assert Wait.from_json(wait.to_json()) == wait
    with pytest.raises(BadRequest):
        Wait.from_json({"version": "x"})


# -- the budget -----------------------------------------------------------------------------------


def test_a_user_holds_the_room_at_most_wait_s_per_window():
    """Waits a user started count until they end (or their deadline); past wait_s within
    BUDGET_WINDOW_FACTOR * wait_s the user's stalls are not waited for; later the window forgets."""
    budget = WaitBudget()
    s = WaitSettings(wait_s=10.0)
    budget.record("u", Wait(1, 0.0, T0, T0 + 10_000, "u", "u"))
    assert budget.held_ms("u", T0 + 4000, s) == 4000  # open: counts until now
    budget.close(1, T0 + 6000)
    assert budget.held_ms("u", T0 + 20_000, s) == 6000 and not budget.over("u", T0 + 20_000, s)
    budget.record("u", Wait(3, 0.0, T0 + 30_000, T0 + 40_000, "u", "u"))
    assert budget.over("u", T0 + 45_000, s)  # 6 s + 10 s (ran to its deadline)
    window = BUDGET_WINDOW_FACTOR * s.wait_ms
    assert not budget.over("u", T0 + 40_000 + window, s)
    assert budget.held_ms("other", T0, s) == 0


# -- one room over several nodes ------------------------------------------------------------------


def tracker() -> WaitTracker:
    t = WaitTracker("n1", expire_ms=30_000)
    t.saw_state(PLAYING, T0)
    return t


def test_the_tracker_starts_a_wait_for_a_stalled_local_viewer_and_resumes_when_all_are_ready():
    """A local viewer stalls: it is the starter; once the wait began, a remote viewer's stall
    joins it (waiting_for), and the wait resumes only when both are ready again."""
    t = tracker()
    now = T0 + 1000
    a = viewer("a", False, since=now)
    t.put("n1", [a], now)
    t.put("n2", [viewer("b", True)], now)
    assert t.starter([a], now) == a
    held = waiting_state(PLAYING, t.settings, "watch", now)
    assert held is not None
    t.saw_state(held, now)
    t.begin(Wait.begun(held, now, a.user_id, a.user_name))
    t.budget.record(a.user_id, t.wait)
    assert t.starter([a], now + 10) is None  # one wait at a time
    t.put("n2", [viewer("b", False, since=now + 100)], now + 100)
    assert [w["connection_id"] for w in t.view(now + 100)["wait"]["waiting_for"]] == ["a", "b"]
    t.put("n1", [viewer("a", True, since=now + 2000)], now + 2000)
    assert t.to_resume(now + 2000) is None  # b still buffers
    t.put("n2", [viewer("b", True, since=now + 3000)], now + 3000)
    assert t.to_resume(now + 3000) == held.version
    resumed = resumed_state(held, held.version, now + 3000)
    assert resumed is not None
    t.saw_state(resumed, now + 3000)
    assert t.wait is None and t.view(now + 3000)["wait"] is None
    assert t.budget.held_ms(a.user_id, now + 3000, t.settings) == 3000


def test_the_deadline_ends_a_wait_and_drops_who_was_not_ready():
    """Nobody became ready: at until_ms the wait is over without any state change; the viewer
    still buffering starts no new wait (it catches up alone), even with budget left."""
    t = WaitTracker("n1", expire_ms=30_000, settings=WaitSettings(wait_s=2.0))
    t.saw_state(PLAYING, T0)
    now = T0 + 1000
    a = viewer("a", False, since=now)
    t.put("n1", [a], now)
    held = waiting_state(PLAYING, t.settings, "watch", now)
    t.saw_state(held, now)
    t.begin(Wait.begun(held, now, "u-a", "a"))
    assert t.to_resume(now + 1000) is None
    after = held.at_ms + 1
    assert t.view(after)["wait"] is None
    assert t.last_wait_end_ms == held.at_ms
    assert t.starter([a], after) is None
    again = viewer("a", False, since=after + 5000)  # ready in between, stalled again
    assert t.starter([again], after + 5000) == again


def test_the_view_is_bounded_and_keeps_who_is_not_ready():
    """A frame carries at most VIEWERS_SHOWN viewers, those not ready first, with the full count;
    the wait names at most as many of those it waits for and says how many there are."""
    t = tracker()
    t.put("n1", [viewer(f"r{i:03}", True) for i in range(300)], T0)
    t.put("n2", [viewer(f"s{i:03}", False, since=T0 + 1) for i in range(60)], T0)
    t.begin(Wait(4, 10.0, T0, T0 + 10_000, "u", "u"))
    view = t.view(T0 + 10)
    assert view["count"] == 360 and len(view["viewers"]) == VIEWERS_SHOWN
    assert all(v["ready"] is False for v in view["viewers"])
    assert view["wait"]["waiting"] == 60 and len(view["wait"]["waiting_for"]) == VIEWERS_SHOWN


def test_remote_entries_expire_and_a_late_wait_record_is_ignored():
    """Another node's viewers go when it stops announcing; a wait older than the state seen is over."""
    t = tracker()
    t.put("n2", [viewer("b", False)], T0)
    assert t.expire(T0 + 30_001) and t.viewers() == []
    newer = PlaybackState(media_id="m", playing=False, position=3.0, at_ms=T0, version=9)
    t.saw_state(newer, T0)
    t.begin(Wait(6, 0.0, T0, T0 + 10_000, "u", "u"))
    assert t.wait is None


def test_no_wait_in_a_display_room_or_with_the_setting_off():
    t = tracker()
    a = viewer("a", False)
    t.configure(WaitSettings(wait_for_all=False), "watch")
    assert t.starter([a], T0 + 1) is None
    t.configure(DEFAULTS, "display")
    assert t.starter([a], T0 + 1) is None


# -- never hangs ----------------------------------------------------------------------------------

EVENTS = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=3000),  # ms since the previous event
        st.sampled_from(["stall", "ready", "dont-wait", "pause", "play", "seek"]),
        st.sampled_from(["a", "b", "c"]),
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(EVENTS, st.integers(min_value=1, max_value=20))
def test_never_hangs_and_each_user_holds_the_room_within_its_budget(events, wait_s):
    """Whatever viewers and users do, in any order: every waiting state starts by itself within
    wait_s of being made, a room that played plays again within wait_s unless a user paused it,
    and the waits one user starts hold the room at most wait_s (plus one wait in flight) per
    window."""
    s = WaitSettings(wait_s=float(wait_s))
    t = WaitTracker("n1", 30_000, settings=s)
    state, now = PLAYING, T0
    t.saw_state(state, now)
    viewers = {cid: viewer(cid, True, since=now) for cid in "abc"}
    held: dict[str, int] = {}
    for gap, what, cid in events:
        now += gap
        v = viewers[cid]
        if what in ("stall", "ready"):
            viewers[cid] = ViewerEntry(v.connection_id, v.user_id, v.user_name, ready=what == "ready", wait=v.wait,
                                       since_ms=now if (what == "ready") != v.ready else v.since_ms)
        elif what == "dont-wait":
            viewers[cid] = ViewerEntry(v.connection_id, v.user_id, v.user_name, ready=v.ready, wait=not v.wait,
                                       since_ms=v.since_ms)
        else:
            action = {"pause": "pause", "play": "play", "seek": "seek"}[what]
            body = {"action": action, "version": state.version, **({"position": 1.0} if action == "seek" else {})}
            state = apply_update(state, parse_update(body), now)
            t.saw_state(state, now)
        local = [ViewerEntry(e.connection_id, e.user_id, e.user_name, ready=e.ready, wait=e.wait, since_ms=e.since_ms,
                             over_budget=t.over_budget(e.user_id, now)) for e in viewers.values()]
        t.put("n1", local, now)
        version = t.to_resume(now)
        if version is not None:
            resumed = resumed_state(state, version, now)
            assert resumed is not None
            assert resumed.at_ms <= state.at_ms
            state = resumed
            t.saw_state(state, now)
        starter = t.starter(local, now)
        if starter is not None:
            waiting = waiting_state(state, s, "watch", now)
            assert waiting is not None
            assert waiting.at_ms - now == s.wait_ms  # bounded: it plays by itself at the deadline
            state = waiting
            t.saw_state(state, now)
            wait = Wait.begun(state, now, starter.user_id, starter.user_name)
            t.begin(wait)
            t.budget.record(starter.user_id, wait)
            held[starter.user_id] = held.get(starter.user_id, 0) + 1
        if state.playing:
            assert state.at_ms <= now + s.wait_ms  # whatever happened, play goes on within wait_s
        for user in held:
            assert t.budget.held_ms(user, now, s) <= 2 * s.wait_ms
