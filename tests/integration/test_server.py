"""The real plugin process: CLI round trip, crash safety, and clear start-up errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.processes import child_env, twistd_args

pytestmark = pytest.mark.integration


def _login_root(server: Any, cli: Any) -> str:
    password = (server.data / "root-password").read_text().strip()
    cli(server, "login", "root", "--password", password)
    status, body = server.request("POST", "/api/auth/login", {"name": "root", "password": password})
    assert status == 200, body
    return body["token"]


def test_cli_round_trip_and_http_agree(start_server: Any, cli: Any) -> None:
    """Login, user, room, media and playback through the CLI; the HTTP API reads the same state."""
    server = start_server()
    mode = stat.S_IMODE((server.data / "root-password").stat().st_mode)
    assert mode == 0o600
    _login_root(server, cli)
    cli(server, "user", "add", "alice", "--password", "wonderland", "--role", "user")
    cli(server, "login", "alice", "--password", "wonderland")
    room = cli(server, "room", "create", "movie-night").stdout.strip()
    assert room and " " not in room
    media = cli(server, "media", "add", room, "--url", "http://media.example/a.mp4", "--title", "A").stdout.strip()
    cli(server, "playback", "set", room, "--media", media, "--play")
    shown = json.loads(cli(server, "playback", "show", room, "--json").stdout)
    assert shown["media_id"] == media and shown["playing"] is True

    status, body = server.request("POST", "/api/auth/login", {"name": "alice", "password": "wonderland"})
    token = body["token"]
    status, state = server.request("GET", f"/api/rooms/{room}/playback-state", token=token)
    assert status == 200
    assert state["version"] == shown["version"] and state["media_id"] == media and state["playing"]
    status, listed = server.request("GET", f"/api/rooms/{room}/media", token=token)
    assert [m["id"] for m in listed["media"]] == [media]
    # the room is addressable by name too
    status, by_name = server.request("GET", "/api/rooms/movie-night", token=token)
    assert status == 200 and by_name["room"]["id"] == room


def test_sigkill_loses_no_committed_change(start_server: Any, cli: Any) -> None:
    """Everything acknowledged before a SIGKILL is there after a restart; root is not recreated."""
    server = start_server()
    token = _login_root(server, cli)
    password_before = (server.data / "root-password").read_text()
    status, created = server.request("POST", "/api/rooms", {"name": "crash"}, token=token)
    room = created["room"]["id"]
    ids = []
    for i in range(20):
        status, body = server.request("POST", f"/api/rooms/{room}/media",
                                      {"url": f"http://media.example/{i}.mp4", "title": f"m{i}"}, token=token)
        assert status == 201, body
        ids.append(body["media"]["id"])
    version = 0
    status, state = server.request("PATCH", f"/api/rooms/{room}/playback-state",
                                   {"action": "media", "media_id": ids[7], "version": version}, token=token)
    assert status == 200, state
    status, state = server.request("PATCH", f"/api/rooms/{room}/playback-state",
                                   {"action": "play", "version": state["version"]}, token=token)
    assert status == 200, state
    assert server.kill(signal.SIGKILL) == -signal.SIGKILL

    again = start_server(data=server.data)
    assert (again.data / "root-password").read_text() == password_before
    status, after = again.request("GET", f"/api/rooms/{room}/playback-state", token=token)
    assert status == 200, after
    assert after == state
    status, listed = again.request("GET", f"/api/rooms/{room}/media", token=token)
    assert [m["id"] for m in listed["media"]] == ids


def test_sigterm_stops_cleanly(start_server: Any) -> None:
    """SIGTERM runs the orderly shutdown (listeners, in-flight requests, database) to the end.

    twistd then re-raises the signal, so the exit status is that of SIGTERM, as for any twistd app.
    """
    server = start_server()
    assert server.kill(signal.SIGTERM) == -signal.SIGTERM
    log = server.log.read_text()
    assert "synctv stopped" in log and "Traceback" not in log


def _start_fails(tmp_path: Path, *extra: str, db: str | None = None, data: Path | None = None) -> str:
    done = subprocess.run(twistd_args(data or tmp_path / "data", db, *extra), capture_output=True,
                          text=True, cwd=tmp_path, env=child_env(), timeout=60)
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("synctv: ")
    return lines[0]


def test_bad_endpoint_is_one_line(tmp_path: Path) -> None:
    """A malformed --http endpoint stops the start with one line and status 1."""
    args = twistd_args(tmp_path / "data", None)
    args[args.index("--http") + 1] = "tcp:notaport"
    done = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, env=child_env(), timeout=60)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "http endpoint 'tcp:notaport'" in done.stderr


def test_unknown_config_key_is_one_line(tmp_path: Path) -> None:
    """An unknown key in the TOML file names the file, section and key."""
    config = tmp_path / "synctv.toml"
    config.write_text('[server]\nhttp = "tcp:0"\nport = 8080\n')
    line = _start_fails(tmp_path, "--config", str(config))
    assert "unknown key [server] port" in line


def test_unusable_data_dir_is_one_line(tmp_path: Path) -> None:
    """A data directory that cannot be created is reported, not a traceback."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    line = _start_fails(tmp_path, data=blocker / "data")
    assert "data directory" in line


def test_bad_database_url_is_one_line(tmp_path: Path) -> None:
    """An unsupported database URL says which forms are accepted."""
    line = _start_fails(tmp_path, db="mysql://root@127.0.0.1/x")
    assert "sqlite" in line and "postgresql" in line


def test_unreachable_postgres_is_one_line(tmp_path: Path) -> None:
    """A PostgreSQL server that does not answer stops the start with one line."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    line = _start_fails(tmp_path, db=f"postgresql://postgres@127.0.0.1:{port}/nothing")
    assert "127.0.0.1" in line


def test_port_in_use_is_one_line(tmp_path: Path) -> None:
    """An HTTP port that is taken stops the start with one line naming the endpoint."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        args = twistd_args(tmp_path / "data", None)
        args[args.index("--http") + 1] = f"tcp:{port}:interface=127.0.0.1"
        done = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, env=child_env(), timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert f"cannot listen for HTTP on tcp:{port}" in done.stderr
    assert os.path.exists(tmp_path / "data" / "synctv.db")
