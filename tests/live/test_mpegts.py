"""The MPEG-TS muxer: PSI tables, PES packetisation, timestamps, PCR, counters and stuffing."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from synctv.live import flv, mpegts
from synctv.live.aac import AudioSpecificConfig, parse_adts_header
from synctv.live.avc import AVCDecoderConfig
from synctv.live.mpegts import AUDIO_PID, CLOCK_OFFSET, PAT_PID, PMT_PID, VIDEO_PID, TSMuxer

from .rtmp_client import pes_units, ts_packets

SPS = bytes.fromhex("6742c00dd90141fb011000000300100000030320f142a480")
PPS = bytes.fromhex("68ce3c80")
VIDEO_CONFIG = AVCDecoderConfig.from_parameter_sets([SPS], [PPS])
AUDIO_CONFIG = AudioSpecificConfig.parse(b"\x12\x10")
IDR = b"\x65\x88\x84" + bytes(500)
SLICE = b"\x41\x9a" + bytes(40)


def avcc(*nals: bytes) -> bytes:
    return b"".join(len(n).to_bytes(4, "big") + n for n in nals)


def test_crc32_mpeg2_check_value() -> None:
    """CRC-32/MPEG-2 of "123456789" is the catalogued check value 0x0376E6E7."""
    assert mpegts.crc32_mpeg2(b"123456789") == 0x0376E6E7


def test_pat_golden() -> None:
    """The PAT is byte-identical to ffmpeg's (program 1 -> PMT PID 0x1000, CRC 2AB104B2)."""
    pat = TSMuxer(VIDEO_CONFIG, AUDIO_CONFIG).segment_start()[:188]
    assert pat[:21] == bytes.fromhex("474000100000b00d0001c100000001f0002ab104b2")
    assert pat[21:] == b"\xff" * 167


def test_pmt_lists_streams_with_valid_crc() -> None:
    """The PMT names H.264 (0x1B) and AAC/ADTS (0x0F), the PCR PID, and carries a correct CRC."""
    for video, audio, types, pcr in [
        (VIDEO_CONFIG, AUDIO_CONFIG, [0x1B, 0x0F], VIDEO_PID),
        (VIDEO_CONFIG, None, [0x1B], VIDEO_PID),
        (None, AUDIO_CONFIG, [0x0F], AUDIO_PID),
    ]:
        pmt = ts_packets(TSMuxer(video, audio).segment_start())[1]
        assert pmt["pid"] == PMT_PID and pmt["pusi"]
        section_length = ((pmt["payload"][2] & 0x0F) << 8) | pmt["payload"][3]
        section = pmt["payload"][1 : 4 + section_length]
        assert mpegts.crc32_mpeg2(section) == 0
        assert ((section[8] & 0x1F) << 8 | section[9]) == pcr
        entries = section[12:-4]
        assert [entries[i] for i in range(0, len(entries), 5)] == types


def test_keyframe_gets_aud_sps_pps_pcr_and_random_access() -> None:
    """A keyframe PES starts with an AUD, then SPS and PPS, then the IDR; its first packet carries
    the PCR and random_access_indicator; PTS = DTS + composition offset at 90 kHz."""
    muxer = TSMuxer(VIDEO_CONFIG, AUDIO_CONFIG)
    data = muxer.mux_video(1000, 40, avcc(b"\x09\x10", b"\x06\x05\x01", IDR), keyframe=True)
    (unit,) = pes_units(ts_packets(data), VIDEO_PID)
    start = b"\x00\x00\x00\x01"
    assert unit["data"] == (
        start + b"\x09\xf0" + start + SPS + start + PPS + start + b"\x06\x05\x01" + start + IDR
    )
    assert unit["stream_id"] == 0xE0 and unit["pes_length"] == 0
    assert unit["dts"] == 90_000 + CLOCK_OFFSET and unit["pts"] == 90_000 + 40 * 90 + CLOCK_OFFSET
    assert unit["random_access"] and unit["pcr"] == 90_000


def test_interframe_has_no_parameter_sets_or_random_access() -> None:
    """A non-key frame gets only the AUD prepended; with no composition offset only a PTS is written."""
    muxer = TSMuxer(VIDEO_CONFIG, None)
    (unit,) = pes_units(ts_packets(muxer.mux_video(33, 0, avcc(SLICE), keyframe=False)), VIDEO_PID)
    assert unit["data"] == b"\x00\x00\x00\x01\x09\xf0\x00\x00\x00\x01" + SLICE
    assert not unit["random_access"] and unit["pcr"] == 33 * 90
    assert unit["pts"] == unit["dts"] == 33 * 90 + CLOCK_OFFSET


def test_keyframe_with_inband_parameter_sets_not_duplicated() -> None:
    """If the access unit already carries SPS/PPS they are not inserted again."""
    data = TSMuxer(VIDEO_CONFIG, None).mux_video(0, 0, avcc(SPS, PPS, IDR), keyframe=True)
    (unit,) = pes_units(ts_packets(data), VIDEO_PID)
    assert unit["data"].count(SPS) == 1


def test_audio_pes_is_adts_with_length_and_pts() -> None:
    """An AAC frame becomes one bounded PES holding an ADTS frame, PTS only, no PCR when video exists."""
    muxer = TSMuxer(VIDEO_CONFIG, AUDIO_CONFIG)
    (unit,) = pes_units(ts_packets(muxer.mux_audio(23, b"\x21" * 300)), AUDIO_PID)
    assert unit["stream_id"] == 0xC0 and unit["pes_length"] > 0
    assert unit["pts"] == 23 * 90 + CLOCK_OFFSET and unit["pcr"] is None
    assert parse_adts_header(unit["data"]).frame_length == 307
    assert unit["data"][7:] == b"\x21" * 300


def test_audio_only_stream_puts_pcr_on_audio() -> None:
    """Without video, the audio PID carries the PCR."""
    muxer = TSMuxer(None, AUDIO_CONFIG)
    (unit,) = pes_units(ts_packets(muxer.mux_audio(100, b"\x21" * 10)), AUDIO_PID)
    assert unit["pcr"] == 9000


def test_continuity_counters_per_pid() -> None:
    """Each PID's continuity counter advances by one per packet, wrapping at 16, across calls."""
    muxer = TSMuxer(VIDEO_CONFIG, AUDIO_CONFIG)
    data = muxer.segment_start()
    for i in range(20):
        data += muxer.mux_video(i * 33, 0, avcc(IDR if i % 10 == 0 else SLICE), keyframe=i % 10 == 0)
        data += muxer.mux_audio(i * 23, b"\x21" * 200)
        if i == 10:
            data += muxer.segment_start()
    expected: dict[int, int] = {}
    for packet in ts_packets(data):
        pid = packet["pid"]
        if pid in expected:
            assert packet["cc"] == (expected[pid] + 1) % 16
        expected[pid] = packet["cc"]
    assert set(expected) == {PAT_PID, PMT_PID, VIDEO_PID, AUDIO_PID}


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 2000), st.booleans(), st.integers(0, 100_000))
def test_any_size_is_188_aligned_and_reassembles(size: int, keyframe: bool, dts: int) -> None:
    """Whatever the payload size (so every stuffing length occurs), output is whole 188-byte packets
    and the PES reassembles to exactly what went in."""
    muxer = TSMuxer(VIDEO_CONFIG, AUDIO_CONFIG)
    nal = b"\x41" + bytes(range(256)) * (size // 256) + bytes(size % 256)
    data = muxer.mux_video(dts, 0, avcc(nal), keyframe)
    assert len(data) % 188 == 0
    (unit,) = pes_units(ts_packets(data), VIDEO_PID)
    assert unit["data"].endswith(b"\x00\x00\x00\x01" + nal)
    audio = muxer.mux_audio(dts, nal[: min(size, 8000)])
    (unit,) = pes_units(ts_packets(audio), AUDIO_PID)
    assert unit["data"][7:] == nal[: min(size, 8000)]


def test_flv_tag_bodies_drive_the_muxer() -> None:
    """Sequence headers set the configs (no output); frames after them are muxed; frames before are dropped."""
    muxer = TSMuxer()
    frame = flv.avc_video_payload(True, flv.AVC_NALU, 0, avcc(IDR))
    assert muxer.mux_flv_video(0, frame) == b""
    assert (
        muxer.mux_flv_video(0, flv.avc_video_payload(True, flv.AVC_SEQUENCE_HEADER, 0, VIDEO_CONFIG.encode()))
        == b""
    )
    assert muxer.video_config == VIDEO_CONFIG
    assert muxer.mux_flv_audio(0, flv.aac_audio_payload(flv.AAC_SEQUENCE_HEADER, b"\x12\x10")) == b""
    assert muxer.audio_config == AUDIO_CONFIG
    assert len(muxer.mux_flv_video(0, frame)) % 188 == 0
    assert len(muxer.mux_flv_audio(0, flv.aac_audio_payload(flv.AAC_RAW, b"\x21" * 9))) == 188
    assert muxer.mux_flv_audio(0, b"\x2f\x01abc") == b""  # MP3 is not muxed
