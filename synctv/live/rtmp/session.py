"""RTMPSession: the sans-IO server side of one RTMP connection that publishes a stream.

``feed(bytes)`` returns a list of ``SessionEvent`` in order: ``SendData`` (bytes to write to the
peer) interleaved with what happened (``PublishRequested``, ``Metadata``, ``AudioData``,
``VideoData``, ``PublishEnded``, ``ProtocolError``, ``Closed``). No reactor; the clock is injected.

Command flow (what OBS and ffmpeg send): handshake; ``connect`` -> Window Ack Size, Set Peer
Bandwidth, Set Chunk Size, ``_result`` NetConnection.Connect.Success; ``releaseStream`` ->
``_result``; ``FCPublish`` -> ``onFCPublish`` + ``_result``; ``createStream`` -> ``_result``
with a stream id; ``publish`` -> ``PublishRequested``, and the application answers later with
``accept_publish()`` (StreamBegin + onStatus NetStream.Publish.Start) or ``reject_publish()``
(onStatus error, then ``Closed``). Media, metadata and aggregate messages arriving while the
decision is pending are queued unparsed (bounded) and delivered by ``accept_publish()``; before a
publish is requested they are dropped unparsed. ``FCUnpublish``/``deleteStream``/``closeStream``
end the publish. Unknown commands (``play`` too: this server only takes publishes) get an
``_error`` reply when they expect one.

Bounds (synctv/live/rtmp/limits.py, docs/live.md "Limits"): past any of them the session answers
``ProtocolError`` (whose ``limit`` names the bound) then ``Closed``. The publish deadline runs on
the injected clock (milliseconds): ``check_deadline()`` says when it passed, and ``feed`` checks it
too; without a clock there is none. Events are defined in synctv/live/rtmp/events.py.

Every ``PublishRequested`` is followed by exactly one ``PublishEnded`` (unpublish, protocol error or
``connection_lost()``), even if it was still pending -- unless the application rejected it.

Malformed input never raises out of ``feed``: it becomes ``ProtocolError`` then ``Closed``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from synctv.core.clock import Clock
from synctv.live.rtmp import amf0
from synctv.live.rtmp import chunks as ch
from synctv.live.rtmp.events import (
    AudioData,
    Closed,
    Metadata,
    ProtocolError,
    PublishEnded,
    PublishRequested,
    SendData,
    SessionEvent,
    VideoData,
)
from synctv.live.rtmp.handshake import HandshakeError, ServerHandshake
from synctv.live.rtmp.limits import (
    MAX_AMF_VALUES,
    MAX_COMMAND_SIZE,
    MAX_PENDING_BYTES,
    MAX_PENDING_EVENTS,
    MAX_STREAMS,
    MIN_CHUNK_SIZE,
    PRE_AUTH_COMMANDS,
    PRE_AUTH_MESSAGES,
    PRE_PUBLISH_MESSAGE_SIZE,
    RTMPLimits,
)

COMMAND_CSID = 3
STATUS_CSID = 5


class RTMPError(ValueError):
    """The peer broke the RTMP command protocol (or the application misused the session)."""


_STREAM_MESSAGES = frozenset({ch.AUDIO, ch.VIDEO, ch.AGGREGATE, ch.DATA_AMF0, ch.DATA_AMF3})


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
        raise ch.LimitExceeded("amf_size", f"AMF message of {len(payload)} bytes exceeds {MAX_COMMAND_SIZE}")
    try:
        return amf0.decode_all(payload, max_values=MAX_AMF_VALUES)
    except amf0.TooManyValues:
        raise ch.LimitExceeded("amf_values", f"AMF message of more than {MAX_AMF_VALUES} values") from None


def _amf_payload(message: ch.Message) -> bytes:
    """The AMF0 body of a command or data message (AMF3 forms start with a 0 byte and then AMF0)."""
    if message.type_id in (ch.COMMAND_AMF3, ch.DATA_AMF3) and message.payload[:1] == b"\x00":
        return message.payload[1:]
    return message.payload


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
        limits: RTMPLimits = RTMPLimits(),
        clock: Clock | None = None,
    ) -> None:
        """``clock`` (milliseconds) starts the publish deadline; without one there is none."""
        self.out_chunk_size = chunk_size
        self.window_ack_size = window_ack_size
        self.peer_bandwidth = peer_bandwidth
        self.max_pending_bytes = max_pending_bytes
        self.limits = limits
        self._clock = clock
        self._deadline_ms = clock() + int(limits.publish_timeout_s * 1000) if clock is not None else None
        self._max_message_size = max_message_size
        self._commands_left = PRE_AUTH_COMMANDS
        self.bytes_received = 0
        self.state = self.HANDSHAKE
        self.app = ""
        self.tc_url = ""
        self.stream_name = ""
        self.publish_state: str | None = None  # None | "pending" | "publishing"
        self._publish_stream_id = 0
        self._next_stream_id = 1
        self._pending: list[ch.Message] = []
        self._pending_bytes = 0
        self._handshake = ServerHandshake(random_bytes)
        self._reader = ch.ChunkReader(
            max_message_size=min(max_message_size, PRE_PUBLISH_MESSAGE_SIZE),
            max_chunk_streams=limits.pre_publish_chunk_streams,
            max_buffer_bytes=limits.max_buffer_bytes,
            min_chunk_size=MIN_CHUNK_SIZE,
            max_messages=PRE_AUTH_MESSAGES,
        )
        self._writer = ch.ChunkWriter()

    @property
    def publishing(self) -> bool:
        return self.publish_state == "publishing"

    @property
    def stage(self) -> str:
        """handshake, wait_connect, connected, pending, publishing or closed."""
        if self.state == self.CONNECTED:
            return self.publish_state or self.CONNECTED
        return self.state

    @property
    def deadline_ms(self) -> int | None:
        """When the connection is closed unless a publish is authorized first; None once one is."""
        return self._deadline_ms if self.state != self.CLOSED else None

    @property
    def held_bytes(self) -> int:
        """What this connection makes us hold: partly assembled messages (at their declared length)
        and media queued while the publish is checked."""
        return self._reader.reserved_bytes + self._pending_bytes

    # -- input ------------------------------------------------------------------------------------

    def feed(self, data: bytes) -> list[SessionEvent]:
        """Take received bytes; return what to send and what happened, in order."""
        out = _Output()
        if self.state == self.CLOSED:
            return []
        self.bytes_received += len(data)
        if self._past_deadline():
            self._deadline_passed(out)
            return out.result()
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
        except ch.LimitExceeded as exc:
            self._fail(str(exc), out, exc.limit)
        except (HandshakeError, ch.ChunkError, amf0.AMF0Error, RTMPError) as exc:
            self._fail(str(exc), out)
        return out.result()

    def check_deadline(self) -> list[SessionEvent]:
        """``ProtocolError`` + ``Closed`` if the deadline passed without an authorized publish, else []."""
        out = _Output()
        if self._past_deadline():
            self._deadline_passed(out)
        return out.result()

    def _past_deadline(self) -> bool:
        deadline = self.deadline_ms
        return deadline is not None and self._clock is not None and self._clock() >= deadline

    def _deadline_passed(self, out: _Output) -> None:
        self._fail(f"no authorized publish within {self.limits.publish_timeout_s:g} s", out, "publish_timeout_s")

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
        self._deadline_ms = None
        self._reader.max_chunk_streams = ch.MAX_CHUNK_STREAMS
        self._reader.messages_left = None
        sid = self._publish_stream_id
        out.send(self._writer.write(ch.user_control_message(ch.STREAM_BEGIN, sid)))
        self._on_status(out, "status", "NetStream.Publish.Start", f"{self.stream_name} is now published.")
        queued = self._pending
        self._drop_pending()
        try:
            for message in queued:
                self._dispatch(message, out)
        except ch.LimitExceeded as exc:
            self._fail(str(exc), out, exc.limit)
        except (ch.ChunkError, amf0.AMF0Error, RTMPError) as exc:
            self._fail(str(exc), out)
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
        self._drop_pending()
        self.publish_state = None
        self.state = self.CLOSED
        out.event(Closed(f"publish rejected: {description}"))

    # -- dispatch ---------------------------------------------------------------------------------

    def _fail(self, message: str, out: _Output, limit: str = "") -> None:
        stage = self.stage
        self._end_publish(out, notify=False)
        self.state = self.CLOSED
        out.event(ProtocolError(message, limit, stage))
        out.event(Closed(message))

    def _drop_pending(self) -> None:
        self._pending, self._pending_bytes = [], 0
        self._reader.held_elsewhere = 0

    def _dispatch(self, message: ch.Message, out: _Output) -> None:
        kind = message.type_id
        if kind in _STREAM_MESSAGES and self.publish_state != "publishing":
            if self.publish_state == "pending":
                self._queue(message)
            return  # nothing published yet: dropped unparsed
        if kind in (ch.AUDIO, ch.VIDEO):
            self._media(kind, message.timestamp, message.payload, out)
        elif kind in (ch.COMMAND_AMF0, ch.COMMAND_AMF3):
            if not self.publishing:
                self._commands_left -= 1
                if self._commands_left < 0:
                    raise ch.LimitExceeded("commands", "too many commands before the publish was authorized")
            self._command(_decode_amf(_amf_payload(message)), message, out)
        elif kind in (ch.DATA_AMF0, ch.DATA_AMF3):
            self._data(_decode_amf(_amf_payload(message)), out)
        elif kind == ch.USER_CONTROL:
            event, body = ch.parse_user_control(message.payload)
            if event == ch.PING_REQUEST and len(body) >= 4:
                timestamp = int.from_bytes(body[:4], "big")
                out.send(self._writer.write(ch.user_control_message(ch.PING_RESPONSE, timestamp)))
        elif kind == ch.AGGREGATE:
            self._aggregate(message, out)
        # Set Chunk Size / Abort / Window Ack Size were applied by the reader; the rest is ignored.

    def _media(self, kind: int, timestamp: int, payload: bytes, out: _Output) -> None:
        if payload:
            out.event((AudioData if kind == ch.AUDIO else VideoData)(timestamp, payload))

    def _queue(self, message: ch.Message) -> None:
        """Hold a message until accept_publish; beyond the bounds it is dropped.

        What is held counts against the connection's buffer budget, with the chunk reader's."""
        size = len(message.payload)
        if (
            len(self._pending) < MAX_PENDING_EVENTS
            and self._pending_bytes + size <= self.max_pending_bytes
            and self._reader.reserved_bytes + self._pending_bytes + size <= self.limits.max_buffer_bytes
        ):
            self._pending.append(message)
            self._pending_bytes += size
            self._reader.held_elsewhere = self._pending_bytes

    def _data(self, values: list[Any], out: _Output) -> None:
        if values and values[0] == "@setDataFrame":
            values = values[1:]
        if len(values) < 2 or values[0] != "onMetaData" or not isinstance(values[1], dict):
            return
        out.event(Metadata(dict(values[1])))

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
                self._data(_decode_amf(body), out)

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
        self._reader.max_message_size = self._max_message_size  # media may follow at once
        out.event(PublishRequested(self.app, stream_name, query, kind, self.tc_url))

    def _end_publish(self, out: _Output, notify: bool) -> None:
        if self.publish_state is None:
            return
        was_publishing = self.publish_state == "publishing"
        self.publish_state = None
        self._drop_pending()
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
