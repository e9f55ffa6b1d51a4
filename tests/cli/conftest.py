"""Fixtures for the CLI tests: the stand-in server (tests/cli/stub.py) and a private config home."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.stub import StubServer


@pytest.fixture(scope="session")
def _stub_server() -> Iterator[StubServer]:
    server = StubServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()
    server.thread.join()


@pytest.fixture
def stub(_stub_server: StubServer) -> StubServer:
    """The stand-in server with no routes and no recorded requests."""
    _stub_server.routes.clear()
    _stub_server.requests.clear()
    return _stub_server


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private XDG config home and an environment free of synctv/proxy settings."""
    home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    for name in ("SYNCTV_SERVER", "SYNCTV_TOKEN", "SYNCTV_TIMEOUT", "http_proxy", "HTTP_PROXY",
                 "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    return home
