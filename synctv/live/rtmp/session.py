"""RTMPSession: the sans-IO server side of one RTMP connection that publishes a stream.

``feed(bytes)`` returns a list of ``SessionEvent`` in order: ``SendData`` (bytes to write to the
peer) interleaved with what happened (``PublishRequested``, ``Metadata``, ``AudioData``,
``VideoData``, ``PublishEnded``, ``ProtocolError``, ``Closed``). No reactor, no clock.

Command flow (what OBS and ffmpeg send): handshake; ``connect`` -> Window Ack Size, Set Peer
Bandwidth, Set Chunk Size, ``_result`` NetConnection.Connect.Success; ``releaseStream`` ->
``_result``; ``FCPublish`` -> ``onFCPublish`` + ``_result``; ``createStream`` -> ``_result``
with a stream id; ``publish`` -> ``PublishRequested``, and the application answers later with
``accept_publish()`` (StreamBegin + onStatus NetStream.Publish.Start) or ``reject_publish()``
(onStatus error, then ``Closed``). Media and metadata arriving while the decision is pending are
queued (bounded) and delivered by ``accept_publish()``. ``FCUnpublish``/``deleteStream``/
``closeStream`` end the publish. Unknown commands get an ``_error`` reply when they expect one.

Every ``PublishRequested`` is followed by exactly one ``PublishEnded`` (unpublish, protocol error or
``connection_lost()``), even if it was still pending -- unless the application rejected it.

Malformed input never raises out of ``feed``: it becomes ``ProtocolError`` then ``Closed``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import attrs

from synctv.live.rtmp import amf0
from synctv.live.rtmp import chunks as ch
from synctv.live.rtmp.handshake import HandshakeError, ServerHandshake

COMMAND_CSID = 3
STATUS_CSID = 5
MAX_STREAMS = 16
MAX_PENDING_BYTES = 8 * 1024 * 1024  # media queued while the application decides on a publish
MAX_PENDING_EVENTS = 2048
MAX_COMMAND_SIZE = 1024 * 1024  # AMF command/data messages are small; this caps decode amplification


class RTMPError(ValueError):
    """The peer broke the RTMP command protocol (or the application misused the session)."""


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
    message: str


@attrs.frozen
class Closed:
    """The session is over; the transport should be closed once pending data is written."""

    reason: str


SessionEvent = (
    SendData | PublishRequested | Metadata | AudioData | VideoData | PublishEnded | ProtocolError | Closed
)


class _Output:
    """Collects events, joining consecutive sends into one ``SendData``."""

    def __init__(self) -> None:
        self.items: list[SessionEvent] = []
        self._pending: list[bytes] = []

    def send(self, data: bytes) -> None:
        if data:
            self._pending.append(data)

    def event(self, event: SessionEvent) -> None:
        self._flush()
        self.items.append(event)

    def _flush(self) -> None:
        if self._pending:
            self.items.append(SendData(b"".join(self._pending)))
            self._pending = []

    def result(self) -> list[SessionEvent]:
        self._flush()
        return self.items


def _decode_amf(payload: bytes) -> list[Any]:
    if len(payload) > MAX_COMMAND_SIZE:
        raise RTMPError(f"AMF message of {len(payload)} bytes exceeds {MAX_COMMAND_SIZE}")
    return amf0.decode_all(payload)


def _split_query(name: str) -> tuple[str, str]:
    base, _, query = name.partition("?")
    return base, query


class RTMPSession:
    """One publishing RTMP connection, server side."""

    HANDSHAKE = "handshake"
    WAIT_CONNECT = "wait_connect"
    CONNECTED = "connected"
    CLOSED = "closed"

    def __init__(
        self,
        chunk_size: int = 4096,
        window_ack_size: int = 2_500_000,
        peer_bandwidth: int = 2_500_000,
        random_bytes: Callable[[int], bytes] = os.urandom,
        max_message_size: int = ch.MAX_MESSAGE_SIZE,
        max_pending_bytes: int = MAX_PENDING_BYTES,
    ) -> None:
        self.out_chunk_size = chunk_size
        self.window_ack_size = window_ack_size
        self.peer_bandwidth = peer_bandwidth
        self.max_pending_bytes = max_pending_bytes
        self.state = self.HANDSHAKE
        self.app = ""
        self.tc_url = ""
        self.stream_name = ""
        self.publish_state: str | None = None  # None | "pending" | "publishing"
        self._publish_stream_id = 0
        self._next_stream_id = 1
        self._pending: list[SessionEvent] = []
        self._pending_bytes = 0
        self._handshake = ServerHandshake(random_bytes)
        self._reader = ch.ChunkReader(max_message_size=max_message_size)
        self._writer = ch.ChunkWriter()

    @property
    def publishing(self) -> bool:
        return self.publish_state == "publishing"

    # -- input ------------------------------------------------------------------------------------

    def feed(self, data: bytes) -> list[SessionEvent]:
        """Take received bytes; return what to send and what happened, in order."""
        out = _Output()
        if self.state == self.CLOSED:
            return []
        try:
            if self.state == self.HANDSHAKE:
                step = self._handshake.feed(data)
                out.send(step.send)
                if not step.done:
                    return out.result()
                self.state = self.WAIT_CONNECT
                data = step.leftover
            if data:
                for message in self._reader.feed(data):
                    self._dispatch(message, out)
                    if self.state == self.CLOSED:
                        return out.result()
                sequence = self._reader.pop_acknowledgement()
                if sequence is not None:
                    out.send(self._writer.write(ch.acknowledgement_message(sequence)))
        except (HandshakeError, ch.ChunkError, amf0.AMF0Error, RTMPError) as exc:
            self._fail(str(exc), out)
        return out.result()

    def connection_lost(self) -> list[SessionEvent]:
        """The transport is gone: end a publish in progress."""
        out = _Output()
        if self.state != self.CLOSED:
            self._end_publish(out, notify=False)
            self.state = self.CLOSED
        return out.result()

    # -- application decisions --------------------------------------------------------------------

    def accept_publish(self) -> list[SessionEvent]:
        """Start the pending publish; returns StreamBegin + onStatus and any queued media."""
        out = _Output()
        if self.state == self.CLOSED or self.publish_state != "pending":
            return []
        self.publish_state = "publishing"
        sid = self._publish_stream_id
        out.send(self._writer.write(ch.user_control_message(ch.STREAM_BEGIN, sid)))
        self._on_status(out, "status", "NetStream.Publish.Start", f"{self.stream_name} is now published.")
        for event in self._pending:
            out.event(event)
        self._pending, self._pending_bytes = [], 0
        return out.result()

    def reject_publish(self, description: str, code: str = "NetStream.Publish.BadName") -> list[SessionEvent]:
        """Refuse the pending publish (or stop an accepted one): onStatus error, then ``Closed``.

        No ``PublishEnded`` follows: the application made this decision itself.
        """
        out = _Output()
        if self.state == self.CLOSED:
            return []
        self._reject(out, description, code)
        return out.result()

    def _reject(self, out: _Output, description: str, code: str) -> None:
        self._on_status(out, "error", code, description)
        self._pending, self._pending_bytes = [], 0
        self.publish_state = None
        self.state = self.CLOSED
        out.event(Closed(f"publish rejected: {description}"))

    # -- dispatch ---------------------------------------------------------------------------------

    def _fail(self, message: str, out: _Output) -> None:
        self._end_publish(out, notify=False)
        self.state = self.CLOSED
        out.event(ProtocolError(message))
        out.event(Closed(message))

    def _dispatch(self, message: ch.Message, out: _Output) -> None:
        kind = message.type_id
        if kind in (ch.AUDIO, ch.VIDEO):
            self._media(kind, message.timestamp, message.payload, out)
        elif kind in (ch.COMMAND_AMF0, ch.COMMAND_AMF3):
            payload = (
                message.payload[1:]
                if kind == ch.COMMAND_AMF3 and message.payload[:1] == b"\x00"
                else message.payload
            )
            self._command(_decode_amf(payload), message, out)
        elif kind in (ch.DATA_AMF0, ch.DATA_AMF3):
            payload = (
                message.payload[1:]
                if kind == ch.DATA_AMF3 and message.payload[:1] == b"\x00"
                else message.payload
            )
            self._data(_decode_amf(payload), out, len(payload))
        elif kind == ch.USER_CONTROL:
            event, body = ch.parse_user_control(message.payload)
            if event == ch.PING_REQUEST and len(body) >= 4:
                timestamp = int.from_bytes(body[:4], "big")
                out.send(self._writer.write(ch.user_control_message(ch.PING_RESPONSE, timestamp)))
        elif kind == ch.AGGREGATE:
            self._aggregate(message, out)
        # Set Chunk Size / Abort / Window Ack Size were applied by the reader; the rest is ignored.

    def _media(self, kind: int, timestamp: int, payload: bytes, out: _Output) -> None:
        if not payload:
            return
        event: SessionEvent = (AudioData if kind == ch.AUDIO else VideoData)(timestamp, payload)
        if self.publish_state == "publishing":
            out.event(event)
        elif self.publish_state == "pending":
            self._queue(event, len(payload))

    def _queue(self, event: SessionEvent, size: int) -> None:
        """Hold an event until accept_publish; beyond the bounds it is dropped."""
        if len(self._pending) < MAX_PENDING_EVENTS and self._pending_bytes + size <= self.max_pending_bytes:
            self._pending.append(event)
            self._pending_bytes += size

    def _data(self, values: list[Any], out: _Output, size: int) -> None:
        if values and values[0] == "@setDataFrame":
            values = values[1:]
        if len(values) < 2 or values[0] != "onMetaData" or not isinstance(values[1], dict):
            return
        event = Metadata(dict(values[1]))
        if self.publish_state == "publishing":
            out.event(event)
        elif self.publish_state == "pending":
            self._queue(event, size)

    def _aggregate(self, message: ch.Message, out: _Output) -> None:
        data = message.payload
        pos, base = 0, None
        parts: list[tuple[int, int, bytes]] = []  # validated first, so a bad aggregate delivers nothing
        while pos < len(data):
            if pos + 11 > len(data):
                raise RTMPError("aggregate message truncated in a sub-message header")
            kind = data[pos]
            size = int.from_bytes(data[pos + 1 : pos + 4], "big")
            stamp = int.from_bytes(data[pos + 4 : pos + 7], "big") | (data[pos + 7] << 24)
            end = pos + 11 + size
            if end + 4 > len(data):
                raise RTMPError("aggregate sub-message overruns the message")
            base = stamp if base is None else base
            timestamp = (message.timestamp + stamp - base) & ch.TIMESTAMP_MASK
            parts.append((kind, timestamp, data[pos + 11 : end]))
            pos = end + 4
        for kind, timestamp, body in parts:
            if kind in (ch.AUDIO, ch.VIDEO):
                self._media(kind, timestamp, body, out)
            elif kind == ch.DATA_AMF0:
                self._data(_decode_amf(body), out, len(body))

    # -- commands ---------------------------------------------------------------------------------

    def _command(self, values: list[Any], message: ch.Message, out: _Output) -> None:
        if not values or not isinstance(values[0], str):
            raise RTMPError("command message without a command name")
        name = values[0]
        txn = values[1] if len(values) > 1 and isinstance(values[1], float) else 0.0
        args = values[2:]
        if name == "connect":
            self._connect(txn, args, out)
        elif self.state != self.CONNECTED:
            self._error(out, txn, name, "connect first")
        elif name == "releaseStream":
            self._result(out, txn, None)
        elif name == "FCPublish":
            stream = args[1] if len(args) > 1 and isinstance(args[1], str) else ""
            self._invoke(
                out, "onFCPublish", 0.0, None, {"code": "NetStream.Publish.Start", "description": stream}
            )
            self._result(out, txn, None)
        elif name == "createStream":
            if self._next_stream_id > MAX_STREAMS:
                self._error(out, txn, name, "too many streams")
            else:
                self._result(out, txn, None, float(self._next_stream_id))
                self._next_stream_id += 1
        elif name == "publish":
            self._publish(args, message.stream_id, out)
        elif name == "FCUnpublish":
            self._result(out, txn, None)
            self._end_publish(out, notify=True)
        elif name in ("deleteStream", "closeStream"):
            self._end_publish(out, notify=True)
        else:
            self._error(out, txn, name, f"Method not found ({name}).")

    def _connect(self, txn: float, args: list[Any], out: _Output) -> None:
        if self.state == self.CONNECTED:
            self._error(out, txn, "connect", "already connected")
            return
        params = args[0] if args and isinstance(args[0], dict) else {}
        app = params.get("app")
        tc_url = params.get("tcUrl")
        self.app = _split_query(app)[0].strip("/") if isinstance(app, str) else ""
        self.tc_url = tc_url if isinstance(tc_url, str) else ""
        encoding = params.get("objectEncoding")
        encoding = encoding if isinstance(encoding, float) else 0.0
        out.send(self._writer.write(ch.window_ack_size_message(self.window_ack_size)))
        out.send(self._writer.write(ch.set_peer_bandwidth_message(self.peer_bandwidth, 2)))
        out.send(self._writer.set_chunk_size(self.out_chunk_size))
        self._result(
            out,
            txn,
            {"fmsVer": "FMS/3,0,1,123", "capabilities": 31.0},
            {
                "level": "status",
                "code": "NetConnection.Connect.Success",
                "description": "Connection succeeded.",
                "objectEncoding": encoding,
            },
        )
        self.state = self.CONNECTED

    def _publish(self, args: list[Any], stream_id: int, out: _Output) -> None:
        if self.publish_state is not None:
            self._on_status(out, "error", "NetStream.Publish.BadConnection", "already publishing", stream_id)
            return
        raw = args[1] if len(args) > 1 and isinstance(args[1], str) else ""
        kind = args[2] if len(args) > 2 and isinstance(args[2], str) else "live"
        stream_name, query = _split_query(raw)
        self._publish_stream_id = stream_id
        self.stream_name = stream_name
        if not stream_name:
            self._reject(out, "a stream name is required", "NetStream.Publish.BadName")
            return
        self.publish_state = "pending"
        out.event(PublishRequested(self.app, stream_name, query, kind, self.tc_url))

    def _end_publish(self, out: _Output, notify: bool) -> None:
        if self.publish_state is None:
            return
        was_publishing = self.publish_state == "publishing"
        self.publish_state = None
        self._pending, self._pending_bytes = [], 0
        if notify and was_publishing:
            self._on_status(
                out, "status", "NetStream.Unpublish.Success", f"{self.stream_name} is now unpublished."
            )
        out.event(PublishEnded(self.app, self.stream_name))

    # -- replies ----------------------------------------------------------------------------------

    def _invoke(self, out: _Output, *values: Any, csid: int = COMMAND_CSID, stream_id: int = 0) -> None:
        payload = amf0.encode(*values)
        out.send(self._writer.write(ch.Message(csid, 0, ch.COMMAND_AMF0, stream_id, payload)))

    def _result(self, out: _Output, txn: float, *values: Any) -> None:
        self._invoke(out, "_result", txn, *values)

    def _error(self, out: _Output, txn: float, name: str, description: str) -> None:
        if txn:  # transaction 0 expects no reply
            info = {"level": "error", "code": "NetConnection.Call.Failed", "description": description}
            self._invoke(out, "_error", txn, None, info)

    def _on_status(
        self, out: _Output, level: str, code: str, description: str, stream_id: int | None = None
    ) -> None:
        info = {"level": level, "code": code, "description": description}
        sid = self._publish_stream_id if stream_id is None else stream_id
        self._invoke(out, "onStatus", 0.0, None, info, csid=STATUS_CSID, stream_id=sid)
