"""FLV (video_file_format_spec_v10): the file header, tags, and a bounded tag reader.

Writing: ``flv_header()`` once per viewer, then ``FLVTag.encode()`` per tag -- tag header,
payload and PreviousTagSize in one ``bytes`` built once and shared by every viewer.

Reading: ``FLVReader.feed(bytes) -> [FLVTag, ...]`` for pulling a live FLV stream. Declared sizes
are bounded and checked; garbage raises ``FLVError`` (a ``ValueError``).

Payload helpers tell sequence headers and keyframes apart from the first bytes of a tag body.
"""

from __future__ import annotations

from typing import Any

import attrs

from synctv.live.rtmp import amf0

TAG_AUDIO = 8
TAG_VIDEO = 9
TAG_SCRIPT = 18
TAG_HEADER_SIZE = 11
FLV_HEADER_SIZE = 9
MAX_TAG_SIZE = 0xFFFFFF
MAX_HEADER_OFFSET = 1024

CODEC_AVC = 7
SOUND_AAC = 10
FRAME_KEY = 1
AVC_SEQUENCE_HEADER = 0
AVC_NALU = 1
AVC_END_OF_SEQUENCE = 2
AAC_SEQUENCE_HEADER = 0
AAC_RAW = 1


class FLVError(ValueError):
    """Bytes that are not an FLV stream, or a tag out of bounds."""


def flv_header(audio: bool = True, video: bool = True) -> bytes:
    """The 9-byte FLV header followed by PreviousTagSize0 (13 bytes)."""
    flags = (0x04 if audio else 0) | (0x01 if video else 0)
    return b"FLV\x01" + bytes([flags]) + b"\x00\x00\x00\x09" + b"\x00\x00\x00\x00"


@attrs.frozen
class FLVTag:
    """One tag: type (8 audio, 9 video, 18 script), timestamp in ms (32-bit), the tag body."""

    tag_type: int
    timestamp: int
    payload: bytes = attrs.field(repr=lambda p: f"<{len(p)} bytes>")

    def encode(self) -> bytes:
        return encode_tag(self.tag_type, self.timestamp, self.payload)


def encode_tag(tag_type: int, timestamp: int, payload: bytes) -> bytes:
    """Tag header + payload + PreviousTagSize, as one bytes object."""
    size = len(payload)
    if size > MAX_TAG_SIZE:
        raise FLVError(f"tag payload of {size} bytes exceeds the 24-bit size field")
    ts = timestamp & 0xFFFFFFFF
    header = bytes(
        (
            tag_type & 0x1F,
            size >> 16,
            (size >> 8) & 0xFF,
            size & 0xFF,
            (ts >> 16) & 0xFF,
            (ts >> 8) & 0xFF,
            ts & 0xFF,
            ts >> 24,
            0,
            0,
            0,
        )
    )
    return b"".join((header, payload, (size + TAG_HEADER_SIZE).to_bytes(4, "big")))


class FLVReader:
    """Incremental FLV demuxer: ``feed(bytes) -> [FLVTag, ...]``."""

    def __init__(self, max_tag_size: int = MAX_TAG_SIZE) -> None:
        self.max_tag_size = max_tag_size
        self.has_audio = False
        self.has_video = False
        self._buf = bytearray()
        self._header_done = False
        self._failed = False

    def feed(self, data: bytes) -> list[FLVTag]:
        if self._failed:
            raise FLVError("the FLV stream already failed")
        self._buf += data
        try:
            return self._parse()
        except FLVError:
            self._failed = True
            raise

    def _parse(self) -> list[FLVTag]:
        buf = self._buf
        pos = 0
        if not self._header_done:
            if len(buf) >= 3 and buf[:3] != b"FLV":
                raise FLVError("missing FLV signature")
            if len(buf) < FLV_HEADER_SIZE:
                return []
            if buf[3] != 1:
                raise FLVError(f"FLV version {buf[3]}")
            offset = int.from_bytes(buf[5:9], "big")
            if not FLV_HEADER_SIZE <= offset <= MAX_HEADER_OFFSET:
                raise FLVError(f"FLV header data offset {offset}")
            if len(buf) < offset + 4:
                return []
            self.has_audio = bool(buf[4] & 0x04)
            self.has_video = bool(buf[4] & 0x01)
            pos = offset + 4  # PreviousTagSize0, ignored
            self._header_done = True
        tags = []
        try:
            while len(buf) - pos >= TAG_HEADER_SIZE:
                tag_type = buf[pos]
                if tag_type & 0x20:
                    raise FLVError("encrypted FLV tags are not supported")
                tag_type &= 0x1F
                if tag_type not in (TAG_AUDIO, TAG_VIDEO, TAG_SCRIPT):
                    raise FLVError(f"unknown FLV tag type {tag_type}")
                size = int.from_bytes(buf[pos + 1 : pos + 4], "big")
                if size > self.max_tag_size:
                    raise FLVError(f"FLV tag of {size} bytes exceeds the limit")
                end = pos + TAG_HEADER_SIZE + size
                if len(buf) < end + 4:
                    break
                previous = int.from_bytes(buf[end : end + 4], "big")
                if previous not in (0, size + TAG_HEADER_SIZE):
                    raise FLVError(f"PreviousTagSize {previous} does not match tag size {size}")
                ts = (buf[pos + 7] << 24) | int.from_bytes(buf[pos + 4 : pos + 7], "big")
                tags.append(FLVTag(tag_type, ts, bytes(buf[pos + TAG_HEADER_SIZE : end])))
                pos = end + 4
        finally:
            del buf[:pos]
        return tags


# -- payload helpers ------------------------------------------------------------------------------


def is_avc(payload: bytes) -> bool:
    return len(payload) >= 1 and payload[0] & 0x0F == CODEC_AVC


def is_avc_sequence_header(payload: bytes) -> bool:
    return len(payload) >= 2 and is_avc(payload) and payload[1] == AVC_SEQUENCE_HEADER


def is_keyframe(payload: bytes) -> bool:
    """A video tag whose frame type is "key frame" (sequence headers are, too)."""
    return len(payload) >= 1 and payload[0] >> 4 == FRAME_KEY


def is_aac(payload: bytes) -> bool:
    return len(payload) >= 1 and payload[0] >> 4 == SOUND_AAC


def is_aac_sequence_header(payload: bytes) -> bool:
    return len(payload) >= 2 and is_aac(payload) and payload[1] == AAC_SEQUENCE_HEADER


def composition_time(payload: bytes) -> int:
    """The signed 24-bit composition time offset (ms) of an AVC video tag."""
    if len(payload) < 5:
        raise FLVError("AVC video tag shorter than 5 bytes")
    value = int.from_bytes(payload[2:5], "big")
    return value - 0x1000000 if value & 0x800000 else value


@attrs.frozen
class AVCPacket:
    """An AVC video tag body, split: packet type 0 carries the config, 1 an AVCC access unit."""

    keyframe: bool
    packet_type: int
    composition_time: int
    data: bytes


def parse_avc_packet(payload: bytes) -> AVCPacket:
    if not is_avc(payload) or len(payload) < 5:
        raise FLVError("not an AVC video tag (or shorter than its 5-byte header)")
    return AVCPacket(is_keyframe(payload), payload[1], composition_time(payload), bytes(payload[5:]))


def parse_aac_packet(payload: bytes) -> tuple[int, bytes]:
    """(AAC packet type, data) of an AAC audio tag body."""
    if not is_aac(payload) or len(payload) < 2:
        raise FLVError("not an AAC audio tag")
    return payload[1], bytes(payload[2:])


def avc_video_payload(keyframe: bool, packet_type: int, cts: int, data: bytes) -> bytes:
    """Build an AVC video tag body (FLV VIDEODATA + AVCVIDEOPACKET)."""
    return (
        bytes(((FRAME_KEY if keyframe else 2) << 4 | CODEC_AVC, packet_type))
        + (cts & 0xFFFFFF).to_bytes(3, "big")
        + data
    )


def aac_audio_payload(packet_type: int, data: bytes) -> bytes:
    """Build an AAC audio tag body (AAC, 44 kHz, 16-bit, stereo flags as the spec requires)."""
    return bytes((SOUND_AAC << 4 | 0x0F, packet_type)) + data


# -- script data ----------------------------------------------------------------------------------


def metadata_payload(metadata: dict[str, Any]) -> bytes:
    """The body of an onMetaData script tag (AMF0 "onMetaData" + ECMA array)."""
    return amf0.encode("onMetaData", amf0.ECMAArray(metadata))


def metadata_tag(metadata: dict[str, Any], timestamp: int = 0) -> FLVTag:
    return FLVTag(TAG_SCRIPT, timestamp, metadata_payload(metadata))


def parse_script(payload: bytes) -> tuple[str, Any]:
    """(name, value) of a script tag; ``@setDataFrame`` wrappers are unwrapped."""
    try:
        values = amf0.decode_all(payload)
    except amf0.AMF0Error as exc:
        raise FLVError(f"bad script data: {exc}") from None
    if values and values[0] == "@setDataFrame":
        values = values[1:]
    if not values or not isinstance(values[0], str):
        raise FLVError("script tag does not start with a name")
    return values[0], values[1] if len(values) > 1 else None
