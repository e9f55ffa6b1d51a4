"""The display rooms' end-of-show following on the active-room boundary (DisplayRuntime.follow,
the scheduler's display step): only display rooms with a screen on this node are followed."""

from __future__ import annotations

from pathlib import Path

import pytest_twisted
from twisted.internet.defer import Deferred

from synctv.config import TriggerConfig
from synctv.core.clock import ManualClock
from synctv.core.triggers import PortRanges
from synctv.displays.subsystem import DisplayRuntime
from synctv.workers.steps import DisplayFollowStep
from tests.api.api_support import SECRET, WEB_DIR, make_actions
from tests.store.conftest import Builders


def runtime(store, tmp_path: Path, follow_all: bool) -> DisplayRuntime:
    from twisted.internet import reactor

    return DisplayRuntime(actions=make_actions(store, ManualClock()), secret=SECRET, data_dir=tmp_path / "data",
                          web_dir=WEB_DIR, reactor=reactor, follow_all=follow_all,
                          triggers=TriggerConfig(udp_ports=PortRanges.parse(""), udp_bind="127.0.0.1"))


@pytest_twisted.ensureDeferred
async def test_only_active_display_rooms_are_followed(store, make: Builders, tmp_path: Path):
    wall, other_wall, lounge = await make.room(kind="display"), await make.room(kind="display"), await make.room()
    displays = runtime(store, tmp_path, follow_all=False)
    await Deferred.fromCoroutine(displays.start())
    try:
        assert displays.worker.watching() == set()  # nothing before a screen connects
        step = DisplayFollowStep(displays)
        await step.run([wall.id, lounge.id])
        assert displays.worker.watching() == {wall.id}
        await step.run([other_wall.id, lounge.id])
        assert displays.worker.watching() == {other_wall.id}
        await step.run([])
        assert displays.worker.watching() == set()
    finally:
        await Deferred.fromCoroutine(displays.stop())


@pytest_twisted.ensureDeferred
async def test_without_a_connection_runtime_every_display_room_is_followed(store, make: Builders, tmp_path: Path):
    wall = await make.room(kind="display")
    await make.room()
    displays = runtime(store, tmp_path, follow_all=True)
    await Deferred.fromCoroutine(displays.start())
    try:
        assert displays.worker.watching() == {wall.id}
    finally:
        await Deferred.fromCoroutine(displays.stop())
