"""The real ``twistd -n synctv`` process serves /ws/rooms/{room} on its HTTP port: a WebSocket client
gets ``welcome`` and a playback change made over HTTP PATCH; SIGTERM closes it with 1001."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import struct
from typing import Any
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.integration


class BlockingWS:
    """Just enough of RFC 6455 over a blocking socket for one test."""

    def __init__(self, base_url: str, path: str, token: str) -> None:
        parts = urlsplit(base_url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=15)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                   f"Sec-WebSocket-Protocol: synctv.v1, bearer.{token}\r\n\r\n")
        self.sock.sendall(request.encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._read()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        self.status_line = head.split(b"\r\n")[0].decode()

    def _read(self) -> bytes:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("closed")
        return data

    def _exact(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self.buffer += self._read()
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def send(self, message: Any) -> None:
        payload = json.dumps(message).encode()
        mask = os.urandom(4)
        assert len(payload) < 126
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)

    def recv(self) -> tuple[int, bytes]:
        """The next frame that is not a ping: (opcode, payload)."""
        while True:
            b0, b1 = self._exact(2)
            length = b1 & 0x7F
            if length == 126:
                length = struct.unpack("!H", self._exact(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", self._exact(8))[0]
            payload = self._exact(length)
            if b0 & 0x0F != 9:
                return b0 & 0x0F, payload

    def message(self) -> dict[str, Any]:
        opcode, payload = self.recv()
        assert opcode == 1, (opcode, payload)
        return json.loads(payload)


def test_websocket_gets_welcome_and_an_http_change_then_1001_at_shutdown(start_server: Any) -> None:
    """Through the real process: upgrade with a bearer subprotocol, ``welcome`` first, then the state
    changed by PATCH arrives; stopping the server closes the WebSocket with 1001."""
    server = start_server()
    password = (server.data / "root-password").read_text().strip()
    status, login = server.request("POST", "/api/auth/login", {"name": "root", "password": password})
    token = login["token"]
    status, created = server.request("POST", "/api/rooms", {"name": "movie-night"}, token=token)
    room = created["room"]["id"]
    status, media = server.request("POST", f"/api/rooms/{room}/media", {"url": "http://media.example/a.mp4"},
                                   token=token)
    assert status == 201

    ws = BlockingWS(server.url, "/ws/rooms/movie-night", token)
    assert " 101 " in ws.status_line + " "
    welcome = ws.message()
    assert welcome["type"] == "welcome" and welcome["room"]["id"] == room and welcome["user"]["name"] == "root"
    ws.send({"type": "observe", "id": 1, "resource": "playbackState"})
    first = ws.message()
    assert first["id"] == 1 and first["version"] == 0

    status, _ = server.request("PATCH", f"/api/rooms/{room}/playback-state",
                                   {"action": "media", "media_id": media["media"]["id"], "version": 0}, token=token)
    assert status == 200
    pushed = ws.message()
    assert pushed["type"] == "playbackState" and pushed["version"] == 1
    assert pushed["media_id"] == media["media"]["id"]

    server.proc.send_signal(signal.SIGTERM)
    opcode, payload = ws.recv()
    assert opcode == 8 and struct.unpack("!H", payload[:2])[0] == 1001
    assert server.proc.wait(timeout=30) == -signal.SIGTERM  # twistd re-raises the signal
    log = server.log.read_text()
    assert "synctv stopped" in log and "Traceback" not in log and token not in log
