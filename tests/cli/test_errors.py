"""Failures: one stderr line each and a distinct exit status per kind (docs/cli.md)."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from synctv.cli.main import main
from tests.cli.stub import StubServer, error

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that was just bound and released, so connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A listening socket that never accepts: the connection succeeds, no answer ever comes."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_unreachable_server_exit_3_one_line(config_home: Path, closed_port: int,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Connection refused: exit 3 and exactly the documented hint line."""
    server = f"http://127.0.0.1:{closed_port}"
    assert main(["--server", server, "room", "list"]) == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (f"synctv: cannot reach {server}: connection refused; is the server running? "
                            "(set --server or SYNCTV_SERVER)\n")


def test_default_server_is_localhost_8080(config_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With no --server and no SYNCTV_SERVER the client talks to http://127.0.0.1:8080."""
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 8080)) == 0:
            pytest.skip("something listens on 127.0.0.1:8080")
    assert main(["room", "list"]) == 3
    assert "cannot reach http://127.0.0.1:8080: connection refused" in capsys.readouterr().err


def test_timeout_exit_3_with_clear_message(config_home: Path, silent_server: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """A server that never answers: exit 3 once --timeout passes, one line naming the timeout."""
    assert main(["--server", silent_server, "--timeout", "0.2", "room", "list"]) == 3
    err = capsys.readouterr().err.splitlines()
    assert err == [f"synctv: cannot reach {silent_server}: no answer within 0.2s (use --timeout to wait longer)"]


@pytest.mark.parametrize(("status", "body", "code", "expected"), [
    (401, error("unauthorized", "token expired"), 4, "not logged in"),
    (403, error("forbidden", "missing permission manage_room"), 4, "forbidden: missing permission manage_room"),
    (404, error("not_found", "no room 'x'"), 5, "not found: no room 'x'"),
    (409, error("conflict", "the name 'x' is taken"), 6, "conflict: the name 'x' is taken"),
    (413, error("payload_too_large", "body over 1 MiB"), 1, "request too large: body over 1 MiB"),
    (400, error("bad_request", "bad kind", field="kind"), 1, "bad request: bad kind (field kind)"),
    (429, error("rate_limited", "slow down"), 1, "rate limited: slow down"),
    (500, error("internal", "boom\nsecond line"), 1, "server error (HTTP 500 internal): boom second line"),
    (503, error("unavailable", "the database does not answer"), 1, "the database does not answer"),
])
def test_http_errors_map_to_exit_codes(stub: StubServer, config_home: Path,
                                       capsys: pytest.CaptureFixture[str],
                                       status: int, body: dict, code: int, expected: str) -> None:
    """Each error status gives its exit code and one stderr line with the server's message."""
    stub.on("POST", "/api/rooms", (status, body))
    assert main(["--server", stub.url, "room", "create", "x"]) == code
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.splitlines()
    assert len(err) == 1 and err[0].startswith("synctv: ") and expected in err[0]


def test_401_without_any_token_says_not_logged_in(stub: StubServer, config_home: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """With no token at all, a 401 tells the user to log in; no Authorization header was sent."""
    stub.on("GET", "/api/rooms", (401, error("unauthorized", "no token")))
    assert main(["--server", stub.url, "room", "list"]) == 4
    assert capsys.readouterr().err == f"synctv: {stub.url}: not logged in; run `synctv login USER`\n"
    assert "authorization" not in stub.requests[0].headers


def test_cli_import_does_not_load_twisted() -> None:
    """`import synctv.cli.main` stays light: Twisted is not imported (the command must start fast)."""
    code = ("import sys, synctv.cli.main; "
            "bad = sorted(m for m in sys.modules if m == 'twisted' or m.startswith('twisted.')); "
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={"PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_console_entry_runs_as_module(closed_port: int, tmp_path: Path) -> None:
    """`python -m synctv.cli` exits with main()'s status and one stderr line."""
    env = {"PYTHONPATH": str(ROOT), "XDG_CONFIG_HOME": str(tmp_path), "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "synctv.cli", "--server", f"http://127.0.0.1:{closed_port}",
                           "room", "list"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3
    assert len(proc.stderr.splitlines()) == 1 and proc.stdout == ""
