"""Fixtures of the end-to-end suite: servers started as an operator would (``twistd -n synctv``
with a config file), on SQLite or on a fresh PostgreSQL database, and the media they play."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted

from synctv.testing import ServerDidNotStart, wait_serving
from tests.e2e.harness import FAST_CONFIG, make_clip, serve_folder
from tests.integration.processes import ServerProcess, child_env, twistd_args

BACKENDS = [pytest.param("sqlite"), pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture
def start_node(tmp_path: Path) -> Iterator[Any]:
    """``start_node(name, db=None)``: a ready server with the fast config; all stopped after."""
    started: list[ServerProcess] = []
    config = tmp_path / "synctv.toml"
    config.write_text(FAST_CONFIG)

    def start(name: str, db: str | None = None) -> ServerProcess:
        log = tmp_path / f"{name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(twistd_args(tmp_path / name, db, "--config", str(config)), stdout=out,
                                    stderr=subprocess.STDOUT, cwd=tmp_path, env=child_env())
        try:
            serving = wait_serving(proc, log)
        except ServerDidNotStart as e:
            pytest.fail(str(e))
        server = ServerProcess(proc, tmp_path / name, log, serving.http_url, serving.rtmp_url)
        started.append(server)
        return server

    yield start
    for server in started:
        if server.proc.poll() is None:
            server.kill(signal.SIGTERM)


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest) -> str | None:
    """None (the default SQLite in the data folder), or a fresh PostgreSQL database's URL."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("fresh_postgres_database")().dsn


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("clips")
    make_clip(folder / "one.mp4", 1.2)
    make_clip(folder / "two.mp4", 1.0)
    return folder


@pytest.fixture
def media_url(clips: Path) -> Iterator[str]:
    base, port = serve_folder(clips)
    yield base
    pytest_twisted.blockon(port.stopListening())
