"""The viewers of one room on this node: readiness, telemetry and the wait (sans-IO, thin).

``RoomViewers`` belongs to a ``RoomSession``. It feeds ``synctv.core.wait.WaitTracker`` and acts on
its answers; every rule lives there. What it does:

- keeps each connection's ``readiness`` report (``ConnectionSession.ready``, ``.wait_for_me``,
  ``.ready_since_ms``) and telemetry, and announces this node's viewers on the bus:
  ``{"type": "viewers", "node", "viewers": [ViewerEntry JSON]}`` -- at once (within
  ``PUSH_DELAY_S``) when a readiness changes, at most every ``viewers_interval_s`` for telemetry,
  with every presence tick, and an empty list when the room's last connection here leaves;
- when a local viewer's stall should start a wait (``WaitTracker.starter``) it asks
  ``Actions.start_wait`` (compare-and-set on the version) and announces the wait:
  ``{"type": "wait", "wait": Wait JSON}``; when nobody the wait waits for is still not ready
  (``WaitTracker.to_resume``) it asks ``Actions.end_wait``. Several nodes may ask at once: the
  compare-and-set lets one win;
- pushes ``viewers {viewers, count, wait}`` to the connections observing ``viewers`` (coalesced:
  within ``PUSH_DELAY_S`` after a readiness or wait change, at most every ``viewers_interval_s``
  for telemetry; both delays grow with the number of observers past ``PUSH_SCALE_OBSERVERS``);
- looks again at the instant a scheduled start begins (a countdown's end, a wait's deadline): a
  viewer not ready then may start a wait, and a wait that ran out is over.

Only ``watch`` rooms wait and announce viewers; the room's kind and settings come from the
first connection's ``Room`` and then from the bus's ``room`` messages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from synctv.core.errors import Unavailable
from synctv.core.models import PlaybackState, Room
from synctv.core.wait import ViewerEntry, Wait, WaitSettings, WaitTracker, announced

if TYPE_CHECKING:
    from synctv.realtime.room import RoomSession
    from synctv.realtime.session import ConnectionSession

PUSH_DELAY_S = 0.05  # readiness and wait changes within this delay go out as one push
PUSH_SCALE_OBSERVERS = 50  # past this many observers, push delays grow in proportion


def _state_of(value: dict[str, Any]) -> PlaybackState:
    return PlaybackState(
        media_id=value.get("media_id"), playing=bool(value.get("playing")), ended=bool(value.get("ended")),
        position=float(value.get("position", 0.0)), rate=float(value.get("rate", 1.0)),
        at_ms=int(value.get("at_ms", 0)), version=int(value["version"]), event_id=value.get("event_id"),
    )


class RoomViewers:
    """See the module docstring."""

    log = Logger()

    def __init__(self, room: RoomSession) -> None:
        self.room = room
        self.tracker = WaitTracker(room.node_id, int(room.limits.presence_expire_s * 1000))
        self.configured = False
        self._push_calls: tuple[Any, Any] = (None, None)
        self._announce_calls: tuple[Any, Any] = (None, None)
        self._start_call: Any = None
        self._starting = False
        self._resuming: int | None = None
        self.pending: Deferred[Any] | None = None  # the last start/end request in flight, for tests
        # the connections that reported readiness or telemetry, in the order they first did: the
        # only ones _local looks at (a state change must not cost a pass over a big room)
        self._reporters: dict[str, ConnectionSession] = {}

    @property
    def waits(self) -> bool:
        return self.tracker.kind == "watch"

    def configure(self, room: Room) -> None:
        self.tracker.configure(WaitSettings.of(room.settings), room.kind)
        self.configured = True

    def stop(self) -> None:
        self._push_calls = self._cancel(self._push_calls)
        self._announce_calls = self._cancel(self._announce_calls)
        if self._start_call is not None and self._start_call.active():
            self._start_call.cancel()
        self._start_call = None

    # -- local connections ----------------------------------------------------------------------

    def _now(self) -> int:
        return self.room.clock()

    def _local(self, now: int) -> list[ViewerEntry]:
        entries = []
        for conn in self._reporters.values():
            if conn.closed or (conn.ready is None and conn.telemetry is None) or conn.principal.read_only:
                continue
            entries.append(ViewerEntry(
                connection_id=conn.connection_id, user_id=conn.user_id, user_name=conn.user_name,
                ready=conn.ready, wait=conn.wait_for_me, since_ms=conn.ready_since_ms,
                over_budget=self.tracker.over_budget(conn.user_id, now), telemetry=conn.telemetry,
            ))
        return entries

    def report(self, conn: ConnectionSession, ready: bool, wait: bool | None) -> None:
        """A connection's ``readiness`` message."""
        now = self._now()
        self._reporters.setdefault(conn.connection_id, conn)
        if ready != conn.ready:
            conn.ready_since_ms = now
        conn.ready = ready
        if wait is not None:
            conn.wait_for_me = wait
        if self.tracker.state is None and self.waits:
            # nothing told us the state yet (nobody here observes it): read it, then decide
            self.room.read_state().addCallbacks(lambda _: self._local_changed(urgent=True), lambda f: self.log.failure(
                "room {room_id}: reading the state", f, room_id=self.room.room_id))
            return
        self._local_changed(urgent=True)

    def telemetry(self, conn: ConnectionSession) -> None:
        self._reporters.setdefault(conn.connection_id, conn)
        if not conn.principal.read_only:
            self._local_changed(urgent=False)

    def detached(self, conn: ConnectionSession) -> None:
        self._reporters.pop(conn.connection_id, None)
        if conn.ready is not None or conn.telemetry is not None:
            self._local_changed(urgent=True)

    def _local_changed(self, *, urgent: bool) -> None:
        if not self.waits:
            return
        if urgent:  # a telemetry report waits for the next announcement to be read
            now = self._now()
            self.tracker.put(self.room.node_id, announced(self._local(now)), now)
        self._schedule_announce(urgent)
        self._schedule_push(urgent)
        if urgent:
            self._decide()

    # -- announcing and pushing -----------------------------------------------------------------

    def _schedule_announce(self, urgent: bool) -> None:
        self._announce_calls = self._schedule(self._announce_calls, urgent, self.announce)

    def _schedule(self, calls: tuple[Any, Any], urgent: bool, f: Callable[[], None],
                  scale: float = 1.0) -> tuple[Any, Any]:
        """``(urgent, slow)`` pending calls of ``f``: an urgent change runs it within PUSH_DELAY_S, a
        slow one (telemetry) within viewers_interval_s (both times ``scale``), and one run serves both."""
        fast, slow = (c if c is not None and c.active() else None for c in calls)
        if urgent and fast is None:
            fast = self.room.call_later(PUSH_DELAY_S * scale, f)
        elif not urgent and fast is None and slow is None:
            slow = self.room.call_later(self.room.limits.viewers_interval_s * scale, f)
        return fast, slow

    @staticmethod
    def _cancel(calls: tuple[Any, Any]) -> tuple[None, None]:
        for call in calls:
            if call is not None and call.active():
                call.cancel()
        return None, None

    def announce(self) -> None:
        """Publish this node's viewers (also from the presence tick)."""
        self._announce_calls = self._cancel(self._announce_calls)
        if not self.waits:
            return
        now = self._now()
        local = announced(self._local(now))
        self.tracker.put(self.room.node_id, local, now)
        try:
            self.room.publish({"type": "viewers", "node": self.room.node_id, "viewers": [e.to_json() for e in local]})
        except Unavailable:
            pass  # logged; the next change or tick announces again

    def leave(self) -> None:
        """The room's last connection here left: the other nodes forget this node's viewers."""
        self.stop()
        if self.waits:
            try:
                self.room.publish({"type": "viewers", "node": self.room.node_id, "viewers": []})
            except Unavailable:
                pass

    def _schedule_push(self, urgent: bool = True) -> None:
        observers = len(self.room.observers("viewers"))
        if observers:
            # a frame to every observer: in a big room, pushes are spaced further apart
            scale = max(1.0, observers / PUSH_SCALE_OBSERVERS)
            self._push_calls = self._schedule(self._push_calls, urgent, self.push, scale)

    def push(self) -> None:
        self._push_calls = self._cancel(self._push_calls)
        now = self._now()
        if self.waits:  # telemetry that arrived since the last urgent change
            self.tracker.put(self.room.node_id, announced(self._local(now)), now)
        observers = self.room.observers("viewers")
        if observers:
            self.room.broadcast({"type": "viewers", **self.tracker.view(self._now())}, observers)

    def current(self) -> dict[str, Any]:
        """The ``viewers`` frame's fields now (the reply to ``observe viewers``)."""
        now = self._now()
        if self.waits:
            self.tracker.put(self.room.node_id, announced(self._local(now)), now)
        return self.tracker.view(now)

    def tick(self) -> None:
        """Every presence interval: announce (so other nodes keep ours) and expire silent nodes."""
        if not self.waits:
            return
        if self.tracker.expire(self._now()):
            self._schedule_push()
        if self._local(self._now()):
            self.announce()
        self._decide()

    # -- the bus --------------------------------------------------------------------------------

    def on_viewers(self, message: dict[str, Any]) -> None:
        node = message["node"]
        if not isinstance(node, str) or node == self.room.node_id:
            return
        entries = [ViewerEntry.from_json(e) for e in message.get("viewers") or ()]
        if self.tracker.put(node, entries, self._now()):
            self._schedule_push()
        self._decide()

    def on_wait(self, message: dict[str, Any]) -> None:
        self.tracker.begin(Wait.from_json(message["wait"]))
        self._schedule_push()
        self._decide()

    def on_state(self, value: dict[str, Any]) -> None:
        now = self._now()
        state = _state_of(value)
        had_wait = self.tracker.wait is not None
        self.tracker.saw_state(state, now)
        if had_wait and self.tracker.wait is None:
            self._schedule_push()
        self._at_start(state, now)
        self._decide()

    def on_room(self, message: dict[str, Any]) -> None:
        room = message.get("room")
        if isinstance(room, dict):
            self.tracker.configure(WaitSettings.of(room.get("settings")), str(room.get("kind") or "watch"))

    # -- deciding -------------------------------------------------------------------------------

    def _at_start(self, state: PlaybackState, now: int) -> None:
        """Look again when a scheduled start begins (a countdown ends, a wait's deadline)."""
        if self._start_call is not None and self._start_call.active():
            self._start_call.cancel()
        self._start_call = None
        if state.playing and state.at_ms > now and self.waits:
            self._start_call = self.room.call_later((state.at_ms - now) / 1000 + 0.001, self._started)

    def _started(self) -> None:
        self._start_call = None
        had_wait = self.tracker.wait is not None
        self.tracker.tick(self._now())
        if had_wait and self.tracker.wait is None:
            self._schedule_push()
        self._decide()

    def _decide(self) -> None:
        if not self.waits:
            return
        now = self._now()
        version = self.tracker.to_resume(now)
        if version is not None and self._resuming != version:
            self._resuming = version
            self._run(self.room.actions.end_wait(self.room.room_id, version), lambda _: None)
            return
        if self._starting:
            return
        starter = self.tracker.starter(self._local(now), now)
        if starter is None:
            return
        self._starting = True

        def started(state: PlaybackState | None) -> None:
            if state is None:
                return
            began = min(self._now(), state.at_ms - self.tracker.settings.wait_ms)  # the state's own start
            wait = Wait.begun(state, began, starter.user_id, starter.user_name)
            self.tracker.budget.record(starter.user_id, wait)
            self.room.publish({"type": "wait", "wait": wait.to_json()})

        def done(result: Any) -> Any:
            self._starting = False
            return result

        d = self.room.actions.start_wait(self.room.room_id, starter.user_name)
        d.addBoth(done)
        self._run(d, started)

    def _run(self, d: Deferred[Any], then: Callable[[Any], None]) -> None:
        d.addCallback(then)
        d.addErrback(lambda f: self.log.failure("room {room_id}: the wait could not be changed", f,
                                                room_id=self.room.room_id))
        self.pending = d
