"""``notice`` bus messages (a live publish browsers cannot decode) reach every connection of the
room on every node, whatever it observes; a malformed one is dropped without harm."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import pytest_twisted

from synctv.bus import InProcessBus, room_channel
from tests.realtime.test_session import Env, _env


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = _env(tmp_path, InProcessBus())
    yield e
    pytest_twisted.blockon(e.actions.store.close())


@pytest_twisted.ensureDeferred
async def test_a_notice_reaches_every_connection_on_every_node(env: Env) -> None:
    n1, n2 = env.node("n1"), env.node("n2")
    _, a_sink = await env.connect(n1, "alice")
    _, b_sink = await env.connect(n2, "bob")
    a_sink.take(), b_sink.take()
    env.bus.publish(room_channel(env.room_id), {"type": "notice", "room_id": env.room_id, "level": "warning",
                                                "code": "live_codec", "media_id": "m1",
                                                "message": "the video is HEVC (H.265): browsers will not decode it"})
    expected = {"type": "notice", "level": "warning", "code": "live_codec", "media_id": "m1",
                "message": "the video is HEVC (H.265): browsers will not decode it"}
    assert a_sink.of("notice") == [expected] and b_sink.of("notice") == [expected]
    env.bus.publish(room_channel(env.room_id), {"type": "notice", "room_id": env.room_id, "message": 5})
    assert a_sink.of("notice") == [expected]
