"""A compact MPEG-TS muxer for HLS segments: one program, H.264 video and AAC audio.

Modelled on what nginx-rtmp's ngx_rtmp_mpegts.c writes: PAT and PMT at the start of every
segment, one PES per video access unit (Annex-B with an AUD, SPS/PPS repeated before each IDR)
with PTS/DTS at 90 kHz and a PCR on the video PID, one PES per AAC frame (ADTS), continuity
counters per PID, and adaptation-field stuffing so every packet is exactly 188 bytes.

Timestamps come in as RTMP/FLV milliseconds. All PTS/DTS are shifted by ``CLOCK_OFFSET`` (0.7 s)
and the PCR is the unshifted DTS, so the PCR never runs ahead of a decode time even with negative
composition offsets down to -0.7 s.

Pure: bytes in, bytes out; the muxer holds only the continuity counters and the decoder configs.
"""

from __future__ import annotations

from synctv.live import flv
from synctv.live.aac import AudioSpecificConfig, to_adts
from synctv.live.avc import NAL_AUD, NAL_IDR, NAL_PPS, NAL_SPS, START_CODE, AVCDecoderConfig, iter_nalus

TS_PACKET_SIZE = 188
SYNC_BYTE = 0x47
PAT_PID = 0x0000
PMT_PID = 0x1000
VIDEO_PID = 0x0100
AUDIO_PID = 0x0101
PROGRAM_NUMBER = 1
STREAM_TYPE_H264 = 0x1B
STREAM_TYPE_AAC_ADTS = 0x0F
VIDEO_STREAM_ID = 0xE0
AUDIO_STREAM_ID = 0xC0
CLOCK_OFFSET = 63000  # 90 kHz ticks (0.7 s)
TICKS_PER_MS = 90
_MASK33 = (1 << 33) - 1
AUD_NAL = START_CODE + b"\x09\xf0"


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return table


_CRC_TABLE = _crc_table()


def crc32_mpeg2(data: bytes) -> int:
    """CRC-32/MPEG-2 (polynomial 0x04C11DB7, initial 0xFFFFFFFF, no reflection, no final xor)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC_TABLE[((crc >> 24) ^ byte) & 0xFF]
    return crc


def _timestamp_field(prefix: int, ticks: int) -> bytes:
    """The 5-byte PTS/DTS field with its 4-bit prefix and marker bits."""
    ticks &= _MASK33
    return bytes(
        (
            (prefix << 4) | ((ticks >> 29) & 0x0E) | 1,
            (ticks >> 22) & 0xFF,
            ((ticks >> 14) & 0xFE) | 1,
            (ticks >> 7) & 0xFF,
            ((ticks << 1) & 0xFE) | 1,
        )
    )


def pes_header(stream_id: int, pts: int, dts: int | None, payload_size: int, bounded: bool) -> bytes:
    """A PES header with PTS (and DTS when it differs); ``bounded`` fills PES_packet_length."""
    if dts is not None and dts != pts:
        flags, fields = 0xC0, _timestamp_field(0x3, pts) + _timestamp_field(0x1, dts)
    else:
        flags, fields = 0x80, _timestamp_field(0x2, pts)
    length = 3 + len(fields) + payload_size
    if not bounded or length > 0xFFFF:
        length = 0
    return b"\x00\x00\x01" + bytes((stream_id, length >> 8, length & 0xFF, 0x80, flags, len(fields))) + fields


def _pcr_field(ticks: int) -> bytes:
    base = ticks & _MASK33
    return bytes(
        (
            (base >> 25) & 0xFF,
            (base >> 17) & 0xFF,
            (base >> 9) & 0xFF,
            (base >> 1) & 0xFF,
            ((base & 1) << 7) | 0x7E,
            0x00,
        )
    )


def _section_packet(pid: int, cc: int, section: bytes) -> bytes:
    """A PSI section (pointer field 0) in one TS packet, padded with 0xFF."""
    body = b"\x00" + section + crc32_mpeg2(section).to_bytes(4, "big")
    header = bytes((SYNC_BYTE, 0x40 | (pid >> 8), pid & 0xFF, 0x10 | cc))
    return header + body + b"\xff" * (TS_PACKET_SIZE - 4 - len(body))


class TSMuxer:
    """Mux one live stream to MPEG-TS; call ``segment_start()`` at the start of each segment."""

    def __init__(
        self,
        video_config: AVCDecoderConfig | None = None,
        audio_config: AudioSpecificConfig | None = None,
    ) -> None:
        self.video_config = video_config
        self.audio_config = audio_config
        self._cc: dict[int, int] = {}

    def _next_cc(self, pid: int) -> int:
        cc = self._cc.get(pid, 0)
        self._cc[pid] = (cc + 1) & 0x0F
        return cc

    @property
    def pcr_pid(self) -> int:
        return VIDEO_PID if self.video_config is not None or self.audio_config is None else AUDIO_PID

    # -- PSI --------------------------------------------------------------------------------------

    def pat(self) -> bytes:
        section = bytearray((0x00, 0xB0, 13, 0x00, 0x01, 0xC1, 0x00, 0x00))
        section += PROGRAM_NUMBER.to_bytes(2, "big") + (0xE000 | PMT_PID).to_bytes(2, "big")
        return _section_packet(PAT_PID, self._next_cc(PAT_PID), bytes(section))

    def pmt(self) -> bytes:
        streams = b""
        if self.video_config is not None or self.audio_config is None:
            streams += bytes((STREAM_TYPE_H264,)) + (0xE000 | VIDEO_PID).to_bytes(2, "big") + b"\xf0\x00"
        if self.audio_config is not None:
            streams += bytes((STREAM_TYPE_AAC_ADTS,)) + (0xE000 | AUDIO_PID).to_bytes(2, "big") + b"\xf0\x00"
        section_length = 9 + len(streams) + 4
        section = bytes((0x02, 0xB0 | (section_length >> 8), section_length & 0xFF))
        section += PROGRAM_NUMBER.to_bytes(2, "big") + bytes((0xC1, 0x00, 0x00))
        section += (0xE000 | self.pcr_pid).to_bytes(2, "big") + b"\xf0\x00" + streams
        return _section_packet(PMT_PID, self._next_cc(PMT_PID), section)

    def segment_start(self) -> bytes:
        """PAT + PMT, written at the start of every segment."""
        return self.pat() + self.pmt()

    # -- PES --------------------------------------------------------------------------------------

    def _packetize(self, pid: int, pes: bytes, pcr: int | None, random_access: bool) -> bytes:
        out = bytearray()
        view = memoryview(pes)
        pos, total = 0, len(pes)
        first = True
        while pos < total:
            af_body = b""
            has_af = False
            if first and (pcr is not None or random_access):
                has_af = True
                af_body = bytes(((0x40 if random_access else 0) | (0x10 if pcr is not None else 0),))
                if pcr is not None:
                    af_body += _pcr_field(pcr)
            af_size = 1 + len(af_body) if has_af else 0
            remaining = total - pos
            room = TS_PACKET_SIZE - 4 - af_size
            if remaining < room:
                stuffing = room - remaining
                if has_af:
                    af_body += b"\xff" * stuffing
                elif stuffing == 1:
                    has_af = True  # an adaptation field of length 0 is exactly one byte
                else:
                    has_af = True
                    af_body = b"\x00" + b"\xff" * (stuffing - 2)
            adaptation = bytes((len(af_body),)) + af_body if has_af else b""
            take = TS_PACKET_SIZE - 4 - len(adaptation)
            control = 0x30 if has_af else 0x10
            out += bytes(
                (SYNC_BYTE, (0x40 if first else 0) | (pid >> 8), pid & 0xFF, control | self._next_cc(pid))
            )
            out += adaptation
            out += view[pos : pos + take]
            pos += take
            first = False
        return bytes(out)

    def mux_video(self, dts_ms: int, cts_ms: int, avcc_payload: bytes, keyframe: bool) -> bytes:
        """One H.264 access unit (length-prefixed NALs) as a video PES in TS packets."""
        nal_length_size = self.video_config.nal_length_size if self.video_config is not None else 4
        parts = [AUD_NAL]
        has_parameter_sets = False
        has_idr = False
        for nal in iter_nalus(avcc_payload, nal_length_size):
            kind = nal[0] & 0x1F
            if kind == NAL_AUD:
                continue
            if kind in (NAL_SPS, NAL_PPS):
                has_parameter_sets = True
            elif kind == NAL_IDR:
                has_idr = True
            parts.append(START_CODE)
            parts.append(nal)
        if (keyframe or has_idr) and not has_parameter_sets and self.video_config is not None:
            parts.insert(1, self.video_config.annexb_parameter_sets())
        elementary = b"".join(parts)
        dts = dts_ms * TICKS_PER_MS + CLOCK_OFFSET
        pts = dts + cts_ms * TICKS_PER_MS
        pes = pes_header(VIDEO_STREAM_ID, pts, dts, len(elementary), bounded=False) + elementary
        pcr = dts - CLOCK_OFFSET if self.pcr_pid == VIDEO_PID else None
        return self._packetize(VIDEO_PID, pes, pcr, keyframe or has_idr)

    def mux_audio(self, pts_ms: int, raw_aac: bytes) -> bytes:
        """One raw AAC frame as an ADTS frame in an audio PES in TS packets."""
        if self.audio_config is None:
            raise ValueError("mux_audio needs an AudioSpecificConfig")
        elementary = to_adts(self.audio_config, raw_aac)
        pts = pts_ms * TICKS_PER_MS + CLOCK_OFFSET
        pes = pes_header(AUDIO_STREAM_ID, pts, None, len(elementary), bounded=True) + elementary
        pcr = pts - CLOCK_OFFSET if self.pcr_pid == AUDIO_PID else None
        return self._packetize(AUDIO_PID, pes, pcr, False)

    # -- FLV tag bodies ---------------------------------------------------------------------------

    def mux_flv_video(self, timestamp: int, payload: bytes) -> bytes:
        """An FLV/RTMP video tag body: sequence headers update the config; AVC frames are muxed.

        Returns b"" for anything that produces no TS output (configs, non-AVC, frames before the
        first sequence header).
        """
        if not flv.is_avc(payload) or len(payload) < 5:
            return b""
        packet = flv.parse_avc_packet(payload)
        if packet.packet_type == flv.AVC_SEQUENCE_HEADER:
            self.video_config = AVCDecoderConfig.parse(packet.data)
            return b""
        if packet.packet_type != flv.AVC_NALU or self.video_config is None or not packet.data:
            return b""
        return self.mux_video(timestamp, packet.composition_time, packet.data, packet.keyframe)

    def mux_flv_audio(self, timestamp: int, payload: bytes) -> bytes:
        """An FLV/RTMP audio tag body: AAC sequence headers update the config; frames are muxed."""
        if not flv.is_aac(payload) or len(payload) < 2:
            return b""
        packet_type, data = flv.parse_aac_packet(payload)
        if packet_type == flv.AAC_SEQUENCE_HEADER:
            self.audio_config = AudioSpecificConfig.parse(data)
            return b""
        if self.audio_config is None or not data:
            return b""
        return self.mux_audio(timestamp, data)
