"""The display doors of a real ``twistd -n synctv``, attacked over real sockets: uploads judged before
their bodies (revoked token, no site admin, a third upload of one user, a client gone mid-body),
UDP ports for site admins inside ``[triggers] udp_ports`` on ``udp_bind``, and ``?force=1`` from
loopback by default. The server keeps serving other users during and after, and keeps no file of
a refused upload."""

from __future__ import annotations

import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from tests.displays.raw_http import Answer, RawUpload
from tests.displays.support import free_udp_port, make_video, send_udp, udp_port_in_use

pytestmark = pytest.mark.integration
GiB = 1 << 30
MiB = 1 << 20


def _login(server: Any, name: str, password: str) -> str:
    status, body = server.request("POST", "/api/auth/login", {"name": name, "password": password})
    assert status == 200, body
    return body["token"]


def _root(server: Any) -> str:
    return _login(server, "root", (server.data / "root-password").read_text().strip())


def _user(server: Any, root: str, name: str, role: str = "user") -> str:
    status, body = server.request("POST", "/api/users", {"name": name, "password": "pass-" + name * 2,
                                                         "role": role}, token=root)
    assert status == 201, body
    return _login(server, name, "pass-" + name * 2)


def _open(server: Any, token: str, length: int, headers: dict[str, str] | None = None) -> RawUpload:
    parts = urllib.parse.urlsplit(server.url)
    return RawUpload(parts.hostname, parts.port, "/api/videos?filename=clip.mp4", token=token, length=length,
                     headers={"Content-Type": "video/mp4", **(headers or {})})


def _refused(server: Any, token: str) -> tuple[Answer, int, float]:
    """A 4 GiB upload's headers and 1000 bytes: the answer, bytes sent, and the seconds it took."""
    started = time.monotonic()
    upload = _open(server, token, 4 * GiB)
    try:
        upload.send(b"x" * 1000)
        answer = upload.answer()
        return answer, upload.sent, time.monotonic() - started
    finally:
        upload.close()


def _leftovers(server: Any) -> list[str]:
    incoming = server.data / "videos" / ".incoming"
    return sorted(p.name for p in incoming.iterdir()) if incoming.is_dir() else []


def _until(condition: Any, what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_uploads_are_judged_before_their_bodies(start_server: Any, tmp_path: Path) -> None:
    """Revoked and non-admin 4 GiB uploads are refused after 1000 bytes; a third upload of one user
    is 429 while two proceed and finish; a client gone mid-body leaves no file; bob is served
    throughout; the server's videos are exactly the two finished uploads."""
    server = start_server()
    root = _root(server)
    bob = _user(server, root, "bob")
    ops = _user(server, root, "ops", role="admin")
    clip = make_video(tmp_path / "clip.mp4", seconds=1.0).read_bytes()

    assert server.request("POST", "/api/auth/revoke", token=ops)[0] == 200
    answer, sent, _ = _refused(server, ops)
    assert (answer.status, sent) == (401, 1000) and "revoked" in answer.error()["message"]
    answer, sent, _ = _refused(server, bob)
    assert (answer.status, answer.error()["code"], sent) == (403, "forbidden", 1000)

    # 100 Continue says an upload was admitted and authorized
    first, second = (_open(server, root, len(clip), headers={"Expect": "100-continue"}) for _ in range(2))
    for upload in (first, second):
        assert upload.interim() == 100
        upload.send(clip[:1000])
    third, _, _ = _refused(server, root)
    assert (third.status, third.error()["detail"]) == (429, {"limit": "max_uploads_per_user", "max": 2})
    assert server.request("GET", "/api/rooms", token=bob)[0] == 200

    gone = _open(server, _login(server, "ops", "pass-opsops"), 50 * MiB)
    gone.send(b"y" * (3 * MiB))
    assert server.request("GET", "/healthz")[0] == 200
    gone.abort()

    for upload in (first, second):
        upload.send(clip[1000:])
        answer = upload.answer()
        upload.close()
        assert answer.status == 201, answer.body
    _until(lambda: _leftovers(server) == [], "the broken upload's spool file to go")
    status, listed = server.request("GET", "/api/videos", token=bob)
    assert status == 200 and len(listed["videos"]) == 2
    assert sorted(p.name for p in (server.data / "videos").iterdir()) == sorted(
        [".incoming"] + [v["id"] for v in listed["videos"]])
    assert server.request("GET", "/api/rooms", token=bob)[0] == 200


def _event(server: Any, token: str, room: str, media: str, **fields: Any) -> tuple[int, Any]:
    return server.request("POST", "/api/events", {"name": fields.pop("name", "show"), "room": room,
                                                   "media": media, **fields}, token=token)


def _display_room_with_video(server: Any, token: str, clip: bytes, name: str = "wall") -> tuple[str, str]:
    status, room = server.request("POST", "/api/rooms", {"name": name, "kind": "display"}, token=token)
    assert status == 201, room
    upload = _open(server, _root(server), len(clip))
    upload.send(clip)
    answer = upload.answer()
    upload.close()
    assert answer.status == 201, answer.body
    return room["room"]["id"], answer.json["video"]["id"]


def test_udp_ports_and_force_follow_the_config(start_server: Any, tmp_path: Path) -> None:
    """Defaults: bob (his room's creator) may not give an event a UDP port; root may, inside
    5000-5999 only, on every interface; a new event cools down for 5 s and ?force=1 from loopback
    passes without a token. With lan_networks = [] force needs an admin; udp_bind = 127.0.0.1 binds
    that address only; udp_ports = "7xxx,5000-5999" lets that port through."""
    clip = make_video(tmp_path / "clip.mp4", seconds=1.0).read_bytes()
    server = start_server()
    root = _root(server)
    bob = _user(server, root, "bob")
    room, video = _display_room_with_video(server, bob, clip)
    port = free_udp_port()
    status, body = _event(server, bob, room, video, udp_port=port, udp_payload="GO")
    assert (status, body["error"]["field"]) == (403, "udp_port"), body
    assert not udp_port_in_use(port, "0.0.0.0")
    status, body = _event(server, root, room, video, udp_port=7777, udp_payload="GO")
    assert (status, body["error"]["field"]) == (400, "udp_port") and "5000-5999" in body["error"]["message"]
    status, body = _event(server, root, room, video, udp_port=port, udp_payload="GO")
    assert status == 201 and body["event"]["status"] == {"udp": "listening", "port": port}
    assert body["event"]["cooldown_s"] == 5.0
    assert udp_port_in_use(port, "127.0.0.2")  # 0.0.0.0: every address
    assert server.request("POST", "/trigger_by_name/show")[0] == 200
    assert server.request("POST", "/trigger_by_name/show")[0] == 429
    assert server.request("POST", "/trigger_by_name/show?force=1")[0] == 200  # loopback, no token
    server.kill()

    config = tmp_path / "synctv.toml"
    extra = free_udp_port(7000, 7999)
    config.write_text(f'[triggers]\nlan_networks = []\nudp_ports = "{extra},5000-5999"\nudp_bind = "127.0.0.1"\n')
    again = start_server(data=tmp_path / "data2", extra=("--config", str(config)))
    root = _root(again)
    room, video = _display_room_with_video(again, root, clip)
    status, body = _event(again, root, room, video, udp_port=extra, udp_payload="GO")
    assert status == 201 and body["event"]["status"]["udp"] == "listening", body
    assert udp_port_in_use(extra, "127.0.0.1") and not udp_port_in_use(extra, "127.0.0.2")
    send_udp(extra, b"GO")
    _until(lambda: again.request("GET", "/api/events/show", token=root)[1]["event"]["last_triggered_at"],
           "the packet to trigger the event")
    status, body = again.request("POST", "/trigger_by_name/show?force=1")
    assert (status, body["error"]["code"]) == (403, "forbidden")
    assert again.request("POST", "/trigger_by_name/show?force=1", token=root)[0] == 200


def test_the_cli_says_why_a_large_upload_was_cut_off(start_server: Any, cli: Any, tmp_path: Path) -> None:
    """``synctv video upload`` of a file larger than the socket buffers: the server refuses it
    before its body and stops reading, urllib sees a broken connection, and the command still
    prints the server's reason (bob: no site admin); over the size limit it says so."""
    config = tmp_path / "synctv.toml"
    config.write_text("[displays]\nmax_video_bytes = 1048576\n")
    server = start_server(extra=("--config", str(config)))
    root = _root(server)
    _user(server, root, "bob")
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * (24 * MiB))
    cli(server, "login", "bob", "--password", "pass-bobbob")
    done = cli(server, "video", "upload", str(big), check=False)
    assert done.returncode != 0 and "forbidden: uploads need a site admin" in done.stderr, done.stderr
    cli(server, "login", "root", "--password", (server.data / "root-password").read_text().strip())
    done = cli(server, "video", "upload", str(big), check=False)
    assert done.returncode != 0 and "over its size limit" in done.stderr, done.stderr
    assert _leftovers(server) == [] and server.request("GET", "/healthz")[0] == 200
