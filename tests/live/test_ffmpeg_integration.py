"""Real ffmpeg against the protocol cores: FLV demux -> TS mux checked by ffprobe, and an ffmpeg
RTMP publish driven through RTMPSession over a real socket."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from synctv.live import flv
from synctv.live.avc import AVCDecoderConfig, parse_sps
from synctv.live.mpegts import TSMuxer
from synctv.live.rtmp.session import (
    AudioData,
    Closed,
    Metadata,
    PublishEnded,
    PublishRequested,
    RTMPSession,
    SendData,
    VideoData,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.tools("ffmpeg", "ffprobe"),
]


@pytest.fixture(scope="module")
def source_flv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2 s H.264 (320x240, GOP 30) + AAC FLV made by ffmpeg."""
    path = tmp_path_factory.mktemp("flv") / "out.flv"
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine",
            "-t",
            "2",
            "-c:v",
            "libx264",
            "-g",
            "30",
            "-c:a",
            "aac",
            "-f",
            "flv",
            str(path),
        ],
        check=True,
        timeout=60,
    )
    return path


def _tags(path: Path) -> list[flv.FLVTag]:
    reader = flv.FLVReader()
    data = path.read_bytes()
    tags = []
    for offset in range(0, len(data), 4096):  # in pieces, as from a socket
        tags += reader.feed(data[offset : offset + 4096])
    return tags


def test_flv_demux_and_sps(source_flv: Path) -> None:
    """Our FLV reader finds metadata, both sequence headers and keyframes every 30 frames; the SPS says 320x240."""
    tags = _tags(source_flv)
    name, meta = flv.parse_script(next(t for t in tags if t.tag_type == flv.TAG_SCRIPT).payload)
    assert name == "onMetaData" and meta["width"] == 320.0
    video = [t for t in tags if t.tag_type == flv.TAG_VIDEO]
    audio = [t for t in tags if t.tag_type == flv.TAG_AUDIO]
    assert flv.is_avc_sequence_header(video[0].payload) and flv.is_aac_sequence_header(audio[0].payload)
    config = AVCDecoderConfig.parse(video[0].payload[5:])
    info = parse_sps(config.sps[0])
    assert (info.width, info.height) == (320, 240)
    frames = [t for t in video if flv.parse_avc_packet(t.payload).packet_type == flv.AVC_NALU]
    assert len(frames) == 60
    assert [i for i, t in enumerate(frames) if flv.is_keyframe(t.payload)] == [0, 30]


def test_flv_to_ts_plays_in_ffprobe_and_ffmpeg(source_flv: Path, tmp_path: Path) -> None:
    """Remuxing the FLV with TSMuxer gives a TS that ffprobe reads as h264 320x240 + aac, ~2 s long,
    and that ffmpeg decodes without a single error."""
    muxer = TSMuxer()
    out = [b""]
    for tag in _tags(source_flv):
        if tag.tag_type == flv.TAG_VIDEO:
            data = muxer.mux_flv_video(tag.timestamp, tag.payload)
        elif tag.tag_type == flv.TAG_AUDIO:
            data = muxer.mux_flv_audio(tag.timestamp, tag.payload)
        else:
            continue
        if data and not out[0]:
            out[0] = muxer.segment_start()
        out.append(data)
    ts = b"".join(out)
    assert len(ts) % 188 == 0
    ts_path = tmp_path / "out.ts"
    ts_path.write_bytes(ts)

    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(ts_path)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    info: dict[str, Any] = json.loads(probe.stdout)
    streams = {s["codec_type"]: s for s in info["streams"]}
    assert streams["video"]["codec_name"] == "h264"
    assert (streams["video"]["width"], streams["video"]["height"]) == (320, 240)
    assert streams["audio"]["codec_name"] == "aac"
    assert 1.8 <= float(info["format"]["duration"]) <= 2.3
    assert info["format"]["format_name"] == "mpegts"

    decode = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(ts_path), "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert decode.returncode == 0
    assert decode.stderr.strip() == ""


class _OneConnectionServer:
    """A plain blocking socket server that feeds one connection through an RTMPSession."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.events: list[Any] = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.listener.settimeout(30)
            conn, _ = self.listener.accept()
            conn.settimeout(30)
            session = RTMPSession()
            with conn:
                while True:
                    data = conn.recv(65536)
                    events = session.feed(data) if data else session.connection_lost()
                    if any(isinstance(e, PublishRequested) for e in events):
                        events += session.accept_publish()
                    for event in events:
                        if isinstance(event, SendData):
                            conn.sendall(event.data)
                        else:
                            self.events.append(event)
                    if not data or any(isinstance(e, Closed) for e in events):
                        return
        except BaseException as exc:  # reported to the test thread
            self.error = exc
        finally:
            self.listener.close()


def test_ffmpeg_publishes_through_the_session(source_flv: Path) -> None:
    """ffmpeg pushing RTMP completes the handshake and command flow against RTMPSession, and every
    tag it sends arrives as Metadata/AudioData/VideoData, byte-identical to the file's tags."""
    server = _OneConnectionServer()
    result = subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-i",
            str(source_flv),
            "-c",
            "copy",
            "-f",
            "flv",
            f"rtmp://127.0.0.1:{server.port}/live/streamkey?token=t",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    server.thread.join(30)
    assert not server.thread.is_alive() and server.error is None
    assert result.returncode == 0, result.stderr
    events = server.events
    assert events[0] == PublishRequested(
        "live", "streamkey", "token=t", "live", f"rtmp://127.0.0.1:{server.port}/live"
    )
    assert isinstance(events[-1], PublishEnded)
    meta = [e for e in events if isinstance(e, Metadata)]
    assert meta and meta[0].data["width"] == 320.0
    tags = _tags(source_flv)
    sent_video = [(e.timestamp, e.payload) for e in events if isinstance(e, VideoData)]
    sent_audio = [(e.timestamp, e.payload) for e in events if isinstance(e, AudioData)]
    assert sent_video == [(t.timestamp, t.payload) for t in tags if t.tag_type == flv.TAG_VIDEO]
    assert sent_audio == [(t.timestamp, t.payload) for t in tags if t.tag_type == flv.TAG_AUDIO]
