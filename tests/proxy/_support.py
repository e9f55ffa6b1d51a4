"""Helpers shared by the proxy tests."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.python.failure import Failure


def resolved(d: defer.Deferred[Any]) -> Any:
    """The result of an already-fired Deferred; fails the test if it has not fired or failed."""
    box: list[Any] = []
    d.addBoth(box.append)
    assert box, "the Deferred has not fired"
    if isinstance(box[0], Failure):
        box[0].raiseException()
    return box[0]
