"""H.264 configuration/SPS helpers and AAC AudioSpecificConfig/ADTS helpers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synctv.live import aac, avc
from synctv.live.aac import AACError, AudioSpecificConfig
from synctv.live.avc import AVCDecoderConfig, AVCError

# SPS NAL units produced by x264 (ffmpeg 5.1 lavfi testsrc), with the size ffprobe reports.
SPS_VECTORS = [
    ("6742c00dd90141fb011000000300100000030320f142a480", 66, 1, 320, 240, True),  # baseline
    ("67640028acd940780227e5c044000003000400000300c83c60c658", 100, 1, 1920, 1080, True),  # crop 1088->1080
    ("67f4000d919b28283fdde022000003000200000300641e28532c", 244, 3, 318, 238, True),  # 4:4:4, odd crop
    ("677a000dbcd9415087888fc044000003000400000300c83c50a658", 122, 2, 322, 242, True),  # 4:2:2
    ("6764001eacd940a02ff97011000003000100000300320f162d96", 100, 1, 640, 360, True),  # cqm=jvt scaling lists
    ("67f4001e919b28140c7e37011000000300100000030321f1429960", 244, 3, 640, 360, False),  # interlaced (tff)
]


@pytest.mark.parametrize(("hexsps", "profile", "chroma", "width", "height", "progressive"), SPS_VECTORS)
def test_sps_size_and_profile(
    hexsps: str, profile: int, chroma: int, width: int, height: int, progressive: bool
) -> None:
    """The SPS parse gives the displayed size (after cropping) for baseline, high, 4:2:2, 4:4:4,
    scaling-list and interlaced streams."""
    info = avc.parse_sps(bytes.fromhex(hexsps))
    assert (info.profile_idc, info.chroma_format_idc, info.width, info.height, info.frame_mbs_only) == (
        profile,
        chroma,
        width,
        height,
        progressive,
    )


def test_codec_string() -> None:
    """The RFC 6381 codec string is profile, constraints, level in hex."""
    assert avc.parse_sps(bytes.fromhex(SPS_VECTORS[0][0])).codec_string == "avc1.42c00d"


def test_emulation_prevention_removed() -> None:
    """00 00 03 sequences lose the 03; other bytes are untouched."""
    assert avc.unescape_rbsp(b"\x00\x00\x03\x01\x00\x00\x03\x00\x03") == b"\x00\x00\x01\x00\x00\x00\x03"


def test_decoder_config_round_trip() -> None:
    """A record built from SPS/PPS parses back to the same parameter sets and NAL length size."""
    sps, pps = bytes.fromhex(SPS_VECTORS[1][0]), b"\x68\xeb\xe3\xcb\x22\xc0"
    config = AVCDecoderConfig.from_parameter_sets([sps], [pps])
    parsed = AVCDecoderConfig.parse(config.encode())
    assert parsed == config
    assert (parsed.profile, parsed.level, parsed.nal_length_size) == (100, 0x28, 4)
    assert parsed.annexb_parameter_sets() == b"\x00\x00\x00\x01" + sps + b"\x00\x00\x00\x01" + pps


@pytest.mark.parametrize(
    "record",
    [
        b"",
        b"\x00\x64\x00\x28\xff\xe1",
        b"\x01\x64\x00\x28\xfe\xe1\x00\x04abcd\x00",
        b"\x01\x64\x00\x28\xff\xe1\x00\x09abc",
        b"\x01\x64\x00\x28\xff\xe1\x00\x03abc",
    ],
)
def test_bad_decoder_configs(record: bytes) -> None:
    """Short, wrong-version, length-size-3 or overrunning records raise AVCError."""
    with pytest.raises(AVCError):
        AVCDecoderConfig.parse(record)


def test_avcc_annexb_conversion() -> None:
    """Length-prefixed NALs become start-code NALs and back, for 1/2/4-byte lengths."""
    nals = [b"\x09\xf0", b"\x65\x88\x84", b"\x41" + bytes(300)]
    for size in (2, 4):
        avcc = b"".join(len(n).to_bytes(size, "big") + n for n in nals)
        assert list(avc.iter_nalus(avcc, size)) == nals
        annexb = avc.avcc_to_annexb(avcc, size)
        assert annexb == b"".join(b"\x00\x00\x00\x01" + n for n in nals)
        assert avc.annexb_to_avcc(annexb, size) == avcc
    with pytest.raises(AVCError):
        list(avc.iter_nalus(b"\x00\x00\x00\x09abc", 4))
    with pytest.raises(AVCError):
        list(avc.iter_nalus(b"\x00\x00", 4))
    with pytest.raises(AVCError):
        list(avc.iter_nalus(b"", 3))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_sps_and_config_fuzz_raise_only_avcerror(data: bytes) -> None:
    """Random SPS bodies, records and access units raise only AVCError."""
    for parse in (
        lambda d: avc.parse_sps(b"\x67" + d),
        AVCDecoderConfig.parse,
        lambda d: list(avc.iter_nalus(d, 4)),
    ):
        try:
            parse(data)
        except AVCError:
            pass


def _bits(*fields: tuple[int, int]) -> bytes:
    """Pack (value, width) fields MSB-first, zero-padded to whole bytes."""
    text = "".join(format(value, f"0{width}b") for value, width in fields)
    text += "0" * (-len(text) % 8)
    return int(text, 2).to_bytes(len(text) // 8, "big")


def test_audio_specific_config_lc() -> None:
    """12 10 is AAC-LC, 44.1 kHz (index 4), stereo."""
    config = AudioSpecificConfig.parse(b"\x12\x10")
    assert (config.object_type, config.sample_rate_index, config.sample_rate, config.channel_config) == (
        2,
        4,
        44100,
        2,
    )
    assert config.encode() == b"\x12\x10" and config.codec_string == "mp4a.40.2"


def test_audio_specific_config_he_aac_reduced_to_core() -> None:
    """HE-AAC (object type 5) keeps the core rate index and the underlying AAC-LC object type for ADTS."""
    # 5 (SBR), index 6 (24 kHz core), 2 channels, ext index 3 (48 kHz), then object type 2.
    config = AudioSpecificConfig.parse(_bits((5, 5), (6, 4), (2, 4), (3, 4), (2, 5)))
    assert (config.object_type, config.sample_rate, config.channel_config, config.sbr) == (2, 24000, 2, True)
    assert config.codec_string == "mp4a.40.5"


def test_audio_specific_config_escapes_and_errors() -> None:
    """Escaped object types and explicit rates parse; truncated or reserved values raise AACError."""
    explicit = AudioSpecificConfig.parse(_bits((2, 5), (15, 4), (1000, 24), (2, 4)))
    assert (explicit.sample_rate_index, explicit.sample_rate, explicit.channel_config) == (15, 1000, 2)
    escaped = AudioSpecificConfig.parse(_bits((31, 5), (10, 6), (3, 4), (1, 4)))  # object type 42
    assert (escaped.object_type, escaped.sample_rate) == (42, 48000)
    with pytest.raises(AACError):
        aac.adts_header(explicit, 10)
    for bad in (b"", b"\x12", b"\x16\x90", b"\x00\x00"):
        with pytest.raises(AACError):
            AudioSpecificConfig.parse(bad)


def test_adts_header_fields() -> None:
    """The ADTS header restates profile, rate index, channels and the frame length (header included)."""
    config = AudioSpecificConfig.parse(b"\x12\x10")
    header = aac.adts_header(config, 100)
    assert header[:2] == b"\xff\xf1" and len(header) == 7
    assert aac.parse_adts_header(header) == aac.ADTSHeader(2, 4, 2, 107)
    assert aac.to_adts(config, b"x")[7:] == b"x"
    with pytest.raises(AACError):
        aac.adts_header(config, 8191)
    with pytest.raises(AACError):
        aac.parse_adts_header(b"\x00" * 7)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=16))
def test_audio_specific_config_fuzz_raises_only_aacerror(data: bytes) -> None:
    """Random configs raise only AACError."""
    try:
        AudioSpecificConfig.parse(data)
    except AACError:
        pass
