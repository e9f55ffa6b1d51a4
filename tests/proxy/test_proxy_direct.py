"""Cache hits written straight to the socket (memory cache: ``send`` of the slice's bytes; file
cache: ``sendfile`` from the slice file; synctv.proxy.relay): every byte in place for ranges across
slice boundaries on one keep-alive connection, the answer headers kept, the access line's length
true, a client that stops
reading does not hold up others and still gets every byte, clients that go away mid-body
(a reset) cost nothing."""

from __future__ import annotations

import re
import socket
import threading
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread
from twisted.logger import formatEvent, globalLogPublisher

from .conftest import SLICE
from .upstreams import pattern

SIZE = 128 * SLICE + 321  # 8 MiB and a bit: more than loopback socket buffers hold


def _connect(base: str, rcvbuf: int | None = None) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(30)
    sock.connect((host, int(port)))
    return sock


def _head(sock: socket.socket, path: str, first: int | None, last: int | None) -> tuple[int, dict[str, str], bytes]:
    rng = "" if first is None else f"Range: bytes={first}-{last}\r\n"
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n{rng}\r\n".encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, "closed before the headers"
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, rest


def _body(sock: socket.socket, rest: bytes, length: int) -> bytes:
    out = bytearray(rest)
    while len(out) < length:
        chunk = sock.recv(min(1 << 20, length - len(out)))
        assert chunk, "closed in the body"
        out += chunk
    return bytes(out)


def _get_many(base: str, path: str, ranges: list[tuple[int | None, int | None]]) -> list[Any]:
    with _connect(base) as sock:
        out = []
        for first, last in ranges:
            status, headers, rest = _head(sock, path, first, last)
            out.append((status, headers, _body(sock, rest, int(headers["content-length"]))))
        return out


async def _warm(make_world: Any, nginx: Any, cache: str, name: str) -> tuple[Any, str, bytes]:
    data = pattern(SIZE, seed=11)
    nginx.write(name, data)
    world = await make_world(cache=cache)
    room, media = await world.item(nginx.url(name))
    url = await world.proxy_url(room, media)
    first = await world.fetch(url)
    assert first.status == 200 and first.raw == data
    if cache == "file":
        await world.proxy.cache.idle()
    return world, url, data


@pytest.mark.parametrize("cache", ["memory", "file"])
@pytest_twisted.ensureDeferred
async def test_hits_keep_every_byte_and_header_across_slices_on_one_connection(make_world, nginx, cache):
    world, url, data = await _warm(make_world, nginx, cache, f"direct-{cache}.mp4")
    opened = []
    if cache == "file":  # hits are sent from the slice files (sendfile), not read into memory
        real = world.proxy.cache.open_slice
        world.proxy.cache.open_slice = lambda key: opened.append(key) or real(key)
        world.proxy.cache.get = None
    ranges = [(None, None), (0, 0), (5, SLICE - 1), (SLICE - 7, 3 * SLICE + 8), (SIZE - 400, SIZE - 1),
              (17 * SLICE, 17 * SLICE + 2 * SLICE - 1), (1000, SIZE - 1000)]
    events: list[Any] = []
    globalLogPublisher.addObserver(events.append)
    try:
        answers = await deferToThread(_get_many, world.served.base, url, ranges)
    finally:
        globalLogPublisher.removeObserver(events.append)
    # each access line says how many body bytes went out, though most went around Twisted's buffer
    logged = [int(m[1]) for m in (re.search(r'/proxy\?\S* HTTP/1.1" 20[06] (\d+) ', formatEvent(e) or "")
                                  for e in events) if m]
    assert logged == [SIZE if first is None else last - first + 1 for first, last in ranges]
    for (first, last), (status, headers, body) in zip(ranges, answers, strict=True):
        if first is None:
            assert status == 200 and body == data
        else:
            assert status == 206 and body == data[first:last + 1], (first, last)
            assert headers["content-range"] == f"bytes {first}-{last}/{SIZE}"
        assert headers["x-cache"] == "HIT"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["content-security-policy"].startswith("sandbox")
        assert headers["content-type"] == "video/mp4"
    assert world.proxy.service.counters["upstream_requests"] > 0  # the warm read only
    before = world.proxy.service.counters["upstream_requests"]
    await deferToThread(_get_many, world.served.base, url, ranges[:2])
    assert world.proxy.service.counters["upstream_requests"] == before
    assert len(opened) >= (len(ranges) if cache == "file" else 0)


def _stalled_reader(base: str, path: str, stalled: threading.Event, go: threading.Event) -> bytes:
    with _connect(base, rcvbuf=16 * 1024) as sock:
        status, _headers, rest = _head(sock, path, 0, SIZE - 1)
        assert status == 206
        stalled.set()
        assert go.wait(60)
        return _body(sock, rest, SIZE)


def _vanishing_reader(base: str, path: str) -> None:
    with _connect(base) as sock:
        _head(sock, path, 0, SIZE - 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST


@pytest.mark.parametrize("cache", ["memory", "file"])
@pytest_twisted.ensureDeferred
async def test_a_stalled_reader_does_not_hold_up_others_and_still_gets_every_byte(make_world, nginx, cache):
    world, url, data = await _warm(make_world, nginx, cache, f"stall-{cache}.mp4")
    stalled, go = threading.Event(), threading.Event()
    slow = deferToThread(_stalled_reader, world.served.base, url, stalled, go)
    try:
        await deferToThread(stalled.wait, 30)
        # while that reader holds 8 MiB of answer unread, others are served in full
        for _ in range(3):
            await deferToThread(_vanishing_reader, world.served.base, url)
        [(status, _headers, body)] = await deferToThread(_get_many, world.served.base, url, [(SLICE, SIZE - 1)])
        assert status == 206 and body == data[SLICE:]
        assert not slow.called  # the stalled answer is still under way
    finally:
        go.set()
    assert await slow == data
