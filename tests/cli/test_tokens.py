"""Token storage: where tokens live, file mode, atomic replacement, SYNCTV_TOKEN precedence."""

from __future__ import annotations

import io
import json
import stat
import sys
from pathlib import Path

import pytest

from synctv.cli.main import main
from synctv.cli.tokens import TokenStore, config_dir, resolve_token
from tests.cli.stub import USER, StubServer, error


def login_answer(token: str = "tok-1") -> tuple[int, dict]:
    return 200, {"token": token, "expires_at": 1_763_798_400_000, "user": USER}


def test_login_stores_token_0600_and_later_commands_send_it(stub: StubServer, config_home: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """login POSTs {name, password}, stores the token 0600 keyed by server, and the next command
    sends it as a Bearer token."""
    stub.on("POST", "/api/auth/login", login_answer("tok-1"))
    stub.on("GET", "/api/rooms", (200, {"rooms": []}))
    assert main(["login", "root", "--password", "pw", "--server", stub.url]) == 0
    path = config_home / "synctv" / "tokens.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert json.loads(path.read_text())[stub.url]["token"] == "tok-1"
    assert stub.requests[0].body == {"name": "root", "password": "pw"}
    assert "authorization" not in stub.requests[0].headers
    assert "tok-1" not in capsys.readouterr().out

    assert main(["room", "list", "--server", stub.url]) == 0
    assert stub.requests[1].headers["authorization"] == "Bearer tok-1"


def test_login_reads_password_line_from_stdin_when_not_a_tty(stub: StubServer, config_home: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --password and with a pipe on stdin, the first line (without its newline) is the password."""
    monkeypatch.setattr(sys, "stdin", io.StringIO("s3cret pass\nignored\n"))
    stub.on("POST", "/api/auth/login", login_answer())
    assert main(["--server", stub.url, "login", "root"]) == 0
    assert stub.requests[0].body == {"name": "root", "password": "s3cret pass"}


def test_login_with_empty_stdin_is_a_usage_error(stub: StubServer, config_home: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """No --password and nothing on stdin: exit 2 with one line, nothing sent."""
    assert main(["--server", stub.url, "login", "root"]) == 2
    assert len(capsys.readouterr().err.splitlines()) == 1
    assert stub.requests == []


def test_wrong_password_at_login_shows_server_message(stub: StubServer, config_home: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A 401 at login is the server's message (not 'run synctv login'), exit 4, nothing stored."""
    stub.on("POST", "/api/auth/login", (401, error("unauthorized", "wrong name or password")))
    assert main(["--server", stub.url, "login", "root", "--password", "nope"]) == 4
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "wrong name or password" in err[0] and "synctv login" not in err[0]
    assert not (config_home / "synctv" / "tokens.json").exists()


def test_tokens_are_kept_per_server_and_logout_removes_one(stub: StubServer, config_home: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Logging in to a second server keeps the first one's token; logout forgets only its server."""
    store = TokenStore.from_env({"XDG_CONFIG_HOME": str(config_home)})
    store.put("http://other:8080", "tok-other", user="alice")
    stub.on("POST", "/api/auth/login", login_answer("tok-1"))
    assert main(["--server", stub.url + "/", "login", "root", "--password", "pw"]) == 0
    assert store.get(stub.url) == "tok-1"  # trailing slash normalized away
    assert store.get("http://other:8080") == "tok-other"

    assert main(["--server", stub.url, "logout"]) == 0
    assert store.get(stub.url) is None
    assert store.get("http://other:8080") == "tok-other"
    assert main(["--server", stub.url, "logout", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["logged_out"] is False


def test_synctv_token_env_overrides_the_stored_token(stub: StubServer, config_home: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """SYNCTV_TOKEN wins over the token file."""
    TokenStore.from_env({"XDG_CONFIG_HOME": str(config_home)}).put(stub.url, "stored")
    monkeypatch.setenv("SYNCTV_TOKEN", "from-env")
    stub.on("GET", "/api/rooms", (200, {"rooms": []}))
    assert main(["--server", stub.url, "room", "list"]) == 0
    assert stub.requests[0].headers["authorization"] == "Bearer from-env"


def test_refused_env_token_names_the_variable(stub: StubServer, config_home: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """A 401 with SYNCTV_TOKEN set says that variable's token was refused."""
    monkeypatch.setenv("SYNCTV_TOKEN", "bad")
    stub.on("GET", "/api/rooms", (401, error("unauthorized", "token expired")))
    assert main(["--server", stub.url, "room", "list"]) == 4
    assert "SYNCTV_TOKEN" in capsys.readouterr().err


def test_corrupt_token_file_is_one_line_error(stub: StubServer, config_home: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """A token file that is not ours gives exit 1 and a line naming the file, not a traceback."""
    path = config_home / "synctv" / "tokens.json"
    path.parent.mkdir(parents=True)
    path.write_text("[not a dict")
    assert main(["--server", stub.url, "room", "list"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and str(path) in err[0]


def test_write_replaces_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    """Writes go through a temporary file renamed over the old one: only tokens.json remains, 0600,
    even when the old file had looser permissions."""
    store = TokenStore(tmp_path / "synctv" / "tokens.json")
    store.put("http://a:1", "one")
    store.path.chmod(0o644)
    store.put("http://b:2", "two")
    assert sorted(p.name for p in store.path.parent.iterdir()) == ["tokens.json"]
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert store.load().keys() == {"http://a:1", "http://b:2"}


def test_config_dir_follows_xdg_and_falls_back_to_home(tmp_path: Path) -> None:
    """$XDG_CONFIG_HOME/synctv when absolute; ~/.config/synctv when unset or relative."""
    assert config_dir({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "synctv"
    assert config_dir({"HOME": str(tmp_path)}) == tmp_path / ".config" / "synctv"
    assert config_dir({"HOME": str(tmp_path), "XDG_CONFIG_HOME": "rel"}) == tmp_path / ".config" / "synctv"


def test_resolve_token_reports_its_source(tmp_path: Path) -> None:
    """The source is SYNCTV_TOKEN, the file path, or None when there is no token."""
    store = TokenStore(tmp_path / "tokens.json")
    assert resolve_token("http://a:1", {}, store) == (None, None)
    store.put("http://a:1", "t")
    assert resolve_token("http://a:1", {}, store) == ("t", str(store.path))
    assert resolve_token("http://a:1", {"SYNCTV_TOKEN": "e"}, store) == ("e", "SYNCTV_TOKEN")
