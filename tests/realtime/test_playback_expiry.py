"""The room session pushes fresh ``playback`` results before the URLs it sent expire (the earliest
``expires_at`` minus a minute), including the proxy's own signed-URL lifetime; nothing is pushed
for results that do not expire. Sans-IO: a ManualClock and a task.Clock drive time."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from synctv.bus import InProcessBus
from synctv.core import auth
from synctv.core.clock import ManualClock
from synctv.core.models import User
from synctv.core.playback import Update
from synctv.core.realtime import RealtimeLimits
from synctv.proxy.proxy_urls import ProxyLinks
from synctv.realtime.auth import Principal
from synctv.realtime.connections import ConnectionRuntime
from synctv.realtime.room import EXPIRY_MARGIN_MS
from synctv.store import DatabaseURL, open_store
from synctv.store.migrate import migrate
from tests.api.api_support import SECRET, make_actions
from tests.realtime.test_session import MemorySink, send

TTL_MS = 10 * 60 * 1000


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Any]:
    url = DatabaseURL.sqlite_file(tmp_path / "synctv.db")
    migrate(url)
    store = pytest_twisted.blockon(open_store(url))
    clock = ManualClock()
    actions = make_actions(store, clock, InProcessBus(), signers={"proxy": ProxyLinks(SECRET, ttl_ms=TTL_MS)})

    async def setup() -> dict[str, Any]:
        alice = await store.create_user(User(id=auth.new_id(), name="alice", role="user", password_hash="x"))
        view = await actions.create_room(alice, "lounge")
        item = await actions.add_media(alice, view.room.id, url="https://cdn.example/a.mp4")
        await actions.update_playback(alice, view.room.id, Update(action="media", version=0, media_id=item.id))
        timers = Clock()
        runtime = ConnectionRuntime(actions=actions, limits=RealtimeLimits(), scheduler=timers)
        sink = MemorySink()
        slot = runtime.reserve(view.room.id, alice.id)
        session = runtime.open(slot, Principal(user=alice, room=view.room, member=view.member), sink)
        return {"clock": clock, "timers": timers, "session": session, "sink": sink, "runtime": runtime}

    yield pytest_twisted.blockon(Deferred.fromCoroutine(setup()))
    pytest_twisted.blockon(store.close())


def _advance(env: Any, ms: int) -> None:
    env["clock"].advance(ms)
    env["timers"].advance(ms / 1000)


@pytest_twisted.ensureDeferred
async def test_fresh_urls_go_out_a_minute_before_the_old_ones_expire(env):
    await send(env["session"], {"type": "observe", "id": "p", "resource": "playback", "profile": {"modes": ["proxy"]}})
    [first] = env["sink"].take()
    [info] = first["result"]["infos"]
    assert info["expires_at"] == env["clock"]() + TTL_MS
    _advance(env, TTL_MS - EXPIRY_MARGIN_MS - 1000)
    assert env["sink"].take() == []
    _advance(env, 1000)
    await _until(lambda: env["sink"].frames)  # the push reads the store (a thread) first
    [pushed] = env["sink"].take()
    assert pushed["type"] == "playback"
    [fresh] = pushed["result"]["infos"]
    assert fresh["expires_at"] == env["clock"]() + TTL_MS > info["expires_at"]
    assert fresh["url"] != info["url"]
    assert json.dumps({**fresh, "url": "", "expires_at": 0}) == json.dumps({**info, "url": "", "expires_at": 0})


@pytest_twisted.ensureDeferred
async def test_results_that_do_not_expire_arm_nothing(env):
    await send(env["session"], {"type": "observe", "id": "p", "resource": "playback",
                                "profile": {"modes": ["direct"]}})
    env["sink"].take()
    _advance(env, TTL_MS * 2)
    assert [f for f in env["sink"].take() if f["type"] == "playback"] == []


async def _until(condition: Any, timeout_s: float = 10.0) -> None:
    """Wait (generously bounded) until ``condition()`` holds."""
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    deadline = reactor.seconds() + timeout_s
    while not condition():
        assert reactor.seconds() < deadline, "the condition did not come true in time"
        await deferLater(reactor, 0.01, lambda: None)
