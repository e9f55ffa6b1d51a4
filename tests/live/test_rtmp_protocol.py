"""RTMPProtocol and RTMPFactory bounds on in-memory transports with a Clock: the publish deadline,
the connection cap, closing a peer that does not take our last bytes, not reading from a peer that
does not read, and one log line per closed connection with the bound's name and no stream key."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogEvent, capturedLogs

from synctv.live.rtmp.protocol import CLOSE_GRACE_S, REFUSAL_LOG_S, RTMPFactory, RTMPProtocol
from synctv.live.rtmp.session import RTMPLimits
from synctv.live.streams import LiveStream
from tests.live.rtmp_client import RTMPTestClient

KEY = "live_0123456789abcdefghijklmnopqrstuvwxyzABCD"


class UndecidedGate:
    """A publish gate still looking the key up: the publish stays pending."""

    def __init__(self, limits: RTMPLimits = RTMPLimits()) -> None:
        self.rtmp_limits = limits
        self.asked: list[str] = []

    def authorize_publish(self, app: str, stream_key: str, publisher: Any) -> Deferred[LiveStream]:
        self.asked.append(stream_key)
        return Deferred()

    def end_publish(self, stream: LiveStream, publisher: Any) -> None:
        raise AssertionError("nothing was published")


def _addr(port: int = 40000) -> IPv4Address:
    return IPv4Address("TCP", "192.0.2.7", port)


def _connect(factory: RTMPFactory, port: int = 40000) -> tuple[RTMPProtocol, StringTransport]:
    protocol = factory.buildProtocol(_addr(port))
    assert protocol is not None
    transport = StringTransport(peerAddress=_addr(port))
    protocol.makeConnection(transport)
    return protocol, transport


def _closing_lines(events: list[LogEvent]) -> list[LogEvent]:
    return [e for e in events if "closing the RTMP connection" in e.get("log_format", "")]


def _handshake(protocol: RTMPProtocol, transport: StringTransport, client: RTMPTestClient) -> None:
    protocol.dataReceived(client.c0c1())
    protocol.dataReceived(client.c2(transport.value()))
    transport.clear()


@pytest.mark.parametrize("stage", ["handshake", "wait_connect", "connected", "pending"])
def test_a_connection_without_an_authorized_publish_is_closed_at_the_deadline(stage: str) -> None:
    """Silent, handshaken, connected or waiting on the key check: publish_timeout_s after the
    connection was accepted it is closed, with one log line naming the bound; a peer that does
    not take the last bytes is aborted CLOSE_GRACE_S later; the slot is freed when it is gone."""
    clock = Clock()
    clock.advance(1000.3)
    gate = UndecidedGate()
    factory = RTMPFactory(gate, limits=RTMPLimits(publish_timeout_s=10), scheduler=clock)
    with capturedLogs() as events:
        protocol, transport = _connect(factory)
        client = RTMPTestClient(chunk_size=4096)
        if stage != "handshake":
            _handshake(protocol, transport, client)
        if stage in ("connected", "pending"):
            protocol.dataReceived(client.set_chunk_size() + client.connect() + client.command("createStream", None))
        if stage == "pending":
            protocol.dataReceived(client.publish(KEY))
            assert gate.asked == [KEY]
        clock.advance(9.999)
        assert not transport.disconnecting and _closing_lines(events) == []
        clock.advance(0.001)
        assert transport.disconnecting and not transport.disconnected
        (line,) = _closing_lines(events)
        assert (line["limit"], line["stage"], line["peer"]) == ("publish_timeout_s", stage, "192.0.2.7:40000")
        assert transport.producer is None  # unregistered, or it would hold the connection open
        clock.advance(CLOSE_GRACE_S)
        assert transport.disconnected  # aborted
    assert factory.open_connections == 1
    protocol.connectionLost()
    assert factory.open_connections == 0 and clock.getDelayedCalls() == []
    assert not any(KEY in repr(e) for e in events)


def test_a_chunk_stream_flood_is_closed_with_one_line_and_no_key() -> None:
    """A pending publisher opening a ninth chunk stream is closed at once; the one log line names
    the bound and the stage and never carries the stream key."""
    clock = Clock()
    factory = RTMPFactory(UndecidedGate(), limits=RTMPLimits(), scheduler=clock)
    with capturedLogs() as events:
        protocol, transport = _connect(factory)
        client = RTMPTestClient(chunk_size=4096)
        _handshake(protocol, transport, client)
        protocol.dataReceived(client.set_chunk_size() + client.connect() + client.publish(KEY))
        headers = b"".join(bytes([csid]) + bytes.fromhex("000000 000400 09 01000000") + bytes(1024)
                           for csid in range(10, 15))  # with 2, 3 and 4: eight chunk streams
        protocol.dataReceived(headers)
        assert not transport.disconnecting
        protocol.dataReceived(bytes([15]) + bytes.fromhex("000000 000400 09 01000000"))
        assert transport.disconnecting
    (line,) = _closing_lines(events)
    assert (line["limit"], line["stage"]) == ("chunk_streams", "pending")
    assert line["received"] == protocol.session.bytes_received
    assert not any(KEY in repr(e) for e in events)


def test_connections_past_the_cap_are_refused_and_the_refusals_logged_sparingly() -> None:
    """Past max_connections buildProtocol answers None (Twisted closes the socket unread); the
    refusal is logged at most once per REFUSAL_LOG_S with a count; a closed connection frees its
    slot for the next."""
    clock = Clock()
    factory = RTMPFactory(UndecidedGate(), limits=RTMPLimits(max_connections=2), scheduler=clock)
    with capturedLogs() as events:
        first, _ = _connect(factory, 1)
        _connect(factory, 2)
        assert factory.buildProtocol(_addr(3)) is None
        assert factory.buildProtocol(_addr(4)) is None
        clock.advance(REFUSAL_LOG_S)
        assert factory.buildProtocol(_addr(5)) is None
        first.connectionLost()
        assert factory.open_connections == 1
        assert factory.buildProtocol(_addr(6)) is not None
        assert factory.buildProtocol(_addr(7)) is None  # within REFUSAL_LOG_S of the last line
    refusals = [e for e in events if e.get("limit") == "max_connections"]
    assert [(e["count"], e["open"]) for e in refusals] == [(1, 2), (2, 2)]


def test_one_address_cannot_hold_every_slot() -> None:
    """Past max_connections_per_address from one source, that source is refused (logged with the
    bound's name) while another address still connects; a closed connection frees its slot, and
    the addresses of one IPv6 /64 count as one."""
    factory = RTMPFactory(UndecidedGate(), limits=RTMPLimits(max_connections=10, max_connections_per_address=2),
                          scheduler=Clock())
    with capturedLogs() as events:
        first, _ = _connect(factory, 1)
        _connect(factory, 2)
        assert factory.buildProtocol(_addr(3)) is None
        assert factory.buildProtocol(IPv4Address("TCP", "198.51.100.1", 1)) is not None
        first.connectionLost()
        assert factory.buildProtocol(_addr(4)) is not None
        assert factory.buildProtocol(IPv6Address("TCP", "2001:db8::1", 1)) is not None
        assert factory.buildProtocol(IPv6Address("TCP", "2001:db8::2", 1)) is not None
        assert factory.buildProtocol(IPv6Address("TCP", "2001:db8::3", 1)) is None
    assert [e["limit"] for e in events if "limit" in e] == ["max_connections_per_address"]
    assert factory.open_connections == 5


def test_the_cap_defaults_to_the_gate_limits() -> None:
    """Without explicit limits the factory takes the gate's (the live hub's [live] settings)."""
    factory = RTMPFactory(UndecidedGate(RTMPLimits(max_connections=1)), scheduler=Clock())
    assert factory.buildProtocol(_addr(1)) is not None
    assert factory.buildProtocol(_addr(2)) is None


def test_a_peer_that_does_not_read_stops_being_read() -> None:
    """The protocol is its transport's streaming producer: when our replies back up (the peer does
    not read), reading from the peer pauses until they drain."""
    factory = RTMPFactory(UndecidedGate(), limits=RTMPLimits(), scheduler=Clock())
    protocol, transport = _connect(factory)
    assert transport.producer is protocol and transport.streaming
    protocol.pauseProducing()  # what the transport does when its write buffer fills
    assert transport.producerState == "paused"
    protocol.resumeProducing()
    assert transport.producerState == "producing"
