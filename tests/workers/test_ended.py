"""The end-of-video worker on a real store, with time from ``twisted.internet.task.Clock``."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import pytest_twisted
from twisted.internet import task
from twisted.internet.defer import Deferred, succeed

from synctv.bus import InProcessBus, room_channel
from synctv.core.models import PlaybackState
from synctv.core.schedule import scheduled_start
from synctv.workers.ended import EndedWorker, state_from_json
from tests.store.conftest import T0, Builders


@attrs.define
class Rig:
    store: Any
    bus: InProcessBus
    reactor: task.Clock
    room_id: str
    durations: dict[str, float | None]
    worker: EndedWorker | None = None

    def now(self) -> int:
        return T0 + int(self.reactor.seconds() * 1000)

    def duration_of(self, room_id: str, media_id: str) -> Deferred[float | None]:
        return succeed(self.durations.get(media_id))

    def make_worker(self, bus: InProcessBus | None = None) -> EndedWorker:
        return EndedWorker(store=self.store, bus=bus or self.bus, clock=self.now, reactor=self.reactor,
                           duration_of=self.duration_of)

    async def set_state(self, state: PlaybackState, announce: bool = True) -> PlaybackState:
        current = await self.store.get_playback(self.room_id)
        state = attrs.evolve(state, version=current.version + 1)
        assert await self.store.set_playback(self.room_id, state, current.version)
        if announce:
            self.bus.publish(room_channel(self.room_id), {"type": "playbackState", "room_id": self.room_id,
                                                          "state": state.to_json()})
        return state

    def next_state(self) -> Deferred[PlaybackState]:
        d: Deferred[PlaybackState] = Deferred()

        def on_message(message: dict[str, Any]) -> None:
            if message.get("type") == "playbackState" and not d.called:
                unsubscribe()
                d.callback(state_from_json(message["state"]))

        unsubscribe = self.bus.subscribe(room_channel(self.room_id), on_message)
        return d


@pytest.fixture
def rig(store, make: Builders) -> Any:
    async def build() -> Rig:
        room = await make.room(kind="display")
        return Rig(store, InProcessBus(), task.Clock(), room.id, {"m": 30.0, "short": 2.0, "unknown": None})

    built = pytest_twisted.blockon(Deferred.fromCoroutine(build()))
    yield built
    if built.worker is not None:
        pytest_twisted.blockon(built.worker.stop())


@pytest_twisted.ensureDeferred
async def test_a_scheduled_show_ends_at_its_end(rig: Rig):
    """Planned at at_ms + duration; nothing happens a millisecond before; at the end the state is
    ended at the duration, one version later, written and announced."""
    rig.worker = rig.make_worker()
    await rig.worker.watch(rig.room_id)
    started = await rig.set_state(scheduled_start(PlaybackState(), "m", rig.now(), 5000, "ev"))
    assert rig.worker.pending(rig.room_id) == pytest.approx(35.0)
    rig.reactor.advance(34.999)
    assert (await rig.store.get_playback(rig.room_id)) == started
    ended = rig.next_state()
    rig.reactor.advance(0.001)
    state = await ended
    assert state == PlaybackState(media_id="m", playing=False, ended=True, position=30.0, rate=1.0,
                                  at_ms=T0 + 35_000, version=started.version + 1, event_id="ev")
    assert await rig.store.get_playback(rig.room_id) == state
    assert rig.worker.pending(rig.room_id) is None


@pytest_twisted.ensureDeferred
async def test_every_change_replans(rig: Rig):
    """A seek moves the end; a pause cancels it; an unknown duration plans nothing."""
    rig.worker = rig.make_worker()
    await rig.worker.watch(rig.room_id)
    await rig.set_state(PlaybackState(media_id="m", playing=True, position=0.0, at_ms=rig.now()))
    assert rig.worker.pending(rig.room_id) == pytest.approx(30.0)
    await rig.set_state(PlaybackState(media_id="m", playing=True, position=20.0, rate=2.0, at_ms=rig.now()))
    assert rig.worker.pending(rig.room_id) == pytest.approx(5.0)
    await rig.set_state(PlaybackState(media_id="m", playing=False, position=20.0, at_ms=rig.now()))
    assert rig.worker.pending(rig.room_id) is None
    await rig.set_state(PlaybackState(media_id="unknown", playing=True, at_ms=rig.now()))
    assert rig.worker.pending(rig.room_id) is None
    rig.reactor.advance(3600)
    assert not (await rig.store.get_playback(rig.room_id)).ended


@pytest_twisted.ensureDeferred
async def test_a_change_the_worker_did_not_hear_of_wins(rig: Rig):
    """If the state changed without a message (another node's write lost on the bus), the end is
    not written over it: the compare-and-set on the planned version fails."""
    rig.worker = rig.make_worker()
    await rig.worker.watch(rig.room_id)
    await rig.set_state(PlaybackState(media_id="short", playing=True, at_ms=rig.now()))
    moved = await rig.set_state(PlaybackState(media_id="m", playing=False, at_ms=rig.now()), announce=False)
    rig.reactor.advance(2.0)
    await rig.worker.settled()  # the step that found the newer version
    assert await rig.store.get_playback(rig.room_id) == moved


@pytest_twisted.ensureDeferred
async def test_two_nodes_write_the_end_once(rig: Rig):
    """Two workers (two nodes, two buses) plan the same end; exactly one writes it."""
    other_bus = InProcessBus()
    rig.worker = rig.make_worker()
    second = rig.make_worker(other_bus)
    await rig.worker.watch(rig.room_id)
    await second.watch(rig.room_id)
    started = await rig.set_state(PlaybackState(media_id="short", playing=True, at_ms=rig.now()))
    other_bus.publish(room_channel(rig.room_id), {"type": "playbackState", "state": started.to_json()})
    assert rig.worker.pending(rig.room_id) == second.pending(rig.room_id) == pytest.approx(2.0)
    rig.reactor.advance(2.0)
    await rig.worker.settled()
    await second.stop()
    state = await rig.store.get_playback(rig.room_id)
    assert state.ended and state.version == started.version + 1


@pytest_twisted.ensureDeferred
async def test_a_show_that_ended_while_nobody_watched_ends_at_once(rig: Rig):
    """Watching a room whose show is past its end (a restart) writes the end straight away."""
    await rig.set_state(PlaybackState(media_id="short", playing=True, at_ms=rig.now() - 60_000), announce=False)
    rig.worker = rig.make_worker()
    ended = rig.next_state()
    await rig.worker.watch(rig.room_id)
    rig.reactor.advance(0)
    state = await ended
    assert state.ended and state.at_ms == rig.now() - 58_000


@pytest_twisted.ensureDeferred
async def test_a_gap_rereads_and_a_deleted_room_is_forgotten(rig: Rig):
    """busGap re-reads the stored state; roomDeleted drops the room and its timer."""
    deleted: list[str] = []
    rig.worker = EndedWorker(store=rig.store, bus=rig.bus, clock=rig.now, reactor=rig.reactor,
                             duration_of=rig.duration_of, on_room_deleted=deleted.append)
    await rig.worker.watch(rig.room_id)
    await rig.set_state(PlaybackState(media_id="m", playing=True, at_ms=rig.now()), announce=False)
    assert rig.worker.pending(rig.room_id) is None  # not heard of yet
    rig.bus.publish(room_channel(rig.room_id), {"type": "busGap", "channel": room_channel(rig.room_id)})
    await rig.worker.settled()  # the re-read
    assert rig.worker.pending(rig.room_id) == pytest.approx(30.0)
    rig.bus.publish(room_channel(rig.room_id), {"type": "roomDeleted", "room_id": rig.room_id})
    assert deleted == [rig.room_id] and rig.worker.watching() == set()
    assert rig.worker.pending(rig.room_id) is None
    assert rig.bus.subscriber_count(room_channel(rig.room_id)) == 0


@pytest_twisted.ensureDeferred
async def test_a_failing_step_does_not_stop_the_worker(rig: Rig):
    """A duration lookup that fails is logged; the next change is planned as usual."""
    calls: list[str] = []

    def flaky(room_id: str, media_id: str) -> Deferred[float | None]:
        calls.append(media_id)
        if len(calls) == 1:
            return Deferred.fromCoroutine(_boom())
        return succeed(30.0)

    rig.worker = EndedWorker(store=rig.store, bus=rig.bus, clock=rig.now, reactor=rig.reactor, duration_of=flaky)
    await rig.worker.watch(rig.room_id)
    await rig.set_state(PlaybackState(media_id="m", playing=True, at_ms=rig.now()))
    await rig.worker.settled()
    assert rig.worker.pending(rig.room_id) is None
    await rig.set_state(PlaybackState(media_id="m", playing=True, position=1.0, at_ms=rig.now()))
    assert rig.worker.pending(rig.room_id) == pytest.approx(29.0)


async def _boom() -> float:
    raise RuntimeError("the database went away")
