"""The HLS segmenter: keyframe cuts, the sliding playlist, discontinuities, ENDLIST, stores."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, succeed

from synctv.core.clock import ManualClock
from synctv.live.hls import EXTRA_SEGMENTS, FileSegmentStore, HLSStream, MemorySegmentStore
from tests.live.live_support import AUDIO_HEADER, VIDEO_HEADER, audio_frame, media


def push(hls: HLSStream, seconds: float, start_ms: int = 0, headers: bool = True, **kw: Any) -> None:
    if headers:
        hls.on_video(start_ms, VIDEO_HEADER)
        hls.on_audio(start_ms, AUDIO_HEADER)
    for kind, ts, payload in media(seconds, start_ms=start_ms, **kw):
        (hls.on_video if kind == "video" else hls.on_audio)(ts, payload)


def result(d: Deferred[Any]) -> Any:
    out: list[Any] = []
    d.addBoth(out.append)
    assert out, "the Deferred has not fired"
    return out[0]


def make(**kw: Any) -> HLSStream:
    return HLSStream(kw.pop("store", MemorySegmentStore()), clock=kw.pop("clock", ManualClock()), **kw)


def test_segments_are_cut_at_the_first_keyframe_past_the_target():
    """With keyframes every 0.5 s and a 2 s target, each segment is exactly 2 s, starts with
    PAT/PMT and a keyframe, and is whole 188-byte TS packets."""
    hls = make(target_s=2.0, window=6, first_sequence=100)
    hls.begin()
    push(hls, 9.0, gop=15)
    assert [s.sequence for s in hls.segments] == [100, 101, 102, 103]
    assert all(s.duration == 2.0 for s in hls.segments)
    data = result(hls.segment(101))
    assert len(data) % 188 == 0 and data[0] == 0x47 and data[188] == 0x47
    assert result(hls.segment(99)) is None


def test_a_long_gop_makes_longer_segments_and_raises_target_duration():
    """A segment can only end at a keyframe: with keyframes every 3 s and a 2 s target the
    segments last 3 s, and EXT-X-TARGETDURATION covers them."""
    hls = make(target_s=2.0)
    hls.begin()
    push(hls, 10.0, gop=90)
    assert [s.duration for s in hls.segments] == [3.0, 3.0, 3.0]
    assert "#EXT-X-TARGETDURATION:3\n" in hls.playlist(str)


def test_playlist_window_and_media_sequence_slide():
    """The playlist lists the newest `window` segments; EXT-X-MEDIA-SEQUENCE names the first;
    a few older segments stay fetchable; older ones are dropped from the store."""
    store = MemorySegmentStore()
    hls = make(store=store, target_s=1.0, window=3, first_sequence=10)
    hls.begin()
    push(hls, 12.0, gop=30)  # 11 closed segments: 10..20
    playlist = hls.playlist(lambda n: f"seg{n}.ts?x=1")
    assert re.findall(r"seg(\d+)\.ts\?x=1", playlist) == ["18", "19", "20"]
    assert "#EXT-X-MEDIA-SEQUENCE:18\n" in playlist and playlist.count("#EXTINF:1.000,") == 3
    assert "#EXT-X-ENDLIST" not in playlist
    assert len(hls.segments) == 3 + EXTRA_SEGMENTS
    assert result(hls.segment(15)) is not None and result(hls.segment(14)) is None
    assert sorted(store._data) == list(range(15, 21))


def test_end_adds_endlist_and_republish_adds_a_discontinuity():
    """The end of a publish closes the last segment and adds ENDLIST; a republish removes it and
    marks its first segment with EXT-X-DISCONTINUITY; once that slides out of the window,
    EXT-X-DISCONTINUITY-SEQUENCE counts it."""
    hls = make(target_s=1.0, window=3)
    hls.begin()
    push(hls, 3.5, gop=30)
    hls.end()
    assert 0.49 <= hls.segments[-1].duration <= 0.5  # the last frame, plus one frame interval
    ended = hls.playlist(str)
    assert ended.endswith("#EXT-X-ENDLIST\n") and "DISCONTINUITY" not in ended
    hls.begin()
    push(hls, 1.5, start_ms=3600, gop=30)
    again = hls.playlist(str)
    assert "#EXT-X-ENDLIST" not in again
    lines = again.splitlines()
    marker = lines.index("#EXT-X-DISCONTINUITY")
    assert lines[marker + 1].startswith("#EXTINF") and int(lines[marker + 2]) == hls.segments[-1].sequence
    push(hls, 5.0, start_ms=5100, headers=False, gop=30)
    later = hls.playlist(str)
    assert "#EXT-X-DISCONTINUITY-SEQUENCE:1\n" in later and "#EXT-X-DISCONTINUITY\n" not in later


def test_memory_is_bounded_by_max_bytes():
    """Past max_bytes the oldest segments go, even inside the window (one always stays)."""
    hls = make(target_s=1.0, window=6, max_bytes=300_000)
    hls.begin()
    push(hls, 10.0, gop=30, video_size=4000)  # ~130 KB per segment
    assert hls.stored_bytes <= 300_000 and len(hls.segments) == 2


def test_wait_for_segment_fires_on_the_first_segment_or_the_end():
    """A playlist request waits for the first segment; an end without one answers False."""
    hls = make(target_s=1.0)
    hls.begin()
    waiting = hls.wait_for_segment()
    push(hls, 0.9, gop=30)
    assert not waiting.called
    push(hls, 0.2, start_ms=1000, headers=False, gop=30)
    assert result(waiting) is True
    empty = make()
    empty.begin()
    waiting = empty.wait_for_segment()
    empty.end()
    assert result(waiting) is False


def test_audio_only_streams_cut_on_audio():
    """Without video the segmenter starts at once and cuts on any audio frame past the target."""
    hls = make(target_s=1.0)
    hls.begin()
    hls.on_audio(0, AUDIO_HEADER)
    for n in range(150):
        hls.on_audio(n * 23, audio_frame())
    assert len(hls.segments) == 3 and all(0.99 < s.duration < 1.05 for s in hls.segments)


def test_hls_viewers_are_recent_playlist_readers():
    """A player counts as a viewer for a few seconds after reading the playlist."""
    clock = ManualClock()
    hls = make(clock=clock, target_s=2.0)
    hls.touch("a")
    hls.touch("b")
    hls.touch("a")
    assert hls.viewers() == 2
    clock.advance(11_000)
    hls.touch("c")
    assert hls.viewers() == 1


def _sync(f: Any, *args: Any) -> Deferred[Any]:
    return succeed(f(*args))


def test_file_store_writes_serves_drops_and_clears(tmp_path: Path):
    """Segments become files; they are served from the file, removed when they leave, and the
    directory is removed when the stream is released."""
    directory = tmp_path / "hls" / "room" / "media"
    hls = make(store=FileSegmentStore(directory, _sync), target_s=1.0, window=2)
    hls.begin()
    push(hls, 8.0, gop=30)
    files = sorted(int(p.stem) for p in directory.glob("*.ts"))
    assert files == [s.sequence for s in hls.segments]
    newest = hls.segments[-1].sequence
    assert result(hls.segment(newest)) == (directory / f"{newest}.ts").read_bytes()
    hls.release()
    assert not directory.exists() and result(hls.segment(newest)) is None


def test_file_store_serves_from_memory_until_written(tmp_path: Path):
    """A segment whose write has not finished is served from memory; dropping it then deletes
    the file once the write lands."""
    pending: list[tuple[Deferred[Any], Any, tuple[Any, ...]]] = []

    def later(f: Any, *args: Any) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        pending.append((d, f, args))
        return d

    store = FileSegmentStore(tmp_path, later)
    store.put(7, b"segment")
    assert result(store.get(7)) == b"segment"
    store.drop(7)
    d, f, args = pending.pop(0)
    d.callback(f(*args))  # the write lands
    d, f, args = pending.pop(0)
    d.callback(f(*args))  # then the delayed delete
    assert not (tmp_path / "7.ts").exists()
