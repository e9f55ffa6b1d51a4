"""The display, event and video verbs: what each sends and prints (docs/displays.md)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from synctv.cli.main import main
from synctv.cli.upload import Progress, human
from tests.cli.stub import StubServer, error

DISPLAY = {"id": "d1", "name": "left", "public_id": "PUB", "room_id": "r1", "page": "/display/PUB",
           "created_at": 1_763_712_000_000, "status": {"online": None}}
EVENT = {"id": "e1", "name": "show", "room_id": "r1", "media_id": "m1", "udp_port": 7777,
         "udp_payload": "SHOW_START", "allowed_sources": [], "cooldown_s": 10.0, "lead_ms": 5000,
         "last_triggered_at": None, "created_at": 1_763_712_000_000,
         "status": {"udp": "error", "port": 7777, "error": "address already in use"}}
STATE = {"media_id": "m1", "playing": True, "ended": False, "position": 0.0, "rate": 1.0,
         "at_ms": 1_763_712_005_000, "version": 3, "event_id": "e1"}


def test_display_add_prints_id_and_public_id(stub: StubServer, config_home: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """`display add NAME --room ROOM` posts {name, room} and prints `ID PUBLIC_ID`."""
    stub.on("POST", "/api/displays", (201, {"display": DISPLAY}))
    assert main(["display", "add", "left", "--room", "wall", "--server", stub.url]) == 0
    assert capsys.readouterr().out == "d1 PUB\n"
    assert stub.requests[0].body == {"name": "left", "room": "wall"}
    assert main(["display", "add", "left", "--room", "wall", "--server", stub.url, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["id"], data["public_id"], data["display"]) == ("d1", "PUB", DISPLAY)


def test_event_add_sends_every_option(stub: StubServer, config_home: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """`event add` maps its options onto the create body and prints the id."""
    stub.on("POST", "/api/events", (201, {"event": EVENT}))
    argv = ["event", "add", "show", "--room", "wall", "--media", "m1", "--udp-port", "7777",
            "--udp-payload", "SHOW_START", "--cooldown", "10", "--lead-ms", "5000", "--allow", "10.0.0.0/8",
            "--server", stub.url]
    assert main(argv) == 0
    assert capsys.readouterr().out == "e1\n"
    assert stub.requests[0].body == {"name": "show", "room": "wall", "media": "m1", "udp_port": 7777,
                                     "udp_payload": "SHOW_START", "cooldown_s": 10.0, "lead_ms": 5000,
                                     "allowed_sources": ["10.0.0.0/8"]}


@pytest.mark.parametrize("bad", [["--udp-port", "0"], ["--udp-port", "x"], ["--lead-ms", "-5"]])
def test_event_add_refuses_bad_numbers(stub: StubServer, config_home: Path, bad: list[str]) -> None:
    """Out-of-range ports and negative leads are usage errors (exit 2), nothing is sent."""
    assert main(["event", "add", "show", "--room", "w", "--media", "m", *bad, "--server", stub.url]) == 2
    assert stub.requests == []


def test_event_list_shows_the_port_status(stub: StubServer, config_home: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A port that could not be bound is visible in the plain table."""
    stub.on("GET", "/api/events", (200, {"events": [EVENT]}))
    assert main(["event", "list", "--server", stub.url]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["ID", "NAME", "ROOM", "MEDIA", "COOLDOWN", "LEAD", "UDP"]
    assert "7777 'SHOW_START' (error: address already in use)" in out[1]


def test_event_trigger_by_name_with_force(stub: StubServer, config_home: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """`event trigger NAME --force` posts to /trigger_by_name/NAME?force=1 and says when it starts."""
    stub.on("POST", "/trigger_by_name/big%20show?force=1",
            (200, {"event": {**EVENT, "name": "big show"}, "state": STATE, "at_ms": STATE["at_ms"],
                   "starts_in_ms": 5000}))
    assert main(["event", "trigger", "big show", "--force", "--server", stub.url]) == 0
    assert capsys.readouterr().out.startswith("event big show starts in 5.0s (at ")


def test_a_cooling_event_is_exit_1_with_the_message(stub: StubServer, config_home: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """429 is one line on stderr and exit status 1."""
    stub.on("POST", "/trigger_by_name/show", (429, error("rate_limited", "event 'show' is cooling down")))
    assert main(["event", "trigger", "show", "--server", stub.url]) == 1
    err = capsys.readouterr().err
    assert err.startswith("synctv: rate limited: event 'show' is cooling down") and err.count("\n") == 1


def test_video_upload_of_a_missing_file_is_one_line(stub: StubServer, config_home: Path,
                                                    capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A file that cannot be read fails before anything is sent."""
    assert main(["video", "upload", str(tmp_path / "nope.mp4"), "--server", stub.url]) == 1
    assert capsys.readouterr().err.startswith("synctv: cannot read ")
    assert stub.requests == []


def test_progress_rewrites_one_line() -> None:
    """The progress line is rewritten at most ten times a second and always at the end."""
    times = iter([0.0, 0.05, 0.2, 0.21])
    out = io.StringIO()
    progress = Progress("a.mp4", 4 * 1024 * 1024, out, clock=lambda: next(times))
    for _ in range(4):
        progress.advance(1024 * 1024)
    progress.done()
    lines = out.getvalue().split("\r")[1:]
    assert lines == ["uploading a.mp4: 1.0 MiB of 4.0 MiB (25%)", "uploading a.mp4: 3.0 MiB of 4.0 MiB (75%)",
                     "uploading a.mp4: 4.0 MiB of 4.0 MiB (100%)\n"]
    assert human(512) == "512 B" and human(3 * 2**30) == "3.0 GiB"
