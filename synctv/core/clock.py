"""Server time: milliseconds that never step backwards.

The wall clock is read once at start; after that, time advances with the monotonic clock, so an
NTP step on the host never makes ``at_ms`` go backwards. Everything that needs the time takes a
``Clock`` (any zero-argument callable returning int milliseconds), so tests control it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], int]


class ServerClock:
    """Wall clock at construction plus monotonic elapsed time, in integer milliseconds."""

    def __init__(
        self,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._monotonic = monotonic
        self._base_ms = wall() * 1000.0
        self._base_mono = monotonic()

    def __call__(self) -> int:
        return int(self._base_ms + (self._monotonic() - self._base_mono) * 1000.0)


class ManualClock:
    """A clock for tests: it only moves when told to."""

    def __init__(self, now_ms: int = 1_700_000_000_000) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, ms: int) -> None:
        self.now_ms += ms
