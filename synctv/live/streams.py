"""The stream registry: one ``LiveStream`` per live media item, its publisher and its viewers.

A publisher (an RTMP session, or the live proxy pulling an upstream) calls ``begin_publish``
and then feeds tags: ``on_metadata``, ``on_video``, ``on_audio``, and ``flush()`` after each
read from its socket. A stream:

- keeps the metadata and the audio/video sequence headers, and a **GOP cache**: the FLV tags
  since the last video keyframe, bounded in bytes (past the bound it is dropped until the next
  keyframe, and a new viewer then waits for that keyframe);
- encodes each tag **once** as FLV bytes; ``flush()`` joins the tags read so far into one
  ``bytes`` and hands that same object to every viewer (``FLVViewer``), so a read costs one join
  and one write per viewer, however many tags it held (with ``flush_ms``, the reads of up to
  that many milliseconds share one join and one write per viewer);
- maps publisher timestamps onto a timeline that never jumps: a jump forward past
  ``max_jump_ms`` or backwards past ``max_back_ms`` (an encoder restart, a 32-bit wrap, a broken
  encoder) is rebased to continue where the timeline was;
- feeds the HLS segmenter (``synctv.live.hls``) and keeps the figures of ``info()``;
- looks at the first audio and the first video tag of each publish (``synctv.live.codecs``): a
  codec browsers cannot decode is still passed on, and is named in ``codec_warnings`` (stream
  info ``browser_playable: false``) and told to ``on_codec_warning`` once per publish.

When the publisher stops (``end_publish``) FLV viewers get a clean end of stream, the HLS
playlist gets ENDLIST, and after ``idle_s`` without a new publisher the registry releases the
stream (memory, HLS segments and files). A republish within that time resumes the same stream:
its HLS playlist continues after an EXT-X-DISCONTINUITY.

No reactor import: time comes from ``clock`` (ms) and timers from the injected ``scheduler``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import attrs
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from synctv.core.clock import Clock
from synctv.core.errors import Conflict
from synctv.live import codecs, flv
from synctv.live.aac import AACError, AudioSpecificConfig
from synctv.live.avc import AVCDecoderConfig, AVCError, parse_sps
from synctv.live.fanout import FLVViewer
from synctv.live.timeline import Rates, Timeline

StreamKeyTuple = tuple[str, str]  # (room_id, media_id)


@attrs.frozen
class LiveSettings:
    gop_cache_bytes: int = 8 << 20
    viewer_buffer_bytes: int = 4 << 20
    max_viewer_skips: int = 20
    idle_s: float = 30.0
    max_jump_ms: int = 5000
    max_back_ms: int = 2000
    flush_ms: int = 0  # 0: every publisher read goes out at once; else reads coalesce for up to this long


class Publisher(Protocol):
    """What pushes into a stream: it can be told to stop (a revoked key, shutdown)."""

    def stop(self, reason: str) -> None: ...


class HLSOutput(Protocol):
    """What a stream feeds for HLS (``synctv.live.hls.HLSStream``)."""

    def begin(self) -> None: ...
    def on_video(self, timestamp: int, payload: bytes) -> None: ...
    def on_audio(self, timestamp: int, payload: bytes) -> None: ...
    def end(self) -> None: ...
    def release(self) -> None: ...
    def info(self) -> dict[str, Any]: ...


class LiveStream:
    """One live media item; see the module docstring."""

    log = Logger()

    def __init__(
        self, room_id: str, media_id: str, settings: LiveSettings, clock: Clock, hls: HLSOutput | None = None,
        scheduler: IReactorTime | None = None,
    ) -> None:
        self.room_id = room_id
        self.media_id = media_id
        self.settings = settings
        self.clock = clock
        self.hls = hls
        self.publisher: Publisher | None = None
        self.source = ""
        self.published_at: int | None = None
        self.publishes = 0
        self.viewers: set[FLVViewer] = set()
        self.dropped = 0
        self.closed_viewers = 0
        self.metadata: dict[str, Any] = {}
        self.video_header: bytes | None = None
        self.audio_header: bytes | None = None
        self.video_info: dict[str, Any] = {}
        self.audio_info: dict[str, Any] = {}
        self.bytes_in = 0
        self.timeline = Timeline(settings.max_jump_ms, settings.max_back_ms)
        self.extra_info: dict[str, Any] = {}  # e.g. the live proxy's upstream state
        self.activity: Callable[[LiveStream], None] = lambda stream: None  # viewer count changed
        self.on_codec_warning: Callable[[LiveStream, str], None] = lambda stream, text: None
        self.codec_warnings: list[str] = []
        self._video_checked = self._audio_checked = False
        self._other_video = False  # video other than AVC: its configuration and keyframes look different
        self._gop: list[bytes] = []
        self._gop_bytes = 0
        self._gop_ts = 0
        self._gop_valid = False
        self._batch: list[bytes] = []
        self._batch_key: int | None = None  # index of the first keyframe in the batch
        self._rates = Rates()
        self.scheduler = scheduler
        self._flush_call: IDelayedCall | None = None
        self._ready_waiters: list[Deferred[bool]] = []

    @property
    def key(self) -> StreamKeyTuple:
        return (self.room_id, self.media_id)

    @property
    def publishing(self) -> bool:
        return self.publisher is not None

    @property
    def has_video(self) -> bool:
        return self.video_header is not None

    @property
    def expects_video(self) -> bool:
        """Video has been seen, or the metadata announces it."""
        return self.has_video or "videocodecid" in self.metadata

    @property
    def ready(self) -> bool:
        """A new viewer can start now: a keyframe is cached (or, audio only, audio flows)."""
        return self.publishing and self._gop_valid and (bool(self._gop) or not self.expects_video)

    def wait_ready(self) -> Deferred[bool]:
        """Fires True once ``ready``, or False if the publish ends first."""
        if self.ready or not self.publishing:
            return succeed(self.ready)
        waiter: Deferred[bool] = Deferred(lambda d: self._ready_waiters.remove(d) if d in self._ready_waiters else None)
        self._ready_waiters.append(waiter)
        return waiter

    def _wake(self) -> None:
        waiters, self._ready_waiters = self._ready_waiters, []
        for waiter in waiters:
            waiter.callback(self.ready)

    # -- publisher side -------------------------------------------------------------------------

    def _begin(self, publisher: Publisher, source: str) -> None:
        self.publisher = publisher
        self.source = source
        self.published_at = self.clock()
        self.publishes += 1
        self.timeline.new_source()
        self._gop, self._gop_bytes, self._gop_valid = [], 0, False
        self.video_header = self.audio_header = None  # a new publisher sends its own
        self.codec_warnings = []
        self._video_checked = self._audio_checked = self._other_video = False
        self._rates = Rates()
        if self.hls is not None:
            self.hls.begin()

    def on_metadata(self, metadata: dict[str, Any]) -> None:
        self.metadata = {k: v for k, v in metadata.items() if isinstance(k, str)}

    def on_video(self, timestamp: int, payload: bytes) -> None:
        if not payload:
            return
        if not self._video_checked:
            self._check_codec("video", payload)
        self.bytes_in += len(payload)
        if flv.is_avc_sequence_header(payload) or (self._other_video and codecs.is_video_config(payload)):
            ts = self.timeline.last or 0  # a configuration is not a sample: it does not move time
            if payload == self.video_header:
                return  # the same configuration again (a reconnected upstream): nothing new
            self.video_header = payload
            if not self._other_video:
                self._describe_video(payload[5:])
            if self.hls is not None:
                self.hls.on_video(ts, payload)
            self._push(flv.encode_tag(flv.TAG_VIDEO, ts, payload), False)
            return
        ts = self.timeline.map(timestamp)
        keyframe = flv.is_keyframe(payload) or (self._other_video and codecs.is_ex_keyframe(payload))
        self._rates.add(ts, len(payload), True)
        tag = flv.encode_tag(flv.TAG_VIDEO, ts, payload)
        if keyframe:
            self._gop, self._gop_bytes, self._gop_ts, self._gop_valid = [], 0, ts, True
        self._cache(tag)
        self._push(tag, keyframe)
        if self.hls is not None:
            self.hls.on_video(ts, payload)
        if keyframe and self._ready_waiters:
            self._wake()

    def on_audio(self, timestamp: int, payload: bytes) -> None:
        if not payload:
            return
        if not self._audio_checked:
            self._check_codec("audio", payload)
        self.bytes_in += len(payload)
        if flv.is_aac_sequence_header(payload):
            ts = self.timeline.last or 0
            if payload == self.audio_header:
                return
            self.audio_header = payload
            self._describe_audio(payload[2:])
            if self.hls is not None:
                self.hls.on_audio(ts, payload)
            self._push(flv.encode_tag(flv.TAG_AUDIO, ts, payload), False)
            return
        ts = self.timeline.map(timestamp)
        self._rates.add(ts, len(payload), False)
        tag = flv.encode_tag(flv.TAG_AUDIO, ts, payload)
        if self.expects_video:
            self._cache(tag)
            self._push(tag, False)
        else:  # audio only: every frame is a place to start
            self._gop, self._gop_bytes, self._gop_ts, self._gop_valid = [], 0, ts, True
            self._push(tag, True)
        if self.hls is not None:
            self.hls.on_audio(ts, payload)
        if self._ready_waiters and self.ready:
            self._wake()

    def _cache(self, tag: bytes) -> None:
        if not self._gop_valid:
            return
        self._gop.append(tag)
        self._gop_bytes += len(tag)
        if self._gop_bytes > self.settings.gop_cache_bytes:
            self._gop, self._gop_bytes, self._gop_valid = [], 0, False

    def _push(self, tag: bytes, keyframe: bool) -> None:
        if keyframe and self._batch_key is None:
            self._batch_key = len(self._batch)
        self._batch.append(tag)

    def flush(self) -> None:
        """The publisher finished a read: hand the tags read so far to every viewer, as one shared
        ``bytes`` -- now, or (``flush_ms`` > 0) at most ``flush_ms`` later, together with the
        reads that arrive meanwhile: fewer, larger writes per viewer for a bounded delay."""
        if not self._batch or self._flush_call is not None:
            return
        if self.settings.flush_ms > 0 and self.scheduler is not None and self.viewers:
            self._flush_call = self.scheduler.callLater(self.settings.flush_ms / 1000, self._flush_now)
            return
        self._flush_now()

    def _flush_now(self) -> None:
        if self._flush_call is not None:
            if self._flush_call.active():
                self._flush_call.cancel()
            self._flush_call = None
        if not self._batch:
            return
        batch, key_index = self._batch, self._batch_key
        self._batch, self._batch_key = [], None
        if not self.viewers:
            return
        data = batch[0] if len(batch) == 1 else b"".join(batch)
        keyed: list[bytes | None] = []

        def from_key() -> bytes | None:
            if not keyed:
                keyed.append(None if key_index is None else data if key_index == 0 else b"".join(batch[key_index:]))
            return keyed[0]

        for viewer in list(self.viewers):
            viewer.deliver(data, from_key)

    def _end(self) -> None:
        self._flush_now()
        self.publisher = None
        self.source = ""
        for viewer in list(self.viewers):
            viewer.end()
        if self.hls is not None:
            self.hls.end()
        self._wake()

    # -- viewer side ----------------------------------------------------------------------------

    def start_bytes(self) -> tuple[bytes, bool]:
        """What a new FLV viewer gets first, and whether it must then wait for a keyframe:
        FLV header, metadata, sequence headers (stamped at the GOP's start) and the GOP cache."""
        start_ts = self._gop_ts if self._gop_valid else (self.timeline.last or 0)
        audio = self.audio_header is not None or "audiocodecid" in self.metadata
        parts = [flv.flv_header(audio=audio or not self.expects_video, video=self.expects_video)]
        meta = dict(self.metadata)
        meta.pop("duration", None)
        meta.pop("filesize", None)
        # at 0: ffmpeg reads a later metadata tag as a data stream
        parts.append(flv.encode_tag(flv.TAG_SCRIPT, 0, flv.metadata_payload(meta)))
        if self.video_header is not None:
            parts.append(flv.encode_tag(flv.TAG_VIDEO, start_ts, self.video_header))
        if self.audio_header is not None:
            parts.append(flv.encode_tag(flv.TAG_AUDIO, start_ts, self.audio_header))
        waiting = not (self._gop_valid and self._gop)
        if not waiting:
            parts.extend(self._gop)
        return b"".join(parts), waiting and self.has_video

    def attach(self, viewer: FLVViewer) -> None:
        """Start ``viewer`` from the cached GOP and add it to the fan-out."""
        self._flush_now()
        initial, waiting = self.start_bytes()
        previous = viewer.on_done

        def done(v: FLVViewer, why: str) -> None:
            self.viewers.discard(v)
            if why == "closed":
                self.closed_viewers += 1
            previous(v, why)
            self.activity(self)

        viewer.on_done = done
        viewer.on_skip = self._count_skip
        self.viewers.add(viewer)
        viewer.start(initial, waiting)
        self.activity(self)

    def _count_skip(self, viewer: FLVViewer) -> None:
        self.dropped += 1

    # -- figures --------------------------------------------------------------------------------

    def _check_codec(self, kind: str, payload: bytes) -> None:
        """The first tag of ``kind`` in this publish: name its codec, and warn once if browsers
        cannot decode it (H.264 and AAC are described from their configurations instead)."""
        if kind == "video":
            self._video_checked = True
            codec = codecs.video_codec(payload)
            if codec is not None and codec.name != "avc1":
                self.video_info = {"codec": codec.name}
                self._other_video = True
        else:
            self._audio_checked = True
            codec = codecs.audio_codec(payload)
            if codec is not None and codec.name != "mp4a":
                self.audio_info = {"codec": codec.name}
        text = codecs.warning(kind, codec) if codec is not None else None
        if text is None:
            return
        self.codec_warnings.append(text)
        try:
            self.on_codec_warning(self, text)
        except Exception:
            self.log.failure("on_codec_warning failed for {room_id}/{media_id}",
                             room_id=self.room_id, media_id=self.media_id)

    def _describe_video(self, record: bytes) -> None:
        info: dict[str, Any] = {"codec": "avc1"}
        try:
            config = AVCDecoderConfig.parse(record)
            sps = parse_sps(config.sps[0]) if config.sps else None
        except (AVCError, IndexError) as e:
            self.log.info("stream {room_id}/{media_id}: unreadable AVC configuration: {error}",
                          room_id=self.room_id, media_id=self.media_id, error=str(e))
        else:
            if sps is not None:
                info.update(codec=sps.codec_string, width=sps.width, height=sps.height)
        self.video_info = info

    def _describe_audio(self, data: bytes) -> None:
        info: dict[str, Any] = {"codec": "mp4a"}
        try:
            config = AudioSpecificConfig.parse(data)
        except AACError as e:
            self.log.info("stream {room_id}/{media_id}: unreadable AAC configuration: {error}",
                          room_id=self.room_id, media_id=self.media_id, error=str(e))
        else:
            info.update(codec=config.codec_string, sample_rate=config.sample_rate,
                        channels=config.channel_config)
        self.audio_info = info

    def info(self) -> dict[str, Any]:
        now = self.clock()
        video = dict(self.video_info) if self.video_info else None
        if video is not None:
            video["fps"] = self._rates.fps()
        return {
            "room_id": self.room_id,
            "media_id": self.media_id,
            "state": "live" if self.publishing else "ended",
            "source": self.source or None,
            "video": video,
            "audio": dict(self.audio_info) if self.audio_info else None,
            "bitrate_kbps": self._rates.kbps() if self.publishing else None,
            "uptime_s": round((now - self.published_at) / 1000, 3)
            if self.publishing and self.published_at is not None else None,
            "publishes": self.publishes,
            "viewers": {"flv": len(self.viewers), **({"hls": self.hls.info()["viewers"]} if self.hls else {})},
            "dropped": self.dropped,
            "closed_viewers": self.closed_viewers,
            "timestamp_rebases": self.timeline.rebases,
            "gop_cache_bytes": self._gop_bytes if self._gop_valid else 0,
            "hls": self.hls.info() if self.hls is not None else None,
            "browser_playable": not self.codec_warnings,
            "codec_warnings": list(self.codec_warnings),
            **self.extra_info,
        }


class StreamRegistry:
    """Every live stream of this node, by (room_id, media_id)."""

    log = Logger()

    def __init__(
        self,
        *,
        clock: Clock,
        scheduler: IReactorTime,
        settings: LiveSettings = LiveSettings(),
        hls_factory: Callable[[str, str], HLSOutput | None] = lambda room_id, media_id: None,
        on_release: Callable[[LiveStream], None] = lambda stream: None,
        on_codec_warning: Callable[[LiveStream, str], None] = lambda stream, text: None,
    ) -> None:
        self.clock = clock
        self.scheduler = scheduler
        self.settings = settings
        self.hls_factory = hls_factory
        self.on_release = on_release
        self.on_codec_warning = on_codec_warning
        self.streams: dict[StreamKeyTuple, LiveStream] = {}
        self._release_calls: dict[StreamKeyTuple, IDelayedCall] = {}

    def get(self, room_id: str, media_id: str) -> LiveStream | None:
        return self.streams.get((room_id, media_id))

    def ensure(self, room_id: str, media_id: str) -> LiveStream:
        """The stream of an item, made (idle, with a release timer) if there is none."""
        stream = self.streams.get((room_id, media_id))
        if stream is None:
            stream = LiveStream(room_id, media_id, self.settings, self.clock, self.hls_factory(room_id, media_id),
                                self.scheduler)
            stream.on_codec_warning = lambda s, text: self.on_codec_warning(s, text)
            self.streams[stream.key] = stream
            self._schedule_release(stream)
        return stream

    def begin_publish(self, room_id: str, media_id: str, publisher: Publisher, source: str) -> LiveStream:
        """Make ``publisher`` the one publisher of the item; Conflict if another one is live."""
        stream = self.ensure(room_id, media_id)
        if stream.publisher is not None and stream.publisher is not publisher:
            raise Conflict("this stream is already being published")
        self._cancel_release(stream.key)
        stream._begin(publisher, source)
        return stream

    def end_publish(self, stream: LiveStream, publisher: Publisher) -> None:
        """``publisher`` stopped: end the viewers, ENDLIST, and release after ``idle_s``."""
        if stream.publisher is not publisher:
            return
        stream._end()
        if self.streams.get(stream.key) is stream:
            self._schedule_release(stream)

    def _schedule_release(self, stream: LiveStream) -> None:
        self._cancel_release(stream.key)
        self._release_calls[stream.key] = self.scheduler.callLater(self.settings.idle_s, self._idle, stream)

    def _cancel_release(self, key: StreamKeyTuple) -> None:
        call = self._release_calls.pop(key, None)
        if call is not None and call.active():
            call.cancel()

    def _idle(self, stream: LiveStream) -> None:
        self._release_calls.pop(stream.key, None)
        if stream.publishing or self.streams.get(stream.key) is not stream:
            return
        self.release(stream)

    def release(self, stream: LiveStream) -> None:
        """Forget the stream: close its viewers, free its HLS segments and files."""
        self._cancel_release(stream.key)
        if self.streams.get(stream.key) is stream:
            del self.streams[stream.key]
        for viewer in list(stream.viewers):
            viewer.close()
        if stream.hls is not None:
            stream.hls.release()
        self.log.info("released stream {room_id}/{media_id}", room_id=stream.room_id, media_id=stream.media_id)
        try:
            self.on_release(stream)
        except Exception:
            self.log.failure("on_release failed for {room_id}/{media_id}",
                             room_id=stream.room_id, media_id=stream.media_id)

    def stop_all(self, reason: str) -> None:
        """Stop every publisher and release every stream (shutdown)."""
        for stream in list(self.streams.values()):
            if stream.publisher is not None:
                stream.publisher.stop(reason)
            self.release(stream)
