"""The per-node scheduler: a ``TimerService`` that works only on this node's active rooms.

Every ``interval_s`` (``[workers] tick_s``) it reads ``active_room_ids()`` -- the rooms with at
least one WebSocket connection on this node (``synctv.realtime.connections``) -- and runs each
step with that set: the display rooms' end-of-show following (``DisplayRuntime.follow``), the
duration probe (``synctv.workers.probe``), auto-advance (``synctv.workers.advance``). A room
nobody is connected to on this node is left alone by this node (docs/workers.md).

Each step's failure is caught and logged, and the loop goes on (the tick itself never fails,
so the ``LoopingCall`` under the ``TimerService`` never stops). A tick waits for its steps, so
ticks never overlap; steps that can be slow (probes) only start work and return. Time is the
injected ``clock`` (``IReactorTime``; tests pass ``twisted.internet.task.Clock``). Stopping
stops the loop, then each step (timers cancelled, work in flight settled) before the store
closes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from twisted.application.internet import TimerService
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger


class Step(Protocol):
    name: str

    def run(self, active: Sequence[str]) -> Any:
        """Work on the active rooms; a Deferred, a coroutine or None."""

    def stop(self) -> Any: ...


class WorkerScheduler(TimerService):
    log = Logger()

    def __init__(self, *, active_rooms: Callable[[], Iterable[str]], steps: Sequence[Step], interval_s: float,
                 clock: IReactorTime) -> None:
        super().__init__(interval_s, self.tick)
        self.clock = clock
        self.active_rooms = active_rooms
        self.steps = tuple(steps)
        self.ticks = 0
        self.failures: dict[str, int] = {}

    def tick(self) -> Deferred[None]:
        self.ticks += 1
        try:
            active = sorted(set(self.active_rooms()))
        except Exception:
            self.log.failure("the scheduler could not read the active rooms")
            return succeed(None)
        runs = [self._run(step, active) for step in self.steps]
        return DeferredList(runs).addCallback(lambda _: None)

    def _run(self, step: Step, active: list[str]) -> Deferred[None]:
        def call() -> Any:
            result = step.run(active)
            return Deferred.fromCoroutine(result) if hasattr(result, "send") else result

        def failed(failure: Any) -> None:
            self.failures[step.name] = self.failures.get(step.name, 0) + 1
            self.log.failure("worker step {step} failed; it runs again next tick", failure, step=step.name)

        return maybeDeferred(call).addCallbacks(lambda _: None, failed)

    def stopService(self) -> Deferred[None]:
        d = maybeDeferred(super().stopService)

        def stop_steps(_: Any) -> Deferred[Any]:
            return DeferredList([maybeDeferred(step.stop) for step in self.steps], consumeErrors=True)

        return d.addBoth(stop_steps).addCallback(lambda _: None)

