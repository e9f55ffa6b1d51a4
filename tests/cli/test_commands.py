"""The verbs: what each sends (method, path, body) and what it prints, plain and --json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synctv.cli.main import main
from tests.cli.stub import MEMBER, ROOM, USER, StubServer, error, state

MEDIA = {"id": "m1", "room_id": "r1", "sort": 1, "title": "Sintel", "url": "http://cdn/sintel.mp4",
         "provider": "direct", "provider_data": {}, "headers": {}, "subtitles": [], "duration": 888.0,
         "created_by": "u1", "created_at": 1_763_712_000_000}


def test_room_create_plain_prints_only_the_id(stub: StubServer, config_home: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """`ROOM=$(synctv room create x)` works: stdout is the id and a newline, nothing else."""
    stub.on("POST", "/api/rooms", (201, {"room": ROOM, "member": MEMBER}))
    assert main(["room", "create", "movie night", "--kind", "watch", "--password", "pw",
                 "--server", stub.url]) == 0
    captured = capsys.readouterr()
    assert captured.out == "r1\n"
    assert captured.err == ""
    assert stub.requests[0].body == {"name": "movie night", "password": "pw", "kind": "watch"}


def test_json_prints_one_object_carrying_the_id(stub: StubServer, config_home: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """--json (before or after the verb) prints exactly one JSON object; created things carry `id`."""
    stub.on("POST", "/api/rooms", (201, {"room": ROOM, "member": MEMBER}))
    assert main(["--json", "--server", stub.url, "room", "create", "movie night"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    data = json.loads(out)
    assert data["id"] == "r1" and data["room"] == ROOM and data["member"] == MEMBER
    assert stub.requests[0].body == {"name": "movie night"}


def test_lists_in_json_are_the_server_answer(stub: StubServer, config_home: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """`room list --json` prints {"rooms": [...]} as the server returned it."""
    stub.on("GET", "/api/rooms", (200, {"rooms": [ROOM]}))
    assert main(["room", "list", "--server", stub.url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"rooms": [ROOM]}


def test_plain_lists_are_tables(stub: StubServer, config_home: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    """Plain `room list` / `user list` / `media list` print a header and one row per item."""
    stub.on("GET", "/api/rooms", (200, {"rooms": [ROOM]}))
    stub.on("GET", "/api/users", (200, {"users": [USER]}))
    stub.on("GET", "/api/rooms/r1/media", (200, {"media": [MEDIA]}))
    for argv in (["room", "list"], ["user", "list"], ["media", "list", "r1"]):
        assert main([*argv, "--server", stub.url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "KIND", "PASSWORD", "CREATED"]
    assert lines[1].startswith("r1  movie night  watch  no")
    assert lines[2].split()[:3] == ["ID", "NAME", "ROLE"] and lines[3].split()[:3] == ["u1", "root", "root"]
    assert lines[4].split() == ["ID", "TITLE", "PROVIDER", "DURATION", "URL"]
    assert lines[5].split() == ["m1", "Sintel", "direct", "888.0s", "http://cdn/sintel.mp4"]


def test_user_add_sends_role_and_prints_id(stub: StubServer, config_home: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """`user add NAME --password P --role admin` POSTs /api/users and prints the new id."""
    stub.on("POST", "/api/users", (201, {"user": {**USER, "id": "u2", "name": "alice", "role": "admin"}}))
    assert main(["--server", stub.url, "user", "add", "alice", "--password", "pw", "--role", "admin"]) == 0
    assert capsys.readouterr().out == "u2\n"
    assert stub.requests[0].body == {"name": "alice", "password": "pw", "role": "admin"}


def test_room_show_join_delete(stub: StubServer, config_home: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    """show GETs the room, join POSTs {password}, delete DELETEs and prints what was deleted."""
    stub.on("GET", "/api/rooms/r1", (200, {"room": ROOM, "member": None}))
    stub.on("POST", "/api/rooms/r1/join", (200, {"room": ROOM, "member": {**MEMBER, "role": "member"}}))
    stub.on("DELETE", "/api/rooms/r1", (200, {"deleted": "r1"}))
    assert main(["--server", stub.url, "room", "show", "r1"]) == 0
    assert main(["--server", stub.url, "room", "join", "r1", "--password", "pw"]) == 0
    assert main(["--server", stub.url, "room", "delete", "r1"]) == 0
    out = capsys.readouterr().out
    assert "name:      movie night" in out and "you:       not a member" in out
    assert "joined movie night (r1) as member" in out
    assert out.endswith("deleted r1\n")
    assert stub.requests[1].body == {"password": "pw"}


def test_media_add_parses_headers_and_prints_id(stub: StubServer, config_home: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """--header 'K: V' (repeatable) becomes the headers object; only given fields are sent."""
    stub.on("POST", "/api/rooms/r1/media", (201, {"media": MEDIA}))
    assert main(["--server", stub.url, "media", "add", "r1", "--url", "http://cdn/sintel.mp4",
                 "--header", "Referer: http://site/", "--header", "X-Token:abc: def"]) == 0
    assert capsys.readouterr().out == "m1\n"
    assert stub.requests[0].body == {"url": "http://cdn/sintel.mp4",
                                     "headers": {"Referer": "http://site/", "X-Token": "abc: def"}}


@pytest.mark.parametrize("header", ["no colon", ": empty name", "two words: v"])
def test_bad_header_is_a_usage_error(stub: StubServer, config_home: Path,
                                     capsys: pytest.CaptureFixture[str], header: str) -> None:
    """A --header that is not 'Name: value' exits 2 with one stderr line and sends nothing."""
    assert main(["--server", stub.url, "media", "add", "r1", "--url", "u", "--header", header]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "--header" in err[0]
    assert stub.requests == []


def test_media_remove(stub: StubServer, config_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """media remove DELETEs /api/rooms/{room}/media/{media}."""
    stub.on("DELETE", "/api/rooms/r1/media/m1", (200, {"deleted": "m1"}))
    assert main(["--server", stub.url, "media", "remove", "r1", "m1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"deleted": "m1"}


def test_path_segments_are_url_encoded(stub: StubServer, config_home: Path) -> None:
    """Room names with spaces, slashes and unicode are percent-encoded as one path segment."""
    stub.on("GET", "/api/rooms/movie%20night%2F%C3%BC%3F/media", (200, {"media": []}))
    stub.on("DELETE", "/api/rooms/movie%20night%2F%C3%BC%3F/media/a%2Fb", (200, {"deleted": "a/b"}))
    assert main(["--server", stub.url, "media", "list", "movie night/ü?"]) == 0
    assert main(["--server", stub.url, "media", "remove", "movie night/ü?", "a/b"]) == 0
    assert [r.path for r in stub.requests] == ["/api/rooms/movie%20night%2F%C3%BC%3F/media",
                                               "/api/rooms/movie%20night%2F%C3%BC%3F/media/a%2Fb"]


def test_server_option_env_and_precedence(stub: StubServer, config_home: Path,
                                          monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """SYNCTV_SERVER is used when --server is absent; --server (before or after the verb) wins."""
    stub.on("GET", "/api/rooms", (200, {"rooms": []}))
    monkeypatch.setenv("SYNCTV_SERVER", stub.url)
    assert main(["room", "list"]) == 0
    assert len(stub.requests) == 1
    monkeypatch.setenv("SYNCTV_SERVER", "http://127.0.0.1:9")  # nothing listens on the discard port
    assert main(["--server", stub.url, "room", "list"]) == 0
    assert main(["room", "list", "--server", stub.url]) == 0
    assert main(["room", "--server", stub.url, "list"]) == 0
    assert len(stub.requests) == 4
    assert "no rooms" in capsys.readouterr().out


def test_bad_server_url_is_a_usage_error(config_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--server without an http(s) scheme exits 2 with one line."""
    assert main(["--server", "localhost:8080", "room", "list"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "bad server URL" in err[0]


def test_playback_show_plain_line(stub: StubServer, config_home: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    """playback show prints one line: state word, position at server time, rate, media, version."""
    stub.on("GET", "/api/rooms/r1/playback-state",
            (200, state(7, playing=True, position=12.3, media_id="m1")))
    assert main(["--server", stub.url, "playback", "show", "r1"]) == 0
    line = capsys.readouterr().out.rstrip("\n")
    assert line.startswith("playing  12.3s at ")
    assert line.endswith(" / rate 1.0  media m1  v7")


def test_missing_verb_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    """No verb is a usage error (2, one line); --help exits 0."""
    assert main([]) == 2
    assert len(capsys.readouterr().err.splitlines()) == 1
    assert main(["room", "create", "--help"]) == 0
    assert "--kind" in capsys.readouterr().out


def test_error_body_without_json_still_one_line(stub: StubServer, config_home: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """A proxy's HTML 502 gives exit 1 and one line."""
    stub.on("GET", "/api/rooms", (502, b"<html>\n<body>Bad Gateway</body>\n</html>"))
    assert main(["--server", stub.url, "room", "list"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "502" in err[0] and "Bad Gateway" in err[0]


def test_whoami(stub: StubServer, config_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """whoami GETs /api/auth/me."""
    stub.on("GET", "/api/auth/me", (200, {"user": USER}))
    assert main(["--server", stub.url, "whoami"]) == 0
    assert capsys.readouterr().out == "root (root) u1\n"


def test_unexpected_success_body_is_one_line(stub: StubServer, config_home: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """A 2xx answer that is not a JSON object (or lacks the created id) is exit 1, one line."""
    stub.on("GET", "/api/rooms", (200, b"ok"))
    stub.on("POST", "/api/rooms", (201, {"room": {}}))
    assert main(["--server", stub.url, "room", "list"]) == 1
    assert main(["--server", stub.url, "room", "create", "x"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "room.id" in err[1]


def test_forbidden_room_password_exit_4(stub: StubServer, config_home: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """A 403 (wrong room password) exits 4 with the server's message."""
    stub.on("POST", "/api/rooms/r1/join", (403, error("forbidden", "wrong room password")))
    assert main(["--server", stub.url, "room", "join", "r1"]) == 4
    assert capsys.readouterr().err == "synctv: forbidden: wrong room password\n"


def test_room_set_keeps_other_settings_and_sends_the_playlist_mode(stub: StubServer, config_home: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """`room set ROOM --playlist loop` reads the room, then PATCHes its settings with the mode
    added and every other key kept; a mode synctv does not know is refused before any request."""
    room = {**ROOM, "settings": {"wait_s": 5}}
    stub.on("GET", "/api/rooms/r1", (200, {"room": room, "member": MEMBER}))
    stub.on("PATCH", "/api/rooms/r1", (200, {"room": {**room, "settings": {"wait_s": 5, "playlist": "loop"}}}))
    assert main(["room", "set", "r1", "--playlist", "loop", "--server", stub.url]) == 0
    assert stub.requests[-1].body == {"settings": {"wait_s": 5, "playlist": "loop"}}
    assert '"playlist": "loop"' in capsys.readouterr().out
    sent = len(stub.requests)
    assert main(["room", "set", "r1", "--playlist", "shuffle", "--server", stub.url]) != 0
    assert len(stub.requests) == sent
