"""``LiveHub``: the live side of one node -- stream keys, publish checks, pulls and the registry.

- **Keys**: ``stream_key`` shows (or first issues) an item's key; ``rotate``/``revoke`` replace or
  delete it and stop a publish that used the old one.
- **Publish**: ``authorize_publish`` is the RTMP ``PublishGate``: the app must be ``live`` and
  the stream name a current key of an ``rtmp`` item; one publisher per item, on this node (the
  registry) and across nodes (the store's publisher record, refreshed every ``HEARTBEAT_S``).
- **Viewing**: ``stream_for_viewing`` gives the stream of an item for a viewer; for a ``live``
  (pull) item it starts the live proxy if it is not running.
- **Any node** (docs/live.md "Several nodes"): an ``rtmp`` item published to another node (its
  fresh publisher record names that node) is *relayed*: one ``LivePull`` per item on this node
  (``source`` ``relay``) reads the publisher node's internal door
  (``GET {node_url}/api/internal/live/{room}/{media}/live.flv``, node-signed with
  ``synctv.core.node_auth``) into a local stream, whose FLV and HLS every viewer here shares;
  it stops ``[live] pull_idle_s`` after the last viewer here left, and the publisher node then
  loses that one FLV viewer; every heartbeat it re-reads the publisher record and stops a relay
  whose publisher moved to another node or whose node's record went stale (that node died).
  ``relay_source`` is what the internal door serves: only a stream ingested here (never a relay,
  so relays cannot chain or loop).
- **Codec check**: a publish whose codecs browsers cannot decode is logged and announced to the
  room as a ``notice`` on the bus (every node's members get it), once per publish.
- ``rtmp_limits`` are the RTMP door's bounds (``[live] max_buffer_bytes``, ``max_connections``,
  ``publish_timeout_s``), read by the RTMP factory this hub is the gate of.
- ``rtmp_url`` is what OBS asks for as "Server": ``[live] rtmp_public_url`` when configured,
  else ``rtmp://HOST:PORT/live`` with the host of ``public_url`` or of the request.

As a Twisted ``Service`` it runs the publisher heartbeat while started; stopping it ends every
publish (an ``onStatus`` and a close) and every FLV viewer.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import attrs
from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from synctv.bus import Bus, room_channel
from synctv.core import node_auth
from synctv.core.clock import Clock
from synctv.core.errors import Conflict, Forbidden, NotFound
from synctv.core.live import PublisherRecord, StreamKey, new_stream_key, redact_key
from synctv.core.models import MediaItem
from synctv.live.live_urls import LiveLinks, relay_path
from synctv.live.pull import LivePull, Opener
from synctv.live.rtmp.limits import RTMPLimits
from synctv.live.rtmp.protocol import RTMP_APP
from synctv.live.streams import LiveStream, StreamRegistry
from synctv.store.interface import Store

RTMP_PROVIDER = "rtmp"
PULL_PROVIDER = "live"
LIVE_PROVIDERS = frozenset({RTMP_PROVIDER, PULL_PROVIDER})
HEARTBEAT_S = 10.0
STALE_MS = 30_000
MAX_KEY_LENGTH = 256


@attrs.frozen
class PullSettings:
    idle_s: float = 10.0
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0


class LiveHub(Service):
    log = Logger()

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        scheduler: IReactorTime,
        registry: StreamRegistry,
        links: LiveLinks,
        node_id: str,
        node_url: str = "",
        opener: Opener | None = None,
        pull: PullSettings = PullSettings(),
        rtmp_public_url: str | None = None,
        rtmp_port: int | None = None,
        rtmp_limits: RTMPLimits = RTMPLimits(),
        bus: Bus | None = None,
        node_key: bytes = b"",
        node_networks: tuple[Any, ...] = (),
        relay_opener: Opener | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.scheduler = scheduler
        self.registry = registry
        self.links = links
        self.node_id = node_id
        self.node_url = node_url
        self.opener = opener
        self.pull_settings = pull
        self.rtmp_public_url = rtmp_public_url
        self.rtmp_port = rtmp_port
        self.rtmp_limits = rtmp_limits
        self.bus = bus
        self.node_key = node_key  # signs and checks the nodes' internal door (synctv.core.node_auth)
        self.node_networks = node_networks  # [server] node_networks: who may knock on that door
        self.relay_opener = relay_opener
        self.pulls: dict[tuple[str, str], LivePull] = {}
        self._heartbeat: IDelayedCall | None = None
        self.last_release: Deferred[Any] | None = None  # the latest publisher-record release
        self.last_relay_check: Deferred[None] | None = None  # the latest check of the relays' records
        registry.on_release = self._released
        registry.on_codec_warning = self._codec_warning

    # -- lifecycle ------------------------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self.start()

    def stopService(self) -> None:
        super().stopService()
        self.stop()

    def start(self) -> None:
        self._heartbeat = self.scheduler.callLater(HEARTBEAT_S, self._beat)

    def stop(self) -> None:
        if self._heartbeat is not None and self._heartbeat.active():
            self._heartbeat.cancel()
        self._heartbeat = None
        for pull in list(self.pulls.values()):
            pull.stop("the server is stopping")
        self.registry.stop_all("the server is stopping")

    def _beat(self) -> None:
        self._heartbeat = self.scheduler.callLater(HEARTBEAT_S, self._beat)
        if any(s.publishing and s.source == "rtmp" for s in self.registry.streams.values()):
            d = self.store.touch_publishers(self.node_id, self.clock())
            d.addErrback(lambda f: self.log.failure("publisher heartbeat failed", f))
        relays = [pull for pull in self.pulls.values() if pull.source == "relay" and pull.running]
        if relays:
            self.last_relay_check = Deferred.fromCoroutine(self._check_relays(relays))
            self.last_relay_check.addErrback(lambda f: self.log.failure("checking the relays failed", f))

    async def _check_relays(self, relays: list[LivePull]) -> None:
        """Stop a relay whose publisher record no longer names the node it reads from, or went
        stale (that node died): its viewers get the end of the stream, and their next request
        finds the stream wherever it is published now."""
        for pull in relays:
            record = await self.store.get_publisher(pull.room_id, pull.media_id)
            moved = record is None or record.heartbeat_at < self.clock() - STALE_MS \
                or record.node_url.rstrip("/") + relay_path(pull.room_id, pull.media_id) != pull.url
            if moved and self.pulls.get((pull.room_id, pull.media_id)) is pull:
                pull.stop("the publisher moved to another node or its node went away")

    def _released(self, stream: LiveStream) -> None:
        pull = self.pulls.get(stream.key)
        if pull is not None and pull.stream is stream:
            pull.stop("the stream was released")

    def _codec_warning(self, stream: LiveStream, text: str) -> None:
        """A publish browsers cannot decode: a log line, and a ``notice`` to the room's members on
        every node (a relay says nothing: the publisher's node already did)."""
        if stream.source == "relay":
            return
        self.log.warn("stream {room_id}/{media_id}: {text}", room_id=stream.room_id, media_id=stream.media_id,
                      text=text)
        if self.bus is None:
            return
        notice = {"type": "notice", "room_id": stream.room_id, "level": "warning", "code": "live_codec",
                  "media_id": stream.media_id, "message": text}
        try:
            self.bus.publish(room_channel(stream.room_id), notice)
        except Exception:
            self.log.failure("announcing a codec notice for {room_id} failed", room_id=stream.room_id)

    # -- stream keys ----------------------------------------------------------------------------

    def rtmp_url(self, request_host: str | None = None) -> str:
        if self.rtmp_public_url:
            return self.rtmp_public_url.rstrip("/")
        host = urlsplit(self.links.public_url).hostname if self.links.public_url else None
        host = host or request_host or "127.0.0.1"
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"rtmp://{host}:{self.rtmp_port or 1935}/{RTMP_APP}"

    async def stream_key(self, item: MediaItem, *, rotate: bool = False) -> tuple[StreamKey, bool]:
        """The item's key, issuing one if it has none or ``rotate``; (key, newly issued)."""
        if item.provider != RTMP_PROVIDER:
            raise Conflict(f"only {RTMP_PROVIDER!r} items take a stream key; this one is {item.provider!r}",
                           field="media")
        current = await self.store.get_stream_key(item.room_id, item.id)
        if current is not None and not rotate:
            return current, False
        key = await self.store.put_stream_key(StreamKey(item.room_id, item.id, new_stream_key(), self.clock()))
        if current is not None:
            self._stop_publisher(item, "the stream key was rotated")
        self.log.info("issued stream key {key} for {room_id}/{media_id}", key=redact_key(key.key),
                      room_id=item.room_id, media_id=item.id)
        return key, True

    async def revoke_key(self, item: MediaItem) -> bool:
        revoked = await self.store.delete_stream_key(item.room_id, item.id)
        if revoked:
            self._stop_publisher(item, "the stream key was revoked")
            self.log.info("revoked the stream key of {room_id}/{media_id}", room_id=item.room_id, media_id=item.id)
        return revoked

    def _stop_publisher(self, item: MediaItem, reason: str) -> None:
        stream = self.registry.get(item.room_id, item.id)
        if stream is not None and stream.publisher is not None and stream.source == "rtmp":
            stream.publisher.stop(reason)

    # -- publishing (the RTMP PublishGate) ------------------------------------------------------

    def authorize_publish(self, app: str, stream_key: str, publisher: Any) -> Deferred[LiveStream]:
        return Deferred.fromCoroutine(self._authorize(app, stream_key, publisher))

    async def _authorize(self, app: str, stream_key: str, publisher: Any) -> LiveStream:
        if app != RTMP_APP:
            raise Forbidden(f"unknown application {app[:40]!r}; publish to rtmp://HOST:PORT/{RTMP_APP}/KEY")
        key = await self.store.find_stream_key(stream_key) if len(stream_key) <= MAX_KEY_LENGTH else None
        if key is None:
            raise Forbidden("unknown or revoked stream key")
        item = await self.store.get_media(key.room_id, key.media_id)
        if item is None or item.provider != RTMP_PROVIDER:
            raise Forbidden("the stream key's media item is gone")
        stream = self.registry.get(item.room_id, item.id)
        if stream is not None and stream.publishing:
            raise Conflict("this stream is already being published")
        now = self.clock()
        record = PublisherRecord(item.room_id, item.id, self.node_id, self.node_url, now, now)
        holder = await self.store.claim_publisher(record, now - STALE_MS)
        if holder is None or holder.node_id != self.node_id:
            raise Conflict("this stream is being published to another node")
        return self.registry.begin_publish(item.room_id, item.id, publisher, "rtmp")

    def end_publish(self, stream: LiveStream, publisher: Any) -> None:
        was = stream.publisher is publisher
        self.registry.end_publish(stream, publisher)
        if was:
            d = self.store.release_publisher(stream.room_id, stream.media_id, self.node_id)
            d.addErrback(lambda f: self.log.failure("cannot release the publisher record", f))
            self.last_release = d

    # -- viewing --------------------------------------------------------------------------------

    async def stream_for_viewing(self, item: MediaItem) -> LiveStream:
        """The item's stream for a new viewer; starts the live proxy of a ``live`` item."""
        if item.provider == PULL_PROVIDER:
            return await self._pull(item)
        stream = self.registry.get(item.room_id, item.id)
        if stream is not None and stream.publishing:
            return stream
        relayed = await self._relay(item)
        if relayed is not None:
            return relayed
        stream = self.registry.get(item.room_id, item.id)
        if stream is None or (not stream.publishing and stream.hls is None):
            raise NotFound("nothing is being published to this stream")
        return stream

    def _running_pull(self, key: tuple[str, str]) -> LiveStream | None:
        pull = self.pulls.get(key)
        return pull.stream if pull is not None and pull.running else None

    async def _relay(self, item: MediaItem) -> LiveStream | None:
        """The stream relayed from the node holding the item's publisher, started if need be;
        None when no other node holds a fresh publisher record (or relaying is not set up)."""
        if self.relay_opener is None or not self.node_key:
            return None
        record = await self.store.get_publisher(item.room_id, item.id)
        if record is None or record.node_id == self.node_id or not record.node_url \
                or record.heartbeat_at < self.clock() - STALE_MS:
            return None
        key = (item.room_id, item.id)
        stream = self.registry.get(*key)
        if stream is not None and stream.publishing:  # started while we read the record
            return stream
        path = relay_path(item.room_id, item.id)
        url = record.node_url.rstrip("/") + path
        self.log.info("relaying {room_id}/{media_id} from node {node}", room_id=item.room_id, media_id=item.id,
                      node=record.node_id)
        return self._start_pull(item, url, {}, source="relay", final=True,
                                sign=lambda: {"Authorization": node_auth.sign(self.node_key, "GET", path,
                                                                              self.node_id, self.clock())})

    def relay_source(self, room_id: str, media_id: str) -> LiveStream | None:
        """What the internal door may serve: a stream ingested on this node and live now."""
        stream = self.registry.get(room_id, media_id)
        if stream is None or not stream.publishing or stream.source not in ("rtmp", "pull"):
            return None
        return stream

    async def _pull(self, item: MediaItem) -> LiveStream:
        """The running live proxy's stream, or a new live proxy's (address checks happen when it
        connects; a refused upstream shows in the stream info and is retried like any failure)."""
        running = self._running_pull((item.room_id, item.id))
        if running is not None:
            return running
        if self.opener is None:
            raise NotFound("the live proxy is not available on this server")
        return self._start_pull(item, item.url, item.headers)

    def _start_pull(self, item: MediaItem, url: str, headers: Any, *, source: str = "pull", final: bool = False,
                    sign: Any = None) -> LiveStream:
        settings = self.pull_settings
        opener = self.relay_opener if source == "relay" else self.opener
        assert opener is not None
        pull = LivePull(
            registry=self.registry, room_id=item.room_id, media_id=item.id, url=url, headers=headers,
            opener=opener, scheduler=self.scheduler, clock=self.clock, idle_s=settings.idle_s,
            backoff_s=settings.backoff_s, max_backoff_s=settings.max_backoff_s,
            on_stopped=self._pull_stopped, source=source, sign=sign, final=final,
        )
        self.pulls[(item.room_id, item.id)] = pull
        return pull.start()

    def _pull_stopped(self, pull: LivePull) -> None:
        if self.pulls.get((pull.room_id, pull.media_id)) is pull:
            del self.pulls[(pull.room_id, pull.media_id)]

    async def info(self, item: MediaItem) -> dict[str, Any]:
        """The stream info of an item (``state`` ``offline`` when this node holds no stream)."""
        stream = self.registry.get(item.room_id, item.id)
        record = await self.store.get_publisher(item.room_id, item.id)
        if stream is None:
            info: dict[str, Any] = {"room_id": item.room_id, "media_id": item.id, "state": "offline",
                                    "viewers": {"flv": 0, "hls": 0}, "dropped": 0}
        else:
            info = stream.info()
        info["provider"] = item.provider
        info["publisher"] = record.to_json() if record is not None else None
        info["node_id"] = self.node_id  # the node answering (a relay's source says where it reads from)
        return info
