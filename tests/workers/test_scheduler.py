"""The per-node scheduler (synctv.workers.scheduler): ticks on an injected clock, hands every step
the node's active rooms, and a step's failure is logged without stopping the loop."""

from __future__ import annotations

from typing import Any

from twisted.internet import task
from twisted.internet.defer import Deferred, fail, succeed

from synctv.workers.scheduler import WorkerScheduler


class Recording:
    def __init__(self, name: str, fails: bool = False) -> None:
        self.name = name
        self.fails = fails
        self.seen: list[list[str]] = []
        self.stopped = False

    def run(self, active: Any) -> Deferred[None]:
        self.seen.append(list(active))
        return fail(RuntimeError("boom")) if self.fails else succeed(None)

    def stop(self) -> Deferred[None]:
        self.stopped = True
        return succeed(None)


def test_each_tick_gives_every_step_the_active_rooms_and_failures_do_not_stop_it():
    clock = task.Clock()
    active = {"r1"}
    broken, healthy = Recording("broken", fails=True), Recording("healthy")
    scheduler = WorkerScheduler(active_rooms=lambda: active, steps=[broken, healthy], interval_s=0.5, clock=clock)
    scheduler.startService()
    assert healthy.seen == [["r1"]]  # the first tick at start
    active.add("r0")
    clock.advance(0.5)
    active.clear()
    clock.advance(0.5)
    assert healthy.seen == [["r1"], ["r0", "r1"], []] and len(broken.seen) == 3
    assert scheduler.failures == {"broken": 3} and scheduler.ticks == 3
    done = scheduler.stopService()
    assert done.called and broken.stopped and healthy.stopped
    clock.advance(5)
    assert scheduler.ticks == 3


def test_a_failing_active_room_read_is_survived():
    clock = task.Clock()
    calls = []

    def active() -> set[str]:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("not yet")
        return {"r"}

    step = Recording("s")
    scheduler = WorkerScheduler(active_rooms=active, steps=[step], interval_s=1, clock=clock)
    scheduler.startService()
    clock.advance(1)
    assert step.seen == [["r"]]
    scheduler.stopService()


def test_a_slow_step_holds_the_next_tick_back_never_overlapping():
    clock = task.Clock()
    pending: list[Deferred[None]] = []

    class Slow(Recording):
        def run(self, active: Any) -> Deferred[None]:
            self.seen.append(list(active))
            pending.append(Deferred())
            return pending[-1]

    slow = Slow("slow")
    scheduler = WorkerScheduler(active_rooms=lambda: {"r"}, steps=[slow], interval_s=1, clock=clock)
    scheduler.startService()
    clock.advance(3)
    assert len(slow.seen) == 1
    pending[0].callback(None)
    clock.advance(1)
    assert len(slow.seen) == 2
    pending[1].callback(None)
    scheduler.stopService()
