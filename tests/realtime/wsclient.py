"""A small RFC 6455 client over a real TCP connection, for tests: it can send anything (bad frames,
binary, oversize), stop reading, and tell the close code the server sent.

Messages arrive in a queue: ``await client.next()`` for the next one, ``await client.next_of("x")``
to skip to a type. Every wait has a generous sanity timeout so a broken server fails a test
instead of hanging it.
"""

from __future__ import annotations

import base64
import collections
import json
import os
import struct
from typing import Any
from urllib.parse import quote

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ClientFactory, Protocol

WAIT_S = 10.0


@attrs.frozen
class Refused:
    """The server answered the upgrade with an HTTP error."""

    status: int
    headers: dict[str, str]
    body: Any


class WSClient(Protocol):
    def __init__(self, path: str, headers: dict[str, str], protocols: list[str], reactor: Any) -> None:
        self.path = path
        self.headers = headers
        self.protocols = protocols
        self.reactor = reactor
        self.handshake: Deferred[Any] = Deferred()
        self.closed: Deferred[tuple[int | None, str]] = Deferred()
        self.lost: Deferred[None] = Deferred()
        self.response_headers: dict[str, str] = {}
        self.upgraded = False
        self.answer_pings = True
        self.pings = 0  # ping frames received
        self._ping_waiters: list[tuple[int, Deferred[int]]] = []
        self.close_code: int | None = None
        self._buffer = b""
        self._messages: collections.deque[Any] = collections.deque()
        self._waiters: collections.deque[Deferred[Any]] = collections.deque()
        self._fragments: list[bytes] = []
        self.skipped: list[Any] = []  # messages ``request`` passed over while waiting for its reply

    # -- connection -----------------------------------------------------------------------------

    def connectionMade(self) -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {self.path} HTTP/1.1", "Host: 127.0.0.1", "Upgrade: websocket", "Connection: Upgrade",
                 f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        if self.protocols:
            lines.append("Sec-WebSocket-Protocol: " + ", ".join(self.protocols))
        lines += [f"{k}: {v}" for k, v in self.headers.items()]
        self.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        if not self.upgraded:
            self._read_http()
        if self.upgraded:
            self._read_frames()

    def _read_http(self) -> None:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self._buffer[:end].decode("latin-1").split("\r\n")
        status = int(head[0].split()[1])
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        self.response_headers = headers
        if status == 101:
            self.upgraded = True
            self._buffer = self._buffer[end + 4:]
            self.handshake.callback(self)
            return
        length = int(headers.get("content-length", "0"))
        body = self._buffer[end + 4:]
        if len(body) < length:
            return
        try:
            decoded: Any = json.loads(body[:length])
        except ValueError:
            decoded = body[:length]
        self._buffer = b""
        if not self.handshake.called:
            self.handshake.callback(Refused(status, headers, decoded))

    def connectionLost(self, reason: Any = None) -> None:
        if not self.handshake.called:
            self.handshake.errback(reason)
        if not self.closed.called:
            self.closed.callback((self.close_code, "connection lost"))
        self.lost.callback(None)
        waiters, self._waiters = self._waiters, collections.deque()
        for waiter in waiters:
            waiter.errback(ConnectionError("the connection closed while waiting for a message"))

    # -- frames in ------------------------------------------------------------------------------

    def _read_frames(self) -> None:
        buf, pos = self._buffer, 0
        while True:
            if len(buf) - pos < 2:
                break
            b0, b1 = buf[pos], buf[pos + 1]
            length, offset = b1 & 0x7F, 2
            if length == 126:
                if len(buf) - pos < 4:
                    break
                length, offset = struct.unpack_from("!H", buf, pos + 2)[0], 4
            elif length == 127:
                if len(buf) - pos < 10:
                    break
                length, offset = struct.unpack_from("!Q", buf, pos + 2)[0], 10
            if len(buf) - pos < offset + length:
                break
            payload = bytes(buf[pos + offset:pos + offset + length])
            pos += offset + length
            self._frame(b0 & 0x0F, bool(b0 & 0x80), payload)
        self._buffer = buf[pos:]

    def _frame(self, opcode: int, fin: bool, payload: bytes) -> None:
        if opcode == 9:
            self.pings += 1
            if self.answer_pings:
                self.send_frame(10, payload)
            for waiter in [w for w in self._ping_waiters if w[0] <= self.pings]:
                self._ping_waiters.remove(waiter)
                waiter[1].callback(self.pings)
            return
        if opcode == 10:
            return
        if opcode == 8:
            code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
            self.close_code = code
            if not self.closed.called:
                self.closed.callback((code, payload[2:].decode("utf-8", "replace")))
            self.send_frame(8, payload[:2])
            self.transport.loseConnection()
            return
        self._fragments.append(payload)
        if not fin:
            return
        data, self._fragments = b"".join(self._fragments), []
        message: Any = json.loads(data) if opcode == 1 else data
        if self._waiters:
            self._waiters.popleft().callback(message)
        else:
            self._messages.append(message)

    # -- frames out -----------------------------------------------------------------------------

    def send_frame(self, opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0) -> None:
        mask = os.urandom(4)
        head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
        n = len(payload)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        key = (mask * (n // 4 + 1))[:n]
        masked = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")
        self.transport.write(head + mask + masked)

    def send_text(self, text: str | bytes) -> None:
        self.send_frame(1, text.encode() if isinstance(text, str) else text)

    def send_json(self, message: Any) -> None:
        self.send_text(json.dumps(message))

    def close(self, code: int = 1000) -> None:
        self.send_frame(8, struct.pack("!H", code))

    # -- waiting --------------------------------------------------------------------------------

    def next(self, timeout: float = WAIT_S) -> Deferred[Any]:
        if self._messages:
            d: Deferred[Any] = Deferred()
            d.callback(self._messages.popleft())
            return d
        d = Deferred()
        self._waiters.append(d)
        return d.addTimeout(timeout, self.reactor)

    def pinged(self, count: int) -> Deferred[int]:
        """Fires once ``count`` pings have arrived (no sanity timeout: the caller bounds it)."""
        d: Deferred[int] = Deferred()
        if self.pings >= count:
            d.callback(self.pings)
        else:
            self._ping_waiters.append((count, d))
        return d

    async def next_of(self, kind: str, timeout: float = WAIT_S) -> dict[str, Any]:
        """The next message of type ``kind``, skipping others."""
        while True:
            message = await self.next(timeout)
            if message.get("type") == kind:
                return message

    def pending(self) -> list[Any]:
        """Messages received and not taken yet."""
        return list(self._messages)

    async def request(self, message: dict[str, Any], timeout: float = WAIT_S) -> dict[str, Any]:
        """Send ``message`` (with its ``id``) and wait for the reply carrying that id."""
        self.send_json(message)
        while True:
            reply = await self.next(timeout)
            if reply.get("id") == message["id"]:
                return reply
            self.skipped.append(reply)


def connect(
    reactor: Any, port: int, path: str, *, headers: dict[str, str] | None = None,
    protocols: list[str] | None = None,
) -> Deferred[WSClient | Refused]:
    """Open a TCP connection and do the upgrade; fires with the client or a ``Refused``."""
    client = WSClient(path, headers or {}, protocols or [], reactor)
    factory = ClientFactory.forProtocol(lambda: client)
    reactor.connectTCP("127.0.0.1", port, factory)
    return client.handshake.addTimeout(WAIT_S, reactor)


def room_path(room: str, token: str | None = None) -> str:
    path = f"/ws/rooms/{quote(room, safe='')}"
    return path if token is None else f"{path}?token={quote(token, safe='')}"
