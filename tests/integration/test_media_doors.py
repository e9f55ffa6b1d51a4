"""The media doors of issue 9 against a real server process (``twistd -n synctv``) and a hostile
upstream on loopback: the proxy answers a page as bytes, never as a page (part 3); one member's
upstream cookie stays with those who manage media (parts 4, 5); a NAT64 spelling of a private
address is refused before any connection (part 11); a declared gigabyte body is refused before it
is read (part 10). Through all of it another user is served, and the room's data is unchanged.

The in-process tests (tests/proxy, tests/realtime, tests/api) cover every case of each rule; this
module checks that the real server, as a user starts it, is wired to them.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

PAGE = b"<!doctype html><script>fetch('/api/me').then(r => r.text()).then(alert)</script>"
SECRET = "session=upstream-secret-4711"


class HostileUpstream(BaseHTTPRequestHandler):
    """Answers every path with a page claiming to be HTML; counts requests and their cookies."""

    seen: list[tuple[str, str]] = []

    def do_GET(self) -> None:
        HostileUpstream.seen.append((self.path, self.headers.get("Cookie", "")))
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[str]:
    HostileUpstream.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), HostileUpstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _root(server: Any) -> str:
    password = (server.data / "root-password").read_text().strip()
    status, body = server.request("POST", "/api/auth/login", {"name": "root", "password": password})
    assert status == 200, body
    return str(body["token"])


def _raw(server: Any, path: str, token: str) -> tuple[int, dict[str, str], bytes]:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(server.url + path if path.startswith("/") else path,
                                 headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def test_a_hostile_member_and_upstream_get_nothing_through_the_real_server(
        start_server: Any, upstream: str, tmp_path: Path) -> None:
    config = tmp_path / "synctv.toml"
    config.write_text('[proxy]\nallow_networks = ["127.0.0.0/8"]\n')
    server = start_server(extra=("--config", str(config)))
    root = _root(server)
    tokens = {}
    for name in ("mallory", "bob"):
        assert server.request("POST", "/api/users", {"name": name, "password": f"{name}-password-1"}, token=root)[0] == 201
        tokens[name] = server.request("POST", "/api/auth/login", {"name": name, "password": f"{name}-password-1"})[1]["token"]
    assert server.request("POST", "/api/rooms", {"name": "den"}, token=root)[0] == 201
    for name in ("mallory", "bob"):
        assert server.request("POST", "/api/rooms/den/join", {}, token=tokens[name])[0] == 200
    # mallory keeps a member's default manage_media (the attack needs it); bob may not manage media
    status, body = server.request("PATCH", "/api/rooms/den/members/bob",
                                  {"permissions": ["control_playback", "chat"]}, token=root)
    assert status == 200 and body["member"]["permissions"] == ["control_playback", "chat"], body

    # Part 3: an item whose upstream answers a page with a script, played through the proxy.
    status, body = server.request("POST", "/api/rooms/den/media",
                                  {"url": upstream + "/film.mp4", "title": "film", "headers": {"Cookie": SECRET}},
                                  token=tokens["mallory"])
    assert status == 201, body
    media = body["media"]["id"]
    status, body = server.request("GET", f"/api/rooms/den/media/{media}/playback?modes=proxy", token=tokens["bob"])
    assert status == 200, body
    [info] = body["infos"]
    assert info["mode"] == "proxy" and info["headers"] == {} and SECRET not in str(body)  # part 4
    status, headers, raw = _raw(server, info["url"], tokens["bob"])
    assert status == 200 and raw == PAGE  # the bytes, untouched...
    assert headers["content-type"] == "application/octet-stream"  # ...never as a page
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["content-security-policy"] == "sandbox"
    assert HostileUpstream.seen and all(cookie == SECRET for _, cookie in HostileUpstream.seen)

    # Part 5: bob sees which headers are sent, not their values; mallory (manage_media) sees them.
    status, listed = server.request("GET", "/api/rooms/den/media", token=tokens["bob"])
    [item] = listed["media"]
    assert item["header_names"] == ["Cookie"] and item["headers"] == {} and SECRET not in str(listed)
    status, listed = server.request("GET", "/api/rooms/den/media", token=tokens["mallory"])
    assert listed["media"][0]["headers"] == {"Cookie": SECRET}

    # Part 11: a NAT64 spelling of a private address is refused, naming why, with no connection.
    status, body = server.request("POST", "/api/rooms/den/media",
                                  {"url": "http://[64:ff9b::a00:1]:9/x.mp4", "title": "inside",
                                   "headers": {"Referer": "http://x"}}, token=tokens["mallory"])
    assert status == 201, body
    inside = body["media"]["id"]
    status, body = server.request("GET", f"/api/rooms/den/media/{inside}/playback?modes=proxy", token=tokens["bob"])
    [info] = body["infos"]
    before = len(HostileUpstream.seen)
    status, headers, raw = _raw(server, info["url"], tokens["bob"])
    assert status == 403, raw  # the address guard's refusal, named: no connection was tried
    assert b"NAT64 form of 10.0.0.1" in raw
    assert headers["x-content-type-options"] == "nosniff"
    assert len(HostileUpstream.seen) == before

    # Part 10: a body declared at a gigabyte is answered 413 before a byte of it is sent.
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"POST /api/rooms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Authorization: Bearer " + tokens["mallory"].encode() + b"\r\n"
                  b"Content-Length: 1073741824\r\n\r\n")
        answer = s.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]

    # Others are served, and the room holds exactly what the members added.
    assert server.request("GET", "/healthz")[0] == 200
    status, body = server.request("GET", "/api/rooms/den", token=tokens["bob"])
    assert status == 200 and body["room"]["name"] == "den"
    status, listed = server.request("GET", "/api/rooms/den/media", token=root)
    assert [m["title"] for m in listed["media"]] == ["film", "inside"]
