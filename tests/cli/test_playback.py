"""`synctv playback set`: the order of updates, version chaining and the one stale_version retry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synctv.cli.main import main
from tests.cli.stub import Recorded, StubServer, error, state

PATH = "/api/rooms/r1/playback-state"


def echo_patch(rec: Recorded) -> tuple[int, dict]:
    """A server that accepts any update and bumps the version by one."""
    body = rec.body
    return 200, state(body["version"] + 1, media_id=body.get("media_id", "m1"),
                      playing=body["action"] == "play", position=body.get("position", 0.0),
                      rate=body.get("rate", 1.0))


def patches(stub: StubServer) -> list[dict]:
    return [r.body for r in stub.requests if r.method == "PATCH"]


def test_updates_are_ordered_media_rate_play_and_chained(stub: StubServer, config_home: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """GET for the version, then media -> rate -> play(position), each on the previous answer's version;
    the final state is printed."""
    stub.on("GET", PATH, (200, state(4)))
    stub.on("PATCH", PATH, echo_patch)
    assert main(["--server", stub.url, "playback", "set", "r1", "--play", "--position", "30",
                 "--rate", "1.5", "--media", "m2", "--json"]) == 0
    assert [r.method for r in stub.requests] == ["GET", "PATCH", "PATCH", "PATCH"]
    assert patches(stub) == [
        {"action": "media", "media_id": "m2", "version": 4},
        {"action": "rate", "rate": 1.5, "version": 5},
        {"action": "play", "position": 30.0, "version": 6},
    ]
    final = json.loads(capsys.readouterr().out)
    assert final["version"] == 7 and final["playing"] is True


@pytest.mark.parametrize(("argv", "expected"), [
    (["--position", "12.5"], [{"action": "seek", "position": 12.5}]),
    (["--pause"], [{"action": "pause"}]),
    (["--pause", "--position", "3"], [{"action": "pause", "position": 3.0}]),
    (["--media", "m9"], [{"action": "media", "media_id": "m9"}]),
])
def test_single_updates(stub: StubServer, config_home: Path, argv: list[str], expected: list[dict]) -> None:
    """A position alone is a seek; --pause/--play carry the position; --media alone switches."""
    stub.on("GET", PATH, (200, state(1)))
    stub.on("PATCH", PATH, echo_patch)
    assert main(["--server", stub.url, "playback", "set", "r1", *argv]) == 0
    assert patches(stub) == [{**body, "version": 1} for body in expected]


def test_plain_output_is_the_final_state_line(stub: StubServer, config_home: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Plain `playback set` prints the same line as `playback show` for the final state."""
    stub.on("GET", PATH, (200, state(1)))
    stub.on("PATCH", PATH, echo_patch)
    assert main(["--server", stub.url, "playback", "set", "r1", "--play", "--position", "5"]) == 0
    line = capsys.readouterr().out.rstrip("\n")
    assert line.startswith("playing  5.0s at ") and line.endswith("media m1  v2")


def test_stale_version_is_retried_once_from_the_error_detail(stub: StubServer, config_home: Path) -> None:
    """When someone else moved the state, the refused step is resent once on the version carried in
    the error's detail, and the chain continues from its answer."""
    stub.on("GET", PATH, (200, state(4)))
    stub.on("PATCH", PATH,
            echo_patch,  # media: 4 -> 5
            (409, error("stale_version", "version 5 is not current", detail=state(9))),
            echo_patch,  # rate retried on 9 -> 10
            echo_patch)  # play on 10 -> 11
    assert main(["--server", stub.url, "playback", "set", "r1", "--media", "m2", "--rate", "2",
                 "--play"]) == 0
    assert [b["version"] for b in patches(stub)] == [4, 5, 9, 10]
    assert [b["action"] for b in patches(stub)] == ["media", "rate", "rate", "play"]


def test_stale_version_twice_fails_with_exit_6(stub: StubServer, config_home: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """A step refused as stale twice in a row stops the command: exit 6, one line, no third try."""
    stub.on("GET", PATH, (200, state(4)))
    stub.on("PATCH", PATH,
            (409, error("stale_version", "version 4 is not current", detail=state(6))),
            (409, error("stale_version", "version 6 is not current", detail=state(8))))
    assert main(["--server", stub.url, "playback", "set", "r1", "--position", "3"]) == 6
    assert [b["version"] for b in patches(stub)] == [4, 6]
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("synctv: stale version:")


def test_stale_version_without_detail_refetches(stub: StubServer, config_home: Path) -> None:
    """If the 409 carries no state, the retry is based on a fresh GET."""
    stub.on("GET", PATH, (200, state(4)), (200, state(12)))
    stub.on("PATCH", PATH, (409, error("stale_version", "stale")), echo_patch)
    assert main(["--server", stub.url, "playback", "set", "r1", "--pause"]) == 0
    assert [b["version"] for b in patches(stub)] == [4, 12]


def test_other_errors_are_not_retried(stub: StubServer, config_home: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A 400 (rate out of range) fails at once with exit 1."""
    stub.on("GET", PATH, (200, state(4)))
    stub.on("PATCH", PATH, (400, error("bad_request", "rate must be within 0.25-4.0", field="rate")))
    assert main(["--server", stub.url, "playback", "set", "r1", "--rate", "9"]) == 1
    assert len(patches(stub)) == 1
    assert "rate must be within" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [[], ["--play", "--pause"], ["--position", "nan"], ["--rate", "fast"]])
def test_bad_playback_set_arguments_are_usage_errors(stub: StubServer, config_home: Path,
                                                     capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    """Nothing to change, --play with --pause, or a non-finite number: exit 2, one line, nothing sent."""
    assert main(["--server", stub.url, "playback", "set", "r1", *argv]) == 2
    assert len(capsys.readouterr().err.splitlines()) == 1
    assert stub.requests == []
