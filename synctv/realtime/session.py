"""One WebSocket connection's state machine (sans-IO): parsed frames in, message frames out.

A ``ConnectionSession`` receives each frame's payload with the time (from its injected clock),
decides through synctv.core.realtime and ``Actions``, and writes through a ``Sink``: ``send``
(a frame for this connection only), ``send_shared`` (a frame the ``RoomSession`` prepared once
for many connections) and ``close``. It never touches the reactor or a transport.

Version ordering (docs/realtime.md): the session remembers the last playback-state version it
sent. A relayed state is dropped when not newer, sent when it is the next one, and a gap makes
the room re-read the state from the store. While the session itself is waiting for the store
(an ``update`` or the first read of ``observe``) relayed states are held back and released
after its reply, so the reply to an accepted ``update`` is the frame carrying that version
and the sender never gets the same version twice.

Fan-out (``offer_state_to_all``): the connections of a room that are in step (they were sent
version N - 1 and hold nothing back) take version N in one pass: their version is advanced
and the shared frame goes to all their sinks in one call (``SendMany``, a tight loop over the
transports in the WebSocket layer). The others go through ``offer_state`` one by one, with the
same rules; nothing about ordering differs, only the number of Python calls per connection.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from synctv.core.clock import Clock
from synctv.core.errors import BadRequest, DomainError, Forbidden, RateLimited
from synctv.core.permissions import Permission
from synctv.core.realtime import (
    ChatSend,
    ClientMessage,
    DanmakuSend,
    MessageId,
    Observe,
    RateLimiter,
    RateVerdict,
    Readiness,
    RealtimeLimits,
    Relay,
    Telemetry,
    TimeRequest,
    Unobserve,
    UpdateRequest,
    WebRTCSignal,
    decode_frame,
    encode_message,
    message_id,
    parse_message,
    relay_decision,
)
from synctv.providers.base import ClientProfile
from synctv.realtime.auth import Principal

if TYPE_CHECKING:
    from synctv.realtime.room import RoomSession

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_ROOM_DELETED = 4000
CLOSE_REMOVED = 4001
CLOSE_TOO_SLOW = 4008
CLOSE_IDLE = 4009

StateJSON = dict[str, Any]


def _refused_id(payload: bytes, is_binary: bool) -> MessageId:
    """The ``id`` of a message refused by the rate limit, so the client can settle that request
    (its promise would otherwise wait for a timeout and blame the connection); None when the
    frame has none or is not JSON. The frame is within ``max_frame_bytes`` like any other."""
    if is_binary:
        return None
    try:
        return message_id(decode_frame(payload))
    except DomainError:
        return None


class InternalError(DomainError):
    """A bug or an unexpected failure while handling a message; logged, answered, connection kept."""

    code = "internal"

    def __init__(self) -> None:
        super().__init__("the server failed to handle this message")


class Sink(Protocol):
    """Where a session's frames go (the WebSocket protocol, or a list in tests)."""

    def send(self, payload: bytes) -> None:
        """One text frame for this connection."""

    def send_shared(self, frame: Any) -> None:
        """A frame prepared once by ``RoomSession.prepare`` for many connections."""

    def close(self, code: int, reason: str) -> None:
        """Start closing with ``code``; nothing more is sent after this."""


#: Writes one shared frame to many sinks (``RoomProtocolFactory.send_many``; in tests, a loop).
SendMany = Callable[[Any, Sequence[Sink]], None]


def send_each(frame: Any, sinks: Sequence[Sink]) -> None:
    """The plain ``SendMany``: ``send_shared`` on each sink."""
    for sink in sinks:
        sink.send_shared(frame)


def offer_state_to_all(
    conns: Iterable[ConnectionSession], state: StateJSON, frame: Any, send_many: SendMany
) -> list[ConnectionSession]:
    """``offer_state(state, frame)`` to each of ``conns`` (open connections observing
    ``playbackState``), the ones in step in one pass; returns those that saw a gap."""
    version = state["version"]
    previous = version - 1
    in_step: list[ConnectionSession] = []
    others: list[ConnectionSession] = []
    for conn in conns:
        if conn.last_sent_version == previous and not conn.holding:
            in_step.append(conn)
        else:
            others.append(conn)
    for conn in in_step:
        conn.last_sent_version = version
        conn._last_state = state
    if in_step:
        send_many(frame, [conn.sink for conn in in_step])
    return [conn for conn in others if conn.offer_state(state, frame)]


class ConnectionSession:
    """See the module docstring. Created by ``ConnectionRuntime.open``."""

    log = Logger()

    def __init__(
        self, *, connection_id: str, principal: Principal, room: RoomSession, sink: Sink, clock: Clock,
        limits: RealtimeLimits, welcome_extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.connection_id = connection_id
        self.principal = principal
        self.room = room
        self.sink = sink
        self.clock = clock
        self.limits = limits
        self.limiter = RateLimiter.for_limits(limits)
        self.observing: set[str] = set()
        self.profile: ClientProfile | None = None
        self.telemetry: dict[str, Any] | None = None
        self.welcome_extra = dict(welcome_extra or {})
        self.ready: bool | None = None  # the last readiness report (synctv.core.wait), None: none yet
        self.wait_for_me = True
        self.ready_since_ms = 0
        self.closed = False
        self.close_code: int | None = None
        self.last_sent_version: int | None = None
        self._last_state: StateJSON | None = None
        self.holding = 0  # > 0 while waiting for the store: relayed states are held back
        self._held: list[tuple[StateJSON, Any, bool]] = []
        self.playback_version: int | None = None
        self.playback_media_id: str | None = None
        self._last_playback: dict[str, Any] | None = None
        self.presence_revision = -1

    # -- identity -------------------------------------------------------------------------------

    @property
    def user_id(self) -> str:
        return self.principal.user.id

    @property
    def user_name(self) -> str:
        return self.principal.user.name

    def observes(self, resource: str) -> bool:
        return not self.closed and resource in self.observing

    def _start_observing(self, resource: str) -> None:
        self.observing.add(resource)
        self.room.observer_added(self, resource)

    def _stop_observing(self, resource: str) -> None:
        self.observing.discard(resource)
        self.room.observer_removed(self, resource)

    # -- output ---------------------------------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        if not self.closed:
            self.sink.send(encode_message(message))

    def send_shared(self, frame: Any) -> None:
        if not self.closed:
            self.sink.send_shared(frame)

    def close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.close_code = code
        self.log.info("closing connection {connection_id} of {user_name} in room {room_id}: {code} {reason}",
                      connection_id=self.connection_id, user_name=self.user_name,
                      room_id=self.room.room_id, code=code, reason=reason)
        self.sink.close(code, reason)

    def connection_lost(self) -> None:
        self.closed = True

    def _reply(self, mid: MessageId, message: dict[str, Any]) -> None:
        if mid is not None:
            message = {"type": message["type"], "id": mid, **message}
        self.send(message)

    def _ack(self, mid: MessageId) -> None:
        if mid is not None:
            self.send({"type": "ack", "id": mid})

    def _error(self, mid: MessageId, error: DomainError) -> None:
        frame: dict[str, Any] = {"type": "error"}
        if mid is not None:
            frame["id"] = mid
        frame.update(code=error.code, message=error.message)
        if error.field is not None:
            frame["field"] = error.field
        if error.detail is not None:
            frame["detail"] = error.detail
        try:
            self.send(frame)
        except ValueError:  # a detail that is not JSON: still answer
            self.send({k: v for k, v in frame.items() if k != "detail"})

    def welcome(self) -> None:
        self.send({
            "type": "welcome",
            "connection_id": self.connection_id,
            "server_time_ms": self.clock(),
            **self.principal.welcome_fields(),
            "limits": self.limits.public(),
            **self.welcome_extra,
        })

    # -- input ----------------------------------------------------------------------------------

    def receive(self, payload: bytes, is_binary: bool = False) -> Deferred[None] | None:
        """Handle one frame; returns the Deferred of an asynchronous reply (tests wait on it)."""
        if self.closed:
            return None
        now = self.clock()
        verdict = self.limiter.check(now / 1000.0)
        if verdict is not RateVerdict.accept:
            self._error(_refused_id(payload, is_binary), RateLimited(
                f"more than {self.limits.messages_per_s:g} messages per second; slow down",
                detail={"retry_after": 1},
            ))
            if verdict is RateVerdict.close:
                self.close(CLOSE_POLICY, "message rate abuse")
            return None
        mid: MessageId = None
        try:
            if is_binary:
                raise BadRequest("binary frames are not accepted; send JSON text frames")
            obj = decode_frame(payload)
            mid = message_id(obj)
            message = parse_message(obj, self.limits)
            outcome = self._dispatch(message, now)
        except DomainError as e:
            self._error(mid, e)
            return None
        except Exception:
            self.log.failure("handling a message on connection {connection_id}", connection_id=self.connection_id)
            self._error(mid, InternalError())
            return None
        if outcome is None:
            return None
        d = Deferred.fromCoroutine(outcome)
        d.addErrback(self._failed, mid)
        return d

    def _failed(self, failure: Failure, mid: MessageId) -> None:
        if failure.check(DomainError):
            self._error(mid, failure.value)
            return
        self.log.failure("handling a message on connection {connection_id}", failure,
                         connection_id=self.connection_id)
        self._error(mid, InternalError())

    def _dispatch(self, message: ClientMessage, now: int) -> Coroutine[Any, Any, None] | None:
        if isinstance(message, TimeRequest):
            self._reply(message.id, {"type": "time", "t0": message.t0, "t1": now, "t2": self.clock()})
            return None
        if isinstance(message, Observe):
            return self._observe(message)
        if isinstance(message, Unobserve):
            self._stop_observing(message.resource)
            if message.resource == "playback":
                self.profile = None
            self._ack(message.id)
            return None
        if isinstance(message, UpdateRequest):
            if self.principal.read_only:
                raise Forbidden("this connection is read only")
            return self._update(message)
        if isinstance(message, ChatSend):
            self._require(Permission.chat, "chat")
            self.room.post_chat(self, message.text)
            self._ack(message.id)
            return None
        if isinstance(message, DanmakuSend):
            self._require(Permission.chat, "send danmaku")
            self.room.post_danmaku(self, message.text, message.at)
            self._ack(message.id)
            return None
        if isinstance(message, Telemetry):
            self.telemetry = {**message.to_json(), "at_ms": now}
            self.room.viewers.telemetry(self)
            self._ack(message.id)
            return None
        if isinstance(message, Readiness):
            if self.principal.read_only:
                raise Forbidden("this connection is read only")
            self.room.viewers.report(self, message.ready, message.wait)
            self._ack(message.id)
            return None
        if isinstance(message, WebRTCSignal):
            if self.principal.read_only:
                raise Forbidden("this connection is read only")
            self.room.relay_webrtc(self, message.to, message.signal)
            self._ack(message.id)
            return None
        raise AssertionError(message)

    def _require(self, needed: Permission, what: str) -> None:
        if not self.principal.may(needed):
            raise Forbidden(f"you lack the {needed.name} permission needed to {what}")

    # -- observe --------------------------------------------------------------------------------

    async def _observe(self, message: Observe) -> None:
        resource = message.resource
        if resource == "playbackState":
            self._start_observing(resource)
            await self._held_while(self.room.read_state(), message.id)
        elif resource == "playback":
            profile = ClientProfile()
            if message.profile is not None:
                try:
                    profile = ClientProfile.from_query(message.profile.as_query())
                except BadRequest as e:
                    raise BadRequest(e.message, field=f"profile.{e.field}" if e.field else "profile") from None
            self._start_observing(resource)
            self.profile = profile
            version, media_id, result = await self.room.resolve_playback(self)
            self._reply_playback(message.id, version, media_id, result)
        elif resource == "presence":
            self._start_observing(resource)
            self.presence_revision, online = self.room.online_now()
            self._reply(message.id, {"type": "presence", "online": online})
        elif resource == "playlist":
            self._start_observing(resource)
            self._reply(message.id, {"type": "playlist"})
        elif resource == "viewers":
            self._start_observing(resource)
            self._reply(message.id, {"type": "viewers", **self.room.viewers.current()})
        else:  # chat
            self._start_observing(resource)
            self._reply(message.id, {"type": "chat", "messages": list(self.room.chat)})

    # -- playback state -------------------------------------------------------------------------

    async def _update(self, message: UpdateRequest) -> None:
        await self._held_while(
            self.room.actions.update_playback(self.principal.user, self.room.room_id, message.update),
            message.id,
        )

    async def _held_while(self, pending: Deferred[Any], mid: MessageId) -> None:
        """Await ``pending`` (a PlaybackState) with relayed states held back, reply with it, then
        release what was held."""
        self.holding += 1
        state = None
        try:
            state = await pending
        finally:
            self.holding -= 1
            if state is not None:
                self._reply_state(mid, state.to_json())
            self._release_held()

    def _reply_state(self, mid: MessageId, state: StateJSON) -> None:
        """The reply with ``id``: ``state``, or the newer state this connection already got."""
        if self._last_state is not None and self.last_sent_version is not None \
                and state["version"] < self.last_sent_version:
            state = self._last_state
        self._reply(mid, {"type": "playbackState", **state})
        self._sent_state(state)

    def _sent_state(self, state: StateJSON) -> None:
        self.last_sent_version = state["version"]
        self._last_state = state

    def offer_state(self, state: StateJSON, frame: Any, *, current: bool = False) -> bool:
        """A state from the room (``frame`` is it, prepared). ``current``: read from the store just
        now, so it may jump versions. Returns True when a gap needs a re-read."""
        if not self.observes("playbackState"):
            return False
        if self.holding:
            self._held.append((state, frame, current))
            return False
        return self._relay(state, frame, current)

    def _relay(self, state: StateJSON, frame: Any, current: bool) -> bool:
        version = state["version"]
        if current:
            if self.last_sent_version is None or version > self.last_sent_version:
                self.send_shared(frame)
                self._sent_state(state)
            return False
        decision = relay_decision(self.last_sent_version, version)
        if decision is Relay.send:
            self.send_shared(frame)
            self._sent_state(state)
        return decision is Relay.gap

    def _release_held(self) -> None:
        if self.holding or not self._held:
            return
        held, self._held = self._held, []
        gap = False
        for state, frame, current in held:
            if self.observes("playbackState"):
                gap = self._relay(state, frame, current) or gap
        if gap:
            self.room.reread([self])

    # -- playback (how to play the selected media) ----------------------------------------------

    def _reply_playback(self, mid: MessageId, version: int, media_id: str | None, result: Any) -> None:
        if self.playback_version is not None and version < self.playback_version:
            media_id, result, version = self.playback_media_id, self._last_playback, self.playback_version
        self._reply(mid, {"type": "playback", "result": result})
        self.playback_version, self.playback_media_id, self._last_playback = version, media_id, result

    def offer_playback(
        self, version: int, media_id: str | None, result: Any, frame: Any, *, force: bool = False
    ) -> None:
        """A newly resolved result for the selected media (prepared as ``frame``); ``force``: the
        item changed, so the same state version carries a new result."""
        if not self.observes("playback"):
            return
        if self.playback_version is not None and (
            version < self.playback_version or (version == self.playback_version and not force)
        ):
            return
        self.send_shared(frame)
        self.playback_version, self.playback_media_id, self._last_playback = version, media_id, result

    # -- relayed from other members -------------------------------------------------------------

    def deliver_webrtc(self, sender: str, signal: Any) -> None:
        self.send({"type": "webrtc", "from": sender, "signal": signal})
