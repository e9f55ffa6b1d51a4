"""Fixtures that run the real server and the real ``synctv`` command."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from synctv.testing import ServerDidNotStart, wait_serving
from tests.integration.processes import ServerProcess, child_env, twistd_args


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Any]:
    """A factory: ``start_server(data=None, db=None, extra=())`` -> a ready ServerProcess (``extra``: more
    twistd options, e.g. ``("--config", path)``); all are killed after."""
    started: list[ServerProcess] = []

    def start(data: Path | None = None, db: str | None = None, timeout: float = 60.0,
              extra: tuple[str, ...] = ()) -> ServerProcess:
        data = data or tmp_path / "data"
        log = tmp_path / f"twistd-{len(started)}.log"
        out = open(log, "wb")
        proc = subprocess.Popen(twistd_args(data, db, *extra), stdout=out, stderr=subprocess.STDOUT,
                                cwd=tmp_path, env=child_env())
        out.close()
        try:
            serving = wait_serving(proc, log, timeout)
        except ServerDidNotStart as e:
            pytest.fail(str(e))
        server = ServerProcess(proc, data, log, serving.http_url, serving.rtmp_url)
        started.append(server)
        return server

    yield start
    for server in started:
        if server.proc.poll() is None:
            server.kill(signal.SIGTERM)


@pytest.fixture
def cli(tmp_path: Path) -> Any:
    """``cli(server, *args)`` runs the real ``synctv`` command; returns the CompletedProcess."""
    env = child_env()
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    env.pop("SYNCTV_TOKEN", None)
    env.pop("SYNCTV_SERVER", None)

    def run(server: ServerProcess, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "synctv.cli", "--server", server.url, *args],
                              capture_output=True, text=True, env=env, timeout=60)
        if check and done.returncode != 0:
            pytest.fail(f"synctv {' '.join(args)} exited {done.returncode}: {done.stderr}")
        return done

    return run
