"""The pure duration readers (synctv.core.media_probe): exact on files they understand, and on
any bytes at all either a finite positive duration, a next offset that moves on, or ProbeError."""

from __future__ import annotations

import math
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synctv.core.media_probe import Found, Need, ProbeError, Variant, flv_duration, hls_read, mp4_walk, sniff


def box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), kind) + body


def mvhd(timescale: int, duration: int, version: int = 0) -> bytes:
    if version == 1:
        body = bytes([1, 0, 0, 0]) + b"\0" * 16 + struct.pack(">IQ", timescale, duration) + b"\0" * 80
    else:
        body = bytes(4) + b"\0" * 8 + struct.pack(">II", timescale, duration) + b"\0" * 80
    return box(b"mvhd", body)


def test_mp4_with_moov_first_is_read_from_the_head():
    """ftyp, moov(mvhd 90000 ticks/s, 450000 ticks) -> 5 s; version 1 mvhd too."""
    for version in (0, 1):
        data = box(b"ftyp", b"isom\0\0\0\0") + box(b"moov", mvhd(90000, 450000, version)) + box(b"mdat", b"x" * 100)
        assert sniff(data) == "mp4"
        assert mp4_walk(data) == Found(5.0)


def test_mp4_with_moov_after_mdat_asks_for_the_offset_then_reads_it():
    """A large mdat before moov: the walk names the byte where moov starts; walking bytes fetched
    from there finds the duration."""
    head = box(b"ftyp", b"isom\0\0\0\0")
    mdat_header = struct.pack(">I4s", 8 + 10_000_000, b"mdat")
    data = head + mdat_header + b"\0" * 1000  # only the start of mdat was fetched
    step = mp4_walk(data)
    assert step == Need(len(head) + 8 + 10_000_000)
    tail = box(b"moov", mvhd(1000, 12_345))
    assert mp4_walk(tail, step.offset) == Found(12.345)


def test_mp4_64_bit_box_sizes_are_followed():
    head = box(b"ftyp", b"isom")
    big = struct.pack(">I4sQ", 1, b"mdat", 16 + (5 << 32))
    assert mp4_walk(head + big) == Need(len(head) + 16 + (5 << 32))


def test_mp4_unknown_duration_is_an_error_not_a_number():
    data = box(b"ftyp", b"isom") + box(b"moov", mvhd(1000, 0xFFFFFFFF))
    with pytest.raises(ProbeError, match="does not state its duration"):
        mp4_walk(data)


def test_flv_onmetadata_duration():
    def amf_string(text: str) -> bytes:
        return b"\x02" + struct.pack(">H", len(text)) + text.encode()

    pairs = b"".join(struct.pack(">H", len(k)) + k.encode() + b"\x00" + struct.pack(">d", v)
                     for k, v in (("width", 640.0), ("duration", 7.25)))
    script = amf_string("onMetaData") + b"\x08" + struct.pack(">I", 2) + pairs + b"\x00\x00\x09"
    tag = bytes([18]) + len(script).to_bytes(3, "big") + b"\0" * 7 + script
    data = b"FLV\x01\x05" + struct.pack(">I", 9) + b"\0\0\0\0" + tag + struct.pack(">I", len(tag))
    assert sniff(data) == "flv"
    assert flv_duration(data) == Found(7.25)


def test_hls_vod_sums_extinf_and_a_master_names_its_first_variant():
    vod = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4.0,\na.ts\n#EXTINF:3.5,\nb.ts\n#EXT-X-ENDLIST\n"
    assert sniff(vod.encode()) == "hls"
    assert hls_read(vod, "http://h/v/index.m3u8") == Found(7.5)
    master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nlow/index.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=2\nhigh.m3u8\n"
    assert hls_read(master, "http://h/v/master.m3u8") == Variant("http://h/v/low/index.m3u8")
    with pytest.raises(ProbeError, match="live"):
        hls_read("#EXTM3U\n#EXTINF:2,\na.ts\n", "http://h/")


@pytest.mark.tools("ffmpeg")
@pytest.mark.parametrize("faststart", [True, False])
def test_a_real_mp4_from_ffmpeg_is_read_within_two_fetches(tmp_path: Path, faststart: bool):
    """ffmpeg's MP4 of 1.5 s, moov first (faststart) or last: the head (64 KiB) and at most one
    ranged read from the offset the walk names give ffprobe's duration to a few milliseconds."""
    out = tmp_path / "clip.mp4"
    args = ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25", "-t", "1.5",
            "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "ultrafast"]
    subprocess.run([*args, *(["-movflags", "+faststart"] if faststart else []), str(out)], check=True)
    data = out.read_bytes()
    step = mp4_walk(data[:65536])
    if isinstance(step, Need):
        assert not faststart
        step = mp4_walk(data[step.offset:step.offset + 65536], step.offset)
    assert isinstance(step, Found)
    probe = subprocess.run([shutil.which("ffprobe") or "ffprobe", "-v", "error", "-show_entries", "format=duration",
                            "-of", "default=nw=1:nk=1", str(out)], capture_output=True, text=True, check=True)
    assert step.duration == pytest.approx(float(probe.stdout), abs=0.05)


def _ok(result: object) -> None:
    if isinstance(result, Found):
        assert math.isfinite(result.duration) and result.duration > 0
    elif isinstance(result, Need):
        assert result.offset >= 0
    else:
        assert isinstance(result, Variant)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=512), st.integers(min_value=0, max_value=1 << 40))
def test_any_bytes_give_a_duration_an_offset_or_a_probe_error(data: bytes, base: int):
    for attempt in (lambda: mp4_walk(data, base), lambda: flv_duration(data), lambda: sniff(data)):
        try:
            result = attempt()
        except ProbeError:
            continue
        if result is not None and not isinstance(result, str):
            _ok(result)
    for prefix in (b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00", b"\x00\x00\x00\x10ftypisom\x00\x00\x00\x00"):
        for reader in (mp4_walk, flv_duration):
            try:
                _ok(reader(prefix + data))
            except ProbeError:
                pass


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_any_playlist_text_gives_a_duration_a_variant_or_a_probe_error(text: str):
    for candidate in (text, "#EXTM3U\n" + text, "#EXTM3U\n" + text + "\n#EXT-X-ENDLIST\n"):
        try:
            _ok(hls_read(candidate, "http://example.com/a/index.m3u8"))
        except ProbeError:
            pass


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=(1 << 32) - 1), st.integers(min_value=1, max_value=(1 << 32) - 2))
def test_mvhd_duration_is_ticks_over_timescale(timescale: int, ticks: int):
    data = box(b"ftyp", b"isom") + box(b"moov", mvhd(timescale, ticks))
    assert mp4_walk(data) == Found(ticks / timescale)
