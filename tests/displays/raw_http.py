"""A blocking raw-socket HTTP/1.1 upload client for tests: it sends the headers of an upload, then
as few or as many body bytes as a test wants, and reads whatever the server answers meanwhile.

Blocking: call it from a thread in tests that run the server in this process's reactor
(``deferToThread``), directly against a server in another process.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import attrs


@attrs.frozen
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    interim: tuple[int, ...] = ()  # 1xx statuses that came first (100 Continue)

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def error(self) -> dict[str, Any]:
        return self.json["error"]


class RawUpload:
    """``METHOD path`` with ``Content-Length: length`` (None: chunked), a bearer token and
    ``headers``; the request line and headers are sent at once, with ``first`` body bytes in the
    same write (identity bodies only)."""

    def __init__(self, host: str, port: int, path: str, *, token: str | None, length: int | None,
                 method: str = "POST", headers: dict[str, str] | None = None, timeout: float = 30.0,
                 first: bytes = b"") -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.chunked = length is None
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}"]
        if token is not None:
            lines.append(f"Authorization: Bearer {token}")
        lines.append("Transfer-Encoding: chunked" if length is None else f"Content-Length: {length}")
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + first)
        self.sent = len(first)
        self._buffer = b""

    def send(self, data: bytes) -> bool:
        """Send body bytes; False once the server has closed or reset the connection."""
        if self.chunked:
            data = f"{len(data):x}\r\n".encode() + data + b"\r\n"
        try:
            self.sock.sendall(data)
        except OSError:
            return False
        self.sent += len(data)
        return True

    def end_chunks(self) -> None:
        self.sock.sendall(b"0\r\n\r\n")

    def _more(self, deadline: float) -> bytes:
        self.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            return self.sock.recv(65536)
        except ConnectionResetError:
            return b""

    def _head(self, deadline: float) -> tuple[int, dict[str, str]]:
        while b"\r\n\r\n" not in self._buffer:
            data = self._more(deadline)
            if not data:
                raise ConnectionError(f"closed before an answer; got {self._buffer[:200]!r}")
            self._buffer += data
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(status_line.split()[1]), headers

    def interim(self, timeout: float = 30.0) -> int:
        """The next answer's status without reading a body (for ``100 Continue``)."""
        return self._head(time.monotonic() + timeout)[0]

    def answer(self, timeout: float = 30.0) -> Answer:
        """The final answer (1xx answers before it are collected in ``interim``)."""
        deadline = time.monotonic() + timeout
        interim = []
        status, headers = self._head(deadline)
        while 100 <= status < 200:
            interim.append(status)
            status, headers = self._head(deadline)
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size_line = self._take_line(deadline)
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    self._take_line(deadline)
                    return Answer(status, headers, body, tuple(interim))
                body += self._take(size, deadline)
                self._take_line(deadline)
        length = int(headers.get("content-length", "0"))
        return Answer(status, headers, self._take(length, deadline), tuple(interim))

    def _fill(self, deadline: float, enough: Any) -> None:
        while not enough():
            data = self._more(deadline)
            if not data:
                raise ConnectionError(f"closed in the middle of the answer's body: {self._buffer!r}")
            self._buffer += data

    def _take(self, n: int, deadline: float) -> bytes:
        self._fill(deadline, lambda: len(self._buffer) >= n)
        taken, self._buffer = self._buffer[:n], self._buffer[n:]
        return taken

    def _take_line(self, deadline: float) -> bytes:
        self._fill(deadline, lambda: b"\r\n" in self._buffer)
        line, self._buffer = self._buffer.split(b"\r\n", 1)
        return line

    def closed_by_server(self, timeout: float = 30.0) -> bool:
        """Whether the server closes the connection (EOF or reset) within ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.sock.settimeout(max(0.01, deadline - time.monotonic()))
                if not self.sock.recv(65536):
                    return True
            except ConnectionResetError:
                return True
            except TimeoutError:
                return False
        return False

    def close(self) -> None:
        self.sock.close()

    def abort(self) -> None:
        """Reset the connection (SO_LINGER 0), as a crashed client would."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        self.sock.close()
