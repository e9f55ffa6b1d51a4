"""The load generator of bench/realtime.py: lean WebSocket clients in worker processes.

A client is a bare ``asyncio.Protocol`` (the upgrade request, an in-place frame parser, pongs), so
a worker process holds thousands of them cheaply. ``worker`` runs in a child process and talks to
the benchmark over a ``multiprocessing`` pipe:

- it connects ``n`` clients (``CONNECT_CONCURRENCY`` handshakes at a time), each observing
  ``playbackState``, and sends ``("ready", connected, sample_failures, failure_count, seconds)``
  once every client has the current state;
- on ``("expect", version)`` it answers ``("got", version, count)`` once all its clients have it;
- on ``("finish",)`` it sends ``("results", {version: [arrival time.time(), ...]})`` and closes.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import resource
import time
from typing import Any

VERSION = re.compile(rb'"version":\s*(\d+)')
STATE = b'"type":"playbackState"'
CONNECT_CONCURRENCY = 64  # handshakes in flight per worker
WAIT_S = 60.0  # an update not delivered everywhere by then counts as lost


def raise_fd_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit; returns the new soft limit."""
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


async def _worker_main(pipe: Any, host: str, port: int, path: str, token: str, n: int) -> None:
    loop = asyncio.get_running_loop()
    counts: dict[int, int] = {}  # version -> clients that have it
    waiting: set[int] = set()  # versions the parent waits for
    connected: list[LeanClient] = []
    failures: list[str] = []
    all_connected = asyncio.Event()
    all_have_state = asyncio.Event()
    have_state = [0]

    def check_ready() -> None:
        if all_connected.is_set() and have_state[0] >= len(connected):
            all_have_state.set()

    def on_version(client: LeanClient, version: int) -> None:
        if len(client.arrivals) == 1:
            have_state[0] += 1
            check_ready()
        counts[version] = counts.get(version, 0) + 1
        if version in waiting and counts[version] >= len(connected):
            waiting.discard(version)
            pipe.send(("got", version, counts[version]))

    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one() -> None:
        async with gate:
            try:
                client = await open_client(host, port, path, token, on_version)
            except (OSError, ConnectionError) as e:
                failures.append(str(e) or type(e).__name__)
                return
        connected.append(client)

    started = time.monotonic()
    await asyncio.gather(*(one() for _ in range(n)))
    all_connected.set()
    check_ready()
    try:
        await asyncio.wait_for(all_have_state.wait(), WAIT_S)
    except TimeoutError:
        failures.append(f"only {have_state[0]} of {len(connected)} clients got the first state")
    pipe.send(("ready", len(connected), failures[:3], len(failures), time.monotonic() - started))

    done = asyncio.Event()

    def command() -> None:
        message = pipe.recv()
        if message[0] == "expect":
            version = message[1]
            if counts.get(version, 0) >= len(connected):
                pipe.send(("got", version, counts.get(version, 0)))
            else:
                waiting.add(version)
        elif message[0] == "finish":
            done.set()

    loop.add_reader(pipe.fileno(), command)
    await done.wait()
    loop.remove_reader(pipe.fileno())
    arrivals: dict[int, list[float]] = {}
    for client in connected:
        for version, at in client.arrivals.items():
            arrivals.setdefault(version, []).append(at)
    pipe.send(("results", arrivals))
    for client in connected:
        client.close()
    await asyncio.sleep(0.1)  # let the close frames go out


def worker(pipe: Any, host: str, port: int, path: str, token: str, n: int) -> None:
    raise_fd_limit()
    try:
        asyncio.run(_worker_main(pipe, host, port, path, token, n))
    except Exception as e:  # report, don't hang the parent
        pipe.send(("error", f"{type(e).__name__}: {e}"))
