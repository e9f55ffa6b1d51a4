"""What ``RTMPSession`` tells its owner: bytes to send, and what happened, in order."""

from __future__ import annotations

from typing import Any

import attrs


@attrs.frozen
class SendData:
    data: bytes = attrs.field(repr=lambda d: f"<{len(d)} bytes>")


@attrs.frozen
class PublishRequested:
    """The peer asks to publish ``app``/``stream_name``; answer with accept/reject_publish."""

    app: str
    stream_name: str
    query: str = ""  # what followed "?" in the stream name
    publish_type: str = "live"
    tc_url: str = ""


@attrs.frozen
class Metadata:
    data: dict[str, Any]


@attrs.frozen
class AudioData:
    timestamp: int
    payload: bytes = attrs.field(repr=lambda p: f"<{len(p)} bytes>")


@attrs.frozen
class VideoData:
    timestamp: int
    payload: bytes = attrs.field(repr=lambda p: f"<{len(p)} bytes>")


@attrs.frozen
class PublishEnded:
    app: str
    stream_name: str


@attrs.frozen
class ProtocolError:
    """The peer broke the protocol or went past a bound (``limit`` names it, else "");
    ``stage`` is where the session was: handshake, wait_connect, connected, pending or publishing."""

    message: str
    limit: str = ""
    stage: str = ""


@attrs.frozen
class Closed:
    """The session is over; the transport should be closed once pending data is written."""

    reason: str


SessionEvent = (
    SendData | PublishRequested | Metadata | AudioData | VideoData | PublishEnded | ProtocolError | Closed
)
