"""Two real ``twistd -n synctv`` nodes on one fresh PostgreSQL database for the live-on-any-node
tests, with short idle times, and small HTTP helpers (headers, bounded reads of endless bodies).

``live_cluster`` is module-scoped (starting two nodes is the slow part); each test makes its own
room and item. Node configs: ``[live] idle_s = 3, pull_idle_s = 1`` and ``[server]
node_networks`` = loopback, so the nodes' relays (from 127.0.0.1, no forwarding headers) pass
the network check and a request that came through a proxy does not.
"""

from __future__ import annotations

import http.client
import signal
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import psycopg2
import pytest

from synctv.core import node_auth
from synctv.testing import ServerDidNotStart, wait_serving
from tests.integration.processes import ServerProcess, child_env, twistd_args

NODE_CONFIG = """\
[server]
node_networks = ["127.0.0.0/8", "::1/128"]

[live]
idle_s = 3
pull_idle_s = 1
"""


@attrs.define
class Cluster:
    a: ServerProcess
    b: ServerProcess
    dsn: str
    token: str

    def secret(self) -> str:
        """The nodes' shared secret, as an attacker who read the database would have it."""
        conn = psycopg2.connect(self.dsn)
        try:
            cur = conn.cursor()
            cur.execute("SELECT value FROM settings WHERE key = 'token_secret'")
            return cur.fetchone()[0]
        finally:
            conn.close()

    def live_item(self, name: str) -> tuple[str, str, dict[str, Any]]:
        """A new room with an rtmp item, made on node A: (room, media, stream key answer)."""
        status, created = self.a.request("POST", "/api/rooms", {"name": name}, token=self.token)
        assert status == 201, created
        room = created["room"]["id"]
        status, media = self.a.request("POST", f"/api/rooms/{room}/media", {"provider": "rtmp", "title": name},
                                       token=self.token)
        assert status == 201, media
        media_id = media["media"]["id"] if "media" in media else media["id"]
        status, key = self.a.request("POST", f"/api/rooms/{room}/media/{media_id}/stream-key", {},
                                     token=self.token)
        assert status == 200, key
        return room, media_id, key

    def info(self, node: ServerProcess, room: str, media: str) -> dict[str, Any]:
        status, info = node.request("GET", f"/api/rooms/{room}/media/{media}/stream", token=self.token)
        assert status == 200, info
        return info


def _start(data: Path, db: str, config: Path, log: Path) -> ServerProcess:
    with open(log, "wb") as out:
        proc = subprocess.Popen(twistd_args(data, db, "--config", str(config)), stdout=out,
                                stderr=subprocess.STDOUT, cwd=data.parent, env=child_env())
    try:
        serving = wait_serving(proc, log, 60)
    except ServerDidNotStart as e:
        pytest.fail(str(e))
    return ServerProcess(proc, data, log, serving.http_url, serving.rtmp_url)


@pytest.fixture(scope="module")
def live_cluster(fresh_postgres_database: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    folder = tmp_path_factory.mktemp("live-nodes")
    config = folder / "node.toml"
    config.write_text(NODE_CONFIG)
    db = fresh_postgres_database().dsn
    nodes: list[ServerProcess] = []
    try:
        for name in ("a", "b"):
            nodes.append(_start(folder / f"node-{name}", db, config, folder / f"twistd-{name}.log"))
        a, b = nodes
        password = (a.data / "root-password").read_text().strip()
        status, body = a.request("POST", "/api/auth/login", {"name": "root", "password": password})
        assert status == 200, body
        yield Cluster(a, b, db, body["token"])
    finally:
        for node in nodes:
            if node.proc.poll() is None:
                node.kill(signal.SIGTERM)


def wait_for(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Poll another process's observable state until ``check`` holds; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def get(url: str, headers: dict[str, str] | None = None, limit: int = 1 << 20,
        until: Callable[[bytes], bool] | None = None) -> tuple[int, bytes]:
    """GET ``url``; read the body to its end, or to ``limit`` bytes, or until ``until(body)``."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers or {})
        response = conn.getresponse()
        body = bytearray()
        while len(body) < limit and not (until is not None and until(bytes(body))):
            chunk = response.read1(65536)
            if not chunk:
                break
            body += chunk
        return response.status, bytes(body)
    finally:
        conn.close()


def node_header(secret: str, path: str, node: str = "intruder:1") -> str:
    """A node signature of GET ``path`` made with ``secret`` (the real one, or a guess)."""
    return node_auth.sign(node_auth.derive_key(secret), "GET", path, node, int(time.time() * 1000))
