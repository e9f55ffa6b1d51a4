"""write_now: the fan-out's direct socket write keeps bytes whole and in order."""

from __future__ import annotations

import hashlib

import pytest_twisted
from twisted.internet import defer, protocol, tcp

from synctv.socket_writes import write_now

CHUNK = bytes(range(256)) * 4096  # 1 MiB, more than a loopback socket takes in one send


class Writer(protocol.Protocol):
    def connectionMade(self) -> None:
        assert type(self.transport) is tcp.Server  # the fast path applies to this transport
        for i in range(8):
            write_now(self.transport, bytes([i]) + CHUNK)  # the first write fills the kernel buffer
        self.transport.loseConnection()


class Reader(protocol.Protocol):
    def __init__(self) -> None:
        self.received = bytearray()
        self.done: defer.Deferred[bytes] = defer.Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason: object = None) -> None:
        self.done.callback(bytes(self.received))


@pytest_twisted.inlineCallbacks
def test_partial_direct_writes_and_buffered_rest_arrive_in_order() -> None:
    """Eight 1 MiB frames written with write_now arrive complete and in order: a direct send that
    the kernel takes only in part leaves its rest in Twisted's buffer, and later frames queue
    behind it instead of jumping ahead."""
    from twisted.internet import reactor

    port = reactor.listenTCP(0, protocol.Factory.forProtocol(Writer), interface="127.0.0.1")
    try:
        reader = Reader()
        yield protocol.ClientCreator(reactor, lambda: reader).connectTCP("127.0.0.1", port.getHost().port)
        data = yield reader.done
    finally:
        yield port.stopListening()
    expected = b"".join(bytes([i]) + CHUNK for i in range(8))
    assert len(data) == len(expected)
    assert hashlib.sha256(data).digest() == hashlib.sha256(expected).digest()
