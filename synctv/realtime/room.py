"""One room's connections on this node (sans-IO): bus messages in, shared frames out.

A ``RoomSession`` exists while the room has at least one connection here. It subscribes to the
room's bus channel once (not once per connection) and fans every change out: a message is
encoded to JSON once and prepared once as a frame (``prepare``), then handed to every observing
connection (``send_many``: one call writes it to every sink, see ``offer_state_to_all``). It
also keeps what the room's connections share on this node: the chat backlog
(the last ``chat_backlog`` messages, in memory only), the presence board merged over every
node, and the re-read of the playback state when versions were skipped.

Bus messages handled (``synctv.bus`` lists what ``Actions`` publishes): ``playbackState``,
``playlist``, ``member``, ``roomDeleted``, ``busGap`` (from the PostgreSQL bus), and those of
the realtime layer itself, each with ``room_id``:

- ``{"type": "presence", "node", "online": [PresenceEntry JSON]}`` -- a node's local presence,
  on change and every ``presence_interval_s``;
- ``{"type": "chat", "message": {id, from, text, at_ms}}``;
- ``{"type": "danmaku", "danmaku": {id, from, text, at, at_ms}}``;
- ``{"type": "webrtc", "to", "from", "signal"}`` -- for a connection on another node;
- ``{"type": "notice", "level", "code", "message", "media_id"?}`` -- something members should know
  (``synctv.live.service``: a live publish browsers cannot decode); sent to every connection;
- ``{"type": "viewers", "node", "viewers"}`` and ``{"type": "wait", "wait"}`` -- readiness,
  telemetry and the room's wait, handled by ``synctv.realtime.viewers.RoomViewers``; ``room``
  (settings changed) reaches it too.

Expiring playback: after resolving ``playback`` results the session arms a timer for the
earliest ``expires_at`` they carry (an upstream URL's expiry, or a signed proxy URL's) minus
``EXPIRY_MARGIN_MS``, and then pushes fresh results to every observer, so nobody's player is
left with a dead URL. ``feeds`` (e.g. ``synctv.providers.danmaku.DanmakuFeeds``) are told every
playback state and send their own messages to the room's ``chat`` observers on this node.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import attrs
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from synctv.actions import Actions, Viewer
from synctv.bus import Bus, Message, room_channel
from synctv.core import auth, permissions
from synctv.core.clock import Clock
from synctv.core.errors import DomainError, NotFound, Unavailable
from synctv.core.models import Member, PlaybackState
from synctv.core.permissions import Permission
from synctv.core.realtime import PresenceBoard, PresenceEntry, RealtimeLimits, encode_message, local_presence
from synctv.providers.base import ClientProfile
from synctv.realtime.session import (
    CLOSE_REMOVED,
    CLOSE_ROOM_DELETED,
    ConnectionSession,
    SendMany,
    offer_state_to_all,
    send_each,
)
from synctv.realtime.viewers import RoomViewers

PRESENCE_DELAY_S = 0.05  # presence changes within this delay go out as one announcement
SEEN_IDS = 512  # chat/danmaku ids remembered to drop a message delivered twice
EXPIRY_MARGIN_MS = 60_000  # fresh playback results go out this long before the old ones expire
MIN_REFRESH_S = 5.0

Prepare = Callable[[bytes], Any]
CallLater = Callable[[float, Callable[[], None]], Any]


class RoomFeed(Protocol):
    """Something that follows a room's playback on this node (``RoomSession(feeds=...)``)."""

    def state_changed(self, state: dict[str, Any]) -> None: ...

    def stop(self) -> None: ...


#: Makes a room's feed: ``(room_id, emit, call_later)``; ``emit(message)`` sends to ``chat`` observers.
FeedFactory = Callable[[str, Callable[[dict[str, Any]], None], CallLater], RoomFeed]


class RoomSession:
    """See the module docstring. Created and dropped by ``ConnectionRuntime``."""

    log = Logger()

    def __init__(
        self, *, room_id: str, node_id: str, actions: Actions, bus: Bus, clock: Clock, limits: RealtimeLimits,
        prepare: Prepare, call_later: CallLater, feeds: Sequence[FeedFactory] = (),
        send_many: SendMany = send_each,
    ) -> None:
        self.room_id = room_id
        self.node_id = node_id
        self.actions = actions
        self.bus = bus
        self.clock = clock
        self.limits = limits
        self.prepare = prepare
        self.send_many = send_many
        self.call_later = call_later
        self.connections: dict[str, ConnectionSession] = {}
        # resource -> the connections that observe it (kept by ConnectionSession), so a change
        # looks only at its observers
        self._observing: dict[str, dict[ConnectionSession, None]] = {}
        self.chat: collections.deque[dict[str, Any]] = collections.deque(maxlen=limits.chat_backlog)
        self.presence = PresenceBoard(node_id, int(limits.presence_expire_s * 1000))
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._unsubscribe: Callable[[], None] | None = None
        self._presence_call: Any = None
        self._reread_waiting: set[ConnectionSession] = set()
        self._rereading = False
        self.rereading: Deferred[None] | None = None  # the re-read in flight, for tests
        self._selected_item: dict[str, Any] | None = None
        self._feed_factories = tuple(feeds)
        self._feeds: list[RoomFeed] = []
        self._expiry_call: Any = None
        self._expiry_at: int | None = None
        self.viewers = RoomViewers(self)  # readiness, telemetry and the wait (synctv.realtime.viewers)

    # -- life -----------------------------------------------------------------------------------

    def start(self) -> None:
        self._unsubscribe = self.bus.subscribe(room_channel(self.room_id), self.on_bus)
        self._feeds = [make(self.room_id, self._emit_feed, self.call_later) for make in self._feed_factories]
        if self._feeds:
            self.read_state().addCallbacks(
                lambda state: self._notify_feeds(state.to_json()),
                lambda f: self.log.failure("room {room_id}: reading the state for its feeds", f, room_id=self.room_id))

    def stop(self) -> None:
        """The last connection left: stop listening and tell the other nodes nobody is here."""
        if self._presence_call is not None and self._presence_call.active():
            self._presence_call.cancel()
        self._presence_call = None
        self._cancel_expiry()
        for feed in self._feeds:
            feed.stop()
        self._feeds = []
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.viewers.leave()
        try:
            self._publish({"type": "presence", "node": self.node_id, "online": []})
        except Unavailable:
            pass  # logged; the other nodes expire this one instead

    def attach(self, conn: ConnectionSession) -> None:
        self.connections[conn.connection_id] = conn
        if not self.viewers.configured:
            self.viewers.configure(conn.principal.room)
        self._presence_changed()

    def observer_added(self, conn: ConnectionSession, resource: str) -> None:
        if conn.connection_id in self.connections:
            self._observing.setdefault(resource, {})[conn] = None

    def observer_removed(self, conn: ConnectionSession, resource: str) -> None:
        self._observing.get(resource, {}).pop(conn, None)

    def detach(self, conn: ConnectionSession) -> None:
        for observers in self._observing.values():
            observers.pop(conn, None)
        if self.connections.pop(conn.connection_id, None) is not None:
            self._reread_waiting.discard(conn)
            self._presence_changed()
            self.viewers.detached(conn)

    def close_all(self, code: int, reason: str) -> None:
        for conn in list(self.connections.values()):
            conn.close(code, reason)

    # -- helpers --------------------------------------------------------------------------------

    def _observers(self, resource: str) -> list[ConnectionSession]:
        return [c for c in self._observing.get(resource, ()) if not c.closed]

    observers = _observers

    def broadcast(self, message: dict[str, Any], targets: Iterable[ConnectionSession]) -> None:
        """Encode and prepare ``message`` once, and send that frame to each of ``targets``."""
        sinks = [conn.sink for conn in targets if not conn.closed]
        if sinks:
            self.send_many(self.prepare(encode_message(message)), sinks)

    def _publish(self, message: dict[str, Any]) -> None:
        try:
            self.bus.publish(room_channel(self.room_id), {**message, "room_id": self.room_id})
        except Exception:
            self.log.failure("publishing {message_type} for room {room_id} failed",
                             message_type=message.get("type"), room_id=self.room_id)
            raise Unavailable("the message could not be sent; try again") from None

    publish = _publish

    def _first_time(self, message_id: str) -> bool:
        if message_id in self._seen:
            return False
        self._seen[message_id] = None
        while len(self._seen) > SEEN_IDS:
            self._seen.popitem(last=False)
        return True

    def read_state(self) -> Deferred[PlaybackState]:
        """The playback state from the store (never from a cache)."""

        async def read() -> PlaybackState:
            state = await self.actions.store.get_playback(self.room_id)
            state = state if state is not None else PlaybackState()
            self.viewers.on_state(state.to_json())
            return state

        return Deferred.fromCoroutine(read())

    # -- the bus --------------------------------------------------------------------------------

    def on_bus(self, message: Message) -> None:
        handler = self._handlers.get(message.get("type"))  # type: ignore[arg-type]
        if handler is None:
            return
        try:
            handler(self, message)
        except Exception:
            self.log.failure("room {room_id}: handling the bus message {message_type} failed",
                             room_id=self.room_id, message_type=message.get("type"))

    def _on_state(self, message: Message) -> None:
        state = message["state"]
        if not isinstance(state, dict) or not isinstance(state.get("version"), int):
            raise ValueError("a playbackState message without a state")
        observers = self._observers("playbackState")
        if observers:
            frame = self.prepare(encode_message({"type": "playbackState", **state}))
            gapped = offer_state_to_all(observers, state, frame, self.send_many)
            if gapped:
                self.reread(gapped)
        self._refresh_playback(state)
        self.viewers.on_state(state)

    def _on_playlist(self, message: Message) -> None:
        self.broadcast({"type": "playlist"}, self._observers("playlist"))
        if self._observers("playback"):
            Deferred.fromCoroutine(self._playlist_changed()).addErrback(
                lambda f: self.log.failure("room {room_id}: refreshing playback", f, room_id=self.room_id))

    def _on_member(self, message: Message) -> None:
        user_id = message["user_id"]
        conns = [c for c in self.connections.values() if c.user_id == user_id and c.principal.display_id is None]
        if not conns:
            return
        try:
            member = _member_from_json(message["member"])
        except (KeyError, TypeError, ValueError, DomainError):
            pass  # not the shape Actions publishes: read it
        else:
            self._apply_member(member, conns)
            return
        Deferred.fromCoroutine(self._member_changed(user_id, conns)).addErrback(
            lambda f: self.log.failure("room {room_id}: reading a member", f, room_id=self.room_id))

    def _on_room_deleted(self, message: Message) -> None:
        self.close_all(CLOSE_ROOM_DELETED, "the room was deleted")

    def _on_gap(self, message: Message) -> None:
        """The bus may have lost messages: re-read the state, re-announce presence."""
        self.log.info("room {room_id}: bus gap ({reason}); re-reading", room_id=self.room_id,
                      reason=message.get("reason"))
        self.reread(self._observers("playbackState"))
        self._presence_changed()

    def _on_presence(self, message: Message) -> None:
        node = message["node"]
        if not isinstance(node, str) or node == self.node_id:
            return
        entries = tuple(PresenceEntry.from_json(e) for e in message.get("online") or ())
        known = self.presence.knows(node)
        if self.presence.put(node, entries, self.clock()):
            self._broadcast_presence()
        if not known and entries:
            self._presence_changed()  # a node new to us: let it learn who is here

    def _on_chat(self, message: Message) -> None:
        chat = message["message"]
        if not isinstance(chat, dict) or not isinstance(chat.get("id"), str) or not self._first_time(chat["id"]):
            return
        self.chat.append(chat)
        self.broadcast({"type": "chat", "messages": [chat]}, self._observers("chat"))

    def _on_danmaku(self, message: Message) -> None:
        danmaku = message["danmaku"]
        if not isinstance(danmaku, dict) or not isinstance(danmaku.get("id"), str) \
                or not self._first_time(danmaku["id"]):
            return
        self.broadcast({"type": "danmaku", **danmaku}, self._observers("chat"))

    def _on_webrtc(self, message: Message) -> None:
        target = self.connections.get(message["to"])
        if target is not None:
            target.deliver_webrtc(str(message["from"]), message["signal"])

    def _on_notice(self, message: Message) -> None:
        text = message["message"]
        if not isinstance(text, str):
            raise ValueError("a notice without a message")
        notice = {"type": "notice", "level": str(message.get("level") or "info"),
                  "code": str(message.get("code") or "notice"), "message": text[:1000]}
        if isinstance(message.get("media_id"), str):
            notice["media_id"] = message["media_id"]
        self.broadcast(notice, self.connections.values())

    def _on_viewers(self, message: Message) -> None:
        self.viewers.on_viewers(message)

    def _on_wait(self, message: Message) -> None:
        self.viewers.on_wait(message)

    def _on_room(self, message: Message) -> None:
        self.viewers.on_room(message)

    _handlers: dict[str, Callable[[RoomSession, Message], None]] = {
        "playbackState": _on_state,
        "playlist": _on_playlist,
        "member": _on_member,
        "roomDeleted": _on_room_deleted,
        "busGap": _on_gap,
        "presence": _on_presence,
        "chat": _on_chat,
        "danmaku": _on_danmaku,
        "webrtc": _on_webrtc,
        "viewers": _on_viewers,
        "notice": _on_notice,
        "wait": _on_wait,
        "room": _on_room,
    }

    # -- re-reading the state -------------------------------------------------------------------

    def reread(self, conns: Iterable[ConnectionSession]) -> None:
        """Read the state from the store and send it to ``conns`` (those that saw a gap).

        Reads are coalesced: while one is in flight, newcomers wait for the next one (a read
        that started before their gap could predate the version they missed).
        """
        self._reread_waiting.update(c for c in conns if not c.closed)
        if self._rereading or not self._reread_waiting:
            return
        self._rereading = True
        d = Deferred.fromCoroutine(self._reread_loop())
        d.addErrback(lambda f: self.log.failure("room {room_id}: re-reading the state", f, room_id=self.room_id))
        if self._rereading:  # still running (a store may answer at once)
            self.rereading = d

    async def _reread_loop(self) -> None:
        try:
            while self._reread_waiting:
                waiting, self._reread_waiting = self._reread_waiting, set()
                try:
                    state = (await self.read_state()).to_json()
                except Exception:
                    self.log.failure("room {room_id}: the state could not be re-read", room_id=self.room_id)
                    return  # the next relayed version finds the gap again and retries
                frame = self.prepare(encode_message({"type": "playbackState", **state}))
                for conn in waiting:
                    conn.offer_state(state, frame, current=True)
                self._refresh_playback(state)
        finally:
            self._rereading = False
            self.rereading = None

    # -- playback results -----------------------------------------------------------------------

    async def _resolve(self, media_id: str | None, viewers: list[Viewer]) -> list[Any]:
        """The PlaybackResult JSON of ``media_id`` for each viewer (None: nothing to play), from
        ``Actions.playback_results``: the same answer as ``GET .../playback`` for that user and
        profile (signed proxy URLs, header values only where they may go)."""
        if media_id is None:
            return [None] * len(viewers)
        item = await self.actions.store.get_media(self.room_id, media_id)
        if item is None:
            return [None] * len(viewers)
        self._selected_item = item.to_json()
        results = await self.actions.playback_results(item, viewers)
        self._note_expiry(min((info.expires_at for result in results for info in result.infos
                               if info.expires_at is not None), default=None))
        return [result.to_json() for result in results]

    def _note_expiry(self, expires_at: int | None) -> None:
        """Arm the refresh for ``expires_at`` unless one is armed for an earlier time."""
        if expires_at is None or self._unsubscribe is None:
            return
        if self._expiry_call is not None and self._expiry_call.active() and self._expiry_at is not None \
                and self._expiry_at <= expires_at:
            return
        self._cancel_expiry()
        delay = max(MIN_REFRESH_S, (expires_at - EXPIRY_MARGIN_MS - self.clock()) / 1000.0)
        self._expiry_at = expires_at
        self._expiry_call = self.call_later(delay, self._refresh_expiring)

    def _cancel_expiry(self) -> None:
        if self._expiry_call is not None and self._expiry_call.active():
            self._expiry_call.cancel()
        self._expiry_call = self._expiry_at = None

    def _refresh_expiring(self) -> None:
        """The results last sent are about to expire: push fresh ones to every observer."""
        self._expiry_call = self._expiry_at = None
        if not self._observers("playback"):
            return
        self.read_state().addCallbacks(
            lambda state: self._refresh_playback(state.to_json(), force=True),
            lambda f: self.log.failure("room {room_id}: refreshing expiring playback", f, room_id=self.room_id))

    async def resolve_playback(self, conn: ConnectionSession) -> tuple[int, str | None, Any]:
        """``(version, media_id, result JSON or None)`` for the current state and ``conn``."""
        state = await self.read_state()
        [result] = await self._resolve(state.media_id, [viewer_of(conn)])
        return state.version, state.media_id, result

    def _refresh_playback(self, state: dict[str, Any], *, force: bool = False) -> None:
        """Push a new ``playback`` result to observers whose selected media is not ``state``'s
        (``force``: to every observer, the item itself changed)."""
        self._notify_feeds(state)
        version, media_id = state["version"], state.get("media_id")
        stale = [
            c for c in self._observers("playback")
            if (force or c.playback_media_id != media_id)
            and (c.playback_version is None or c.playback_version < version
                 or (force and c.playback_version == version))
        ]
        if stale:
            Deferred.fromCoroutine(self._push_playback(version, media_id, stale, force)).addErrback(
                lambda f: self.log.failure("room {room_id}: resolving playback", f, room_id=self.room_id))

    async def _push_playback(
        self, version: int, media_id: str | None, conns: list[ConnectionSession], force: bool
    ) -> None:
        groups: dict[tuple[str, bool, ClientProfile], list[ConnectionSession]] = {}
        for conn in conns:  # one result, and one prepared frame, per group
            viewer = viewer_of(conn)
            groups.setdefault((viewer.user.id, viewer.may(Permission.manage_media), viewer.profile), []).append(conn)
        heads = [group[0] for group in groups.values()]
        results = await self._resolve(media_id, [viewer_of(conn) for conn in heads])
        for group, result in zip(groups.values(), results, strict=True):
            frame = self.prepare(encode_message({"type": "playback", "result": result}))
            for conn in group:
                conn.offer_playback(version, media_id, result, frame, force=force)

    async def _playlist_changed(self) -> None:
        """The selected item itself may have changed (URL, headers): resend playback if it did."""
        state = await self.read_state()
        if state.media_id is None:
            return
        item = await self.actions.store.get_media(self.room_id, state.media_id)
        current = item.to_json() if item is not None else None
        if current != self._selected_item:
            self._selected_item = current
            self._refresh_playback(state.to_json(), force=True)

    # -- feeds ----------------------------------------------------------------------------------

    def _notify_feeds(self, state: dict[str, Any]) -> None:
        for feed in self._feeds:
            try:
                feed.state_changed(state)
            except Exception:
                self.log.failure("room {room_id}: a feed failed on a playback change", room_id=self.room_id)

    def _emit_feed(self, message: dict[str, Any]) -> None:
        self.broadcast(message, self._observers("chat"))

    # -- members --------------------------------------------------------------------------------

    async def _member_changed(self, user_id: str, conns: list[ConnectionSession]) -> None:
        self._apply_member(await self.actions.member_of(self.room_id, conns[0].principal.user), conns)

    def _apply_member(self, member: Member | None, conns: list[ConnectionSession]) -> None:
        """Removed members are closed (4001); others act with their new role and permissions."""
        for conn in conns:
            if not permissions.may_enter(conn.principal.user.role, member.permissions if member else None):
                conn.close(CLOSE_REMOVED, "removed from the room")
            else:
                conn.principal = attrs.evolve(conn.principal, member=member)

    # -- presence -------------------------------------------------------------------------------

    def _presence_changed(self) -> None:
        if self._presence_call is None:
            self._presence_call = self.call_later(PRESENCE_DELAY_S, self.announce_presence)

    def announce_presence(self) -> None:
        """Publish this node's presence here, and push the merged list if it changed."""
        if self._presence_call is not None and self._presence_call.active():
            self._presence_call.cancel()
        self._presence_call = None
        entries = self._local_entries()
        self.presence.put(self.node_id, entries, self.clock())
        self._broadcast_presence()
        try:
            self._publish({"type": "presence", "node": self.node_id, "online": [e.to_json() for e in entries]})
        except Unavailable:
            pass  # logged; the next tick announces again

    def tick(self) -> None:
        """Every ``presence_interval_s``: announce (so other nodes keep us) and expire silent nodes."""
        self.announce_presence()
        if self.presence.expire(self.clock()):
            self._broadcast_presence()
        self.viewers.tick()

    def _local_entries(self) -> tuple[PresenceEntry, ...]:
        return local_presence(
            (c.connection_id, c.user_id, c.user_name) for c in self.connections.values() if not c.closed
        )

    def online_now(self) -> tuple[int, list[dict[str, Any]]]:
        """``(revision, online)`` with this node's connections as they are now."""
        self.presence.put(self.node_id, self._local_entries(), self.clock())
        return self.presence.revision, self.presence.online()

    def _broadcast_presence(self) -> None:
        """Send the merged list to observers that have not seen this revision of it."""
        revision = self.presence.revision
        targets = [c for c in self._observers("presence") if c.presence_revision < revision]
        self.broadcast({"type": "presence", "online": self.presence.online()}, targets)
        for conn in targets:
            conn.presence_revision = revision

    # -- sent by members ------------------------------------------------------------------------

    def _from(self, conn: ConnectionSession) -> dict[str, str]:
        return {"user_id": conn.user_id, "user_name": conn.user_name}

    def post_chat(self, conn: ConnectionSession, text: str) -> None:
        message = {"id": auth.new_id(), "from": self._from(conn), "text": text, "at_ms": self.clock()}
        self._publish({"type": "chat", "message": message})

    def post_danmaku(self, conn: ConnectionSession, text: str, at: float) -> None:
        danmaku = {"id": auth.new_id(), "from": self._from(conn), "text": text, "at": at, "at_ms": self.clock()}
        self._publish({"type": "danmaku", "danmaku": danmaku})

    def relay_webrtc(self, conn: ConnectionSession, to: str, signal: Any) -> None:
        target = self.connections.get(to)
        if target is not None and not target.closed:
            target.deliver_webrtc(conn.connection_id, signal)
            return
        if not self.presence.has_connection(to) or to in self.connections:
            raise NotFound(f"no connection {to[:64]!r} in this room", field="to")
        self._publish({"type": "webrtc", "to": to, "from": conn.connection_id, "signal": signal})


def viewer_of(conn: ConnectionSession) -> Viewer:
    """Who ``conn``'s playback results are made for (``Actions.playback_results``)."""
    principal = conn.principal
    return Viewer(principal.user, principal.member, conn.profile or ClientProfile())


def _member_from_json(value: Any) -> Member | None:
    """A ``member`` bus message's Member (``Member.to_json`` reversed); None for a removal."""
    if value is None:
        return None
    return Member(
        room_id=str(value["room_id"]), user_id=str(value["user_id"]), role=str(value["role"]),
        permissions=Permission.from_names(list(value["permissions"])), joined_at=int(value.get("joined_at") or 0),
        user_name=value.get("user_name"),
    )
