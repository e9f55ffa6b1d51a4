"""What the end-to-end tests drive, as a user would: real ``twistd -n synctv`` processes, the real
``synctv`` command (run without blocking the reactor), real WebSockets (``synctv.realtime.client``)
and plain HTTP reads (treq) of the URLs the server hands out. Media files are made by ffmpeg and
served by a loopback HTTP server (twisted.web's ``File``: it honours ``Range``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import treq
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.internet.utils import getProcessOutputAndValue
from twisted.web.server import Site
from twisted.web.static import File

from synctv.realtime.client import RealtimeClient, connect
from tests.integration.processes import ServerProcess, child_env

BOUND_S = 60.0
#: a node made quick for tests: a 0.2 s scheduler tick, quick probe retries, loopback media allowed
FAST_CONFIG = """
[workers]
tick_s = 0.2
probe_backoff_s = 0.5
probe_timeout_s = 10
leader_s = 1.0

[proxy]
allow_networks = ["127.0.0.0/8"]
"""


def make_clip(path: Path, seconds: float) -> Path:
    """A short H.264/AAC MP4 (moov at the end, as ffmpeg writes by default)."""
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25", "-f", "lavfi",
                    "-i", "sine=frequency=440", "-t", str(seconds), "-pix_fmt", "yuv420p", "-c:v", "libx264",
                    "-preset", "ultrafast", "-c:a", "aac", str(path)], check=True)
    return path


def serve_folder(folder: Path) -> tuple[str, Any]:
    """Serve ``folder`` on a loopback port of this process's reactor: (base URL, the port)."""
    from twisted.internet import reactor

    port = reactor.listenTCP(0, Site(File(str(folder))), interface="127.0.0.1")
    return f"http://127.0.0.1:{port.getHost().port}", port


async def until(condition: Callable[[], Any], what: str, bound_s: float = BOUND_S, step_s: float = 0.05) -> Any:
    """Wait for ``condition()`` (sync, or returning a Deferred/coroutine) to be truthy; fail after ``bound_s``."""
    from twisted.internet import reactor

    deadline = time.monotonic() + bound_s
    while True:
        value = condition()
        if hasattr(value, "send"):
            value = await Deferred.fromCoroutine(value)
        elif isinstance(value, Deferred):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {bound_s:g}s: {what}")
        await deferLater(reactor, step_s, lambda: None)


@attrs.define
class User:
    """The ``synctv`` command with its own config home (its login), and an HTTP token."""

    home: Path
    server: ServerProcess
    token: str = ""

    async def cli(self, *args: str) -> Any:
        """``synctv --json ARGS`` against the server; the printed JSON object."""
        from twisted.internet import reactor

        env = child_env()
        env["XDG_CONFIG_HOME"] = str(self.home)
        env.pop("SYNCTV_TOKEN", None)
        out, err, code = await getProcessOutputAndValue(
            sys.executable, ["-m", "synctv.cli", "--server", self.server.url, "--json", *args], env=env,
            path=os.getcwd(), reactor=reactor)
        if code != 0:
            raise AssertionError(f"synctv {' '.join(args)} exited {code}: {err.decode(errors='replace')}")
        return json.loads(out) if out.strip() else None

    async def login(self, name: str, password: str) -> None:
        await self.cli("login", name, "--password", password)
        response = await treq.post(self.server.url + "/api/auth/login", json={"name": name, "password": password})
        self.token = (await response.json())["token"]

    async def get(self, path: str, server: ServerProcess | None = None) -> Any:
        response = await treq.get((server or self.server).url + path,
                                  headers={"Authorization": f"Bearer {self.token}"})
        body = await response.json()
        assert response.code == 200, body
        return body

    async def post(self, path: str, body: Any) -> Any:
        response = await treq.post(self.server.url + path, json=body, headers={"Authorization": f"Bearer {self.token}"})
        answer = await response.json()
        assert response.code in (200, 201), answer
        return answer

    async def media(self, room: str) -> dict[str, dict[str, Any]]:
        return {item["id"]: item for item in (await self.get(f"/api/rooms/{room}/media"))["media"]}

    async def watch(self, room: str, server: ServerProcess | None = None) -> Watcher:
        client = await connect((server or self.server).url, room, self.token)
        watcher = Watcher(client)
        client.on_message(watcher.seen)
        watcher.states.append(as_state(await client.observe("playbackState")))
        return watcher


def as_state(message: dict[str, Any]) -> dict[str, Any]:
    """A ``playbackState`` frame's state (its fields are at the top level)."""
    return {key: value for key, value in message.items() if key not in ("type", "id")}


@attrs.define
class Watcher:
    """A WebSocket in a room (which makes the room active on its node) and the playback states it saw."""

    client: RealtimeClient
    states: list[dict[str, Any]] = attrs.field(factory=list)

    def seen(self, message: dict[str, Any]) -> None:
        if message.get("type") == "playbackState" and "id" not in message:
            self.states.append(as_state(message))

    def saw(self, where: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        return [state for state in self.states if where(state)]


async def ranged(url: str, first: int, last: int) -> tuple[int, bytes]:
    """``curl -r first-last URL``: (status, body)."""
    response = await treq.get(url, headers={"Range": f"bytes={first}-{last}"})
    return response.code, await response.content()
