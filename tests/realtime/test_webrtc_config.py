"""``[webrtc] ice_servers``: parsed into RTCIceServer objects, bad values refused with one clear
line, and sent to members in the WebSocket ``welcome`` (docs/realtime.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.task import Clock

from synctv.bus import InProcessBus
from synctv.config import ConfigError, WebRTCConfig, load_config
from synctv.realtime.connections import ConnectionRuntime
from tests.realtime.test_session import LIMITS, Env, MemorySink, _env


@pytest.fixture
def room_env(tmp_path: Path) -> Iterator[Env]:
    e = _env(tmp_path, InProcessBus())
    yield e
    pytest_twisted.blockon(e.actions.store.close())


def _load(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "synctv.toml"
    path.write_text(text)
    return load_config(path, {"data": str(tmp_path / "data"), "http": "tcp:0", "rtmp": "tcp:0"})


def test_none_by_default_and_urls_or_tables_are_accepted(tmp_path: Path) -> None:
    """No [webrtc] section: no ICE servers (a LAN needs none). A URL string and a TURN table with
    credentials become RTCIceServer objects with a list of urls."""
    assert _load(tmp_path, "").webrtc == WebRTCConfig()
    config = _load(tmp_path, '[webrtc]\nice_servers = ["stun:stun.example.org:3478", '
                             '{urls = ["turn:turn.example.org:3478", "turns:turn.example.org:5349"], '
                             'username = "u", credential = "c"}]\n')
    assert config.webrtc.ice_servers == (
        {"urls": ["stun:stun.example.org:3478"]},
        {"urls": ["turn:turn.example.org:3478", "turns:turn.example.org:5349"], "username": "u", "credential": "c"},
    )


@pytest.mark.parametrize(("value", "needle"), [
    ('"stun:x"', "must be a list"),
    ('["http://stun.example.org"]', "is not a STUN or TURN URL"),
    ('["turn:turn.example.org"]', "TURN server needs username and credential"),
    ('[{urls = "stun:a", password = "x"}]', "must be a list"),
    ('[{urls = []}]', "must be a list"),
    ('[{urls = "stun:a", username = 5}]', "username must be a string"),
])
def test_bad_ice_servers_stop_with_one_clear_line(tmp_path: Path, value: str, needle: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, f"[webrtc]\nice_servers = {value}\n")
    assert needle in str(caught.value) and "[webrtc] ice_servers" in str(caught.value)


@pytest_twisted.ensureDeferred
async def test_the_welcome_carries_the_ice_servers(room_env: Env) -> None:
    """Every connection's welcome has ``webrtc.ice_servers`` as the runtime was given them."""
    env = room_env
    servers = ({"urls": ["stun:stun.example.org:3478"]},)
    runtime = ConnectionRuntime(actions=env.actions, limits=LIMITS, scheduler=Clock(), bus=env.bus,
                                node_id="n1", ice_servers=servers)
    sink = MemorySink()
    session = runtime.open(runtime.reserve(env.room_id, env.users["bob"].id), await env.principal("bob"), sink)
    session.welcome()
    welcome = sink.of("welcome")[0]
    assert welcome["webrtc"] == {"ice_servers": [{"urls": ["stun:stun.example.org:3478"]}]}
    assert json.dumps(welcome)  # plain JSON

