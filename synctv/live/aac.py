"""AAC helpers: AudioSpecificConfig (ISO 14496-3 1.6.2.1) and the ADTS header MPEG-TS needs.

RTMP and FLV carry AAC as raw frames after an AudioSpecificConfig sequence header; MPEG-TS carries
ADTS frames, each with a 7-byte header restating profile, sample rate and channels. HE-AAC
configs (SBR/PS, object types 5 and 29) are reduced to their AAC-LC core for ADTS, as players
expect. Malformed input raises ``AACError`` (a ``ValueError``).
"""

from __future__ import annotations

import attrs

SAMPLE_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
ADTS_HEADER_SIZE = 7
MAX_ADTS_FRAME = 0x1FFF  # 13-bit frame_length, header included
AOT_AAC_LC = 2
AOT_SBR = 5
AOT_PS = 29


class AACError(ValueError):
    """A malformed AudioSpecificConfig, or a frame ADTS cannot describe."""


class _Bits:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def read(self, n: int) -> int:
        if self.pos + n > len(self.data) * 8:
            raise AACError("AudioSpecificConfig truncated")
        value = 0
        for _ in range(n):
            value = (value << 1) | ((self.data[self.pos >> 3] >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return value

    def object_type(self) -> int:
        value = self.read(5)
        return 32 + self.read(6) if value == 31 else value

    def sample_rate(self) -> tuple[int, int]:
        index = self.read(4)
        if index == 15:
            return index, self.read(24)
        if index >= len(SAMPLE_RATES):
            raise AACError(f"reserved sampling frequency index {index}")
        return index, SAMPLE_RATES[index]


@attrs.frozen
class AudioSpecificConfig:
    """``object_type``/``sample_rate*`` are the core (AAC-LC for HE-AAC) values ADTS carries."""

    object_type: int
    sample_rate_index: int
    sample_rate: int
    channel_config: int
    sbr: bool = False

    @classmethod
    def parse(cls, data: bytes) -> AudioSpecificConfig:
        bits = _Bits(bytes(data))
        object_type = bits.object_type()
        index, rate = bits.sample_rate()
        channels = bits.read(4)
        sbr = False
        if object_type in (AOT_SBR, AOT_PS):
            sbr = True
            bits.sample_rate()  # extension (output) rate; ADTS describes the core
            object_type = bits.object_type()
        if object_type == 0:
            raise AACError("audio object type 0 is not valid")
        return cls(object_type, index, rate, channels, sbr)

    def encode(self) -> bytes:
        """The 2-byte AudioSpecificConfig for plain configs (sequence headers in tests/writers)."""
        if self.object_type >= 31 or self.sample_rate_index >= 15 or self.sbr:
            raise AACError("only simple configs can be re-encoded")
        value = (self.object_type << 11) | (self.sample_rate_index << 7) | (self.channel_config << 3)
        return value.to_bytes(2, "big")

    @property
    def codec_string(self) -> str:
        return f"mp4a.40.{5 if self.sbr else self.object_type}"


def adts_header(config: AudioSpecificConfig, raw_length: int) -> bytes:
    """The 7-byte ADTS header (no CRC) for one raw AAC frame of ``raw_length`` bytes."""
    if not 1 <= config.object_type <= 4:
        raise AACError(f"ADTS cannot carry audio object type {config.object_type}")
    if config.sample_rate_index >= len(SAMPLE_RATES):
        raise AACError("ADTS needs a sampling frequency index, not an explicit rate")
    if not 0 <= config.channel_config <= 7:
        raise AACError(f"channel configuration {config.channel_config}")
    frame_length = raw_length + ADTS_HEADER_SIZE
    if frame_length > MAX_ADTS_FRAME:
        raise AACError(f"AAC frame of {raw_length} bytes is too long for ADTS")
    profile = config.object_type - 1
    channels = config.channel_config
    return bytes(
        (
            0xFF,
            0xF1,  # sync, MPEG-4, layer 0, no CRC
            (profile << 6) | (config.sample_rate_index << 2) | (channels >> 2),
            ((channels & 3) << 6) | (frame_length >> 11),
            (frame_length >> 3) & 0xFF,
            ((frame_length & 7) << 5) | 0x1F,  # buffer fullness 0x7FF (VBR)
            0xFC,  # buffer fullness low bits, one raw data block
        )
    )


def to_adts(config: AudioSpecificConfig, raw: bytes) -> bytes:
    return adts_header(config, len(raw)) + raw


@attrs.frozen
class ADTSHeader:
    object_type: int
    sample_rate_index: int
    channel_config: int
    frame_length: int


def parse_adts_header(data: bytes) -> ADTSHeader:
    if len(data) < ADTS_HEADER_SIZE or data[0] != 0xFF or data[1] & 0xF0 != 0xF0:
        raise AACError("not an ADTS header")
    return ADTSHeader(
        object_type=(data[2] >> 6) + 1,
        sample_rate_index=(data[2] >> 2) & 0x0F,
        channel_config=((data[2] & 1) << 2) | (data[3] >> 6),
        frame_length=((data[3] & 3) << 11) | (data[4] << 3) | (data[5] >> 5),
    )
