"""FLV header, tag writer, tag reader and payload helpers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synctv.live import flv
from synctv.live.flv import FLVError, FLVReader, FLVTag
from synctv.live.rtmp import amf0


def test_header_golden() -> None:
    """The header for audio+video is the spec's 9 bytes (flags 0x05, offset 9) plus PreviousTagSize0."""
    assert flv.flv_header() == b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00"
    assert flv.flv_header(audio=False)[4] == 0x01
    assert flv.flv_header(video=False)[4] == 0x04


def test_tag_golden() -> None:
    """A tag is type, 24-bit size, 24-bit timestamp + extension byte, stream id 0, body, 32-bit size."""
    encoded = FLVTag(9, 0x01020304, b"\xaa").encode()
    assert encoded == bytes.fromhex("09 000001 020304 01 000000 aa 0000000c")


def test_oversized_tag_refused() -> None:
    """A body over 16 MiB - 1 cannot be written."""
    with pytest.raises(FLVError):
        flv.encode_tag(9, 0, bytes(0x1000000))


def test_reader_round_trip_any_split() -> None:
    """Header and tags written by the writer come back from the reader fed byte by byte."""
    tags = [
        flv.metadata_tag({"width": 320.0}),
        FLVTag(8, 0, b"\xaf\x00\x12\x10"),
        FLVTag(9, 2**32 - 1, b"\x17\x01" + bytes(100)),
    ]
    data = flv.flv_header() + b"".join(t.encode() for t in tags)
    reader = FLVReader()
    out = []
    for i in range(len(data)):
        out += reader.feed(data[i : i + 1])
    assert out == tags
    assert reader.has_audio and reader.has_video


def test_header_data_offset_is_honoured() -> None:
    """A header with a larger data offset skips the extra bytes."""
    header = b"FLV\x01\x01\x00\x00\x00\x0c" + b"xyz" + b"\x00\x00\x00\x00"
    assert FLVReader().feed(header + FLVTag(9, 5, b"\x27").encode()) == [FLVTag(9, 5, b"\x27")]


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"GIF89a", "signature"),
        (b"FLV\x02\x05\x00\x00\x00\x09", "version"),
        (b"FLV\x01\x05\xff\xff\xff\xff", "offset"),
        (flv.flv_header() + bytes.fromhex("07 000001 000000 00 000000 00 0000000c"), "tag type"),
        (flv.flv_header() + bytes.fromhex("29 000001 000000 00 000000 00 0000000c"), "encrypted"),
        (flv.flv_header() + bytes.fromhex("09 000001 000000 00 000000 00 00000099"), "PreviousTagSize"),
    ],
)
def test_garbage_raises_flverror(data: bytes, match: str) -> None:
    """Wrong signature, version, offset, tag type, encryption or back pointer is an FLVError."""
    reader = FLVReader()
    with pytest.raises(FLVError, match=match):
        reader.feed(data)
    with pytest.raises(FLVError):
        reader.feed(b"")


def test_tag_size_limit() -> None:
    """A tag bigger than the reader's limit is refused from its header alone."""
    reader = FLVReader(max_tag_size=1000)
    with pytest.raises(FLVError, match="exceeds"):
        reader.feed(flv.flv_header() + bytes.fromhex("09 0003e9 000000 00 000000"))


def test_payload_classifiers() -> None:
    """Sequence headers, keyframes and codecs are told apart from the first bytes of a body."""
    avc_seq, key, inter = b"\x17\x00\x00\x00\x00\x01", b"\x17\x01\x00\x00\x00", b"\x27\x01\xff\xff\xf6"
    assert flv.is_avc_sequence_header(avc_seq) and not flv.is_avc_sequence_header(key)
    assert flv.is_keyframe(key) and not flv.is_keyframe(inter)
    assert flv.composition_time(inter) == -10 and flv.composition_time(key) == 0
    assert flv.is_aac_sequence_header(b"\xaf\x00\x12\x10") and not flv.is_aac_sequence_header(b"\xaf\x01\x21")
    assert not flv.is_aac_sequence_header(b"\x2f\x00")  # MP3
    assert not flv.is_avc_sequence_header(b"\x12\x00")  # Sorenson H.263
    assert not flv.is_keyframe(b"") and not flv.is_aac(b"")
    with pytest.raises(FLVError):
        flv.composition_time(b"\x17\x01")


def test_avc_and_aac_packets_build_and_parse() -> None:
    """The payload builders and parsers agree."""
    body = flv.avc_video_payload(True, flv.AVC_NALU, 40, b"\x00\x00\x00\x01\x65")
    packet = flv.parse_avc_packet(body)
    assert (packet.keyframe, packet.packet_type, packet.composition_time, packet.data) == (
        True,
        1,
        40,
        b"\x00\x00\x00\x01\x65",
    )
    assert flv.parse_aac_packet(flv.aac_audio_payload(1, b"raw")) == (1, b"raw")
    with pytest.raises(FLVError):
        flv.parse_aac_packet(b"\x2f\x01")


def test_metadata_script_tag() -> None:
    """onMetaData is built as AMF0 "onMetaData" + ECMA array, and parsed back (also from @setDataFrame)."""
    tag = flv.metadata_tag({"width": 320.0, "encoder": "x"})
    assert tag.tag_type == flv.TAG_SCRIPT and tag.payload.startswith(b"\x02\x00\x0aonMetaData\x08")
    assert flv.parse_script(tag.payload) == ("onMetaData", {"width": 320.0, "encoder": "x"})
    wrapped = amf0.encode("@setDataFrame", "onMetaData", {"a": 1.0})
    assert flv.parse_script(wrapped) == ("onMetaData", {"a": 1.0})
    for bad in (b"\x00", amf0.encode(1.0)):
        with pytest.raises(FLVError):
            flv.parse_script(bad)


VALID_STREAM = flv.flv_header() + b"".join(
    t.encode()
    for t in [
        flv.metadata_tag({"duration": 2.0}),
        FLVTag(9, 0, b"\x17\x00" + bytes(30)),
        FLVTag(8, 0, b"\xaf\x00\x12\x10"),
        FLVTag(9, 33, b"\x27\x01" + bytes(200)),
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.booleans())
def test_random_bytes_raise_only_flverror(data: bytes, with_header: bool) -> None:
    """Random bytes (raw or after a valid header) parse or raise FLVError, nothing else."""
    try:
        FLVReader().feed((flv.flv_header() if with_header else b"") + data)
    except FLVError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_streams_raise_only_flverror(data: st.DataObject) -> None:
    """A valid FLV stream with bytes changed or cut raises only FLVError; its buffer stays bounded."""
    stream = bytearray(VALID_STREAM)
    for _ in range(data.draw(st.integers(1, 5))):
        stream[data.draw(st.integers(0, len(stream) - 1))] = data.draw(st.integers(0, 255))
    reader = FLVReader(max_tag_size=4096)
    try:
        reader.feed(bytes(stream[: data.draw(st.integers(0, len(stream)))]))
    except FLVError:
        return
    assert len(reader._buf) <= 4096 + 15 + 1024
