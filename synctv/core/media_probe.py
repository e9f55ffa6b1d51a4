"""Reading a media file's duration from a few of its bytes: MP4 ``mvhd``, FLV ``onMetaData``, the
EXTINF sum of a VOD HLS playlist. Pure: the caller fetches bytes and hands them in.

Contracts (tests/core/test_media_probe.py fuzzes them with hypothesis):

- every function either returns its documented value or raises ``ProbeError`` (a message a
  person can act on, shown as the item's ``probe_error``); never another exception, never a
  hang, and never a duration that is not a finite number > 0;
- ``sniff(head)`` names the container of the first bytes: ``"mp4"``, ``"flv"``, ``"hls"`` or
  None (unknown: the caller may try ffprobe);
- ``mp4_walk(data, base)`` walks the top-level boxes of ``data`` (which starts at byte ``base``
  of the file) and returns ``Found(duration)`` once ``moov``/``mvhd`` is in ``data``, or
  ``Need(offset)``: fetch from that file offset and walk again (``moov`` after a large
  ``mdat``). An offset that does not move forward is an error, so a caller's loop ends;
- ``flv_duration(head)`` reads the ``duration`` of the first script tag (``onMetaData``);
- ``hls_read(text, base_url)`` returns ``Found(sum of EXTINF)`` for a playlist that ends
  (``#EXT-X-ENDLIST`` or ``#EXT-X-PLAYLIST-TYPE:VOD``), ``Variant(url)`` (the first variant,
  absolute) for a master playlist; a live playlist has no duration (ProbeError).
"""

from __future__ import annotations

import math
import struct
from urllib.parse import urljoin

import attrs

MP4_BOXES = frozenset({b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"styp", b"pdin", b"uuid", b"moof"})
MAX_AMF_DEPTH = 8


class ProbeError(Exception):
    """The bytes do not tell a duration; ``str(e)`` says why."""


@attrs.frozen
class Found:
    duration: float


@attrs.frozen
class Need:
    offset: int


@attrs.frozen
class Variant:
    url: str


def _checked(duration: float, what: str) -> Found:
    if not math.isfinite(duration) or duration <= 0:
        raise ProbeError(f"the {what} gives no usable duration ({duration!r})")
    return Found(float(duration))


def sniff(head: bytes) -> str | None:
    """The container of a file that starts with ``head``, or None when not one read here."""
    if head.startswith(b"FLV\x01"):
        return "flv"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"#EXTM3U"):
        return "hls"
    if len(head) >= 8 and head[4:8] in MP4_BOXES:
        return "mp4"
    return None


# -- MP4 -----------------------------------------------------------------------------------------


def _box(data: bytes, pos: int) -> tuple[int | None, bytes, int] | None:
    """(size or None for "to the end", type, header length) of the box at ``pos``, or None when
    its header is not all in ``data``."""
    if pos + 8 > len(data):
        return None
    size, kind = struct.unpack_from(">I4s", data, pos)
    if size == 1:
        if pos + 16 > len(data):
            return None
        (size,) = struct.unpack_from(">Q", data, pos + 8)
        header = 16
    else:
        header = 8
    if size == 0:
        return None, kind, header
    if size < header:
        raise ProbeError(f"a malformed MP4 box ({kind!r} of {size} bytes)")
    return size, kind, header


def _mvhd(moov: bytes) -> float | None:
    """The duration of the ``mvhd`` among the first children of ``moov``'s content, or None when
    it is not (all) there."""
    pos = 0
    while True:
        box = _box(moov, pos)
        if box is None:
            return None
        size, kind, header = box
        if kind == b"mvhd":
            body = moov[pos + header:]
            if len(body) < 4:
                return None
            version = body[0]
            if version == 1:
                if len(body) < 4 + 16 + 4 + 8:
                    return None
                timescale, duration = struct.unpack_from(">IQ", body, 4 + 16)
                unknown = duration == (1 << 64) - 1
            elif version == 0:
                if len(body) < 4 + 8 + 4 + 4:
                    return None
                timescale, duration = struct.unpack_from(">II", body, 4 + 8)
                unknown = duration == (1 << 32) - 1
            else:
                raise ProbeError(f"an MP4 mvhd box of unknown version {version}")
            if timescale == 0 or unknown or duration == 0:
                raise ProbeError("the MP4 file does not state its duration (fragmented or live MP4?)")
            return duration / timescale
        if size is None:
            return None
        pos += size


def mp4_walk(data: bytes, base: int = 0) -> Found | Need:
    """See the module docstring."""
    if base < 0:
        raise ProbeError("a negative file offset")
    pos = 0
    while True:
        box = _box(data, pos)
        if box is None:
            if pos == 0 and base == 0 and len(data) < 8:
                raise ProbeError("the file is too short to be MP4")
            if pos == 0:
                raise ProbeError("no MP4 box header where one was expected")
            return Need(base + pos)
        size, kind, header = box
        if kind == b"moov":
            duration = _mvhd(data[pos + header: len(data) if size is None else pos + size])
            if duration is not None:
                return _checked(duration, "MP4 mvhd box")
            if size is not None and pos + size <= len(data):
                raise ProbeError("the MP4 moov box has no mvhd")
            if pos == 0:
                raise ProbeError("the MP4 moov box is too large to read its mvhd")
            return Need(base + pos)  # fetch again from the moov box's start
        if pos == 0 and base == 0 and kind not in MP4_BOXES:
            raise ProbeError(f"not an MP4 file (first box {kind!r})")
        if size is None:
            raise ProbeError("the MP4 file has no moov box (its last box runs to the end)")
        pos += size


# -- FLV -----------------------------------------------------------------------------------------


class _Amf:
    def __init__(self, data: bytes, pos: int, end: int) -> None:
        self.data, self.pos, self.end = data, pos, end

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise ProbeError("the FLV metadata is cut short")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def string(self, long: bool = False) -> str:
        (n,) = struct.unpack(">I" if long else ">H", self.take(4 if long else 2))
        return self.take(n).decode("utf-8", "replace")

    def pairs(self, depth: int) -> dict[str, object]:
        found: dict[str, object] = {}
        while True:
            key = self.string()
            if key == "" and self.pos < self.end and self.data[self.pos] == 0x09:
                self.pos += 1
                return found
            found[key] = self.value(depth + 1)

    def value(self, depth: int = 0) -> object:
        if depth > MAX_AMF_DEPTH:
            raise ProbeError("the FLV metadata nests too deeply")
        (marker,) = self.take(1)
        if marker == 0x00:
            return struct.unpack(">d", self.take(8))[0]
        if marker == 0x01:
            return self.take(1) != b"\x00"
        if marker == 0x02:
            return self.string()
        if marker == 0x0C:
            return self.string(long=True)
        if marker == 0x03:
            return self.pairs(depth)
        if marker == 0x08:
            self.take(4)  # the approximate count; the end marker ends it
            return self.pairs(depth)
        if marker == 0x0A:
            (count,) = struct.unpack(">I", self.take(4))
            if count > self.end - self.pos:
                raise ProbeError("the FLV metadata is cut short")
            return [self.value(depth + 1) for _ in range(count)]
        if marker == 0x0B:
            self.take(10)
            return None
        if marker in (0x05, 0x06):
            return None
        raise ProbeError(f"the FLV metadata has an unsupported AMF0 value (marker {marker})")


def flv_duration(head: bytes) -> Found:
    """See the module docstring."""
    if len(head) < 13 or not head.startswith(b"FLV"):
        raise ProbeError("not an FLV file")
    (offset,) = struct.unpack_from(">I", head, 5)
    pos = offset + 4  # PreviousTagSize0
    for _ in range(8):  # the script tag comes first; allow a few tags before it
        if pos + 11 > len(head):
            break
        kind = head[pos] & 0x1F
        size = int.from_bytes(head[pos + 1:pos + 4], "big")
        start, end = pos + 11, pos + 11 + size
        if kind == 18:
            if end > len(head):
                raise ProbeError("the FLV metadata tag is larger than the bytes read")
            amf = _Amf(head, start, end)
            name = amf.value()
            if name == "onMetaData":
                meta = amf.value()
                duration = meta.get("duration") if isinstance(meta, dict) else None
                if not isinstance(duration, float):
                    raise ProbeError("the FLV metadata has no duration")
                return _checked(duration, "FLV onMetaData")
        pos = end + 4
    raise ProbeError("the FLV file has no onMetaData at its start")


# -- HLS -----------------------------------------------------------------------------------------


def hls_read(text: str, base_url: str) -> Found | Variant:
    """See the module docstring."""
    lines = [line.strip() for line in text.lstrip("\ufeff").splitlines()]
    if not lines or not lines[0].startswith("#EXTM3U"):
        raise ProbeError("not an HLS playlist (no #EXTM3U)")
    total, segments, ends, variant_next = 0.0, 0, False, False
    for line in lines[1:]:
        if variant_next and line and not line.startswith("#"):
            try:
                return Variant(urljoin(base_url, line))
            except ValueError:
                raise ProbeError("the HLS master playlist names an invalid variant URL") from None
        if line.startswith("#EXT-X-STREAM-INF"):
            variant_next = True
        elif line.startswith("#EXTINF:"):
            value = line[len("#EXTINF:"):].split(",", 1)[0].strip()
            try:
                seconds = float(value)
            except ValueError:
                raise ProbeError(f"an HLS segment duration {value[:20]!r} is not a number") from None
            if not math.isfinite(seconds) or seconds < 0:
                raise ProbeError(f"an HLS segment duration {value[:20]!r} is not a duration")
            total += seconds
            segments += 1
        elif line == "#EXT-X-ENDLIST" or line == "#EXT-X-PLAYLIST-TYPE:VOD":
            ends = True
    if variant_next:
        raise ProbeError("the HLS master playlist names no variant")
    if not ends:
        raise ProbeError("a live HLS playlist (no #EXT-X-ENDLIST) has no duration")
    if segments == 0:
        raise ProbeError("the HLS playlist has no segments")
    return _checked(total, "HLS playlist")
