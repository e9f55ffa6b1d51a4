"""Synthetic live media for the live tests: FLV tag bodies of a 320x240 H.264 + AAC stream, and
in-memory sinks and publishers.

The SPS/PPS are real (libx264 baseline, 320x240); frame NAL units are filler bytes of the right
NAL type, enough for the GOP cache, the fan-out and the TS muxer, which never decode pictures.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from synctv.live import flv
from synctv.live.aac import AudioSpecificConfig
from synctv.live.avc import AVCDecoderConfig

SPS = bytes.fromhex("6742c00dda0507ec0440000003004000000f03c50aa8")
PPS = bytes.fromhex("68ce0fc8")
CONFIG = AVCDecoderConfig.from_parameter_sets([SPS], [PPS])
AAC = AudioSpecificConfig(object_type=2, sample_rate_index=4, sample_rate=44100, channel_config=2)
VIDEO_HEADER = flv.avc_video_payload(True, flv.AVC_SEQUENCE_HEADER, 0, CONFIG.encode())
AUDIO_HEADER = flv.aac_audio_payload(flv.AAC_SEQUENCE_HEADER, AAC.encode())
METADATA = {"width": 320.0, "height": 240.0, "videocodecid": 7.0, "audiocodecid": 10.0, "framerate": 30.0}


def video_frame(keyframe: bool, size: int = 600, cts: int = 0) -> bytes:
    nal = bytes([0x65 if keyframe else 0x41]) + bytes(size)
    return flv.avc_video_payload(keyframe, flv.AVC_NALU, cts, len(nal).to_bytes(4, "big") + nal)


def audio_frame(size: int = 100) -> bytes:
    return flv.aac_audio_payload(flv.AAC_RAW, b"\x21" + bytes(size - 1))


def media(seconds: float, *, start_ms: int = 0, fps: int = 30, gop: int = 30, video_size: int = 600,
          audio: bool = True) -> Iterator[tuple[str, int, bytes]]:
    """("video"|"audio", timestamp ms, payload) of a stream: frames at ``fps``, a keyframe every
    ``gop`` frames, an AAC frame every ~23 ms between them."""
    frames = int(seconds * fps)
    next_audio = start_ms
    for n in range(frames):
        ts = start_ms + n * 1000 // fps
        while audio and next_audio <= ts:
            yield "audio", next_audio, audio_frame()
            next_audio += 23
        yield "video", ts, video_frame(n % gop == 0, video_size)


def feed(stream: Any, seconds: float, *, headers: bool = True, flush_every: int = 1, **kw: Any) -> None:
    """Push headers and ``seconds`` of media into a LiveStream, flushing like a socket read would."""
    if headers:
        stream.on_metadata(dict(METADATA))
        stream.on_video(kw.get("start_ms", 0), VIDEO_HEADER)
        stream.on_audio(kw.get("start_ms", 0), AUDIO_HEADER)
    for n, (kind, ts, payload) in enumerate(media(seconds, **kw)):
        (stream.on_video if kind == "video" else stream.on_audio)(ts, payload)
        if n % flush_every == 0:
            stream.flush()
    stream.flush()


class MemorySink:
    """A viewer transport in memory: records bytes, finish and abort."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.finished = False
        self.aborted = False
        self.producer: Any = None

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)

    def write(self, data: bytes) -> None:
        self.chunks.append(data)

    def finish(self) -> None:
        self.finished = True

    def abort(self) -> None:
        self.aborted = True

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self.producer = producer

    def unregisterProducer(self) -> None:
        self.producer = None


class StubPublisher:
    def __init__(self) -> None:
        self.stopped: list[str] = []

    def stop(self, reason: str) -> None:
        self.stopped.append(reason)


def tags_of(data: bytes) -> list[flv.FLVTag]:
    return flv.FLVReader().feed(data)
