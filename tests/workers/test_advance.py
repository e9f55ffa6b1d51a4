"""Auto-advance (synctv.workers.advance) on a real store, two steps standing for two nodes on one
bus; timers on ``task.Clock``, server time from it."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import pytest_twisted
from twisted.internet import task
from twisted.internet.defer import DeferredList

from synctv.bus import InProcessBus, room_channel
from synctv.core.models import PlaybackState
from synctv.core.playback import Update
from synctv.workers.advance import AdvanceStep
from tests.api.api_support import make_actions
from tests.store.conftest import T0, Builders


@attrs.define
class Rig:
    store: Any
    reactor: task.Clock
    bus: InProcessBus
    actions: Any
    room: Any
    user: Any
    items: list[Any]
    seen: list[dict[str, Any]]

    def now(self) -> int:
        return T0 + int(self.reactor.seconds() * 1000)

    def step(self) -> AdvanceStep:
        return AdvanceStep(actions=self.actions, reactor=self.reactor, horizon_s=1.55)

    async def play(self, index: int = 0) -> PlaybackState:
        current = await self.store.get_playback(self.room.id)
        state = PlaybackState(media_id=self.items[index].id, playing=True, at_ms=self.now(), version=current.version + 1)
        assert await self.store.set_playback(self.room.id, state, current.version)
        return state

    async def settle(self, *steps: AdvanceStep) -> None:
        """Wait until the steps have nothing in flight, including what finished work started (an
        advance's bus message starts a re-plan, which a slower database may still be reading)."""
        while pending := [d for s in steps for d in list(s.in_flight)]:
            await DeferredList(pending)

    def states(self) -> list[dict[str, Any]]:
        return [m["state"] for m in self.seen if m.get("type") == "playbackState"]


async def build(store: Any, make: Builders, playlist: str | None = None, durations=(10.0, 4.0)) -> Rig:
    reactor = task.Clock()
    bus = InProcessBus()
    rig_box: list[Rig] = []
    actions = make_actions(store, lambda: rig_box[0].now(), bus)  # type: ignore[arg-type]
    user = await make.user()
    room = await make.room(user, settings={"playlist": playlist} if playlist else {})
    items = [await make.media(room, duration=d) for d in durations]
    seen: list[dict[str, Any]] = []
    bus.subscribe(room_channel(room.id), seen.append)
    rig_box.append(Rig(store, reactor, bus, actions, room, user, items, seen))
    return rig_box[0]


@pytest_twisted.ensureDeferred
async def test_two_nodes_planning_the_same_end_advance_once(store, make: Builders):
    """Both nodes serve the room and fire at the end; exactly one version step is written and
    announced: the next item from 0, playing."""
    rig = await build(store, make)
    started = await rig.play(0)
    a, b = rig.step(), rig.step()
    rig.reactor.advance(9.0)
    await a.run([rig.room.id])
    await b.run([rig.room.id])
    rig.reactor.advance(0.999)
    assert rig.states() == []
    rig.reactor.advance(0.001)
    await rig.settle(a, b)
    state = await store.get_playback(rig.room.id)
    assert (state.media_id, state.playing, state.position, state.version) == (rig.items[1].id, True, 0.0,
                                                                            started.version + 1)
    assert [s["version"] for s in rig.states()] == [started.version + 1]
    assert a.advanced + b.advanced == 1


@pytest_twisted.ensureDeferred
async def test_a_members_change_in_the_same_instant_wins(store, make: Builders):
    """A pause lands just before the planned end: the advance finds a newer version and writes
    nothing; the paused state stands."""
    rig = await build(store, make)
    started = await rig.play(0)
    step = rig.step()
    rig.reactor.advance(9.5)
    await step.run([rig.room.id])
    paused = await rig.actions.update_playback(rig.user, rig.room.id, Update("pause", started.version))
    rig.reactor.advance(0.5)
    await rig.settle(step)
    assert await store.get_playback(rig.room.id) == paused
    assert step.advanced == 0


@pytest_twisted.ensureDeferred
async def test_a_room_without_connections_here_is_not_touched(store, make: Builders):
    rig = await build(store, make)
    started = await rig.play(0)
    step = rig.step()
    rig.reactor.advance(9.5)
    await step.run([])  # nobody connected on this node
    rig.reactor.advance(5)
    await step.run([])
    assert step.timers == {} and await store.get_playback(rig.room.id) == started


@pytest.mark.parametrize(("playlist", "last_plays"), [("next", None), ("loop", 0), ("one", 1), ("stop", None)])
@pytest_twisted.ensureDeferred
async def test_the_last_item_ends_as_settings_playlist_says(store, make: Builders, playlist: str, last_plays):
    """After the last item: "next" and "stop" persist playing false, ended true at the end
    position; "loop" plays the first; "one" the same again."""
    rig = await build(store, make, playlist)
    started = await rig.play(1)  # the last item, 4 s
    step = rig.step()
    rig.reactor.advance(3.0)
    await step.run([rig.room.id])
    rig.reactor.advance(1.0)
    await rig.settle(step)
    state = await store.get_playback(rig.room.id)
    assert state.version == started.version + 1
    if last_plays is None:
        assert (state.media_id, state.playing, state.ended, state.position) == (rig.items[1].id, False, True, 4.0)
    else:
        assert (state.media_id, state.playing, state.ended, state.position) == (rig.items[last_plays].id, True,
                                                                                False, 0.0)


@pytest_twisted.ensureDeferred
async def test_live_items_and_unknown_durations_never_advance(store, make: Builders):
    """An item whose duration is not known yet, and a live item even with a duration, play on."""
    rig = await build(store, make, durations=(None, 4.0))
    rig.items.append(await make.media(rig.room, provider="rtmp", duration=2.0))
    for index in (0, 2):
        started = await rig.play(index)
        step = rig.step()
        for _ in range(5):
            rig.reactor.advance(1.0)
            await step.run([rig.room.id])
        assert step.timers == {} and await store.get_playback(rig.room.id) == started


@pytest_twisted.ensureDeferred
async def test_an_item_shorter_than_a_tick_is_advanced_at_its_end_without_waiting_for_a_tick(store, make: Builders):
    """After an advance the room is read again and the new item's end planned at once: a 0.5 s
    item ends on time although no tick runs in between."""
    rig = await build(store, make, durations=(10.0, 0.5, 0.5))
    started = await rig.play(0)
    step = rig.step()
    rig.reactor.advance(9.0)
    await step.run([rig.room.id])
    rig.reactor.advance(1.0)
    await rig.settle(step)
    assert (await store.get_playback(rig.room.id)).media_id == rig.items[1].id
    rig.reactor.advance(0.5)
    await rig.settle(step)
    state = await store.get_playback(rig.room.id)
    assert (state.media_id, state.version, state.at_ms) == (rig.items[2].id, started.version + 2, rig.now())


@pytest_twisted.ensureDeferred
async def test_a_members_seek_near_the_end_is_planned_at_once(store, make: Builders):
    """The step follows the active rooms' bus channels: a seek to 0.5 s before the end, made
    between ticks, is advanced at that end, not at the next tick."""
    rig = await build(store, make)
    started = await rig.play(0)
    step = rig.step()
    rig.reactor.advance(1.0)
    await step.run([rig.room.id])
    assert step.timers == {}  # the end (10 s) is beyond the horizon
    rig.reactor.advance(0.2)
    sought = await rig.actions.update_playback(rig.user, rig.room.id, Update("seek", started.version, position=9.5))
    await rig.settle(step)
    rig.reactor.advance(0.5)
    await rig.settle(step)
    state = await store.get_playback(rig.room.id)
    assert (state.media_id, state.version) == (rig.items[1].id, sought.version + 1)
    step.stop()
