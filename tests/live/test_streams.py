"""The stream registry: GOP cache, shared fan-out, slow viewers, lifecycle and timeline."""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock

from synctv.core.clock import ManualClock
from synctv.core.errors import Conflict
from synctv.live import flv
from synctv.live.fanout import CLOSED, ENDED, FLVViewer
from synctv.live.hls import HLSStream, MemorySegmentStore
from synctv.live.streams import LiveSettings, StreamRegistry
from synctv.live.timeline import Timeline
from tests.live.live_support import (
    AUDIO_HEADER,
    VIDEO_HEADER,
    MemorySink,
    StubPublisher,
    feed,
    tags_of,
    video_frame,
)


def make_registry(**settings: object) -> tuple[StreamRegistry, Clock, ManualClock]:
    scheduler, clock = Clock(), ManualClock()
    registry = StreamRegistry(
        clock=clock, scheduler=scheduler, settings=LiveSettings(**settings),
        hls_factory=lambda r, m: HLSStream(MemorySegmentStore(), clock=clock, target_s=1.0, window=3),
    )
    return registry, scheduler, clock


def viewer(sink: MemorySink | None = None, **kw: int) -> FLVViewer:
    return FLVViewer(sink or MemorySink(), max_buffer=kw.get("max_buffer", 1 << 20), max_skips=kw.get("max_skips", 3))


def test_new_viewer_starts_at_the_last_keyframe_then_follows_live():
    """A viewer joining mid-GOP gets the FLV header, metadata at 0, both sequence headers, the
    cached GOP from the last keyframe, and then every live tag in order."""
    registry, _, _ = make_registry()
    stream = registry.begin_publish("r", "m", StubPublisher(), "rtmp")
    feed(stream, 1.5)  # keyframes at 0 ms and 1000 ms
    v = viewer()
    stream.attach(v)
    feed(stream, 0.5, headers=False, start_ms=1500)
    data = v.sink.data
    assert data.startswith(flv.flv_header(audio=True, video=True))
    tags = tags_of(data)
    assert tags[0].tag_type == flv.TAG_SCRIPT and tags[0].timestamp == 0
    assert flv.parse_script(tags[0].payload)[1]["width"] == 320.0
    assert tags[1].payload == VIDEO_HEADER and tags[2].payload == AUDIO_HEADER
    media = tags[3:]
    assert media[0].tag_type == flv.TAG_VIDEO and flv.is_keyframe(media[0].payload) and media[0].timestamp == 1000
    video = [t.timestamp for t in media if t.tag_type == flv.TAG_VIDEO]
    assert video == sorted(video) and video[-1] == 1966
    assert stream.info()["viewers"]["flv"] == 1


def test_one_batch_is_one_shared_bytes_object_for_every_viewer():
    """Everything one flush carries reaches each viewer as the same bytes object, written once."""
    registry, _, _ = make_registry()
    stream = registry.begin_publish("r", "m", StubPublisher(), "rtmp")
    feed(stream, 1.0)
    viewers = [viewer() for _ in range(3)]
    for v in viewers:
        stream.attach(v)
    for n in range(5):
        stream.on_video(1000 + n * 33, video_frame(n == 0))
    stream.flush()
    last = [v.sink.chunks[-1] for v in viewers]
    assert last[0] is last[1] is last[2]
    assert len(tags_of(flv.flv_header() + last[0])) == 5


def test_a_slow_viewer_skips_to_the_next_keyframe_and_others_do_not_notice():
    """A paused viewer queues up to its bound, then drops the queue and waits for a keyframe
    (counted as dropped); once resumed it continues from that keyframe. A fast viewer gets every tag."""
    registry, _, _ = make_registry()
    stream = registry.begin_publish("r", "m", StubPublisher(), "rtmp")
    feed(stream, 1.0, audio=False)
    slow, fast = viewer(max_buffer=8_000), viewer()
    stream.attach(slow)
    stream.attach(fast)
    slow.pauseProducing()
    before = len(slow.sink.chunks)
    ts = 1000
    for _ in range(10):  # 6 KB: queued
        stream.on_video(ts, video_frame(False))
        stream.flush()
        ts += 33
    assert len(slow.sink.chunks) == before and slow.queued_bytes > 5000 and stream.dropped == 0
    for _ in range(5):  # past 8 KB: the queue goes, the viewer waits for a keyframe
        stream.on_video(ts, video_frame(False))
        stream.flush()
        ts += 33
    assert stream.dropped == 1 and slow.waiting_for_key and slow.queued_bytes == 0
    slow.resumeProducing()
    stream.on_video(ts, video_frame(False))
    stream.on_video(ts + 33, video_frame(True))
    stream.on_video(ts + 66, video_frame(False))
    stream.flush()
    resumed = tags_of(flv.flv_header() + b"".join(slow.sink.chunks[before:]))
    assert [t.timestamp for t in resumed] == [ts + 33, ts + 66] and flv.is_keyframe(resumed[0].payload)
    fast_video = [t for t in tags_of(fast.sink.data) if t.tag_type == flv.TAG_VIDEO and t.timestamp >= 1000]
    assert len(fast_video) == 18
    assert stream.info()["dropped"] == 1


def test_a_viewer_that_keeps_falling_behind_is_closed():
    """Past max_skips the viewer is closed (aborted), leaves the fan-out, and is counted."""
    registry, _, _ = make_registry()
    stream = registry.begin_publish("r", "m", StubPublisher(), "rtmp")
    feed(stream, 0.2)
    v = viewer(max_buffer=5_000, max_skips=2)
    stream.attach(v)
    v.pauseProducing()
    feed(stream, 3.0, headers=False, start_ms=200, gop=10)
    assert v.finished == CLOSED and v.sink.aborted and v.done.called
    assert v not in stream.viewers and stream.info()["closed_viewers"] == 1


def test_gop_cache_is_bounded_and_a_new_viewer_then_waits_for_a_keyframe():
    """A GOP larger than gop_cache_bytes is not cached; a new viewer gets the headers and starts
    at the next keyframe, never at an inter frame."""
    registry, _, _ = make_registry(gop_cache_bytes=64 << 10)
    stream = registry.begin_publish("r", "m", StubPublisher(), "rtmp")
    feed(stream, 1.0, video_size=10_000, gop=300, audio=False)  # one keyframe, 300 KB of frames
    assert not stream.ready
    v = viewer()
    stream.attach(v)
    assert v.waiting_for_key
    stream.on_video(1000, video_frame(False))
    stream.on_video(1033, video_frame(True))
    stream.on_video(1066, video_frame(False))
    stream.flush()
    media = [t for t in tags_of(v.sink.data) if t.tag_type == flv.TAG_VIDEO and t.payload != VIDEO_HEADER]
    assert [t.timestamp for t in media] == [1033, 1066] and flv.is_keyframe(media[0].payload)


def test_publish_end_ends_viewers_and_idle_timer_releases_the_stream():
    """When the publisher stops, FLV viewers end cleanly and the playlist gets ENDLIST; after
    idle_s the registry forgets the stream and frees its segments."""
    registry, scheduler, _ = make_registry(idle_s=30.0)
    publisher = StubPublisher()
    stream = registry.begin_publish("r", "m", publisher, "rtmp")
    feed(stream, 2.5)
    v = viewer()
    stream.attach(v)
    ready = stream.wait_ready()
    assert ready.called and ready.result is True
    registry.end_publish(stream, publisher)
    assert v.finished == ENDED and v.sink.finished and v.done.result == ENDED
    assert stream.hls.ended and "#EXT-X-ENDLIST" in stream.hls.playlist(str)
    assert stream.info()["state"] == "ended"
    scheduler.advance(29)
    assert registry.get("r", "m") is stream
    scheduler.advance(1)
    assert registry.get("r", "m") is None and stream.hls.released and not stream.hls.segments


def test_republish_within_the_grace_period_resumes_the_same_stream():
    """A new publish before idle_s cancels the release: same stream, a discontinuity in HLS,
    and the timeline continues after the old one."""
    registry, scheduler, _ = make_registry(idle_s=30.0)
    first = StubPublisher()
    stream = registry.begin_publish("r", "m", first, "rtmp")
    feed(stream, 2.5)
    registry.end_publish(stream, first)
    scheduler.advance(10)
    second = StubPublisher()
    assert registry.begin_publish("r", "m", second, "rtmp") is stream
    feed(stream, 2.5)  # the encoder starts again at 0
    scheduler.advance(60)
    assert registry.get("r", "m") is stream and stream.publishes == 2
    playlist = stream.hls.playlist(str)
    assert "#EXT-X-DISCONTINUITY\n" in playlist and "#EXT-X-ENDLIST" not in playlist
    assert stream.timeline.last > 2500


def test_one_publisher_per_stream():
    """A second publisher of a live stream is refused; the first keeps it."""
    registry, _, _ = make_registry()
    first = StubPublisher()
    stream = registry.begin_publish("r", "m", first, "rtmp")
    with pytest.raises(Conflict):
        registry.begin_publish("r", "m", StubPublisher(), "rtmp")
    assert stream.publisher is first
    registry.end_publish(stream, StubPublisher())  # not the publisher: ignored
    assert stream.publisher is first


def test_stream_info_reports_codecs_size_fps_bitrate_uptime():
    """info() reads codec, size and fps from the stream itself, and uptime from the clock."""
    registry, _, clock = make_registry()
    stream = registry.begin_publish("r", "m", StubPublisher(), "rtmp")
    feed(stream, 3.0)
    clock.advance(3000)
    info = stream.info()
    assert info["state"] == "live" and info["source"] == "rtmp"
    assert info["video"]["codec"] == "avc1.42c00d" and (info["video"]["width"], info["video"]["height"]) == (320, 240)
    assert 29 <= info["video"]["fps"] <= 31
    assert info["audio"] == {"codec": "mp4a.40.2", "sample_rate": 44100, "channels": 2}
    assert info["bitrate_kbps"] > 100 and info["uptime_s"] == 3.0
    assert info["hls"]["segments"] >= 2


def test_timeline_bounds_jumps_and_keeps_tracks_together():
    """Forward jumps past max_jump and backward jumps past max_back are rebased to continue the
    timeline; small reorderings between tracks pass; a new source continues after the last."""
    t = Timeline(max_jump_ms=5000, max_back_ms=2000)
    assert [t.map(x) for x in (0, 33, 20, 66)] == [0, 33, 20, 66]
    assert t.map(10_000_000) == 67  # absurd jump forward
    assert t.map(10_000_023) == 90  # the other track, same jump: same offset
    assert t.map(5) == 91  # backwards (an encoder restart)
    assert t.rebases == 2
    t.new_source()
    assert t.map(0) == 92 and t.map(33) == 125
    assert t.map(2**32 - 1) == 126  # a wrap-sized jump


def test_flush_ms_coalesces_reads_into_one_write_per_viewer():
    """With flush_ms, the reads of that window reach each viewer as one write; the end of the
    publish writes what is pending at once, before the end of stream."""
    registry, scheduler, _ = make_registry(flush_ms=40)
    publisher = StubPublisher()
    stream = registry.begin_publish("r", "m", publisher, "rtmp")
    feed(stream, 1.0)
    v = viewer()
    stream.attach(v)
    before = len(v.sink.chunks)
    for n in range(3):
        stream.on_video(1000 + n * 33, video_frame(False))
        stream.flush()
    assert len(v.sink.chunks) == before
    scheduler.advance(0.04)
    assert len(v.sink.chunks) == before + 1
    assert [t.timestamp for t in tags_of(flv.flv_header() + v.sink.chunks[-1])] == [1000, 1033, 1066]
    stream.on_video(1100, video_frame(False))
    stream.flush()
    registry.end_publish(stream, publisher)
    assert v.finished == ENDED and tags_of(flv.flv_header() + v.sink.chunks[-1])[-1].timestamp == 1100
