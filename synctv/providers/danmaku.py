"""Provider danmaku in a room: Bilibili's comments arrive over the WebSocket as the video plays.

:class:`DanmakuFeeds` is a ``synctv.realtime.room.FeedFactory``: every room session on this node
gets a :class:`RoomDanmaku`, told every playback state. When the room's current item comes from
a provider in ``sources`` (``bilibili``), it loads that item's danmaku once
(``BilibiliBackend.danmaku``) and, while the room plays, sends each one as a ``danmaku`` message
to the room's ``chat`` observers *on this node* when the playback reaches its position
(``synctv.core.danmaku.feed_step`` decides; this class only keeps the cursor and one timer).
Each node feeds its own connections, so nothing crosses the bus and nothing is sent twice.

The message is the realtime ``danmaku`` message with ``from {user_id: "", user_name: SOURCE}``
and the comment's ``mode``, ``color`` and ``size``, plus ``source``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from synctv.core.clock import Clock
from synctv.core.danmaku import DanmakuTrack, feed_step, restart_cursor
from synctv.core.errors import DomainError
from synctv.core.models import MediaItem, PlaybackState

CallLater = Callable[[float, Callable[[], None]], Any]


class DanmakuSource(Protocol):
    def danmaku(self, item: MediaItem) -> Deferred[DanmakuTrack | None]: ...


def state_from_json(state: Mapping[str, Any]) -> PlaybackState:
    return PlaybackState(
        media_id=state.get("media_id"), playing=bool(state.get("playing")), ended=bool(state.get("ended")),
        position=float(state.get("position") or 0.0), rate=float(state.get("rate") or 1.0),
        at_ms=int(state.get("at_ms") or 0), version=int(state.get("version") or 0),
    )


class RoomDanmaku:
    """One room's feed on this node (see the module docstring)."""

    log = Logger()

    def __init__(self, room_id: str, *, store: Any, sources: Mapping[str, DanmakuSource], clock: Clock,
                 emit: Callable[[dict[str, Any]], None], call_later: CallLater,
                 on_stop: Callable[[RoomDanmaku], None] = lambda feed: None) -> None:
        self.room_id = room_id
        self.on_stop = on_stop
        self.store = store
        self.sources = sources
        self.clock = clock
        self.emit = emit
        self.call_later = call_later
        self.state: PlaybackState | None = None
        self.track: DanmakuTrack | None = None
        self.source = ""
        self.cursor: float | None = None
        self.sent = 0
        self._media_id: str | None = None
        self._timer: Any = None
        self._stopped = False
        self.loading: Deferred[None] | None = None  # the track being loaded, for tests

    def stop(self) -> None:
        self._stopped = True
        self._cancel()
        self.on_stop(self)

    def _cancel(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def state_changed(self, state: dict[str, Any]) -> None:
        if self._stopped:
            return
        new = state_from_json(state)
        if self.state is not None and new.version < self.state.version:
            return
        self.state = new
        if new.media_id != self._media_id:
            self._media_id, self.track, self.cursor = new.media_id, None, None
            self._cancel()
            if new.media_id is not None:
                self.loading = Deferred.fromCoroutine(self._load(new.media_id))
                self.loading.addErrback(self._load_failed)
            return
        if self.track is not None:
            self.cursor = restart_cursor(self.cursor, new, self.clock())
            self._step()

    def _load_failed(self, failure: Failure) -> None:
        if failure.check(DomainError):  # an upstream that failed: one line, no traceback
            self.log.warn("room {room_id}: no danmaku: {error}", room_id=self.room_id, error=failure.value.message)
        else:
            self.log.failure("room {room_id}: loading danmaku", failure, room_id=self.room_id)

    async def _load(self, media_id: str) -> None:
        item = await self.store.get_media(self.room_id, media_id)
        source = self.sources.get(item.provider) if item is not None else None
        if source is None or item is None:
            return
        track = await source.danmaku(item)
        if self._stopped or self._media_id != media_id or track is None or self.state is None:
            return
        self.track, self.source = track, item.provider
        self.cursor = restart_cursor(None, self.state, self.clock())
        self.log.info("room {room_id}: {count} {source} danmaku for {media_id}", room_id=self.room_id,
                      count=len(track), source=item.provider, media_id=media_id)
        self._step()

    def _step(self) -> None:
        self._cancel()
        if self._stopped or self.track is None or self.state is None or self.cursor is None:
            return
        now = self.clock()
        step = feed_step(self.track, self.state, self.cursor, now)
        self.cursor = step.cursor
        for danmaku in step.due:
            self.emit({"type": "danmaku", **danmaku.to_json(), "from": {"user_id": "", "user_name": self.source},
                       "at_ms": now, "source": self.source})
            self.sent += 1
        if step.wake_in_s is not None:
            self._timer = self.call_later(step.wake_in_s, self._step)


class DanmakuFeeds:
    """The ``FeedFactory`` of provider danmaku (see the module docstring)."""

    def __init__(self, *, store: Any, sources: Mapping[str, DanmakuSource], clock: Clock) -> None:
        self.store = store
        self.sources = dict(sources)
        self.clock = clock
        self.rooms: dict[str, RoomDanmaku] = {}  # the running feed of each room session here

    def __call__(self, room_id: str, emit: Callable[[dict[str, Any]], None], call_later: CallLater) -> RoomDanmaku:
        feed = RoomDanmaku(room_id, store=self.store, sources=self.sources, clock=self.clock, emit=emit,
                           call_later=call_later, on_stop=self._stopped)
        self.rooms[room_id] = feed
        return feed

    def _stopped(self, feed: RoomDanmaku) -> None:
        if self.rooms.get(feed.room_id) is feed:
            del self.rooms[feed.room_id]
