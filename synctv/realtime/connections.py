"""``ConnectionRuntime``: this process's WebSocket connections, by room.

It admits connections against the per-room and per-user caps (counted on this node), creates a
``RoomSession`` when a room gets its first connection here and drops it with the last, drives
the periodic presence announcements, and closes everything on shutdown.

``active_room_ids()`` is the set of rooms with at least one open connection on this node; the
background workers schedule from it. As a Twisted ``Service`` it starts the presence ticker
(``startService``) and closes every connection with 1001 when the server stops (``stopService``).
"""

from __future__ import annotations

import collections
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from synctv.actions import Actions
from synctv.bus import Bus
from synctv.core.clock import Clock
from synctv.core.errors import RateLimited, Unavailable
from synctv.core.realtime import RealtimeLimits
from synctv.realtime.auth import Principal
from synctv.realtime.room import FeedFactory, Prepare, RoomSession
from synctv.realtime.session import CLOSE_GOING_AWAY, ConnectionSession, SendMany, Sink, send_each


def new_node_id() -> str:
    return secrets.token_hex(6)


def new_connection_id() -> str:
    return secrets.token_hex(8)


@attrs.frozen
class Slot:
    """An admitted connection (counted against the caps) before and while it is open."""

    connection_id: str
    room_id: str
    user_id: str


class ConnectionRuntime(Service):
    """See the module docstring.

    ``prepare`` turns an encoded message into a frame that can be written to many connections
    (``synctv.realtime.protocol.prepare_text``; the identity by default, for tests with fake
    sinks), and ``send_many(frame, sinks)`` writes such a frame to many connections
    (``protocol.send_many``, a tight loop over the transports; ``send_shared`` on each sink by
    default). Both are given at construction: ``synctv.realtime.resource.new_runtime`` gives the
    real ones, and the WebSocket factory refuses a runtime without them. ``scheduler`` provides ``callLater`` (the reactor, or a ``task.Clock`` in tests).
    """

    log = Logger()

    def __init__(
        self, *, actions: Actions, limits: RealtimeLimits, scheduler: IReactorTime, bus: Bus | None = None,
        clock: Clock | None = None, node_id: str | None = None, prepare: Prepare | None = None,
        send_many: SendMany | None = None,
        feeds: Sequence[FeedFactory] = (),
        ice_servers: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        self.actions = actions
        self.limits = limits
        self.scheduler = scheduler
        self.bus = bus if bus is not None else actions.bus
        self.clock = clock if clock is not None else actions.clock
        self.node_id = node_id or new_node_id()
        self.prepare: Prepare = prepare if prepare is not None else (lambda payload: payload)
        self.send_many: SendMany = send_many if send_many is not None else send_each
        self.feeds = tuple(feeds)  # each room session's feeds (synctv.providers.danmaku)
        # sent in every welcome: the ICE servers of [webrtc] ice_servers, for voice (docs/realtime.md)
        self.welcome_extra = {"webrtc": {"ice_servers": [dict(server) for server in ice_servers]}}
        self.rooms: dict[str, RoomSession] = {}
        self.slots: dict[str, Slot] = {}
        self.sessions: dict[str, ConnectionSession] = {}
        self._per_room: collections.Counter[str] = collections.Counter()
        self._per_user: collections.Counter[str] = collections.Counter()
        self._ticker: LoopingCall | None = None
        self._drained: list[Deferred[bool]] = []
        self.closing = False

    # -- admission ------------------------------------------------------------------------------

    def reserve(self, room_id: str, user_id: str) -> Slot:
        """Count a new connection, or raise RateLimited (429) when a cap is reached."""
        if self.closing:
            raise Unavailable("the server is shutting down; reconnect in a moment")
        if self._per_room[room_id] >= self.limits.max_connections_per_room:
            raise RateLimited(f"this room has {self.limits.max_connections_per_room} connections on this "
                              "server already", detail={"retry_after": 5})
        if self._per_user[user_id] >= self.limits.max_connections_per_user:
            raise RateLimited(f"you have {self.limits.max_connections_per_user} connections on this server "
                              "already; close some", detail={"retry_after": 5})
        slot = Slot(new_connection_id(), room_id, user_id)
        self.slots[slot.connection_id] = slot
        self._per_room[room_id] += 1
        self._per_user[user_id] += 1
        return slot

    def open(self, slot: Slot, principal: Principal, sink: Sink) -> ConnectionSession:
        """The upgrade completed: make the session and join its room (subscribing if first)."""
        room = self.rooms.get(slot.room_id)
        if room is None:
            room = RoomSession(
                room_id=slot.room_id, node_id=self.node_id, actions=self.actions, bus=self.bus,
                clock=self.clock, limits=self.limits, prepare=self._prepare, call_later=self._call_later,
                feeds=self.feeds, send_many=self._send_many,
            )
            self.rooms[slot.room_id] = room
            room.start()
        session = ConnectionSession(
            connection_id=slot.connection_id, principal=principal, room=room, sink=sink, clock=self.clock,
            limits=self.limits, welcome_extra=self.welcome_extra,
        )
        self.sessions[slot.connection_id] = session
        room.attach(session)
        return session

    def release(self, slot: Slot) -> None:
        """The connection is gone (or never opened): uncount it and leave its room. Idempotent."""
        if self.slots.pop(slot.connection_id, None) is None:
            return
        self._decrement(self._per_room, slot.room_id)
        self._decrement(self._per_user, slot.user_id)
        session = self.sessions.pop(slot.connection_id, None)
        if session is not None:
            session.connection_lost()
            room = self.rooms.get(slot.room_id)
            if room is not None:
                room.detach(session)
                if not room.connections:
                    del self.rooms[slot.room_id]
                    room.stop()
        if not self.slots:
            drained, self._drained = self._drained, []
            for d in drained:
                d.callback(True)

    @staticmethod
    def _decrement(counter: collections.Counter[str], key: str) -> None:
        counter[key] -= 1
        if counter[key] <= 0:
            del counter[key]

    def _prepare(self, payload: bytes) -> Any:
        return self.prepare(payload)

    def _send_many(self, frame: Any, sinks: Sequence[Sink]) -> None:
        self.send_many(frame, sinks)

    def _call_later(self, delay: float, f: Callable[[], None]) -> Any:
        return self.scheduler.callLater(delay, f)

    # -- questions ------------------------------------------------------------------------------

    def active_room_ids(self) -> frozenset[str]:
        """Rooms with at least one open connection on this node."""
        return frozenset(room_id for room_id, room in self.rooms.items() if room.connections)

    def connection_count(self, room_id: str | None = None) -> int:
        if room_id is None:
            return len(self.sessions)
        room = self.rooms.get(room_id)
        return len(room.connections) if room is not None else 0

    def online(self, room_id: str) -> list[dict[str, Any]]:
        """Who is in the room (every node's connections, merged), as this node knows it: the
        room's presence when it has a connection here, an empty list otherwise."""
        room = self.rooms.get(room_id)
        return room.online_now()[1] if room is not None else []

    def telemetry(self, room_id: str) -> list[dict[str, Any]]:
        """The latest telemetry of each connection in the room (for the admin UI)."""
        room = self.rooms.get(room_id)
        if room is None:
            return []
        return [
            {"connection_id": c.connection_id, "user_id": c.user_id, "user_name": c.user_name, **c.telemetry}
            for c in room.connections.values() if c.telemetry is not None
        ]

    def display_status(self, display_id: str) -> dict[str, Any] | None:
        """A display screen's connections on this node: ``{online: True, connections, telemetry}``
        (the newest telemetry of its connections, or None), or None when it has none here."""
        sessions = [s for s in self.sessions.values() if s.principal.display_id == display_id and not s.closed]
        if not sessions:
            return None
        reports = [s.telemetry for s in sessions if s.telemetry is not None]
        latest = max(reports, key=lambda t: t["at_ms"]) if reports else None
        return {"online": True, "connections": len(sessions), "telemetry": latest}

    # -- life -----------------------------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self.start()

    def stopService(self) -> Deferred[bool]:
        super().stopService()
        return self.close_all()

    def start(self) -> None:
        """Start the periodic presence announcements."""
        if self._ticker is None:
            self._ticker = LoopingCall(self._tick)
            self._ticker.clock = self.scheduler
            self._ticker.start(self.limits.presence_interval_s, now=False).addErrback(
                lambda f: self.log.failure("the presence ticker stopped", f))

    def _tick(self) -> None:
        for room in list(self.rooms.values()):
            try:
                room.tick()
            except Exception:
                self.log.failure("presence tick of room {room_id} failed", room_id=room.room_id)

    def close_all(self, code: int = CLOSE_GOING_AWAY, reason: str = "server going away",
                  timeout_s: float = 2.0) -> Deferred[bool]:
        """Refuse new connections, close every open one with ``code``; fire with True once all
        are gone, or False after ``timeout_s``."""
        self.closing = True
        if self._ticker is not None and self._ticker.running:
            self._ticker.stop()
        self._ticker = None
        for session in list(self.sessions.values()):
            session.close(code, reason)
        if not self.slots:
            return succeed(True)
        waiter: Deferred[bool] = Deferred()
        self._drained.append(waiter)

        def give_up() -> None:
            if waiter in self._drained:
                self._drained.remove(waiter)
                self.log.warn("{count} WebSocket connections still open after {timeout_s}s",
                              count=len(self.slots), timeout_s=timeout_s)
                waiter.callback(False)

        call = self.scheduler.callLater(timeout_s, give_up)
        waiter.addBoth(lambda r: (call.cancel() if call.active() else None, r)[1])
        return waiter
