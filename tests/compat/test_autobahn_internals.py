"""synctv.compat.autobahn against the installed Autobahn: ``_perMessageCompress`` says whether a
connection compresses, and without compression a prepared frame's ``payloadHybi`` is the whole
frame (the realtime fan-out writes it itself). Fix the adapter, not the call sites, when this
fails after an upgrade, and raise the bound in setup.cfg."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from autobahn.twisted.websocket import (
    WebSocketClientFactory,
    WebSocketClientProtocol,
    WebSocketServerFactory,
    WebSocketServerProtocol,
)
from autobahn.websocket.compress import (
    PerMessageDeflateOffer,
    PerMessageDeflateOfferAccept,
    PerMessageDeflateResponse,
    PerMessageDeflateResponseAccept,
)
from twisted.internet import defer

from synctv.compat.autobahn import compresses


class Server(WebSocketServerProtocol):
    def onOpen(self) -> None:
        self.factory.opened.callback(compresses(self))
        if not compresses(self):
            # what the fan-out does: the prepared frame's bytes, straight to the transport
            self.transport.write(self.factory.prepareMessage(b"prepared once").payloadHybi)
        else:
            self.sendPreparedMessage(self.factory.prepareMessage(b"prepared once"))


class Client(WebSocketClientProtocol):
    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.factory.received.callback(payload)
        self.sendClose()


def _accept(offers: list[Any]) -> Any:
    for offer in offers:
        if isinstance(offer, PerMessageDeflateOffer):
            return PerMessageDeflateOfferAccept(offer)
    return None


def _accept_response(response: Any) -> Any:
    return PerMessageDeflateResponseAccept(response) if isinstance(response, PerMessageDeflateResponse) else None


@pytest.mark.parametrize("offer", [False, True], ids=["plain", "deflate"])
@pytest_twisted.inlineCallbacks
def test_compresses_is_what_the_handshake_negotiated(offer: bool) -> None:
    from twisted.internet import reactor

    server = WebSocketServerFactory()
    server.protocol = Server
    server.opened = defer.Deferred()
    server.setProtocolOptions(perMessageCompressionAccept=_accept)
    port = reactor.listenTCP(0, server, interface="127.0.0.1")
    try:
        url = f"ws://127.0.0.1:{port.getHost().port}/"
        factory = WebSocketClientFactory(url)
        factory.protocol = Client
        factory.received = defer.Deferred()
        if offer:
            factory.setProtocolOptions(perMessageCompressionOffers=[PerMessageDeflateOffer()],
                                       perMessageCompressionAccept=_accept_response)
        reactor.connectTCP("127.0.0.1", port.getHost().port, factory)
        negotiated = yield server.opened.addTimeout(30, reactor)
        assert negotiated is offer
        assert (yield factory.received.addTimeout(30, reactor)) == b"prepared once"
    finally:
        yield port.stopListening()
