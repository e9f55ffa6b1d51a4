"""Helpers shared by the proxy tests."""

from __future__ import annotations

import time
from typing import Any

from twisted.internet import defer, task
from twisted.python.failure import Failure


def resolved(d: defer.Deferred[Any]) -> Any:
    """The result of an already-fired Deferred; fails the test if it has not fired or failed."""
    box: list[Any] = []
    d.addBoth(box.append)
    assert box, "the Deferred has not fired"
    if isinstance(box[0], Failure):
        box[0].raiseException()
    return box[0]


async def until(condition: Any, timeout_s: float = 10.0) -> None:
    """Wait (polling the reactor) until ``condition()`` holds; fail after ``timeout_s``."""
    from twisted.internet import reactor

    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the condition did not come true in time"
        await task.deferLater(reactor, 0.01, lambda: None)
