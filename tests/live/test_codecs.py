"""Codec check on publish: which codec a tag carries, the stream's warnings, and the room notice."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.task import Clock
from twisted.logger import capturedLogs

from synctv.bus import InProcessBus, room_channel
from synctv.core.clock import ManualClock
from synctv.live import codecs, flv
from synctv.live.live_urls import LiveLinks
from synctv.live.service import LiveHub
from synctv.live.streams import StreamRegistry
from tests.live.live_support import StubPublisher, feed

HEVC_LEGACY_KEY = bytes([0x1C, 0x01, 0, 0, 0]) + bytes(20)  # frame type 1, codec id 12
HEVC_ENHANCED_START = bytes([0x90]) + b"hvc1" + bytes(20)  # IsExHeader | key frame, SequenceStart
AV1_ENHANCED = bytes([0x91]) + b"av01" + bytes(20)  # IsExHeader | key frame, CodedFrames
NELLYMOSER = bytes([0x6E]) + bytes(64)  # sound format 6
OPUS_ENHANCED = bytes([0x90]) + b"Opus" + bytes(8)  # ExHeader (9)
MP3 = bytes([0x2F]) + bytes(64)


@pytest.mark.parametrize("payload, name, browser", [
    (bytes([0x17, 0x01, 0, 0, 0]), "avc1", True),
    (bytes([0x90]) + b"avc1", "avc1", True),
    (HEVC_LEGACY_KEY, "hevc", False),
    (HEVC_ENHANCED_START, "hevc", False),
    (AV1_ENHANCED, "av1", False),
    (bytes([0x91]) + b"vp09", "vp9", False),
    (bytes([0x22]), "h263", False),
    (bytes([0x1F]), "unknown", False),
    (bytes([0x90]) + b"xyz!", "unknown", False),
])
def test_video_codecs(payload: bytes, name: str, browser: bool):
    codec = codecs.video_codec(payload)
    assert codec is not None and (codec.name, codec.browser) == (name, browser)
    assert (codecs.warning("video", codec) is None) == browser


@pytest.mark.parametrize("payload, name, browser", [
    (bytes([0xAF, 0x01]), "mp4a", True),
    (MP3, "mp3", True),
    (bytes([0xEF]), "mp3", True),
    (NELLYMOSER, "nellymoser", False),
    (bytes([0xBF]), "speex", False),
    (OPUS_ENHANCED, "opus", False),
    (bytes([0x90]) + b"mp4a", "mp4a", True),
    (bytes([0xCF]), "unknown", False),
])
def test_audio_codecs(payload: bytes, name: str, browser: bool):
    codec = codecs.audio_codec(payload)
    assert codec is not None and (codec.name, codec.browser) == (name, browser)


def test_empty_tags_name_no_codec():
    assert codecs.video_codec(b"") is None and codecs.audio_codec(b"") is None


def make_hub(bus: Any) -> LiveHub:
    clock = ManualClock()
    registry = StreamRegistry(clock=clock, scheduler=Clock())
    return LiveHub(store=None, clock=clock, scheduler=Clock(), registry=registry,  # type: ignore[arg-type]
                   links=LiveLinks("s" * 32), node_id="node-a:8080", bus=bus)


def test_an_hevc_publish_is_accepted_named_and_announced_to_the_room_once():
    """HEVC video with Nellymoser audio: the tags still flow (a viewer could remux them), the
    stream info says browsers cannot play it and names both codecs, a warn line is logged, and
    the room's channel gets one notice per kind, once per publish (a republish checks again)."""
    bus = InProcessBus()
    notices: list[dict[str, Any]] = []
    bus.subscribe(room_channel("r1"), notices.append)
    hub = make_hub(bus)
    publisher = StubPublisher()
    stream = hub.registry.begin_publish("r1", "m1", publisher, "rtmp")
    with capturedLogs() as events:
        for n in range(10):
            stream.on_video(n * 33, HEVC_LEGACY_KEY)
            stream.on_audio(n * 33, NELLYMOSER)
        stream.flush()
    assert stream.bytes_in > 0
    info = stream.info()
    assert info["browser_playable"] is False
    assert info["video"]["codec"] == "hevc" and info["audio"]["codec"] == "nellymoser"
    assert [n["code"] for n in notices] == ["live_codec", "live_codec"]
    assert {n["media_id"] for n in notices} == {"m1"} and {n["level"] for n in notices} == {"warning"}
    assert "HEVC (H.265)" in notices[0]["message"] and "Nellymoser" in notices[1]["message"]
    assert sum(1 for e in events if "browsers will not decode" in str(e.get("text", ""))) == 2
    hub.registry.end_publish(stream, publisher)
    stream = hub.registry.begin_publish("r1", "m1", publisher, "rtmp")
    stream.on_video(0, HEVC_ENHANCED_START)
    assert len(notices) == 3 and len(stream.info()["codec_warnings"]) == 1


def test_an_h264_aac_publish_says_nothing():
    bus = InProcessBus()
    notices: list[dict[str, Any]] = []
    bus.subscribe(room_channel("r1"), notices.append)
    hub = make_hub(bus)
    stream = hub.registry.begin_publish("r1", "m1", StubPublisher(), "rtmp")
    feed(stream, 1.0)
    info = stream.info()
    assert notices == [] and info["browser_playable"] is True and info["codec_warnings"] == []
    assert info["video"]["codec"].startswith("avc1.") and info["audio"]["codec"].startswith("mp4a.")


def test_a_relayed_stream_does_not_announce_again():
    """The node that ingests the publish announces it; a node relaying it stays quiet (its
    stream info still says browsers cannot play it)."""
    bus = InProcessBus()
    notices: list[dict[str, Any]] = []
    bus.subscribe(room_channel("r1"), notices.append)
    hub = make_hub(bus)
    stream = hub.registry.begin_publish("r1", "m1", StubPublisher(), "relay")
    stream.on_video(0, AV1_ENHANCED)
    assert notices == [] and stream.info()["browser_playable"] is False


@pytest.mark.parametrize("config, key, inter", [
    (bytes([0x90]) + b"hvc1" + b"\x01hevc-config", bytes([0x91]) + b"hvc1" + bytes(40),
     bytes([0xA3]) + b"hvc1" + bytes(30)),  # enhanced RTMP: SequenceStart, CodedFrames (key), CodedFramesX
    (bytes([0x1C, 0x00, 0, 0, 0]) + b"hevc-config", bytes([0x1C, 0x01, 0, 0, 0]) + bytes(40),
     bytes([0x2C, 0x01, 0, 0, 0]) + bytes(30)),  # legacy codec id 12
], ids=["enhanced", "legacy"])
def test_an_hevc_viewer_starts_at_a_keyframe_after_the_configuration(config: bytes, key: bytes, inter: bytes):
    """HEVC passes through HTTP-FLV as it came: a viewer arriving mid-stream gets the publish's
    configuration and then the GOP from the last keyframe, never a frame it cannot decode from."""
    from synctv.live.fanout import FLVViewer
    from tests.live.live_support import MemorySink, tags_of

    hub = make_hub(InProcessBus())
    stream = hub.registry.begin_publish("r1", "m1", StubPublisher(), "rtmp")
    stream.on_video(0, config)
    for n in range(20):
        stream.on_video(n * 33, key if n % 10 == 0 else inter)
        stream.flush()
    assert stream.ready and stream.video_header == config and stream.info()["video"]["codec"] == "hevc"
    sink = MemorySink()
    stream.attach(FLVViewer(sink, max_buffer=1 << 20, max_skips=3))
    video = [t.payload for t in tags_of(sink.data) if t.tag_type == flv.TAG_VIDEO]
    assert video == [config, key] + [inter] * 9
