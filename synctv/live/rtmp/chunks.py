"""The RTMP chunk stream: splitting messages into chunks and joining them back.

``ChunkReader`` turns received bytes into complete ``Message`` values. It understands fmt 0/1/2/3
message headers, 1/2/3-byte basic headers, extended timestamps (also on fmt 3 chunks, where
encoders disagree: the 4 bytes are taken only when they repeat the header's value, as FMS, ffmpeg
and SRS do), and applies the protocol control messages that change how later chunks parse: Set
Chunk Size, Abort Message and Window Acknowledgement Size (which makes it report when an
Acknowledgement is due). Anything malformed raises ``ChunkError`` (a ``ValueError``); anything
past a bound raises its subclass ``LimitExceeded``, whose ``limit`` names the bound.

Bounds (all attributes, so the session can tighten them before a publish is authorized and loosen
them after):

- ``max_buffer_bytes``: the bytes one connection may make the reader hold. A message is counted at
  its *declared* length from the moment its first header is read, so a header announcing more than
  the budget fails at once, before any payload is buffered; ``held_elsewhere`` counts bytes the
  owner holds for the same connection (the session's queue) against the same budget.
- ``max_message_size``: the declared length of one message.
- ``max_chunk_streams``: chunk stream ids with state (they are never forgotten).
- ``min_chunk_size``: the smallest Set Chunk Size accepted (tiny chunks make every byte a header).
- ``messages_left``: how many more messages may complete (``None``: no budget); it bounds the CPU
  a stream of empty one-byte messages costs.

A Window Acknowledgement Size below ``MIN_ACK_WINDOW`` is taken as ``MIN_ACK_WINDOW``.

``ChunkWriter`` encodes messages with a fmt 0 first chunk and fmt 3 continuations, so the bytes of
one message depend only on the chunk size: ``PreparedMessage`` encodes a message once per chunk
size and hands the same bytes to every viewer.
"""

from __future__ import annotations

import attrs

# Message type ids.
SET_CHUNK_SIZE = 1
ABORT = 2
ACKNOWLEDGEMENT = 3
USER_CONTROL = 4
WINDOW_ACK_SIZE = 5
SET_PEER_BANDWIDTH = 6
AUDIO = 8
VIDEO = 9
DATA_AMF3 = 15
COMMAND_AMF3 = 17
DATA_AMF0 = 18
COMMAND_AMF0 = 20
AGGREGATE = 22

# User control event types.
STREAM_BEGIN = 0
STREAM_EOF = 1
STREAM_DRY = 2
SET_BUFFER_LENGTH = 3
STREAM_IS_RECORDED = 4
PING_REQUEST = 6
PING_RESPONSE = 7

CONTROL_CSID = 2
DEFAULT_CHUNK_SIZE = 128
MAX_CHUNK_SIZE = 16 * 1024 * 1024  # the spec allows 0x7FFFFFFF; anything above 16 MiB is absurd
MAX_MESSAGE_SIZE = 16 * 1024 * 1024
MAX_CHUNK_STREAMS = 256
MAX_BUFFER_BYTES = 32 * 1024 * 1024  # the default per-connection budget ([live] max_buffer_bytes)
MIN_ACK_WINDOW = 4096
MAX_CSID = 65599
TIMESTAMP_MASK = 0xFFFFFFFF
_EXTENDED = 0xFFFFFF
_HEADER_SIZES = (11, 7, 3, 0)


class ChunkError(ValueError):
    """The peer's chunk stream is malformed or out of bounds."""


class LimitExceeded(ChunkError):
    """The peer went past a bound; ``limit`` names it (for the log line that closes the connection)."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit


@attrs.frozen
class Message:
    """One complete RTMP message; ``timestamp`` is absolute milliseconds (32-bit, wrapping)."""

    csid: int
    timestamp: int
    type_id: int
    stream_id: int
    payload: bytes = attrs.field(repr=lambda p: f"<{len(p)} bytes>")


class _ChunkStream:
    """Per chunk stream id: the last message header, and the message being assembled."""

    __slots__ = ("delta", "ext_value", "extended", "length", "payload", "stream_id", "timestamp", "type_id")

    def __init__(self) -> None:
        self.timestamp = 0
        self.delta = 0
        self.length = 0
        self.type_id = 0
        self.stream_id = 0
        self.extended = False
        self.ext_value = b""
        self.payload: bytearray | None = None


class ChunkReader:
    """Incoming chunk stream of one connection: ``feed(bytes) -> [Message, ...]``."""

    def __init__(
        self,
        max_message_size: int = MAX_MESSAGE_SIZE,
        max_chunk_streams: int = MAX_CHUNK_STREAMS,
        max_buffer_bytes: int = MAX_BUFFER_BYTES,
        min_chunk_size: int = 1,
        max_messages: int | None = None,
    ) -> None:
        self.chunk_size = DEFAULT_CHUNK_SIZE
        self.max_message_size = max_message_size
        self.max_chunk_streams = max_chunk_streams
        self.max_buffer_bytes = max_buffer_bytes
        self.min_chunk_size = min_chunk_size
        self.messages_left = max_messages
        self.held_elsewhere = 0  # bytes the owner holds for this connection, against the same budget
        self.reserved_bytes = 0  # declared lengths of the messages being assembled
        self.bytes_received = 0
        self.ack_window = 0  # set by the peer's Window Acknowledgement Size; 0 = never acknowledge
        self._last_ack = 0
        self._streams: dict[int, _ChunkStream] = {}
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Message]:
        """Take received bytes; return every message they complete, in order."""
        self.bytes_received += len(data)
        buf = self._buf
        buf += data
        messages: list[Message] = []
        pos = 0
        try:
            while True:
                consumed = self._one_chunk(buf, pos, messages)
                if consumed == 0:
                    break
                pos += consumed
        finally:
            del buf[:pos]
        return messages

    def pop_acknowledgement(self) -> int | None:
        """The sequence number to acknowledge if a window's worth arrived since the last one, else None.

        Calling it marks the acknowledgement as sent.
        """
        if self.ack_window and self.bytes_received - self._last_ack >= self.ack_window:
            self._last_ack = self.bytes_received
            return self.bytes_received & 0xFFFFFFFF
        return None

    def _one_chunk(self, buf: bytearray, start: int, out: list[Message]) -> int:
        """Parse one whole chunk at ``start``; return bytes consumed, or 0 if it is incomplete."""
        n = len(buf)
        if start >= n:
            return 0
        pos = start
        b0 = buf[pos]
        fmt = b0 >> 6
        csid = b0 & 0x3F
        pos += 1
        if csid == 0:
            if pos + 1 > n:
                return 0
            csid = 64 + buf[pos]
            pos += 1
        elif csid == 1:
            if pos + 2 > n:
                return 0
            csid = 64 + buf[pos] + (buf[pos + 1] << 8)
            pos += 2
        hlen = _HEADER_SIZES[fmt]
        if pos + hlen > n:
            return 0
        cs = self._streams.get(csid)
        if cs is None:
            if fmt >= 2:
                raise ChunkError(f"chunk stream {csid} starts with a fmt {fmt} header")
            if len(self._streams) >= self.max_chunk_streams:
                raise LimitExceeded("chunk_streams", f"more than {self.max_chunk_streams} chunk streams")
        in_progress = cs is not None and cs.payload is not None and fmt == 3

        # Header fields, held in locals until the whole chunk is known to be here.
        if cs is not None:
            length, type_id, stream_id = cs.length, cs.type_id, cs.stream_id
        else:
            length, type_id, stream_id = 0, 0, 0
        field = 0
        if fmt <= 2:
            field = (buf[pos] << 16) | (buf[pos + 1] << 8) | buf[pos + 2]
            if fmt <= 1:
                length = (buf[pos + 3] << 16) | (buf[pos + 4] << 8) | buf[pos + 5]
                type_id = buf[pos + 6]
                if fmt == 0:
                    stream_id = int.from_bytes(buf[pos + 7 : pos + 11], "little")
            pos += hlen
        extended = field == _EXTENDED if fmt <= 2 else (cs.extended if cs is not None else False)
        ext_value = b""
        if extended:
            if pos + 4 > n:
                return 0
            ext_value = bytes(buf[pos : pos + 4])
            if fmt <= 2:
                field = int.from_bytes(ext_value, "big")
                pos += 4
            elif cs is not None and ext_value == cs.ext_value:
                pos += 4  # fmt 3 repeating the extended timestamp: present, skip it
        # A partial message on this chunk stream that a new header replaces gives its bytes back.
        released = cs.length if cs is not None and cs.payload is not None and not in_progress else 0
        if not in_progress:
            self._check_budget(length, released)

        have = len(cs.payload) if in_progress and cs is not None and cs.payload else 0
        take = min(self.chunk_size, length - have)
        if pos + take > n:
            return 0

        # The chunk is complete: commit.
        if cs is None:
            cs = _ChunkStream()
            self._streams[csid] = cs
        if not in_progress:
            self.reserved_bytes += length - released
            if fmt == 0:
                cs.timestamp = field
                cs.delta = field  # a fmt 3 header after fmt 0 reuses its timestamp as the delta
            elif fmt <= 2:
                cs.delta = field
                cs.timestamp = (cs.timestamp + field) & TIMESTAMP_MASK
            else:
                cs.timestamp = (cs.timestamp + cs.delta) & TIMESTAMP_MASK
            cs.length, cs.type_id, cs.stream_id = length, type_id, stream_id
            if fmt <= 2:
                cs.extended = extended
                cs.ext_value = ext_value
            cs.payload = bytearray()
        assert cs.payload is not None
        if take:
            cs.payload += buf[pos : pos + take]
        pos += take
        if len(cs.payload) >= cs.length:
            message = Message(csid, cs.timestamp, cs.type_id, cs.stream_id, bytes(cs.payload))
            cs.payload = None
            self.reserved_bytes -= cs.length
            if self.messages_left is not None:
                if self.messages_left <= 0:
                    raise LimitExceeded("messages", "too many messages before the publish was authorized")
                self.messages_left -= 1
            self._control(message)
            out.append(message)
        return pos - start

    def _check_budget(self, length: int, released: int) -> None:
        """Refuse a message whose declared length is past a bound, before any of it is held."""
        if length > self.max_message_size:
            raise LimitExceeded(
                "message_size", f"message of {length} bytes exceeds the {self.max_message_size} byte limit"
            )
        held = self.reserved_bytes - released + self.held_elsewhere
        if held + length > self.max_buffer_bytes:
            raise LimitExceeded(
                "max_buffer_bytes",
                f"a message of {length} bytes on top of {held} held exceeds the per-connection buffer "
                f"of {self.max_buffer_bytes} bytes",
            )

    def _control(self, message: Message) -> None:
        """Apply the control messages that change how this reader parses."""
        if message.stream_id != 0 and message.type_id in (SET_CHUNK_SIZE, ABORT, WINDOW_ACK_SIZE):
            return
        if message.type_id == SET_CHUNK_SIZE:
            size = _u32(message.payload, "Set Chunk Size")
            if size & 0x80000000 or size == 0 or size > MAX_CHUNK_SIZE:
                raise ChunkError(f"chunk size {size} out of bounds (1..{MAX_CHUNK_SIZE})")
            if size < self.min_chunk_size:
                raise LimitExceeded("chunk_size", f"chunk size {size} is below the minimum {self.min_chunk_size}")
            self.chunk_size = size
        elif message.type_id == ABORT:
            cs = self._streams.get(_u32(message.payload, "Abort Message"))
            if cs is not None and cs.payload is not None:
                self.reserved_bytes -= cs.length
                cs.payload = None
        elif message.type_id == WINDOW_ACK_SIZE:
            window = _u32(message.payload, "Window Acknowledgement Size") & 0x7FFFFFFF
            self.ack_window = max(window, MIN_ACK_WINDOW) if window else 0


def _u32(payload: bytes, what: str) -> int:
    if len(payload) < 4:
        raise ChunkError(f"{what} payload is {len(payload)} bytes, not 4")
    return int.from_bytes(payload[:4], "big")


# -- writing --------------------------------------------------------------------------------------


def basic_header(fmt: int, csid: int) -> bytes:
    """The 1-, 2- or 3-byte basic header for chunk stream ``csid`` (2..65599)."""
    if not 2 <= csid <= MAX_CSID:
        raise ChunkError(f"chunk stream id {csid} out of range 2..{MAX_CSID}")
    if csid < 64:
        return bytes([(fmt << 6) | csid])
    if csid < 320:
        return bytes([fmt << 6, csid - 64])
    rest = csid - 64
    return bytes([(fmt << 6) | 1, rest & 0xFF, rest >> 8])


def encode_chunks(message: Message, chunk_size: int) -> bytes:
    """``message`` as a fmt 0 chunk followed by fmt 3 continuation chunks of ``chunk_size``."""
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise ChunkError(f"chunk size {chunk_size} out of bounds")
    payload = memoryview(message.payload)
    length = len(payload)
    if length > 0xFFFFFF:
        raise ChunkError("message longer than 16 MiB - 1 cannot be chunked")
    timestamp = message.timestamp & TIMESTAMP_MASK
    extended = timestamp >= _EXTENDED
    ext = timestamp.to_bytes(4, "big") if extended else b""
    header = b"".join(
        (
            basic_header(0, message.csid),
            (_EXTENDED if extended else timestamp).to_bytes(3, "big"),
            length.to_bytes(3, "big"),
            bytes([message.type_id & 0xFF]),
            (message.stream_id & 0xFFFFFFFF).to_bytes(4, "little"),
            ext,
        )
    )
    if length <= chunk_size:
        return header + payload.tobytes()
    continuation = basic_header(3, message.csid) + ext
    parts: list[bytes | memoryview] = [header, payload[:chunk_size]]
    for offset in range(chunk_size, length, chunk_size):
        parts.append(continuation)
        parts.append(payload[offset : offset + chunk_size])
    return b"".join(parts)


class PreparedMessage:
    """One message to send to many connections: encoded once per distinct chunk size."""

    __slots__ = ("_encoded", "message")

    def __init__(self, message: Message) -> None:
        self.message = message
        self._encoded: dict[int, bytes] = {}

    def chunks(self, chunk_size: int) -> bytes:
        encoded = self._encoded.get(chunk_size)
        if encoded is None:
            encoded = self._encoded[chunk_size] = encode_chunks(self.message, chunk_size)
        return encoded


class ChunkWriter:
    """Outgoing chunk stream of one connection; only the chunk size is per-connection state."""

    def __init__(self, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        self.chunk_size = chunk_size

    def write(self, message: Message) -> bytes:
        return encode_chunks(message, self.chunk_size)

    def write_prepared(self, prepared: PreparedMessage) -> bytes:
        return prepared.chunks(self.chunk_size)

    def set_chunk_size(self, size: int) -> bytes:
        """The Set Chunk Size message (sent at the old size), after which ``size`` applies."""
        if not 1 <= size <= MAX_CHUNK_SIZE:
            raise ChunkError(f"chunk size {size} out of bounds")
        data = self.write(set_chunk_size_message(size))
        self.chunk_size = size
        return data


# -- protocol control messages --------------------------------------------------------------------


def _control_message(type_id: int, payload: bytes) -> Message:
    return Message(CONTROL_CSID, 0, type_id, 0, payload)


def set_chunk_size_message(size: int) -> Message:
    return _control_message(SET_CHUNK_SIZE, (size & 0x7FFFFFFF).to_bytes(4, "big"))


def abort_message(csid: int) -> Message:
    return _control_message(ABORT, csid.to_bytes(4, "big"))


def acknowledgement_message(sequence: int) -> Message:
    return _control_message(ACKNOWLEDGEMENT, (sequence & 0xFFFFFFFF).to_bytes(4, "big"))


def window_ack_size_message(size: int) -> Message:
    return _control_message(WINDOW_ACK_SIZE, size.to_bytes(4, "big"))


def set_peer_bandwidth_message(size: int, limit_type: int = 2) -> Message:
    """``limit_type``: 0 hard, 1 soft, 2 dynamic."""
    return _control_message(SET_PEER_BANDWIDTH, size.to_bytes(4, "big") + bytes([limit_type]))


def user_control_message(event_type: int, *values: int) -> Message:
    body = event_type.to_bytes(2, "big") + b"".join((v & 0xFFFFFFFF).to_bytes(4, "big") for v in values)
    return _control_message(USER_CONTROL, body)


def parse_user_control(payload: bytes) -> tuple[int, bytes]:
    """(event type, event data) of a User Control message."""
    if len(payload) < 2:
        raise ChunkError("User Control message shorter than 2 bytes")
    return int.from_bytes(payload[:2], "big"), payload[2:]
