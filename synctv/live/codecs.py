"""Which codec an FLV/RTMP audio or video tag carries, and whether browsers can decode it.

Pure: bytes in, a ``Codec`` out. A publish is remuxed, never transcoded, so a browser (hls.js,
mpegts.js: Media Source Extensions) plays it only when its video is H.264 and its audio AAC or
MP3. Anything else (OBS set to HEVC or AV1, an old Sorenson or VP6 encoder, Nellymoser or Speex
audio) is still accepted and passed through where the output format can carry it (HTTP-FLV
passes every tag; HLS carries H.264 and AAC only), but the stream info, a log line and a
``notice`` to the room say that browsers will show a black screen or stay silent.

Video tag, first byte: legacy ``frame type << 4 | codec id`` (2 Sorenson H.263, 3 screen video,
4 VP6, 5 VP6 alpha, 6 screen video 2, 7 AVC, and the widespread non-standard 12 HEVC and 13
AV1); enhanced RTMP sets bit 7 (``IsExHeader``) and names the codec by a FourCC in bytes 1-4
(``avc1``, ``hvc1``, ``av01``, ``vp09``, ``vp08``). Audio tag, first byte: ``sound format << 4 |
...`` (2 and 14 MP3, 10 AAC, 4-6 Nellymoser, 11 Speex, 7/8 G.711, 0/3 PCM, 1 ADPCM); format 9 is
enhanced RTMP's ``ExHeader`` with a FourCC (``Opus``, ``fLaC``, ``ac-3``, ``ec-3``, ``.mp3``,
``mp4a``).

``is_video_config`` and ``is_ex_keyframe`` let the stream keep such a codec's configuration and
find its keyframes, so an FLV viewer of an HEVC or AV1 publish starts from a keyframe with the
configuration before it, as one of an H.264 publish does.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class Codec:
    name: str  # short, for the stream info: avc1, hevc, av1, mp4a, mp3, ...
    label: str  # for people: "H.264", "HEVC (H.265)", ...
    browser: bool  # browsers decode it (H.264 video; AAC or MP3 audio)


_VIDEO_IDS = {
    2: Codec("h263", "Sorenson H.263", False),
    3: Codec("screen", "Screen video", False),
    4: Codec("vp6", "VP6", False),
    5: Codec("vp6a", "VP6 with alpha", False),
    6: Codec("screen2", "Screen video 2", False),
    7: Codec("avc1", "H.264", True),
    12: Codec("hevc", "HEVC (H.265)", False),
    13: Codec("av1", "AV1", False),
}
_VIDEO_FOURCC = {
    b"avc1": _VIDEO_IDS[7],
    b"hvc1": _VIDEO_IDS[12],
    b"av01": _VIDEO_IDS[13],
    b"vp09": Codec("vp9", "VP9", False),
    b"vp08": Codec("vp8", "VP8", False),
}
_AUDIO_FORMATS = {
    0: Codec("pcm", "PCM", False),
    1: Codec("adpcm", "ADPCM", False),
    2: Codec("mp3", "MP3", True),
    3: Codec("pcm", "PCM", False),
    4: Codec("nellymoser", "Nellymoser", False),
    5: Codec("nellymoser", "Nellymoser", False),
    6: Codec("nellymoser", "Nellymoser", False),
    7: Codec("alaw", "G.711 A-law", False),
    8: Codec("mulaw", "G.711 mu-law", False),
    10: Codec("mp4a", "AAC", True),
    11: Codec("speex", "Speex", False),
    14: Codec("mp3", "MP3", True),
}
_AUDIO_FOURCC = {
    b"mp4a": _AUDIO_FORMATS[10],
    b".mp3": _AUDIO_FORMATS[2],
    b"Opus": Codec("opus", "Opus", False),
    b"fLaC": Codec("flac", "FLAC", False),
    b"ac-3": Codec("ac3", "AC-3", False),
    b"ec-3": Codec("eac3", "E-AC-3", False),
}
AUDIO_EX_HEADER = 9


def _unknown(kind: str, what: str) -> Codec:
    return Codec("unknown", f"an unknown {kind} codec ({what})", False)


def video_codec(payload: bytes) -> Codec | None:
    """The codec of an FLV video tag body; None for an empty one."""
    if not payload:
        return None
    first = payload[0]
    if first & 0x80:  # enhanced RTMP: a FourCC follows
        fourcc = bytes(payload[1:5])
        return _VIDEO_FOURCC.get(fourcc) or _unknown("video", repr(fourcc)[2:-1] or "no FourCC")
    return _VIDEO_IDS.get(first & 0x0F) or _unknown("video", f"FLV codec id {first & 0x0F}")


def audio_codec(payload: bytes) -> Codec | None:
    """The codec of an FLV audio tag body; None for an empty one."""
    if not payload:
        return None
    sound_format = payload[0] >> 4
    if sound_format == AUDIO_EX_HEADER:
        fourcc = bytes(payload[1:5])
        return _AUDIO_FOURCC.get(fourcc) or _unknown("audio", repr(fourcc)[2:-1] or "no FourCC")
    return _AUDIO_FORMATS.get(sound_format) or _unknown("audio", f"FLV sound format {sound_format}")


def is_video_config(payload: bytes) -> bool:
    """A decoder configuration of a codec other than legacy AVC: enhanced RTMP's SequenceStart,
    or a legacy HEVC/AV1 tag whose packet type is 0 (the sequence header)."""
    if len(payload) < 2:
        return False
    first = payload[0]
    if first & 0x80:
        return first & 0x0F == 0
    return first & 0x0F in (12, 13) and payload[1] == 0


def is_ex_keyframe(payload: bytes) -> bool:
    """An enhanced-RTMP video tag whose frame type (bits 4-6) is "key frame"."""
    return bool(payload) and payload[0] & 0x80 != 0 and (payload[0] >> 4) & 0x07 == 1


def warning(kind: str, codec: Codec) -> str | None:
    """The line people read when ``codec`` (of ``kind`` video or audio) will not play in browsers."""
    if codec.browser:
        return None
    if kind == "video":
        return (f"the video is {codec.label}: browsers will not decode it (black screen); "
                "set the encoder to H.264 (x264 or a hardware H.264 encoder)")
    return f"the audio is {codec.label}: browsers will not decode it (no sound); set the encoder to AAC"
