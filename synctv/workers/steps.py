"""Small scheduler steps that adapt another subsystem (``synctv.workers.scheduler.Step``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twisted.internet.defer import Deferred, succeed


class DisplayFollowStep:
    """The display rooms' end-of-show following, on the active-room boundary
    (``DisplayRuntime.follow``)."""

    name = "displays"

    def __init__(self, displays: Any) -> None:
        self.displays = displays

    def run(self, active: Sequence[str]) -> Deferred[None]:
        return Deferred.fromCoroutine(self.displays.follow(active))

    def stop(self) -> Deferred[None]:
        return succeed(None)  # the display subsystem stops its worker itself
