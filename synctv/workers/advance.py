"""Auto-advance: a playing item that reaches its end moves the room on, exactly once.

Each scheduler tick (``AdvanceStep.run``) reads, in one query, the playing state of every active
watch room on this node with its item's duration and provider (``Store.playing_rooms``). For a
room whose end (``core.playlist.due_ms``; never for a live item or an unknown duration) falls
before the next tick, a timer is set at that instant; at it, ``Actions.auto_advance`` applies the
room's ``settings.playlist`` by compare-and-set on the version it was planned from, and only if
the stored state is still that one. Between ticks the step also listens to the active rooms' bus
channels: a ``playbackState`` (an advance made here or on another node, a member's play or seek)
re-reads that room and re-plans at once, so an end is timed exactly even when it comes sooner
than the next tick (a short item, a seek near the end). So:

- several nodes serving the room each plan and fire the same advance; one compare-and-set wins,
  the others find the version gone and write nothing (one version step, one ``playbackState``);
- a member's change made in the same instant either lands first (the advance finds a new
  version and does nothing; the next tick plans from the member's state) or after (the member's
  update names a stale version and gets ``stale_version`` with the advanced state);
- a room with no connection on this node is not read at all by this node.

Display rooms are the end-of-show worker's (``synctv.workers.ended``), not this step's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger

from synctv.bus import room_channel
from synctv.core.playlist import due_ms


class AdvanceStep:
    log = Logger()
    name = "advance"

    def __init__(self, *, actions: Any, reactor: Any, horizon_s: float) -> None:
        """``horizon_s``: plan timers for ends that fall within this long (the tick interval and
        a margin); a later end is planned by a later tick."""
        self.actions = actions
        self.store = actions.store
        self.clock = actions.clock
        self.reactor = reactor
        self.horizon_ms = int(horizon_s * 1000)
        self.timers: dict[str, tuple[int, IDelayedCall]] = {}  # room -> (version planned, timer)
        self.bus = actions.bus
        self.in_flight: set[Deferred[Any]] = set()
        self.active: frozenset[str] = frozenset()  # as of the last tick
        self._subscriptions: dict[str, Any] = {}  # active room -> unsubscribe
        self.stopped = False
        self.advanced = 0

    async def run(self, active: Sequence[str]) -> None:
        self.active = frozenset(active)
        self._follow(self.active)
        playing = await self.store.playing_rooms(sorted(active)) if active else []
        planned = self._plan(playing)
        for room_id in set(self.timers) - planned:
            self._cancel(room_id)

    def _plan(self, playing: Sequence[Any]) -> set[str]:
        """Set a timer at the end of each room in ``playing`` that ends within the horizon; the
        rooms planned."""
        planned: set[str] = set()
        now = self.clock()
        for room in playing:
            if room.kind != "watch" or room.room_id not in self.active:
                continue
            end = due_ms(room.state, room.duration, room.provider)
            if end is None or end - now > self.horizon_ms:
                continue
            planned.add(room.room_id)
            current = self.timers.get(room.room_id)
            if current is not None and current[0] == room.state.version and current[1].active():
                continue
            self._cancel(room.room_id)
            assert room.duration is not None
            timer = self.reactor.callLater(max(0.0, (end - now) / 1000.0), self._due, room.room_id, room.state,
                                           room.duration, end)
            self.timers[room.room_id] = (room.state.version, timer)
        return planned

    def _follow(self, active: frozenset[str]) -> None:
        """Listen to the active rooms' bus channels (and stop listening to the others)."""
        for room_id in set(self._subscriptions) - active:
            self._subscriptions.pop(room_id)()
        for room_id in active - set(self._subscriptions):
            self._subscriptions[room_id] = self.bus.subscribe(
                room_channel(room_id), lambda message, room_id=room_id: self._message(room_id, message))

    def _message(self, room_id: str, message: dict[str, Any]) -> None:
        if message.get("type") in ("playbackState", "busGap"):
            self._track(Deferred.fromCoroutine(self._replan(room_id)), room_id)

    async def _replan(self, room_id: str) -> None:
        """A state changed (an advance made here or elsewhere, a member's change): plan its end
        now, not at the next tick (an item shorter than the tick would otherwise end unplanned)."""
        if room_id not in self.active or self.stopped:
            return
        playing = await self.store.playing_rooms([room_id])
        if not self._plan(playing):
            self._cancel(room_id)  # paused, ended, or not due soon: no stale timer stays

    def _cancel(self, room_id: str) -> None:
        entry = self.timers.pop(room_id, None)
        if entry is not None and entry[1].active():
            entry[1].cancel()

    def _due(self, room_id: str, state: Any, duration: float, end: int) -> None:
        self.timers.pop(room_id, None)
        d = self.actions.auto_advance(room_id, state, duration, end)

        def done(new: Any) -> None:
            if new is not None:
                self.advanced += 1

        self._track(d.addCallback(done), room_id)

    def _track(self, d: Deferred[Any], room_id: str) -> None:
        d.addErrback(lambda f: self.log.failure("advancing room {room_id} failed", f, room_id=room_id))
        if not d.called:
            self.in_flight.add(d)
            d.addBoth(lambda r: (self.in_flight.discard(d), r)[1])

    def stop(self) -> Deferred[Any]:
        self.stopped = True
        self._follow(frozenset())
        for room_id in list(self.timers):
            self._cancel(room_id)
        return DeferredList(list(self.in_flight), consumeErrors=True)
