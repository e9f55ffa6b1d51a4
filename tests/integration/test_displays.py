"""LAN synchronized displays through the real process: CLI set-up, a UDP packet, the scheduled start."""

from __future__ import annotations

import json
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.displays.support import free_udp_port, make_video, send_udp

pytestmark = pytest.mark.integration


def _state_after(server: Any, room: str, token: str, version: int, timeout_s: float = 15.0) -> dict[str, Any]:
    """The room's playback state once its version passes ``version`` (across a process boundary
    there is no event to wait on without a WebSocket, so this polls, with a deadline)."""
    deadline = time.monotonic() + timeout_s
    while True:
        status, state = server.request("GET", f"/api/rooms/{room}/playback-state", token=token)
        assert status == 200, state
        if state["version"] > version:
            return state
        assert time.monotonic() < deadline, f"the state stayed at version {version}"
        time.sleep(0.05)


def test_udp_packet_schedules_the_show(start_server: Any, cli: Any, tmp_path: Path) -> None:
    """display add, video upload, event add with a UDP port; SHOW_START to that port makes the
    playback state a scheduled start of the video; the cooldown holds; force passes."""
    server = start_server()
    password = (server.data / "root-password").read_text().strip()
    cli(server, "login", "root", "--password", password)
    token = server.request("POST", "/api/auth/login", {"name": "root", "password": password})[1]["token"]

    room = cli(server, "room", "create", "wall", "--kind", "display").stdout.strip()
    clip = make_video(tmp_path / "clip.mp4", seconds=2.0)
    uploaded = cli(server, "video", "upload", str(clip), "--title", "Intro")
    video = uploaded.stdout.strip()
    assert "uploading clip.mp4" in uploaded.stderr and "(100%)" in uploaded.stderr
    display_id, public_id = cli(server, "display", "add", "left", "--room", "wall").stdout.split()
    port = free_udp_port()
    event = cli(server, "event", "add", "show", "--room", "wall", "--media", video, "--udp-port", str(port),
                "--udp-payload", "SHOW_START", "--cooldown", "60", "--lead-ms", "4000").stdout.strip()
    events = json.loads(cli(server, "event", "list", "--json").stdout)["events"]
    assert events[0]["id"] == event and events[0]["status"] == {"udp": "listening", "port": port}

    before = server.request("GET", f"/api/rooms/{room}/playback-state", token=token)[1]
    sent_ms = time.time() * 1000
    send_udp(port, b"SHOW_START\r\n")
    state = _state_after(server, room, token, before["version"])
    assert state["playing"] is True and state["position"] == 0.0 and state["event_id"] == event
    assert state["version"] == before["version"] + 1
    assert sent_ms + 3000 < state["at_ms"] < sent_ms + 10_000  # now + 4 s on the server's clock
    media = server.request("GET", f"/api/rooms/{room}/media/{state['media_id']}", token=token)[1]["media"]
    assert (media["provider"], media["url"]) == ("upload", f"upload:{video}")

    refused = cli(server, "event", "trigger", "show", check=False)
    assert refused.returncode == 1 and "cooling down" in refused.stderr
    forced = json.loads(cli(server, "event", "trigger", "show", "--force", "--json").stdout)
    assert forced["state"]["version"] == state["version"] + 1 and forced["starts_in_ms"] <= 4000

    # what the display page does: a session, then the videos to cache, then the bytes
    status, session = server.request("POST", f"/api/displays/{public_id}/session")
    assert status == 200 and session["display"]["id"] == display_id and session["room_id"] == room
    status, videos = server.request("GET", "/api/videos", token=session["token"])
    assert [(v["id"], v["media_ids"]) for v in videos["videos"]] == [(video, [state["media_id"]])]
    request = urllib.request.Request(server.url + videos["videos"][0]["url"], headers={"Range": "bytes=0-9"})
    with urllib.request.urlopen(request, timeout=30) as resp:
        assert resp.status == 206 and resp.read() == clip.read_bytes()[:10]

    assert server.kill(signal.SIGTERM) == -signal.SIGTERM
    log = server.log.read_text()
    assert "Traceback" not in log and "synctv stopped" in log
    assert f"listening for triggers on UDP port {port}" in log and "event show triggered (udp from 127.0.0.1)" in log
