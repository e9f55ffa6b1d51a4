"""The display tests' world: the API test world (tests/api/conftest.py, displays attached) plus a
display room ``wall`` created by alice with a 30 s media item."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import pytest_twisted
from twisted.internet.defer import Deferred

from synctv.bus import room_channel
from synctv.displays.subsystem import DisplayRuntime
from tests.api.api_support import World
from tests.api.conftest import world  # noqa: F401 -- the fixture, shared
from tests.displays.support import next_message, no_logged_failures  # noqa: F401


@attrs.define
class Show:
    world: World
    runtime: DisplayRuntime
    room: dict[str, Any]
    media: dict[str, Any]

    async def event(self, name: str = "show", who: str | None = None, **body: Any) -> dict[str, Any]:
        """Create an event as ``who``: by default alice (the room's creator), or the site admin
        when the event has a UDP port (only site admins may set one)."""
        who = who or ("admin" if body.get("udp_port") is not None else "alice")
        r = await self.world.client.post("/api/events", {"name": name, "room": self.room["id"],
                                                         "media": self.media["id"], **body},
                                         token=self.world.tokens[who])
        assert r.status == 201, r.raw
        return r.json["event"]

    def state_change(self) -> Deferred[dict[str, Any]]:
        """The next playback state announced for the room."""
        return next_message(self.world.bus, room_channel(self.room["id"]), "playbackState").addCallback(
            lambda message: message["state"])

    async def state(self) -> dict[str, Any]:
        r = await self.world.client.get(f"/api/rooms/{self.room['id']}/playback-state",
                                        token=self.world.tokens["alice"])
        assert r.status == 200, r.raw
        return r.json


@pytest.fixture
def show(world: World) -> Show:  # noqa: F811
    async def build() -> Show:
        room = await world.room(name="wall", kind="display")
        media = await world.media(room, title="Intro", duration=30.0)
        return Show(world, world.extra["displays"], room, media)

    return pytest_twisted.blockon(Deferred.fromCoroutine(build()))


@pytest.fixture(autouse=True)
def _no_logged_failures(no_logged_failures):  # noqa: F811
    """Every test here fails if a traceback was logged while it ran."""
    return no_logged_failures
