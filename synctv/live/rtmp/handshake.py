"""Server side of the simple RTMP handshake, as a state machine fed bytes.

C0 (version 3) + C1 (1536 bytes) -> we answer S0 + S1 + S2 at once (S2 echoes C1, which is what
ffmpeg, OBS/librtmp and nginx-rtmp accept when S1 carries a zero version field); then C2
(1536 bytes, not checked: clients fill it inconsistently) -> done, and whatever followed C2 is
handed back as the first chunk-stream bytes.

Pure: no clock (S1's time field is what the caller passes, default 0) and the random filler comes
from an injected callable.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import attrs

RTMP_VERSION = 3
HANDSHAKE_SIZE = 1536


class HandshakeError(ValueError):
    """The peer did not speak the RTMP handshake (wrong version, or bytes after failure)."""


@attrs.frozen
class HandshakeStep:
    """What one ``feed`` produced: bytes to send, whether C2 arrived, and bytes after C2."""

    send: bytes = b""
    done: bool = False
    leftover: bytes = b""


class ServerHandshake:
    """Feed it the client's bytes; it says what to send and when the handshake is over."""

    WAIT_C0C1 = "wait_c0c1"
    WAIT_C2 = "wait_c2"
    DONE = "done"
    FAILED = "failed"

    def __init__(self, random_bytes: Callable[[int], bytes] = os.urandom, epoch_ms: int = 0) -> None:
        self._random = random_bytes
        self._epoch = epoch_ms & 0xFFFFFFFF
        self._buffer = bytearray()
        self.state = self.WAIT_C0C1

    @property
    def done(self) -> bool:
        return self.state == self.DONE

    def feed(self, data: bytes) -> HandshakeStep:
        if self.state == self.FAILED:
            raise HandshakeError("handshake already failed")
        if self.state == self.DONE:
            return HandshakeStep(done=True, leftover=bytes(data))
        self._buffer += data
        send = b""
        if self.state == self.WAIT_C0C1:
            if not self._buffer:
                return HandshakeStep()
            version = self._buffer[0]
            if version != RTMP_VERSION:
                self.state = self.FAILED
                self._buffer.clear()
                raise HandshakeError(f"unsupported RTMP version {version} (only 3 is supported)")
            if len(self._buffer) < 1 + HANDSHAKE_SIZE:
                return HandshakeStep()
            c1 = bytes(self._buffer[1 : 1 + HANDSHAKE_SIZE])
            del self._buffer[: 1 + HANDSHAKE_SIZE]
            filler = self._random(HANDSHAKE_SIZE - 8)
            if len(filler) != HANDSHAKE_SIZE - 8:
                raise HandshakeError("random source returned the wrong length")
            s1 = self._epoch.to_bytes(4, "big") + b"\x00\x00\x00\x00" + filler
            send = bytes([RTMP_VERSION]) + s1 + c1
            self.state = self.WAIT_C2
        if self.state == self.WAIT_C2:
            if len(self._buffer) < HANDSHAKE_SIZE:
                return HandshakeStep(send=send)
            leftover = bytes(self._buffer[HANDSHAKE_SIZE:])
            self._buffer.clear()
            self.state = self.DONE
            return HandshakeStep(send=send, done=True, leftover=leftover)
        return HandshakeStep(send=send)  # pragma: no cover - every state returns above


class ClientHandshake:
    """The client side, for tests and a future RTMP pull/push client."""

    def __init__(self, random_bytes: Callable[[int], bytes] = os.urandom) -> None:
        self._random = random_bytes
        self._buffer = bytearray()
        self.c1 = b"\x00" * 8 + random_bytes(HANDSHAKE_SIZE - 8)
        self.done = False

    def start(self) -> bytes:
        """C0 + C1."""
        return bytes([RTMP_VERSION]) + self.c1

    def feed(self, data: bytes) -> HandshakeStep:
        """Take S0+S1+S2; answer C2 (an echo of S1) once all 3073 bytes are in."""
        if self.done:
            return HandshakeStep(done=True, leftover=bytes(data))
        self._buffer += data
        if self._buffer and self._buffer[0] != RTMP_VERSION:
            raise HandshakeError(f"server answered version {self._buffer[0]}")
        if len(self._buffer) < 1 + 2 * HANDSHAKE_SIZE:
            return HandshakeStep()
        s1 = bytes(self._buffer[1 : 1 + HANDSHAKE_SIZE])
        leftover = bytes(self._buffer[1 + 2 * HANDSHAKE_SIZE :])
        self._buffer.clear()
        self.done = True
        return HandshakeStep(send=s1, done=True, leftover=leftover)
