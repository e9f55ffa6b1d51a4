"""Time in a live stream: a timeline without jumps, and rates over the last seconds.

``Timeline`` maps publisher timestamps (RTMP/FLV milliseconds) onto stream timestamps that only
move forward in bounded steps: a jump forward past ``max_jump_ms`` or backwards past
``max_back_ms`` (an encoder restart, a 32-bit wrap, a broken encoder) is rebased so the stream
continues one millisecond after its latest timestamp; so is the first tag of a new source (a
republish, a reconnected upstream). One offset serves audio and video, so their sync is kept.

``Rates`` counts frames and bytes over the last ``RATE_WINDOW_MS`` of media time (fps, kbit/s).
"""

from __future__ import annotations

from collections import deque

import attrs

RATE_WINDOW_MS = 5000


class Timeline:
    """Publisher timestamps -> stream timestamps that move forward in bounded steps."""

    def __init__(self, max_jump_ms: int, max_back_ms: int) -> None:
        self.max_jump_ms = max_jump_ms
        self.max_back_ms = max_back_ms
        self.offset = 0
        self.last: int | None = None
        self.rebases = 0
        self._new_source = False

    def new_source(self) -> None:
        """A new publisher (or a reconnected upstream): its first tag continues the timeline."""
        self._new_source = self.last is not None

    def map(self, timestamp: int) -> int:
        out = timestamp + self.offset
        if self.last is not None:
            delta = out - self.last
            if self._new_source or delta > self.max_jump_ms or delta < -self.max_back_ms:
                if not self._new_source:
                    self.rebases += 1
                self.offset = self.last + 1 - timestamp
                out = self.last + 1
        self._new_source = False
        if out < 0:  # only an absurd first value can get here
            self.offset -= out
            out = 0
        if self.last is None or out > self.last:
            self.last = out
        return out & 0xFFFFFFFF


@attrs.define
class Rates:
    """Frames and bytes over the last few seconds of media time."""

    frames: deque[int] = attrs.field(factory=deque)
    sizes: deque[tuple[int, int]] = attrs.field(factory=deque)

    def add(self, timestamp: int, size: int, frame: bool) -> None:
        if frame:
            self.frames.append(timestamp)
            while self.frames and self.frames[0] < timestamp - RATE_WINDOW_MS:
                self.frames.popleft()
        self.sizes.append((timestamp, size))
        while self.sizes and self.sizes[0][0] < timestamp - RATE_WINDOW_MS:
            self.sizes.popleft()

    def fps(self) -> float | None:
        if len(self.frames) < 2 or self.frames[-1] <= self.frames[0]:
            return None
        return round((len(self.frames) - 1) * 1000 / (self.frames[-1] - self.frames[0]), 2)

    def kbps(self) -> float | None:
        if len(self.sizes) < 2 or self.sizes[-1][0] <= self.sizes[0][0]:
            return None
        total = sum(size for _, size in self.sizes)
        return round(total * 8 / (self.sizes[-1][0] - self.sizes[0][0]), 1)
