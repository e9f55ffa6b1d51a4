"""Helpers to run the real server, ``twistd -n synctv``, as a child process on free loopback ports."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

from synctv.testing import wait_serving

TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


@attrs.define
class ServerProcess:
    proc: subprocess.Popen[bytes]
    data: Path
    log: Path
    url: str
    rtmp: str | None = None  # rtmp://host:port (the server's RTMP listener)

    def kill(self, sig: int = signal.SIGKILL) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=30)

    def request(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        """One HTTP request with urllib; returns (status, decoded JSON or text)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                status, raw, ctype = resp.status, resp.read(), resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            status, raw, ctype = e.code, e.read(), e.headers.get("Content-Type", "")
        return status, json.loads(raw) if "json" in ctype else raw.decode()


def twistd_args(data: Path, db: str | None, *extra: str) -> list[str]:
    args = [*TWISTD, "-n", "--pidfile", "", "synctv", "--data", str(data),
            "--http", "tcp:0:interface=127.0.0.1", "--rtmp", "tcp:0:interface=127.0.0.1"]
    if db:
        args += ["--db", db]
    return args + list(extra)


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    return env




@contextlib.contextmanager
def running_server(folder: Path) -> Iterator[ServerProcess]:
    """One real server with its data and log under ``folder``, stopped with SIGTERM on exit
    (for module-scoped fixtures whose tests never stop it)."""
    log = folder / "twistd.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(twistd_args(folder / "data", None), stdout=out, stderr=subprocess.STDOUT,
                                cwd=folder, env=child_env())
    try:
        yield ServerProcess(proc, folder / "data", log, wait_serving(proc, log).http_url)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
