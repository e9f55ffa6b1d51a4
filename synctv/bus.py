"""Cross-node events: who changed what in a room, announced to whoever listens.

Data flows one way (DESIGN.md): the API or a realtime session decides, the store persists, then the
bus announces; realtime sessions subscribe to their room's channel and push to clients.

A message is a JSON-serialisable dict with a ``type``; the same dicts will travel through
PostgreSQL NOTIFY when several nodes share a database (the realtime issue adds that bus).
Channels and messages published by ``synctv.actions``:

- ``room:{room_id}``
  - ``{"type": "playbackState", "room_id", "state": PlaybackState JSON}`` after every change
  - ``{"type": "playlist", "room_id"}`` after media is added, changed, removed or reordered
  - ``{"type": "room", "room_id", "room": Room JSON}`` after the room's name, password or
    settings change
  - ``{"type": "roomDeleted", "room_id"}``
  - ``{"type": "member", "room_id", "user_id", "member": Member JSON or null}`` after a join,
    a role or permission change (the member) or a removal (null)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from twisted.logger import Logger

Message = dict[str, Any]
Subscriber = Callable[[Message], None]


def room_channel(room_id: str) -> str:
    """The channel carrying every change of one room."""
    return f"room:{room_id}"


class Bus(Protocol):
    def publish(self, channel: str, message: Message) -> None:
        """Deliver ``message`` to every subscriber of ``channel``; never raises for a subscriber."""

    def subscribe(self, channel: str, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(message)`` for each message on ``channel`` until the returned
        function (unsubscribe) is called."""


class InProcessBus:
    """Synchronous fan-out inside one process.

    A subscriber that raises is logged and the others still get the message. Subscribing or
    unsubscribing from inside a callback is allowed; it takes effect from the next message.
    """

    log = Logger()

    def __init__(self) -> None:
        self._subscribers: dict[str, list[Subscriber]] = {}

    def publish(self, channel: str, message: Message) -> None:
        for callback in tuple(self._subscribers.get(channel, ())):
            try:
                callback(message)
            except Exception:
                self.log.failure(
                    "bus subscriber failed on {channel} ({message_type})",
                    channel=channel,
                    message_type=message.get("type"),
                )

    def subscribe(self, channel: str, callback: Subscriber) -> Callable[[], None]:
        self._subscribers.setdefault(channel, []).append(callback)
        done = False

        def unsubscribe() -> None:
            nonlocal done
            if done:
                return
            done = True
            callbacks = self._subscribers.get(channel, [])
            callbacks.remove(callback)
            if not callbacks:
                self._subscribers.pop(channel, None)

        return unsubscribe

    def subscriber_count(self, channel: str) -> int:
        return len(self._subscribers.get(channel, ()))
