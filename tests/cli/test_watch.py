"""``synctv watch ROOM`` as a real subprocess against the real server (``twistd -n synctv``).

It prints the current state, then a line per change made over HTTP, and ends with status 0 on
Ctrl-C; refusals and a lost server end it with one stderr line and the documented status.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration import conftest as integration
from tests.integration.processes import ServerProcess, child_env, running_server

pytestmark = pytest.mark.integration

start_server = integration.start_server
BOUND_S = 30


class Watch:
    """A running ``synctv watch``; ``line()`` waits for its next stdout line (bounded)."""

    def __init__(self, server: Any, config_home: Path, *args: str, env: dict[str, str] | None = None) -> None:
        environ = env or watch_env(config_home)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "synctv.cli", "--server", server.url, "watch", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environ,
        )
        self._buffer = b""
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.proc.stdout, selectors.EVENT_READ)

    def line(self) -> str:
        deadline = time.monotonic() + BOUND_S
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not self._selector.select(left):
                raise AssertionError(f"no line from synctv watch within {BOUND_S}s; stderr: {self.stderr()}")
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                raise AssertionError(f"synctv watch ended ({self.proc.wait()}): {self.stderr()}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()

    def stderr(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        return self.proc.stderr.read().decode(errors="replace")

    def finish(self, sig: int | None = signal.SIGINT) -> tuple[int, str]:
        if sig is not None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=BOUND_S)
        return code, self.proc.stderr.read().decode(errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._selector.close()
        self.proc.stdout.close()
        self.proc.stderr.close()


def watch_env(config_home: Path, **extra: str) -> dict[str, str]:
    env = child_env()
    env["XDG_CONFIG_HOME"] = str(config_home)
    for name in ("SYNCTV_TOKEN", "SYNCTV_SERVER"):
        env.pop(name, None)
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real server for the tests that do not stop it."""
    with running_server(tmp_path_factory.mktemp("watch-server")) as server:
        yield server


def prepare(server: ServerProcess, tmp_path: Path) -> Iterator[Any]:
    """Root logged in with the real CLI (token stored), a new room with one media item."""
    home = tmp_path / "config"
    password = (server.data / "root-password").read_text().strip()
    subprocess.run(
        [sys.executable, "-m", "synctv.cli", "--server", server.url, "login", "root", "--password", password],
        check=True,
        capture_output=True,
        env=watch_env(home),
        timeout=60,
    )
    _, login = server.request("POST", "/api/auth/login", {"name": "root", "password": password})
    token = login["token"]
    name = f"watched-{uuid.uuid4().hex[:8]}"
    _, room = server.request("POST", "/api/rooms", {"name": name}, token=token)
    _, media = server.request(
        "POST", f"/api/rooms/{room['room']['id']}/media", {"url": "http://media.example/a.mp4"}, token=token
    )
    watches: list[Watch] = []

    def watch(*args: str, env: dict[str, str] | None = None) -> Watch:
        w = Watch(server, home, *[name if a == "ROOM" else a for a in args], env=env)
        watches.append(w)
        return w

    yield server, token, room["room"]["id"], media["media"]["id"], watch, home
    for w in watches:
        w.close()


@pytest.fixture
def setup(shared_server: ServerProcess, tmp_path: Path) -> Iterator[Any]:
    """``prepare`` on the module's shared server; ``watch("ROOM", ...)`` names the new room."""
    yield from prepare(shared_server, tmp_path)


@pytest.fixture
def own_setup(start_server: Any, tmp_path: Path) -> Iterator[Any]:
    """``prepare`` on a server of its own (the test may kill it)."""
    yield from prepare(start_server(), tmp_path)


def patch(server: Any, token: str, room: str, body: dict[str, Any]) -> dict[str, Any]:
    status, state = server.request("PATCH", f"/api/rooms/{room}/playback-state", body, token=token)
    assert status == 200, state
    return state


def test_watch_prints_the_state_then_each_change_until_ctrl_c(setup):
    """The first line is the current state; a change over HTTP prints its line; SIGINT ends the
    command with status 0 and nothing on stderr."""
    server, token, room, media, watch, _ = setup
    w = watch("ROOM")
    assert w.line().startswith("no media  v0")
    state = patch(server, token, room, {"action": "media", "media_id": media, "version": 0})
    assert w.line().startswith("paused  0.0s at ")
    state = patch(server, token, room, {"action": "play", "version": state["version"]})
    line = w.line()
    assert line.startswith("playing  ") and f"media {media}" in line and line.endswith(f"v{state['version']}")
    code, stderr = w.finish()
    assert code == 0 and stderr == ""


def test_watch_json_prints_one_object_per_line(setup):
    """With --json every line is one JSON object: the state, as `playback show --json` prints it."""
    server, token, room, media, watch, _ = setup
    w = watch(room, "--json")
    first = json.loads(w.line())
    assert first["version"] == 0 and "type" not in first and "id" not in first
    state = patch(server, token, room, {"action": "media", "media_id": media, "version": 0})
    assert json.loads(w.line()) == state
    code, _ = w.finish()
    assert code == 0


def test_watch_refusals_are_one_line_with_the_documented_status(setup):
    """No such room: status 5; a refused token: status 4; one stderr line each, no output."""
    _, _, _, _, watch, home = setup
    w = watch("no-such-room")
    code, stderr = w.finish(None)
    assert code == 5 and stderr.startswith("synctv: not found") and stderr.count("\n") == 1
    w = watch("ROOM", env=watch_env(home, SYNCTV_TOKEN="forged"))
    code, stderr = w.finish(None)
    assert code == 4 and "SYNCTV_TOKEN was refused" in stderr and stderr.count("\n") == 1


def test_watch_ends_with_status_3_when_the_server_is_gone(own_setup):
    """When the server dies and does not come back, watch retries, then ends with status 3 and
    one line saying the connection was lost."""
    server, _, _, _, watch, _ = own_setup
    w = watch("ROOM", "--retries", "1")
    assert w.line().startswith("no media")
    server.kill(signal.SIGKILL)
    code, stderr = w.finish(None)
    assert code == 3, stderr
    assert stderr.startswith("synctv: lost the connection to") and stderr.count("\n") == 1
