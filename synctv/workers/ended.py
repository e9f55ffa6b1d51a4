"""The end-of-video worker: a playing state with a known duration becomes ``ended`` at its end.

For each watched room the worker keeps one timer at the expected end of what is playing
(``synctv.core.schedule.expected_end_ms``: ``at_ms + (duration - position) / rate``). Every
``playbackState`` message on the room's bus channel re-plans it (cancelled when nothing plays);
at the end the worker re-reads the state and, if it is still the version it planned for, writes
``ended_state`` by compare-and-set on that version -- so of several nodes' workers exactly one
writes it, and a change that raced the end wins over it. A ``busGap`` re-reads the state; a
``roomDeleted`` forgets the room. Time comes from an injected clock and ``IReactorTime``
(tests use ``twisted.internet.task.Clock``).

Which rooms: ``synctv.displays.subsystem`` watches every display room at start and each room a
display or event is added to, a screen opens a session in or an event starts; the same worker
can serve watch rooms (auto-advance) by calling ``watch``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from synctv.bus import Bus, Message, room_channel
from synctv.core.clock import Clock
from synctv.core.models import PlaybackState
from synctv.core.schedule import ended_state, expected_end_ms

DurationOf = Callable[[str, str], Deferred[float | None]]


def state_from_json(body: dict[str, Any]) -> PlaybackState:
    """A PlaybackState from its JSON shape (a bus message's ``state``)."""
    return PlaybackState(
        media_id=body.get("media_id"),
        playing=bool(body.get("playing")),
        ended=bool(body.get("ended")),
        position=float(body.get("position", 0.0)),
        rate=float(body.get("rate", 1.0)),
        at_ms=int(body.get("at_ms", 0)),
        version=int(body.get("version", 0)),
        event_id=body.get("event_id"),
    )


class EndedWorker:
    log = Logger()

    def __init__(
        self, *, store: Any, bus: Bus, clock: Clock, reactor: IReactorTime, duration_of: DurationOf,
        on_room_deleted: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.bus = bus
        self.clock = clock
        self.reactor = reactor
        self.duration_of = duration_of
        self.on_room_deleted = on_room_deleted
        self._subscriptions: dict[str, Callable[[], None]] = {}
        self._timers: dict[str, IDelayedCall] = {}
        self._seen: dict[str, int] = {}  # room -> newest version planned from
        self._steps: set[Deferred[None]] = set()  # in flight
        self._stopped = False

    # -- which rooms ----------------------------------------------------------------------------

    def watching(self) -> set[str]:
        return set(self._subscriptions)

    def pending(self, room_id: str) -> float | None:
        """Seconds (reactor time) at which the room's end is planned, or None."""
        timer = self._timers.get(room_id)
        return timer.getTime() if timer is not None and timer.active() else None

    def watch(self, room_id: str) -> Deferred[None]:
        """Follow the room's playback from now on; plans its end from the stored state."""
        if self._stopped:
            return succeed(None)
        if room_id not in self._subscriptions:
            self._subscriptions[room_id] = self.bus.subscribe(
                room_channel(room_id), lambda message: self._message(room_id, message)
            )
            return self._step(self._reread(room_id), room_id)
        return succeed(None)

    def unwatch(self, room_id: str) -> None:
        unsubscribe = self._subscriptions.pop(room_id, None)
        if unsubscribe is not None:
            unsubscribe()
        self._cancel(room_id)
        self._seen.pop(room_id, None)

    def stop(self) -> Deferred[None]:
        """Forget every room; fires once the steps in flight have finished (before the store closes)."""
        self._stopped = True
        for room_id in list(self._subscriptions):
            self.unwatch(room_id)
        return self.settled()

    def settled(self) -> Deferred[None]:
        """Fires once the steps in flight now (reads, plans, writes) have finished."""
        return DeferredList(list(self._steps)).addCallback(lambda _: None)

    # -- planning -------------------------------------------------------------------------------

    def _step(self, coroutine: Any, room_id: str) -> Deferred[None]:
        """Run one step; a failure is logged and the worker carries on."""
        d = Deferred.fromCoroutine(coroutine)

        def failed(failure: Any) -> None:
            if not self._stopped:
                self.log.failure("end-of-video worker: room {room_id}", failure, room_id=room_id)

        def done(result: None) -> None:
            self._steps.discard(d)

        d.addErrback(failed).addCallback(done)
        if not d.called:
            self._steps.add(d)
        return d

    def _message(self, room_id: str, message: Message) -> None:
        kind = message.get("type")
        if kind == "playbackState" and isinstance(message.get("state"), dict):
            try:
                state = state_from_json(message["state"])
            except (TypeError, ValueError):
                self.log.warn("end-of-video worker: a malformed state on room {room_id}", room_id=room_id)
                return
            self._step(self._plan(room_id, state), room_id)
        elif kind == "busGap":
            self._step(self._reread(room_id), room_id)
        elif kind == "roomDeleted":
            self.unwatch(room_id)
            if self.on_room_deleted is not None:
                self.on_room_deleted(room_id)

    async def _reread(self, room_id: str) -> None:
        state = await self.store.get_playback(room_id)
        if state is None:
            self.unwatch(room_id)
            return
        await self._plan(room_id, state, reread=True)

    def _cancel(self, room_id: str) -> None:
        timer = self._timers.pop(room_id, None)
        if timer is not None and timer.active():
            timer.cancel()

    async def _plan(self, room_id: str, state: PlaybackState, reread: bool = False) -> None:
        seen = self._seen.get(room_id, -1)
        if state.version < seen or (state.version == seen and not reread):
            return  # an older message than one already planned from
        self._seen[room_id] = state.version
        self._cancel(room_id)
        duration = None
        if state.playing and not state.ended and state.media_id is not None:
            duration = await self.duration_of(room_id, state.media_id)
        if self._seen.get(room_id) != state.version or room_id not in self._subscriptions:
            return  # a newer state arrived while the duration was read, or the room is gone
        end_ms = expected_end_ms(state, duration)
        if end_ms is None or duration is None:
            return
        delay_s = max(0.0, (end_ms - self.clock()) / 1000.0)
        self._timers[room_id] = self.reactor.callLater(
            delay_s, self._due, room_id, state.version, duration, end_ms
        )

    def _due(self, room_id: str, version: int, duration: float, end_ms: int) -> None:
        self._timers.pop(room_id, None)
        self._step(self._end(room_id, version, duration, end_ms), room_id)

    async def _end(self, room_id: str, version: int, duration: float, end_ms: int) -> None:
        state = await self.store.get_playback(room_id)
        if state is None or state.version != version:
            return  # changed since: the change re-planned (or will)
        ended = ended_state(state, duration, end_ms)
        if not await self.store.set_playback(room_id, ended, state.version):
            return  # another node's worker, or a client, changed it first
        self.log.info("room {room_id}: media {media_id} ended", room_id=room_id, media_id=state.media_id)
        self.bus.publish(room_channel(room_id), {"type": "playbackState", "room_id": room_id,
                                                 "state": ended.to_json()})
