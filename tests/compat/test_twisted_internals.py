"""synctv.compat.twisted against the installed Twisted: each private name it uses exists and
behaves as the adapter assumes. A failure here after an upgrade names what changed; fix the
adapter (never the call sites) and raise the bound in setup.cfg."""

from __future__ import annotations

import io
from typing import Any

import pytest_twisted
import treq
from twisted.internet import defer, protocol, tcp
from twisted.web import client, resource, server
from twisted.web._newclient import HEADER, STATUS, HTTP11ClientProtocol

from synctv.compat.twisted import cap_response_headers, request_line, resume_when_writable, write_buffer_empty


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


class Held(protocol.Protocol):
    """A server-side connection that hands itself to the test."""

    def connectionMade(self) -> None:
        self.factory.connected.callback(self)


@pytest_twisted.inlineCallbacks
def test_write_buffer_empty_follows_what_write_queues_and_the_reactor_sends() -> None:
    reactor = _reactor()
    factory = protocol.Factory.forProtocol(Held)
    factory.connected = defer.Deferred()
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    try:
        client_side = yield protocol.ClientCreator(reactor, protocol.Protocol).connectTCP(
            "127.0.0.1", port.getHost().port)
        held = yield factory.connected
        transport = held.transport
        assert type(transport) is tcp.Server
        assert isinstance(transport._tempDataBuffer, list) and transport.dataBuffer == b""
        assert write_buffer_empty(transport)
        transport.write(b"queued")  # Twisted queues it for the next reactor pass
        assert transport._tempDataBuffer == [b"queued"]
        assert not write_buffer_empty(transport)
        for _ in range(100):
            if write_buffer_empty(transport):
                break
            yield _later(reactor, 0.01)
        assert write_buffer_empty(transport)
        client_side.transport.loseConnection()
        transport.loseConnection()
    finally:
        yield port.stopListening()


class Resumed:
    """A streaming producer that counts resumes and whether its transport had sent everything."""

    def __init__(self) -> None:
        self.resumed = 0
        self.transport: Any = None
        self.drained: list[bool] = []

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        self.resumed += 1
        self.drained.append(write_buffer_empty(self.transport))

    def stopProducing(self) -> None:
        pass


@pytest_twisted.inlineCallbacks
def test_resume_when_writable_resumes_the_producer_once_the_socket_takes_bytes() -> None:
    reactor = _reactor()
    factory = protocol.Factory.forProtocol(Held)
    factory.connected = defer.Deferred()
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    try:
        client_side = yield protocol.ClientCreator(reactor, protocol.Protocol).connectTCP(
            "127.0.0.1", port.getHost().port)
        held = yield factory.connected
        transport = held.transport
        producer = Resumed()
        producer.transport = transport
        assert not resume_when_writable(transport)  # no producer
        transport.registerProducer(producer, True)
        transport.write(b"queued")  # under the buffer's mark: the transport would not resume on its own
        assert resume_when_writable(transport)
        for _ in range(100):
            if producer.resumed:
                break
            yield _later(reactor, 0.01)
        assert producer.drained == [True]  # resumed once what was queued was out
        before = producer.resumed
        assert resume_when_writable(transport)  # nothing queued: resumed once the socket takes bytes
        assert transport.producerPaused
        for _ in range(100):
            if producer.resumed > before:
                break
            yield _later(reactor, 0.01)
        assert producer.resumed == before + 1 and not transport.producerPaused
        yield _later(reactor, 0.05)
        assert producer.resumed == before + 1  # once: the transport stopped asking for writability
        transport.unregisterProducer()
        client_side.transport.loseConnection()
        transport.loseConnection()
    finally:
        yield port.stopListening()


def _later(reactor: Any, seconds: float) -> defer.Deferred[None]:
    d: defer.Deferred[None] = defer.Deferred()
    reactor.callLater(seconds, d.callback, None)
    return d


class Recorded(server.Request):
    """Records what request_line says when the body's length is known (before any body byte)."""

    seen: list[tuple[bytes | None, bytes | None, bytes | None]] = []

    def gotLength(self, length: int | None) -> None:
        Recorded.seen.append(request_line(self.channel))
        super().gotLength(length)


class Ok(resource.Resource):
    isLeaf = True

    def render(self, request: Any) -> bytes:
        return b"ok"


@pytest_twisted.inlineCallbacks
def test_request_line_is_the_parsed_method_and_path_when_the_body_starts() -> None:
    reactor = _reactor()
    site = server.Site(Ok())
    site.requestFactory = Recorded
    Recorded.seen = []
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    pool = client.HTTPConnectionPool(reactor, persistent=True)
    try:
        agent = client.Agent(reactor, pool=pool)
        url = f"http://127.0.0.1:{port.getHost().port}/api/upload/x?name=a%20b".encode()
        response = yield agent.request(b"PUT", url, None, client.FileBodyProducer(io.BytesIO(b"1234")))
        body = yield treq.content(response)
        assert body == b"ok"
        assert Recorded.seen == [(b"PUT", b"/api/upload/x?name=a%20b", b"HTTP/1.1")]
    finally:
        yield pool.closeCachedConnections()
        yield port.stopListening()


class Answer(protocol.Protocol):
    """Answers any request with ``header_bytes`` of headers, then ``ok``."""

    def dataReceived(self, data: bytes) -> None:
        if b"\r\n\r\n" in data:
            filler = b"X-Filler: " + b"a" * 1000 + b"\r\n"
            headers = filler * (self.factory.header_bytes // len(filler))
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" + headers + b"\r\nok")


class TooLarge(Exception):
    pass


@pytest_twisted.inlineCallbacks
def test_cap_response_headers_raises_inside_the_parser_past_the_limit() -> None:
    reactor = _reactor()
    # what the adapter replaces and wraps
    assert client.HTTPConnectionPool._factory is client._HTTP11ClientFactory
    assert (STATUS, HEADER) == ("STATUS", "HEADER")
    assert HTTP11ClientProtocol()._parser is None  # set by request(), which the adapter wraps
    factory = protocol.Factory.forProtocol(Answer)
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    pool = client.HTTPConnectionPool(reactor, persistent=True)
    cap_response_headers(pool, 16 * 1024, TooLarge)
    agent = client.Agent(reactor, pool=pool)
    url = f"http://127.0.0.1:{port.getHost().port}/".encode()
    try:
        factory.header_bytes = 8 * 1024
        response = yield agent.request(b"GET", url)
        assert response.code == 200 and (yield treq.content(response)) == b"ok"
        factory.header_bytes = 64 * 1024
        try:
            yield agent.request(b"GET", url)
        except client.ResponseFailed as e:
            reasons = [r.value for r in e.reasons]
        else:
            raise AssertionError("a 64 KiB header section passed a 16 KiB cap")
        assert any(isinstance(r, TooLarge) and r.args == (16 * 1024,) for r in reasons), reasons
    finally:
        yield pool.closeCachedConnections()
        yield port.stopListening()
