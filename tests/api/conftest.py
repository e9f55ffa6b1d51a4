"""A running synctv Site on 127.0.0.1 over the real store (``store`` fixture: SQLite and
PostgreSQL), with users root, admin, alice, bob and carol and a token for each.

The reactor is imported inside the fixture only, never at module level.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred

from synctv.api.metrics import HttpMetrics
from synctv.bus import InProcessBus
from synctv.core.clock import ManualClock
from synctv.site import build_site
from synctv.store.interface import Store
from tests.api.api_support import WEB_DIR, Served, World, make_accounts, make_actions
from tests.displays.support import start_displays, stop_displays


@pytest.fixture
def world(store: Store, tmp_path: Path) -> Iterator[World]:
    clock = ManualClock()
    bus = InProcessBus()
    actions = make_actions(store, clock, bus)
    metrics = HttpMetrics()
    displays = start_displays(actions, tmp_path / "data", metrics.registry)
    served = Served(build_site(actions, web_dir=WEB_DIR, accounts=make_accounts(store, clock), displays=displays,
                               metrics=metrics))
    w = World(store=store, clock=clock, actions=actions, site=served.site, client=served.client, bus=bus)
    w.served = served
    w.extra["displays"] = displays

    async def populate() -> None:
        await w.add_user("root", "root")
        await w.add_user("admin", "admin")
        for name in ("alice", "bob", "carol"):
            await w.add_user(name)

    pytest_twisted.blockon(Deferred.fromCoroutine(populate()))
    yield w
    stop_displays(w.extra["displays"])
    pytest_twisted.blockon(Deferred.fromCoroutine(served.stop()))
