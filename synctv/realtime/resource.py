"""The twisted.web resource the Site mounts at ``/ws``: it hands ``GET /ws/rooms/{room}`` upgrades to
a ``RoomProtocol`` and answers anything else with the JSON errors of the HTTP API.

Taking over the connection (as Autobahn's ``WebSocketResource`` does, plus two fixes for a Site
that watches its requests): the HTTP channel is unregistered as the transport's producer, so
the WebSocket protocol can register its own (slow-consumer detection), and the HTTP request is
reported finished once the handshake is decided -- status 101 when upgraded, the refusal's
status otherwise -- so the Site's in-flight count, metrics and shutdown drain do not wait for
the WebSocket to end.
"""

from __future__ import annotations

from typing import Any

from twisted.protocols.policies import ProtocolWrapper
from twisted.web import resource, server
from twisted.web.iweb import IRequest

from synctv.actions import Actions
from synctv.api.errors import write_error
from synctv.core.realtime import RealtimeLimits
from synctv.realtime.auth import ConnectionAuthorizer, DisplayAuthenticator
from synctv.realtime.connections import ConnectionRuntime
from synctv.realtime.protocol import RoomProtocolFactory, prepare_text, send_many

ROUTE = "/ws/rooms/{room}"


def _finish_http(request: IRequest, status: int) -> None:
    """Report the HTTP part of an upgraded (or refused) request as done, without writing: the
    access log line (the Site redacts ``?token=``), then whoever waits for the request's end."""
    request.setResponseCode(status)
    factory = getattr(request.channel, "factory", None)
    if factory is not None:
        factory.log(request)
    notifications, request.notifications = request.notifications, []
    for d in notifications:
        d.callback(None)
    # The HTTP channel and its request hold each other (channel.requests, request.channel) and are
    # done with: left as a cycle they would wait for the collector's full pass, and one upgrade's
    # worth of them per connection is what set those passes off while thousands connect.
    channel, request.channel = request.channel, None
    if channel is not None:
        channel.requests = []


class RoomsWebSocketResource(resource.Resource):
    """``/ws/rooms/{room}`` (the Site gives it the path after ``/ws``)."""

    isLeaf = True

    def __init__(self, factory: RoomProtocolFactory) -> None:
        super().__init__()
        self.factory = factory

    def render(self, request: IRequest) -> Any:
        request.synctv_route = ROUTE
        post = request.postpath
        if len(post) != 2 or post[0] != b"rooms" or not post[1]:
            return write_error(request, "not_found", f"no such WebSocket endpoint; connect to {ROUTE}")
        if request.method != b"GET":
            request.setHeader(b"Allow", b"GET")
            return write_error(request, "method_not_allowed", "a WebSocket upgrade is a GET")
        upgrade = request.getHeader(b"upgrade")
        transport = request.channel.transport
        if upgrade is None or upgrade.strip().lower() != b"websocket" or transport is None:
            return write_error(request, "bad_request",
                               f"{ROUTE} is a WebSocket endpoint: connect with a WebSocket client over HTTP/1.1")
        protocol = self.factory.buildProtocol(request.transport.getPeer())
        protocol.room_ref = post[1].decode("utf-8")
        protocol.http_done = lambda status: _finish_http(request, status)

        request.channel.transport = None
        transport.unregisterProducer()  # the HTTP channel registered itself
        if isinstance(transport, ProtocolWrapper):  # TLS
            transport.wrappedProtocol = protocol
        elif isinstance(getattr(transport, "protocol", None), ProtocolWrapper):
            transport.protocol.wrappedProtocol = protocol
        else:
            transport.protocol = protocol
        protocol.makeConnection(transport)
        if hasattr(transport, "resumeProducing"):
            transport.resumeProducing()  # the HTTP channel may have paused reading

        # Autobahn parses the handshake itself: replay the request it would have read
        head = request.method + b" " + request.uri + b" HTTP/1.1\r\n"
        for name, values in request.requestHeaders.getAllRawHeaders():
            head += name + b": " + b",".join(values) + b"\r\n"
        protocol.dataReceived(head + b"\r\n")
        return server.NOT_DONE_YET


def new_runtime(**options: Any) -> ConnectionRuntime:
    """A ``ConnectionRuntime`` (``options`` are its own) that writes to real WebSocket connections:
    frames prepared once (``prepare_text``) and written by one tight loop (``send_many``)."""
    return ConnectionRuntime(prepare=prepare_text, send_many=send_many, **options)


def build_realtime(
    actions: Actions, limits: RealtimeLimits, *, reactor: Any, node_id: str | None = None,
    display_authenticator: DisplayAuthenticator | None = None, runtime: ConnectionRuntime | None = None,
    **factory_options: Any,
) -> tuple[ConnectionRuntime, RoomsWebSocketResource]:
    """The runtime (``runtime``, or a new one) and the resource to serve at ``/ws/``
    (``build_site(ws=resource)``); the runtime is a Service: start it (``startService``) and stop
    it on shutdown (``stopService`` closes every connection with 1001)."""
    if runtime is None:
        runtime = new_runtime(actions=actions, limits=limits, scheduler=reactor, node_id=node_id)
    authorizer = ConnectionAuthorizer(actions, display_authenticator)
    factory = RoomProtocolFactory(runtime, authorizer, limits, reactor=reactor, **factory_options)
    return runtime, RoomsWebSocketResource(factory)
