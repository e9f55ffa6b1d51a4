"""``UdpTriggerPorts`` on real sockets with a test clock for its retries: a busy port is retried
every 5 s until it binds, ports outside ``[triggers] udp_ports`` are never bound, and
``[triggers] udp_bind`` decides the address."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs
import pytest
import pytest_twisted
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock

from synctv.core.displays import DisplayEvent
from synctv.core.triggers import PortRanges
from synctv.triggers.udp import UdpTriggerPorts
from tests.displays.support import free_udp_port, hold_udp_port, send_udp, udp_port_in_use


@attrs.define
class Ports:
    """A UdpTriggerPorts over a list of events, its test clock, and what it fired."""

    ports: UdpTriggerPorts
    timer: Clock
    events: list[DisplayEvent]
    fired: list[tuple[str, str]] = attrs.Factory(list)
    waiting: list[Deferred[None]] = attrs.Factory(list)

    def next_fire(self) -> Deferred[None]:
        d: Deferred[None] = Deferred()
        self.waiting.append(d)
        return d


def event(port: int, name: str = "show", payload: str = "GO") -> DisplayEvent:
    return DisplayEvent(id=name, name=name, room_id="r", media_id="m", udp_port=port, udp_payload=payload)


def build(interface: str = "127.0.0.1", allowed: str = "5000-5999") -> Ports:
    from twisted.internet import reactor

    holder: list[Ports] = []

    def fire(e: DisplayEvent, host: str) -> Deferred[None]:
        world = holder[0]
        world.fired.append((e.name, host))
        waiting, world.waiting = world.waiting, []
        for d in waiting:
            d.callback(None)
        return succeed(None)

    timer = Clock()
    events: list[DisplayEvent] = []
    ports = UdpTriggerPorts(load_events=lambda: succeed(list(events)), fire=fire, reactor=reactor,
                            clock=lambda: int(timer.seconds() * 1000), interface=interface,
                            allowed=PortRanges.parse(allowed), timer=timer)
    holder.append(Ports(ports, timer, events))
    return holder[0]


@pytest.fixture
def world() -> Iterator[Ports]:
    built: list[Ports] = []

    def make(**options: Any) -> Ports:
        built.append(build(**options))
        return built[-1]

    yield make
    for ports in built:
        pytest_twisted.blockon(Deferred.fromCoroutine(ports.ports.stop()))


@pytest_twisted.ensureDeferred
async def test_a_busy_port_is_retried_every_5_s_until_it_binds(world):
    """The status says why and that it retries; nothing binds before 5 s; once the holder lets go,
    the next retry binds it and packets fire the event; then no retry is planned."""
    w = world()
    blocker = hold_udp_port()
    port = blocker.getsockname()[1]
    try:
        w.events.append(event(port))
        await w.ports.reconcile()
        status = w.ports.status(w.events[0])
        assert status == {"udp": "error", "port": port, "error": "address already in use, retrying every 5 s"}
        assert [call.getTime() for call in w.timer.getDelayedCalls()] == [5.0]
        w.timer.advance(5)  # still held: still an error, the next retry planned
        assert w.ports.status(w.events[0])["udp"] == "error"
        assert [call.getTime() for call in w.timer.getDelayedCalls()] == [10.0]
    finally:
        blocker.close()
    w.timer.advance(4.9)
    assert w.ports.status(w.events[0])["udp"] == "error" and not udp_port_in_use(port)
    w.timer.advance(0.1)
    assert w.ports.status(w.events[0]) == {"udp": "listening", "port": port}
    assert udp_port_in_use(port) and w.timer.getDelayedCalls() == []
    fired = w.next_fire()
    send_udp(port, b"GO")
    await fired
    assert w.fired == [("show", "127.0.0.1")]


@pytest_twisted.ensureDeferred
async def test_retries_stop_when_no_event_wants_the_port(world):
    """An event removed while its port is busy: the retry is cancelled and nothing binds later;
    stopping cancels a planned retry too."""
    w = world()
    blocker = hold_udp_port()
    port = blocker.getsockname()[1]
    w.events.append(event(port))
    await w.ports.reconcile()
    assert len(w.timer.getDelayedCalls()) == 1
    w.events.clear()
    await w.ports.reconcile()
    blocker.close()
    assert w.timer.getDelayedCalls() == []
    w.timer.advance(60)
    assert not udp_port_in_use(port)

    again = hold_udp_port()
    try:
        w.events.append(event(again.getsockname()[1]))
        await w.ports.reconcile()
        assert len(w.timer.getDelayedCalls()) == 1
        await w.ports.stop()
        assert w.timer.getDelayedCalls() == []
    finally:
        again.close()


@pytest_twisted.ensureDeferred
async def test_ports_outside_the_allowed_ranges_are_never_bound(world):
    """An event stored with a port outside [triggers] udp_ports (set before the range changed) is
    reported, not bound and not retried; the events inside keep working."""
    w = world(allowed="5000-5999")
    outside, inside = free_udp_port(6000, 6999), free_udp_port()
    w.events.extend([event(outside, "old", "OLD"), event(inside, "new", "NEW")])
    await w.ports.reconcile()
    assert w.ports.status(w.events[0]) == {
        "udp": "error", "port": outside, "error": "outside [triggers] udp_ports (5000-5999); not bound"}
    assert w.ports.status(w.events[1]) == {"udp": "listening", "port": inside}
    assert not udp_port_in_use(outside) and w.timer.getDelayedCalls() == []


@pytest.mark.parametrize(("interface", "taken_from"), [
    ("127.0.0.1", {"127.0.0.1": True, "127.0.0.2": False}),
    ("0.0.0.0", {"127.0.0.1": True, "127.0.0.2": True}),
])
@pytest_twisted.ensureDeferred
async def test_udp_bind_chooses_the_address(world, interface, taken_from):
    """[triggers] udp_bind 127.0.0.1 takes the port on that address only; 0.0.0.0 on every one."""
    w = world(interface=interface)
    port = free_udp_port()
    w.events.append(event(port))
    await w.ports.reconcile()
    assert w.ports.status(w.events[0])["udp"] == "listening"
    assert {host: udp_port_in_use(port, host) for host in taken_from} == taken_from


@pytest_twisted.ensureDeferred
async def test_udp_bind_ipv6_any_takes_ipv4_packets_too(world):
    """udp_bind "::" listens on IPv6 and (dual stack, Linux's default) IPv4: a packet to 127.0.0.1
    fires with its IPv4 source."""
    w = world(interface="::")
    port = free_udp_port()
    w.events.append(event(port))
    await w.ports.reconcile()
    assert w.ports.status(w.events[0])["udp"] == "listening"
    fired = w.next_fire()
    send_udp(port, b"GO")
    await fired
    assert w.fired == [("show", "127.0.0.1")]
