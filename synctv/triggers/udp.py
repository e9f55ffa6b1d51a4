"""UDP triggers: one ``TriggerListener`` per configured port, bound and released as events change.

``TriggerListener`` is thin: it hands each datagram's bytes and source to ``UdpTriggerPorts``,
which asks ``synctv.core.triggers.decide`` what they mean and fires the matching events.
``UdpTriggerPorts.reconcile()`` reads the events from the store and makes the bound ports match
them: it is called by the event use-cases after every change (and on every node through the bus).
Ports are bound on ``interface`` (``[triggers] udp_bind``) and only inside ``allowed``
(``[triggers] udp_ports``): an event whose port lies outside (set before the range was narrowed)
gets that as its status and nothing is bound. A port that cannot be bound (in use, privileged)
is recorded as that port's status -- ``GET /api/events`` shows it on each event using the port,
"address already in use, retrying every 5 s" -- while every other port keeps working; the ports
that failed are tried again every ``retry_s`` on ``timer`` (an ``IReactorTime``; tests drive a
``twisted.internet.task.Clock``), as SyncPlayer does, until they bind or no event wants them.
Unknown payloads are counted
(``synctv_trigger_datagrams_total{result="unknown"}``) and logged at most once per port and
source every ``log_interval_ms``; nothing a packet holds can stop the listener.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IDelayedCall, IListeningPort, IReactorTime
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from synctv.core.clock import Clock
from synctv.core.displays import DisplayEvent
from synctv.core.errors import DomainError, RateLimited
from synctv.core.triggers import DEFAULT_PORT_RANGES, LogLimiter, PortRanges, decide, parse_host

log = Logger()
RETRY_S = 5.0


class TriggerMetrics:
    """Trigger figures, on the API's registry so ``/metrics`` shows them."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.datagrams = Counter(
            "synctv_trigger_datagrams", "UDP trigger packets by port and outcome (matched, unknown, refused)",
            ["port", "result"], registry=registry,
        )
        self.triggers = Counter(
            "synctv_triggers", "Event triggers by source (udp, http) and result (started, cooldown, "
            "refused, error)", ["source", "result"], registry=registry,
        )

    def count_trigger(self, source: str, failure: BaseException | None) -> None:
        if failure is None:
            result = "started"
        elif isinstance(failure, RateLimited):
            result = "cooldown"
        elif isinstance(failure, DomainError):
            result = "refused"
        else:
            result = "error"
        self.triggers.labels(source=source, result=result).inc()


class TriggerListener(DatagramProtocol):
    """One bound UDP port: every datagram goes to ``deliver(port, data, source_host)``."""

    noisy = False

    def __init__(self, port: int, deliver: Callable[[int, bytes, str], None]) -> None:
        self.port = port
        self.deliver = deliver

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        try:
            address = parse_host(str(addr[0]))  # ::ffff:10.0.0.1 (an IPv6 socket) -> 10.0.0.1
            self.deliver(self.port, data, str(address) if address is not None else str(addr[0]))
        except Exception:
            log.failure("handling a trigger packet on UDP port {port}", port=self.port)


def _reason(error: CannotListenError) -> str:
    inner = error.socketError
    text = getattr(inner, "strerror", None) or str(inner) or "cannot bind"
    return text[:1].lower() + text[1:]


class UdpTriggerPorts:
    """The bound trigger ports and the events on each (see the module docstring)."""

    def __init__(
        self, *, load_events: Callable[[], Deferred[list[DisplayEvent]]],
        fire: Callable[[DisplayEvent, str], Deferred[Any]], reactor: Any, clock: Clock, interface: str = "",
        allowed: PortRanges = DEFAULT_PORT_RANGES, timer: IReactorTime | None = None,
        retry_s: float = RETRY_S, metrics: TriggerMetrics | None = None, log_interval_ms: int = 10_000,
    ) -> None:
        self._load_events = load_events
        self._fire = fire
        self.reactor = reactor  # IReactorUDP
        self.timer: IReactorTime = timer if timer is not None else reactor
        self.retry_s = retry_s
        self.clock = clock
        self.interface = interface
        self.allowed = allowed
        self.metrics = metrics if metrics is not None else TriggerMetrics()
        self._limiter = LogLimiter(log_interval_ms)
        self._ports: dict[int, IListeningPort] = {}
        self._events: dict[int, tuple[DisplayEvent, ...]] = {}
        self._errors: dict[int, str] = {}  # port -> why it is not bound
        self._outside: set[int] = set()  # wanted ports outside ``allowed``: never bound, never retried
        self._retry: IDelayedCall | None = None
        self._dirty = False
        self._running: Deferred[None] | None = None
        self._waiters: list[Deferred[None]] = []
        self._firing: set[Deferred[Any]] = set()  # triggers in flight
        self._stopped = False

    # -- what is bound --------------------------------------------------------------------------

    def bound_ports(self) -> dict[int, int]:
        """Configured port -> the port actually bound."""
        return {port: listening.getHost().port for port, listening in self._ports.items()}

    def status(self, event: DisplayEvent) -> dict[str, Any]:
        """``{"udp": "off"}`` (no port), ``"listening"``, ``"error"`` (with ``error``) or ``"pending"``."""
        port = event.udp_port
        if port is None:
            return {"udp": "off"}
        if port in self._errors:
            return {"udp": "error", "port": port, "error": self._errors[port]}
        if port in self._ports and any(e.id == event.id for e in self._events.get(port, ())):
            return {"udp": "listening", "port": port}
        return {"udp": "pending", "port": port}

    # -- reconciling ----------------------------------------------------------------------------

    def reconcile(self) -> Deferred[None]:
        """Make the bound ports match the stored events; fires once a pass that started after this
        call has finished. Calls made during a pass share the next one."""
        waiter: Deferred[None] = Deferred()
        if self._stopped:
            waiter.callback(None)
            return waiter
        self._waiters.append(waiter)
        self._dirty = True
        if self._running is None:
            running = Deferred.fromCoroutine(self._loop())
            if not running.called:  # a pass over events loaded at once has already finished
                self._running = running
        return waiter

    async def _loop(self) -> None:
        try:
            while self._dirty and not self._stopped:
                self._dirty = False
                waiters, self._waiters = self._waiters, []
                try:
                    await self._reconcile_once()
                except Exception:
                    log.failure("reconciling the UDP trigger ports failed; the ports are unchanged")
                for waiter in waiters:
                    waiter.callback(None)
        finally:
            self._running = None
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                waiter.callback(None)

    async def _reconcile_once(self) -> None:
        wanted: dict[int, list[DisplayEvent]] = {}
        for event in await self._load_events():
            if event.udp_port is not None and event.udp_payload is not None:
                wanted.setdefault(event.udp_port, []).append(event)
        self._events = {port: tuple(events) for port, events in wanted.items()}
        for port in [p for p in self._ports if p not in wanted]:
            await maybeDeferred(self._ports.pop(port).stopListening)
            log.info("released UDP trigger port {port}", port=port)
        self._errors = {port: error for port, error in self._errors.items() if port in wanted}
        self._outside = {port for port in wanted if port not in self.allowed}
        for port in sorted(self._outside):
            if port in self._errors:
                continue
            names = ", ".join(event.name for event in self._events[port])
            log.warn("UDP port {port} of events {names} is outside [triggers] udp_ports ({allowed}); it is not "
                     "bound", port=port, names=names, allowed=str(self.allowed) or "none")
            self._errors[port] = f"outside [triggers] udp_ports ({str(self.allowed) or 'none'}); not bound"
        for port in sorted(wanted):
            if port not in self._ports and port not in self._outside and not self._stopped:
                self._bind(port)
        self._plan_retry()

    def _bind(self, port: int) -> bool:
        try:
            self._ports[port] = self.reactor.listenUDP(port, TriggerListener(port, self._datagram),
                                                        interface=self.interface)
        except CannotListenError as e:
            reason = f"{_reason(e)}, retrying every {self.retry_s:g} s"
            if self._errors.get(port) != reason:
                names = ", ".join(event.name for event in self._events.get(port, ()))
                log.warn("cannot listen for triggers on UDP port {port} ({reason}); events {names} cannot "
                         "fire by UDP until it is free", port=port, reason=reason, names=names)
            self._errors[port] = reason
            return False
        retried = port in self._errors
        self._errors.pop(port, None)
        log.info("listening for triggers on UDP port {port}{again}", port=port,
                 again=" (it was busy before)" if retried else "")
        return True

    def _failing(self) -> list[int]:
        """Ports some event wants that could not be bound (and may be, later)."""
        return sorted(port for port in self._errors
                      if port in self._events and port not in self._ports and port not in self._outside)

    def _plan_retry(self) -> None:
        if self._stopped or not self._failing():
            if self._retry is not None and self._retry.active():
                self._retry.cancel()
            self._retry = None
            return
        if self._retry is None or not self._retry.active():
            self._retry = self.timer.callLater(self.retry_s, self._retry_now)

    def _retry_now(self) -> None:
        """Every ``retry_s`` while a wanted port is not bound: try it again (no store read)."""
        self._retry = None
        if self._running is None:  # a reconcile pass in flight binds (and plans) by itself
            for port in self._failing():
                if not self._stopped:
                    self._bind(port)
        self._plan_retry()

    async def stop(self) -> None:
        """Release every port and let the triggers in flight finish; later reconciles do nothing."""
        self._stopped = True
        self._plan_retry()
        if self._running is not None:
            await self._running
        ports, self._ports = self._ports, {}
        for port in ports.values():
            await maybeDeferred(port.stopListening)
        await DeferredList(list(self._firing))

    # -- packets --------------------------------------------------------------------------------

    def _limited(self, key: str) -> int | None:
        return self._limiter.allow(key, self.clock())

    def _datagram(self, port: int, data: bytes, host: str) -> None:
        decision = decide(data, host, self._events.get(port, ()))
        if decision.unknown:
            self.metrics.datagrams.labels(port=str(port), result="unknown").inc()
            skipped = self._limited(f"unknown:{port}:{host}")
            if skipped is not None:
                log.info("unknown trigger payload {payload} on UDP port {port} from {host} "
                         "({skipped} more not logged)", payload=repr(data[:64]), port=port, host=host,
                         skipped=skipped)
        for event in decision.refused:
            self.metrics.datagrams.labels(port=str(port), result="refused").inc()
            skipped = self._limited(f"refused:{event.id}:{host}")
            if skipped is not None:
                log.warn("trigger for event {event_name} refused: {host} is not an allowed source "
                         "({skipped} more not logged)", event_name=event.name, host=host, skipped=skipped)
        for event in decision.fire:
            self.metrics.datagrams.labels(port=str(port), result="matched").inc()
            d = maybeDeferred(self._fire, event, host)
            d.addCallbacks(self._fired, self._fire_failed, errbackArgs=(event, host))
            if not d.called:
                self._firing.add(d)
                d.addBoth(lambda _, d=d: self._firing.discard(d))

    def _fired(self, result: Any) -> None:
        self.metrics.count_trigger("udp", None)

    def _fire_failed(self, failure: Failure, event: DisplayEvent, host: str) -> None:
        self.metrics.count_trigger("udp", failure.value)
        key = f"failed:{event.id}:{type(failure.value).__name__}"
        if isinstance(failure.value, DomainError):
            skipped = self._limited(key)
            if skipped is not None:
                log.info("UDP trigger of event {event_name} from {host} not started: {message} "
                         "({skipped} more not logged)", event_name=event.name, host=host,
                         message=failure.value.message, skipped=skipped)
        elif self._limited(key) is not None:
            log.failure("UDP trigger of event {event_name} from {host} failed", failure,
                        event_name=event.name, host=host)
