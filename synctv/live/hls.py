"""Live HLS: MPEG-TS segments cut at keyframes, a sliding playlist, and where segments are kept.

``HLSStream`` takes the stream's (already normalised) FLV tag bodies, muxes them with
``TSMuxer`` and cuts a segment at the first video keyframe at or after ``target_s`` seconds
(audio-only streams cut on any frame). Segments are numbered from ``first_sequence``, which the
registry derives from server time so that a URL never names two different segments, even
across a release and a new stream of the same item: segments can then be cached as immutable.

The playlist lists the newest ``window`` segments with EXT-X-MEDIA-SEQUENCE; a republish marks
its first segment with EXT-X-DISCONTINUITY (EXT-X-DISCONTINUITY-SEQUENCE counts those that slid
out); the end of a publish adds EXT-X-ENDLIST, which a republish takes away again.

A few segments older than the window stay available for players that read the playlist a moment
ago; everything is bounded by ``max_bytes``. Segments live in a ``SegmentStore``: memory, or
files under a directory (written and read off the reactor thread), released with the stream.
"""

from __future__ import annotations

import math
import shutil
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import attrs
from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from synctv.core.clock import Clock
from synctv.live import flv
from synctv.live.mpegts import TSMuxer

EXTRA_SEGMENTS = 3  # kept beyond the playlist window
MAX_SEGMENT_BYTES = 32 << 20  # a segment that never meets a keyframe is cut here anyway
HLS_VIEWER_WINDOW_S = 10.0

RunInThread = Callable[..., Deferred[Any]]


class SegmentStore(Protocol):
    def put(self, sequence: int, data: bytes) -> None: ...
    def get(self, sequence: int) -> Deferred[bytes | None]: ...
    def drop(self, sequence: int) -> None: ...
    def clear(self) -> None: ...


class MemorySegmentStore:
    def __init__(self) -> None:
        self._data: dict[int, bytes] = {}

    def put(self, sequence: int, data: bytes) -> None:
        self._data[sequence] = data

    def get(self, sequence: int) -> Deferred[bytes | None]:
        return succeed(self._data.get(sequence))

    def drop(self, sequence: int) -> None:
        self._data.pop(sequence, None)

    def clear(self) -> None:
        self._data.clear()


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    tmp.write_bytes(data)
    tmp.replace(path)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


class FileSegmentStore:
    """Segments as files ``<directory>/<sequence>.ts``; a segment is served from memory until its
    file is written. ``run_in_thread`` is ``deferToThread`` in the server."""

    log = Logger()

    def __init__(self, directory: Path, run_in_thread: RunInThread) -> None:
        self.directory = directory
        self._run = run_in_thread
        self._writing: dict[int, bytes] = {}
        self._dropped: set[int] = set()

    def _path(self, sequence: int) -> Path:
        return self.directory / f"{sequence}.ts"

    def put(self, sequence: int, data: bytes) -> None:
        self._writing[sequence] = data
        d = self._run(_write, self._path(sequence), data)

        def written(_: Any) -> None:
            self._writing.pop(sequence, None)
            if sequence in self._dropped:  # dropped while it was being written
                self._dropped.discard(sequence)
                self._run(self._path(sequence).unlink, True)

        d.addCallback(written)
        d.addErrback(lambda f: self.log.failure("cannot write HLS segment {path}", f, path=str(self._path(sequence))))

    def get(self, sequence: int) -> Deferred[bytes | None]:
        if sequence in self._writing:
            return succeed(self._writing[sequence])
        return self._run(_read, self._path(sequence))

    def drop(self, sequence: int) -> None:
        if self._writing.pop(sequence, None) is not None:
            self._dropped.add(sequence)
            return
        self._run(self._path(sequence).unlink, True).addErrback(
            lambda f: self.log.failure("cannot remove HLS segment {sequence}", f, sequence=sequence))

    def clear(self) -> None:
        self._dropped.update(self._writing)
        self._writing.clear()
        self._run(shutil.rmtree, self.directory, True)


@attrs.frozen
class Segment:
    sequence: int
    duration: float  # seconds
    size: int
    discontinuity: bool = False


class _Building:
    __slots__ = ("discontinuity", "last_ts", "parts", "size", "start_ts")

    def __init__(self, start_ts: int, discontinuity: bool, header: bytes) -> None:
        self.start_ts = start_ts
        self.last_ts = start_ts
        self.discontinuity = discontinuity
        self.parts = [header]
        self.size = len(header)

    def add(self, timestamp: int, data: bytes) -> None:
        if data:
            self.parts.append(data)
            self.size += len(data)
        self.last_ts = max(self.last_ts, timestamp)


class HLSStream:
    """One live stream's HLS side; see the module docstring."""

    def __init__(
        self,
        store: SegmentStore,
        *,
        clock: Clock,
        target_s: float = 2.0,
        window: int = 6,
        max_bytes: int = 64 << 20,
        first_sequence: int = 0,
    ) -> None:
        self.store = store
        self.clock = clock
        self.target_ms = int(target_s * 1000)
        self.window = window
        self.max_bytes = max_bytes
        self.segments: deque[Segment] = deque()
        self.next_sequence = first_sequence
        self.ended = False
        self.released = False
        self.stored_bytes = 0
        self._muxer = TSMuxer()
        self._building: _Building | None = None
        self._has_video = False
        self._frame_ms = 0  # the last interval between video frames, to close the last segment
        self._last_video_ts: int | None = None
        self._published = False
        self._discontinuity = False
        self._dropped_discontinuities = 0
        self._target_duration = max(1, math.ceil(target_s))
        self._waiters: list[Deferred[bool]] = []
        self._clients: dict[str, int] = {}

    # -- input ----------------------------------------------------------------------------------

    def begin(self) -> None:
        """A publish starts: a fresh muxer; after an earlier publish, a discontinuity."""
        self._muxer = TSMuxer()
        self._building = None
        self._has_video = False
        self._last_video_ts = None
        self._discontinuity = self._published
        self._published = True
        self.ended = False

    def on_video(self, timestamp: int, payload: bytes) -> None:
        if self.released:
            return
        if flv.is_avc_sequence_header(payload):
            self._muxer.mux_flv_video(timestamp, payload)
            self._has_video = True
            return
        keyframe = flv.is_keyframe(payload)
        current = self._building
        if current is None:
            if not keyframe or self._muxer.video_config is None:
                return
            current = self._start(timestamp)
        elif keyframe and timestamp - current.start_ts >= self.target_ms:
            self._cut(timestamp)
            current = self._start(timestamp)
        elif current.size > MAX_SEGMENT_BYTES:
            self._cut(timestamp)
            current = self._start(timestamp)
        if self._last_video_ts is not None and timestamp > self._last_video_ts:
            self._frame_ms = min(timestamp - self._last_video_ts, 1000)
        self._last_video_ts = timestamp
        current.add(timestamp, self._muxer.mux_flv_video(timestamp, payload))

    def on_audio(self, timestamp: int, payload: bytes) -> None:
        if self.released:
            return
        if flv.is_aac_sequence_header(payload):
            self._muxer.mux_flv_audio(timestamp, payload)
            return
        current = self._building
        if current is None:
            if self._has_video or self._muxer.audio_config is None:
                return  # video streams start at a keyframe
            current = self._start(timestamp)
        elif not self._has_video and (
            timestamp - current.start_ts >= self.target_ms or current.size > MAX_SEGMENT_BYTES
        ):
            self._cut(timestamp)
            current = self._start(timestamp)
        current.add(timestamp, self._muxer.mux_flv_audio(timestamp, payload))

    def end(self) -> None:
        """The publish ended: close the segment being built and mark the playlist ended."""
        current = self._building
        if current is not None and len(current.parts) > 1:
            self._cut(current.last_ts + max(self._frame_ms, 1))
        self._building = None
        self.ended = True
        self._wake()

    def _start(self, timestamp: int) -> _Building:
        self._building = _Building(timestamp, self._discontinuity, self._muxer.segment_start())
        self._discontinuity = False
        return self._building

    def _cut(self, end_ts: int) -> None:
        current = self._building
        assert current is not None
        self._building = None
        duration = max(end_ts - current.start_ts, 1) / 1000
        data = b"".join(current.parts)
        segment = Segment(self.next_sequence, duration, len(data), current.discontinuity)
        self.next_sequence += 1
        self.store.put(segment.sequence, data)
        self.segments.append(segment)
        self.stored_bytes += segment.size
        self._target_duration = max(self._target_duration, math.ceil(duration))
        while self.segments and (
            len(self.segments) > self.window + EXTRA_SEGMENTS
            or (self.stored_bytes > self.max_bytes and len(self.segments) > 1)
        ):
            old = self.segments.popleft()
            self.stored_bytes -= old.size
            self._dropped_discontinuities += old.discontinuity
            self.store.drop(old.sequence)
        self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(bool(self.segments))

    # -- output ---------------------------------------------------------------------------------

    def wait_for_segment(self) -> Deferred[bool]:
        """Fires (True) when a segment exists, or (False) when the publish ends without one."""
        if self.segments or self.ended or self.released:
            return succeed(bool(self.segments))
        waiter: Deferred[bool] = Deferred(lambda d: self._waiters.remove(d) if d in self._waiters else None)
        self._waiters.append(waiter)
        return waiter

    def listed(self) -> list[Segment]:
        return list(self.segments)[-self.window :]

    def playlist(self, uri: Callable[[int], str]) -> str:
        """The media playlist; ``uri(sequence)`` names each segment."""
        listed = self.listed()
        hidden = list(self.segments)[: len(self.segments) - len(listed)]
        discontinuity_sequence = self._dropped_discontinuities + sum(s.discontinuity for s in hidden)
        first = listed[0].sequence if listed else self.next_sequence
        lines = [
            "#EXTM3U",
            "#EXT-X-VERSION:3",
            f"#EXT-X-TARGETDURATION:{self._target_duration}",
            f"#EXT-X-MEDIA-SEQUENCE:{first}",
        ]
        if discontinuity_sequence:
            lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{discontinuity_sequence}")
        for segment in listed:
            if segment.discontinuity:
                lines.append("#EXT-X-DISCONTINUITY")
            lines.append(f"#EXTINF:{segment.duration:.3f},")
            lines.append(uri(segment.sequence))
        if self.ended:
            lines.append("#EXT-X-ENDLIST")
        return "\n".join(lines) + "\n"

    def segment(self, sequence: int) -> Deferred[bytes | None]:
        if self.released or not any(s.sequence == sequence for s in self.segments):
            return succeed(None)
        return self.store.get(sequence)

    def touch(self, client: str) -> None:
        """A player read the playlist: it counts as a viewer for a few seconds."""
        now = self.clock()
        self._clients[client] = now
        if len(self._clients) > 10_000:
            self._forget(now)

    def _forget(self, now: int) -> None:
        horizon = now - int(max(HLS_VIEWER_WINDOW_S, 3 * self.target_ms / 1000) * 1000)
        for client in [c for c, seen in self._clients.items() if seen < horizon]:
            del self._clients[client]

    def viewers(self) -> int:
        self._forget(self.clock())
        return len(self._clients)

    def release(self) -> None:
        self.released = True
        self.segments.clear()
        self.stored_bytes = 0
        self._building = None
        self.store.clear()
        self._wake()

    def info(self) -> dict[str, Any]:
        return {
            "segments": len(self.segments),
            "media_sequence": self.listed()[0].sequence if self.segments else self.next_sequence,
            "target_duration": self._target_duration,
            "stored_bytes": self.stored_bytes,
            "ended": self.ended,
            "viewers": self.viewers(),
        }
