"""H.264 helpers: AVCDecoderConfigurationRecord, AVCC <-> Annex-B, and the SPS fields we need.

RTMP and FLV carry H.264 as "AVCC": a decoder configuration record (ISO 14496-15 5.2.4.1) in the
sequence header, then access units of NAL units each prefixed by a 1/2/4-byte big-endian length.
MPEG-TS wants Annex-B: NAL units after 00 00 00 01 start codes. The SPS parse (ITU-T H.264 7.3.2.1)
reads just far enough to get the profile, level and the cropped picture size.

Everything here is bounded and raises ``AVCError`` (a ``ValueError``) on malformed input.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs

START_CODE = b"\x00\x00\x00\x01"
NAL_SLICE = 1
NAL_IDR = 5
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9

# Profiles whose SPS carries chroma_format_idc, bit depths and scaling matrices.
_HIGH_PROFILES = frozenset((100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135))


class AVCError(ValueError):
    """Malformed H.264 configuration, parameter set or length-prefixed access unit."""


def nal_type(nal: bytes) -> int:
    if not nal:
        raise AVCError("empty NAL unit")
    return nal[0] & 0x1F


@attrs.frozen
class AVCDecoderConfig:
    """The parsed AVCDecoderConfigurationRecord."""

    profile: int
    compatibility: int
    level: int
    nal_length_size: int
    sps: tuple[bytes, ...]
    pps: tuple[bytes, ...]

    @classmethod
    def parse(cls, data: bytes) -> AVCDecoderConfig:
        if len(data) < 7:
            raise AVCError(f"AVC decoder configuration of {len(data)} bytes is too short")
        if data[0] != 1:
            raise AVCError(f"AVC decoder configuration version {data[0]} (expected 1)")
        nal_length_size = (data[4] & 0x03) + 1
        if nal_length_size == 3:
            raise AVCError("NAL length size 3 is not allowed")
        pos = 5
        sets: list[tuple[bytes, ...]] = []
        for mask in (0x1F, 0xFF):
            if pos >= len(data):
                raise AVCError("AVC decoder configuration truncated in parameter set count")
            count = data[pos] & mask
            pos += 1
            items = []
            for _ in range(count):
                if pos + 2 > len(data):
                    raise AVCError("AVC decoder configuration truncated in parameter set length")
                size = int.from_bytes(data[pos : pos + 2], "big")
                pos += 2
                if size == 0 or pos + size > len(data):
                    raise AVCError("AVC decoder configuration parameter set overruns the record")
                items.append(bytes(data[pos : pos + size]))
                pos += size
            sets.append(tuple(items))
        # High profiles may append chroma/bit-depth/SPS-ext fields; nothing we need is there.
        return cls(data[1], data[2], data[3], nal_length_size, sets[0], sets[1])

    def encode(self) -> bytes:
        """The record bytes (for building sequence headers)."""
        out = bytearray((1, self.profile, self.compatibility, self.level, 0xFC | (self.nal_length_size - 1)))
        out.append(0xE0 | len(self.sps))
        for sps in self.sps:
            out += len(sps).to_bytes(2, "big") + sps
        out.append(len(self.pps))
        for pps in self.pps:
            out += len(pps).to_bytes(2, "big") + pps
        return bytes(out)

    @classmethod
    def from_parameter_sets(
        cls, sps: list[bytes], pps: list[bytes], nal_length_size: int = 4
    ) -> AVCDecoderConfig:
        if not sps or len(sps[0]) < 4:
            raise AVCError("need at least one SPS of 4+ bytes")
        return cls(sps[0][1], sps[0][2], sps[0][3], nal_length_size, tuple(sps), tuple(pps))

    def annexb_parameter_sets(self) -> bytes:
        """Every SPS and PPS with start codes, as inserted before an IDR in MPEG-TS."""
        return b"".join(START_CODE + nal for nal in self.sps + self.pps)


def iter_nalus(data: bytes, nal_length_size: int = 4) -> Iterator[bytes]:
    """The NAL units of a length-prefixed (AVCC) access unit."""
    if nal_length_size not in (1, 2, 4):
        raise AVCError(f"NAL length size {nal_length_size}")
    pos, end = 0, len(data)
    view = memoryview(data)
    while pos < end:
        if pos + nal_length_size > end:
            raise AVCError("access unit truncated in a NAL length")
        size = int.from_bytes(view[pos : pos + nal_length_size], "big")
        pos += nal_length_size
        if size > end - pos:
            raise AVCError(f"NAL unit of {size} bytes overruns the access unit")
        if size:
            yield bytes(view[pos : pos + size])
        pos += size


def avcc_to_annexb(data: bytes, nal_length_size: int = 4) -> bytes:
    return b"".join(START_CODE + nal for nal in iter_nalus(data, nal_length_size))


def annexb_to_avcc(data: bytes, nal_length_size: int = 4) -> bytes:
    """Annex-B (3- or 4-byte start codes) to length-prefixed NAL units."""
    return b"".join(len(nal).to_bytes(nal_length_size, "big") + nal for nal in split_annexb(data))


def split_annexb(data: bytes) -> list[bytes]:
    nals = []
    starts = []
    i = data.find(b"\x00\x00\x01")
    while i >= 0:
        starts.append(i + 3)
        i = data.find(b"\x00\x00\x01", i + 3)
    for index, begin in enumerate(starts):
        end = starts[index + 1] - 3 if index + 1 < len(starts) else len(data)
        nal = data[begin:end].rstrip(b"\x00") if index + 1 < len(starts) else data[begin:end]
        if nal:
            nals.append(nal)
    return nals


# -- SPS ------------------------------------------------------------------------------------------


def unescape_rbsp(nal: bytes) -> bytes:
    """Remove emulation prevention bytes (00 00 03 -> 00 00)."""
    if b"\x00\x00\x03" not in nal:
        return nal
    out = bytearray()
    zeros = 0
    for byte in nal:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


class _BitReader:
    __slots__ = ("data", "limit", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.limit = len(data) * 8

    def bit(self) -> int:
        if self.pos >= self.limit:
            raise AVCError("SPS truncated")
        value = (self.data[self.pos >> 3] >> (7 - (self.pos & 7))) & 1
        self.pos += 1
        return value

    def bits(self, n: int) -> int:
        value = 0
        for _ in range(n):
            value = (value << 1) | self.bit()
        return value

    def ue(self) -> int:
        zeros = 0
        while self.bit() == 0:
            zeros += 1
            if zeros > 31:
                raise AVCError("exp-Golomb code longer than 32 bits")
        return (1 << zeros) - 1 + self.bits(zeros)

    def se(self) -> int:
        value = self.ue()
        return (value + 1) // 2 if value & 1 else -(value // 2)


@attrs.frozen
class SPSInfo:
    profile_idc: int
    constraint_flags: int
    level_idc: int
    chroma_format_idc: int
    width: int
    height: int
    frame_mbs_only: bool = True

    @property
    def codec_string(self) -> str:
        """The RFC 6381 codec string, e.g. ``avc1.64001f``."""
        return f"avc1.{self.profile_idc:02x}{self.constraint_flags:02x}{self.level_idc:02x}"


def _skip_scaling_list(reader: _BitReader, size: int) -> None:
    last, next_scale = 8, 8
    for _ in range(size):
        if next_scale != 0:
            next_scale = (last + reader.se() + 256) % 256
        last = next_scale if next_scale != 0 else last


def parse_sps(nal: bytes) -> SPSInfo:
    """Profile, level and the displayed (cropped) size from an SPS NAL unit (header included)."""
    if len(nal) < 4 or nal_type(nal) != NAL_SPS:
        raise AVCError("not an SPS NAL unit")
    reader = _BitReader(unescape_rbsp(bytes(nal[1:])))
    profile = reader.bits(8)
    constraints = reader.bits(8)
    level = reader.bits(8)
    reader.ue()  # seq_parameter_set_id
    chroma_format_idc = 1
    separate_colour_plane = 0
    if profile in _HIGH_PROFILES:
        chroma_format_idc = reader.ue()
        if chroma_format_idc > 3:
            raise AVCError(f"chroma_format_idc {chroma_format_idc}")
        if chroma_format_idc == 3:
            separate_colour_plane = reader.bit()
        reader.ue()  # bit_depth_luma_minus8
        reader.ue()  # bit_depth_chroma_minus8
        reader.bit()  # qpprime_y_zero_transform_bypass_flag
        if reader.bit():  # seq_scaling_matrix_present_flag
            for index in range(8 if chroma_format_idc != 3 else 12):
                if reader.bit():
                    _skip_scaling_list(reader, 16 if index < 6 else 64)
    reader.ue()  # log2_max_frame_num_minus4
    poc_type = reader.ue()
    if poc_type == 0:
        reader.ue()  # log2_max_pic_order_cnt_lsb_minus4
    elif poc_type == 1:
        reader.bit()  # delta_pic_order_always_zero_flag
        reader.se()  # offset_for_non_ref_pic
        reader.se()  # offset_for_top_to_bottom_field
        cycle = reader.ue()
        if cycle > 255:
            raise AVCError(f"num_ref_frames_in_pic_order_cnt_cycle {cycle}")
        for _ in range(cycle):
            reader.se()
    elif poc_type != 2:
        raise AVCError(f"pic_order_cnt_type {poc_type}")
    reader.ue()  # max_num_ref_frames
    reader.bit()  # gaps_in_frame_num_value_allowed_flag
    width_mbs = reader.ue() + 1
    height_map_units = reader.ue() + 1
    frame_mbs_only = reader.bit()
    if not frame_mbs_only:
        reader.bit()  # mb_adaptive_frame_field_flag
    reader.bit()  # direct_8x8_inference_flag
    crop_left = crop_right = crop_top = crop_bottom = 0
    if reader.bit():  # frame_cropping_flag
        crop_left, crop_right, crop_top, crop_bottom = reader.ue(), reader.ue(), reader.ue(), reader.ue()
    chroma_array_type = 0 if separate_colour_plane else chroma_format_idc
    if chroma_array_type == 0:
        crop_unit_x, crop_unit_y = 1, 2 - frame_mbs_only
    else:
        sub_width = 1 if chroma_array_type == 3 else 2
        sub_height = 2 if chroma_array_type == 1 else 1
        crop_unit_x, crop_unit_y = sub_width, sub_height * (2 - frame_mbs_only)
    width = width_mbs * 16 - crop_unit_x * (crop_left + crop_right)
    height = (2 - frame_mbs_only) * height_map_units * 16 - crop_unit_y * (crop_top + crop_bottom)
    if width <= 0 or height <= 0:
        raise AVCError(f"cropping leaves a {width}x{height} picture")
    return SPSInfo(profile, constraints, level, chroma_format_idc, width, height, bool(frame_mbs_only))
