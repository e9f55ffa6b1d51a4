"""The twistd service (synctv.tap): subsystems are named child services, made once the store is
open and stopped one after another in reverse order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest_twisted
import treq
from twisted.application import service
from twisted.internet.defer import Deferred

from synctv.tap import GC_THRESHOLDS, Options, OrderedServices, makeService


class Recorder(service.Service):
    def __init__(self, name: str, log: list[str], fail: bool = False) -> None:
        self.setName(name)
        self.log = log
        self.fail = fail
        self.pending: Deferred[None] | None = None

    def stopService(self) -> Deferred[None]:
        super().stopService()
        self.log.append(f"stop {self.name}")
        if self.fail:
            raise RuntimeError("boom")
        self.pending = Deferred()
        return self.pending


def test_children_stop_one_after_another_last_added_first() -> None:
    """The second child is not asked to stop before the first one's Deferred fires; a child that
    fails to stop is logged and the others still stop."""
    log: list[str] = []
    parent = OrderedServices()
    first, broken, last = Recorder("first", log), Recorder("broken", log, fail=True), Recorder("last", log)
    for child in (first, broken, last):
        child.setServiceParent(parent)
    parent.startService()
    done = parent.stopService()
    assert log == ["stop last"]
    assert last.pending is not None
    last.pending.callback(None)
    assert log == ["stop last", "stop broken", "stop first"]
    assert not done.called
    assert first.pending is not None
    first.pending.callback(None)
    assert done.called and not parent.running


@pytest_twisted.ensureDeferred
async def test_the_server_runs_its_subsystems_as_named_children(tmp_path: Path) -> None:
    """An in-process server on port 0: once ready, its children are the subsystems in start order,
    what it built is out of the collector's full passes (``settle_heap``), it answers /healthz, and
    stopping it stops every child and closes the port."""
    import gc

    from twisted.internet import reactor

    options = Options()
    options.parseOptions(["--data", str(tmp_path / "data"), "--http", "tcp:0:interface=127.0.0.1",
                          "--rtmp", "tcp:0:interface=127.0.0.1"])
    server: Any = makeService(options)
    server.privilegedStartService()
    gc.unfreeze()
    defaults = gc.get_threshold()
    server.startService()
    try:
        await server.ready
    finally:
        frozen, thresholds = gc.get_freeze_count(), gc.get_threshold()
        gc.unfreeze()  # the test process's objects go back to the collector, as it was set
        gc.set_threshold(*defaults)
    assert frozen > 10_000, frozen
    assert thresholds == GC_THRESHOLDS
    assert [child.name for child in server] == ["displays", "proxy", "site", "realtime", "live", "leader", "workers"]
    assert all(child.running for child in server)
    port = server.http_port.getHost().port
    response = await treq.get(f"http://127.0.0.1:{port}/healthz", reactor=reactor, persistent=False)
    assert response.code == 200 and (await response.json())["status"] == "ok"
    await server.stopService()
    assert not any(child.running for child in server)
    assert not server.http_port.connected
