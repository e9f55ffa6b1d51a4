"""Oversized request bodies over raw sockets: a Content-Length over the limit gets 413 before the
body is read, a chunked body is cut the moment it passes the limit, and after the 413 the
server reads nothing more of that connection (the client is held by TCP back-pressure, then
dropped). The Site runs with the upload request factory, as the server does: JSON routes keep
the generic 1 MiB limit, upload routes their own."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest_twisted
from twisted.internet.threads import deferToThread

from synctv.api.uploads import UploadRequest
from synctv.site import DEFAULT_MAX_BODY_BYTES, SynctvRequest

GIB = 1 << 30


def capture_requests(site: Any) -> list[SynctvRequest]:
    """Every request the site builds from now on."""
    seen: list[SynctvRequest] = []
    factory = site.requestFactory

    def build(*args: Any) -> SynctvRequest:
        request = factory(*args)
        seen.append(request)
        return request

    site.requestFactory = build
    return seen


def exchange(port: int, head: bytes, body_start: bytes) -> tuple[bytes, int]:
    """Send ``head`` and ``body_start``, read the answer to the end of the stream (a generous 30 s
    bound: the server must answer without the rest), then push as much more body as the kernel
    accepts without blocking; returns (the answer, bytes pushed after it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(head + body_start)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
        conn.setblocking(False)
        pushed = 0
        block = b"x" * 65536
        try:
            while pushed < 64 << 20:
                pushed += conn.send(block)
        except (BlockingIOError, ConnectionError):
            pass
        return answer, pushed


def parse(answer: bytes) -> tuple[int, dict[str, str], Any]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    assert len(body) == int(headers["content-length"]), answer
    return int(status_line.split()[1]), headers, json.loads(body)


def post_head(token: str, *extra: str) -> bytes:
    lines = ["POST /api/rooms HTTP/1.1", "Host: synctv.test", f"Authorization: Bearer {token}",
             "Content-Type: application/json", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def assert_nothing_more_read(world: Any, request: SynctvRequest, pushed: int, read_before: int) -> None:
    """The client pushed ``pushed`` more bytes; once the reactor has served another request (so it
    went round its loop, and would have read them), the refused request has read no more."""
    assert pushed > 0
    assert (await world.client.get("/healthz")).status == 200
    assert request.body_bytes == read_before


@pytest_twisted.ensureDeferred
async def test_a_declared_gigabyte_gets_413_before_the_body_is_read(world):
    """Content-Length 1 GiB and a few bytes: the 413 (JSON, Connection: close) arrives without the
    rest being sent, the stream ends, and later bytes are not read; nothing was created."""
    assert world.site.requestFactory is UploadRequest and world.site.uploads is not None
    seen = capture_requests(world.site)
    head = post_head(world.tokens["alice"], f"Content-Length: {GIB}")
    answer, pushed = await deferToThread(exchange, world.served.port.getHost().port, head, b'{"name": "x"')
    status, headers, body = parse(answer)
    assert (status, headers["connection"], body["error"]["code"]) == (413, "close", "payload_too_large")
    assert str(DEFAULT_MAX_BODY_BYTES) in body["error"]["message"]
    [request] = seen
    assert request.answered_early and request.body_bytes <= len(b'{"name": "x"')
    await assert_nothing_more_read(world, request, pushed, request.body_bytes)
    assert await world.store.list_rooms() == []


@pytest_twisted.ensureDeferred
async def test_a_chunked_body_is_cut_at_the_limit(world):
    """Chunks past the limit (no final chunk ever sent): the 413 arrives at once, and nothing more
    is read once the limit was passed."""
    world.site.max_body_bytes = 4096
    seen = capture_requests(world.site)
    chunks = b"".join(b"%x\r\n%s\r\n" % (1000, b" " * 1000) for _ in range(5))  # 5000 bytes, no end
    head = post_head(world.tokens["alice"], "Transfer-Encoding: chunked")
    answer, pushed = await deferToThread(exchange, world.served.port.getHost().port, head, chunks)
    status, headers, body = parse(answer)
    assert (status, headers["connection"], body["error"]["code"]) == (413, "close", "payload_too_large")
    [request] = seen
    assert request.answered_early and 4096 < request.body_bytes <= 5000
    await assert_nothing_more_read(world, request, pushed, request.body_bytes)


@pytest_twisted.ensureDeferred
async def test_expect_100_continue_gets_the_413_and_no_continue(world):
    """A client that waits for 100 Continue before sending a too large body gets only the 413."""
    head = post_head(world.tokens["alice"], f"Content-Length: {GIB}", "Expect: 100-continue")
    answer, _ = await deferToThread(exchange, world.served.port.getHost().port, head, b"")
    assert answer.startswith(b"HTTP/1.1 413 ") and b"100 Continue" not in answer
    assert parse(answer)[0] == 413


@pytest_twisted.ensureDeferred
async def test_json_routes_keep_the_generic_limit_and_the_server_keeps_serving(world):
    """Right at the limit a JSON body is read; one byte over it is refused early; the site answers
    the next requests as before (uploads keep their own, larger limits: tests/displays)."""
    world.site.max_body_bytes = 2000
    raw = json.dumps({"name": "edge"}).encode()
    at_limit = raw + b" " * (2000 - len(raw))
    r = await world.client.request("POST", "/api/rooms", data=at_limit, token=world.tokens["alice"])
    assert r.status == 201, r.raw
    seen = capture_requests(world.site)
    head = post_head(world.tokens["alice"], f"Content-Length: {len(at_limit) + 1}")
    answer, _ = await deferToThread(exchange, world.served.port.getHost().port, head, b"")
    assert parse(answer)[0] == 413 and seen[0].answered_early
    assert [room["name"] for room in (await world.client.get("/api/rooms", token=world.tokens["alice"])).json["rooms"]] \
        == ["edge"]
    metrics = world.site.metrics.registry.get_sample_value(
        "synctv_http_requests_total", {"method": "other", "route": "too_large", "status": "413"})
    assert metrics == 1.0
