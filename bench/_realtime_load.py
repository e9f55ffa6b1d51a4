"""The load generator of bench/realtime.py: lean WebSocket clients in worker processes.

A worker holds thousands of clients on raw non-blocking sockets and one ``select.epoll`` loop:
per readable socket one ``recv``, the frames parsed in place, the arrival time (``time.time()``)
of each new playbackState version noted, pings answered; no object, coroutine or callback per
client beyond a few list slots, so the load generator takes little of the CPU the server needs
(the benchmark reports the workers' CPU per change beside the server's). ``worker`` runs in a
child process and talks to the benchmark over a ``multiprocessing`` pipe:

- it connects ``n`` clients (``CONNECT_CONCURRENCY`` handshakes at a time), each observing
  ``playbackState``, and sends ``("ready", connected, sample_failures, failure_count, seconds)``
  once every client has the current state;
- on ``("expect", version)`` it answers ``("got", version, count)`` once all its clients have it;
- on ``("finish",)`` it sends ``("results", {version: [arrival time.time(), ...]})`` and closes.

``LeanClient``/``open_client`` (one asyncio client) serve the benchmark's warm-up connection.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import resource
import select
import socket
import time
from typing import Any

VERSION = re.compile(rb'"version":\s*(\d+)')
STATE = b'"type":"playbackState"'
CONNECT_CONCURRENCY = 64  # handshakes in flight per worker
WAIT_S = 60.0  # an update not delivered everywhere by then counts as lost


FD_WANTED = 65536  # 20,000 clients and their server need more than a common hard limit


def raise_fd_limit() -> int:
    """Soft RLIMIT_NOFILE up to ``FD_WANTED`` where allowed (root may raise the hard limit),
    else up to the hard limit; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < FD_WANTED:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (FD_WANTED, FD_WANTED))
        except (ValueError, OSError):
            pass
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """A client frame: FIN, ``opcode``, masked with a zero key (the payload is unchanged)."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + b"\0\0\0\0" + payload


OBSERVE = _frame(b'{"type":"observe","resource":"playbackState"}')


class LeanClient(asyncio.Protocol):
    """One WebSocket client as a bare protocol: one callback per read, frames parsed in place, the
    arrival time (``time.time()``) of each playbackState version noted, pings answered."""

    __slots__ = ("_buffer", "_request", "_upgraded", "arrivals", "on_version", "opened", "transport")

    def __init__(self, request: bytes, on_version: Any) -> None:
        self._request = request
        self._buffer = b""
        self._upgraded = False
        self.arrivals: dict[int, float] = {}
        self.on_version = on_version
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(self._request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"closed during the handshake: {exc}"))

    def data_received(self, data: bytes) -> None:
        now = time.time()
        buffer = self._buffer + data if self._buffer else data
        if not self._upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self._buffer = buffer
                return
            status = buffer[: buffer.find(b"\r\n")]
            if not status.startswith(b"HTTP/1.1 101"):
                self.opened.set_exception(ConnectionError(status.decode(errors="replace")))
                assert self.transport is not None
                self.transport.close()
                return
            self._upgraded = True
            assert self.transport is not None
            self.transport.write(OBSERVE)
            self.opened.set_result(None)
            buffer = buffer[end + 4 :]
        pos, size = 0, len(buffer)
        while size - pos >= 2:
            b0, n = buffer[pos], buffer[pos + 1] & 0x7F
            head = 2
            if n == 126:
                if size - pos < 4:
                    break
                n, head = int.from_bytes(buffer[pos + 2 : pos + 4], "big"), 4
            elif n == 127:
                if size - pos < 10:
                    break
                n, head = int.from_bytes(buffer[pos + 2 : pos + 10], "big"), 10
            if size - pos < head + n:
                break
            payload = buffer[pos + head : pos + head + n]
            pos += head + n
            opcode = b0 & 0x0F
            if opcode == 0x1:
                if STATE in payload:
                    match = VERSION.search(payload)
                    if match:
                        version = int(match[1])
                        if version not in self.arrivals:
                            self.arrivals[version] = now
                            self.on_version(self, version)
            elif opcode == 0x9:
                assert self.transport is not None
                self.transport.write(_frame(payload, 0xA))
            elif opcode == 0x8:
                assert self.transport is not None
                self.transport.close()
                return
        self._buffer = buffer[pos:] if pos < size else b""

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_frame(b"\x03\xe8", 0x8))
            self.transport.close()


def upgrade_request(host: str, port: int, path: str, token: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n"
    ).encode()


async def open_client(host: str, port: int, path: str, token: str, on_version: Any) -> LeanClient:
    loop = asyncio.get_running_loop()
    request = upgrade_request(host, port, path, token)
    _, client = await loop.create_connection(lambda: LeanClient(request, on_version), host, port)
    await client.opened
    return client


def _parse(buffer: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """Complete server frames at the start of ``buffer`` as ``(opcode, payload)``, and the rest."""
    frames = []
    pos, size = 0, len(buffer)
    while size - pos >= 2:
        b0, n = buffer[pos], buffer[pos + 1] & 0x7F
        head = 2
        if n == 126:
            if size - pos < 4:
                break
            n, head = int.from_bytes(buffer[pos + 2 : pos + 4], "big"), 4
        elif n == 127:
            if size - pos < 10:
                break
            n, head = int.from_bytes(buffer[pos + 2 : pos + 10], "big"), 10
        if size - pos < head + n:
            break
        frames.append((b0 & 0x0F, buffer[pos + head : pos + head + n]))
        pos += head + n
    return frames, buffer[pos:]


class RawClients:
    """``n`` clients on raw sockets in one epoll loop (see the module docstring)."""

    def __init__(self, host: str, port: int, path: str, token: str) -> None:
        self.addr = (host, port)
        self.request = upgrade_request(host, port, path, token)
        self.epoll = select.epoll()
        self.socks: dict[int, socket.socket] = {}
        self.phase: dict[int, int] = {}  # 0 connecting, 1 upgrading, 2 open
        self.buffers: dict[int, bytes] = {}
        self.last: dict[int, int] = {}  # fd -> newest version seen
        self.arrivals: dict[int, list[float]] = {}  # version -> arrival times
        self.counts: dict[int, int] = {}
        self.failures: list[str] = []
        self.open = 0

    def start_one(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.connect_ex(self.addr)
        fd = sock.fileno()
        self.socks[fd] = sock
        self.phase[fd] = 0
        self.buffers[fd] = b""
        self.epoll.register(fd, select.EPOLLOUT)

    def fail(self, fd: int, why: str) -> None:
        self.failures.append(why)
        self.drop(fd)

    def drop(self, fd: int) -> None:
        sock = self.socks.pop(fd, None)
        if sock is None:
            return
        if self.phase.pop(fd, 0) == 2:
            self.open -= 1
        self.buffers.pop(fd, None)
        self.last.pop(fd, None)
        try:
            self.epoll.unregister(fd)
        except OSError:
            pass
        sock.close()

    def event(self, fd: int, events: int, now: float) -> None:
        sock = self.socks.get(fd)
        if sock is None:
            return
        phase = self.phase[fd]
        if phase == 0:
            error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if error:
                self.fail(fd, os.strerror(error))
                return
            sock.send(self.request)
            self.phase[fd] = 1
            self.epoll.modify(fd, select.EPOLLIN)
            return
        try:
            data = sock.recv(262144)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self.fail(fd, str(e))
            return
        if not data:
            self.fail(fd, "closed by the server") if phase == 1 else self.drop(fd)
            return
        buffer = self.buffers[fd] + data if self.buffers[fd] else data
        if phase == 1:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self.buffers[fd] = buffer
                return
            status = buffer[: buffer.find(b"\r\n")]
            if not status.startswith(b"HTTP/1.1 101"):
                self.fail(fd, status.decode(errors="replace"))
                return
            self.phase[fd] = 2
            self.open += 1
            sock.send(OBSERVE)
            buffer = buffer[end + 4 :]
        frames, self.buffers[fd] = _parse(buffer)
        for opcode, payload in frames:
            if opcode == 0x1:
                if STATE in payload:
                    match = VERSION.search(payload)
                    if match:
                        version = int(match[1])
                        if version > self.last.get(fd, -1):
                            self.last[fd] = version
                            self.arrivals.setdefault(version, []).append(now)
                            self.counts[version] = self.counts.get(version, 0) + 1
            elif opcode == 0x9:
                sock.send(_frame(payload, 0xA))
            elif opcode == 0x8:
                self.drop(fd)
                return

    def close_all(self) -> None:
        for fd, sock in list(self.socks.items()):
            try:
                if self.phase.get(fd) == 2:
                    sock.send(_frame(b"\x03\xe8", 0x8))
            except OSError:
                pass
            self.drop(fd)
        self.epoll.close()


def _worker_main(pipe: Any, host: str, port: int, path: str, token: str, n: int) -> None:
    clients = RawClients(host, port, path, token)
    pipe_fd = pipe.fileno()
    clients.epoll.register(pipe_fd, select.EPOLLIN)
    started = time.monotonic()
    launched = 0
    waiting: set[int] = set()  # versions the parent waits for
    ready_sent = False
    progress = (0, 0, 0)  # (open, failed, with a state): ready is sent when all are settled, or
    progress_at = started  # when none of these moved for WAIT_S
    poll = clients.epoll.poll
    event = clients.event
    clock = time.time
    while True:
        while launched < n and launched - clients.open - len(clients.failures) < CONNECT_CONCURRENCY:
            clients.start_one()
            launched += 1
        for fd, events in poll(0.05):
            if fd == pipe_fd:
                message = pipe.recv()
                if message[0] == "expect":
                    waiting.add(message[1])
                elif message[0] == "finish":
                    pipe.send(("results", clients.arrivals))
                    clients.close_all()
                    return
                continue
            event(fd, events, clock())
        connected = clients.open
        if not ready_sent:
            settled = launched >= n and connected + len(clients.failures) >= n
            have_state = len(clients.last)
            now = time.monotonic()
            if (connected, len(clients.failures), have_state) != progress:
                progress, progress_at = (connected, len(clients.failures), have_state), now
            if (settled and have_state >= connected) or now - progress_at > WAIT_S:
                failures = list(clients.failures)
                if have_state < connected:
                    failures.append(f"only {have_state} of {connected} clients got the first state")
                pipe.send(("ready", connected, failures[:3], len(failures), time.monotonic() - started))
                ready_sent = True
        for version in [v for v in waiting if clients.counts.get(v, 0) >= clients.open]:
            waiting.discard(version)
            pipe.send(("got", version, clients.counts.get(version, 0)))


def worker(pipe: Any, host: str, port: int, path: str, token: str, n: int) -> None:
    raise_fd_limit()
    try:
        _worker_main(pipe, host, port, path, token, n)
    except Exception as e:  # report, don't hang the parent
        pipe.send(("error", f"{type(e).__name__}: {e}"))
